"""nvbandwidth parser on every capture of the corpus (tests/data/corpus/nvbandwidth, see PROVENANCE.md)."""

from pathlib import Path

import pytest

from hilt.errors import ParseError
from hilt.probes.nvbandwidth import parse_nvbandwidth, parse_nvbandwidth_runs
from tests.support.captures import v02_with_waived

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"


def read(name: str) -> str:
    return (CORPUS / name).read_text()


N = "nvbandwidth/"


def test_a10_h2d_ce_single_cell():
    r = parse_nvbandwidth(read(N + "a10-v0.5-h2d-ce-single-gpu.txt"))
    assert r.version == "v0.5"
    assert r.testcases == {"host_to_device_memcpy_ce": {(0, 0): 25.17}}
    assert r.sums == {"host_to_device_memcpy_ce": 25.17} and r.waived == [] and r.errors == {}


def test_a10_h2d_sm():
    r = parse_nvbandwidth(read(N + "a10-v0.5-h2d-sm-single-gpu.txt"))
    assert r.testcases == {"host_to_device_memcpy_sm": {(0, 0): 25.25}} and r.total("host_to_device_memcpy_sm") == 25.25


def test_h100_d2d_read_8x8_without_diagonal():
    r = parse_nvbandwidth(read(N + "h100x8-v0.4-d2d-read-ce-azure-nhc-container.txt"))
    m = r.testcases["device_to_device_memcpy_read_ce"]
    assert len(m) == 56 and (0, 0) not in m and m[(0, 1)] == 370.90 and m[(7, 6)] == 370.90
    assert m[(2, 4)] == 372.96 and min(m.values()) == 370.26
    assert r.sums == {"device_to_device_memcpy_read_ce": 20785.58} and r.version == "v0.4"


def test_h800_d2d_read_ce_only():
    r = parse_nvbandwidth(read(N + "h800x8-v0.2-d2d-read-ce-only.txt"))
    assert r.sums == {"device_to_device_memcpy_read_ce": 9642.08} and r.version == "v0.2"
    assert r.testcases["device_to_device_memcpy_read_ce"][(0, 2)] == 172.57


def test_h800_full_run_30_testcases():
    r = parse_nvbandwidth(read(N + "h800x8-v0.2-full-run-30-testcases-d2d-read-sm-labelled-ce.txt"))
    assert len(r.testcases) == 30 and len(r.sums) == 30 and r.waived == []
    assert r.sums["device_to_device_bidirectional_memcpy_write_sm"] == 18341.61
    assert r.sums["one_to_all_read_sm"] == 1222.39
    # the d2d read SM matrix is titled "memcpy CE" upstream: it is still keyed by its Running line
    assert len(r.testcases["device_to_device_memcpy_read_sm"]) == 56
    assert r.testcases["host_to_device_memcpy_ce"] == {(0, c): v for c, v in enumerate(
        [55.28, 55.30, 55.32, 55.30, 55.31, 55.34, 55.32, 55.34])}
    for name, matrix in r.testcases.items():  # every SUM agrees with its matrix in this capture
        assert abs(sum(matrix.values()) - r.sums[name]) < 0.2, name


def test_b300_v010_read1_read2_total_and_cov():
    r = parse_nvbandwidth(read(N + "b300x7-v0.10.0-ce-testcases-read1-read2-total-"
                                   "coefficient-of-variation-partial.txt"))
    assert r.version == "v0.10.0"
    base = "device_to_device_bidirectional_memcpy_read_ce"
    assert r.sums[base + "_read1"] == 31945.78 and r.sums[base + "_read2"] == 31924.12
    assert r.sums[base + "_total"] == 63869.90 and r.total(base) == 63869.90
    assert r.testcases[base + "_total"][(1, 6)] == 1517.86 and len(r.testcases[base + "_read1"]) == 42
    assert r.total("device_to_device_bidirectional_memcpy_write_ce") == 64669.78
    assert r.cv["device_to_host_bidirectional_memcpy_ce"] == 0.01
    assert r.sums["host_to_device_memcpy_ce"] == 389.15 and len(r.testcases["host_to_device_memcpy_ce"]) == 7
    assert len(r.sums) == 12 and base not in r.testcases


