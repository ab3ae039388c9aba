"""Boot an image on a set of nodes in parallel and prove that the new image runs.

Each node walks an explicit state machine (unknown -> off -> booting -> reachable -> verified, after
labgrid's strategies); every transition is a recorded step with its time and evidence, which is what a
person reads when a boot fails. Booting N nodes costs the slowest boot, not N boots. A node whose old
OS still answers SSH after the reset is not taken as booted: the boot id must change.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hilt.bmc import Bmc
from hilt.errors import HiltError, InfrastructureError, NodeError, ParseError
from hilt.fabric.procinfo import parse_driver_version
from hilt.node.ssh import HostKeyError, Node, probe_ssh
from hilt.provision.identity import IDENTITY_FILES as IDENTITY_FILES_HOST
from hilt.provision.identity import IdentityError, bmc_identity, host_identity, identity_record, match_identity
from hilt.rig.config import ImageConfig, NodeConfig

if TYPE_CHECKING:
    from hilt.bmc.protocols import BootMedia

log = logging.getLogger(__name__)

_MAX_LOGIN_BACKOFF_S = 10.0

IDENTITY_FILES = (
    "/etc/os-release",
    "/proc/sys/kernel/osrelease",
    "/proc/sys/kernel/random/boot_id",
    "/sys/module/nvidia/version",
    "/proc/driver/nvidia/version",
)


class NodeState(StrEnum):
    UNKNOWN = "unknown"
    OFF = "off"
    BOOTING = "booting"
    REACHABLE = "reachable"
    VERIFIED = "verified"
    FAILED = "failed"


@dataclass
class Step:
    state: str
    at: float
    detail: str = ""


@dataclass
class ProvisionResult:
    node: str
    ok: bool = False
    state: NodeState = NodeState.UNKNOWN
    error: str | None = None
    boot_s: float | None = None
    old_boot_id: str | None = None
    boot_id: str | None = None
    image_id: str | None = None
    kernel: str | None = None
    driver: str | None = None
    bios_version: str | None = None
    bmc_firmware: str | None = None
    identity: dict[str, Any] | None = None
    """Host vs BMC identity (hilt.provision.identity.identity_record): both identities, both addresses, the verdict."""
    steps: list[Step] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProvisionResult:
        data = dict(data)
        data["state"] = NodeState(data["state"])
        data["steps"] = [Step(**s) for s in data.get("steps", [])]
        return cls(**data)


ProgressCallback = Callable[[str, str], None]


def parse_os_release(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            values[match.group(1)] = match.group(2).strip().strip('"').strip("'")
    return values


def driver_version(sys_module: str | None, proc_version: str | None) -> str | None:
    """The loaded driver's version: /sys/module/nvidia/version, else /proc/driver/nvidia/version, parsed by the
    one driver-version parser (hilt.fabric.procinfo) that the fabric suites use too."""
    for text in (sys_module, proc_version):
        if text and text.strip():
            try:
                return parse_driver_version(text)
            except ParseError:
                continue
    return None


def read_identity(node: Node, timeout: float = 60.0) -> dict[str, str | None]:
    """The running image's identity and boot id in one round trip."""
    files = node.read_files(IDENTITY_FILES, timeout=timeout)
    os_release = parse_os_release(files["/etc/os-release"] or "")
    return {
        "image_id": os_release.get("IMAGE_ID") or os_release.get("BUILD_ID"),
        "kernel": (files["/proc/sys/kernel/osrelease"] or "").strip() or None,
        "boot_id": (files["/proc/sys/kernel/random/boot_id"] or "").strip() or None,
        "driver": driver_version(files["/sys/module/nvidia/version"], files["/proc/driver/nvidia/version"]),
    }


def phase_durations(steps: list[Step]) -> dict[str, float]:
    """Seconds spent in each state (a state entered twice adds up), for the evidence of a failed boot."""
    durations: dict[str, float] = {}
    for current, following in zip(steps, steps[1:], strict=False):
        durations[current.state] = round(durations.get(current.state, 0.0) + following.at - current.at, 3)
    return durations


