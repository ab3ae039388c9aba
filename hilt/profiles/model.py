"""Platform profiles: the fabric a platform was designed to have, one YAML file per platform.

Profiles live in `hilt/profiles/<name>.yaml`; rigs.yaml names one per node. Every section is strict,
`probes:` included (its schema is :mod:`hilt.probes.plan`): an unknown key or a wrong type is a
``file:line: field: problem`` error, because a key that is silently ignored is a measurement that silently
never happens. A new section is one model class and one field of :class:`Profile`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hilt.errors import ConfigError
from hilt.fabric.trust import LOCKDOWN_MODES, TAINT_LETTERS
from hilt.probes.plan import ProbesSpec
from hilt.util.safe_yaml import YamlDocument, load_file

PROFILES_DIR = Path(__file__).resolve().parent
_PAIR = re.compile(r"^GPU(\d+)-GPU(\d+)$")
_LINK_VALUE = re.compile(r"^(NV\d+|PIX|PXB|PHB|NODE|SYS|SOC|PSB)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopologySpec(_Strict):
    default_link: str | None = None
    """The link between every GPU pair not listed in `pairs` (e.g. NV18 on an NVSwitch baseboard)."""
    pairs: dict[str, str] = Field(default_factory=dict)
    """Exceptions to the default, keyed "GPUi-GPUj" (either order), e.g. the DGX-1 hybrid cube mesh."""

    @field_validator("default_link")
    @classmethod
    def _known_default(cls, v: str | None) -> str | None:
        if v is not None and not _LINK_VALUE.match(v):
            raise ValueError(f"{v!r} is not a topology value (NV<n>, PIX, PXB, PHB, NODE, SYS, SOC)")
        return v

    @field_validator("pairs")
    @classmethod
    def _known_pairs(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not _PAIR.match(key):
                raise ValueError(f"pair key {key!r} must look like 'GPU0-GPU1'")
            if not _LINK_VALUE.match(str(value)):
                raise ValueError(f"pair {key}: {value!r} is not a topology value (NV<n>, PIX, PXB, ...)")
        return v


class NvlinkSpec(_Strict):
    active_links_per_gpu: int = Field(ge=0)
    min_link_speed_gbps: float | None = Field(default=None, gt=0)
    inactive_links: list[int] = Field(default_factory=list)
    """Links the design leaves down (e.g. 4,5,10,11,16,17 on bridged H100 PCIe); not reported."""


class DtNodeSpec(_Strict):
    compatible: str | None = None


class DevicetreeSpec(_Strict):
    parent: str = "firmware"
    """Node under /sys/firmware/devicetree/base that holds the NVLink nodes."""
    nodes: dict[str, DtNodeSpec]
    node_prefix: str = "nvlink-"
    """Nodes under `parent` with this prefix that the profile does not list are reported as unexpected."""


_NVB_TESTCASE = re.compile(r"^[a-z0-9_]{1,120}$")


class DcgmSpec(_Strict):
    """`dcgmi diag` on every node of this platform (suites test_dcgm.py; docs/fabric.md)."""

    level: int = Field(default=1, ge=1, le=4)
    """`dcgmi diag -r <level>`: 1 quick (seconds), 2 medium (~2 min), 3 long (~30 min), 4 extended."""
    allow_warn: list[str] = Field(default_factory=list)
    """DCGM tests whose "Warn" result is accepted (names as DCGM prints them, any case)."""
    allow_skip: list[str] = Field(default_factory=list)
    """DCGM tests whose "Skip" or "Not Run" is accepted; any other skipped test fails: a PASS is earned."""
    timeout_s: float = Field(default=600.0, gt=0)


class NvbandwidthSpec(_Strict):
    """nvbandwidth testcases measured on every node, each a metric `nvbandwidth.<testcase>` (docs/probes.md)."""

    testcases: list[str] = Field(default_factory=lambda: ["device_to_device_memcpy_read_ce"], min_length=1)
    timeout_s: float = Field(default=300.0, gt=0)

    @field_validator("testcases")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _NVB_TESTCASE.match(name):
                raise ValueError(f"{name!r} is not an nvbandwidth testcase name (e.g. device_to_device_memcpy_read_ce)")
        return v


class FirmwareSpec(_Strict):
    """Versions this platform is compatible with, per component; an unlisted component is recorded, not checked."""

    bios: list[str] | None = None
    """System BIOS/UEFI (Redfish ``BiosVersion``)."""
    bmc: list[str] | None = None
    """BMC firmware (Redfish Manager ``FirmwareVersion``)."""
    vbios: list[str] | None = None
    """GPU VBIOS (NVML), every GPU."""
    inforom: list[str] | None = None
    """GPU InfoROM image (NVML ``nvmlDeviceGetInforomImageVersion``), every GPU."""


class TrustSpec(_Strict):
    """How a node of this platform must boot before its verdict counts (suite test_trust.py; docs/trust.md)."""

    secure_boot: bool = True
    """Secure Boot required (True) or not (False); either way the BMC's and the OS's views must agree."""
    lockdown: list[str] | None = None
    """Kernel lockdown modes accepted (none, integrity, confidentiality); None: recorded, not checked."""
    signature_enforcement: bool = False
    """``sig_enforce`` must be Y: the kernel refuses unsigned modules."""
    allowed_taint: list[str] = Field(default_factory=lambda: ["P", "O"])
    """Taint letters accepted (an NVIDIA node is P and O by design); any other set bit fails."""
    modules: list[str] = Field(default_factory=lambda: ["nvidia"])
    """Kernel modules whose signature is checked."""
    module_signers: list[str] | None = None
    """Signers accepted for ``modules`` (``modinfo -F signer``); None: signatures recorded, not checked."""
    firmware: FirmwareSpec = FirmwareSpec()

    @field_validator("lockdown")
    @classmethod
    def _modes(cls, v: list[str] | None) -> list[str] | None:
        for mode in v or []:
            if mode not in LOCKDOWN_MODES:
                raise ValueError(f"{mode!r} is not a lockdown mode ({', '.join(LOCKDOWN_MODES)})")
        return v

    @field_validator("allowed_taint")
    @classmethod
    def _letters(cls, v: list[str]) -> list[str]:
        for letter in v:
            if letter not in TAINT_LETTERS:
                raise ValueError(f"{letter!r} is not a kernel taint letter ({''.join(sorted(TAINT_LETTERS))})")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TrustSpec:
        if self.signature_enforcement and "E" in self.allowed_taint:
            raise ValueError("allowed_taint: E (unsigned module) cannot be allowed when signature_enforcement is on")
        return self


_HOST_TESTCASE = re.compile(r"^(host_to_device|device_to_host)_[a-z0-9_]{1,100}$")


class C2cBandwidthSpec(_Strict):
    """nvbandwidth's copies between host memory and each GPU, through the coherent link: one metric
    ``c2c.<testcase>`` per GPU (label ``gpu``), gated per node (test_c2c_bandwidth; docs/probes.md)."""

    testcases: list[str] = Field(default_factory=lambda: ["host_to_device_memcpy_ce", "device_to_host_memcpy_ce"],
                                 min_length=1)
    timeout_s: float = Field(default=300.0, gt=0)

    @field_validator("testcases")
    @classmethod
    def _host_device(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _HOST_TESTCASE.match(name):
                raise ValueError(f"{name!r} is not an nvbandwidth host/device testcase (host_to_device_memcpy_ce, "
                                 "device_to_host_memcpy_ce, ..._sm, ..._bidirectional_...)")
        return v


class C2cSpec(_Strict):
    """NVLink-C2C between the CPU and every GPU, as `nvidia-smi c2c -s` shows it (test_c2c; docs/fabric.md)."""

    links_per_gpu: int = Field(ge=1)
    """C2C links every GPU has, all active (Grace Blackwell: 5 per GPU)."""
    min_link_gbps: float | None = Field(default=None, gt=0)
    """The slowest speed accepted on any link, in GB/s as `c2c -s` prints it; None: speeds recorded, not checked."""
    bandwidth: C2cBandwidthSpec | None = None
    """The copy probe through the link; without it test_c2c_bandwidth skips."""


class CoherentMemorySpec(_Strict):
    """The GPU memory a coherent host exposes to the OS: one CPU-less NUMA node per GPU, of at least
    ``min_node_mb`` (test_coherent_memory; docs/fabric.md)."""

    min_node_mb: int = Field(ge=1)
    """The smallest size accepted for a GPU's memory node, in MB as numactl prints it."""
    addressing_mode: str | None = "ATS"
    """`nvidia-smi -q` Addressing Mode on every GPU (ATS on Grace); None: not checked (a host without nvidia-smi)."""
    c2c_mode: str | None = "Enabled"
    """`nvidia-smi -q` GPU C2C Mode on every GPU; None: not checked."""


