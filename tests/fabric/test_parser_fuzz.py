"""Fuzz every parser with random bytes and mutated real captures (fixed seed, bounded count and size):
each input gives a result or ParseError, nothing else (no ValueError, OverflowError, RecursionError,
MemoryError, IndexError), and a result holds only finite numbers (a ``1e999`` or ``nan`` in the text never
becomes a measurement). Then the answers: a real capture mutated without changing its facts (CRLF, blanks,
interleaved lines the parser promises to skip) parses to the same facts, or raises ParseError. Inputs stay under
64 KiB, so the caps in the parsers bound the work; the time per input is measured in bench/parsers.py, not
asserted here."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel

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
            result = parse(text)
            outcomes["result"] += 1
        except ParseError:
            outcomes["ParseError"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - the point of the test: name the input that escaped
            pytest.fail(f"{name}: {type(exc).__name__}: {str(exc)[:200]} on input {text[:300]!r}")
        bad = [(where, x) for where, x in _numbers(_facts(result)) if not math.isfinite(x)]
        assert not bad, f"{name} read a non-finite number at {bad[:3]} from {text[:300]!r}"
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


# --- answers: a mutation that keeps the facts keeps the answer ----------------------------------------------------
#
# Each real capture that parses is mutated the ways real output arrives without its facts changing: CRLF line ends
# (a Windows paste, a serial console), blanks at line ends (editors, terminals), extra blank lines and a missing or
# doubled final newline (pastes), and, where the parser promises to skip them, lines interleaved by other writers
# (NCCL INFO lines in nccl-tests output, other kernel messages among Xids, pasted elisions, torchrun chatter) or
# tabs expanded to spaces. The parse of a mutant must give the same facts as the original's, or raise ParseError
# (refusing is allowed; a different answer is not). Facts leave out where a fact was read: line numbers and the
# lines skipped as unreadable.

MUTANTS_PER_KIND = 4
DIAGNOSTIC_FIELDS = frozenset({"line_no", "skipped"})
NCCL_LOG = ["gpu-node-07:31544:31587 [0] NCCL INFO Channel 00/02 :    0   1",
            "gpu-node-07:31544:31587 [1] NCCL INFO Connected all rings",
            "gpu-node-07:31544:31601 [0] NCCL WARN NET/Plugin: Failed to find ncclNetPlugin_v8 symbol."]
KERNEL_LOG = ["[ 7.123456] usb 1-1: new high-speed USB device number 2 using xhci_hcd",
              "[ 8.000001] EXT4-fs (nvme0n1p2): mounted filesystem with ordered data mode.",
              "[ 9.500000] nvidia-nvlink: Nvlink Core is being initialized, major device number 237"]
ELISIONS = ["...", "[...]", "…"]
TORCHRUN_CHATTER = ["[host:1]: [W socket.cpp:464] [c10d] The server socket has failed to listen on [::]:29500.",
                    "[host:0]: NCCL INFO Bootstrap : Using eth0:10.0.0.7<0>", "gloo: connected to 3 peers"]


def _facts(value: object) -> object:
    """The parsed facts as plain data, without line numbers and skipped-line diagnostics."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _facts(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in DIAGNOSTIC_FIELDS}
    if isinstance(value, BaseModel):
        return _facts(value.model_dump())
    if isinstance(value, dict):
        return {k: _facts(v) for k, v in value.items() if k not in DIAGNOSTIC_FIELDS}
    if isinstance(value, (list, tuple)):
        return [_facts(v) for v in value]
    return value


def _numbers(facts: object, where: str = "") -> list[tuple[str, float]]:
    if isinstance(facts, float):
        return [(where, facts)]
    if isinstance(facts, dict):
        return [n for k, v in facts.items() for n in _numbers(v, f"{where}.{k}")]
    if isinstance(facts, list):
        return [n for i, v in enumerate(facts) for n in _numbers(v, f"{where}[{i}]")]
    return []


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _crlf(rng: random.Random, text: str) -> str:
    return text.replace("\n", "\r\n")


def _trailing_blanks(rng: random.Random, text: str) -> str:
    return "\n".join(line + rng.choice(["", " ", "  ", "\t", " \t "]) if line.strip() else line
                     for line in _lines(text))


