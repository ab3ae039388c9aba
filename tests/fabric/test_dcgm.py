"""`dcgmi diag` parser on every capture of the corpus (tests/data/corpus/dcgm_diag, see PROVENANCE.md)."""

from pathlib import Path

import pytest

from hilt.errors import ParseError
from hilt.fabric.dcgm import parse_dcgm_diag, parse_dcgm_diag_runs

D = "dcgm_diag/"
DEPLOYMENT_3X = ["Denylist", "NVML Library", "CUDA Main Library", "Permissions and OS Blocks", "Persistence Mode",
                 "Environment Variables", "Page Retirement/Row Remap", "Graphics Processes", "Inforom"]


def _results(d):
    return {t.name: t.result for t in d.tests}


def test_3x_pass_all_with_empty_stress_section(corpus):
    d = parse_dcgm_diag(corpus(D + "dcgm3.3.3-a100-80gb-x8-p4de-r2-pass-all-empty-stress-section.txt"))
    assert d.passed and d.completed and d.failed == [] and d.level is None
    assert [t.name for t in d.tests] == DEPLOYMENT_3X + ["PCIe", "GPU Memory"]
    assert d.test("PCIe").category == "Integration" and d.test("GPU Memory").category == "Hardware"
    assert d.version == "3.3.3" and d.driver == "535.104.12"
    assert all(t.gpus == {} and t.messages == [] for t in d.tests)


def test_3x_level3_pass_with_eud_skipped(corpus):
    d = parse_dcgm_diag(corpus(D + "dcgm3.3.9-h200x8-r3-pass-eud-skip-from-code-comment.txt"))
    assert d.passed
    assert [(t.name, t.category, t.result) for t in d.tests[-4:]] == [
        ("Targeted Stress", "Stress", "pass"), ("Targeted Power", "Stress", "pass"),
        ("Memory Bandwidth", "Stress", "pass"), ("EUD Test", "Stress", "skip")]
    assert d.test("Diagnostic").category == "Hardware"


def test_3x_gpu_memory_fail_with_info_row_and_eight_warnings(corpus):
    d = parse_dcgm_diag(corpus(D + "dcgm3.3.8-h100x8-r3-fail-early-gpu-memory-fail-all-cuinit-info-row.txt"))
    assert not d.passed and d.completed and d.failed == ["GPU Memory"]
    mem = d.test("GPU Memory")
    assert mem.result == "fail" and mem.category == "Hardware" and len(mem.messages) == 8
    assert mem.messages[0] == (
        "GPU 0 Error using CUDA API cuInit Check DCGM and system logs for errors. Reset GPU. Restart DCGM. "
        "Rerun diagnostics. Unable to initialize CUDA library: 'system not yet initialized'. . Please check "
        "if a CUDA sample program can be run successfully on this host. Refer to "
        "https://github.com/nvidia/cuda-samples")
    assert [m[:6] for m in mem.messages] == [f"GPU {i} " for i in range(8)]
    # The Info row belongs to the passing test above it and is not a test itself.
    pm = d.test("Persistence Mode")
    assert pm.result == "pass" and pm.messages[0].startswith(
        'Persistence mode for GPU 0 is disabled. Enable persistence mode by running "nvidia-smi -i <gpuId> -pm 1 "')
    assert pm.messages[0].endswith("Persistence mode for GPU 4 is disabled. Enable pers")
    assert d.test("Info") is None and d.test("Warning") is None
    assert _results(d)["PCIe"] == "skip" and [t.name for t in d.tests][-2:] == ["Memory Bandwidth", "EUD Test"]


def test_3x_pcie_fail_all_message_joined_mid_word(corpus):
    d = parse_dcgm_diag(corpus(D + "dcgm3.3.0-rtx3090x8-r2-pcie-fail-all-unsupported-driver-combination.txt"))
    assert d.failed == ["PCIe"] and not d.passed
    assert d.test("PCIe").messages == [
        "GPU 0 Error using CUDA API cudaDeviceGetByPCIBusId Check DCGM and system logs for errors. Reset GPU. "
        "Restart DCGM. Rerun diagnostics. 'system has unsupported display driver / cuda driver combination' "
        "for GPU 0, bus ID = 00000000:1B:00.0"]
    assert d.test("GPU Memory").result == "skip" and d.driver == "530.30.02"


