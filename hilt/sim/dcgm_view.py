"""A sim image's `dcgmi` and `nvbandwidth`: the real output formats, with results the image declares.

So test_dcgm and the nvbandwidth probe run end to end in the simulated rack: discovery on PATH, argument
passing, parsing, metrics and the gate. `dcgmi diag -j` prints DCGM 4.x's raw JSON layout (TABs,
`"key" : value`, as tests/data/corpus/dcgm_diag/dcgm4.5.2-*.json), without `-j` the 4.x text box (per-GPU
rows, messages wrapped every 45 characters); `dcgmi health -c` the Health Monitor Report box. nvbandwidth
prints v0.8's text (header, `Device N:` lines, matrices, SUM lines). GPU count and name come from the view's
profile; results and bandwidths from the image's `dcgm:` and `nvbandwidth:` specs.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

_DCGMI = r'''#!/usr/bin/env python3
"""Simulated dcgmi (hilt sim image): diag and health print DCGM's formats with the image's declared results."""
import json, sys

GPUS = __GPUS__
DEVICE_ID = __DEVICE_ID__
DRIVER = __DRIVER__
VERSION = __VERSION__
FAIL = __FAIL__          # {test: {gpu: message}}
WARN = __WARN__          # {test: {gpu: message}}
SKIP = __SKIP__          # [test]
INCOMPLETE = __INCOMPLETE__
HEALTH = __HEALTH__      # [[gpu, "PCIe system: Warning - ..."]]
LEVELS = [
    [("Deployment", "software")],
    [("Integration", "pcie"), ("Hardware", "memory")],
    [("Hardware", "diagnostic"), ("Stress", "targeted_stress"), ("Stress", "targeted_power"),
     ("Stress", "memory_bandwidth")],
    [("Hardware", "pulse_test"), ("Stress", "memtest")],
]
CATEGORIES = ["Deployment", "Hardware", "Integration", "Stress"]


def results(level):
    tests = [t for lvl in LEVELS[:level] for t in lvl]
    out = []
    for category in CATEGORIES:
        for cat, name in tests:
            if cat != category:
                continue
            per_gpu = {}
            for gpu in range(GPUS):
                if name in SKIP:
                    per_gpu[gpu] = ("Skip", None)
                elif str(gpu) in FAIL.get(name, {}):
                    per_gpu[gpu] = ("Fail", FAIL[name][str(gpu)])
                elif str(gpu) in WARN.get(name, {}):
                    per_gpu[gpu] = ("Warn", WARN[name][str(gpu)])
                else:
                    per_gpu[gpu] = ("Pass", None)
            statuses = [s for s, _ in per_gpu.values()]
            summary = next((s for s in ("Fail", "Warn", "Pass", "Skip") if s in statuses), "Pass")
            out.append((category, name, summary, per_gpu))
    return out


def diag_json(level):
    cats = []
    for category, name, summary, per_gpu in results(level):
        entities = []
        for gpu, (status, msg) in per_gpu.items():
            e = {"entity_group": "GPU", "entity_group_id": 1, "entity_id": gpu, "status": status}
            if msg:
                e["warnings"] = [{"error_category": 1, "error_id": 83, "error_severity": 2, "warning": msg}]
            entities.append(e)
        test = {"name": name, "results": entities, "test_summary": {"status": summary}}
        if not cats or cats[-1]["category"] != category:
            cats.append({"category": category, "tests": []})
        cats[-1]["tests"].append(test)
    doc = {"DCGM Diagnostic": {"test_categories": cats},
           "entity_groups": [{"entities": [{"device_id": DEVICE_ID, "entity_id": g, "serial_num": "1654%09d" % g}
                                           for g in range(GPUS)], "entity_group": "GPU", "entity_group_id": 1}],
           "metadata": {"Driver Version Detected": DRIVER, "version": VERSION}}
    return json.dumps(doc, indent="\t", separators=(",", " : "), sort_keys=True)


def row(name, value):
    return "| %-25s | %-46s |" % (name, value)


def wrapped(label, text):
    chunks = [text[i:i + 45] for i in range(0, len(text), 45)] or [""]
    return [row(label if i == 0 else "", c) for i, c in enumerate(chunks)]


def diag_text(level):
    rule = "+" + "-" * 27 + "+" + "-" * 48 + "+"
    lines = ["Successfully ran diagnostic for group.", rule, row("Diagnostic", "Result"),
             "+" + "=" * 27 + "+" + "=" * 48 + "+"]

    def section(name, first):
        head = "-----  %s  " % name
        edge = "|" if first else "+"
        return edge + head + "-" * (27 - len(head)) + "+" + "-" * 48 + edge

    lines.append(section("Metadata", True))
    lines += [row("DCGM Version", VERSION), row("Driver Version Detected", DRIVER),
              row("GPU Device IDs Detected", ", ".join([DEVICE_ID] * GPUS))]
    current = None
    for category, name, summary, per_gpu in results(level):
        if category != current:
            lines.append(section(category, current is None and category == "Deployment"))
            current = category
        lines.append(row(name, summary))
        for gpu, (status, _) in per_gpu.items():
            lines.append(row("", "GPU%d: %s" % (gpu, status)))
        for gpu, (status, msg) in per_gpu.items():
            if msg:
                lines += wrapped("Warning", msg)
    lines.append(rule)
    return "\n".join(lines)


def health(check):
    if not check:
        print("Health monitor systems set successfully.")
        return 0
    rule = "+" + "-" * 27 + "+" + "-" * 58 + "+"
    print(rule)
    print("| %-84s |" % "Health Monitor Report")
    print("+" + "=" * 27 + "+" + "=" * 58 + "+")
    print("| %-25s | %-56s |" % ("Overall Health", "Warning" if HEALTH else "Healthy"))
    for gpu, text in HEALTH:
        print("| %-25s | %-56s |" % ("GPU ID: %d" % gpu, "Warning"))
        print("| %-25s | %-56s |" % ("", text))
    print(rule)
    return 0


def main(argv):
    if not argv:
        sys.stderr.write("dcgmi: a subsystem is required (diag, health, ...)\n")
        return 1
    cmd, args = argv[0], argv[1:]
    if cmd == "diag":
        level = 1
        for i, a in enumerate(args):
            if a in ("-r", "--run") and i + 1 < len(args):
                try:
                    level = int(args[i + 1])
                except ValueError:
                    sys.stderr.write("dcgmi diag: run level must be 1 to 4 (named test sets are not simulated)\n")
                    return 1
        if not 1 <= level <= 4:
            sys.stderr.write("dcgmi diag: run level must be 1 to 4\n")
            return 1
        if INCOMPLETE:
            print("Error: Unable to complete diagnostic for group 2147483647. Return: (-37) "
                  "A field value for a GPU was not found.")
            return 226
        print(diag_json(level) if "-j" in args or "--json" in args else diag_text(level))
        return 0
    if cmd == "health":
        return health("-c" in args or "--check" in args)
    sys.stderr.write("dcgmi (hilt sim image): subsystem %s is not simulated\n" % cmd)
    return 1


sys.exit(main(sys.argv[1:]))
'''

_NVBANDWIDTH = r'''#!/usr/bin/env python3
"""Simulated nvbandwidth v0.8 (hilt sim image). Bandwidth comes from the image, not from a GPU."""
import random, sys

GPUS = __GPUS__
GPU_NAME = __GPU_NAME__
DRIVER = __DRIVER__
D2D = __D2D__
H2D = __H2D__
D2H = __D2H__
NOISE = __NOISE__
ARROW = {"host_to_device": ("CPU(row) -> GPU(column)", H2D, "host"),
         "device_to_host": ("CPU(row) <- GPU(column)", D2H, "host"),
         "device_to_device_memcpy_read": ("GPU(row) -> GPU(column)", D2D, "device"),
         "device_to_device_memcpy_write": ("GPU(row) <- GPU(column)", D2D, "device"),
         "device_to_device_bidirectional_memcpy_read": ("GPU(row) <-> GPU(column)", 2 * D2D, "device"),
         "device_to_device_bidirectional_memcpy_write": ("GPU(row) <-> GPU(column)", 2 * D2D, "device")}
TESTCASES = [base + suffix for base in ("host_to_device_memcpy", "device_to_host_memcpy",
                                        "device_to_device_memcpy_read", "device_to_device_memcpy_write",
                                        "device_to_device_bidirectional_memcpy_read",
                                        "device_to_device_bidirectional_memcpy_write") for suffix in ("_ce", "_sm")]


def shape(name):
    for key, value in ARROW.items():
        if name.startswith(key):
            return value
    raise KeyError(name)


def run(name):
    arrow, peak, kind = shape(name)
    engine = "CE" if name.endswith("_ce") else "SM"
    print("Running %s." % name)
    print("memcpy %s %s bandwidth (GB/s)" % (engine, arrow))
    print("  " + "".join("%10d" % c for c in range(GPUS)))
    total = 0.0
    rows = 1 if kind == "host" else GPUS
    for r in range(rows):
        cells = []
        for c in range(GPUS):
            if kind == "device" and r == c:
                cells.append("%10s" % "N/A")
                continue
            value = round(peak * random.uniform(1 - NOISE, 1 + NOISE), 2)
            total += value
            cells.append("%10.2f" % value)
        print("%2d" % r + "".join(cells))
    print("")
    print("SUM %s %.2f" % (name, total))
    print("")


def main(argv):
    wanted = []
    i = 0
    while i < len(argv):
        if argv[i] in ("-t", "--testcase"):
            i += 1
            while i < len(argv) and not argv[i].startswith("-"):
                wanted.append(argv[i])
                i += 1
            continue
        sys.stderr.write("nvbandwidth (hilt sim image): option %s is not simulated\n" % argv[i])
        return 1
    for name in wanted:
        if name not in TESTCASES:
            sys.stderr.write("ERROR: Testcase %s not found!\n" % name)
            return 1
    print("nvbandwidth Version: v0.8")
    print("Built from Git version: v0.8")
    print("")
    print("CUDA Runtime Version: 12040")
    print("CUDA Driver Version: 12040")
    print("Driver Version: %s" % DRIVER)
    print("")
    for g in range(GPUS):
        print("Device %d: %s (00000000:%02x:00)" % (g, GPU_NAME, 0x18 + 0x10 * g))
    print("")
    for name in wanted or TESTCASES:
        if GPUS < 2 and name.startswith("device_to_device"):
            print("Waived: ")
            continue
        run(name)
    print("NOTE: The reported results may not reflect the full capabilities of the platform.")
    print("Performance can vary with software drivers, hardware clocks, and system topology.")
    return 0


sys.exit(main(sys.argv[1:]))
'''

#: PCI device ids DCGM prints in its metadata, by GPU name (others print the H100's).
_DEVICE_IDS = {"NVIDIA H100 80GB HBM3": "2330", "NVIDIA H200": "2335", "NVIDIA A100-SXM4-80GB": "20b2"}


def _install(path: Path, program: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(program)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _per_gpu(value: Any, what: str) -> dict[str, dict[str, str]]:
    """{test: {gpu: message}} from the image spec ({test: [gpu, ...]} gets a default message)."""
    out: dict[str, dict[str, str]] = {}
    for test, gpus in (value or {}).items():
        if isinstance(gpus, list):
            gpus = {g: f"GPU {g}: {what} injected by the hilt sim image in {test}" for g in gpus}
        out[str(test)] = {str(g): str(m) for g, m in gpus.items()}
    return out


def write_dcgmi(root: Path, spec: dict[str, Any], gpus: int, gpu_name: str | None, driver: str) -> None:
    """Write ``root/usr/local/bin/dcgmi``.

    spec keys: ``version`` (default "4.4.2"), ``fail`` / ``warn`` ({test: [gpu, ...]} or {test: {gpu: message}}),
    ``skip`` ([test]), ``incomplete`` (print DCGM's "Unable to complete diagnostic"), ``health``
    ([[gpu, "subsystem: ..."]]: incidents `dcgmi health -c` reports).
    """
    program = (_DCGMI
               .replace("__GPUS__", repr(int(gpus)))
               .replace("__DEVICE_ID__", repr(_DEVICE_IDS.get(gpu_name or "", "2330")))
               .replace("__DRIVER__", repr(str(driver)))
               .replace("__VERSION__", repr(str(spec.get("version", "4.4.2"))))
               .replace("__FAIL__", repr(_per_gpu(spec.get("fail"), "failure")))
               .replace("__WARN__", repr(_per_gpu(spec.get("warn"), "warning")))
               .replace("__SKIP__", repr([str(t) for t in spec.get("skip", [])]))
               .replace("__INCOMPLETE__", repr(bool(spec.get("incomplete", False))))
               .replace("__HEALTH__", repr([[int(g), str(t)] for g, t in spec.get("health", [])])))
    _install(Path(root) / "usr" / "local" / "bin" / "dcgmi", program)


def write_nvbandwidth(root: Path, spec: dict[str, Any], gpus: int, gpu_name: str | None, driver: str) -> None:
    """Write ``root/usr/local/bin/nvbandwidth``.

    spec keys: ``d2d_gbps`` (required: per GPU pair, one direction), ``h2d_gbps`` / ``d2h_gbps`` (default 55),
    ``noise`` (relative, default 0.01).
    """
    if "d2d_gbps" not in spec:
        raise ValueError("sim image spec: nvbandwidth.d2d_gbps is required for nvbandwidth")
    program = (_NVBANDWIDTH
               .replace("__GPUS__", repr(int(gpus)))
               .replace("__GPU_NAME__", repr(str(gpu_name or "NVIDIA H100 80GB HBM3")))
               .replace("__DRIVER__", repr(str(driver)))
               .replace("__D2D__", repr(float(spec["d2d_gbps"])))
               .replace("__H2D__", repr(float(spec.get("h2d_gbps", 55.0))))
               .replace("__D2H__", repr(float(spec.get("d2h_gbps", 55.0))))
               .replace("__NOISE__", repr(float(spec.get("noise", 0.01)))))
    _install(Path(root) / "usr" / "local" / "bin" / "nvbandwidth", program)
