"""DDP training steps of a synthetic model sized by gradient megabytes; run under torchrun.

Steps are timed with gradient synchronisation and without it (``no_sync``); the difference is the
communication the overlap did not hide, which is what a training job feels.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

from probe_common import emit, finish, start_process_group

_T0 = time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grad-mb", type=float, default=16.0)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--bucket-mb", type=float, default=25.0)
    ap.add_argument("--backend", default="auto", choices=["auto", "nccl", "gloo"])
    ap.add_argument("--pg-timeout", type=float, default=120.0)
    ap.add_argument("--hang-rank", type=int, default=-1)
    args = ap.parse_args()

    from torch.nn.parallel import DistributedDataParallel as DDP  # node-side torch (the probes extra)

    torch, dist, backend, device, rank, world, init_s = start_process_group(
        args.backend, args.pg_timeout, args.hang_rank, _T0)

    d = args.width
    per_layer = d * d + d
    layers = max(1, round(args.grad_mb * 2**20 / 4 / per_layer))
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(d, d) for _ in range(layers)]).to(device)
    grad_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None, bucket_cap_mb=args.bucket_mb)
    opt = torch.optim.SGD(ddp.parameters(), lr=1e-6)
    x = torch.randn(args.batch, d, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step(synced: bool) -> float:
        dist.barrier()
        sync()
        t0 = time.perf_counter()
        with contextlib.nullcontext() if synced else ddp.no_sync():
            opt.zero_grad(set_to_none=False)
            ddp(x).square().mean().backward()
        opt.step()
        sync()
        return time.perf_counter() - t0

    start = time.perf_counter()
    for _ in range(args.warmup):
        step(True)
        step(False)
    synced = [step(True) for _ in range(args.steps)]
    local = [step(False) for _ in range(args.steps)]
    slowest = torch.tensor(synced + local, dtype=torch.float64, device=device)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    values = slowest.tolist()
    nccl_version = ".".join(str(v) for v in torch.cuda.nccl.version()) if backend == "nccl" else None
    if rank == 0:
        emit({"probe": "ddp", "grad_bytes": grad_bytes, "layers": layers, "batch": args.batch,
              "backend": backend, "world_size": world,
              "local_world_size": int(os.environ.get("LOCAL_WORLD_SIZE", "1")), "nccl_version": nccl_version,
              "step_s": values[: args.steps], "step_nosync_s": values[args.steps:],
              "init_s": init_s, "elapsed_s": time.perf_counter() - start})
    finish(dist)


if __name__ == "__main__":
    main()
    sys.exit(0)
