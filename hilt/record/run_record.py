"""The record of one run: what summary.json holds and what the history store appends.

One schema for every consumer (summary writer, history, HTML report, Prometheus file) so that a run
imported from an old summary.json is the same thing as a run recorded live.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

if TYPE_CHECKING:  # the record stays importable without the fabric layer's parsers
    from hilt.fabric.topo import Topology
    from hilt.profiles.model import Profile

SCHEMA_VERSION = 1

TestOutcome = Literal["passed", "failed", "error", "skipped"]
FailureKind = Literal["product", "infrastructure", "regression", "undecided", "none"]
GateOutcome = Literal["pass", "regression", "improvement", "inconclusive", "unbaselined", "not_run"]


class TopologyRecord(BaseModel):
    """A node's ``nvidia-smi topo -m`` matrix as found, next to the one its profile expects.

    Kept as two square matrices over one device list so that the report can draw them without the
    profile (which may have changed since) or the parser. ``found[i][j]`` is the printed cell between
    ``devices[i]`` and ``devices[j]`` (``"X"`` on the diagonal); None where the device was not in the
    output (a GPU the profile expects but the node did not show). ``expected[i][j]`` is the profile's cell,
    None where the profile says nothing (NIC to NIC, NICs it does not place).
    """

    profile: str | None = None
    devices: list[str]
    found: list[list[str | None]]
    expected: list[list[str | None]]
    nic_names: dict[str, str] = Field(default_factory=dict)  # NIC column -> device (NIC0 -> mlx5_0)
    notes: list[str] = Field(default_factory=list)  # what no cell can show: a NIC the profile places, not found

    @model_validator(mode="after")
    def _square(self) -> TopologyRecord:
        """Both matrices are len(devices) square: the report indexes them by device position."""
        size = len(self.devices)
        for name in ("found", "expected"):
            rows = getattr(self, name)
            bad = next((i for i, row in enumerate(rows) if len(row) != size), None)
            if len(rows) != size or bad is not None:
                where = f"row {bad} has {len(rows[bad])} cells" if bad is not None else f"{len(rows)} rows"
                raise ValueError(f"{name}: {where}; a {size} x {size} matrix over devices is valid")
        return self

    @classmethod
    def from_parsed(cls, profile: Profile, topo: Topology) -> TopologyRecord:
        """From a :class:`hilt.profiles.model.Profile` and a parsed :class:`hilt.fabric.topo.Topology`."""
        expected_gpus = [f"GPU{i}" for i in range(profile.gpu_count)]
        devices = list(topo.gpus) + [g for g in expected_gpus if g not in topo.gpus] + list(topo.nics)
        index = {d: i for i, d in enumerate(devices)}
        size = len(devices)
        found: list[list[str | None]] = [[topo.cells.get((a, b)) for b in devices] for a in devices]
        expected: list[list[str | None]] = [[None] * size for _ in range(size)]
        for d in devices:
            if d in expected_gpus:
                expected[index[d]][index[d]] = "X"
        for a, b in profile.gpu_pairs():
            ia, ib = index[f"GPU{a}"], index[f"GPU{b}"]
            expected[ia][ib] = expected[ib][ia] = profile.expected_link(a, b)
        by_device = {device: column for column, device in topo.nic_names.items()}
        notes = [f"{g}: found, but the profile expects {profile.gpu_count} GPUs" for g in topo.gpus
                 if g not in expected_gpus]
        for gpu, nics in (profile.nic_locality or {}).items():
            for nic, cell in nics.items():
                column = nic if nic in index else by_device.get(nic)
                if gpu in index and column in index:
                    expected[index[gpu]][index[column]] = expected[index[column]][index[gpu]] = cell
                else:
                    notes.append(f"{gpu}–{nic}: expected {cell}, found no such device in the matrix")
        return cls(profile=profile.name, devices=devices, found=found, expected=expected,
                   nic_names=dict(topo.nic_names), notes=notes)


class C2cRecord(BaseModel):
    """A node's NVLink-C2C links as `nvidia-smi c2c -s` showed them, next to its profile's expectation (recorded
    by test_c2c for the report's fabric picture). ``links[gpu][link]`` is GB/s, None for an inactive link; no
    GPU at all means the node said "No Devices support C2C."."""

    profile: str | None = None
    links: dict[int, dict[int, float | None]] = Field(default_factory=dict)
    names: dict[int, str] = Field(default_factory=dict)
    links_per_gpu: int | None = None
    min_link_gbps: float | None = None
    problems: list[str] = Field(default_factory=list)


class FabricGpuRecord(BaseModel):
    """One GPU's Fabric section of `nvidia-smi -q`: training state, the domain it joined, its health rows."""

    gpu: int
    pci_bus_id: str | None = None
    state: str | None = None
    status: str | None = None
    clique_id: int | None = None
    cluster_uuid: str | None = None
    health: dict[str, str] = Field(default_factory=dict)


class ImexNodeRecord(BaseModel):
    index: int
    address: str
    status: str
    version: str | None = None


class ImexRecord(BaseModel):
    """`nvidia-imex-ctl -N` as one node saw it; ``connections`` keyed "from-to" (JSON keys are strings)."""

    domain_state: str
    nodes: list[ImexNodeRecord] = Field(default_factory=list)
    connections: dict[str, str] = Field(default_factory=dict)
    error: str | None = None  # why the node's view could not be read (then the rest is empty)


class DomainRecord(BaseModel):
    """A node's place in its multi-node NVLink domain (test_nvlink_domain): each GPU's fabric, IMEX's view."""

    profile: str | None = None
    gpus: list[FabricGpuRecord] = Field(default_factory=list)
    imex: ImexRecord | None = None
    problems: list[str] = Field(default_factory=list)


class NodeRecord(BaseModel):
    """What a node ran and how it got there."""

    name: str
    image_id: str | None = None
    kernel: str | None = None
    driver: str | None = None
    bios_version: str | None = None
    bmc_firmware: str | None = None
    boot_s: float | None = None
    booted: bool = True
    error: str | None = None
    health: str | None = None
    identity: dict[str, Any] | None = None
    """Host vs BMC identity at provisioning: status, why, both identities, both addresses (docs/trust.md)."""
    topology: TopologyRecord | None = None
    """The fabric as ``nvidia-smi topo -m`` showed it, against the profile (recorded by test_topology)."""
    firmware: dict[str, list[str | None]] | None = None
    """Firmware versions test_firmware_matrix found: bios, bmc, and vbios/inforom per GPU (docs/trust.md)."""
    c2c: C2cRecord | None = None
    """The C2C links test_c2c found, against the profile (the report's fabric picture)."""
    domain: DomainRecord | None = None
    """Fabric state, clique, ClusterUUID per GPU and IMEX's view, from test_nvlink_domain (the fabric picture)."""


#: The test property test_firmware_matrix records the versions it found in (JSON), read back by the collector.
FIRMWARE_PROPERTY = "hilt.firmware"


def firmware_from_report(props: dict[str, str]) -> dict[str, list[str | None]] | None:
    """The versions a test recorded, or None (no such property, or a value that is not one)."""
    try:
        data = json.loads(props.get(FIRMWARE_PROPERTY) or "null")
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, list) and
                                             all(x is None or isinstance(x, str) for x in v)
                                             for k, v in data.items()):
        return None
    return data


