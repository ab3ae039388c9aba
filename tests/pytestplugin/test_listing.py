"""Listing never reserves: pytest's listing and help options start no rig session (issue 14)."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from tests.support.sessions import run_pytest


@pytest.mark.parametrize("listing", [["--fixtures"], ["--fixtures-per-test"], ["--markers"], ["--help"],
                                     ["--version"], ["--collect-only"], ["--setup-plan"]],
                         ids=lambda a: a[0])
def test_listing_with_a_rig_starts_nothing(outside_dir, listing):
    run = run_pytest(outside_dir, "--rig", "lab", *listing)
    assert run.code == 0, run.output
    assert not (outside_dir / "provider-started").exists(), f"{listing[0]} started the rig:\n{run.output}"
    assert not (outside_dir / "reports").exists(), f"{listing[0]} wrote reports/:\n{run.output}"


def test_fixtures_lists_hilt_fixtures_outside_the_repository(outside_dir):
    run = run_pytest(outside_dir, "--rig", "lab", "--fixtures")
    for fixture in ("node", "lease_nodes", "release_gate", "record_metric", "probe_settings", "profile"):
        assert f"\n{fixture} -- " in run.output or f"\n{fixture} [" in run.output, run.output


def test_a_real_run_does_start_the_rig(outside_dir):
    """The control: the same command without a listing option reaches the provider (which then refuses)."""
    run = run_pytest(outside_dir, "--rig", "lab")
    assert (outside_dir / "provider-started").read_text() == "lab", run.output
    assert "recording provider: started" in run.output
    assert "hilt gate: INCONCLUSIVE" in run.output  # the rich summary, through the terminal reporter


def test_a_run_without_xdist_is_a_run(outside_dir):
    """`-p no:xdist` used to stop every run with an internal error: pluggy refused hilt's xdist-only hook."""
    run = run_pytest(outside_dir, "-p", "no:xdist", "--rig", "lab")
    assert "INTERNALERROR" not in run.output and "pytest_configure_node" not in run.output, run.output
    assert (outside_dir / "provider-started").read_text() == "lab", run.output


def test_junit_testsuite_carries_the_run_provenance(outside_dir):
    run_pytest(outside_dir, "--rig", "lab")
    suite = ElementTree.parse(outside_dir / "reports" / "junit.xml").getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["hilt.rig"] == "lab" and props["hilt.run_id"], props
