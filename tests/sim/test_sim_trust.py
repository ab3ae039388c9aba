"""The sim images' trust facts, read the way a node reads them, without a rack.

Each image is unpacked and mounted as a sim node mounts it (hilt.sim.nodeinit, in a private mount namespace:
root, no network namespace, so no sim lock), then hilt's own trust script and NVML collector run there and
the suite's checks judge what they print against the sim-4gpu profile and the BMC's side of the sim machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hilt.fabric.nvml import parse_nvml_report
from hilt.fabric.snapshot import split_sections
from hilt.fabric.trustcheck import check_device_nodes, check_firmware, check_kernel, check_modules, check_secure_boot
from hilt.fabric.trustread import parse_trust_sections, trust_script
from hilt.profiles.model import FirmwareSpec, load_profile
from hilt.sim.image import STANDARD_IMAGES, build_standard_images, read_image, unpack_root
from hilt.sim.trust_view import BMC_FIRMWARE, SIGNER, SYSTEM_FIRMWARE, apply_device_mode, trust_spec

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR = ROOT / "hilt/fabric/scripts/collect_nvml.py"
IMAGES = ["good", "secureboot-off", "unsigned-module", "firmware-mismatch"]
BMC_SECURE_BOOT = "Enabled" if SYSTEM_FIRMWARE["secure_boot"] else "Disabled"
AS_A_NODE = pytest.mark.needs_root("an image is mounted as a sim node mounts it, in a private mount namespace")

_NODE = """
import os, sys
from pathlib import Path
from hilt.sim.nodeinit import mount_image
mount_image(Path(sys.argv[1]), Path(sys.argv[2]))
os.execvp(sys.argv[3], sys.argv[3:])
"""


def _as_node(root: Path, run_dir: Path, *argv: str, stdin: str = "") -> str:
    """Run argv in a mount namespace that shows ``root`` as a sim node of this image does."""
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", sys.executable, "-c", _NODE,
                           str(root), str(run_dir), *argv], input=stdin, capture_output=True, text=True,
                          timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "PATH": "/usr/local/bin:/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    """image name -> what the sim-4gpu node booted with it shows: (trust facts, NVML report, image identity)."""
    tmp = tmp_path_factory.mktemp("trust-images")
    profile = load_profile("sim-4gpu")
    shown = {}
    for path in build_standard_images(tmp / "images", names=IMAGES, profile=profile.name):
        image = read_image(path)
        run_dir = tmp / image.name
        root = unpack_root(image, run_dir / "root", profile.name)
        apply_device_mode(root, image.manifest)
        (run_dir / "boot_id").write_text("00000000-0000-4000-8000-000000000000\n")
        (run_dir / "osrelease").write_text(image.manifest["kernel"] + "\n")
        out = _as_node(root, run_dir, "bash", "-s", stdin=trust_script(profile.trust.modules))
        facts = parse_trust_sections(split_sections(out), "gpu-03", profile.trust.modules)
        nvml = parse_nvml_report(_as_node(root, run_dir, "env", "PYTHONPATH=/opt/hilt-sim/python", sys.executable,
                                          str(COLLECTOR)))
        shown[image.name] = (facts, nvml, image.identity())
    return shown


def _problems(profile, facts, nvml, identity) -> dict[str, list[str]]:
    """The five checks of suites/test_trust.py, as the suite runs them on a sim node."""
    spec = profile.trust
    image = (identity["image_id"], FirmwareSpec.model_validate(identity["firmware"]))
    firmware = {"bios": [SYSTEM_FIRMWARE["versions"]["BiosVersion"]], "bmc": [BMC_FIRMWARE],
                "vbios": [g.vbios for g in nvml.gpus], "inforom": [g.inforom for g in nvml.gpus]}
    return {
        "test_secure_boot": check_secure_boot(spec, facts, BMC_SECURE_BOOT),
        "test_kernel_lockdown_and_taint": check_kernel(spec, facts),
        "test_module_signatures": check_modules(spec, facts),
        "test_firmware_matrix": check_firmware(spec, firmware, image),
        "test_device_nodes": check_device_nodes(facts, profile.gpu_count),
    }


@AS_A_NODE
def test_good_image_shows_a_trusted_node(booted):
    facts, nvml, identity = booted["good"]
    assert identity["firmware"] == {"vbios": ["96.00.99.00.01"], "inforom": ["G520.0200.00.05"]}
    assert facts.efi and facts.secure_boot_efivar is True and facts.mokutil is True
    assert facts.lockdown == "integrity" and facts.sig_enforce is True
    assert facts.taint.mask == 4096 and facts.taint.letters == ("O",)
    modules = ("nvidia", "nvidia_uvm", "nvidia_modeset", "nvidia_drm")
    assert {m: s.signer for m, s in facts.modules.items()} == dict.fromkeys(modules, SIGNER)
    assert facts.device_nodes == {f"/dev/nvidia{i}": 0o660 for i in range(4)}
    assert [(g.vbios, g.inforom) for g in nvml.gpus] == [("96.00.99.00.01", "G520.0200.00.05")] * 4
    assert _problems(load_profile("sim-4gpu"), facts, nvml, identity) == {
        "test_secure_boot": [], "test_kernel_lockdown_and_taint": [], "test_module_signatures": [],
        "test_firmware_matrix": [], "test_device_nodes": []}


@AS_A_NODE
@pytest.mark.parametrize(("image", "failing", "message"), [
    ("secureboot-off", "test_secure_boot", "Secure Boot: BMC says Enabled, OS says disabled"),
    ("unsigned-module", "test_module_signatures",
     "module nvidia_uvm: expected a signature by hilt sim: NVIDIA driver module signing key, found none (unsigned)"),
    ("firmware-mismatch", "test_firmware_matrix",
     "firmware vbios[2]: expected one of 96.00.99.00.01, found 96.00.74.00.1C"),
])
def test_each_trust_image_fails_exactly_its_check(booted, image, failing, message):
    problems = _problems(load_profile("sim-4gpu"), *booted[image])
    assert {test for test, found in problems.items() if found} == {failing}, problems
    assert message in problems[failing]
    if image == "firmware-mismatch":  # the image's own matrix (its identity) says the same
        assert ("firmware vbios[2]: expected one of 96.00.99.00.01 (image hilt-sim-firmware-mismatch's "
                "compatibility matrix), found 96.00.74.00.1C") in problems[failing]


def test_world_writable_device_nodes_and_bad_trust_fields(tmp_path):
    """The driver's default mode (0666) shows as world-writable; the image's trust fields are validated."""
    from hilt.errors import ConfigError
    from hilt.sim.image import build_image

    image = read_image(build_image("w", tmp_path, trust={"device_mode": "0666"}))
    root = unpack_root(image, tmp_path / "root")
    apply_device_mode(root, image.manifest)
    assert (root / "dev/nvidia0").stat().st_mode & 0o777 == 0o666
    with pytest.raises(ConfigError, match=r"sim image 'x': trust: unknown field\(s\) \['secureboot'\]; valid: .*"
                                          r"secure_boot"):
        build_image("x", tmp_path, trust={"secureboot": False})
    with pytest.raises(ConfigError, match="trust.lockdown: 'strict'; valid: none, integrity, confidentiality"):
        build_image("x", tmp_path, trust={"lockdown": "strict"})
    with pytest.raises(ConfigError, match=r"compatible_firmware.vbois: Extra inputs are not permitted \(valid: bios"):
        build_image("x", tmp_path, compatible_firmware={"vbois": ["1"]})
    assert trust_spec(STANDARD_IMAGES["secureboot-off"]["trust"])["secure_boot"] is False
    assert json.loads((root / "opt/hilt-sim/manifest.json").read_text())["trust"] == {"device_mode": "0666"}
