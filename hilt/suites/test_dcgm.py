"""DCGM diagnostics: `dcgmi diag` at the level the node's profile names (its `dcgm:` section).

Each failed DCGM test fails with its messages and GPUs; a warned or skipped DCGM test fails unless the profile
allows it. A node without DCGM skips with the reason; a diagnostic DCGM could not complete is an
infrastructure error (the test errors and the gate is inconclusive), never a pass.
"""

import json

import allure
import pytest

from hilt.probes.dcgm_probe import judge_dcgm, run_dcgm_diag
from hilt.probes.errors import ProbeSkipped


def test_dcgm_diag(node, profile) -> None:
    spec = profile.dcgm
    if spec is None:
        pytest.skip(f"profile {profile.name} has no dcgm: section (no DCGM level is named for this platform)")
    try:
        diag = run_dcgm_diag(node, spec.level, spec.timeout_s)
    except ProbeSkipped as exc:
        pytest.skip(str(exc))
    allure.attach(json.dumps([t.__dict__ for t in diag.tests], indent=1, default=str),
                  name=f"dcgmi diag -r {spec.level}", attachment_type=allure.attachment_type.JSON)
    problems = judge_dcgm(diag, spec)
    if problems:
        pytest.fail(f"{node.name}: dcgmi diag -r {spec.level} (DCGM {diag.version or '?'}):\n" + "\n".join(problems),
                    pytrace=False)