def test_2x_level4_tests_and_no_metadata(corpus):
    d = parse_dcgm_diag(corpus(D + "dcgm2.x-azure-r4-pulse-test-memtest-sm-stress-no-metadata.txt"))
    assert d.passed and d.version is None and len(d.tests) == 18
    assert {t.name for t in d.tests if t.category == "Stress"} == {
        "SM Stress", "Targeted Stress", "Targeted Power", "Memory Bandwidth", "Memtest"}
    assert d.test("Pulse Test").category == "Hardware" and d.test("Blacklist").result == "pass"


def test_2x_box_without_footer_but_success_line_completes(corpus):
    d = parse_dcgm_diag(corpus(D + "dcgm2.x-r1-page-retirement-old-name-readme-no-footer.txt"))
    assert d.completed and d.passed and [t.name for t in d.tests][-1] == "Inforom"
    assert d.test("Page Retirement").result == "pass"


def test_1x_without_success_line_closed_box_completes(corpus):
    d = parse_dcgm_diag(corpus(D + "dcgm1.x-p100x4-r1-cuda-toolkit-libraries-skip-no-success-line.txt"))
    assert d.completed and d.passed and len(d.tests) == 9
    assert d.test("CUDA Toolkit Libraries").result == "skip"


def test_1x_performance_category(corpus):
    d = parse_dcgm_diag(corpus(D + "dcgm1.x-p100x4-r2-performance-category-sm-performance-skip.txt"))
    assert d.passed
    assert [(t.name, t.result) for t in d.tests if t.category == "Performance"] == [
        ("SM Performance", "skip"), ("Targeted Performance", "skip"), ("Targeted Power", "skip")]
    # "Diagnostic" is a test here as well as the table's header word
    assert d.test("Diagnostic").category == "Hardware" and d.test("Diagnostic").result == "skip"


def test_4x_per_gpu_rows(corpus):
    d = parse_dcgm_diag(corpus(D + "dcgm4.0.0-a16x4-r3-per-gpu-rows-nvidia-docs-example.txt"))
    assert d.passed and d.version == "4.0.0"
    assert [t.name for t in d.tests] == ["software", "memory", "diagnostic", "pcie", "memory_bandwidth",
                                         "targeted_stress", "targeted_power"]
    assert all(t.gpus == {0: "pass", 1: "pass", 2: "pass", 3: "pass"} for t in d.tests)
    assert d.test("targeted_power").category == "Stress"


def test_4x_single_gpu_category_order(corpus):
    d = parse_dcgm_diag(corpus(D + "dcgm4.4.2-a10g-x1-r2-lowercase-test-names-per-gpu-rows.txt"))
    assert [(t.name, t.category, t.gpus) for t in d.tests] == [
        ("software", "Deployment", {0: "pass"}), ("memory", "Hardware", {0: "pass"}),
        ("pcie", "Integration", {0: "pass"})]
    assert d.passed and d.driver == "580.105.08"


def test_4x_elided_verbose_pcie_fail_not_completed(corpus):
    d = parse_dcgm_diag(corpus(D + "dcgm4.4.1-v100x4-r2-verbose-elided-by-author-pcie-fail-trailing-blanks.txt"))
    assert d.failed == ["pcie"] and not d.passed and not d.completed
    assert d.test("pcie").messages == [
        "There was an internal error during the test: 'A child process (2378806) exited with non-zero status 1' "
        "Check DCGM and system logs for errors. Reset GPU. Restart DCGM. Rerun diagnostics."]
    assert d.version == "4.4.1"


def test_fragment_with_orphan_error_row_never_passes(corpus):
    d = parse_dcgm_diag(corpus(D + "FRAGMENT-deployment-error-row-remappings-pending-no-footer.txt"))
    assert not d.passed and not d.completed and d.tests == []
    assert d.messages == ["GPU 3 has uncorrectable memory errors and row remappings are pending"]


@pytest.mark.parametrize("name", ["dcgm4.2.3-gb10-r1-json-software-fail-persistence-mode-reindented.json",
                                  "dcgm4.5.2-gb10-r2-json-raw-tabs-memory-pcie-pass-software-fail.json"])
def test_4x_json_software_fail(corpus, name):
    d = parse_dcgm_diag(corpus(D + name))
    assert d.failed == ["software"] and not d.passed and d.completed
    sw = d.test("software")
    assert sw.category == "Deployment" and sw.gpus == {0: "fail"}
    assert sw.messages[0] == ('Persistence Mode: Persistence mode for GPU 0 is disabled. Enable persistence mode '
                              'by running "nvidia-smi -i <gpuId> -pm 1 " as root.')
    assert len(sw.messages) == 2  # the summary repeats the warning: kept once, plus the SRAM info
    assert d.driver == "580.82.09"


