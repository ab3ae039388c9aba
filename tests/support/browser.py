"""The HTML report opened in headless Chromium (no network, a throwaway profile): the DOM it built, and its
``<html>`` attributes (data-ready, data-errors, ...), which the report's script sets once it has drawn."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]  # the repository
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="chromium not installed (apt-get install -y chromium)")


def chromium(page: Path, profile: Path, *args: str) -> str:
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def html_attr(dom: str, name: str) -> str | None:
    tag = re.search(r"<html\b[^>]*>", dom)
    assert tag, dom[:500]
    found = re.search(rf'\b{name}="([^"]*)"', tag.group(0))
    return found.group(1) if found else None


