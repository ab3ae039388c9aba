"""NVML and the driver: the promised driver, every GPU present and healthy, no critical Xid since boot."""

import json

import allure
import pytest

from hilt.fabric.compare import compare_inventory, compare_nvml
from hilt.fabric.xid import check_xids


def test_driver_and_gpus(node, profile, fabric_snapshot):
    allure.attach(
        fabric_snapshot.raw("driver_version"),
        name="/proc/driver/nvidia/version",
        attachment_type=allure.attachment_type.TEXT,
    )
    allure.attach(fabric_snapshot.raw("nvml"), name="NVML collector", attachment_type=allure.attachment_type.JSON)
    report = fabric_snapshot.nvml()
    diffs = compare_inventory(profile, driver=fabric_snapshot.driver_version(), gpus=fabric_snapshot.gpu_information())
    diffs += compare_nvml(profile, report)
    if diffs:
        pytest.fail(f"{node.name}: driver/GPUs differ from profile {profile.name}:\n" + "\n".join(diffs), pytrace=False)
    allure.attach(json.dumps([g.name for g in report.gpus]), name="GPUs", attachment_type=allure.attachment_type.JSON)


def test_no_critical_xid(node, fabric_snapshot):
    allure.attach(fabric_snapshot.kernel_log(), name="kernel log", attachment_type=allure.attachment_type.TEXT)
    diffs = check_xids(fabric_snapshot.xids())
    if diffs:
        pytest.fail(f"{node.name}: critical Xid events since boot:\n" + "\n".join(diffs), pytrace=False)
