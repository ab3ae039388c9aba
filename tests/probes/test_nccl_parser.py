"""parse_nccl_tests on real captured nccl-tests output (tests/data/nccl_tests) and variants derived from it."""

# ruff: noqa: E501  (result rows are kept exactly as nccl-tests prints them)

from __future__ import annotations

from pathlib import Path

import pytest

from hilt.errors import ParseError
from hilt.probes.nccl import parse_nccl_tests

DATA = Path(__file__).parent.parent / "data" / "nccl_tests"


def read(name: str) -> str:
    return (DATA / name).read_text()


# ---- every corpus file, with concrete values -------------------------------------------------------------

def test_all_reduce_2080ti_current_columns() -> None:
    r = parse_nccl_tests(read("all_reduce-2xrtx2080ti-pcie-autodl.txt"))
    assert r.error is None and r.skipped == ()
    assert len(r.rows) == 28
    first, last = r.rows[0], r.rows[-1]
    assert (first.size, first.count, first.dtype, first.redop, first.root) == (8, 2, "float", "sum", -1)
    assert first.out_of_place.time_us == 12.25 and first.in_place.time_us == 12.00
    assert last.size == 1073741824 and last.count == 268435456
    assert last.out_of_place.time_us == 268588 and last.out_of_place.busbw == 4.00
    assert last.in_place.wrong == 0 and last.in_place.max_error is None
    assert r.avg_busbw == pytest.approx(2.05774)
    assert r.nranks == 2 and r.ngpus_per_proc == 2 and r.nthreads == 1
    assert r.nccl_version is None
    assert r.max_busbw == 4.00


def test_all_gather_zero_size_rows() -> None:
    r = parse_nccl_tests(read("all_gather-2xrtx2080ti-pcie-autodl-zero-size-rows.txt"))
    assert len(r.rows) == 28
    assert [row.size for row in r.rows[:3]] == [0, 0, 32]
    assert r.rows[0].redop == "none" and r.rows[0].out_of_place.algbw == 0.0
    assert r.rows[1].in_place.time_us == 0.33
    assert r.rows[-1].out_of_place.busbw == 3.79 and r.rows[-1].in_place.busbw == 3.84
    assert r.avg_busbw == pytest.approx(1.6651)
    assert r.out_of_bounds == 0 and r.error is None


def test_two_node_tag_output_error_column_nccl28() -> None:
    r = parse_nccl_tests(read("all_reduce-2node-16xa100-p4d-efa-eks-tag-output-error-column-nccl2.8.txt"))
    assert r.error is None and r.skipped == ()
    assert r.nccl_version == "2.8.3"
    assert r.nranks == 16
    assert len(r.rows) == 28
    row = r.rows[0]
    assert (row.size, row.redop, row.root) == (8, "sum", None)
    assert row.out_of_place.wrong is None and row.out_of_place.max_error == pytest.approx(2e-7)
    assert row.in_place.max_error == pytest.approx(1e-7)
    big = r.rows[-1]
    assert big.size == 1073741824 and big.out_of_place.busbw == 32.71 and big.in_place.busbw == 32.84
    assert r.avg_busbw == pytest.approx(7.80081)


def test_two_node_h100_mpirun() -> None:
    r = parse_nccl_tests(read("all_reduce-2node-16xh100-gcp-a3mega-mpirun.txt"))
    assert r.nranks == 16 and r.ngpus_per_proc == 1
    assert len(r.rows) == 31
    assert r.rows[-1].size == 8589934592 and r.rows[-1].out_of_place.busbw == 338.82
    assert r.rows[-1].in_place.time_us == 47743
    assert r.avg_busbw == pytest.approx(70.742)
    assert r.max_busbw == 338.82


def test_failed_run_has_error_and_no_rows() -> None:
    r = parse_nccl_tests(read("all_reduce-3xrtxa6000-failure-unhandled-system-error-nccl-debug-trace.txt"))
    assert r.rows == ()
    assert r.error is not None
    assert r.error.startswith("Test NCCL failure common.cu:1119 'unhandled system error")
    assert r.avg_busbw is None
    assert r.nccl_version == "2.26.2"
    assert r.nranks == 3


def test_nccl1_res_column_time_in_ms() -> None:
    r = parse_nccl_tests(read("nccl1-all_reduce_test-4xgtx-titanx-res-column.txt"))
    assert len(r.rows) == 20
    assert r.rows[0].dtype == "char" and r.rows[0].redop == "sum"
    assert r.rows[0].out_of_place.time_us == pytest.approx(1628.0)  # printed 1.628 ms
    assert r.rows[8].dtype == "half" and r.rows[8].out_of_place.max_error == pytest.approx(4e-3)
    assert r.avg_busbw is None and r.nranks == 4


# ---- variants derived from the corpus --------------------------------------------------------------------

CURRENT = read("synthetic-current-format-all_reduce-na-wrong.txt")


def test_current_format_version_from_library_code_and_na_wrong() -> None:
    r = parse_nccl_tests(CURRENT)
    assert r.nccl_version == "2.27.3"
    assert r.collective == "all_reduce_perf"
    assert [row.size for row in r.rows] == [1048576, 2097152, 4194304]
    assert r.rows[0].out_of_place.wrong == 0
    assert r.rows[1].out_of_place.wrong is None and r.rows[1].in_place.wrong is None
    assert r.rows[1].out_of_place.busbw == 67.61
    assert r.avg_busbw == pytest.approx(66.7315) and r.nranks == 2


