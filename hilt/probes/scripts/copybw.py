"""Host-to-device, device-to-host and device-to-device copy bandwidth with torch on one GPU.

Plain python (no torchrun). On a node without CUDA it prints a result saying why it skipped.
"""

from __future__ import annotations

import argparse
import sys
import time

from probe_common import emit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", type=int, default=0)
    args = ap.parse_args()
    import torch  # the probes extra lives on the nodes, never on the controller; --help works without it

    if not torch.cuda.is_available():
        emit({"probe": "copy", "skip": "no CUDA device visible to torch on this node (CPU-only node)"})
        return
    dev = torch.device("cuda", args.device)
    start = time.perf_counter()
    for size in (int(s) for s in args.sizes.split(",")):
        host_src = torch.empty(size, dtype=torch.uint8).pin_memory()
        host_dst = torch.empty(size, dtype=torch.uint8).pin_memory()
        dev_a = torch.empty(size, dtype=torch.uint8, device=dev)
        dev_b = torch.empty(size, dtype=torch.uint8, device=dev)
        cases = {"h2d": (dev_a, host_src), "d2h": (host_dst, dev_a), "d2d": (dev_b, dev_a)}
        for kind, (dst, src) in cases.items():
            for _ in range(args.warmup):
                dst.copy_(src, non_blocking=True)
            torch.cuda.synchronize(dev)
            times = []
            for _ in range(args.repeats):
                begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                begin.record()
                dst.copy_(src, non_blocking=True)
                end.record()
                end.synchronize()
                times.append(begin.elapsed_time(end) / 1e3)
            emit({"probe": "copy", "kind": kind, "size": size, "time_s": times,
                  "device_name": torch.cuda.get_device_name(dev)})
    emit({"probe": "copy", "done": True, "elapsed_s": time.perf_counter() - start})


if __name__ == "__main__":
    main()
    sys.exit(0)
