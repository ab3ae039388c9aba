"""Render a simulated node's fabric, read it back through the real snapshot script and the real NVML
collector (run by bash and python with the simulated nvidia-smi, dmesg and pynvml first on the paths),
and check that each fault produces exactly its expected differences."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hilt.fabric.compare import (
    compare_devicetree,
    compare_inventory,
    compare_nvlink,
    compare_nvml,
    compare_topology,
)
from hilt.fabric.devicetree import parse_devicetree
from hilt.fabric.procinfo import parse_driver_version, parse_gpu_information
from hilt.fabric.snapshot import FabricSnapshot, snapshot_script, split_sections
from hilt.fabric.xid import check_xids
from hilt.profiles.model import load_profile
from hilt.sim.fabric_view import write_fabric_view


def _read(root: Path, profile_name: str, spec: dict) -> tuple[FabricSnapshot, dict]:
    profile = load_profile(profile_name)
    write_fabric_view(root, profile, spec)
    env = dict(os.environ, PATH=f"{root}/usr/local/bin:{os.environ['PATH']}", PYTHONPATH=f"{root}/opt/hilt-sim/python")
    out = subprocess.run(
        ["bash", "-s"],
        input=snapshot_script(sys.executable),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    snap = FabricSnapshot("sim-node", split_sections(out.stdout))
    base = root / "sys/firmware/devicetree/base"
    dt = parse_devicetree({str(f.relative_to(base)): f.read_bytes() for f in base.rglob("*") if f.is_file()})
    gpus = [parse_gpu_information(p.read_text()) for p in sorted(root.glob("proc/driver/nvidia/gpus/*/information"))]
    driver = parse_driver_version((root / "proc/driver/nvidia/version").read_text())
    checks = {
        "topology": compare_topology(profile, snap.topology()),
        "nvlink": compare_nvlink(profile, snap.nvlink_status()),
        "devicetree": compare_devicetree(profile, dt if base.exists() else None),
        "nvml": compare_inventory(profile, driver=driver, gpus=gpus)
        + compare_nvml(profile, snap.nvml())
        + check_xids(snap.xids()),
    }
    return snap, checks


GOOD = {"topology": [], "nvlink": [], "devicetree": [], "nvml": []}


@pytest.mark.parametrize("profile", ["sim-4gpu", "sim-riscv-nvlink"])
def test_good_image_passes_everything(tmp_path, profile):
    snap, checks = _read(tmp_path, profile, {})
    assert checks == GOOD
    assert "\t X \t" in snap.raw("topo")  # real tab layout, not a re-spaced paste
    assert snap.nvml().gpus[0].pci_bus_id == "00000000:18:00.0"


@pytest.mark.parametrize(
    ("spec", "suite", "expected"),
    [
        ({"links_down": [[2, 3]]}, "nvlink", ["GPU2 link 3 inactive (expected 4 active)"]),
        ({"topo_overrides": {"GPU1-GPU3": "PIX"}}, "topology", ["GPU1-GPU3: expected NV4, found PIX"]),
        ({"dt_missing": ["nvlink-3"]}, "devicetree", ["device tree: nvlink-3 missing"]),
        (
            {"driver": "535.129.03"},
            "nvml",
            ["driver: expected 550.54.15, found 535.129.03"],
        ),
        (
            {"xids": [79]},
            "nvml",
            ["Xid 79 on PCI:0000:18:00 (1x, line 5): pid='<unknown>', name=<unknown>, GPU has fallen off the bus."],
        ),
    ],
)
def test_each_fault_fails_exactly_its_check(tmp_path, spec, suite, expected):
    _, checks = _read(tmp_path, "sim-riscv-nvlink", spec)
    assert checks == {**GOOD, suite: expected}


def test_error_counters_reach_both_nvidia_smi_and_nvml(tmp_path):
    snap, _ = _read(tmp_path, "sim-4gpu", {"nvlink_errors": {"GPU0": {"2": {"crc_flit": 5, "recovery": 1}}}})
    link = snap.nvlink_errors()[0].link(2)
    assert (link.recovery, link.crc) == (1, 5)
    assert snap.nvml().gpus[0].nvlinks[2].errors == {"replay": 0, "recovery": 1, "crc_flit": 5, "crc_data": 0}


def test_sim_nic_legend_and_locality(tmp_path):
    snap, _ = _read(tmp_path, "sim-4gpu", {})
    t = snap.topology()
    assert t.nic_names == {"NIC0": "mlx5_0", "NIC1": "mlx5_1"} and t.link("GPU2", "mlx5_1") == "PIX"


def test_collector_reports_nvml_failure_as_json(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(tmp_path))  # a pynvml that cannot find its library
    (tmp_path / "pynvml.py").write_text(
        "class NVMLError(Exception): pass\ndef nvmlInit():\n    raise NVMLError('NVML Shared Library Not Found')\n"
    )
    collector = Path(__file__).resolve().parents[2] / "hilt/fabric/scripts/collect_nvml.py"
    out = subprocess.run([sys.executable, str(collector)], capture_output=True, text=True, env=env)
    assert out.returncode == 1
    from hilt.fabric.nvml import parse_nvml_report

    assert parse_nvml_report(out.stdout).error == "NVMLError: NVML Shared Library Not Found"
