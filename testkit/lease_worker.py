"""A separate process that competes for leases (contention test and benchmark) or holds one (chaos test).

contend URL OUT MARKS ROUNDS SEED GO: wait for the GO file, then ROUNDS times lease 1-4 random nodes of
    n0..n3, hold them briefly and release. Each grant is checked independently of the store: the worker
    creates MARKS/<node> with O_EXCL while it holds the node (an existing file means another process holds it
    too) and logs the interval [granted, releasing] on the system-wide monotonic clock to OUT (JSON lines).
hold URL NODES TTL READY: lease NODES (comma separated), keep it alive with a LeaseKeeper, write the lease
    id to READY, then sleep until killed.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

from hilt.lease import Holder, LeaseKeeper, open_store

NODES = ["n0", "n1", "n2", "n3"]


def contend(url: str, out: str, marks: str, rounds: int, seed: int, go: str, hold_s: float = 0.03) -> None:
    rng = random.Random(seed)
    store = open_store(url)
    holder = Holder.current(purpose=f"contender {seed}")
    while not os.path.exists(go):
        time.sleep(0.01)
    with open(out, "a") as log:
        for _ in range(rounds):
            nodes = sorted(rng.sample(NODES, rng.randint(1, len(NODES))))
            asked = time.monotonic()
            lease = store.acquire(nodes, holder, ttl_s=20, wait_s=90)
            granted = time.monotonic()
            clashes = []
            for node in nodes:
                try:
                    os.close(os.open(Path(marks) / node, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    clashes.append(node)
            time.sleep(hold_s * rng.uniform(0.5, 1.5))
            for node in nodes:
                if node not in clashes:
                    os.unlink(Path(marks) / node)
            releasing = time.monotonic()
            store.release(lease.id)
            log.write(json.dumps({"pid": os.getpid(), "lease": lease.id, "nodes": nodes, "asked": asked,
                                  "granted": granted, "releasing": releasing,
                                  "released": time.monotonic(), "clashes": clashes}) + "\n")
            log.flush()
    store.close()


def hold(url: str, nodes: str, ttl_s: float, ready: str) -> None:
    store = open_store(url)
    lease = store.acquire(nodes.split(","), Holder.current(purpose="chaos victim"), ttl_s=ttl_s, wait_s=10)
    LeaseKeeper(store, lease).start()
    Path(ready + ".tmp").write_text(lease.id)
    os.rename(ready + ".tmp", ready)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "contend":
        contend(args[0], args[1], args[2], int(args[3]), int(args[4]), args[5],
                *(float(a) for a in args[6:7]))
    elif mode == "hold":
        hold(args[0], args[1], float(args[2]), args[3])
    else:
        raise SystemExit(f"unknown mode {mode}")