def identity_of(module: str, nodeid: str) -> str:
    """A test's identity: the module that defines it, then pytest's name for it within the module
    (``hilt.suites.test_nccl::test_nccl_tests[node1]``)."""
    return f"{module}::{nodeid.split('::', 1)[1]}" if "::" in nodeid else f"{module}::{nodeid}"


class TestRecord(BaseModel):
    nodeid: str  # pytest's node id as this run collected it (paste it to run the test again)
    outcome: TestOutcome
    kind: FailureKind = "none"
    message: str | None = None
    duration_s: float = 0.0
    node: str | None = None  # the node property the fixture set; None for lease-wide and node-less tests
    test_id: str | None = None
    """The test's identity across runs (``identity_of``): the same whether the suites ran as ``pytest suites``,
    ``hilt run`` (``--pyargs hilt.suites``) or a team's module importing them; None in records of older hilt."""
    probe: list[str] | None = None
    """A probe's declared metrics (names, or families ending in '.'; ``[]``: it declared none); None: no probe."""

    @property
    def identity(self) -> str:
        """What the history joins runs of this test by: ``test_id``, else (an older record) ``nodeid``."""
        return self.test_id or self.nodeid


class VerdictRecord(BaseModel):
    outcome: GateOutcome
    reason: str
    gated: bool = True  # False: judged for information only, never decides the run
    failed: bool = False  # this verdict failed its test (a regression, or unbaselined without allowance)


