"""Compare what a node (or the lease) shows of its coherent fabric with its profile (pure; one function per check).

The profile sections are `c2c:`, `coherent_memory:` and `nvlink_domain:` (hilt.profiles.model). Each function
returns the problems as sentences naming the GPU, link, NUMA node or field, with what was expected and what was
found; an empty list means the check passes. Per-node checks leave the node's name to the suite (it prefixes
it); the lease-wide ones name the nodes themselves.

Each fault shows in one check only: a GPU whose fabric is still training fails check_fabric, and check_domain
leaves it out (its clique and ClusterUUID read N/A until training ends), so "one tray is in another clique" and
"one GPU has not finished training" stay two different findings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hilt.fabric.c2c import C2cGpu
from hilt.fabric.gpuquery import GpuQuery
from hilt.fabric.imex import ImexStatus
from hilt.fabric.numa import NumaNode
from hilt.profiles.model import C2cSpec, CoherentMemorySpec, NvlinkDomainSpec

#: What the IMEX matrix codes mean (nvidia-imex-ctl's legend), for sentences.
IMEX_CODES = {"C": "Connected", "I": "Invalid", "N": "Never Connected", "R": "Recovering", "D": "Disconnected",
              "A": "Authenticating", "!V!": "Version mismatch", "!M!": "Node map mismatch"}
ZERO_UUID = "00000000-0000-0000-0000-000000000000"


def gpu_label(index: int, query: GpuQuery | None = None) -> str:
    """``GPU2 (00000018:06:00.0)``: the index nvidia-smi numbers the GPU by, and its bus id where known."""
    bus = query.pci_bus_id if query is not None else None
    return f"GPU{index}" + (f" ({bus})" if bus else "")


def _ranges(values: Sequence[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5"."""
    runs: list[list[int]] = []
    for v in sorted(set(values)):
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


# ------------------------------------------------------------------------------------------------ C2C


def check_c2c(spec: C2cSpec, gpus: Mapping[int, C2cGpu], gpu_count: int) -> list[str]:
    """Every GPU has ``links_per_gpu`` C2C links, all active, none slower than ``min_link_gbps``."""
    if not gpus:
        return [f"C2C: nvidia-smi c2c -s says no device supports C2C; expected {gpu_count} GPU"
                f"{'s' * (gpu_count != 1)} with {spec.links_per_gpu} C2C links each"]
    problems = []
    if len(gpus) != gpu_count:
        problems.append(f"C2C: expected {gpu_count} GPUs with C2C links, found {len(gpus)} "
                        f"({', '.join(f'GPU{i}' for i in sorted(gpus))})")
    for index, gpu in sorted(gpus.items()):
        if len(gpu.links) != spec.links_per_gpu:
            problems.append(f"GPU{index} C2C: expected {spec.links_per_gpu} links, found {len(gpu.links)}"
                            + (f" (links {_ranges(list(gpu.links))})" if gpu.links else ""))
        for link, speed in sorted(gpu.links.items()):
            if speed is None:
                problems.append(f"GPU{index} C2C link {link}: inactive, expected active")
            elif spec.min_link_gbps is not None and speed < spec.min_link_gbps:
                problems.append(f"GPU{index} C2C link {link}: {speed:g} GB/s, expected at least "
                                f"{spec.min_link_gbps:g} GB/s")
    return problems


# ------------------------------------------------------------------------------------- coherent memory


def check_coherent_memory(spec: CoherentMemorySpec, nodes: Sequence[NumaNode], gpu_count: int,
                          gpu_numa_ids: Mapping[int, int | None] | None = None,
                          queries: Sequence[GpuQuery] | None = None, query_error: str | None = None) -> list[str]:
    """One CPU-less NUMA node of at least ``min_node_mb`` per GPU, and each GPU's addressing and C2C mode.

    ``gpu_numa_ids``: GPU index -> the NUMA node of its memory as `nvidia-smi topo -m` names it (GPU NUMA ID),
    where the host has that column; then each GPU's own node is checked. Without it (a host without nvidia-smi,
    such as the RISC-V guests) the CPU-less nodes large enough are counted. ``queries``: `nvidia-smi -q` per GPU
    (None with ``query_error`` when it could not be read).
    """
    problems = (_numa_per_gpu(spec, nodes, gpu_numa_ids) if gpu_numa_ids is not None
                else _numa_count(spec, nodes, gpu_count))
    wanted = [(field, value) for field, value in (("Addressing Mode", spec.addressing_mode),
                                                 ("GPU C2C Mode", spec.c2c_mode)) if value is not None]
    if not wanted:
        return problems
    if queries is None:
        return problems + [f"{field}: expected {value} on every GPU, but nvidia-smi -q could not be read: "
                           f"{query_error or 'no output'}" for field, value in wanted]
    if len(queries) != gpu_count:
        problems.append(f"nvidia-smi -q: expected {gpu_count} GPUs, found {len(queries)}")
    for index, query in enumerate(queries):
        found = {"Addressing Mode": query.addressing_mode, "GPU C2C Mode": query.c2c_mode}
        for field, value in wanted:
            if found[field] != value:
                problems.append(f"{gpu_label(index, query)}: {field}: expected {value}, "
                                f"found {found[field] or 'not printed (a driver without it)'}")
    return problems


