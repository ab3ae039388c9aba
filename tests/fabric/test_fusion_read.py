"""The coherent-fabric reader (hilt.fabric.fusionread) through the node protocol: LocalNode runs the real bash
script; the NVIDIA tools on PATH print real captures (tests/data/corpus/c2c_mnnvl) and exit as the tools do.
Where numactl is missing the script reads this machine's own /sys/devices/system/node."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from hilt.errors import NodeError
from hilt.fabric.fusionread import fusion_script, read_fusion_snapshot
from hilt.fabric.numa import cpu_list
from hilt.node.local import LocalNode

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus" / "c2c_mnnvl"
C2C = CORPUS / "DOUBTFUL-graphics-device-4gpu-nvidia-smi-c2c-s-5links-incrementing-values-fixture.txt"
NO_C2C = CORPUS / "DOUBTFUL-non-c2c-host-nvidia-smi-c2c-s-No-Devices-support-C2C-xgboost-fixture.txt"
QX = CORPUS / "gb300-4gpu-nvidia-smi-q-x-xml-fabric-clique32766-ids-scrubbed.xml"
TOPO = CORPUS / "gb200-4gpu-nvidia-smi-topo-m-nv18-8nic-numa-affinity-lists-gpu-numa-id-2-10-18-26.txt"
NUMACTL = CORPUS / "DOUBTFUL-gh200-numactl-hardware-9nodes-gpu-node1-97280MB-cpulist-linewrapped-kernel-commitmsg.txt"
IMEX = CORPUS / "gb200-nvl72-p6e-18node-nvidia-imex-ctl-N-all-READY-version-col-domain-UP.txt"
#: What the script needs from the system, linked into the test's own bin (so that a numactl or nvidia-smi of
#: this machine never answers in place of the captures).
SYSTEM_TOOLS = ("bash", "cat", "grep", "mktemp", "rm", "awk", "ip")


def _program(path: Path, body: str) -> None:
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A LocalNode whose PATH holds the system tools the script needs and, per test, NVIDIA's (printing captures)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in SYSTEM_TOOLS:
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))

    def install(c2c: Path | None = C2C, c2c_rc: int = 0, numactl: bool = True, imex_args: str = "-N") -> LocalNode:
        if c2c is not None:
            _program(bin_dir / "nvidia-smi", f'''case "$*" in
  "c2c -s") cat {c2c}; exit {c2c_rc};;
  "-q -x") cat {QX};;
  "topo -m") cat {TOPO};;
  *) echo "Invalid combination of input arguments: $*" >&2; exit 2;;
esac
''')
        if numactl:
            _program(bin_dir / "numactl", f'[ "$1" = -H ] && cat {NUMACTL}\n')
        _program(bin_dir / "nvidia-imex-ctl", f'[ "$*" = "{imex_args}" ] && cat {IMEX} || {{ echo "bad args: $*"; '
                                                 'exit 1; }\n')
        _program(bin_dir / "hostname", '[ "$1" = -I ] && echo "172.31.49.228 fe80::1 "\n')
        return LocalNode("tray3", address="172.31.49.228")

    return install


def test_one_round_trip_reads_every_tool(node):
    snap = read_fusion_snapshot(node(), imex=True)
    assert sorted(snap.c2c()) == [0, 1, 2, 3] and len(snap.c2c()[3].links) == 5
    assert [q.fabric.clique_id for q in snap.gpu_queries()] == [32766] * 4
    assert snap.gpu_numa_ids() == {0: 2, 1: 10, 2: 18, 3: 26}
    numa = snap.numa()
    assert [n.id for n in numa] == list(range(9)) and numa[1].memory_mb == 97280
    imex = snap.imex()
    assert imex.domain_state == "UP" and len(imex.nodes) == 18
    assert snap.addresses() == ["172.31.49.228", "fe80::1"]
    assert snap.raw("c2c") == C2C.read_text() + "\n"  # kept for the report's attachment


def test_no_c2c_exit_3_is_an_answer_not_an_error(node):
    snap = read_fusion_snapshot(node(c2c=NO_C2C, c2c_rc=3))
    assert snap.sections["c2c"].rc == 3 and snap.c2c() == {}
    with pytest.raises(NodeError, match=r"nvidia-imex-ctl -N failed \(rc=\?\): not collected"):
        snap.imex()  # not asked for: the profile names no IMEX


def test_a_failing_c2c_command_is_a_node_error_naming_it(node, tmp_path):
    error = tmp_path / "old-driver.txt"
    error.write_text("Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n")
    snap = read_fusion_snapshot(node(c2c=error, c2c_rc=2))
    with pytest.raises(NodeError, match=r"tray3: nvidia-smi c2c -s failed \(rc=2\): Invalid combination"):
        snap.c2c()


def test_without_nvidia_smi_the_memory_nodes_still_read(node):
    snap = read_fusion_snapshot(node(c2c=None))
    assert snap.gpu_numa_ids() is None  # no topo -m: test_coherent_memory counts the nodes instead
    with pytest.raises(NodeError, match=r"tray3: nvidia-smi -q -x failed \(rc=127\)"):
        snap.gpu_queries()
    assert [n.id for n in snap.numa()] == list(range(9))


@pytest.mark.skipif(not Path("/sys/devices/system/node/node0").is_dir(), reason="this kernel shows no NUMA nodes")
def test_without_numactl_the_kernels_sysfs_nodes_are_read(node):
    snap = read_fusion_snapshot(node(numactl=False))
    assert snap.raw("numa").startswith("/sys/devices/system/node/node")
    nodes = snap.numa()
    online = sorted(int(p.name[4:]) for p in Path("/sys/devices/system/node").glob("node[0-9]*"))
    assert [n.id for n in nodes] == online
    first = Path("/sys/devices/system/node/node0/cpulist").read_text()
    assert nodes[0].cpus == cpu_list(first)
    mem_kb = int(Path("/sys/devices/system/node/node0/meminfo").read_text().split("MemTotal:")[1].split()[0])
    assert nodes[0].memory_mb == mem_kb // 1024 and nodes[0].memory_mb > 0


def test_imex_config_from_the_profile_is_passed_quoted(node):
    assert "nvidia-imex-ctl -N -c /etc/nvidia-imex/config_q1_cr1.cfg" in fusion_script(
        True, "/etc/nvidia-imex/config_q1_cr1.cfg")
    snap = read_fusion_snapshot(node(imex_args="-N -c /opt/imex.cfg"), imex=True, imex_config="/opt/imex.cfg")
    assert snap.imex().domain_state == "UP"


def test_a_node_that_runs_no_script_is_named():
    class Silent(LocalNode):
        def run_script(self, script, timeout=60, check=True):
            return self.run(["bash", "-c", "echo boom >&2; exit 1"], check=False)

    with pytest.raises(NodeError, match="tray9: the coherent-fabric script printed no sections .exit 1.: boom"):
        read_fusion_snapshot(Silent("tray9"))


def test_script_has_no_profile_text_unquoted():
    assert "-c '/opt/x; rm -rf /'" in fusion_script(True, "/opt/x; rm -rf /")
    assert "nvidia-imex-ctl -N\n" in fusion_script(True) and "imex" not in fusion_script(False)
