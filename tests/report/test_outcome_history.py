"""Test history across nights: flaky (fails now and then) vs broken (fails every night from one on) vs passing."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilt.report import outcomes
from hilt.report.html import build_report
from tests.support.nights import BROKEN_TEST, FLAKY_NIGHTS, FLAKY_TEST, STEADY_TEST, identity

P, F, E, S = "passed", "failed", "error", "skipped"
STEADY_ID, FLAKY_ID, BROKEN_ID = identity(STEADY_TEST), identity(FLAKY_TEST), identity(BROKEN_TEST)


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
    by_key = {(h.test.split("[")[0], h.node): h for h in histories}
    flaky = by_key[(FLAKY_ID, "gpu-02")]
    assert flaky.state == "flaky" and flaky.failures == len(FLAKY_NIGHTS) and flaky.ran == 30
    assert flaky.label == f"fails now and then: {len(FLAKY_NIGHTS)} of 30 nights"
    broken = by_key[(BROKEN_ID, "gpu-04")]
    assert broken.state == "broken" and broken.since == "rack-a-night-25" and broken.failures == 6
    assert all(h.state == "passing" for k, h in by_key.items() if k[0] == STEADY_ID)
    assert by_key[(FLAKY_ID, "gpu-01")].state == "passing"  # the same test on another node is its own history
    assert [h.state for h in histories[:2]] == ["broken", "flaky"]  # what needs action first
    assert len(histories) == 12


def test_a_test_first_seen_later_starts_its_history_there(fleet) -> None:
    runs = fleet(10)
    runs[:5] = [r.model_copy(update={"tests": [t for t in r.tests if not t.nodeid.startswith(BROKEN_TEST)]})
                for r in runs[:5]]
    (h,) = [h for h in outcomes.outcome_histories(runs) if h.test == identity(f"{BROKEN_TEST}[gpu-01]")]
    assert len(h.outcomes) == 5 and h.outcomes[0][0] == "rack-a-night-06"


def test_the_report_lists_flaky_and_broken_tests_with_their_nights(fleet, tmp_path: Path) -> None:
    html = build_report(fleet(30), tmp_path / "r.html").read_text()
    section = html.split('<section id="tests">', 1)[1].split("</section>", 1)[0]
    assert f'data-test="{FLAKY_ID}[gpu-02]" data-node="gpu-02" data-rig="rack-a" data-state="flaky"' in section
    assert f'data-test="{BROKEN_ID}[gpu-04]" data-node="gpu-04" data-rig="rack-a" data-state="broken"' in section
    assert "every night since rack-a-night-25 (6 of 30 failed)" in section
    assert section.index('data-state="broken"') < section.index('data-state="flaky"')
    assert "10 tests passing (or skipped) every night they ran" in section
    # the strip: one square per night, each linking its run, red where it failed
    row = section.split(f'data-test="{FLAKY_ID}[gpu-02]"', 1)[1].split("</tr>", 1)[0]
    assert row.count('class="o ') == 30 and row.count("o-fail") == len(FLAKY_NIGHTS)
    assert 'href="#run-rack-a-night-04" title="rack-a-night-04: failed"' in row


def test_tonight_says_whether_a_red_test_is_flaky_or_broken(fleet, tmp_path: Path) -> None:
    """Night 27: the flaky test failed again on gpu-02 (its 5th failure), gpu-04's test for the 3rd night running."""
    html = build_report(fleet(27), tmp_path / "r.html").read_text()
    tonight = html.split('<section id="tonight">', 1)[1].split("</section>", 1)[0]
    assert f"{FLAKY_TEST}[gpu-02]: failed (flaky, 5 of 27 nights)" in tonight
    assert f"{BROKEN_TEST}[gpu-04]: failed (broken since rack-a-night-25)" in tonight


# --- flakiness among the runs of one image (issue 24 item 6) -------------------------------------------------

G, R = "img-good", "img-rc-regressed"


