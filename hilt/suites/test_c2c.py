"""NVLink-C2C: every GPU's coherent link to its CPU is up, at speed, and carries the copy bandwidth it should.

Applies where the node's profile has a `c2c:` section (docs/fabric.md); on other profiles both tests skip with the
reason, as test_trust does without `trust:`. test_c2c_links reads `nvidia-smi c2c -s`; test_c2c_bandwidth runs
nvbandwidth's host<->device testcases and gates each GPU's figure against the profile's baselines (docs/probes.md),
with NVLink error counters (and DCGM health watches, where installed) read around it.
"""

from __future__ import annotations

import logging

import allure
import pytest

from hilt.fabric.fusioncheck import check_c2c
from hilt.probes.c2c_probe import c2c_metrics
from hilt.probes.dcgm_probe import run_nvbandwidth
from hilt.probes.errors import ProbeSkipped
from hilt.probes.suite_support import NvlinkWatch, shared_remeasurer
from hilt.pytestplugin.fusion import record_c2c
from hilt.record.run_record import C2cRecord

log = logging.getLogger(__name__)


@pytest.fixture
def c2c_spec(profile):
    """The node's profile's `c2c:` section; the test skips on a profile without one (not applicable)."""
    if profile.c2c is None:
        pytest.skip(f"profile {profile.name} has no c2c: section (its GPUs have no NVLink-C2C to check)")
    return profile.c2c


def test_c2c_links(node, profile, c2c_spec, fusion_snapshot, request):
    allure.attach(fusion_snapshot.raw("c2c"), name="nvidia-smi c2c -s", attachment_type=allure.attachment_type.TEXT)
    gpus = fusion_snapshot.c2c()
    problems = check_c2c(c2c_spec, gpus, profile.gpu_count)
    try:  # the report's fabric picture; a bug in recording it must not hide this test's verdict
        record_c2c(request, C2cRecord(profile=profile.name, links={i: dict(g.links) for i, g in gpus.items()},
                                      names={i: g.name for i, g in gpus.items()},
                                      links_per_gpu=c2c_spec.links_per_gpu, min_link_gbps=c2c_spec.min_link_gbps,
                                      problems=problems))
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: C2C links not recorded for the report: %s", node.name, exc)
    if problems:
        pytest.fail(f"{node.name}: NVLink-C2C differs from profile {profile.name}:\n" + "\n".join(problems),
                    pytrace=False)


@pytest.mark.probe("c2c.")
def test_c2c_bandwidth(node, profile, c2c_spec, record_metric, release_gate):
    spec = c2c_spec.bandwidth
    if spec is None:
        pytest.skip(f"profile {profile.name} names no c2c: bandwidth: testcases")

    def probe() -> list:
        result = run_nvbandwidth(node, spec.testcases, spec.timeout_s)
        return c2c_metrics(result, spec.testcases, node.name, profile.gpu_count)

    try:
        with NvlinkWatch([node]) as watch:
            metrics = probe()
    except ProbeSkipped as exc:
        pytest.skip(str(exc))
    release_gate.check_all(metrics, shared_remeasurer(probe))
    problems = watch.new_errors()
    if problems:
        pytest.fail("during nvbandwidth through NVLink-C2C:\n" + "\n".join(problems), pytrace=False)
