"""Each run records its CI job (GitLab, GitHub Actions, Jenkins) and the report links it."""

from __future__ import annotations

from pathlib import Path

from hilt.report.html import build_report
from hilt.util.ci_env import ci_job_url


def test_job_url_from_each_ci_system() -> None:
    assert ci_job_url({"CI_JOB_URL": "https://gitlab.lab/gpu/images/-/jobs/4711"}) == \
        "https://gitlab.lab/gpu/images/-/jobs/4711"
    assert ci_job_url({"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "lab/images",
                       "GITHUB_RUN_ID": "9001"}) == "https://github.com/lab/images/actions/runs/9001"
    assert ci_job_url({"BUILD_URL": "https://jenkins.lab/job/nightly/212/"}) == "https://jenkins.lab/job/nightly/212/"
    assert ci_job_url({}) is None
    assert ci_job_url({"BUILD_URL": "javascript:alert(1)"}) is None


def test_report_links_the_ci_job_and_never_a_script(tmp_path: Path, nightly) -> None:
    runs = nightly(3)
    runs[-1] = runs[-1].model_copy(update={"ci_url": "https://gitlab.lab/gpu/images/-/jobs/4711?a=1&b=2"})
    runs[0] = runs[0].model_copy(update={"ci_url": 'javascript:alert("x")'})
    html = build_report(runs, tmp_path / "report.html").read_text()
    assert 'href="https://gitlab.lab/gpu/images/-/jobs/4711?a=1&amp;b=2"' in html
    assert 'href="javascript:' not in html
