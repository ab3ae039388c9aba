"""The CI job a run belongs to, from the CI system's own environment: recorded in the run record so the
report links each night to its job log (GitLab ``CI_JOB_URL``, GitHub Actions' run URL, Jenkins ``BUILD_URL``).
Only http(s) URLs are kept: the value ends up as a link in the report."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_HTTP = re.compile(r"^https?://[^\s/]+[^\s]*$")


def ci_job_url(env: Mapping[str, str] | None = None) -> str | None:
    """The job's URL, or None outside CI (or when the variable does not hold an http(s) URL)."""
    env = os.environ if env is None else env
    candidates = [env.get("CI_JOB_URL", "")]
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        candidates.append(f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}")
    candidates.append(env.get("BUILD_URL", ""))
    return next((url.strip() for url in candidates if _HTTP.match(url.strip())), None)
