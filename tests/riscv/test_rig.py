"""sim-riscv end to end: real RISC-V guests booted through sushy-emulator BMCs, checked by the real suites."""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET

from hilt.bmc import Bmc
from hilt.node.ssh import Node
from hilt.rig.config import NodeConfig
from hilt.sim import state
from hilt.sim.riscv.machine import ssh_banner
from hilt.sim.riscv.provider import riscv_down, riscv_up
from hilt.util.processes import pid_alive
from tests.support.riscv import run_session


def test_two_guests_boot_and_pass_boot_devicetree_and_coherent_memory_suites(tmp_path):
    """...and each guest's identity is proven from its device tree's serial-number against its BMC, its real
    kernel's taint and lockdown state are reported, and its real kernel shows the GPUs' memory as CPU-less NUMA
    nodes in /sys/devices/system/node (no numactl on the guest: the suite reads the kernel's files)."""
    s = run_session(tmp_path, nodes=2, suites=("suites/test_boot.py", "suites/test_devicetree.py",
                                               "suites/test_coherent_memory.py",
                                               "suites/test_trust.py::test_kernel_lockdown_and_taint"))
    assert s.code == 0, s.output[-4000:]
    for suite, test in (("boot", "test_image_identity"), ("boot", "test_fresh_boot"),
                        ("devicetree", "test_devicetree_nvlink_nodes"), ("coherent_memory", "test_coherent_memory")):
        for node in ("node1", "node2"):
            assert f"PASSED suites/test_{suite}.py::{test}[{node}]" in s.output, s.output[-4000:]
    numa = [p for p in (s.reports / "allure-results").glob("*-attachment*")
            if "/sys/devices/system/node/node4/meminfo:Node 4 MemTotal:" in p.read_text(errors="replace")]
    assert numa, "the guest kernel's own node files are attached to test_coherent_memory"
    listing = numa[0].read_text()
    assert "/sys/devices/system/node/node0/cpulist:0\n" in listing  # node 0 holds the CPU; nodes 1-4 none
    assert not re.search(r"node[1-4]/cpulist", listing)
    summary = json.loads((s.reports / "summary.json").read_text())
    for record in summary["nodes"]:
        identity = record["identity"]
        assert identity["status"] == "verified", identity
        assert identity["host"] == {"uuid": None, "serial": f"SIM-RV-{record['name']}", "source": "devicetree"}
        assert identity["bmc_system"]["serial"] == f"SIM-RV-{record['name']}"
    kernel = [json.loads(p.get("value")) for p in ET.parse(s.reports / "junit.xml").iter("property")
              if p.get("name") == "hilt.kernel"]
    # the tinyconfig kernel (hilt/sim/riscv/kernel.config): no securityfs (so no lockdown file), no modules
    assert len(kernel) == 2 and all(k["lockdown"] is None and k["sig_enforce"] is None for k in kernel), kernel
    assert all(isinstance(k["taint"], int) for k in kernel), kernel


def test_firmware_without_nvlink1_fails_devicetree_naming_it(tmp_path):
    s = run_session(tmp_path, "--image", "dt-missing", nodes=1)
    assert s.code != 0
    assert "PASSED suites/test_boot.py::test_fresh_boot[node1]" in s.output  # the image did boot
    assert "FAILED suites/test_devicetree.py::test_devicetree_nvlink_nodes[node1]" in s.output
    assert "device tree: nvlink-1 missing" in s.output
    assert "nvlink-0 missing" not in s.output and "nvlink-2 missing" not in s.output


def test_firmware_without_gpu_memory_nodes_fails_coherent_memory_on_the_real_kernel(tmp_path):
    """The same kernel booted with a firmware that hands the OS no GPU memory: one NUMA node, with the CPU."""
    s = run_session(tmp_path, "--image", "coherent-memory-missing", nodes=1,
                    suites=("suites/test_boot.py", "suites/test_devicetree.py", "suites/test_coherent_memory.py"))
    assert s.code != 0
    assert "PASSED suites/test_boot.py::test_fresh_boot[node1]" in s.output  # the image did boot
    assert "PASSED suites/test_devicetree.py::test_devicetree_nvlink_nodes[node1]" in s.output
    assert "FAILED suites/test_coherent_memory.py::test_coherent_memory[node1]" in s.output
    assert ("coherent memory: expected 4 CPU-less NUMA nodes of at least 8 MB (one per GPU), found 0; "
            "no CPU-less node with memory") in s.output, s.output[-4000:]


def test_panicking_image_fails_boot_with_the_console_tail(tmp_path):
    s = run_session(tmp_path, "--image", "broken", nodes=1, boot_timeout_s=25,
                    suites=("suites/test_boot.py",))
    assert s.code != 0
    assert "ERROR at setup of test_image_identity[node1]" in s.output
    assert "did not come up" in s.output
    panic = "Kernel panic - not syncing: Attempted to kill init!"
    attachments = (s.reports / "allure-results").glob("*-attachment*")
    attached = [p for p in attachments if panic in p.read_text(errors="replace")]
    assert attached, "the serial console tail with the panic is attached to the failing test"


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} not within {timeout}s")


def test_bmc_power_drives_the_guest(tmp_path):
    """Virtual media boot, restart (new boot id, kernel really rebooted), power off (SSH gone, QEMU gone)."""
    rig = riscv_up("riscv-bmc-test", nodes=1, images=["good"], state_dir=tmp_path / "sim")
    try:
        cfg = NodeConfig.model_validate(rig["nodes"]["node1"])
        image_url = rig["images"]["good"]["url"]
        bmc = Bmc(cfg.bmc.url, "hilt", cfg.bmc.password.resolve(), system_id=cfg.bmc.system_id,
                  verify=cfg.bmc.verify)
        with bmc:
            bmc.boot_from_virtual_media(image_url)
            _wait(lambda: ssh_banner(cfg.ssh.port), 60, "SSH after power on")
            with Node("node1", cfg) as node:
                first = node.boot_id()
                assert node.run(["uname", "-m"]).stdout.strip() == "riscv64"
            bmc.restart()
            time.sleep(1.5)
            _wait(lambda: ssh_banner(cfg.ssh.port), 60, "SSH after restart")
            with Node("node1", cfg) as node:
                second = node.boot_id()
                uptime = float(node.run(["cat", "/proc/uptime"]).stdout.split()[0])
            assert second != first and uptime < 30
            console = open(cfg.console).read()
            assert console.count("Linux version 6.1") == 2
            bmc.power_off()
            _wait(lambda: not ssh_banner(cfg.ssh.port), 15, "SSH gone after power off")
            pids = (state.read_json(tmp_path / "sim" / "state.json") or {}).get("pids", {})
            assert [p for p in pids if pid_alive(int(p)) and "qemu" in _cmdline(int(p))] == []
    finally:
        riscv_down("riscv-bmc-test")
    assert state.lookup("riscv-bmc-test") is None


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    except OSError:
        return ""