def test_gb300_elided_start_and_end():
    r = parse_nvbandwidth(read(N + "gb300-dgx-station-1gpu-ce-author-elided-start-and-end.txt"))
    assert r.version is None
    assert r.sums == {"host_to_device_memcpy_ce": 359.05, "device_to_host_memcpy_ce": 377.15,
                      "host_to_device_bidirectional_memcpy_ce": 175.38}
    # the last matrix lost its SUM to the elision; its cell is still read
    assert r.testcases["device_to_host_bidirectional_memcpy_ce"] == {(0, 0): 171.76}


def test_running_line_elided_sum_names_the_matrix():
    r = parse_nvbandwidth(read(N + "rtxa6000x6-v0.8-d2d-read-ce-running-line-elided-by-author.txt"))
    m = r.testcases["device_to_device_memcpy_read_ce"]
    assert len(m) == 30 and m[(0, 3)] == 21.95 and r.sums["device_to_device_memcpy_read_ce"] == 715.53


def test_v08_bare_waived_lines_latency_in_ns_stray_header_line():
    r = parse_nvbandwidth(read(N + "rtx3050-laptop-windows-v0.8-bare-waived-lines-no-names-stray-line.txt"))
    assert r.version == "v0.8" and r.unnamed_waived == 17 and r.waived == []
    assert len(r.testcases) == 17 and r.sums["device_local_copy"] == 84.33
    assert r.latencies == {"host_device_latency_sm": {(0, 0): 613.22}}
    assert "host_device_latency_sm" not in r.sums and "host_device_latency_sm" not in r.testcases


def test_aborted_testcase_is_an_error_not_a_result():
    r = parse_nvbandwidth(read(N + "l40sx8-v0.4-one-to-all-read-sm-aborted-pattern-check-core-dumped.txt"))
    assert r.testcases == {} and r.sums == {}
    assert r.errors == {"one_to_all_read_sm": "Invalid value when checking the pattern at <0x7fac6200e480>"}


def test_json_verbose_17_waived():
    r = parse_nvbandwidth(read(N + "json-v0.5-single-gpu-verbose-17-waived-dcgm-test-fixture.json"))
    assert r.version == "v0.5" and len(r.waived) == 17 and "device_to_device_latency_sm" in r.waived
    assert len(r.testcases) == 14
    assert r.testcases["host_to_device_memcpy_ce"] == {(0, 0): 12.3964}
    assert r.sums["host_to_device_memcpy_ce"] == pytest.approx(12.39636129125)
    assert r.latencies == {"host_device_latency_sm": {(0, 0): 649.879}}


def test_named_waived_line():
    r = parse_nvbandwidth("nvbandwidth Version: v0.6\nRunning device_to_device_memcpy_read_ce.\nWaived. \n")
    assert r.waived == ["device_to_device_memcpy_read_ce"] and r.errors == {}


P2P = """[P2P (Peer-to-Peer) GPU Bandwidth Latency Test]
Device: 0, NVIDIA A100-SXM4-80GB, pciBusID: 7, pciDeviceID: 0, pciDomainID:0
Device: 1, NVIDIA A100-SXM4-80GB, pciBusID: f, pciDeviceID: 0, pciDomainID:0
Device=0 CAN Access Peer Device=1
Device=1 CAN Access Peer Device=0

P2P Connectivity Matrix
     D\\D     0     1
     0       1     1
     1       1     1
Unidirectional P2P=Disabled Bandwidth Matrix (GB/s)
   D\\D     0      1
     0 1529.61  15.73
     1  15.80 1546.27
Unidirectional P2P=Enabled Bandwidth (P2P Writes) Matrix (GB/s)
   D\\D     0      1
     0 1527.68 186.21
     1 186.40 1548.03
"""


@pytest.mark.parametrize("path", [
    "dcgm_diag/dcgm3.3.3-a100-80gb-x8-p4de-r2-pass-all-empty-stress-section.txt",
    "dcgm_diag/dcgm4.5.2-gb10-r2-json-raw-tabs-memory-pcie-pass-software-fail.json",
    "dcgmi_discovery/dcgm1.x-p100x4-sxm2-discovery-l-ppc64le.txt",
    "dcgmi_discovery/dcgm3.1.8-h800x8-discovery-l-zero-nvswitches.txt",
    "nvidia_smi_q/a100-sxm4-80gb-q-ecc-remapped-rows-pending-author-elided.txt",
    "nvidia_smi_q/gddr7-gpu1-q-d-row-remapper-pending-uncorrectable-1.txt",
])
def test_other_tools_are_refused(path):
    with pytest.raises(ParseError):
        parse_nvbandwidth(read(path))


