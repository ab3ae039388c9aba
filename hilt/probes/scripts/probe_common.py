"""Helpers shared by the probe scripts that run on a node (shipped next to them; stdlib only).

Run as a program it prints a free TCP port, which the runner uses for the c10d rendezvous.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
import sys
import time
from datetime import timedelta

RESULT_MARK = "HILT_RESULT "
_SIOCGIFADDR = 0x8915


def emit(record: dict) -> None:
    """One result per line with a fixed mark, so the runner finds it among torchrun and NCCL chatter."""
    sys.stdout.write(RESULT_MARK + json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _ifname_for(local_ip: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue
            if socket.inet_ntoa(packed[20:24]) == local_ip:
                return name
    return None


def pin_socket_interface() -> None:
    """Make gloo/NCCL use the interface that routes to the rendezvous master.

    gloo otherwise resolves the hostname, which inside a network namespace (the simulated rack) or on a
    host with several networks can name an address the peers cannot reach.
    """
    master = os.environ.get("MASTER_ADDR")
    if not master or os.environ.get("GLOO_SOCKET_IFNAME"):
        return
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((socket.gethostbyname(master), 9))
            local_ip = s.getsockname()[0]
    except OSError:
        return
    name = _ifname_for(local_ip)
    if name:
        os.environ["GLOO_SOCKET_IFNAME"] = name
        os.environ.setdefault("NCCL_SOCKET_IFNAME", name)


def start_process_group(backend: str, pg_timeout: float, hang_rank: int, t0: float):  # noqa: ANN201
    """Join the torchrun job: NCCL on GPUs, gloo on CPU-only nodes. Returns (torch, dist, backend, device,
    rank, world, init_s). ``hang_rank`` is the test hook that makes one rank sleep instead of working."""
    import torch  # node-side (the probes extra); the controller imports this module's helpers without torch
    import torch.distributed as dist

    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    pin_socket_interface()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    dist.init_process_group(backend, timeout=timedelta(seconds=pg_timeout))
    rank, world = dist.get_rank(), dist.get_world_size()
    init_s = time.perf_counter() - t0
    if rank == hang_rank:
        time.sleep(10**6)
    return torch, dist, backend, device, rank, world, init_s


def finish(dist) -> None:  # noqa: ANN001 (torch.distributed, imported by the caller)
    """Leave without running interpreter teardown: gloo sometimes aborts there after correct results."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        dist.destroy_process_group()
    finally:
        os._exit(0)


if __name__ == "__main__":
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        print(sock.getsockname()[1])
