"""``Bmc``: power, one-time boot override and virtual-media boot over Redfish, for real-world BMCs."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hilt.bmc import vendors, vmedia
from hilt.bmc.errors import BmcRequestError
from hilt.bmc.evidence import BmcEvidence, BmcInventory, collect_evidence, read_inventory
from hilt.bmc.transport import Response, Transport
from hilt.rig.credentials import resolve_username

if TYPE_CHECKING:
    from hilt.rig.config import BmcConfig, NodeConfig

log = logging.getLogger("hilt.bmc")

# Equivalents, best first, when a system does not allow the reset type we want.
_ON = ("On", "ForceOn", "PushPowerButton")
_OFF = ("ForceOff", "GracefulShutdown", "PushPowerButton")
_RESTART = ("ForceRestart", "GracefulRestart", "PowerCycle")


class Bmc:
    """A node's Redfish BMC. Implements ``PowerControl`` and ``BootMedia``.

    ``verify`` is True (the CA bundle of requests), False, or a CA bundle path. ``vmedia_target`` overrides the
    boot target that boots virtual media ("Cd"/"UsbCd") where the vendor table is wrong for a rig.
    """

    def __init__(self, url: str, username: str, password: str, system_id: str | None = None,
                 verify: bool | str = True, auth: str = "auto", vmedia_target: str | None = None,
                 timeout_s: float = 10.0, name: str | None = None, *, power_timeout_s: float = 300.0,
                 poll_interval_s: float = 1.0, retries: int = 4, backoff_s: float = 0.5):
        __tracebackhide__ = True  # pytest prints frame arguments in tracebacks: the password is one
        host = urlsplit(url).hostname or url
        port = urlsplit(url).port
        self.name = name or (f"{host}:{port}" if port else host)
        self.system_id = system_id
        self.vmedia_target = vmedia_target
        self.power_timeout_s = power_timeout_s
        self.poll_interval_s = poll_interval_s
        self._t = Transport(url, username, password, name=self.name, verify=verify, auth=auth,
                            timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
        self._connected = False
        self._system_path: str | None = None
        self._managers: list[dict[str, Any]] | None = None
        self._vmedia: vmedia.VirtualMediaDevice | None = None
        self._action_info: dict[str, list[str] | None] = {}

    @classmethod
    def from_config(cls, config: NodeConfig | BmcConfig, *, name: str | None = None, **overrides: Any) -> Bmc:
        """The one way to build a node's BMC client from rigs.yaml: credential references are resolved here,
        at use, so that callers never hold a password. ``config`` is a node (its ``bmc``) or a ``BmcConfig``;
        ``overrides`` are the keyword arguments of ``Bmc`` (timeouts, poll interval) a caller needs to bend.
        """
        bmc = getattr(config, "bmc", config)
        kw: dict[str, Any] = dict(system_id=bmc.system_id, verify=bmc.verify, auth=bmc.auth,
                                  vmedia_target=bmc.vmedia_target, name=name)
        kw.update(overrides)
        return cls(bmc.url, resolve_username(bmc.username), bmc.password.resolve(), **kw)

    # ------------------------------------------------------------ plumbing
    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far (for benchmarks and tests)."""
        return self._t.requests_sent

    def __enter__(self) -> Bmc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Log out; safe to call twice."""
        if self._connected:
            self._t.close()
            self._connected = False
        self._t.forget_secrets()

    def _connect(self) -> None:
        if not self._connected:
            self._t.connect()
            self._connected = True

    def _system_url(self) -> str:
        self._connect()
        if self._system_path:
            return self._system_path
        coll_path = (self._t.root.get("Systems") or {}).get("@odata.id", "/redfish/v1/Systems")
        if self.system_id:
            # One GET less: the system id is the last path segment on every BMC we know of.
            self._system_path = f"{coll_path.rstrip('/')}/{self.system_id}"
            return self._system_path
        members = [m["@odata.id"] for m in (self._t.get(coll_path, step="list systems").body or {})
                   .get("Members", []) if m.get("@odata.id")]
        if len(members) != 1:
            ids = ", ".join(p.rstrip("/").rsplit("/", 1)[-1] for p in members) or "none"
            raise BmcRequestError(self.name, "pick the system", None, "",
                                  f"{len(members)} systems ({ids}); set bmc.system_id in rigs.yaml to one of them")
        self._system_path = members[0]
        return self._system_path

    def _system(self, step: str = "read system") -> Response:
        path = self._system_url()
        try:
            return self._t.get(path, step=step)
        except BmcRequestError as exc:
            if exc.status != 404 or not self.system_id:
                raise
            # A BMC with several ComputerSystems (host + GPU baseboard): say which ones exist.
            coll_path = path.rsplit("/", 1)[0]
            members = (self._t.get(coll_path, step="list systems").body or {}).get("Members", [])
            ids = ", ".join(str(m.get("@odata.id", "")).rstrip("/").rsplit("/", 1)[-1] for m in members) or "none"
            raise BmcRequestError(self.name, "pick the system", 404, "",
                                  f"system_id {self.system_id!r} is not on this BMC; it has: {ids}") from None

    def _manager_resources(self, system: dict[str, Any]) -> list[dict[str, Any]]:
        if self._managers is None:
            links = [m.get("@odata.id") for m in (system.get("Links") or {}).get("ManagedBy") or []]
            self._managers = [self._t.get(p, step="read manager").body or {} for p in links[:1] if p]
        return self._managers

    # ------------------------------------------------------------ power
    def power_state(self) -> str:
        return str(self._system(step="read power state").body.get("PowerState") or "Unknown")

    def power_on(self) -> None:
        system = self._system().body or {}
        if system.get("PowerState") == "On":
            return
        self._reset(system, _ON, "power on")
        self._wait_for("On", "power on")

    def power_off(self) -> None:
        system = self._system().body or {}
        if system.get("PowerState") == "Off":
            return
        self._reset(system, _OFF, "power off")
        self._wait_for("Off", "power off")

    def restart(self) -> None:
        """Restart and wait until On; from Off this is a power on."""
        system = self._system().body or {}
        self._restart(system)

    def _restart(self, system: dict[str, Any]) -> None:
        if system.get("PowerState") != "On":
            self._reset(system, _ON, "power on")
            self._wait_for("On", "power on")
            return
        allowed = self._known_resets(system)
        if allowed is None or any(r in allowed for r in _RESTART):
            try:
                self._reset(system, _RESTART, "restart")
                self._wait_for("On", "restart")
                return
            except _NoSuchReset:
                pass
        # No restart of any kind allowed (some Supermicro/OpenBMC lists): off, then on.
        log.info("BMC %s allows no restart reset type (%s); powering off then on", self.name,
                 self._known_resets(system))
        self._reset(system, _OFF, "restart (power off)")
        self._wait_for("Off", "restart (power off)")
        self._reset(system, _ON, "restart (power on)")
        self._wait_for("On", "restart")

    def _known_resets(self, system: dict[str, Any]) -> list[str] | None:
        """ResetType allowable values known without a request: inline, or an ActionInfo already read."""
        allowed = _allowed_resets(system)
        if allowed is not None:
            return allowed
        info = ((system.get("Actions") or {}).get("#ComputerSystem.Reset") or {}).get("@Redfish.ActionInfo")
        return self._action_info.get(info) if info else None

    def _read_action_info(self, system: dict[str, Any]) -> list[str] | None:
        """ResetType allowable values from the action's ``@Redfish.ActionInfo`` (bmcweb, AMI, X13), read only
        when the BMC refused a reset type: most take ForceRestart, so the usual boot costs no extra request."""
        info = ((system.get("Actions") or {}).get("#ComputerSystem.Reset") or {}).get("@Redfish.ActionInfo")
        if not info:
            return None
        if info not in self._action_info:
            body = self._t.request("GET", info, step="read reset action info", ok=(404,)).body
            params = (body or {}).get("Parameters") if isinstance(body, dict) else None
            values = next((p.get("AllowableValues") for p in params or []
                           if isinstance(p, dict) and p.get("Name") == "ResetType"), None)
            self._action_info[info] = list(values) if values else None
        return self._action_info[info]

    def _reset(self, system: dict[str, Any], choices: tuple[str, ...], step: str) -> None:
        allowed = self._known_resets(system)
        reset_type = _pick(choices, allowed)
        if reset_type is None:
            raise _NoSuchReset(self.name, step, None, "",
                               f"none of {', '.join(choices)} in ResetType allowable values {allowed}")
        action = ((system.get("Actions") or {}).get("#ComputerSystem.Reset") or {}).get("target") \
            or f"{self._system_url()}/Actions/ComputerSystem.Reset"
        try:
            self._t.request("POST", action, {"ResetType": reset_type}, step=f"{step} ({reset_type})")
        except BmcRequestError as exc:
            if exc.status != 400 or allowed is not None:
                raise
            allowed = self._read_action_info(system)
            if allowed is None:
                raise
            retry = _pick(choices, allowed)
            if retry is None:
                raise _NoSuchReset(self.name, step, 400, exc.bmc_message,
                                   f"none of {', '.join(choices)} in ResetType allowable values {allowed}") from None
            if retry == reset_type:
                raise
            self._t.request("POST", action, {"ResetType": retry}, step=f"{step} ({retry})")

    def _wait_for(self, state: str, step: str) -> None:
        deadline = time.monotonic() + self.power_timeout_s
        last = "Unknown"
        while True:
            time.sleep(self.poll_interval_s)
            last = str(self._system(step=f"{step}: read power state").body.get("PowerState"))
            if last == state:
                return
            if time.monotonic() > deadline:
                raise BmcRequestError(self.name, step, None, "",
                                      f"still {last} after {self.power_timeout_s:.0f}s, wanted {state}")

    # ------------------------------------------------------------ boot
    def boot_from_virtual_media(self, image_url: str) -> list[str]:
        """Eject, insert ``image_url``, one-time boot from the CD, power on or restart; returns once On.

        Every check that can fail (no virtual CD, insertion refused in every slot, a boot override the BMC
        did not keep) fails before the reset: a BMC that cannot boot the image never restarts the host.
        Returns what a person reading the boot should know: each slot that refused the image and why, then
        the slot that took it (nothing when the first slot took it).
        """
        system = self._system().body or {}
        traits = vendors.detect(self._t.root, system)
        slots = [self._vmedia] if self._vmedia else vmedia.find_cds(
            self._t, system, lambda: self._manager_resources(system), prefer=traits.vmedia_slots)
        self._vmedia, refused = vmedia.insert_first(self._t, slots, image_url)
        notes = [f"refused: {r}" for r in refused]
        if notes:
            notes.append(f"inserted in {self._vmedia.path}")
        system = self._set_boot_override(system, self._vmedia_target(system, traits))
        self._restart(system)
        return notes

    def boot_from_network(self, target: str = "Pxe", uri: str | None = None) -> None:
        """One-time network boot (``Pxe``, or ``UefiHttp`` with ``uri``), then restart; returns once On."""
        if target not in ("Pxe", "UefiHttp"):
            raise ValueError(f"network boot target must be 'Pxe' or 'UefiHttp', not {target!r}")
        if target == "UefiHttp" and not uri:
            raise ValueError("UefiHttp boot needs a uri")
        system = self._system().body or {}
        boot = system.get("Boot") or {}
        allowed = boot.get("BootSourceOverrideTarget@Redfish.AllowableValues")
        if allowed and target not in allowed:
            raise BmcRequestError(self.name, f"one-time boot from {target}", None, "",
                                  f"this system does not offer {target}; BootSourceOverrideTarget allows "
                                  f"{', '.join(map(str, allowed))}")
        if target == "UefiHttp" and "HttpBootUri" not in boot:
            # iLO, iDRAC, Supermicro list UefiHttp but take the URI from BIOS settings, not from Redfish Boot.
            raise BmcRequestError(self.name, "one-time boot from UefiHttp", None, "",
                                  "this system has no Boot.HttpBootUri: UEFI HTTP boot from a URI is not offered "
                                  "over Redfish here (use boot_method virtual_media or pxe)")
        system = self._set_boot_override(system, target, uri=uri)
        self._restart(system)

    def boot_from_http(self, uri: str) -> None:
        """One-time UEFI HTTP boot from ``uri`` (``UefiHttp`` + ``HttpBootUri``), then restart."""
        self.boot_from_network("UefiHttp", uri)

    def _vmedia_target(self, system: dict[str, Any], traits: vendors.VendorTraits) -> str:
        if self.vmedia_target:
            return self.vmedia_target
        target = traits.vmedia_boot_target
        allowed = (system.get("Boot") or {}).get("BootSourceOverrideTarget@Redfish.AllowableValues")
        if allowed and target not in allowed:
            for alt in ("Cd", "UsbCd"):
                if alt in allowed:
                    return alt
        return target

    def _set_boot_override(self, system: dict[str, Any], target: str, uri: str | None = None) -> dict[str, Any]:
        """PATCH the one-time override, read it back and verify it before any reset; returns the system read.

        Whether ``BootSourceOverrideMode`` goes into the PATCH is the vendor's rule (vendors.py): some firmware
        resets the mode to its default unless it is sent every time, some rejects a mode it was not asked to
        change; unknown firmware gets the mode only when it must change, and a 400 is retried once in the
        other form. Then the override is read back (target, enabled, mode, URI): a BMC that answered 2xx and
        dropped a field is an error here, not a host that boots its disk.
        """
        boot = system.get("Boot") or {}
        traits = vendors.detect(self._t.root, system)
        body: dict[str, Any] = {"BootSourceOverrideTarget": target, "BootSourceOverrideEnabled": "Once"}
        if uri:
            body["HttpBootUri"] = uri
        mode = boot.get("BootSourceOverrideMode")
        want_mode = "UEFI" if target == "UefiHttp" else mode
        send_mode = vendors.send_mode(traits, mode, want_mode)
        if send_mode:
            body["BootSourceOverrideMode"] = want_mode
        elif want_mode and mode and want_mode != mode:
            raise BmcRequestError(self.name, f"set one-time boot to {target}", None, "",
                                  f"{target} needs BootSourceOverrideMode {want_mode} (now {mode}), which "
                                  f"{traits.name} firmware does not take over Redfish: change the BIOS boot mode")
        path, etag = self._system_url(), None
        settings = ((system.get("@Redfish.Settings") or {}).get("SettingsObject") or {}).get("@odata.id")
        if settings:
            # Lenovo SE450, Nokia, NVIDIA GB300: Boot is written to the pending settings object, applied on reset.
            obj = self._t.request("GET", settings, step="read pending settings", ok=(404,))
            if obj.status != 404 and isinstance(obj.body, dict) and "Boot" in obj.body:
                path, etag = settings, obj.etag
        if path == self._system_url():
            etag = self._system_etag
        step = f"set one-time boot to {target}"
        try:
            self._t.patch(path, {"Boot": body}, step=step, etag=etag)
        except BmcRequestError as exc:
            if exc.status != 400 or traits.mode_rule != "when-changing":
                raise
            alt = dict(body)
            if "BootSourceOverrideMode" in alt:
                del alt["BootSourceOverrideMode"]
            elif mode:
                alt["BootSourceOverrideMode"] = want_mode or mode
            else:
                raise
            log.info("BMC %s: boot override refused (%s); retrying %s BootSourceOverrideMode", self.name,
                     exc.bmc_message, "with" if "BootSourceOverrideMode" in alt else "without")
            self._t.patch(path, {"Boot": alt}, step=step, etag=etag)
            body = alt
        return self._verify_override(path, body, mode if "BootSourceOverrideMode" not in body else None, step)

    def _verify_override(self, path: str, sent: dict[str, Any], kept_mode: str | None, step: str) -> dict[str, Any]:
        """Read the override back; the fields we sent (and the mode we expect kept) must read as sent."""
        readback = self._t.get(path, step=f"{step}: read back").body or {}
        boot = readback.get("Boot") or {}
        # Enabled "Once" may read back "Continuous" (libvirt-backed BMCs, sushy): the next boot takes it either way.
        wrong = [f"{k} reads {boot.get(k)!r}, sent {v!r}" for k, v in sent.items()
                 if boot.get(k) != v and not (k == "BootSourceOverrideEnabled" and boot.get(k) == "Continuous")]
        if kept_mode and boot.get("BootSourceOverrideMode") not in (None, kept_mode):
            wrong.append(f"BootSourceOverrideMode reads {boot.get('BootSourceOverrideMode')!r}, was {kept_mode!r} "
                         "(the firmware reset it: send it with every PATCH)")
        if wrong:
            raise BmcRequestError(self.name, step, None, "",
                                  "the BMC accepted the PATCH but did not keep it: " + "; ".join(wrong)
                                  + " (no reset was sent)")
        if path == self._system_url():
            return readback
        return self._system(step=f"{step}: read system").body or {}

    @property
    def _system_etag(self) -> str | None:
        return self._t.last_etag.get(self._system_url())

    # ------------------------------------------------------------ read-only
    def collect_evidence(self, max_entries: int = 50) -> BmcEvidence:
        """Log entries (newest first, bounded) and BootProgress; never raises."""
        try:
            path = self._system_url()
        except Exception as exc:  # evidence is best effort: report what went wrong instead
            return BmcEvidence(errors=[str(exc)])
        try:
            return collect_evidence(self._t, path, max_entries)
        except Exception as exc:
            return BmcEvidence(errors=[str(exc)])

    def inventory(self) -> BmcInventory:
        system = self._system(step="read inventory").body or {}
        managers = self._manager_resources(system)
        return read_inventory(self._t, system, managers[0] if managers else None)


class _NoSuchReset(BmcRequestError):
    """No reset type of the wanted kind is allowed on this system."""


def _pick(choices: tuple[str, ...], allowed: list[str] | None) -> str | None:
    return next((r for r in choices if allowed is None or r in allowed), None)


def _allowed_resets(system: dict[str, Any]) -> list[str] | None:
    action = (system.get("Actions") or {}).get("#ComputerSystem.Reset") or {}
    allowed = action.get("ResetType@Redfish.AllowableValues")
    return list(allowed) if allowed else None
