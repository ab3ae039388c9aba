"""NVLink: every link the platform was designed with is active, at full speed."""

import allure
import pytest

from hilt.fabric.compare import compare_nvlink


def test_nvlink_links_active(node, profile, fabric_snapshot):
    allure.attach(
        fabric_snapshot.raw("nvlink_status"), name="nvidia-smi nvlink -s", attachment_type=allure.attachment_type.TEXT
    )
    allure.attach(
        fabric_snapshot.raw("nvlink_errors"), name="nvidia-smi nvlink -e", attachment_type=allure.attachment_type.TEXT
    )
    diffs = compare_nvlink(profile, fabric_snapshot.nvlink_status())
    if diffs:
        pytest.fail(f"{node.name}: NVLink differs from profile {profile.name}:\n" + "\n".join(diffs), pytrace=False)
