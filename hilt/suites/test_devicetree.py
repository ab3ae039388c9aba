"""Device tree: the firmware exposes the NVLink nodes to the OS (RISC-V hosts with NVLink Fusion)."""

import allure
import pytest

from hilt.fabric.compare import compare_devicetree


def _describe(tree) -> str:
    if tree is None:
        return "(no /sys/firmware/devicetree/base/firmware on this node)"
    lines = []
    for path, dt_node in sorted(tree.nodes.items()):
        lines.append(f"/{path}")
        lines += [f"    {name} = {value!r}" for name, value in sorted(dt_node.properties.items())]
    return "\n".join(lines)


def test_devicetree_nvlink_nodes(node, profile, fabric_snapshot):
    if profile.devicetree is None:
        pytest.skip(f"profile {profile.name} expects no device-tree NVLink nodes")
    tree = fabric_snapshot.devicetree()
    allure.attach(_describe(tree), name="device tree /firmware", attachment_type=allure.attachment_type.TEXT)
    diffs = compare_devicetree(profile, tree)
    if diffs:
        pytest.fail(
            f"{node.name}: device tree differs from profile {profile.name}:\n" + "\n".join(diffs), pytrace=False
        )