#: Fabric Health rows and the values that mean healthy, by row name as `nvidia-smi -q` prints it. Incorrect
#: Configuration reads "None" on GB300 and "N/A" on GB200 drivers when nothing is wrong; Partition Assigned reads
#: "N/A" on the GB300 capture (tests/data/corpus/c2c_mnnvl). A row not listed passes when it reads N/A, None or
#: False, the words drivers print for "no problem", and fails with anything else.
HEALTHY_ROWS: dict[str, tuple[str, ...]] = {
    "Summary": ("Healthy",),
    "Bandwidth": ("Full",),
    "Route Recovery in progress": ("False",),
    "Route Unhealthy": ("False",),
    "Access Timeout Recovery": ("False",),
    "Incorrect Configuration": ("None", "N/A"),
    "Partition Assigned": ("N/A", "True"),
}
HEALTHY_UNLISTED = ("N/A", "None", "False")


class NvlinkDomainSpec(_Strict):
    """The multi-node NVLink domain a node of this platform joins (an NVL72 rack's trays): fabric trained and healthy
    on every GPU, one ClusterUUID and clique across the lease, IMEX up with every node ready (test_nvlink_domain)."""

    fabric_state: str = "Completed"
    """`nvidia-smi -q` Fabric State every GPU must show."""
    fabric_status: str = "Success"
    health: dict[str, list[str]] = Field(default_factory=dict)
    """Health rows whose accepted values differ from HEALTHY_ROWS, e.g. {"Partition Assigned": ["True"]}."""
    multi_node: bool = True
    """A multi-node domain is expected: every GPU must show a clique and a non-zero ClusterUUID."""
    imex: bool = True
    """IMEX must run: `nvidia-imex-ctl -N` on every node says Domain State UP, every node READY, every pair C."""
    imex_config: str | None = None
    """`nvidia-imex-ctl -N -c <file>` where IMEX runs with a config other than /etc/nvidia-imex/config.cfg."""

    @field_validator("imex_config")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith("/") or any(c.isspace() for c in v)):
            raise ValueError(f"{v!r} must be an absolute path without blanks (e.g. /etc/nvidia-imex/config.cfg)")
        return v

    def accepted(self, row: str) -> tuple[str, ...]:
        """The values of Health row ``row`` that mean healthy."""
        if row in self.health:
            return tuple(self.health[row])
        return HEALTHY_ROWS.get(row, HEALTHY_UNLISTED)


