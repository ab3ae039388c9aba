"""Run the probes on nodes through the Node interface and turn their output into metrics.

Scripts travel by SFTP (``node.upload``) to a per-run directory under /tmp on each node. Distributed probes
start one torchrun per node at the same time, with a c10d rendezvous on the first node's address. Every run
ends with a reaper on every node (by process group and by an environment tag, since torchrun puts workers in
sessions of their own), whether the probe finished, failed or hung, and the run fails if anything survives.
Arguments always travel as argv lists; no value is ever pasted into a shell line.
"""

from __future__ import annotations

import json
import logging
import shlex
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hilt.probes.errors import ProbeDependencyMissing, ProbeFailed, ProbeSkipped, ProbeTimeout, StrayProcesses
from hilt.probes.nccl import NcclTestsResult, parse_nccl_tests
from hilt.probes.results import allreduce_metrics, copy_metrics, ddp_metrics, parse_result_lines
from hilt.record.metrics import Metric

if TYPE_CHECKING:  # a type only: the node protocol's package is a layer above this one (docs/architecture.md)
    from hilt.node.protocol import CommandResultLike, NodeLike

log = logging.getLogger(__name__)

SCRIPTS = Path(__file__).parent / "scripts"
_SUPPORT = ("probe_common.py", "launch.py", "reap.py")
_GRACE_S = 10.0  # after the first node ends badly, how long the others get before the kill


@dataclass
class ProbeRun:
    """What one distributed probe run produced, with timings for the overhead benchmark."""

    records: list[dict]
    metrics: list[Metric]
    wall_s: float
    outputs: dict[str, CommandResultLike | None] = field(default_factory=dict)

    @property
    def measured_s(self) -> float:
        return sum(float(r.get("elapsed_s", 0.0)) for r in self.records)


