"""Copy bandwidth: NVIDIA nvbandwidth's testcases named by the node's profile (`nvbandwidth:`), gated.

Each testcase is a metric `nvbandwidth.<testcase>`: its SUM (label pair=sum) goes through the release gate,
every GPU pair's value is recorded. NVLink error counters and, where DCGM is installed, DCGM health watches
are read around the run: a new error or health incident during the probe fails it.
"""

import pytest

from hilt.probes.dcgm_probe import nvbandwidth_metrics, run_nvbandwidth
from hilt.probes.errors import ProbeSkipped
from hilt.probes.suite_support import NvlinkWatch, remeasurer


@pytest.mark.probe("nvbandwidth.")
def test_nvbandwidth(node, profile, record_metric, release_gate) -> None:
    spec = profile.nvbandwidth
    if spec is None:
        pytest.skip(f"profile {profile.name} has no nvbandwidth: section (no testcases named)")

    def probe() -> list:
        result = run_nvbandwidth(node, spec.testcases, spec.timeout_s)
        return nvbandwidth_metrics(result, spec.testcases, node.name)

    try:
        with NvlinkWatch([node]) as watch:  # NVLink counters and, where installed, DCGM health watches
            metrics = probe()
    except ProbeSkipped as exc:
        pytest.skip(str(exc))
    for metric in metrics:
        if metric.label_dict.get("pair") == "sum":
            release_gate.check(metric, remeasurer(metric, probe))
        else:
            record_metric(metric)
    problems = watch.new_errors()
    if problems:
        pytest.fail("during nvbandwidth:\n" + "\n".join(problems), pytrace=False)
