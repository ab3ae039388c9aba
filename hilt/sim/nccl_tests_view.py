"""A sim image's ``all_reduce_perf``: prints nccl-tests' real current output for the image's declared bandwidth.

So the nccl-tests path (discovery on PATH, argument passing, parsing, metrics, gate) runs end to end in the
simulated rack. The layout follows the printf formats of NVIDIA/nccl-tests src/util.cu (2.17 era).
"""

from __future__ import annotations

import stat
from pathlib import Path

_PROGRAM = r'''#!/usr/bin/env python3
"""Simulated nccl-tests all_reduce_perf (hilt sim image). Bandwidth comes from the image, not from a GPU."""
import os, random, socket, sys

PEAK = __PEAK__
GPUS = __GPUS__
GPU_NAME = __GPU_NAME__
NCCL_CODE = __NCCL_CODE__
NOISE = __NOISE__
HALF = 8 * 2**20  # size at which half the peak is reached (latency-bound below)
UNIT = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}
TYPES = {"float": 4, "half": 2, "bfloat16": 2, "double": 8, "int32": 4, "int8": 1, "uint8": 1, "int64": 8}


def size(text):
    text = text.strip().upper()
    return int(float(text[:-1]) * UNIT[text[-1]]) if text[-1:] in UNIT and text[-1:] else int(text)


def fmt(value, width):
    power, val = 0, 1
    while value >= val:
        power, val = power + 1, val * 10
    if power < width - 2:
        return "%*.2f" % (width, value)
    if power < width - 1:
        return "%*.1f" % (width, value)
    return "%*.0f" % (width, value)


def main(argv):
    opts = {"-b": "32M", "-e": "32M", "-f": "2", "-g": "1", "-t": "1", "-n": "20", "-w": "5", "-d": "float",
            "-o": "sum", "-c": "1"}
    i = 0
    while i < len(argv):
        key = argv[i]
        if key.startswith("--"):
            key = {"--minbytes": "-b", "--maxbytes": "-e", "--stepfactor": "-f", "--ngpus": "-g",
                   "--nthreads": "-t", "--iters": "-n", "--warmup_iters": "-w", "--datatype": "-d",
                   "--op": "-o", "--check": "-c"}.get(key, key)
        if key in opts and i + 1 < len(argv):
            opts[key] = argv[i + 1]
            i += 2
        else:
            sys.stderr.write("all_reduce_perf: unknown option %s\n" % argv[i])
            return 1
    lo, hi, factor = size(opts["-b"]), size(opts["-e"]), int(opts["-f"])
    ngpus, nthreads = int(opts["-g"]), int(opts["-t"])
    ranks = ngpus * nthreads
    if ranks > GPUS:
        sys.stderr.write("Invalid number of GPUs: %d requested but only %d were found.\n" % (ranks, GPUS))
        return 1
    elem = TYPES.get(opts["-d"], 4)
    code = NCCL_CODE
    p = print
    p("# nccl-tests version 2.17.6 nccl-headers=%d nccl-library=%d" % (code, code))
    p("# Collective test starting: all_reduce_perf")
    p("# nThread %d nGpus %d minBytes %d maxBytes %d step: %d(factor) warmup iters: %s iters: %s agg iters: 1 "
      "validation: %s graph: 0" % (nthreads, ngpus, lo, hi, factor, opts["-w"], opts["-n"], opts["-c"]))
    p("#")
    p("# Using devices")
    host = socket.gethostname()
    for r in range(ranks):
        p("#  Rank %2d Group %2d Pid %6d on %10s device %2d [%04x:%02x:%02x] %s"
          % (r, 0, os.getpid(), host, r, 0, 0x18 + 0x10 * r, 0, GPU_NAME))
    p("#")
    p("# %10s  %12s  %8s  %6s  %6s           out-of-place                       in-place          "
      % ("", "", "", "", ""))
    p("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s %*s"
      % ("size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw",
         "busbw", "#wrong", 0, ""))
    p("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s %*s"
      % ("(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "", 0, ""))
    bus_factor = 2.0 * (ranks - 1) / ranks if ranks > 1 else 1.0
    total, n = 0.0, 0
    nbytes = lo
    while nbytes <= hi:
        count = nbytes // elem
        nb = count * elem
        line = "%12li  %12li  %8s  %6s  %6s" % (nb, count, opts["-d"], opts["-o"], "%6i" % -1)
        for _ in range(2):
            bus = PEAK * nb / (nb + HALF) * random.uniform(1 - NOISE, 1 + NOISE) if nb else 0.0
            alg = bus / bus_factor
            time_us = nb / (alg * 1e3) if alg > 0 else 0.3
            wrong = "%6g" % 0 if opts["-c"] != "0" else "   N/A"
            line += "  %7s  %6s  %6s  %6s" % (fmt(time_us, 7), fmt(alg, 6), fmt(bus, 6), wrong)
            total, n = total + (bus if ranks > 1 else 0.0), n + 1
        p(line)
        if factor <= 1 or nbytes == 0:
            break
        nbytes *= factor
    p("# %-20s : %d %s" % ("Out of bounds values", 0, "OK"))
    p("# %-20s : %g %s" % ("Avg bus bandwidth", total / max(n, 1), ""))
    p("#")
    p("# Collective test concluded: all_reduce_perf")
    p("")
    return 0


sys.exit(main(sys.argv[1:]))
'''


def _nccl_code(version: str) -> int:
    major, minor, patch = (int(x) for x in version.split(".")[:3])
    return major * 10000 + minor * 100 + patch


def write_nccl_tests(root: Path, spec: dict) -> None:
    """Write ``root/usr/local/bin/all_reduce_perf`` for a sim image.

    spec keys: ``nccl_busbw_gbps`` (required: the peak bus bandwidth the image declares), ``gpus`` (default 8),
    ``gpu_name``, ``nccl_version`` (default "2.21.5"), ``noise`` (relative, default 0.01).
    """
    if "nccl_busbw_gbps" not in spec:
        raise ValueError("sim image spec: nccl_busbw_gbps is required for all_reduce_perf")
    program = (_PROGRAM
               .replace("__PEAK__", repr(float(spec["nccl_busbw_gbps"])))
               .replace("__GPUS__", repr(int(spec.get("gpus", 8))))
               .replace("__GPU_NAME__", repr(str(spec.get("gpu_name", "NVIDIA H100 80GB HBM3"))))
               .replace("__NCCL_CODE__", repr(_nccl_code(str(spec.get("nccl_version", "2.21.5")))))
               .replace("__NOISE__", repr(float(spec.get("noise", 0.01)))))
    target = Path(root) / "usr" / "local" / "bin" / "all_reduce_perf"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(program)
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