def test_ngpus_per_proc_header_without_nthread() -> None:
    text = CURRENT.replace("# nThread 1 nGpus 1 ", "# nGpus(perProc) 4 ")
    r = parse_nccl_tests(text)
    assert r.ngpus_per_proc == 4 and r.nthreads is None
    assert len(r.rows) == 3


def test_bare_nccl_version_line_inside_header() -> None:
    text = read("all_reduce-2xrtx2080ti-pcie-autodl.txt").replace(
        "# Using devices\n", "# Using devices\nNCCL version 2.18.3+cuda12.2\n")
    r = parse_nccl_tests(text)
    assert r.nccl_version == "2.18.3" and r.nranks == 2 and len(r.rows) == 28


def test_info_and_warn_lines_between_header_and_rows_and_between_rows() -> None:
    lines = read("all_reduce-2xrtx2080ti-pcie-autodl.txt").splitlines()
    info = "autodl:31706:31720 [0] NCCL INFO Channel 00/02 :    0   1"
    warn = "autodl:31706:31720 [1] NCCL WARN NET/Socket : peer 10.0.0.2 closed connection"
    header_end = next(i for i, line in enumerate(lines) if "(elements)" in line)
    lines.insert(header_end + 1, info)
    lines.insert(header_end + 5, warn)
    r = parse_nccl_tests("\n".join(lines))
    assert len(r.rows) == 28 and r.skipped == ()
    assert r.rows[2].size == 32


def test_missing_rank_lines_give_no_nranks() -> None:
    text = "\n".join(line for line in read("all_reduce-2xrtx2080ti-pcie-autodl.txt").splitlines()
                     if "Rank" not in line)
    r = parse_nccl_tests(text)
    assert r.nranks is None and len(r.rows) == 28


def test_partial_rank_lines_give_no_nranks() -> None:
    lines = [line for line in read("all_reduce-2node-16xh100-gcp-a3mega-mpirun.txt").splitlines()
             if "Rank  3 " not in line]
    r = parse_nccl_tests("\n".join(lines))
    assert r.nranks is None
    truncated = read("all_reduce-2node-16xh100-gcp-a3mega-mpirun.txt").replace(
        "#  Rank 15 Group  0 Pid   6740 on ztan-mig-gq73 device  7 [0000:8c:00] NVIDIA H100 80GB HBM3",
        "#  Rank 15 Group  0 Pid   6740 on ztan-mig-gq73 device  7 [0000:8c:00] NVID...")
    assert parse_nccl_tests(truncated).nranks is None


def test_row_mangled_by_interleaving_is_skipped_and_reported() -> None:
    original = "     1048576        262144     float     sum      -1    279.5    3.75    3.75      0    280.2    3.74    3.74      0"
    broken = ("     1048576        262144     float     sum      -1    27autodl:31706:31720 [0] NCCL INFO comm 0x5 rank 0\n"
              "9.5    3.75    3.75      0    280.2    3.74    3.74      0")
    text = read("all_reduce-2xrtx2080ti-pcie-autodl.txt")
    assert original in text
    r = parse_nccl_tests(text.replace(original, broken))
    assert len(r.rows) == 27
    assert 1048576 not in [row.size for row in r.rows]
    assert len(r.skipped) == 2
    assert "NCCL INFO" in r.skipped[0].line


def test_row_with_cut_digits_but_right_field_count_is_skipped() -> None:
    original = "     1048576        262144     float     sum      -1    279.5    3.75    3.75      0    280.2    3.74    3.74      0"
    cut = "     1048576        262144     float     sum      -1    79.5    3.75    3.75      0    280.2    3.74    3.74      0"
    r = parse_nccl_tests(read("all_reduce-2xrtx2080ti-pcie-autodl.txt").replace(original, cut))
    assert len(r.rows) == 27
    assert r.skipped[0].reason.startswith("algbw does not match")


def test_tag_output_prefix_with_stderr_lines() -> None:
    text = "\n".join(f"[1,0]<stdout>:{line}" for line in CURRENT.splitlines())
    text += "\n[1,1]<stderr>:node-b:40002:40010 [1] NCCL WARN something odd\n"
    r = parse_nccl_tests(text)
    assert len(r.rows) == 3 and r.nccl_version == "2.27.3"


def test_validation_failure_is_an_error() -> None:
    r = parse_nccl_tests(CURRENT.replace("Out of bounds values : 0 OK", "Out of bounds values : 12 FAILED"))
    assert r.out_of_bounds == 12
    assert r.error == "data validation failed: 12 out-of-bounds values"


def test_text_that_is_not_nccl_tests_raises_parse_error() -> None:
    with pytest.raises(ParseError, match="not nccl-tests output"):
        parse_nccl_tests("bash: all_reduce_perf: command not found\n")


def test_table_whose_rows_are_all_unreadable_raises_with_line_number() -> None:
    text = CURRENT.replace("float     sum      -1    20.15", "float     sum      -1    xx.15")
    text = text.replace("    N/A    30.88", "    ???    30.88").replace("   52.49   79.91", "   52.49   7x.91")
    with pytest.raises(ParseError) as info:
        parse_nccl_tests(text)
    assert info.value.line_no == 12
