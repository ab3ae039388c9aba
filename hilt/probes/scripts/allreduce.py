"""torch.distributed all-reduce size sweep; run under torchrun. Rank 0 prints one result line per size.

Every sample is the slowest rank's time for ``--iters`` back-to-back all-reduces (the collective is only as
fast as its slowest member). NCCL on GPUs, gloo on CPU-only nodes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from probe_common import emit, finish, start_process_group

_T0 = time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", required=True, help="comma-separated byte counts")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=1)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--backend", default="auto", choices=["auto", "nccl", "gloo"])
    ap.add_argument("--pg-timeout", type=float, default=120.0)
    ap.add_argument("--hang-rank", type=int, default=-1, help="test hook: this rank sleeps instead of working")
    args = ap.parse_args()


    torch, dist, backend, device, rank, world, init_s = start_process_group(
        args.backend, args.pg_timeout, args.hang_rank, _T0)
    dtype = getattr(torch, args.dtype)
    elem = torch.tensor([], dtype=dtype).element_size()
    nccl_version = None
    if backend == "nccl":
        nccl_version = ".".join(str(v) for v in torch.cuda.nccl.version())

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for size in (int(s) for s in args.sizes.split(",")):
        count = max(1, size // elem)
        t = torch.zeros(count, dtype=dtype, device=device)  # zeros: repeated sums never overflow
        start = time.perf_counter()
        for _ in range(args.warmup):
            dist.all_reduce(t)
        sync()
        times = []
        for _ in range(args.repeats):
            dist.barrier()
            sync()
            t0 = time.perf_counter()
            for _ in range(args.iters):
                dist.all_reduce(t)
            sync()
            times.append((time.perf_counter() - t0) / args.iters)
        slowest = torch.tensor(times, dtype=torch.float64, device=device)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        if rank == 0:
            emit({"probe": "allreduce", "size": count * elem, "count": count, "dtype": args.dtype,
                  "backend": backend, "world_size": world,
                  "local_world_size": int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
                  "nccl_version": nccl_version, "iters": args.iters, "time_s": slowest.tolist(),
                  "init_s": init_s, "elapsed_s": time.perf_counter() - start})
    finish(dist)


if __name__ == "__main__":
    main()
    sys.exit(0)
