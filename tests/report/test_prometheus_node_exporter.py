"""metrics.prom read by the real node_exporter textfile collector (Debian's prometheus-node-exporter, Go's
expfmt parser): the file is accepted whole, and the shape main wrote before (`# TYPE hilt_run info`) is not."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hilt.record.run_record import MetricRecord
from hilt.report.prometheus import write_metrics_prom

BINARY = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")


@pytest.fixture
def textfile_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A node_exporter with only the textfile collector, on 127.0.0.1, reading ``tmp_path/textfile``."""
    if BINARY is None:
        pytest.fail("node_exporter is not installed: metrics.prom is tested against the real textfile collector "
                    "(Debian: apt-get install prometheus-node-exporter; scripts/setup.sh does)")
    directory = tmp_path / "textfile"
    directory.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([BINARY, "--collector.disable-defaults", "--collector.textfile",
                             f"--collector.textfile.directory={directory}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"node_exporter did not start: {proc.stderr.read()}") from None
                time.sleep(0.1)
        yield directory, url
    finally:
        proc.terminate()
        proc.wait(10)


def _scrape(url: str) -> dict[str, list]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_node_exporter_reads_the_whole_file(textfile_dir, nightly) -> None:
    directory, url = textfile_dir
    run = nightly(25)[-1]
    run.metrics += [MetricRecord(name="nccl.busbw", unit="GB/s", samples=[1.0], labels={"a.b": "x", "a-b": "y"}),
                    MetricRecord(name="nccl_busbw", unit="GB/s", samples=[2.0], labels={"a.b": "x", "a-b": "y"}),
                    MetricRecord(name="gate", unit="", samples=[3.0], labels={"link": 'q"\\\n'}, verdict=run.gate)]
    write_metrics_prom(run, directory / "metrics.prom")
    scraped = _scrape(url)
    assert [s.value for s in scraped["node_textfile_scrape_error"]] == [0.0]
    busbw = {s.labels["metric"]: s for s in scraped["hilt_nccl_busbw_mean"]}
    assert {name: s.value for name, s in busbw.items()} == {"nccl.busbw": 1.0, "nccl_busbw": 2.0}
    assert sorted(v for k, v in busbw["nccl.busbw"].labels.items() if k not in ("metric", "rig")) == ["x", "y"]
    assert any(s.labels.get("metric") == "gate" and s.labels["link"] == 'q"\\\n'
               for s in scraped["hilt_gate_verdict"])
    assert scraped["hilt_run_info"][0].labels["run_id"] == run.run_id


def test_node_exporter_refuses_the_old_info_type(textfile_dir) -> None:
    directory, url = textfile_dir
    (directory / "old.prom").write_text('# TYPE hilt_run info\nhilt_run_info{rig="sim"} 1.0\n')
    scraped = _scrape(url)
    assert [s.value for s in scraped["node_textfile_scrape_error"]] == [1.0]
    assert "hilt_run_info" not in scraped
