"""Time every parser on hostile inputs (issue 20 item 15): the worst case per parser, in seconds.

Run: .venv/bin/python bench/parsers.py. Prints one line per (parser, input): the outcome (result or ParseError)
and the wall time. The tests assert outcomes only; this is where the speed is looked at.
"""

from __future__ import annotations

import time

from hilt.errors import ParseError
from hilt.fabric.c2c import parse_c2c_status
from hilt.fabric.dcgm import parse_dcgm_diag
from hilt.fabric.gpuquery import parse_nvidia_smi_q
from hilt.fabric.imex import parse_imex_status
from hilt.fabric.numa import parse_numa
from hilt.fabric.nvlink import parse_nvlink_status
from hilt.fabric.procinfo import parse_gpu_information
from hilt.fabric.topo import parse_topology
from hilt.fabric.xid import parse_xids
from hilt.probes.nccl import parse_nccl_tests
from hilt.probes.nvbandwidth import parse_nvbandwidth

MB = 1024 * 1024
CASES = [
    ("nvlink GPU line, 80k blanks", parse_nvlink_status, "GPU 0: " + " " * 80_000 + "x\n"),
    ("nvlink 7.9 MiB of link lines", parse_nvlink_status,
     "GPU 0: H100 (UUID: GPU-1)\n" + "\t Link 0: 26.562 GB/s\n" * 370_000),
    ("nccl Rank 100000000", parse_nccl_tests, "#  Rank 100000000 Group 0 Pid 1 on h device 0 [0x07] H100\n"
     "#  size count type redop root time algbw busbw #wrong time algbw busbw #wrong\n"),
    ("nccl 8 MiB of rows", parse_nccl_tests,
     "#  size count type redop root time algbw busbw #wrong time algbw busbw #wrong\n"
     + "8 2 float sum -1 10.0 0.00 0.00 0 10.0 0.00 0.00 0\n" * 150_000),
    ("proc info key + 1 MiB blanks", parse_gpu_information, "Model" + " " * MB + "x\n"),
    ("xid message with 7 MiB blanks", parse_xids, "NVRM: Xid (PCI:0000:17:00): 79, " + " " * 7 * MB + "x\n"),
    ("topo header of 2000 columns", parse_topology, "\t".join(f"GPU{i}" for i in range(2000)) + "\n"),
    ("dcgm 8 MiB of message rows", parse_dcgm_diag,
     "+---+---+\n| Diagnostic | Result |\n+===+===+\n|-----  Hardware  ---+---|\n| memory | Fail |\n"
     + "| Warning | " + "x" * 45 + " |\n" + ("|  | " + "y" * 45 + " |\n") * 150_000),
    ("nvbandwidth 1000x1000 matrix", parse_nvbandwidth,
     "Running a_ce.\nmemcpy CE GPU(row) -> GPU(column) bandwidth (GB/s)\n"
     + " ".join(str(i) for i in range(1000)) + "\n"
     + "".join(f"{r} " + " 1.0" * 1000 + "\n" for r in range(1000))),
    ("nvbandwidth JSON nested 100k", parse_nvbandwidth, "{" + '"a":[' * 100_000),
    ("c2c 9999 GPUs x 5 links", parse_c2c_status,
     "".join(f"GPU {g}: GB200\n" + "".join(f"  C2C Link {i}: 44.712 GB/s\n" for i in range(5)) for g in range(9999))),
    ("nvidia-smi -q 7.9 MiB of keys", parse_nvidia_smi_q,
     "GPU 00000000:DD:00.0\n" + "    Fabric\n" + "        Health\n" + "            Row : N/A\n" * 380_000),
    ("nvidia-smi -q -x 1M nested tags", parse_nvidia_smi_q,
     "<nvidia_smi_log><gpu>" + "<a>" * 1_000_000 + "</a>" * 1_000_000 + "</gpu></nvidia_smi_log>"),
    ("imex 1024x1024 matrix", parse_imex_status,
     " Nodes From\\To " + " ".join(str(i) for i in range(1024)) + "\n"
     + "".join(f"{r} " + " C" * 1024 + "\n" for r in range(1024)) + "Domain State: UP\n"),
    ("numactl 16k-CPU node lines", parse_numa,
     "".join(f"node {n} cpus: " + " ".join(str(c) for c in range(16_000)) + "\n" for n in range(1))
     + "node 0 size: 1 MB\n" + "node 1 cpus:\n" * 1),
    ("lscpu 0-999999999", parse_numa, "NUMA node0 CPU(s): 0-999999999\n"),
]


def main() -> None:
    for name, parse, text in CASES:
        start = time.perf_counter()
        try:
            parse(text)
            outcome = "result"
        except ParseError as exc:
            outcome = f"ParseError ({str(exc)[:60]})"
        print(f"{name:34s} {len(text) / MB:6.2f} MiB  {time.perf_counter() - start:7.3f} s  {outcome}")


if __name__ == "__main__":
    main()
