"""Test history across nights: flaky (fails now and then) vs broken (fails every night from one on) vs passing."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilt.report import outcomes
from hilt.report.html import build_report
from tests.support.nights import BROKEN_TEST, FLAKY_NIGHTS, FLAKY_TEST, STEADY_TEST

P, F, E, S = "passed", "failed", "error", "skipped"


@pytest.mark.parametrize(("seq", "state", "since"), [
    ([P] * 10, "passing", None),
    ([P, F, P, P, P, F, P, P, F, P], "flaky", None),
    ([P, P, P, P, F, F, F, F], "broken", 4),
    ([F, F, F], "broken", 0),  # failing since the first night the test ran
    ([P, P, P, P, P, F], "failing", 5),  # one night: too early to call it broken
    ([P, F, P, P, F, F, F], "broken", 4),  # was flaky, now fails every night
    ([P, F, P, P, P, F], "flaky", None),  # failed last night, but it has failed and recovered before
    ([P, P, E, S, E, "", E], "broken", 2),  # an error is a failure; skips and absent nights are neither
    ([S, S, ""], "skipped", None),
])
def test_classify(seq, state, since) -> None:
    assert outcomes.classify(seq) == (state, since)


def test_the_fleet_history_labels_the_flaky_and_the_broken_test(fleet) -> None:
    histories = outcomes.outcome_histories(fleet(30))
    by_key = {(h.nodeid.split("[")[0], h.node): h for h in histories}
    flaky = by_key[(FLAKY_TEST, "gpu-02")]
    assert flaky.state == "flaky" and flaky.failures == len(FLAKY_NIGHTS) and flaky.ran == 30
    assert flaky.label == f"fails now and then: {len(FLAKY_NIGHTS)} of 30 nights"
    broken = by_key[(BROKEN_TEST, "gpu-04")]
    assert broken.state == "broken" and broken.since == "rack-a-night-25" and broken.failures == 6
    assert all(h.state == "passing" for k, h in by_key.items() if k[0] == STEADY_TEST)
    assert by_key[(FLAKY_TEST, "gpu-01")].state == "passing"  # the same test on another node is its own history
    assert [h.state for h in histories[:2]] == ["broken", "flaky"]  # what needs action first
    assert len(histories) == 12


def test_a_test_first_seen_later_starts_its_history_there(fleet) -> None:
    runs = fleet(10)
    runs[:5] = [r.model_copy(update={"tests": [t for t in r.tests if not t.nodeid.startswith(BROKEN_TEST)]})
                for r in runs[:5]]
    (h,) = [h for h in outcomes.outcome_histories(runs) if h.nodeid == f"{BROKEN_TEST}[gpu-01]"]
    assert len(h.outcomes) == 5 and h.outcomes[0][0] == "rack-a-night-06"


def test_the_report_lists_flaky_and_broken_tests_with_their_nights(fleet, tmp_path: Path) -> None:
    html = build_report(fleet(30), tmp_path / "r.html").read_text()
    section = html.split('<section id="tests">', 1)[1].split("</section>", 1)[0]
    assert f'data-test="{FLAKY_TEST}[gpu-02]" data-node="gpu-02" data-rig="rack-a" data-state="flaky"' in section
    assert f'data-test="{BROKEN_TEST}[gpu-04]" data-node="gpu-04" data-rig="rack-a" data-state="broken"' in section
    assert "every night since rack-a-night-25 (6 of 30 failed)" in section
    assert section.index('data-state="broken"') < section.index('data-state="flaky"')
    assert "10 tests passing (or skipped) every night they ran" in section
    # the strip: one square per night, each linking its run, red where it failed
    row = section.split(f'data-test="{FLAKY_TEST}[gpu-02]"', 1)[1].split("</tr>", 1)[0]
    assert row.count('class="o ') == 30 and row.count("o-fail") == len(FLAKY_NIGHTS)
    assert 'href="#run-rack-a-night-04" title="rack-a-night-04: failed"' in row


def test_tonight_says_whether_a_red_test_is_flaky_or_broken(fleet, tmp_path: Path) -> None:
    """Night 27: the flaky test failed again on gpu-02 (its 5th failure), gpu-04's test for the 3rd night running."""
    html = build_report(fleet(27), tmp_path / "r.html").read_text()
    tonight = html.split('<section id="tonight">', 1)[1].split("</section>", 1)[0]
    assert f"{FLAKY_TEST}[gpu-02]: failed (flaky, 5 of 27 nights)" in tonight
    assert f"{BROKEN_TEST}[gpu-04]: failed (broken since rack-a-night-25)" in tonight