@pytest.mark.parametrize("text", [P2P, "", "hello\n", "{}", '{"nvbandwidth": {"testcases": 1}}'])
def test_p2p_bandwidth_latency_test_and_junk_are_refused(text):
    with pytest.raises(ParseError):
        parse_nvbandwidth(text)


def test_bad_cells_name_the_line():
    base = "nvbandwidth Version: v0.5\nRunning x_ce.\nmemcpy CE CPU(row) -> GPU(column) bandwidth (GB/s)\n     0\n"
    for cell in ("1e999", "9" * 5000, "inf", "-3.0"):
        with pytest.raises(ParseError) as err:
            parse_nvbandwidth(base + f" 0 {cell}\n")
        assert err.value.line_no == 5
    with pytest.raises(ParseError):
        parse_nvbandwidth(base + " 0 1.0 2.0\n")  # more cells than columns


# --- the output inside a larger text (issue 24 item 10; tests/data/composed, see its PROVENANCE.md) ----------

COMPOSED = CORPUS.parent / "composed"


def test_several_runs_with_separator_lines_are_read_each_and_the_last():
    text = (COMPOSED / "nvbandwidth-two-runs-with-separators.txt").read_text()
    runs = parse_nvbandwidth_runs(text)
    assert runs == [parse_nvbandwidth(read(N + "a10-v0.5-h2d-ce-single-gpu.txt")),
                    parse_nvbandwidth(read(N + "a10-v0.5-h2d-sm-single-gpu.txt"))]
    assert parse_nvbandwidth(text).sums == {"host_to_device_memcpy_sm": 25.25}


def test_perf_stat_counters_between_the_matrix_rows_are_passed_over():
    """`perf stat -I` writes its counters into the same terminal, between the column header and the rows."""
    text = (COMPOSED / "nvbandwidth-h800-v0.2-d2d-read-ce-under-perf-stat-interval.txt").read_text()
    assert "     1.006527804" in text.split("SUM")[0].split("memcpy CE")[1]  # counters inside the matrix
    assert parse_nvbandwidth(text) == parse_nvbandwidth(read(N + "h800x8-v0.2-d2d-read-ce-only.txt"))


def test_a_row_lost_among_other_lines_is_refused_not_skipped():
    text = read(N + "h800x8-v0.2-d2d-read-ce-only.txt")
    row3 = "3    172.07    172.07    172.27       N/A"
    with pytest.raises(ParseError, match="row 3 is missing"):  # a word in it: not a row, and row 3 is gone
        parse_nvbandwidth(text.replace(row3, "3    172.07    172.07    172.27   garbled"))
    with pytest.raises(ParseError, match="'n/a' is not a finite number at line 26"):  # a row with a bad cell
        parse_nvbandwidth(text.replace(row3, "3    172.07    172.07    172.27       n/a"))


@pytest.mark.parametrize("text", [
    "\n".join(line for line in (COMPOSED / "nvbandwidth-h800-v0.2-d2d-read-ce-under-perf-stat-interval.txt")
              .read_text().splitlines() if line.startswith((" ", "#"))),  # perf's lines alone
    "===== nvbandwidth -t host_to_device_memcpy_ce (run 1 of 2) =====\n=====\n",
])
def test_text_holding_no_nvbandwidth_output_is_still_refused(text):
    with pytest.raises(ParseError, match="not nvbandwidth output"):
        parse_nvbandwidth(text)


def test_v02_waived_wording_is_read_as_waived():
    r = parse_nvbandwidth(v02_with_waived("device_to_device_memcpy_read_ce"))
    assert r.waived == ["device_to_device_memcpy_read_ce"] and r.errors == {}
    assert len(r.sums) == 29 and "device_to_device_memcpy_read_ce" not in r.testcases