def _new_run_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _parallel(funcs: Sequence[Any]) -> list[Any]:
    """Run callables at once (one per node); return their results or the exceptions they raised."""
    out: list[Any] = [None] * len(funcs)

    def call(i: int) -> None:
        try:
            out[i] = funcs[i]()
        except Exception as exc:  # noqa: BLE001 (handed back to the caller)
            out[i] = exc

    threads = [threading.Thread(target=call, args=(i,), daemon=True) for i in range(len(funcs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


# Run by the node's Python before a probe is staged: names the modules it lacks, else makes the run directory.
# find_spec, not import: importing torch costs seconds of the node's CPU on every probe run.
_PREPARE = """\
import importlib.util, os, sys
missing = [m for m in sys.argv[2:] if importlib.util.find_spec(m) is None]
if not missing:
    os.makedirs(sys.argv[1], mode=0o700, exist_ok=True)
    os.chmod(sys.argv[1], 0o700)
print(" ".join(missing))
"""
_NEEDS = ("torch",)  # what the probe scripts import beyond the standard library: hilt[probes]


def _prepare(node: NodeLike, run_dir: str, scripts: Sequence[str]) -> None:
    """Make the run directory, once the node's Python is known to have what the scripts import.

    Without it the probe would die on the node with Python's ModuleNotFoundError, read as the image's failure;
    a node set up without hilt's probes extra is the rig's problem, so it is a NodeError naming the extra."""
    res = node.run([node.python, "-c", _PREPARE, run_dir, *_NEEDS], timeout=30)
    missing = res.stdout.split()
    if missing:
        raise ProbeDependencyMissing(
            f"node {node.name}: the {', '.join(scripts)} probe needs {' and '.join(missing)} in the node's Python "
            f"({node.python}), which has no module named {missing[0]!r}: install hilt's probes extra on the node "
            f"or in its image (pip install 'hilt[probes]'), or point ssh.python in rigs.yaml at a Python that has it")


def _upload(node: NodeLike, run_dir: str, scripts: Sequence[str]) -> None:
    for name in (*_SUPPORT, *scripts):
        node.upload(SCRIPTS / name, f"{run_dir}/{name}")


def _stage(node: NodeLike, run_dir: str, scripts: Sequence[str]) -> None:
    _prepare(node, run_dir, scripts)
    _upload(node, run_dir, scripts)


def _reap(node: NodeLike, run_dir: str, tag: str) -> list[int]:
    """Kill what is left of the run on this node; return the pids that survived (should be none)."""
    res = node.run([node.python, f"{run_dir}/reap.py", run_dir, tag, "--remove"], timeout=60, check=False)
    try:
        report = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise ProbeFailed(f"node {node.name}: reaper gave no report (exit {res.exit_code}): "
                          f"{_tail(res.stderr, 5)}") from exc
    if report.get("signalled"):
        log.info("node %s: killed leftover probe processes %s", node.name, report["signalled"])
    return [int(p) for p in report.get("remaining", [])]


def _free_port(node: NodeLike, run_dir: str) -> int:
    res = node.run([node.python, f"{run_dir}/probe_common.py"], timeout=30)
    return int(res.stdout.strip().splitlines()[-1])


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address and not address.startswith("[") else f"{address}:{port}"


def count_gpus(node: NodeLike) -> int:
    """GPUs the node shows to ``nvidia-smi -L`` (0 where there is no nvidia-smi)."""
    res = node.run(["sh", "-c", "command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L || true"],
                   timeout=60, check=False)
    return sum(1 for line in res.stdout.splitlines() if line.startswith("GPU "))


def has_command(node: NodeLike, name: str) -> str | None:
    """Path of ``name`` on the node's PATH, or None. The name travels as "$1", never inside the script."""
    res = node.run(["sh", "-c", 'command -v "$1"', "sh", name], timeout=30, check=False)
    path = res.stdout.strip()
    return path if res.exit_code == 0 and path else None


def run_distributed(nodes: Sequence[NodeLike], script: str, script_args: Sequence[str], timeout_s: float,
                    gpus_per_node: int | None = None, cpu_procs_per_node: int = 2) -> ProbeRun:
    """One torchrun per node, at once; return rank 0's result records. Kills everything on timeout."""
    if not nodes:
        raise ProbeFailed("no nodes given to the probe")
    started = time.monotonic()
    run_id = _new_run_id()
    tag = f"hilt-{run_id}"
    run_dirs = [f"/tmp/hilt-probe-{run_id}-{i}" for i in range(len(nodes))]
    for err in _parallel([lambda n=n, d=d: _stage(n, d, [script]) for n, d in zip(nodes, run_dirs, strict=True)]):
        if isinstance(err, Exception):
            _parallel([lambda n=n, d=d: _reap(n, d, tag) for n, d in zip(nodes, run_dirs, strict=True)])
            raise err
    if gpus_per_node is None:
        gpus_per_node = count_gpus(nodes[0])
    nproc = gpus_per_node if gpus_per_node > 0 else cpu_procs_per_node
    endpoint = _endpoint(nodes[0].address, _free_port(nodes[0], run_dirs[0]))

    def argv_for(i: int) -> list[str]:
        node, run_dir = nodes[i], run_dirs[i]
        return [node.python, f"{run_dir}/launch.py", run_dir, tag, "--",
                node.python, "-m", "torch.distributed.run",
                "--nnodes", str(len(nodes)), "--nproc-per-node", str(nproc),
                "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", run_id,
                "--rdzv-conf", f"is_host={1 if i == 0 else 0},join_timeout={int(max(30, timeout_s))}",
                "--local-addr", node.address, "--max-restarts", "0",
                f"{run_dir}/{script}", *script_args]

    results: list[CommandResultLike | Exception | None] = [None] * len(nodes)
    done = [threading.Event() for _ in nodes]

    def runner(i: int) -> None:
        try:
            results[i] = nodes[i].run(argv_for(i), timeout=timeout_s + 60, check=False)
        except Exception as exc:  # noqa: BLE001 (reported below with the node's name)
            results[i] = exc
        finally:
            done[i].set()

    threads = [threading.Thread(target=runner, args=(i,), daemon=True) for i in range(len(nodes))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout_s
    timed_out = False
    while not all(e.is_set() for e in done):
        now = time.monotonic()
        bad = [i for i, e in enumerate(done) if e.is_set() and _failed(results[i])]
        if now >= deadline:
            timed_out = True
            break
        if bad:
            deadline = min(deadline, now + _GRACE_S)
        time.sleep(0.05)

    remaining = _parallel([lambda n=n, d=d: _reap(n, d, tag) for n, d in zip(nodes, run_dirs, strict=True)])
    for t in threads:
        t.join(timeout=30)
    wall = time.monotonic() - started
    stray = {n.name: r for n, r in zip(nodes, remaining, strict=True) if r}
    if stray:
        raise StrayProcesses(f"processes of probe {script} survived the kill: {stray}")

    outputs = {n.name: (r if not isinstance(r, Exception) else None) for n, r in zip(nodes, results, strict=True)}
    text = "\n".join(r.stdout for r in results if r is not None and not isinstance(r, Exception))
    records, bad_lines = parse_result_lines(text)
    if bad_lines:
        log.warning("probe %s: %d result lines did not decode: %s", script, len(bad_lines), bad_lines[:2])
    if timed_out:
        raise ProbeTimeout(f"probe {script} on {', '.join(n.name for n in nodes)} did not finish in "
                           f"{timeout_s:.0f} s; its processes were killed on every node"
                           f"{_describe(nodes, results)}")
    if not records:
        raise ProbeFailed(f"probe {script} on {', '.join(n.name for n in nodes)} printed no result"
                          f"{_describe(nodes, results)}")
    failed = [n.name for n, r in zip(nodes, results, strict=True) if _failed(r)]
    if failed:
        log.warning("probe %s exited non-zero on %s after printing results; trusting the results",
                    script, failed)
    return ProbeRun(records, [], wall, outputs)


def _failed(result: CommandResultLike | Exception | None) -> bool:
    return isinstance(result, Exception) or (result is not None and result.exit_code != 0)


def _describe(nodes: Sequence[NodeLike], results: Sequence[CommandResultLike | Exception | None]) -> str:
    parts = []
    for node, r in zip(nodes, results, strict=True):
        if isinstance(r, Exception):
            parts.append(f"\n-- {node.name}: {type(r).__name__}: {r}")
        elif r is not None:
            parts.append(f"\n-- {node.name}: exit {r.exit_code}; stderr tail:\n{_tail(r.stderr)}")
        else:
            parts.append(f"\n-- {node.name}: still running at the deadline")
    return "".join(parts)


def _label_node(nodes: Sequence[NodeLike]) -> str:
    return "+".join(n.name for n in nodes)


def torch_allreduce(nodes: Sequence[NodeLike], sizes: list[int], repeats: int, warmup: int, timeout_s: float,
                    gpus_per_node: int | None = None, iters: int = 1, dtype: str = "float32",
                    cpu_procs_per_node: int = 2, extra_args: Sequence[str] = ()) -> ProbeRun:
    args = ["--sizes", ",".join(str(int(s)) for s in sizes), "--repeats", str(repeats), "--warmup", str(warmup),
            "--iters", str(iters), "--dtype", dtype, "--pg-timeout", str(int(max(30, timeout_s))), *extra_args]
    run = run_distributed(nodes, "allreduce.py", args, timeout_s, gpus_per_node, cpu_procs_per_node)
    run.records = [r for r in run.records if r.get("probe") == "allreduce"]
    missing = sorted(set(int(s) for s in sizes) - {int(r.get("size", -1)) for r in run.records})
    if missing and len(run.records) < len(sizes):
        raise ProbeFailed(f"torch all-reduce on {_label_node(nodes)} gave no result for sizes {missing}")
    for r in run.records:
        run.metrics.extend(allreduce_metrics(r, len(nodes), _label_node(nodes)))
    return run


def run_torch_allreduce(nodes: Sequence[NodeLike], sizes: list[int], repeats: int, warmup: int,
                        timeout_s: float, gpus_per_node: int | None = None) -> list[Metric]:
    """torch.all_reduce.{algbw,busbw,time} per size over all nodes' ranks (NCCL on GPUs, gloo on CPU)."""
    return torch_allreduce(nodes, sizes, repeats, warmup, timeout_s, gpus_per_node).metrics


def ddp(nodes: Sequence[NodeLike], grad_mb: float, steps: int, timeout_s: float,
        gpus_per_node: int | None = None, cpu_procs_per_node: int = 2, extra_args: Sequence[str] = ()) -> ProbeRun:
    args = ["--grad-mb", str(grad_mb), "--steps", str(steps), "--pg-timeout", str(int(max(30, timeout_s))),
            *extra_args]
    run = run_distributed(nodes, "ddp.py", args, timeout_s, gpus_per_node, cpu_procs_per_node)
    run.records = [r for r in run.records if r.get("probe") == "ddp"]
    if not run.records:
        raise ProbeFailed(f"DDP probe on {_label_node(nodes)} printed no DDP result")
    for r in run.records:
        run.metrics.extend(ddp_metrics(r, len(nodes), _label_node(nodes)))
    return run


def run_ddp(nodes: Sequence[NodeLike], grad_mb: float, steps: int, timeout_s: float) -> list[Metric]:
    """ddp.samples_per_s, ddp.comm_ms_per_step and ddp.allreduce_busbw over all nodes' ranks."""
    return ddp(nodes, grad_mb, steps, timeout_s).metrics


def run_copy_bandwidth(node: NodeLike, sizes: Sequence[int], repeats: int, timeout_s: float = 300) -> list[Metric]:
    """copy.h2d / copy.d2h / copy.d2d in GB/s on the node's first GPU; ProbeSkipped on a CPU-only node."""
    if count_gpus(node) == 0:
        raise ProbeSkipped(f"node {node.name} has no NVIDIA GPU (nvidia-smi -L lists none): "
                           "copy bandwidth needs one")
    run_id = _new_run_id()
    run_dir = f"/tmp/hilt-probe-{run_id}-0"
    tag = f"hilt-{run_id}"
    _prepare(node, run_dir, ["copybw.py"])  # before the try: without a run directory there is nothing to reap
    try:
        _upload(node, run_dir, ["copybw.py"])
        res = node.run([node.python, f"{run_dir}/launch.py", run_dir, tag, "--", node.python,
                        f"{run_dir}/copybw.py", "--sizes", ",".join(str(int(s)) for s in sizes),
                        "--repeats", str(repeats)], timeout=timeout_s, check=False)
    finally:
        left = _reap(node, run_dir, tag)
    if left:
        raise StrayProcesses(f"copy probe processes survived on {node.name}: {left}")
    records, _ = parse_result_lines(res.stdout)
    skip = next((r["skip"] for r in records if "skip" in r), None)
    if skip:
        raise ProbeSkipped(f"node {node.name}: {skip}")
    metrics = copy_metrics(records, node.name)
    if not metrics:
        raise ProbeFailed(f"copy probe on {node.name} printed no result (exit {res.exit_code}): "
                          f"{_tail(res.stderr)}")
    return metrics


def nccl_tests_metrics(result: NcclTestsResult, binary: str, nodes: int, node: str,
                       gpus_per_node: int | None) -> list[Metric]:
    """nccl.<collective>.{busbw,algbw} per size: nccl-tests prints one averaged value per size per placement,
    so the samples are the out-of-place and in-place values of each repeated run."""
    collective = binary.removesuffix("_perf")
    out = []
    for row in result.rows:
        if row.size == 0:
            continue
        labels: dict[str, object] = {"size": row.size, "dtype": row.dtype, "nodes": nodes, "tool": "nccl-tests",
                                     "node": node, "backend": "nccl"}
        if gpus_per_node is not None:
            labels["gpus_per_node"] = gpus_per_node
        if result.nccl_version:
            labels["nccl_version"] = result.nccl_version
        if result.nranks:
            labels["ranks"] = result.nranks
        samples_bus = [row.out_of_place.busbw, row.in_place.busbw]
        samples_alg = [row.out_of_place.algbw, row.in_place.algbw]
        out.append(Metric.of(f"nccl.{collective}.busbw", "GB/s", samples_bus, labels))
        out.append(Metric.of(f"nccl.{collective}.algbw", "GB/s", samples_alg, labels))
    return out


def run_nccl_tests(nodes: Sequence[NodeLike], binary: str = "all_reduce_perf", args: Sequence[str] = (),
                   launcher: Sequence[str] | str | None = None, timeout_s: float = 600,
                   gpus_per_node: int | None = None) -> tuple[NcclTestsResult, list[Metric]]:
    """Run an nccl-tests binary where the node has it; multi-node through the rig's MPI launcher.

    ``launcher`` is the argv prefix the rig names (e.g. ``mpirun -np 16 -H a:8,b:8``), run on the first node.
    ProbeSkipped when the binary is absent, or when several nodes are given and no launcher is named.
    """
    first = nodes[0]
    path = has_command(first, binary)
    if path is None:
        raise ProbeSkipped(f"node {first.name} has no {binary} on its PATH (nccl-tests not installed)")
    if len(nodes) > 1 and not launcher:
        raise ProbeSkipped(f"{binary} across {len(nodes)} nodes needs the rig's MPI launcher; none is named")
    prefix = shlex.split(launcher) if isinstance(launcher, str) else list(launcher or [])
    argv = [*prefix, path, *args]
    res = first.run(argv, timeout=timeout_s, check=False)
    try:
        result = parse_nccl_tests(res.stdout + "\n" + res.stderr)
    except Exception as exc:
        raise ProbeFailed(f"{binary} on {first.name} (exit {res.exit_code}) printed no nccl-tests table: "
                          f"{exc}; stderr tail:\n{_tail(res.stderr)}") from exc
    if result.error:
        raise ProbeFailed(f"{binary} on {_label_node(nodes)} failed: {result.error}")
    if not result.rows:
        raise ProbeFailed(f"{binary} on {_label_node(nodes)} printed a table with no rows")
    for s in result.skipped:
        log.warning("%s: skipped damaged line %d (%s): %r", binary, s.line_no, s.reason, s.line)
    if gpus_per_node is None and result.nranks:
        # the ranks nccl-tests listed (-g per process, or one rank per GPU under the launcher), per node:
        # the label the baselines name, so that an 8-GPU baseline never matches a 1-GPU run
        gpus_per_node = result.nranks // len(nodes)
    return result, nccl_tests_metrics(result, binary, len(nodes), _label_node(nodes), gpus_per_node)
