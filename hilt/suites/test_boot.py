"""Each node runs the requested image: identity as declared, a fresh boot, kernel and driver as expected."""

from __future__ import annotations

import pytest

from hilt.provision.boot import read_identity


def test_image_identity(node, boot_result, expected_image, hilt_session):
    """The node runs the image we booted, not the one it ran before."""
    identity = read_identity(node)
    if expected_image is None:
        pytest.skip("no image given (--image) and the rig has no default_image: nothing to compare")
    want = expected_image.identity
    problems = []
    if want.image_id and identity["image_id"] != want.image_id:
        problems.append(f"image id: expected {want.image_id}, found {identity['image_id']}")
    if want.kernel and identity["kernel"] != want.kernel:
        problems.append(f"kernel: expected {want.kernel}, found {identity['kernel']}")
    if want.driver and identity["driver"] != want.driver:
        problems.append(f"driver: expected {want.driver}, found {identity['driver']}")
    assert not problems, f"node {node.name}: " + "; ".join(problems)


def test_fresh_boot(node, boot_result, hilt_session):
    """The boot id changed across the boot: the old OS is not what answered."""
    if not hilt_session.boot:
        pytest.skip("--no-boot: nothing was booted")
    assert boot_result.old_boot_id != boot_result.boot_id, (
        f"node {node.name}: boot id {boot_result.boot_id} did not change across the boot"
    )
    assert node.boot_id() == boot_result.boot_id, f"node {node.name} rebooted during the run"
