"""A lease broken mid-run: the holder's remaining tests error with "lease lost", never run on the node."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hilt.exitcodes import ExitCode
from tests.support.sessions import run_suites


def test_lease_broken_mid_run_makes_remaining_tests_error(sim_rig):
    rigs = sim_rig(nodes=1)
    session = run_suites(rigs, "--rig", "sim", "--lease-ttl", "3", "-p", "no:randomly",
                         suites="tests/e2e/sessions/session_lease_break.py")
    assert session.code == ExitCode.INCONCLUSIVE, session.output[-4000:]
    cases = {c.get("name"): c for c in ET.parse(session.reports / "junit.xml").getroot().iter("testcase")}
    broke, after = cases["test_break_the_lease_from_the_cli[node1]"], cases["test_after_the_break[node1]"]
    # the test that breaks the lease waits to see the holder notice; the holder may stop it first (a lost lease
    # stops the running test at once), which is an error naming the lease, never a failure
    stopped = broke.find("error")
    assert broke.find("failure") is None, ET.tostring(broke).decode()[:2000]
    assert stopped is None or "the running test was stopped" in stopped.get("message", ""), \
        ET.tostring(broke).decode()[:2000]
    error = after.find("error")
    assert error is not None and "lease lost" in error.get("message", ""), ET.tostring(after).decode()[:2000]
    assert "must never run" not in session.output