class KubernetesSpec(_Strict):
    """Where this platform's nodes keep what the kubelet believes (suite test_kubernetes.py; docs/kubernetes.md)."""

    resource: str = "nvidia.com/gpu"
    """The extended resource the GPU device plugin advertises."""
    device_plugin_socket: str = "/var/lib/kubelet/device-plugins/nvidia-gpu.sock"
    """The device plugin's v1beta1 socket (NVIDIA's k8s-device-plugin: nvidia-gpu.sock)."""
    pod_resources_socket: str = "/var/lib/kubelet/pod-resources/kubelet.sock"
    """The kubelet's pod-resources v1 socket."""
    gfd_features_file: str = "/etc/kubernetes/node-feature-discovery/features.d/gfd"
    """GPU Feature Discovery's NFD feature file (GFD's --output-file); absent on the node: GFD is not checked."""

    @field_validator("device_plugin_socket", "pod_resources_socket", "gfd_features_file")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/") or "\n" in v or "\0" in v:
            raise ValueError(f"{v!r} is not an absolute path on the node")
        return v


class Profile(_Strict):
    name: str
    description: str = ""
    gpu_count: int = Field(ge=1)
    gpu_name: str | None = None
    driver: str | None = None
    topology: TopologySpec
    nvlink: NvlinkSpec
    nic_locality: dict[str, dict[str, str]] | None = None
    """{"GPU0": {"mlx5_0": "PIX"}}: the cell expected between a GPU and a NIC (column or device name)."""
    devicetree: DevicetreeSpec | None = None
    dcgm: DcgmSpec | None = None
    """`dcgmi diag` level and accepted warnings/skips; without it test_dcgm skips (the platform names none)."""
    nvbandwidth: NvbandwidthSpec | None = None
    """nvbandwidth testcases; without it the nvbandwidth probe skips."""
    trust: TrustSpec | None = None
    """Secure Boot, lockdown, taint, module signers, firmware matrix; without it test_trust skips."""
    c2c: C2cSpec | None = None
    """NVLink-C2C links per GPU and their speed, and the copy probe through them; without it test_c2c skips."""
    coherent_memory: CoherentMemorySpec | None = None
    """The GPU memory as CPU-less NUMA nodes, ATS, C2C mode; without it test_coherent_memory skips."""
    nvlink_domain: NvlinkDomainSpec | None = None
    """Fabric state and health, one clique and ClusterUUID, IMEX; without it test_nvlink_domain skips."""
    kubernetes: KubernetesSpec | None = None
    """The device plugin, kubelet and GFD sockets and files; without it test_kubernetes skips."""
    probes: ProbesSpec = ProbesSpec()
    """The probe plan (docs/probes.md); nccl-tests runs on every GPU of the node unless it says otherwise."""

    @model_validator(mode="before")
    @classmethod
    def _every_gpu(cls, data: Any) -> Any:
        """nccl-tests' ``-g`` defaults to the profile's GPU count: a plan measures the whole node."""
        if not isinstance(data, dict) or not isinstance(data.get("gpu_count"), int):
            return data
        probes = data.get("probes")
        probes = {} if probes is None else probes
        if not isinstance(probes, dict):
            return data
        nccl = probes.get("nccl")
        nccl = {} if nccl is None else nccl
        if isinstance(nccl, dict) and "gpus_per_node" not in nccl and "gpus-per-node" not in nccl:
            nccl = {**nccl, "gpus_per_node": data["gpu_count"]}
        return {**data, "probes": {**probes, "nccl": nccl}}

    @model_validator(mode="after")
    def _pairs_complete(self) -> Profile:
        for key in self.topology.pairs:
            a, b = (int(x) for x in _PAIR.match(key).groups())  # type: ignore[union-attr]
            if a == b or max(a, b) >= self.gpu_count:
                raise ValueError(f"topology.pairs: {key} is not a pair of distinct GPUs below {self.gpu_count}")
        if self.topology.default_link is None:
            missing = [f"GPU{a}-GPU{b}" for a, b in self.gpu_pairs() if self._pair_value(a, b) is None]
            if missing:
                raise ValueError(f"topology: no default_link and no entry for {', '.join(missing[:6])}")
        nccl = self.probes.nccl
        if nccl is not None and nccl.gpus_per_node is not None and nccl.gpus_per_node > self.gpu_count:
            raise ValueError(f"probes.nccl.gpus_per_node: {nccl.gpus_per_node} is more than the profile's "
                             f"gpu_count ({self.gpu_count})")
        return self

    def gpu_pairs(self) -> list[tuple[int, int]]:
        return [(a, b) for a in range(self.gpu_count) for b in range(a + 1, self.gpu_count)]

    def _pair_value(self, a: int, b: int) -> str | None:
        pairs = self.topology.pairs
        return pairs.get(f"GPU{a}-GPU{b}") or pairs.get(f"GPU{b}-GPU{a}")

    def expected_link(self, a: int, b: int) -> str:
        """The expected topology cell between GPU a and GPU b."""
        value = self._pair_value(a, b) or self.topology.default_link
        assert value is not None  # guaranteed by _pairs_complete
        return value


