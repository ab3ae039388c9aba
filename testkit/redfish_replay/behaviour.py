"""How each captured BMC applies writes, and where that knowledge comes from.

The trees in tests/data/redfish-captures show what each firmware *returns*; what it *does* on a write is
modelled here, from vendor documentation and public issue threads of the projects that drive these BMCs. Each
field says "source:" (a public thread or document) or "ASSUMED:" (no public source found; the most common
behaviour of that firmware family). tests/data/redfish-captures/BEHAVIOUR.md is the same table for people.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Behaviour:
    tree: str
    system_id: str | None = None
    """The system the journey boots (None: the BMC has one)."""
    mode_rule: str = "keep"
    """``keep``: the override mode stays unless changed; ``reset-unless-sent``: a boot PATCH without
    BootSourceOverrideMode resets the mode to ``mode_default``; ``reject-if-sent``: a PATCH carrying it is refused."""
    mode_default: str = "Legacy"
    insert_requires: tuple[str, ...] = ()
    """InsertMedia parameters the firmware refuses to do without (400 naming them)."""
    eject_needs_body: bool = False
    eject_when_empty: str = "ok"
    """``ok``: EjectMedia on an empty slot is accepted; ``refuse``: answered 400."""
    boot_slots: tuple[str, ...] = ()
    """Slots the host firmware boots virtual media from, best first (others are mounted but not booted)."""
    pending_settings: bool = False
    """Boot is written to the @Redfish.Settings object and applied at the next reset."""
    vmedia: bool = True
    """Whether virtual media can be booted at all on this tree."""
    sources: dict[str, str] = field(default_factory=dict)


BEHAVIOURS: dict[str, Behaviour] = {b.tree: b for b in [
    Behaviour("hpe-ilo5-dl325", mode_rule="reject-if-sent", eject_needs_body=True, sources={
        "mode": "source: ansible-collections/community.general#3509 (iLO: a boot PATCH carrying "
                "BootSourceOverrideMode, even unchanged, answers 400), fixed by #3581",
        "eject": "ASSUMED: EjectMedia wants a JSON body ({}) as hilt's quirk peer models for iLO/XCC",
        "slots": "captured: slot 1 Floppy/USBStick, slot 2 CD/DVD under Managers/1"}),
    Behaviour("hpe-ilo6-dl380a", mode_rule="reject-if-sent", eject_needs_body=True, sources={
        "mode": "source: community.general#3509/#3581 (same iLO rule)", "eject": "ASSUMED: as iLO 5"}),
    Behaviour("hpe-ilo7-dl360g12", mode_rule="reject-if-sent", eject_needs_body=True, sources={
        "mode": "ASSUMED: iLO 7 keeps the iLO 5/6 rule", "eject": "ASSUMED: as iLO 5"}),
    Behaviour("ami-gigabyte-h262", insert_requires=("TransferProtocolType",), sources={
        "insert": "source: sushy's transfer_proto_required_error.json (an AMI-based BMC answering "
                  "ActionParameterMissing for TransferProtocolType), sushy release note for the retry",
        "cd": "captured: CD1 has no MediaTypes; found by its id",
        "reset": "captured: ResetActionInfo lists GracefulShutdown, ForceRestart, ForceOff, On"}),
    Behaviour("intel-s2600bpb", vmedia=False, sources={
        "vmedia": "captured: Managers/BMC/VirtualMedia has 0 members: no virtual media over Redfish"}),
    Behaviour("openbmc-bmcweb-stock", vmedia=False, sources={
        "vmedia": "captured: stock image built without virtual media (no VirtualMedia link anywhere)",
        "reset": "captured: ResetActionInfo"}),
    Behaviour("supermicro-gb300-bmcweb", system_id="System_0", boot_slots=("USB1", "USB2"), pending_settings=True,
              sources={
                  "systems": "captured: System_0 (host) and HGX_Baseboard_0 (GPU baseboard) on one BMC",
                  "slots": "captured: USB2, USB1, Slot_0 listed in that order; Slot_0 has no InsertMedia. "
                           "ASSUMED: the host boots USB1 first (no public NVIDIA/Supermicro document found)",
                  "settings": "captured: @Redfish.Settings -> Systems/System_0/Settings carrying Boot; ASSUMED: "
                              "the pending Boot is applied at the next reset (Redfish Settings model)"}),
    Behaviour("supermicro-x10", vmedia=False, sources={
        "vmedia": "captured: Managers/1/VM1 has 0 standard members, only the OEM CfgCD (Supermicro's pre-Redfish-"
                  "VirtualMedia interface): no standard virtual media",
        "mode": "captured: no BootSourceOverrideMode property; sending it is refused (metal-operator#985)"}),
    Behaviour("supermicro-x13", mode_rule="reset-unless-sent", mode_default="Legacy", eject_when_empty="refuse",
              sources={
                  "mode": "source: DMTF/Redfishtool#106 (Supermicro reverts BootSourceOverrideMode to its default "
                          "unless sent with the override, 'by design'), ironcore-dev/metal-operator#607",
                  "cd": "RECONSTRUCTED CD1 (tree SOURCES.md): Image kept with Inserted false after an eject, "
                        "community.general#6969 / PR #12537",
                  "eject": "ASSUMED: EjectMedia on that not-inserted slot answers 400 (nothing mounted)",
                  "target": "captured: UsbCd in the allowable targets; Supermicro boots virtual media as UsbCd"}),
    Behaviour("dell-idrac10", mode_rule="reject-if-sent", sources={
        "mode": "source: community.general#5091 (iDRAC: SYS410, BootSourceOverrideMode read-only in the override)",
        "vmedia": "captured: VirtualMedia 1 and 2 under the System (iDRAC 10), dell/iDRAC-Redfish-Scripting#324",
        "reset": "captured System body is trimmed by bmclib (no Reset action): ASSUMED the standard "
                 "Actions/ComputerSystem.Reset target with the usual iDRAC reset types"}),
]}