def test_4x_json_raw_tabs_pass_values(corpus):
    d = parse_dcgm_diag(corpus(D + "dcgm4.5.2-gb10-r2-json-raw-tabs-memory-pcie-pass-software-fail.json"))
    assert _results(d) == {"software": "fail", "memory": "pass", "pcie": "pass"}
    assert d.version == "4.5.2"
    assert "GPU to Host bandwidth:\t\t58.62 GB/s" in d.test("pcie").messages


def test_4x_json_gated_skips(corpus):
    d = parse_dcgm_diag(corpus(D + "dcgm4.5.2-gb10-r2-json-raw-tabs-memory-pcie-skip-gated.json"))
    assert _results(d) == {"software": "fail", "memory": "skip", "pcie": "skip"}
    assert d.test("memory").gpus == {0: "skip"}


def test_3x_json_gpu_ids_layout():
    text = """{
\t"DCGM GPU Diagnostic" : {
\t\t"test_categories" : [
\t\t\t{"category" : "Deployment", "tests" : [
\t\t\t\t{"name" : "Denylist", "results" : [{"gpu_ids" : "0,1,2,3", "status" : "Pass"}]}]},
\t\t\t{"category" : "Hardware", "tests" : [
\t\t\t\t{"name" : "GPU Memory", "results" : [
\t\t\t\t\t{"gpu_ids" : "0,1,3", "status" : "Pass"},
\t\t\t\t\t{"gpu_ids" : "2", "status" : "Fail",
\t\t\t\t\t "warnings" : [{"error_id" : 83, "warning" : "GPU 2 had a DBE"}]}]}]}]},
\t"Driver Version Detected" : "535.104.12"
}"""
    d = parse_dcgm_diag(text)
    assert d.failed == ["GPU Memory"] and not d.passed
    assert d.test("GPU Memory").gpus == {0: "pass", 1: "pass", 3: "pass", 2: "fail"}
    assert d.test("GPU Memory").messages == ["GPU 2 had a DBE"] and d.driver == "535.104.12"


def test_3x_text_status_split_by_gpu():
    text = "\n".join([
        "+---------------------------+------------------------------------------------+",
        "| Diagnostic                | Result                                         |",
        "+===========================+================================================+",
        "+-----  Hardware  ----------+------------------------------------------------+",
        "| GPU Memory                | Pass - GPUs: 0, 1, 3                           |",
        "|                           | Fail - GPU: 2                                  |",
        "| Warning                   | GPU 2 had a DBE                                |",
        "+---------------------------+------------------------------------------------+",
    ])
    d = parse_dcgm_diag(text)
    t = d.test("GPU Memory")
    assert t.result == "fail" and t.gpus == {0: "pass", 1: "pass", 3: "pass", 2: "fail"}
    assert d.failed == ["GPU Memory"] and d.completed


def test_unable_to_complete_never_passes():
    d = parse_dcgm_diag("Error: Unable to complete diagnostic for group 2147483647. Return: (-37) "
                        "A field value for a GPU was not found.\n")
    assert not d.passed and not d.completed and d.error.startswith("Unable to complete diagnostic")


def test_json_runtime_error_never_passes():
    d = parse_dcgm_diag('{"DCGM GPU Diagnostic": {"runtime_error": "Host engine not running"}}')
    assert not d.passed and d.error == "Host engine not running"


def test_json_without_tests_never_passes():
    assert not parse_dcgm_diag('{"DCGM Diagnostic": {"test_categories": []}}').passed


@pytest.mark.parametrize("path", [
    "dcgmi_discovery/dcgm1.x-p100x4-sxm2-discovery-l-ppc64le.txt",
    "dcgmi_discovery/dcgm3.1.8-h800x8-discovery-l-zero-nvswitches.txt",
    "nvidia_smi_q/a100-sxm4-80gb-q-ecc-remapped-rows-pending-author-elided.txt",
    "nvidia_smi_q/gddr7-gpu1-q-d-row-remapper-pending-uncorrectable-1.txt",
    "nvbandwidth/h800x8-v0.2-d2d-read-ce-only.txt",
    "nvbandwidth/json-v0.5-single-gpu-verbose-17-waived-dcgm-test-fixture.json",
])
def test_other_tools_are_refused(corpus, path):
    with pytest.raises(ParseError) as err:
        parse_dcgm_diag(corpus(path))
    assert err.value.line_no is not None or "not `dcgmi diag" in str(err.value)