def _node_text(node: NumaNode) -> str:
    size = "size not reported" if node.memory_mb is None else f"{node.memory_mb} MB"
    return f"node {node.id} ({'CPUs ' + _ranges(node.cpus) if node.cpus else 'no CPUs'}, {size})"


def _numa_per_gpu(spec: CoherentMemorySpec, nodes: Sequence[NumaNode],
                  gpu_numa_ids: Mapping[int, int | None]) -> list[str]:
    by_id = {n.id: n for n in nodes}
    problems = []
    for gpu, node_id in sorted(gpu_numa_ids.items()):
        if node_id is None:
            problems.append(f"GPU{gpu}: nvidia-smi topo -m shows no GPU NUMA ID: its memory is not a NUMA node "
                            f"(expected a CPU-less node of at least {spec.min_node_mb} MB)")
            continue
        node = by_id.get(node_id)
        if node is None:
            problems.append(f"GPU{gpu}: its memory's NUMA node {node_id} (GPU NUMA ID in topo -m) is absent; the OS "
                            f"shows nodes {_ranges([n.id for n in nodes]) or 'none'}")
        elif node.cpus:
            problems.append(f"GPU{gpu}: NUMA node {node_id} has CPUs {_ranges(node.cpus)}, expected a CPU-less "
                            "memory node")
        elif node.memory_mb is None:
            problems.append(f"GPU{gpu}: NUMA node {node_id}: size not reported, expected at least "
                            f"{spec.min_node_mb} MB")
        elif node.memory_mb < spec.min_node_mb:
            problems.append(f"GPU{gpu}: NUMA node {node_id} holds {node.memory_mb} MB, expected at least "
                            f"{spec.min_node_mb} MB")
    return problems


def _numa_count(spec: CoherentMemorySpec, nodes: Sequence[NumaNode], gpu_count: int) -> list[str]:
    memory_only = [n for n in nodes if not n.cpus]
    large = [n for n in memory_only if n.memory_mb is not None and n.memory_mb >= spec.min_node_mb]
    if len(large) >= gpu_count:
        return []
    shown = [n for n in memory_only if n.memory_mb != 0][:8]
    seen = "; CPU-less nodes: " + ", ".join(_node_text(n) for n in shown) if shown else "; no CPU-less node with memory"
    return [f"coherent memory: expected {gpu_count} CPU-less NUMA node{'s' * (gpu_count != 1)} of at least "
            f"{spec.min_node_mb} MB (one per GPU), found {len(large)}{seen}"]


# ---------------------------------------------------------------------------------- fabric and domain


def check_fabric(spec: NvlinkDomainSpec, queries: Sequence[GpuQuery], gpu_count: int) -> list[str]:
    """Every GPU of one node: Fabric State and Status as expected, every Health row healthy."""
    problems = []
    if len(queries) != gpu_count:
        problems.append(f"nvidia-smi -q: expected {gpu_count} GPUs, found {len(queries)}")
    for index, query in enumerate(queries):
        name = gpu_label(index, query)
        fabric = query.fabric
        if fabric is None:
            problems.append(f"{name}: no Fabric section in nvidia-smi -q, expected state {spec.fabric_state}")
            continue
        if fabric.state != spec.fabric_state:
            # status and health stay N/A until training ends: the state is the finding
            problems.append(f"{name}: fabric state {fabric.state or 'not printed'}, expected {spec.fabric_state}")
            continue
        if fabric.status != spec.fabric_status:
            problems.append(f"{name}: fabric status {fabric.status or 'not printed'}, expected {spec.fabric_status}")
        for row, value in fabric.health.items():
            accepted = spec.accepted(row)
            if value not in accepted:
                problems.append(f"{name}: fabric health {row}: {value}, expected {' or '.join(accepted)}")
    return problems


