"""The profile sections of issue 26 (c2c, coherent_memory, nvlink_domain): strict, with file:line:field errors, and
the shipped Grace profiles carry them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilt.errors import ConfigError
from hilt.profiles.model import HEALTHY_ROWS, load_profile

HEAD = "gpu_count: 4\ntopology: {default_link: NV18}\nnvlink: {active_links_per_gpu: 18}\n"


def _load(tmp_path: Path, text: str):
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + text)
    return path, lambda: load_profile(str(path))


@pytest.mark.parametrize(("section", "line", "field", "problem"), [
    ("c2c:\n  links_per_gpu: 0\n", 5, "c2c.links_per_gpu", "greater than or equal to 1"),
    ("c2c:\n  links_per_gpu: 5\n  min_link_gb: 44\n", 6, "c2c.min_link_gb", "unknown field"),
    ("c2c:\n  links_per_gpu: 5\n  bandwidth: {testcases: [device_to_device_memcpy_read_ce]}\n", 6,
     "c2c.bandwidth.testcases", "not an nvbandwidth host/device testcase"),
    ("coherent_memory: {addressing_mode: ATS}\n", 4, "coherent_memory.min_node_mb", "missing required field"),
    ("nvlink_domain: {imex_config: etc/imex.cfg}\n", 4, "nvlink_domain.imex_config", "absolute path"),
    ("nvlink_domain: {clique: 3}\n", 4, "nvlink_domain.clique", "unknown field"),
])
def test_a_bad_fusion_section_is_a_file_line_field_error(tmp_path, section, line, field, problem):
    path, load = _load(tmp_path, section)
    with pytest.raises(ConfigError) as err:
        load()
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: {field}: ") and problem in message


def test_health_overrides_one_row_and_keeps_the_others(tmp_path):
    _, load = _load(tmp_path, "nvlink_domain:\n  health: {Partition Assigned: [\"True\"]}\n")
    spec = load().nvlink_domain
    assert spec.accepted("Partition Assigned") == ("True",)
    assert spec.accepted("Summary") == HEALTHY_ROWS["Summary"] == ("Healthy",)
    assert spec.accepted("A Row From A Later Driver") == ("N/A", "None", "False")


def test_shipped_grace_profiles_carry_the_sections():
    gh200, gb200, gb300 = (load_profile(n) for n in ("gh200-1gpu", "gb200-nvl-tray-4gpu", "gb300-nvl-tray-4gpu"))
    assert (gh200.gpu_count, gh200.c2c.links_per_gpu, gh200.nvlink_domain) == (1, 10, None)
    assert (gb200.c2c.links_per_gpu, gb300.c2c.links_per_gpu) == (5, 5)
    assert gb300.coherent_memory.min_node_mb < 284208 and gb300.nvlink_domain.multi_node
    for p in (gh200, gb200, gb300):
        assert p.coherent_memory.addressing_mode == "ATS" and p.coherent_memory.c2c_mode == "Enabled"
        assert p.c2c.bandwidth.testcases == ["host_to_device_memcpy_ce", "device_to_host_memcpy_ce"]
    assert load_profile("sim-4gpu").c2c is None  # a profile without the section: the suites skip