def _blank_lines(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    for _ in range(rng.randint(1, 4)):
        lines.insert(rng.randint(0, len(lines)), "")
    return "\n".join(lines)


def _final_newline(rng: random.Random, text: str) -> str:
    return text.rstrip("\n") + "\n" * rng.randint(0, 3)


def _interleaved(noise: list[str]) -> Callable[[random.Random, str], str]:
    def mutate(rng: random.Random, text: str) -> str:
        lines = _lines(text)
        for _ in range(rng.randint(1, 5)):
            lines.insert(rng.randint(0, len(lines)), rng.choice(noise))
        return "\n".join(lines)

    return mutate


def _tabs_as_spaces(rng: random.Random, text: str) -> str:
    return "".join(" " * rng.randint(1, 8) if ch == "\t" else ch for ch in text)


def _prefixed(prefix: str) -> Callable[[random.Random, str], str]:
    """Every line behind a launcher's prefix (mpirun --tag-output, torchrun's tee), as the parser promises to read;
    a capture that already has prefixes is left as it is."""

    def mutate(rng: random.Random, text: str) -> str:
        if any(line.startswith(("[1,", "[host:")) for line in _lines(text)):
            return text
        return "\n".join(prefix + line if line else line for line in _lines(text))

    return mutate


def _heading(rng: random.Random, text: str) -> str:
    return rng.choice(["$ nvidia-smi topo -m\n", "GPU topology of gpu-07:\n\n", "```\n"]) + text


def _json_reindented(rng: random.Random, text: str) -> str:
    return json.dumps(json.loads(text), indent=rng.choice([None, 1, 2, 4, "\t"]))


PASTE = {"crlf": _crlf, "trailing_blanks": _trailing_blanks, "final_newline": _final_newline}
JSON = {"crlf": _crlf, "reindented": _json_reindented}

# parser -> (its captures, the mutations that keep their facts)
ANSWER_CASES: dict[str, tuple[Callable[[str], object], tuple[str, ...], dict]] = {
    "dcgm_diag": (parse_dcgm_diag, ("corpus/dcgm_diag",), PASTE | JSON),
    "dcgm_health": (parse_dcgm_health, (), PASTE),
    "nvbandwidth": (parse_nvbandwidth, ("corpus/nvbandwidth",),
                    PASTE | JSON | {"blank_lines": _blank_lines, "elisions": _interleaved(ELISIONS)}),
    "nccl_tests": (parse_nccl_tests, ("nccl_tests",),
                   PASTE | {"blank_lines": _blank_lines, "nccl_log": _interleaved(NCCL_LOG),
                            "tag_output": _prefixed("[1,0]<stdout>:")}),
    "nvlink_status": (parse_nvlink_status, ("corpus/nvlink",),
                      PASTE | {"blank_lines": _blank_lines, "elisions": _interleaved(ELISIONS)}),
    "nvlink_errors": (parse_nvlink_errors, ("corpus/nvlink",),
                      PASTE | {"blank_lines": _blank_lines, "elisions": _interleaved(ELISIONS)}),
    "nvlink_capabilities": (parse_nvlink_capabilities, ("corpus/nvlink",),
                            PASTE | {"blank_lines": _blank_lines, "elisions": _interleaved(ELISIONS)}),
    "nvlink_throughput": (parse_nvlink_throughput, ("corpus/nvlink",),
                          PASTE | {"blank_lines": _blank_lines, "elisions": _interleaved(ELISIONS)}),
    "topology": (parse_topology, ("corpus/topo",), PASTE | {"tabs_as_spaces": _tabs_as_spaces, "heading": _heading}),
    "gpu_information": (parse_gpu_information, ("corpus/proc",),
                        PASTE | {"blank_lines": _blank_lines, "tabs_as_spaces": _tabs_as_spaces}),
    "driver_version": (parse_driver_version, ("corpus/proc",), PASTE | {"blank_lines": _blank_lines}),
    "xids": (parse_xids, ("corpus/proc",),
             PASTE | {"blank_lines": _blank_lines, "kernel_log": _interleaved(KERNEL_LOG)}),
    "nvml": (parse_nvml_report, (), JSON),
    "c2c_status": (parse_c2c_status, ("corpus/c2c_mnnvl",), PASTE | {"blank_lines": _blank_lines}),
    "nvidia_smi_q": (parse_nvidia_smi_q, ("corpus/c2c_mnnvl", "corpus/nvidia_smi_q"), PASTE),
    "imex_status": (parse_imex_status, ("corpus/c2c_mnnvl",), PASTE | JSON),
    "numa": (parse_numa, ("corpus/c2c_mnnvl",), PASTE),
    "sysfs_numa": (parse_sysfs_numa, (), PASTE | {"blank_lines": _blank_lines}),
    "sections": (split_sections, (), {"crlf": _crlf, "final_newline": _final_newline}),
    "result_lines": (parse_result_lines, (), PASTE | {"blank_lines": _blank_lines,
                                                      "chatter": _interleaved(TORCHRUN_CHATTER),
                                                      "tee_prefix": _prefixed("[host:0]: ")}),
}


def _answer_cases() -> list[tuple[str, str, str]]:
    cases = []
    for name, (parse, folders, mutations) in sorted(ANSWER_CASES.items()):
        seeds = [(p.relative_to(DATA).as_posix(), p.read_text()) for folder in folders
                 for p in sorted((DATA / folder).rglob("*")) if p.is_file() and p.suffix != ".md"]
        seeds += [(f"extra seed {i}", text) for i, text in enumerate(EXTRA_SEEDS.get(name, []))]
        for label, text in seeds:
            try:
                parse(text)
            except ParseError:
                continue  # not this parser's output (another nvlink table, a failure capture): no answer to keep
            kinds = {k: m for k, m in mutations.items() if k != "reindented" or text.lstrip().startswith("{")}
            cases += [(name, label, kind) for kind in sorted(kinds)]
    return cases


def _seed_text(name: str, label: str) -> str:
    if label.startswith("extra seed "):
        return EXTRA_SEEDS[name][int(label.rsplit(" ", 1)[1])]
    return (DATA / label).read_text()


@pytest.mark.parametrize(("name", "capture", "kind"), _answer_cases())
def test_a_mutation_that_keeps_the_facts_keeps_the_answer(name, capture, kind):
    parse, _, mutations = ANSWER_CASES[name]
    text = _seed_text(name, capture)
    expected = _facts(parse(text))
    rng = random.Random(f"{SEED}:{name}:{capture}:{kind}")
    for _ in range(MUTANTS_PER_KIND):
        mutant = mutations[kind](rng, text)
        try:
            got = _facts(parse(mutant))
        except ParseError:
            continue  # refusing is an answer; a different one is not
        assert got == expected, f"{name} read {capture} differently after {kind}: {mutant[:600]!r}"
