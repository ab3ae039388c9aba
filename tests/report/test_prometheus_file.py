"""metrics.prom: OpenMetrics text a textfile collector accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hilt.report.prometheus import metric_name, write_metrics_prom
from hilt.run_record import MetricRecord

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? \S+$')


def test_file_shape_and_values(tmp_path: Path, nightly) -> None:
    run = nightly(25)[-1]
    run.metrics.append(MetricRecord(name="fabric.nvlink-errors/s", unit="1/s", samples=[0, 2],
                                    labels={"gpu.index": "0", "link": 'a"b\\c'}))
    text = write_metrics_prom(run, tmp_path / "metrics.prom").read_text()
    assert text.endswith("\n# EOF\n")
    for line in text.splitlines():
        assert line.startswith("# ") or SAMPLE.match(line), line
    busbw = run.metrics[0]
    mean = sum(busbw.samples) / len(busbw.samples)
    assert f'hilt_nccl_all_reduce_busbw_mean{{nodes="2",rig="sim",size="1G"}} {mean!r}' in text
    assert 'hilt_nccl_all_reduce_busbw_samples{nodes="2",rig="sim",size="1G"} 5.0' in text
    assert 'hilt_gate_verdict{outcome="regression",rig="sim"} 1.0' in text
    assert 'hilt_gate_verdict{outcome="pass",rig="sim"} 0.0' in text
    assert 'hilt_fabric_nvlink_errors_s_max{gpu_index="0",link="a\\"b\\\\c",rig="sim"} 2.0' in text
    assert text.count("# TYPE hilt_nccl_all_reduce_busbw_mean gauge") == 1


def test_reference_parser_accepts_it(tmp_path: Path, nightly) -> None:
    parser = pytest.importorskip("prometheus_client.openmetrics.parser")
    text = write_metrics_prom(nightly(1)[0], tmp_path / "m.prom").read_text()
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    assert families["hilt_run"].type == "info"
    assert families["hilt_ddp_samples_per_s_mean"].samples[0].labels == {"backend": "nccl", "rig": "sim"}


def test_metric_names_are_sanitized() -> None:
    assert metric_name("nccl.all_reduce.busbw") == "hilt_nccl_all_reduce_busbw"
    assert metric_name("3d..scores!") == "hilt_3d_scores"
