"""Trust before use: the node boots the way production will (Secure Boot, lockdown, taint, signed NVIDIA
modules, compatible firmware, safe device nodes), per the profile's `trust:` section (docs/trust.md)."""

from __future__ import annotations

import json

import allure
import pytest

from hilt.bmc import Bmc
from hilt.fabric.trustcheck import (
    check_device_nodes,
    check_firmware,
    check_kernel,
    check_modules,
    check_secure_boot,
)
from hilt.fabric.trustread import read_trust_facts
from hilt.record.run_record import FIRMWARE_PROPERTY

_FACTS: dict[str, object] = {}
_BMC: dict[str, object] = {}


@pytest.fixture
def trust(profile):
    if profile.trust is None:
        pytest.skip(f"profile {profile.name} has no trust: section")
    return profile.trust


@pytest.fixture
def trust_facts(node, trust):
    """The OS's trust facts, read once per node in one SSH round trip."""
    if node.name not in _FACTS:
        facts = read_trust_facts(node, trust.modules)
        _FACTS[node.name] = facts
        allure.attach(json.dumps(facts.__dict__, default=lambda o: getattr(o, "__dict__", str(o)), indent=1),
                      name="trust facts", attachment_type=allure.attachment_type.JSON)
    return _FACTS[node.name]


@pytest.fixture
def bmc_inventory(node):
    """What the node's BMC says (SecureBoot resource, BIOS and BMC firmware versions)."""
    if node.name not in _BMC:
        with Bmc.from_config(node.config, name=node.name) as bmc:
            _BMC[node.name] = bmc.inventory()
    return _BMC[node.name]


def _fail(node, problems: list[str]) -> None:
    if problems:
        pytest.fail("\n".join(f"{node.name}: {p}" for p in problems), pytrace=False)


def test_secure_boot(node, trust, trust_facts, bmc_inventory):
    _fail(node, check_secure_boot(trust, trust_facts, bmc_inventory.secure_boot))


def test_kernel_lockdown_and_taint(node, trust, trust_facts, request):
    facts = trust_facts
    kernel = {"taint": facts.taint.mask, "taint_letters": "".join(facts.taint.letters),
              "lockdown": facts.lockdown, "sig_enforce": facts.sig_enforce}
    request.node.user_properties.append(("hilt.kernel", json.dumps(kernel)))
    _fail(node, check_kernel(trust, facts))


def test_module_signatures(node, trust, trust_facts):
    _fail(node, check_modules(trust, trust_facts))


def test_firmware_matrix(node, trust, bmc_inventory, fabric_snapshot, expected_image, hilt_session, request):
    gpus = fabric_snapshot.nvml().gpus
    found = {"bios": [bmc_inventory.bios_version], "bmc": [bmc_inventory.bmc_firmware],
             "vbios": [g.vbios for g in gpus], "inforom": [g.inforom for g in gpus]}
    request.node.user_properties.append((FIRMWARE_PROPERTY, json.dumps(found)))  # not record_property: xunit1-only
    allure.attach(json.dumps(found, indent=1), name="firmware versions", attachment_type=allure.attachment_type.JSON)
    image = None
    if expected_image is not None:
        name = expected_image.identity.image_id or hilt_session.image_name or expected_image.url
        image = (name, expected_image.identity.firmware)
    _fail(node, check_firmware(trust, found, image))


def test_device_nodes(node, profile, trust, trust_facts):
    _fail(node, check_device_nodes(trust_facts, profile.gpu_count))
