"""BMC secrets (passwords, tokens, session cookies) never reach a log record, an error text, junit.xml or Allure,
whatever their length or the escaping a BMC echoes them in (issue 20, item 12)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from hilt.bmc import Bmc, BmcError
from hilt.bmc.redact import secret_forms
from testkit.redfish_peer import IMAGE, start_peer
from tests.support.sessions import session_env

ROOT = Path(__file__).resolve().parents[2]


def _leaks(secret: str, texts: list[str]) -> list[str]:
    """The forms of ``secret`` (and the tail after a quote) found in ``texts``."""
    forms = secret_forms(secret)
    if '"' in secret and len(secret.split('"', 1)[1]) >= 3:
        forms.add(secret.split('"', 1)[1])
    return sorted(f for f in forms for t in texts if f in t)


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def test_password_with_a_quote_never_in_debug_login_logs(debug_logs):
    pw = 'Tail"after-quote-Q9'
    peer = start_peer(password=pw)
    try:
        with Bmc(peer.url, "admin", pw, name="node-a", auth="session") as bmc:
            assert bmc.power_state() == "Off"
        texts = [r.getMessage() for r in debug_logs.records]
        assert any("POST /redfish/v1/SessionService/Sessions" in t for t in texts)  # the login was logged
        assert _leaks(pw, texts) == []
    finally:
        peer.stop()


@pytest.mark.parametrize("wrong", ["back\\slash-Z1", "n\u00f6n-ascii-\u03a97", "q7"],
                         ids=["backslash", "non-ascii", "two-characters"])
def test_password_echoed_by_the_bmc_never_in_errors_or_logs(debug_logs, wrong):
    peer = start_peer({"echo-body"})
    try:
        bmc = Bmc(peer.url, "admin", wrong, name="node-a", auth="session")
        with pytest.raises(BmcError, match=r"node-a: log in \(Redfish session\) failed \(HTTP 400\): Login failed") \
                as info:
            bmc.power_state()
        assert "Password" in str(info.value)  # the echo is shown, the secret is not
        texts = [str(info.value), info.value.bmc_message] + [r.getMessage() for r in debug_logs.records]
        assert _leaks(wrong, texts) == []
    finally:
        peer.stop()


def test_session_cookie_never_sent_back_nor_shown(debug_logs):
    peer = start_peer({"cookie"})
    try:
        with Bmc(peer.url, "admin", "peer-pw", name="node-a", poll_interval_s=0.01, backoff_s=0.01) as bmc:
            bmc.boot_from_virtual_media(IMAGE)  # bmcweb refuses cookie-authenticated writes: none are sent
        assert not any("Cookie" in r.headers for r in peer.state.requests)
        texts = [r.getMessage() for r in debug_logs.records]
        assert any("set-cookie" in t for t in texts)  # the header was logged, its value masked
        assert not [t for t in texts if peer.state.cookie in t]
    finally:
        peer.stop()


INNER = '''
import os, pathlib
from hilt.bmc import Bmc
from testkit.redfish_peer import IMAGE, start_peer

def test_boot_then_wrong_password():
    peer = start_peer({"echo-body", "cookie"}, password=os.environ["INNER_PW"])
    pathlib.Path("cookie.txt").write_text(peer.state.cookie)
    try:
        with Bmc(peer.url, "admin", os.environ["INNER_PW"], auth="session", name="node-a", poll_interval_s=0.01) as b:
            b.boot_from_virtual_media(IMAGE)
            print("booted")
        Bmc(peer.url, "admin", os.environ["INNER_WRONG"], auth="session", name="node-a").power_state()
    finally:
        peer.stop()

def test_bad_url():
    Bmc("ftp://bmc", "admin", os.environ["INNER_PW"])
'''


def test_secrets_stay_out_of_junit_xml_and_allure(tmp_path):
    pw, wrong = 'Ju"n\\it-\u00f6-\u03a9x', 'x"Wr\\ong-\u00e9'
    (tmp_path / "test_inner.py").write_text(INNER)
    env = session_env(INNER_PW=pw, INNER_WRONG=wrong, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "test_inner.py", "-p", "no:hilt", "-p", "no:cacheprovider",
         "--junitxml=junit.xml", "-o", "junit_logging=all", "--log-level=DEBUG", "--alluredir=allure", "-rA"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout[-3000:]  # the wrong password and the bad URL failed the tests...
    assert "2 failed" in proc.stdout
    junit = (tmp_path / "junit.xml").read_text()
    texts = [junit, proc.stdout, proc.stderr] + [p.read_text(errors="replace")
                                                 for p in (tmp_path / "allure").iterdir()]
    cookie = (tmp_path / "cookie.txt").read_text()
    assert _leaks(pw, texts) == [] and _leaks(wrong, texts) == []
    assert not [t for t in texts if cookie in t]
    assert "log in (Redfish session) failed (HTTP 400)" in junit and "booted" in junit  # ...with logs and error
    assert any("set-cookie" in t for t in texts)
    # junit.xml escapes characters itself: its XML-decoded text must be clean as well.
    import xml.etree.ElementTree as ET
    decoded = " ".join(ET.fromstring(junit).itertext()) + json.dumps(dict(ET.fromstring(junit).attrib))
    assert _leaks(pw, [decoded]) == [] and _leaks(wrong, [decoded]) == []


def test_secret_quoted_in_a_bmc_log_entry_is_scrubbed_from_evidence():
    pw = 'lo"g-Pw9'
    peer = start_peer(password=pw)
    try:
        entries = peer.state.tree["/redfish/v1/Systems/437XR1138R2/LogServices/Log1/Entries"]["Members"]
        entries[-1]["Message"] = 'Login failed: {"UserName": "root", "Password": "lo\\"g-Pw9"}'
        with Bmc(peer.url, "admin", pw, name="node-a") as bmc:
            ev = bmc.collect_evidence()
        assert any(e["message"].startswith("Login failed") for e in ev.log_entries)
        assert _leaks(pw, [json.dumps(ev.to_dict()), str(ev.to_dict())]) == []
    finally:
        peer.stop()


@pytest.mark.parametrize("text", [
    json.dumps({"UserName": "root", "Password": 'un"known\\-\u00e9'}),
    json.dumps({"error": {"message": json.dumps({"Password": 'un"known\\-\u00e9', "b": 1})}}),
    str({"password": 'un"known\\-\u00e9', "b": 2}),
    "Set-Cookie: QSESSIONID=un\"known\\-\u00e9; Path=/; HttpOnly",
    "request headers {'X-Auth-Token': 'un\"known\\-\u00e9'}",
], ids=["json", "json-in-json", "repr", "set-cookie", "header-dict"])
def test_unregistered_secret_is_masked_by_structure(text):
    """A secret we never registered (another session's cookie, an echoed credential) is masked by where it sits."""
    from hilt.bmc.redact import REDACTOR

    clean = REDACTOR.scrub(text)
    assert "known" not in clean and "<redacted>" in clean
