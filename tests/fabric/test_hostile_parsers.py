"""Issue 20 item 15: a node's tools are not trusted. Each named attack gets a result or a ParseError, never
another exception, and never unbounded work (bounded by caps, checked by outcome here; speed is in
bench/parsers.py)."""

import pytest

from hilt.errors import ParseError
from hilt.fabric.dcgm import parse_dcgm_diag
from hilt.fabric.devicetree import parse_devicetree
from hilt.fabric.nvlink import parse_nvlink_errors, parse_nvlink_status
from hilt.fabric.nvml import parse_nvml_report
from hilt.fabric.procinfo import parse_gpu_information
from hilt.fabric.snapshot import FabricSnapshot, Section, split_sections
from hilt.fabric.xid import parse_xids
from hilt.probes.nccl import parse_nccl_tests
from hilt.probes.nvbandwidth import parse_nvbandwidth
from hilt.probes.results import parse_result_lines

NCCL = """# nThread 1 nGpus 1 minBytes 8 maxBytes 16 step: 2(factor) warmup iters: 5 iters: 20 validation: 1
#
# Using devices
{ranks}
#
#                                                       out-of-place                       in-place
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
{rows}
# Out of bounds values : 0 OK
# Avg bus bandwidth    : 0.5
"""
GOOD_ROW = ("           8             2     float     sum      -1    10.00    0.00    0.00      0"
            "    10.00    0.00    0.00      0")


def test_nccl_huge_rank_number_is_counted_not_enumerated():
    # main built set(range(10**8 + 1)) to compare against: gigabytes for one line
    r = parse_nccl_tests(NCCL.format(ranks="#  Rank 100000000 Group  0 Pid  1 on host device  0 [0x07] H100",
                                     rows=GOOD_ROW))
    assert r.nranks is None and len(r.rows) == 1


def test_nccl_ranks_zero_to_n_still_counted():
    ranks = "\n".join(f"#  Rank {i} Group  0 Pid  1 on host device  {i} [0x07] H100" for i in range(3))
    assert parse_nccl_tests(NCCL.format(ranks=ranks, rows=GOOD_ROW)).nranks == 3


def test_nccl_integer_over_4300_digits_is_a_skipped_row():
    row = GOOD_ROW.replace("           8 ", " " + "9" * 5000 + " ", 1)
    r = parse_nccl_tests(NCCL.format(ranks="", rows=row + "\n" + GOOD_ROW))
    assert len(r.rows) == 1 and r.skipped and "24 digits" in r.skipped[0].reason


def test_nccl_wrong_1e999_is_a_skipped_row():
    row = GOOD_ROW[:GOOD_ROW.rindex("0")] + "1e999"
    r = parse_nccl_tests(NCCL.format(ranks="", rows=row + "\n" + GOOD_ROW))
    assert len(r.rows) == 1 and len(r.skipped) == 1


def test_nccl_only_bad_rows_is_a_parse_error():
    row = GOOD_ROW.replace("10.00", "1e999", 1)
    with pytest.raises(ParseError):
        parse_nccl_tests(NCCL.format(ranks="", rows=row))


def test_nccl_non_finite_average_is_no_average():
    text = NCCL.format(ranks="", rows=GOOD_ROW).replace("# Avg bus bandwidth    : 0.5", "# Avg bus bandwidth    : inf")
    assert parse_nccl_tests(text).avg_busbw is None


def test_nvlink_80k_character_gpu_line_is_refused():
    # main's regex took 25 s on this line and then accepted it as a GPU name
    line = "GPU 0: " + " " * 80_000 + "x"
    with pytest.raises(ParseError) as err:
        parse_nvlink_status(line + "\n\t Link 0: 26.562 GB/s\n")
    assert err.value.line_no == 1


def test_nvlink_gpu_line_without_uuid_and_with_parentheses():
    s = parse_nvlink_status("GPU 3: NVIDIA H100 (PCIe) (UUID: GPU-1234)\n\t Link 0: 26.562 GB/s\n"
                            "GPU 4: Tesla (old)\n\t Link 0: <inactive>\n")
    assert (s[0].index, s[0].name, s[0].uuid) == (3, "NVIDIA H100 (PCIe)", "GPU-1234")
    assert (s[1].name, s[1].uuid) == ("Tesla (old)", None)


