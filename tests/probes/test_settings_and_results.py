"""ProbeSettings (profile + command line) and the pure result -> metric conversions."""

from __future__ import annotations

import pytest

from hilt.errors import ConfigError
from hilt.probes.results import allreduce_metrics, bus_factor, ddp_metrics, parse_result_lines
from hilt.probes.settings import ProbeSettings, parse_sizes


def test_parse_sizes_binary_units() -> None:
    assert parse_sizes("1M,16M,1G") == [2**20, 16 * 2**20, 2**30]
    assert parse_sizes("8, 512K ,4MiB") == [8, 512 * 2**10, 4 * 2**20]


@pytest.mark.parametrize("bad", ["", "16Q", "1.5", "-1M", "M"])
def test_parse_sizes_rejects_with_option_name(bad: str) -> None:
    with pytest.raises(ConfigError, match="--probe-sizes"):
        parse_sizes(bad)


def test_defaults_suit_cpu_sim() -> None:
    s = ProbeSettings.from_profile(None, None, None)
    assert s.sizes == (2**20, 4 * 2**20, 16 * 2**20) and s.repeats == 5 and s.cpu_procs_per_node == 2


def test_profile_values_and_command_line_overrides() -> None:
    profile = {"sizes": ["32M", "1G"], "repeats": 10, "nccl": {"min_bytes": 8, "max_bytes": "8G", "gpus_per_node": 8},
               "ddp-grad-mb": 100}
    s = ProbeSettings.from_profile(profile, None, None)
    assert s.sizes == (32 * 2**20, 2**30) and s.repeats == 10 and s.ddp_grad_mb == 100.0
    assert s.nccl_tests_args == ("-b", "8", "-e", "8589934592", "-f", "2", "-d", "float", "-g", "8")
    s2 = ProbeSettings.from_profile(profile, [2**20], 3)
    assert s2.sizes == (2**20,) and s2.repeats == 3


def test_an_unknown_probe_key_is_refused_not_ignored() -> None:
    # issue 13 failure 1: `nccl: {min_bytes, max_bytes}` used to land in `.extra` and nccl-tests ran its defaults
    with pytest.raises(ConfigError, match="probes.vendor_knob: .*xtra inputs are not permitted"):
        ProbeSettings.from_profile({"vendor_knob": 3}, None, None)


def test_bad_profile_value_names_the_field() -> None:
    with pytest.raises(ConfigError, match="probes.repeats"):
        ProbeSettings.from_profile({"repeats": 0}, None, None)
    with pytest.raises(ConfigError, match="probes.dtype"):
        ProbeSettings.from_profile({"dtype": "float8"}, None, None)


def test_result_lines_found_behind_prefixes_and_noise() -> None:
    text = ("[default0]:W1201 gloo something\n"
            '[host:0]: HILT_RESULT {"probe": "allreduce", "size": 8}\n'
            "HILT_RESULT {broken\n")
    records, bad = parse_result_lines(text)
    assert records == [{"probe": "allreduce", "size": 8}]
    assert bad == ["HILT_RESULT {broken"]


def test_bus_factor_matches_nccl_tests() -> None:
    assert bus_factor(2) == 1.0 and bus_factor(8) == 1.75 and bus_factor(16) == 1.875 and bus_factor(1) == 0.0


def test_allreduce_metrics_from_times() -> None:
    record = {"size": 4_000_000, "world_size": 8, "local_world_size": 8, "backend": "nccl", "dtype": "float32",
              "nccl_version": "2.21.5", "time_s": [0.001, 0.002]}
    m = {x.name: x for x in allreduce_metrics(record, nodes=1, node="g1")}
    assert m["torch.all_reduce.algbw"].samples == pytest.approx((4.0, 2.0))
    assert m["torch.all_reduce.busbw"].samples == pytest.approx((7.0, 3.5))
    assert m["torch.all_reduce.busbw"].label_dict["nccl_version"] == "2.21.5"
    assert m["torch.all_reduce.busbw"].label_dict["gpus_per_node"] == "8"


def test_ddp_metrics_comm_is_synced_minus_compute() -> None:
    record = {"world_size": 2, "grad_bytes": 10**8, "batch": 8, "backend": "gloo",
              "step_s": [0.3, 0.2], "step_nosync_s": [0.1, 0.1, 0.12]}
    m = {x.name: x for x in ddp_metrics(record, nodes=2, node="a+b")}
    assert m["ddp.samples_per_s"].samples == pytest.approx((16 / 0.3, 16 / 0.2))
    assert m["ddp.comm_ms_per_step"].samples == pytest.approx((200.0, 100.0))
    assert m["ddp.allreduce_busbw"].samples == pytest.approx((0.5, 1.0))


def test_probe_sizes_from_the_command_line_bound_the_nccl_tests_sweep_too() -> None:
    s = ProbeSettings.from_profile({"nccl": {"min_bytes": "1M", "max_bytes": "64M", "gpus_per_node": 4}}, [2**20])
    assert s.sizes == (2**20,)
    assert s.nccl_tests_args[:4] == ("-b", "1048576", "-e", "1048576")