class _Provisioner:
    def __init__(self, name: str, config: NodeConfig, image_name: str | None, image: ImageConfig | None,
                 boot: bool, progress: ProgressCallback | None, poll_s: float, max_poll_s: float):
        self.name = name
        self.config = config
        self.image_name = image_name
        self.image = image
        self.boot = boot
        self.progress = progress
        self.poll_s = poll_s
        self.max_poll_s = max(poll_s, max_poll_s)
        self.last_problem: str | None = None
        self.identity: dict[str, str | None] | None = None
        self.bmc_inventory: Any = None
        self.result = ProvisionResult(node=name)
        self.node = Node(name, config)

    def step(self, state: NodeState, detail: str = "") -> None:
        self.result.state = state
        self.result.steps.append(Step(state.value, time.time(), detail))
        log.info("node %s: %s %s", self.name, state.value, detail)
        if self.progress is not None:
            self.progress(self.name, state.value if not detail else f"{state.value}: {detail}")

    def run(self) -> ProvisionResult:
        started = time.monotonic()
        try:
            self.step(NodeState.UNKNOWN, "reading the running boot id")
            self.result.old_boot_id = self._current_boot_id()
            if self.will_boot:
                self._boot()
            self._wait_reachable(started)
            self._verify()
            self._verify_identity()
            self.result.ok = True
            self.result.boot_s = round(time.monotonic() - started, 3)
            self.step(NodeState.VERIFIED, f"{self.result.image_id or '?'} in {self.result.boot_s:.1f} s")
        except HiltError as exc:
            self.result.ok = False
            self.result.error = str(exc)
            self.result.boot_s = round(time.monotonic() - started, 3)
            # A node that is not the machine its BMC manages is of unknown state, not a failed boot.
            self.step(NodeState.UNKNOWN if isinstance(exc, IdentityError) else NodeState.FAILED, str(exc))
            self._collect_evidence()
        finally:
            self.node.close()
        return self.result

    def _bmc(self):  # noqa: ANN202 - the BMC layer's class
        return Bmc.from_config(self.config, name=self.name)

    def _current_boot_id(self) -> str | None:
        if not probe_ssh(self.config.ssh.host, self.config.ssh.port, timeout=2.0):
            return None
        try:
            return self.node.boot_id(timeout=10)
        except HostKeyError:
            raise
        except NodeError:
            return None
        finally:
            if self.will_boot:  # the reset kills this connection; without one, verifying reuses it
                self.node.close()

    @property
    def will_boot(self) -> bool:
        return self.boot and self.image is not None and self.image.boot_method != "none"

    def _boot(self) -> None:
        assert self.image is not None
        with self._bmc() as bmc:
            try:
                inventory = bmc.inventory()
                self.bmc_inventory = inventory
                self.result.bios_version = inventory.bios_version
                self.result.bmc_firmware = inventory.bmc_firmware
            except HiltError as exc:
                log.warning("node %s: BMC inventory unavailable: %s", self.name, exc)
            self.step(NodeState.OFF, f"{bmc.power_state()} before boot")
            notes = boot_image(bmc, self.image)
        if notes:  # a slot that refused the image: kept whether or not the boot then succeeds
            self.result.evidence["virtual_media"] = notes
        detail = f"{self.image_name} via {self.image.boot_method}"
        self.step(NodeState.BOOTING, detail + (f" ({'; '.join(notes)})" if notes else ""))

    def _wait_reachable(self, started: float) -> None:
        """Poll until the *new* OS answers SSH, or the image's boot timeout.

        Two cadences: the banner probe (one TCP connect that a booting host refuses: cheap) backs off from
        ``poll_s`` only to ``max_poll_s`` (0.5 s by default), so a node is seen within half a second of coming
        up and N nodes cost the slowest boot, not the slowest boot plus a long backoff step (a 5 s cap made
        8 nodes cost up to 1.5x one node in bench/provision_scaling.py). Full logins, which cost the node
        an sshd fork and an auth log line, back off from ``poll_s`` to 10 s while the same server keeps
        failing or showing the old boot id; when it stops answering (the old OS went down) the next one is
        tried at once.
        """
        timeout = self.image.boot_timeout_s if self.image is not None else 60.0
        deadline = started + timeout
        ssh = self.config.ssh
        probe_delay = login_delay = self.poll_s
        next_login = 0.0
        self.last_problem = "SSH never answered"
        old_os_seen = False
        while time.monotonic() < deadline:
            if not probe_ssh(ssh.host, ssh.port, timeout=min(2.0, max(0.1, deadline - time.monotonic()))):
                login_delay, next_login = self.poll_s, 0.0  # whoever answers next is a new server
            elif time.monotonic() >= next_login:
                try:
                    # The boot id and the identity in one round trip: verifying then costs nothing more.
                    self.identity = read_identity(self.node, timeout=min(10.0, max(1.0, deadline - time.monotonic())))
                    boot_id = self.identity["boot_id"]
                    if not boot_id:
                        raise NodeError(f"node {self.name}: /proc/sys/kernel/random/boot_id is unreadable")
                except HostKeyError as exc:
                    self.last_problem = str(exc)
                    raise  # a changed key is refused now, not retried until the boot timeout
                except NodeError as exc:
                    self.last_problem = str(exc)
                    self.node.close()
                else:
                    if not self.will_boot or boot_id != self.result.old_boot_id:
                        self.result.boot_id = boot_id
                        self.step(NodeState.REACHABLE, f"ssh up, boot id {boot_id[:8]}")
                        return
                    self.last_problem = "the old OS is still answering (boot id unchanged)"
                    if not old_os_seen:
                        # A reset the old OS survives for a while (slow shutdown, a BMC that queues the reset)
                        # must not count as the new boot; the step shows a person that we waited for it.
                        old_os_seen = True
                        self.step(NodeState.BOOTING, f"old OS still answers SSH (boot id {boot_id[:8]} unchanged); "
                                                     "waiting for the new boot id")
                    self.node.close()
                next_login = time.monotonic() + login_delay
                login_delay = min(login_delay * 2, _MAX_LOGIN_BACKOFF_S)
            time.sleep(min(probe_delay, max(0.0, deadline - time.monotonic())))
            probe_delay = min(probe_delay * 1.5, self.max_poll_s)
        raise NodeError(f"node {self.name} did not come up within {timeout:.0f} s: {self.last_problem}")

    def _verify(self) -> None:
        identity = self.identity or read_identity(self.node)
        self.result.image_id = identity["image_id"]
        self.result.kernel = identity["kernel"]
        self.result.driver = identity["driver"]
        expected = self.image.identity.image_id if self.image is not None else None
        if expected and identity["image_id"] != expected:
            raise InfrastructureError(
                f"node {self.name} runs image {identity['image_id']!r}, expected {expected!r}: "
                "the boot media did not take"
            )

    def _verify_identity(self) -> None:
        """The host that answered SSH must be the machine this node's BMC manages (docs/trust.md)."""
        files = self.node.read_files(IDENTITY_FILES_HOST, timeout=30)
        host = host_identity(files)
        inventory = self.bmc_inventory
        bmc_url = self.config.bmc.url
        ssh = f"{self.config.ssh.host}:{self.config.ssh.port}"
        if inventory is None:
            try:
                with self._bmc() as bmc:
                    inventory = bmc.inventory()
            except HiltError as exc:
                why = f"BMC inventory unavailable: {exc}"
                self.result.identity = identity_record("unverified", why, host, bmc_identity(None, None), ssh, bmc_url)
                log.warning("node %s: identity unverified: %s", self.name, why)
                return
        bmc_id = bmc_identity(getattr(inventory, "uuid", None), inventory.serial)
        status, why = match_identity(host, bmc_id)
        self.result.identity = identity_record(status, why, host, bmc_id, ssh, bmc_url)
        if status == "mismatch":
            raise IdentityError(
                f"node {self.name}: identity mismatch ({why}): the host at ssh {ssh} is {host.describe()}, "
                f"the BMC at {bmc_url} manages {bmc_id.describe()}: the inventory or the cabling is wrong")
        # Recorded in the result (and the run record), not as a step: the state machine's steps stay the boot's.
        (log.info if status == "verified" else log.warning)("node %s: identity %s: %s", self.name, status, why)

    def _collect_evidence(self) -> None:
        self.result.evidence["steps"] = [asdict(s) for s in self.result.steps]
        self.result.evidence["phases_s"] = phase_durations(self.result.steps)
        if self.last_problem:
            self.result.evidence["ssh_error"] = self.last_problem
        console = self._console_tail()
        if console is not None:
            self.result.evidence["console"] = console
        if not self.will_boot:
            return
        try:
            with self._bmc() as bmc:
                evidence = bmc.collect_evidence(max_entries=30)
            self.result.evidence["bmc_log"] = evidence.log_entries
            self.result.evidence["boot_progress"] = evidence.boot_progress
            # "On" but never reachable points at the OS; "Off" at power or the BMC.
            self.result.evidence["bmc_power_state"] = evidence.power_state
            if getattr(evidence, "errors", None):
                self.result.evidence["bmc_evidence_errors"] = list(evidence.errors)
        except Exception as exc:  # noqa: BLE001 - evidence is best effort; the boot error is what matters
            self.result.evidence["bmc_evidence_errors"] = [str(exc)]

    def _console_tail(self, max_bytes: int = 8192) -> str | None:
        """The end of the node's serial console log (rigs.yaml ``console``), where the rig has one."""
        if not self.config.console:
            return None
        path = Path(self.config.console).expanduser()
        try:
            with path.open("rb") as fh:
                fh.seek(max(0, path.stat().st_size - max_bytes))
                return fh.read().decode(errors="replace")
        except OSError as exc:
            return f"(console log {path} unreadable: {exc.strerror})"