def known_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def describe_validation(doc: YamlDocument, exc: ValidationError) -> str:
    """``file:line: field: problem`` for the first problem, on one line, counting the others."""
    out = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        kind = error["type"]
        problem = ("unknown field" if kind == "extra_forbidden" else
                   "missing required field" if kind == "missing" else error["msg"].removeprefix("Value error, "))
        out.append(f"{doc.source}:{doc.line(loc) or '?'}: {where}: {problem}")
    more = f" (and {len(out) - 1} more problem{'s' * (len(out) > 2)})" if len(out) > 1 else ""
    return out[0] + more


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a profile by name (hilt/profiles/<name>.yaml) or by path; ConfigError names file, line and field."""
    text_name = str(name_or_path)
    candidate = Path(text_name)
    if text_name.endswith((".yaml", ".yml")) or "/" in text_name or candidate.exists():
        path = candidate
    else:
        path = PROFILES_DIR / f"{text_name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown profile {text_name!r}: known profiles are {', '.join(known_profiles())}")
    doc = load_file(path)  # duplicate keys, alias bombs and non-UTF-8 are refused there, naming the line
    data = doc.data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: a profile is a mapping with gpu_count, topology, nvlink, ...")
    data.setdefault("name", path.stem)
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation(doc, exc)) from None
