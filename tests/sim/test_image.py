"""Sim images: deterministic bytes, manifest validation, sha256 check, overlay contents."""

from __future__ import annotations

import json

import pytest

from hilt.errors import ConfigError
from hilt.sim.image import STANDARD_IMAGES, build_image, build_standard_images, read_image, unpack_root


def test_same_inputs_give_the_same_sha_and_the_cache_is_used(tmp_path):
    a = read_image(build_image("good", tmp_path / "a", **STANDARD_IMAGES["good"]))
    b = read_image(build_image("good", tmp_path / "b", cache_dir=tmp_path / "cache", **STANDARD_IMAGES["good"]))
    c = read_image(build_image("good", tmp_path / "c", cache_dir=tmp_path / "cache", **STANDARD_IMAGES["good"]))
    assert a.sha256 == b.sha256 == c.sha256
    slower = read_image(build_image("good", tmp_path / "d", link_rate_mbit=500))
    assert slower.sha256 != a.sha256 and slower.manifest["link_rate_mbit"] == 500


def test_standard_set_identities(tmp_path):
    images = {p.stem: read_image(p) for p in build_standard_images(tmp_path)}
    assert set(images) == set(STANDARD_IMAGES)
    assert images["broken"].manifest["boot"] == "never"
    assert images["regressed"].manifest["link_rate_mbit"] < images["good"].manifest["link_rate_mbit"]
    wrong = images["wrong-driver"]
    # the image is what it says it is; it is the platform profile that expects another driver
    assert wrong.identity()["driver"] == wrong.manifest["driver"] != images["good"].identity()["driver"]
    root = unpack_root(wrong, tmp_path / "root")
    assert (root / "sys/module/nvidia/version").read_text().strip() == wrong.manifest["driver"]
    assert 'IMAGE_ID="hilt-sim-wrong-driver"' in (root / "etc/os-release").read_text()
    links_down = unpack_root(images["links-down"], tmp_path / "ld")
    assert (links_down / "sys/class/nvlink/gpu0-link1/state").read_text().strip() == "inactive"


def test_bad_inputs_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['link_rate'\]; valid: .*link_rate_mbit"):
        build_image("x", tmp_path, link_rate=5)
    with pytest.raises(ConfigError, match="boot='sometimes'; valid"):
        build_image("x", tmp_path, boot="sometimes")
    path = build_image("good", tmp_path)
    with pytest.raises(ConfigError, match="sha256 is .* expected 00"):
        read_image(path, expected_sha256="00")
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(b"not a tarball")
    with pytest.raises(ConfigError, match="not a hilt sim image"):
        read_image(bogus)
    assert json.loads((unpack_root(read_image(path), tmp_path / "r") / "opt/hilt-sim/manifest.json")
                      .read_text())["image_id"] == "hilt-sim-good"


def test_one_image_shows_each_node_its_own_profile(tmp_path):
    """A rig of H100 and A100 nodes boots one image; each node sees its own fabric and nccl-tests output."""
    import subprocess

    from hilt.fabric.compare import compare_topology
    from hilt.fabric.topo import parse_topology
    from hilt.probes.nccl import parse_nccl_tests
    from hilt.probes.settings import ProbeSettings
    from hilt.profiles.model import load_profile

    path = build_image("good", tmp_path, nccl={"nccl_busbw_gbps": 180.0, "busbw_by_profile": {"dgx-a100-8gpu": 90.0}},
                       profiles=["hgx-h100-8gpu", "dgx-a100-8gpu"])
    image = read_image(path)
    for name, peak in (("hgx-h100-8gpu", 180.0), ("dgx-a100-8gpu", 90.0)):
        root = unpack_root(image, tmp_path / name, name)
        profile = load_profile(name)
        topo = subprocess.run([str(root / "usr/local/bin/nvidia-smi"), "topo", "-m"], capture_output=True,
                              text=True, check=True)
        assert compare_topology(profile, parse_topology(topo.stdout)) == []
        args = ProbeSettings.from_profile(profile.probes).nccl_tests_args
        out = subprocess.run([str(root / "usr/local/bin/all_reduce_perf"), *args], capture_output=True, text=True,
                             check=True).stdout
        result = parse_nccl_tests(out)
        assert result.nranks == 8 and result.rows[-1].size == (16 if name.startswith("hgx") else 8) * 2**30
        assert abs(result.rows[-1].out_of_place.busbw / peak - 1) < 0.05
    with pytest.raises(ConfigError, match="no view for profile 'sim-4gpu'"):
        unpack_root(image, tmp_path / "x", "sim-4gpu")