def _finite(values: list[float] | None) -> list[float] | None:
    """Samples enter summaries and the history only as finite numbers: one ``inf`` or ``nan`` used to make
    every later read of the history fail (JSON has no infinity; sqlite stores NaN as NULL)."""
    for i, value in enumerate(values or []):
        if not math.isfinite(value):
            raise ValueError(f"sample {i} is {value}: samples must be finite numbers")
    return values


class BaselineRecord(BaseModel):
    value: float = Field(allow_inf_nan=False)
    tolerance: float = Field(allow_inf_nan=False)
    higher_is_better: bool = True
    samples: list[float] | None = None
    source: str | None = None

    _samples = field_validator("samples")(_finite)


class MetricRecord(BaseModel):
    name: str
    unit: str
    labels: dict[str, str] = Field(default_factory=dict)
    samples: list[float]
    higher_is_better: bool = True
    test: str | None = None
    node: str | None = None  # the node its test ran on (None: lease-wide)
    profile: str | None = None  # the profile whose baselines judged it
    baseline: BaselineRecord | None = None
    verdict: VerdictRecord | None = None

    _samples = field_validator("samples")(_finite)


class CoverageEntry(BaseModel):
    """One gated baseline entry of the run (for one node, or for the lease) and whether it was judged."""

    profile: str
    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    scope: Literal["node", "lease"] = "node"
    node: str | None = None
    measured: bool = False
    outcome: GateOutcome | None = None  # the verdict of the measurement that judged it
    why: str | None = None  # why it was not measured

    @property
    def key(self) -> str:
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        where = f"@{self.node}" if self.node else "@lease"
        return f"{self.metric}{{{inner}}}{where}"


class CoverageRecord(BaseModel):
    """What the gate expected to judge and what it did: "gated: K of M entries measured"."""

    gate_run: bool = True  # False: a plain pytest run that selected no probe; not a release gate
    entries: list[CoverageEntry] = Field(default_factory=list)
    ungated: list[str] = Field(default_factory=list)  # entries not gated here, each with why (mixed lease)

    @property
    def measured(self) -> int:
        return sum(1 for e in self.entries if e.measured)

    def line(self) -> str:
        return f"gated: {self.measured} of {len(self.entries)} entries measured"


class InterruptRecord(BaseModel):
    """A run stopped by a signal before its end (Ctrl-C, a CI job's timeout): what was cut off and what never ran.

    Its results cannot decide the gate: the verdict is inconclusive whatever the tests that did run said."""

    signal: str  # SIGINT, SIGTERM
    # waiting for the lease on its nodes (--lease-wait: nothing leased, booted or run), reserving and booting the
    # nodes, running the tests, or after
    phase: Literal["lease", "boot", "tests", "reports"]
    running: list[str] = Field(default_factory=list)  # tests that were running, cut off (no result recorded)
    not_run: list[str] = Field(default_factory=list)  # tests selected that never started
    booting: dict[str, str] = Field(default_factory=dict)  # node -> its last boot step, when cut off in the boot
    waiting_for: str | None = None  # phase lease: the nodes it waited for ("sim/node1, sim/node2")
    blocked_by: str | None = None  # phase lease: who held them ("sim/node1 held by alice@host pid 7 (lease ...)")

    def line(self) -> str:
        """One sentence: by what, during what, and what did not run."""
        parts = [f"interrupted by {self.signal}"]
        if self.phase == "lease":
            wait = f"interrupted by {self.signal} while waiting for its nodes" + (
                f" {self.waiting_for}" if self.waiting_for else "")
            return wait + (f": {self.blocked_by}" if self.blocked_by else "") + (
                "; nothing ran: no node was leased or booted, no test ran")
        if self.phase == "boot":
            where = ", ".join(f"{n} ({step})" for n, step in sorted(self.booting.items()))
            parts.append("while reserving and booting the nodes" + (f": {where}" if where else ""))
        if self.running:
            parts.append(f"while {_names(self.running)} ran (cut off, no result)")
        if self.not_run:
            parts.append(f"{len(self.not_run)} test{'s' * (len(self.not_run) != 1)} did not run: "
                         + _names(self.not_run))
        elif self.phase == "boot":
            parts.append("no test ran")
        elif self.phase == "tests":
            parts.append("no further test ran")
        return "; ".join(parts)