HEALTH = """+---------------------------+----------------------------------------------------------+
| Health Monitor Report                                                                |
+===========================+==========================================================+
| Overall Health            | Healthy                                                  |
+---------------------------+----------------------------------------------------------+
"""
DISCOVERY_BOX_ONLY = """+--------+----------------------------------------------------------------------+
| GPU ID | Device Information                                                   |
+--------+----------------------------------------------------------------------+
| 0      | Name: NVIDIA H800                                                    |
+--------+----------------------------------------------------------------------+
"""


@pytest.mark.parametrize("text", [HEALTH, DISCOVERY_BOX_ONLY, "", "Successfully ran diagnostic for group.\n",
                                  "{}", "[1, 2]", '{"DCGM Diagnostic": {"test_categories": 3}}'])
def test_other_dcgmi_tables_and_junk_are_refused(text):
    with pytest.raises(ParseError):
        parse_dcgm_diag(text)


def test_unknown_result_word_names_the_line():
    text = ("+---+---+\n| Diagnostic | Result |\n+===+===+\n|-----  Deployment  ---+---|\n"
            "| Denylist | Maybe |\n")
    with pytest.raises(ParseError) as err:
        parse_dcgm_diag(text)
    assert err.value.line_no == 5 and "Maybe" in str(err.value)


# --- the output inside a larger text (issue 24 item 10; tests/data/composed, see its PROVENANCE.md) ----------

COMPOSED = Path(__file__).resolve().parents[1] / "data" / "composed"


def test_two_runs_in_one_capture_are_read_each_and_the_last(corpus):
    text = (COMPOSED / "dcgm-diag-twice-fail-early-then-pass.txt").read_text()
    first, second = parse_dcgm_diag_runs(text)
    alone = [parse_dcgm_diag(corpus(D + n)) for n in (
        "dcgm3.3.8-h100x8-r3-fail-early-gpu-memory-fail-all-cuinit-info-row.txt",
        "dcgm3.3.9-h200x8-r3-pass-eud-skip-from-code-comment.txt")]
    assert [first, second] == alone  # each run reads as it does alone
    assert first.failed == ["GPU Memory"] and second.passed
    assert parse_dcgm_diag(text) == second  # the last: the node's state now


def test_a_run_inside_a_prolog_log_is_found_and_the_log_around_it_passed_over(corpus):
    d = parse_dcgm_diag((COMPOSED / "dcgm-diag-in-slurm-prolog-log.txt").read_text())
    assert d == parse_dcgm_diag(corpus(D + "dcgm2.x-r1-page-retirement-old-name-readme-no-footer.txt"))
    assert d.passed and _results(d)["Inforom"] == "pass" and len(d.tests) == 9


def test_a_box_behind_a_per_line_prefix_is_read_from_its_border_column(corpus):
    """`pdsh -w gpu-017 dcgmi diag -r 3` prefixes every line with the host; a log may prefix a timestamp."""
    plain = corpus(D + "dcgm3.3.9-h200x8-r3-pass-eud-skip-from-code-comment.txt")
    prefixed = "".join(f"gpu-017: {line}" for line in plain.splitlines(keepends=True))
    assert parse_dcgm_diag(prefixed) == parse_dcgm_diag(plain) and parse_dcgm_diag(prefixed).passed


def test_two_json_documents_one_after_another(corpus):
    a = corpus(D + "dcgm4.5.2-gb10-r2-json-raw-tabs-memory-pcie-pass-software-fail.json")
    b = corpus(D + "dcgm4.5.2-gb10-r2-json-raw-tabs-memory-pcie-skip-gated.json")
    runs = parse_dcgm_diag_runs(a + b)
    assert runs == [parse_dcgm_diag(a), parse_dcgm_diag(b)]
    assert _results(runs[-1]) == {"software": "fail", "memory": "skip", "pcie": "skip"}


def test_a_log_holding_no_run_is_still_refused():
    log = (COMPOSED / "dcgm-diag-in-slurm-prolog-log.txt").read_text().splitlines(keepends=True)
    without = "".join(line for line in log if "prolog[" in line)
    with pytest.raises(ParseError, match="not `dcgmi diag` output"):
        parse_dcgm_diag(without)


def test_a_broken_box_inside_a_log_is_refused_with_its_line(corpus):
    text = (COMPOSED / "dcgm-diag-in-slurm-prolog-log.txt").read_text().replace(
        "| NVML Library              | Pass  ", "| NVML Library              | Maybe ")
    with pytest.raises(ParseError) as err:
        parse_dcgm_diag(text)
    assert err.value.line_no == 9 and "Maybe" in str(err.value)