def provision(
    nodes: Mapping[str, NodeConfig],
    image_name: str | None,
    image: ImageConfig | None,
    *,
    boot: bool = True,
    progress: ProgressCallback | None = None,
    poll_s: float = 0.5,
    max_poll_s: float = 0.5,
) -> dict[str, ProvisionResult]:
    """Boot (unless ``boot`` is False) and verify every node at once; never raises for one node's failure.

    The SSH banner is probed from ``poll_s`` backing off to ``max_poll_s``; logins back off separately
    (see ``_Provisioner._wait_reachable``); both until the image's ``boot_timeout_s``.
    """
    if not nodes:
        return {}
    with ThreadPoolExecutor(max_workers=len(nodes), thread_name_prefix="provision") as pool:
        futures = {
            name: pool.submit(_Provisioner(name, cfg, image_name, image, boot, progress, poll_s, max_poll_s).run)
            for name, cfg in nodes.items()
        }
        return {name: future.result() for name, future in futures.items()}


def boot_image(bmc: BootMedia, image: ImageConfig) -> list[str]:
    """Boot ``image`` the way its ``boot_method`` says: a virtual CD, UEFI HTTP boot from its URL, or PXE.
    Returns the BMC's notes for the evidence (virtual-media slots that refused the image)."""
    if image.boot_method in ("http", "network"):  # "network" is the old name of UEFI HTTP boot
        bmc.boot_from_network(target="UefiHttp", uri=image.url)
    elif image.boot_method == "pxe":
        bmc.boot_from_network(target="Pxe")
    else:
        return bmc.boot_from_virtual_media(image.url)
    return []


def read_running_images(nodes: Mapping[str, NodeConfig], timeout: float = 30.0) -> dict[str, dict[str, str | None]]:
    """What each node runs now (image id, kernel, driver, boot id), read over SSH in parallel without touching
    its power or boot media: what a rollout records before it boots anything, to know what to roll back to.

    Raises NodeError naming every node that could not be read (a node that is off or unreachable runs nothing
    hilt can name).
    """
    def read(name: str, cfg: NodeConfig) -> dict[str, str | None]:
        node = Node(name, cfg)
        try:
            return read_identity(node, timeout=timeout)
        finally:
            node.close()

    if not nodes:
        return {}
    with ThreadPoolExecutor(max_workers=len(nodes), thread_name_prefix="read-image") as pool:
        futures = {name: pool.submit(read, name, cfg) for name, cfg in nodes.items()}
    found: dict[str, dict[str, str | None]] = {}
    problems: list[str] = []
    for name, future in futures.items():
        try:
            found[name] = future.result()
        except HiltError as exc:
            problems.append(f"node {name}: {exc}")
    if problems:
        raise NodeError("cannot read the running image: " + "; ".join(problems))
    return found