@pytest.mark.parametrize(("seq", "images", "state", "since"), [
    # fails only on the nights that booted the regressed candidate: not flaky, whatever the order
    ([P, P, F, P, P, F, P], [G, G, R, G, G, R, G], "image-bound", None),
    ([P, F, P, F], [G, R, G, R], "failing", 3),  # failing tonight, on the candidate: the change is the cause
    ([P, P, F, F, F], [G, G, R, R, R], "broken", 2),
    # on one image a failure with passes after it is flaky, whatever the other images did
    ([P, F, P, F, P], [G, G, G, R, R], "flaky", None),
    ([P, F, P, F, P], [G] * 5, "flaky", None),  # one image: as before
])
def test_classify_judges_flakiness_among_nights_of_the_same_image(seq, images, state, since) -> None:
    assert outcomes.classify(seq, images=images) == (state, since)


def _with_candidate(runs, nights, test=STEADY_TEST, image=R):
    """``runs`` where the nights in ``nights`` booted ``image`` on every node and ``test`` failed on each."""
    out = []
    for i, run in enumerate(runs, start=1):
        if i in nights:
            run = run.model_copy(update={
                "image": image,
                "nodes": [n.model_copy(update={"image_id": image}) for n in run.nodes],
                "tests": [t.model_copy(update={"outcome": "failed", "kind": "product", "message": "busbw low"})
                          if t.nodeid.startswith(test) else t for t in run.tests]})
        out.append(run)
    return out


def _report(tmp_path: Path, runs) -> tuple[str, str]:
    """`hilt history import` the nights, then `hilt report`, as a user types them: (tests section, tonight)."""
    from typer.testing import CliRunner

    from hilt.report.cli import history_app, report_app

    files = []
    for run in runs:
        files.append(tmp_path / f"{run.run_id}.json")
        files[-1].write_text(run.model_dump_json())
    db, out = tmp_path / "history.sqlite", tmp_path / "report.html"
    for args in ([history_app, ["import", *map(str, files), "--history", str(db)]],
                 [report_app, ["--since", "all", "-o", str(out), "--history", str(db)]]):
        done = CliRunner().invoke(*args)
        assert done.exit_code == 0, done.output
    html = out.read_text()
    return (html.split('<section id="tests">', 1)[1].split("</section>", 1)[0],
            html.split('<section id="tonight">', 1)[1].split("</section>", 1)[0])


def test_a_test_failing_only_on_the_candidates_nights_is_not_flaky(fleet, tmp_path: Path) -> None:
    """Nights 8, 16 and 24 booted a regressed candidate; the test failed on each of them and passed on every
    other night. It used to be labelled flaky."""
    tests, _ = _report(tmp_path, _with_candidate(fleet(30), {8, 16, 24}))
    row = tests.split(f'data-test="{STEADY_ID}[gpu-01]"', 1)[1].split("</tr>", 1)[0]
    assert 'data-state="image-bound"' in row and 'data-state="flaky"' not in row
    assert f"failed only on {R} (3 of 3 nights), never on " in row
    assert "4 image-bound" in tests.split("</p>", 1)[0]  # one per node, and none of them counted flaky
    assert f'data-test="{FLAKY_ID}[gpu-02]" data-node="gpu-02" data-rig="rack-a" data-state="flaky"' in tests


def test_a_failure_that_starts_with_an_image_change_says_so(fleet, tmp_path: Path) -> None:
    runs = fleet(30)
    drv555 = runs[-1].image
    tests, tonight = _report(tmp_path, _with_candidate(runs, {28, 29, 30}))
    note = f"broken since rack-a-night-28, following the image change {drv555} → {R}"
    assert f"{STEADY_TEST}[gpu-03]: failed ({note})" in tonight
    row = tests.split(f'data-test="{STEADY_ID}[gpu-03]"', 1)[1].split("</tr>", 1)[0]
    assert f"every night since rack-a-night-28, following the image change {drv555} → {R} (" in row


def test_a_candidate_failing_again_tonight_is_failing_not_flaky(fleet, tmp_path: Path) -> None:
    tests, tonight = _report(tmp_path, _with_candidate(fleet(30), {24, 30}))
    assert f"{STEADY_TEST}[gpu-01]: failed (failing since rack-a-night-30, following the image change" in tonight
    row = tests.split(f'data-test="{STEADY_ID}[gpu-01]"', 1)[1].split("</tr>", 1)[0]
    assert 'data-state="failing"' in row and f"{R}: 2 of 2 failed" in row
