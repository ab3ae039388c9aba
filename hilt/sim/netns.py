"""Host networking of a sim: one bridge, one network namespace and veth per node, tbf rate limits.

Only names that start with ``hilt`` and addresses inside 10.200.0.0/16 on our own bridge are ever created
or deleted; everything is undone by name, never by pattern over other people's interfaces.
"""

from __future__ import annotations

import ipaddress
import subprocess

from hilt.errors import HiltError

SUBNET_BASE = "10.200"


class SimNetError(HiltError):
    """A host networking step of the simulated rack failed."""


def _run(argv: list[str], check: bool = True, commands: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """``argv``; with ``commands``, ``argv`` is an ``ip ... -batch -`` reading them, one process for all."""
    stdin = "".join(f"{c}\n" for c in commands) if commands else None
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, input=stdin)
    if check and proc.returncode != 0:
        shown = " ".join(argv) + (f" <<< {'; '.join(commands)}" if commands else "")
        raise SimNetError(f"`{shown}` failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc


def bridge_name(subnet: int) -> str:
    return f"hiltbr{subnet}"


def veth_name(subnet: int, index: int) -> str:
    return f"hv{subnet}n{index}"


def namespace_name(sim: str, node: str) -> str:
    return f"hilt-{sim}-{node}"


def node_address(subnet: int, index: int) -> str:
    return f"{SUBNET_BASE}.{subnet}.{index + 2}"


def check_subnet_free(subnet: int) -> None:
    """Refuse a subnet that some interface other than our bridge already routes."""
    if not 0 <= subnet <= 255:
        raise SimNetError(f"sim subnet index {subnet} is out of range 0..255")
    net = ipaddress.ip_network(f"{SUBNET_BASE}.{subnet}.0/24")
    routes = _run(["ip", "-o", "route", "show"]).stdout.splitlines()
    for line in routes:
        dest, _, rest = line.partition(" ")
        if dest == "default" or f"dev {bridge_name(subnet)} " in rest + " ":
            continue
        try:
            if ipaddress.ip_network(dest, strict=False).overlaps(net):
                raise SimNetError(f"subnet {net} is already in use on this host ({line.strip()}); "
                                  "choose another sim subnet index")
        except ValueError:
            continue


def create_bridge(subnet: int) -> str:
    name = bridge_name(subnet)
    _run(["ip", "link", "add", name, "type", "bridge"])
    _run(["ip", "addr", "add", f"{SUBNET_BASE}.{subnet}.1/24", "dev", name])
    _run(["ip", "link", "set", name, "up"])
    return name


def add_namespaces(names: list[str]) -> None:
    """Create the nodes' namespaces, one ``ip`` for all of them: the first one mounts /run/netns, which
    concurrent ``ip netns add`` calls would race to do."""
    if names:
        _run(["ip", "-batch", "-"], commands=[f"netns add {ns}" for ns in names])


def create_node_namespace(sim: str, node: str, subnet: int, index: int, *, added: bool = False) -> tuple[str, str]:
    """Namespace ``hilt-<sim>-<node>`` with eth0 on the sim's bridge; returns (namespace, host veth).

    ``added``: the namespace exists (:func:`add_namespaces`). Three ``ip`` runs (one inside the namespace, as a
    batch) rather than seven: the sim sets nodes up side by side, and each process costs CPU on a small host.
    """
    ns, veth = namespace_name(sim, node), veth_name(subnet, index)
    if not added:
        _run(["ip", "netns", "add", ns])
    _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    _run(["ip", "link", "set", veth, "master", bridge_name(subnet), "up"])
    _run(["ip", "-n", ns, "-batch", "-"], commands=[
        f"addr add {node_address(subnet, index)}/24 dev eth0", "link set eth0 up", "link set lo up",
        f"route add default via {SUBNET_BASE}.{subnet}.1"])
    return ns, veth


def set_link_rate(ns: str, mbit: float) -> None:
    """A tbf rate limit on the node's eth0 and lo (netem is not in this kernel; tbf is).

    The burst must exceed lo's 64 KiB MTU or large loopback packets are dropped.
    """
    burst = max(256 * 1024, int(mbit * 1_000_000 / 8 / 100))
    for dev in ("eth0", "lo"):
        _run(["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
              "rate", f"{mbit}mbit", "burst", str(burst), "latency", "50ms"])


def namespace_pids(ns: str) -> list[int]:
    proc = _run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def list_namespaces(prefix: str) -> list[str]:
    out = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0].startswith(prefix)]


def link_exists(name: str) -> bool:
    return _run(["ip", "link", "show", name], check=False).returncode == 0


def delete_namespace(ns: str) -> None:
    _run(["ip", "netns", "del", ns], check=False)


def delete_link(name: str) -> None:
    if link_exists(name):
        _run(["ip", "link", "del", name], check=False)