def test_nvlink_counter_over_24_digits_is_refused():
    with pytest.raises(ParseError, match="not `nvidia-smi nvlink -e` output") as err:
        parse_nvlink_errors("GPU 0: H100 (UUID: GPU-1)\n\t Link 0: Replay Errors: " + "9" * 5000 + "\n")
    assert err.value.line_no == 2


def test_procinfo_long_blank_runs_and_unicode_digits():
    info = parse_gpu_information("Model: \t\t H100\nIRQ:   \t\t ²\nDevice Minor: " + "9" * 100 + "\n")
    assert info.model == "H100" and info.irq is None and info.device_minor is None
    with pytest.raises(ParseError):
        parse_gpu_information("Model" + " " * 50_000 + "x\n")


def test_xid_message_with_long_blank_run():
    events = parse_xids("NVRM: Xid (PCI:0000:17:00): 79, pid=1, " + " " * 50_000 + "GPU has fallen off the bus.\n"
                        "NVRM: Xid (PCI:0000:18:00): " + "9" * 5000 + ", x\n")
    assert [e.xid for e in events] == [79] and events[0].message.endswith("GPU has fallen off the bus.")


@pytest.mark.parametrize(("text", "why"), [
    ("[" * 100_000 + "]" * 100_000, "NVML collector output: JSON nested too deeply"),
    ('{"gpus": [{"index": ' + "9" * 5000 + "}]}", "NVML collector output: Exceeds the limit .* digits"),
    ('{"driver": 1e999}', "NVML collector JSON: driver: Input should be a valid string"),
    ("", "NVML collector output is not JSON")])
def test_nvml_json_attacks(text, why):
    with pytest.raises(ParseError, match=why):
        parse_nvml_report(text)


DEEP, LONG_INT = "{" + '"a":' + "[" * 100_000, '{"DCGM Diagnostic": ' + "9" * 5000 + "}"
INF_CELL = ('{"nvbandwidth": {"testcases": [{"name": "x", "status": "Passed", "bandwidth_matrix": [["1e999"]], '
            '"sum": 1e999}]}}')


@pytest.mark.parametrize(("parse", "text", "why"), [
    (parse_dcgm_diag, DEEP, "dcgmi diag JSON: nested too deeply"),
    (parse_dcgm_diag, LONG_INT, "dcgmi diag JSON: Exceeds the limit .* digits"),
    (parse_dcgm_diag, INF_CELL, "not `dcgmi diag -j` output: no 'DCGM Diagnostic'"),
    (parse_nvbandwidth, DEEP, "nvbandwidth JSON: nested too deeply"),
    (parse_nvbandwidth, LONG_INT, "nvbandwidth JSON: Exceeds the limit .* digits"),
    (parse_nvbandwidth, INF_CELL, r"nvbandwidth JSON: x cell \(0, 0\) '1e999' is not a number")])
def test_json_attacks_on_new_parsers(parse, text, why):
    with pytest.raises(ParseError, match=why):
        parse(text)


def test_devicetree_deep_path_is_refused_not_recursed():
    with pytest.raises(ParseError):
        parse_devicetree({"/".join(["n"] * 5000) + "/compatible": b"x\0"})
    tree = parse_devicetree({"/".join(["n"] * 10) + "/compatible": b"x\0"})
    assert tree.node("/".join(["n"] * 10)).compatible == ["x"]


def test_devicetree_dump_with_bad_base64_is_a_parse_error():
    snap = FabricSnapshot("n1", {"devicetree": Section("firmware/compatible\t%%%not-base64\n", 0)})
    with pytest.raises(ParseError):
        snap.devicetree()


def test_snapshot_frames_with_huge_or_missing_rc():
    out = split_sections("@@HILT@@ BEGIN topo\nx\n@@HILT@@ END topo\n@@HILT@@ BEGIN a\n@@HILT@@ END a rc=" +
                         "9" * 5000 + "\n")
    assert out["topo"].rc == -1 and "a" not in out


def test_result_lines_with_huge_int_or_deep_nesting_are_bad_lines():
    records, bad = parse_result_lines("HILT_RESULT {\"size\": " + "9" * 5000 + "}\nHILT_RESULT " + "[" * 100_000
                                      + "\nHILT_RESULT {\"ok\": 1}\n")
    assert records == [{"ok": 1}] and len(bad) == 2


def test_oversized_text_is_refused_before_work():
    from hilt.fabric.bounds import MAX_TEXT
    with pytest.raises(ParseError):
        parse_nvbandwidth("x" * (MAX_TEXT + 1))
