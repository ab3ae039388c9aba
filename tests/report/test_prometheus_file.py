"""metrics.prom: what node_exporter's textfile collector accepts (Go text-format rules), one series per metric
and label set (issue 20 item 16), written by prometheus_client."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from hilt.record.run_record import GateOutcome, MetricRecord, VerdictRecord
from hilt.report.prometheus import label_names, metric_name, write_metrics_prom
from tests.support.prometheus_textfile import Rejected, parse, unquote


def _series(families: dict, name: str) -> list[tuple[dict[str, str], float]]:
    return [({k: unquote(v) for k, v in key}, value) for key, value in families[name]["series"].items()]


def test_file_shape_and_values(tmp_path: Path, nightly) -> None:
    run = nightly(25)[-1]
    run.metrics.append(MetricRecord(name="fabric.nvlink-errors/s", unit="1/s", samples=[0, 2],
                                    labels={"gpu.index": "0", "link": 'a"b\\c\nd'}))
    families = parse(write_metrics_prom(run, tmp_path / "metrics.prom").read_text())
    busbw = run.metrics[0]
    mean = sum(busbw.samples) / len(busbw.samples)
    identity = {"metric": "nccl.all_reduce.busbw", "nodes": "2", "rig": "sim", "size": "1G"}
    assert _series(families, "hilt_nccl_all_reduce_busbw_mean") == [(identity, pytest.approx(mean))]
    assert _series(families, "hilt_nccl_all_reduce_busbw_samples") == [(identity, 5.0)]
    verdicts = {labels["outcome"]: v for labels, v in _series(families, "hilt_gate_verdict")}
    assert verdicts == {"pass": 0, "regression": 1, "improvement": 0, "inconclusive": 0, "unbaselined": 0,
                        "not_run": 0}
    ((labels, value),) = _series(families, "hilt_fabric_nvlink_errors_s_max")
    assert value == 2.0 and labels["gpu_index"] == "0" and labels["link"] == 'a"b\\c\nd'
    (info,) = _series(families, "hilt_run_info")
    assert info[0]["run_id"] == run.run_id and info[0]["nccl"] == run.versions["nccl"] and info[1] == 1


@pytest.mark.parametrize("outcome", get_args(GateOutcome))
def test_every_outcome_a_run_record_holds_is_one_verdict_series_at_1(tmp_path: Path, nightly, outcome) -> None:
    """An alert is `hilt_gate_verdict{outcome="x"} == 1`: a gate that ran no gated probe (not_run) used to write
    every series 0, so no alert and no dashboard saw it."""
    run = nightly(3)[-1]
    run.gate = VerdictRecord(outcome=outcome, reason="as the gate decided")
    run.metrics.append(MetricRecord(name="probe.busbw", unit="GB/s", samples=[1.0], verdict=run.gate))
    families = parse(write_metrics_prom(run, tmp_path / "metrics.prom").read_text())
    for family in ("hilt_gate_verdict", "hilt_probe_busbw_verdict"):
        verdicts = {labels["outcome"]: v for labels, v in _series(families, family)}
        assert verdicts == {o: (1 if o == outcome else 0) for o in get_args(GateOutcome)}, family


def test_node_exporter_textfile_collector_accepts_it(tmp_path: Path, nightly) -> None:
    run = nightly(25)[-1]
    run.metrics.append(MetricRecord(name="gate", unit="", samples=[1.0], verdict=run.gate))  # meets hilt_gate_verdict
    text = write_metrics_prom(run, tmp_path / "metrics.prom").read_text()
    families = parse(text)  # raises Rejected where the Go parser or the collector would drop the file
    assert {f["type"] for f in families.values()} == {"gauge"}
    assert all(f["help"] for f in families.values())
    assert "hilt_run_info" in families and "# EOF" not in text  # no OpenMetrics-only lines
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.prom"]  # the temporary file was renamed


def test_the_rules_reject_what_the_collector_rejects() -> None:
    """The checker itself can fail: what main wrote before (an info type) and the other classic mistakes."""
    with pytest.raises(Rejected, match="unknown metric type 'info'"):
        parse("# TYPE hilt_run info\nhilt_run_info{rig=\"sim\"} 1.0\n")
    with pytest.raises(Rejected, match="collected before"):
        parse('# TYPE x gauge\nx{a="1"} 1\nx{a="1"} 2\n')
    with pytest.raises(Rejected, match="second TYPE"):
        parse("# TYPE x gauge\nx 1\n# TYPE x gauge\n")
    with pytest.raises(Rejected, match="timestamps"):
        parse("x 1 1700000000000\n")
    with pytest.raises(Rejected, match="invalid sample"):
        parse('x{a.b="1"} 1\n')


def test_names_and_labels_that_clean_alike_stay_distinct_series(tmp_path: Path, nightly) -> None:
    run = nightly(1)[0]
    run.metrics = [
        MetricRecord(name="nccl.busbw", unit="GB/s", samples=[1.0], labels={"a.b": "dot", "a-b": "dash"}),
        MetricRecord(name="nccl_busbw", unit="GB/s", samples=[2.0], labels={"a.b": "dot", "a-b": "dash"}),
        MetricRecord(name="nccl/busbw", unit="GB/s", samples=[3.0], labels={"a_b": "plain", "a.b": "dot",
                                                                            "rig": "own"}),
    ]
    families = parse(write_metrics_prom(run, tmp_path / "metrics.prom").read_text())
    series = _series(families, "hilt_nccl_busbw_mean")
    assert sorted(value for _, value in series) == [1.0, 2.0, 3.0]
    by_metric = {labels["metric"]: labels for labels, _ in series}
    assert set(by_metric) == {"nccl.busbw", "nccl_busbw", "nccl/busbw"}
    expected = {"nccl.busbw": ["dash", "dot"], "nccl_busbw": ["dash", "dot"], "nccl/busbw": ["dot", "own", "plain"]}
    for name, labels in by_metric.items():  # every label of the metric survives, beside hilt's rig and metric
        assert sorted(v for k, v in labels.items() if k not in ("metric", "rig")) == expected[name]
    own = by_metric["nccl/busbw"]
    assert own["rig"] == "sim" and own["a_b"] == "plain" and "own" in own.values()  # nothing dropped


def test_label_names_are_stable_and_valid_names_keep_theirs() -> None:
    names = label_names(["a.b", "a-b", "a_b", "rig", "0x", "__x"], reserved=["rig", "metric"])
    assert names["a_b"] == "a_b" and names["0x"] == "_0x" and names["__x"] == "label___x"
    assert len(set(names.values())) == 6 and not {"rig", "metric"} & set(names.values())
    assert label_names(["a.b", "a-b"])["a.b"] == label_names(["a.b", "a-b", "c"])["a.b"]


def test_reference_parser_accepts_it(tmp_path: Path, nightly) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    text = write_metrics_prom(nightly(1)[0], tmp_path / "m.prom").read_text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["hilt_run_info"].type == "gauge"
    assert families["hilt_ddp_samples_per_s_mean"].samples[0].labels == {
        "backend": "nccl", "metric": "ddp.samples_per_s", "rig": "sim"}


def test_metric_names_are_sanitized() -> None:
    assert metric_name("nccl.all_reduce.busbw") == "hilt_nccl_all_reduce_busbw"
    assert metric_name("3d..scores!") == "hilt_3d_scores"