class OutputProblem(BaseModel):
    """An output of the run that was not written (summary, JUnit, Allure, metrics.prom, the history append)."""

    output: str  # "history", "junit.xml", "summary.md", "allure-results", ...
    path: str | None = None  # the file or store it concerns (a history URL without its password)
    error: str  # what the system said: "No space left on device", "connection refused"
    disk_full: bool = False  # ENOSPC/EDQUOT: the reports of this run cannot be trusted whole
    recover: str | None = None  # the exact command that recovers it, where one does

    def line(self) -> str:
        where = f"{self.path}: " if self.path and self.path not in self.error else ""
        verb = "not appended" if self.output == "history" else "not written"
        text = f"{self.output} {verb}: {where}{self.error}"
        return text + (f"; the run is in summary.json, recover it with: {self.recover}" if self.recover else "")


def internal_error_line(exc: BaseException) -> str:
    """A crash in hilt's own code as ``RunRecord.internal_error`` holds it: the exception's type and the first
    line of its message (the traceback goes to stderr, where a bug report copies it from)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def disk_full_line(problems: list[OutputProblem]) -> str | None:
    """One line for every output a full disk cost: the first file it met and the names of all it cost."""
    full = [p for p in problems if p.disk_full]
    if not full:
        return None
    first = next((p for p in full if p.path and "." in p.path.rsplit("/", 1)[-1]), full[0])
    names = sorted({p.path.rsplit("/", 1)[-1] for p in full if p.path and "." in p.path.rsplit("/", 1)[-1]})
    return (f"{first.path or first.output}: {first.error}: the disk is full"
            + (f"; not written: {', '.join(names)}" if names else ""))


def _names(nodeids: list[str], limit: int = 5) -> str:
    shown = ", ".join(n.split("::")[-1] if "::" in n else n for n in nodeids[:limit])
    return shown + (f" and {len(nodeids) - limit} more" if len(nodeids) > limit else "")


class RunRecord(BaseModel):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    started_at: str  # ISO 8601, UTC
    finished_at: str | None = None
    rig: str
    image: str | None = None
    image_url: str | None = None
    profile: str | None = None
    nodes: list[NodeRecord] = Field(default_factory=list)
    tests: list[TestRecord] = Field(default_factory=list)
    metrics: list[MetricRecord] = Field(default_factory=list)
    gate: VerdictRecord | None = None
    coverage: CoverageRecord | None = None
    node_profiles: dict[str, str] = Field(default_factory=dict)  # node -> its profile
    exit_code: int | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    ci_url: str | None = None  # the CI job of this run (hilt/util/ci_env.py); the report links it
    junit_path: str | None = None  # the JUnit XML this run wrote (pytest --junitxml, absolute)
    allure_results: str | None = None  # this run's Allure results directory (--alluredir, absolute)
    junit_url: str | None = None  # the published JUnit file (HILT_JUNIT_URL; http(s) only)
    allure_url: str | None = None  # the published Allure report (HILT_ALLURE_URL; http(s) only)
    rollout: dict[str, Any] | None = None
    """Set on a rollout's wave run: {"id", "wave", "look", "nodes", "control", "outcome", "reason"}"""
    interrupted: InterruptRecord | None = None
    """Set when a signal stopped the run (docs/ci.md, "How a run ends")."""
    lease_lost: str | None = None
    """The lease keeper's reason when the lease was lost during the run (it names the lease)."""
    internal_error: str | None = None
    """A crash in hilt's own code (or pytest's) during the run: the exception, one line."""
    output_problems: list[OutputProblem] = Field(default_factory=list)
    """Outputs of this run that were not written (a full disk, a history store that did not answer)."""

    @field_validator("started_at", "finished_at")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        """An ISO 8601 time (``2026-03-01T02:00:00Z``): the history orders and filters runs by it."""
        if value is not None:
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{value[:40]!r} is not an ISO 8601 time like 2026-03-01T02:00:00Z") from None
        return value