def _trained(spec: NvlinkDomainSpec, query: GpuQuery) -> bool:
    return query.fabric is not None and query.fabric.state == spec.fabric_state


def check_domain(spec: NvlinkDomainSpec, by_node: Mapping[str, Sequence[GpuQuery]]) -> list[str]:
    """The lease's nodes form one NVLink domain: one ClusterUUID and one clique on every trained GPU, and, where a
    multi-node domain is expected, a clique and a non-zero ClusterUUID on each."""
    problems = []
    groups: dict[tuple[str | None, int | None], dict[str, list[int]]] = {}
    for node, queries in sorted(by_node.items()):
        for index, query in enumerate(queries):
            if not _trained(spec, query):
                continue  # check_fabric reports it
            fabric = query.fabric
            assert fabric is not None
            if spec.multi_node:
                where = f"{node} {gpu_label(index, query)}"
                if fabric.cluster_uuid is None or fabric.cluster_uuid.strip("0-") == "":
                    problems.append(f"{where}: ClusterUUID {fabric.cluster_uuid or 'N/A'}: a multi-node domain "
                                    "needs a non-zero ClusterUUID (the fabric manager assigned none)")
                if fabric.clique_id is None:
                    problems.append(f"{where}: CliqueId N/A: a multi-node domain needs a clique")
            groups.setdefault((fabric.cluster_uuid, fabric.clique_id), {}).setdefault(node, []).append(index)
    if len(groups) > 1:
        parts = []
        for (uuid, clique), members in sorted(groups.items(), key=lambda g: (-sum(map(len, g[1].values())),
                                                                              str(g[0]))):
            who = ", ".join(node if len(gpus) == len(by_node[node]) else f"{node} GPU{_ranges(gpus)}"
                            for node, gpus in sorted(members.items()))
            parts.append(f"clique {clique if clique is not None else 'N/A'} (ClusterUUID {uuid or 'N/A'}): {who}")
        nodes = ", ".join(sorted(by_node))
        problems.append(f"not one NVLink domain: expected one ClusterUUID and clique across {nodes}, found "
                        f"{len(groups)}: " + "; ".join(parts))
    return problems


def check_imex(views: Mapping[str, ImexStatus | str], addresses: Mapping[str, Sequence[str]]) -> list[str]:
    """IMEX as each node of the lease sees it: Domain State UP, every IMEX node READY, every connection C, and every
    lease node among IMEX's nodes. ``views``: node -> its `nvidia-imex-ctl -N`, or why it could not be read;
    ``addresses``: node -> the addresses it answers on. A finding seen from several nodes is said once."""
    seen: dict[str, list[str]] = {}
    owner = {addr: node for node, addrs in addresses.items() for addr in addrs}

    def add(text: str, viewer: str) -> None:
        seen.setdefault(text, []).append(viewer)

    for viewer, view in sorted(views.items()):
        if isinstance(view, str):
            add(f"IMEX not read on {viewer}: {view}", viewer)
            continue
        if view.domain_state != "UP":
            add(f"IMEX Domain State {view.domain_state}, expected UP", viewer)
        for imex_node in view.nodes:
            if imex_node.status != "READY":
                who = f", {owner[imex_node.address]}" if imex_node.address in owner else ""
                add(f"IMEX node #{imex_node.index} ({imex_node.address}{who}) is {imex_node.status}, expected READY",
                    viewer)
        for (src, dst), code in sorted(view.connections.items()):
            if code != "C":
                add(f"IMEX connection #{src} -> #{dst}: {code} ({IMEX_CODES.get(code, 'not a legend code')}), "
                    "expected C (Connected)", viewer)
        listed = {n.address for n in view.nodes}
        for node, addrs in sorted(addresses.items()):
            if not listed & set(addrs):
                add(f"IMEX does not list {node} ({', '.join(addrs) or 'no address known'}) among its "
                    f"{len(view.nodes)} nodes", viewer)
    everyone = sorted(views)
    out = []
    for text, viewers in seen.items():
        if text.startswith("IMEX not read on "):
            pass  # names its node already
        elif len(everyone) > 1 and sorted(viewers) == everyone:
            text += " (seen from every node)"
        else:
            text += f" (seen from {', '.join(viewers)})"
        out.append(text)
    return out
