"""What the kubelet's side says about a node's devices, as plain values (no gRPC needed to hold or compare them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PluginDevice:
    """One device as the plugin advertises it (ListAndWatch): its id, health and NUMA nodes."""

    id: str
    health: str
    numa: tuple[int, ...]


@dataclass(frozen=True)
class AllocatableDevices:
    """One resource's devices in the kubelet's GetAllocatableResources answer."""

    resource: str
    ids: tuple[str, ...]
    numa: tuple[int, ...]


@dataclass(frozen=True)
class VerifiedGpu:
    """A GPU hilt verified: its index (GPU<i> of topo -m, NVML's order), UUID and NUMA nodes (None: unknown)."""

    index: int
    uuid: str
    numa: frozenset[int] | None

    def __str__(self) -> str:
        return f"GPU{self.index} ({self.uuid})"
