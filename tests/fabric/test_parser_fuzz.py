"""Fuzz every parser with random bytes and mutated real captures (fixed seed, bounded count and size):
each input gives a result or ParseError, nothing else (no ValueError, OverflowError, RecursionError,
MemoryError, IndexError). Inputs stay under 64 KiB, so the caps in the parsers bound the work; the time per
input is measured in bench/parsers.py, not asserted here."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from hilt.errors import ParseError
from hilt.fabric.c2c import parse_c2c_status
from hilt.fabric.dcgm import parse_dcgm_diag, parse_dcgm_health
from hilt.fabric.devicetree import parse_devicetree
from hilt.fabric.gpuquery import parse_nvidia_smi_q
from hilt.fabric.imex import parse_imex_status
from hilt.fabric.numa import parse_numa, parse_sysfs_numa
from hilt.fabric.nvlink import (
    parse_nvlink_capabilities,
    parse_nvlink_errors,
    parse_nvlink_status,
    parse_nvlink_throughput,
)
from hilt.fabric.nvml import parse_nvml_report
from hilt.fabric.procinfo import parse_driver_version, parse_gpu_information
from hilt.fabric.snapshot import split_sections
from hilt.fabric.topo import parse_topology
from hilt.fabric.xid import parse_xids
from hilt.probes.nccl import parse_nccl_tests
from hilt.probes.nvbandwidth import parse_nvbandwidth
from hilt.probes.results import parse_result_lines

DATA = Path(__file__).resolve().parents[1] / "data"
SEED = 20261130
RANDOM_INPUTS = 25
MUTANTS_PER_FILE = 30
MAX_INPUT = 64 * 1024

HOSTILE_TOKENS = ["9" * 5000, "1e999", "-1e999", "nan", "inf", "-0", "N/A", "\x00", "\t\t", " " * 3000, "(UUID: ",
                  "GPU 99999999: x", "#  Rank 100000000 Group 0", "[" * 2000, "{" * 2000, '"', "|", "+---+---+",
                  "SUM x 1e999", "Running x.", "Waived: ", "GPU0: Fail", "Fail - GPU: 99999", "Link 0: ",
                  "\u00b2", "\u0663", "\r", "@@HILT@@ END x rc=" + "9" * 400, "HILT_RESULT {"]


def _corpus(*folders: str) -> list[str]:
    out = []
    for folder in folders:
        root = DATA / folder
        out += [p.read_text(errors="replace") for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".md"]
    return out


def _mutate(rng: random.Random, text: str) -> str:
    lines = text.splitlines(keepends=True) or [""]
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7)
        i = rng.randrange(len(lines))
        if op == 0:
            del lines[i]
            lines = lines or [""]
        elif op == 1:
            lines[i:i] = [lines[i]] * rng.randint(2, 40)
        elif op == 2:
            line = lines[i]
            at = rng.randint(0, len(line))
            lines[i] = line[:at] + rng.choice(HOSTILE_TOKENS) + line[at:]
        elif op == 3:
            tokens = lines[i].split(" ")
            tokens[rng.randrange(len(tokens))] = rng.choice(HOSTILE_TOKENS)
            lines[i] = " ".join(tokens)
        elif op == 4:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 5:
            lines = lines[:i + 1]
        else:
            line = lines[i]
            if line:
                at = rng.randrange(len(line))
                lines[i] = line[:at] + chr(rng.randrange(1, 0x2FF)) + line[at + 1:]
    return "".join(lines)[:MAX_INPUT]


def _random_text(rng: random.Random) -> str:
    kind = rng.randrange(3)
    n = rng.randint(0, 4096)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(n)).decode("latin-1")
    if kind == 1:
        alphabet = "0123456789 .:-|+=#\n\tGPULinkNVSUMRunning_abcx{}[]\",eE"
        return "".join(rng.choice(alphabet) for _ in range(n))
    return "\n".join(rng.choice(HOSTILE_TOKENS) for _ in range(rng.randint(1, 20)))


def _inputs(seed_texts: list[str], salt: int) -> list[str]:
    rng = random.Random(SEED + salt)
    out = [_random_text(rng) for _ in range(RANDOM_INPUTS)]
    for text in seed_texts:
        out += [_mutate(rng, text) for _ in range(MUTANTS_PER_FILE)]
    return out


TEXT_PARSERS: dict[str, tuple[Callable[[str], object], tuple[str, ...]]] = {
    "dcgm_diag": (parse_dcgm_diag, ("corpus/dcgm_diag",)),
    "dcgm_health": (parse_dcgm_health, ("corpus/dcgmi_discovery",)),
    "nvbandwidth": (parse_nvbandwidth, ("corpus/nvbandwidth",)),
    "nccl_tests": (parse_nccl_tests, ("nccl_tests",)),
    "nvlink_status": (parse_nvlink_status, ("corpus/nvlink",)),
    "nvlink_errors": (parse_nvlink_errors, ("corpus/nvlink",)),
    "nvlink_capabilities": (parse_nvlink_capabilities, ("corpus/nvlink",)),
    "nvlink_throughput": (parse_nvlink_throughput, ("corpus/nvlink",)),
    "topology": (parse_topology, ("corpus/topo",)),
    "gpu_information": (parse_gpu_information, ("corpus/proc",)),
    "driver_version": (parse_driver_version, ("corpus/proc",)),
    "xids": (parse_xids, ("corpus/proc",)),
    "nvml": (parse_nvml_report, ()),
    "c2c_status": (parse_c2c_status, ("corpus/c2c_mnnvl",)),
    "nvidia_smi_q": (parse_nvidia_smi_q, ("corpus/c2c_mnnvl", "corpus/nvidia_smi_q")),
    "imex_status": (parse_imex_status, ("corpus/c2c_mnnvl",)),
    "numa": (parse_numa, ("corpus/c2c_mnnvl",)),
    "sysfs_numa": (parse_sysfs_numa, ()),
    "sections": (split_sections, ()),
    "result_lines": (parse_result_lines, ()),
}

NVML_SEED = ('{"driver": "550.54.15", "nvml_version": "12.550", "gpus": [{"index": 0, "name": "H100", "uuid": "GPU-1", '
             '"pci_bus_id": "0000:17:00.0", "nvlinks": [{"index": 0, "active": true, "errors": {"replay": 0}}], '
             '"ecc": {"volatile": {"corrected": 0, "uncorrected": 0}}, "row_remap": {"pending": false}}]}')
EXTRA_SEEDS = {
    "nvml": [NVML_SEED],
    "sections": ["@@HILT@@ BEGIN topo\n\tGPU0\nGPU0\t X \n@@HILT@@ END topo rc=0\n@@HILT@@ BEGIN nvml\n{}\n"
                 "@@HILT@@ END nvml rc=1\n"],
    "dcgm_health": ["+---+---+\n| Health Monitor Report |\n+===+===+\n| Overall Health | Warning |\n"
                    "| GPU ID: 0 | Warning |\n|  | PCIe system: Warning - Detected more than 8 PCIe |\n"
                    "|  | replays per minute for GPU 0 : 13 |\n+---+---+\n"],
    "result_lines": ['[host:0]: HILT_RESULT {"kind": "allreduce", "size": 1024, "time_s": [0.1, 0.2]}\nnoise\n'],
    "sysfs_numa": ["/sys/devices/system/node/node0/cpulist:0-3\n"
                   "/sys/devices/system/node/node1/meminfo:Node 1 MemTotal:        1048576 kB\n"],
    "xids": ["[ 12.5] NVRM: Xid (PCI:0000:17:00): 79, pid=1, GPU has fallen off the bus.\n"],
    "driver_version": ["NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"],
}


@pytest.mark.parametrize("name", sorted(TEXT_PARSERS))
def test_fuzz_text_parser(name):
    parse, folders = TEXT_PARSERS[name]
    seeds = _corpus(*folders) + EXTRA_SEEDS.get(name, [])
    inputs = _inputs(seeds, sorted(TEXT_PARSERS).index(name))
    outcomes = {"result": 0, "ParseError": 0}
    for text in inputs:
        try:
            parse(text)
            outcomes["result"] += 1
        except ParseError:
            outcomes["ParseError"] += 1
        except Exception as exc:  # noqa: BLE001 - the point of the test: name the input that escaped
            pytest.fail(f"{name}: {type(exc).__name__}: {str(exc)[:200]} on input {text[:300]!r}")
    assert sum(outcomes.values()) == len(inputs) >= RANDOM_INPUTS


def test_fuzz_devicetree():
    rng = random.Random(SEED)
    parts = ["firmware", "nvlink", "gpu@0", "..", ".", "", "compatible", "reg", "x" * 300, "/"]
    for _ in range(300):
        files = {}
        for _ in range(rng.randint(0, 12)):
            path = "/".join(rng.choice(parts) for _ in range(rng.randint(0, 80)))
            files[path] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 16)))
        try:
            parse_devicetree(files)
        except ParseError:
            pass
