"""Coherent memory: each GPU's memory is exposed to the OS as a CPU-less NUMA node of its size, and the GPUs
address host memory the coherent way (Addressing Mode ATS, GPU C2C Mode Enabled on Grace hosts).

Applies where the node's profile has a `coherent_memory:` section (docs/fabric.md); elsewhere it skips. The NUMA
layout is `numactl -H`, or the kernel's /sys/devices/system/node files where numactl is not installed; each GPU's
own node is the GPU NUMA ID of `nvidia-smi topo -m` where the host prints one, else the nodes are counted.
"""

from __future__ import annotations

import allure
import pytest

from hilt.errors import NodeError
from hilt.fabric.fusioncheck import check_coherent_memory


@pytest.fixture
def coherent_memory_spec(profile):
    """The profile's `coherent_memory:` section; the test skips (not applicable) before reading the node without one."""
    if profile.coherent_memory is None:
        pytest.skip(f"profile {profile.name} has no coherent_memory: section (no GPU memory as NUMA nodes expected)")
    return profile.coherent_memory


def test_coherent_memory(node, profile, coherent_memory_spec, fusion_snapshot):
    spec = coherent_memory_spec
    allure.attach(fusion_snapshot.raw("numa"), name="NUMA nodes", attachment_type=allure.attachment_type.TEXT)
    nodes = fusion_snapshot.numa()
    queries, why = None, None
    if spec.addressing_mode is not None or spec.c2c_mode is not None:
        try:
            queries = fusion_snapshot.gpu_queries()
        except NodeError as exc:
            why = str(exc).removeprefix(f"{node.name}: ")  # the failure names the node once
    problems = check_coherent_memory(spec, nodes, profile.gpu_count, fusion_snapshot.gpu_numa_ids(), queries, why)
    if problems:
        pytest.fail(f"{node.name}: coherent memory differs from profile {profile.name}:\n" + "\n".join(problems),
                    pytrace=False)
