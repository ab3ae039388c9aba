"""Profiles are strict, probes included, and every shipped real profile's plan measures what its baselines gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilt.errors import ConfigError
from hilt.gate.baselines import available_profiles, load_baselines
from hilt.gate.coverage import plan_gaps
from hilt.probes.settings import ProbeSettings, planned_for_profile, planned_metrics
from hilt.profiles.model import known_profiles, load_profile

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
HEAD = "gpu_count: 8\ntopology: {default_link: NV18}\nnvlink: {active_links_per_gpu: 18}\n"


def _load(tmp_path: Path, text: str):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path, lambda: load_profile(str(path))


@pytest.mark.parametrize(("probes", "line", "field", "problem"), [
    # issue 13 failure 1: this key was filed under `extra` and ignored, so nccl-tests ran its defaults
    ("probes:\n  nccl:\n    min_bytes: 8M\n    max_byte: 8G\n", 7, "probes.nccl.max_byte", "unknown field"),
    ("probes:\n  sizes: [16Q]\n", 5, "probes.sizes", "is not a size"),
    ("probes:\n  repeats: many\n", 5, "probes.repeats", "valid integer"),
    ("probes:\n  nccl:\n    min_bytes: 1G\n    max_bytes: 8M\n", 5, "probes.nccl", "larger than max_bytes"),
    ("probes:\n  vendor_knob: 3\n", 5, "probes.vendor_knob", "unknown field"),
    ("probes:\n  nccl: {gpus_per_node: 16}\n", 1, "(top level)", "more than the profile's gpu_count"),
])
def test_a_bad_probe_plan_is_a_file_line_field_error(tmp_path, probes, line, field, problem):
    path, load = _load(tmp_path, HEAD + probes)
    with pytest.raises(ConfigError) as err:
        load()
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: {field}: ") and problem in message and "\n" not in message


def test_unknown_top_level_key_names_its_line(tmp_path):
    path, load = _load(tmp_path, HEAD + "nvlinks: {}\n")
    with pytest.raises(ConfigError, match=rf"^{path}:4: nvlinks: unknown field"):
        load()


def test_nccl_tests_run_on_every_gpu_of_the_node_by_default(tmp_path):
    _, load = _load(tmp_path, HEAD + "probes:\n  nccl: {min_bytes: 8M, max_bytes: 8G}\n")
    settings = ProbeSettings.from_profile(load().probes)
    assert settings.nccl_tests_args[:8] == ("-b", "8388608", "-e", "8589934592", "-f", "2", "-d", "float")
    assert ("-g", "8") == settings.nccl_tests_args[8:10]


@pytest.mark.parametrize("name", [p for p in available_profiles(BASELINES)])
def test_every_shipped_profile_plan_measures_its_gated_baselines(name):
    profile = load_profile(name)
    assert plan_gaps(load_baselines(BASELINES, name), planned_for_profile(profile)) == []


@pytest.mark.parametrize("name", [n for n in known_profiles() if n.startswith(("hgx", "dgx"))])
def test_hgx_and_dgx_plans_use_all_eight_gpus(name):
    args = ProbeSettings.from_profile(load_profile(name).probes).nccl_tests_args
    assert args[args.index("-g") + 1] == "8"


def test_a_plan_missing_a_gated_size_is_named(tmp_path):
    _, load = _load(tmp_path, HEAD + "probes:\n  nccl: {min_bytes: 8M, max_bytes: 8G}\n")
    gaps = plan_gaps(load_baselines(BASELINES, "hgx-h100-8gpu"), planned_metrics(
        ProbeSettings.from_profile(load().probes)))
    gaps = [g for g in gaps if g.startswith("nccl.")]  # (this profile names no nvbandwidth: section either)
    assert len(gaps) == 1 and "size=17179869184" in gaps[0] and "not in the probe plan" in gaps[0]


def test_a_duplicate_key_in_a_profile_is_refused(tmp_path):
    path, load = _load(tmp_path, HEAD + "probes:\n  nccl: {min_bytes: 8M}\n  nccl: {min_bytes: 1M}\n")
    with pytest.raises(ConfigError, match=rf"^{path}:6: duplicate key 'nccl' \(first at line 5\)"):
        load()
