"""Each test's outcome night by night: passing, flaky (fails now and then), broken (fails every night since one).

Why the distinction matters at 8 am: a flaky test is a ticket for whoever owns the test or the fabric under it,
and re-running the night proves nothing; a broken test started failing with something that changed that night
(an image, a driver), and the night it broke is where to look. The last night alone cannot tell them apart.

Flakiness is judged among the runs of one image: a test that fails on every night that booted a regressed
candidate and passes on every other night is not flaky, it follows the image (``image-bound`` while the last
night passed; ``failing``/``broken`` while it fails, with the image change its failures started with).

A test is identified by rig, its identity (``TestRecord.identity``: the module that defines it and its name,
the same however the suites were invoked) and the node it ran on; a night's image is what that node booted
(its image id), else the run's image. Skipped outcomes and nights the test did not run are neither passes nor
failures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

from hilt.history.series import parse_time
from hilt.record.run_record import RunRecord
from hilt.report.changes import run_anchor

OutcomeState = Literal["broken", "failing", "flaky", "image-bound", "passing", "skipped"]
#: A failure streak this long, up to the latest night, is "broken"; shorter, and not flaky, "failing".
BROKEN_AFTER = 3
STATE_ORDER: dict[str, int] = {"broken": 0, "failing": 1, "flaky": 2, "image-bound": 3, "passing": 4, "skipped": 5}
#: The states a reader acts on: listed first, never folded away.
NEEDS_A_LOOK = ("broken", "failing", "flaky", "image-bound")
STRIP_RUNS = 60  # nights drawn in a test's strip; older ones stay in the counts
_FAILED = ("failed", "error")


@dataclass(frozen=True)
class OutcomeHistory:
    """One test on one node of one rig, across the rig's runs (oldest first)."""

    rig: str
    test: str  # the test's identity (TestRecord.identity)
    node: str | None
    outcomes: tuple[tuple[str, str], ...]  # (run_id, outcome); outcome "" for a run the test was not in
    state: OutcomeState
    since: str | None  # broken/failing: the first run of the failure streak that reaches the latest run
    failures: int
    ran: int  # runs with a pass or a failure (skips and absences not counted)
    images: tuple[tuple[str, int, int], ...] = ()  # (image, failures, ran) per image, in order of first night
    image_change: tuple[str, str] | None = None  # broken/failing: (before, after) when the streak began with it

    @property
    def change_note(self) -> str:
        """``following the image change A → B`` when the failures began the night the image changed."""
        if not self.image_change:
            return ""
        return f"following the image change {self.image_change[0]} → {self.image_change[1]}"

    def _per_image(self) -> str:
        return "; ".join(f"{image}: {failures} of {ran} failed" for image, failures, ran in self.images)

    @property
    def label(self) -> str:
        """What the report prints next to the state: ``fails 5 of 30 nights``, ``since rack-a-night-25``."""
        if self.state in ("broken", "failing"):
            if self.image_change:
                return f"every night since {self.since}, {self.change_note} ({self._per_image()})"
            return f"every night since {self.since} ({self.failures} of {self.ran} failed)"
        if self.state == "flaky":
            return f"fails now and then: {self.failures} of {self.ran} nights"
        if self.state == "image-bound":
            failed = "; ".join(f"{i} ({f} of {n} nights)" for i, f, n in self.images if f)
            clean = "; ".join(f"{i} ({n} nights)" for i, f, n in self.images if not f)
            return f"failed only on {failed}" + (f", never on {clean}" if clean else "")
        if self.state == "skipped":
            return "skipped every night"
        return f"passed {self.ran} of {self.ran} nights"


def classify(outcomes: Sequence[str], broken_after: int = BROKEN_AFTER,
             images: Sequence[str | None] | None = None) -> tuple[OutcomeState, int | None]:
    """The state of one test's outcomes (oldest first) and, when failing now, where its streak starts.

    ``images`` (one per outcome) is what each night booted: a failure followed by a pass is flakiness only among
    nights of the same image. Without it every night counts as the same image."""
    images = list(images) if images is not None else [None] * len(outcomes)
    judged = [(i, o in _FAILED) for i, o in enumerate(outcomes) if o in ("passed", *_FAILED)]
    if not judged:
        return "skipped", None
    if not any(failed for _, failed in judged):
        return "passing", None
    streak = 0
    for _, failed in reversed(judged):
        if not failed:
            break
        streak += 1
    start = judged[len(judged) - streak][0] if streak else None
    if streak >= broken_after:
        return "broken", start
    failed_on: set[str | None] = set()  # images with a failure so far
    flaky = False
    for i, failed in judged:
        if failed:
            failed_on.add(images[i])
        elif images[i] in failed_on:
            flaky = True  # a pass after a failure, on the same image
    if flaky:
        return "flaky", None
    if streak:
        return "failing", start
    return "image-bound", None


def _image_change(judged_images: Sequence[tuple[int, str | None]], start: int) -> tuple[str, str] | None:
    """(before, after) when the night at ``start`` booted another image than the judged night before it."""
    before = [image for i, image in judged_images if i < start]
    after = next(image for i, image in judged_images if i == start)
    if before and before[-1] is not None and after is not None and before[-1] != after:
        return before[-1], after
    return None


def _night_image(record: RunRecord, node: str | None) -> str | None:
    """What the test's node booted that night (its image id), else the run's image."""
    if node is not None:
        for n in record.nodes:
            if n.name == node and n.image_id:
                return n.image_id
    return record.image


def outcome_histories(runs: Sequence[RunRecord], broken_after: int = BROKEN_AFTER) -> list[OutcomeHistory]:
    """Every test's history, most in need of action first: broken, failing, flaky (most failures first),
    passing; then by rig, node and test id."""
    by_rig: dict[str, list[RunRecord]] = {}
    for record in sorted(runs, key=lambda r: (parse_time(r.started_at), r.run_id)):
        by_rig.setdefault(record.rig, []).append(record)
    out: list[OutcomeHistory] = []
    for rig, rig_runs in by_rig.items():
        seen: dict[tuple[str, str | None], dict[int, str]] = {}
        for i, record in enumerate(rig_runs):
            for test in record.tests:
                outcomes = seen.setdefault((test.identity, test.node), {})
                if outcomes.get(i) not in _FAILED:  # a test reported twice in a run (call + teardown): worst
                    outcomes[i] = test.outcome
        for (test_id, node), by_run in seen.items():
            first = min(by_run)
            sequence = [by_run.get(i, "") for i in range(first, len(rig_runs))]
            images = [_night_image(r, node) for r in rig_runs[first:]]
            state, start = classify(sequence, broken_after, images)
            ids = [r.run_id for r in rig_runs[first:]]
            judged = [(i, images[i]) for i, o in enumerate(sequence) if o in ("passed", *_FAILED)]
            per_image: dict[str, list[int]] = {}
            for i, image in judged:
                counts = per_image.setdefault(image or "?", [0, 0])
                counts[0] += sequence[i] in _FAILED
                counts[1] += 1
            out.append(OutcomeHistory(
                rig=rig, test=test_id, node=node, outcomes=tuple(zip(ids, sequence, strict=True)), state=state,
                since=ids[start] if start is not None else None,
                failures=sum(1 for o in sequence if o in _FAILED),
                ran=sum(1 for o in sequence if o in ("passed", *_FAILED)),
                images=tuple((image, f, n) for image, (f, n) in per_image.items()),
                image_change=_image_change(judged, start) if start is not None else None))
    return sorted(out, key=lambda t: (STATE_ORDER[t.state], -t.failures, t.rig, t.node or "", t.test))


def state_notes(histories: Sequence[OutcomeHistory]) -> dict[tuple[str, str, str | None], str]:
    """(rig, test identity, node) -> ``broken since <run>`` / ``flaky, 5 of 30 nights`` / ``failing since <run>``,
    for a failed test in the Tonight table: is last night's red a new break or the usual noise?"""
    out = {}
    for h in histories:
        if h.state in ("broken", "failing"):
            change = f", {h.change_note}" if h.image_change else ""
            out[(h.rig, h.test, h.node)] = f"{h.state} since {h.since}{change}"
        elif h.state == "flaky":
            out[(h.rig, h.test, h.node)] = f"flaky, {h.failures} of {h.ran} nights"
    return out


def _strip(history: OutcomeHistory) -> str:
    """The test's last nights as small squares: green pass, red failure, grey skipped, blank not run."""
    cells = []
    for run_id, outcome in history.outcomes[-STRIP_RUNS:]:
        cls = {"passed": "o-pass", "failed": "o-fail", "error": "o-fail", "skipped": "o-skip"}.get(outcome, "o-none")
        what = outcome or "not run"
        cells.append(f'<a class="o {cls}" href="#{run_anchor(run_id)}" title="{escape(run_id)}: {what}"></a>')
    return f'<span class="strip">{"".join(cells)}</span>'


def _row(h: OutcomeHistory, with_node: bool = True) -> str:
    """One test's row; the night strip only where a night failed (a green strip says no more than its count)."""
    node = f"<td>{escape(h.node or '')}</td>" if with_node else ""
    strip = _strip(h) if h.failures else ""
    return (f'<tr class="test-history" data-test="{escape(h.test)}" data-node="{escape(h.node or "")}" '
            f'data-rig="{escape(h.rig)}" data-state="{h.state}"><td><span class="tstate t-{h.state}">{h.state}</span>'
            f'</td><td>{escape(h.test)}</td>{node}<td>{escape(h.rig)}</td><td>{escape(h.label)}</td>'
            f'<td>{strip}</td></tr>')


def history_table(histories: Sequence[OutcomeHistory], with_node: bool = True) -> str:
    """A table of test histories (the order given); passing and skipped tests folded under one line."""
    head = ("<tr><th>state</th><th>test</th>" + ("<th>node</th>" if with_node else "")
            + "<th>rig</th><th>nights</th><th>night by night (oldest left)</th></tr>")
    news = [h for h in histories if h.state in NEEDS_A_LOOK]
    rest = [h for h in histories if h.state not in NEEDS_A_LOOK]
    out = []
    if news:
        out.append(f'<table class="tests">{head}{"".join(_row(h, with_node) for h in news)}</table>')
    if rest:
        out.append(f'<details class="tests-ok"><summary>{len(rest)} tests passing (or skipped) every night they '
                   f'ran</summary><table class="tests">{head}{"".join(_row(h, with_node) for h in rest)}</table>'
                   f'</details>')
    return "".join(out) or "<p>No tests recorded.</p>"


def tests_section(runs: Sequence[RunRecord], histories: Sequence[OutcomeHistory] | None = None) -> str:
    """The report's "Tests across nights" section."""
    histories = outcome_histories(runs) if histories is None else histories
    counts = {s: sum(1 for h in histories if h.state == s) for s in NEEDS_A_LOOK}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none broken, failing or flaky"
    return (f'<section id="tests"><h2>Tests across nights</h2><p class="muted">{summary}. Broken: fails every '
            f'night from one on ({BROKEN_AFTER} or more). Failing: fails since a recent night, and not flaky. '
            f'Flaky: failures with passes in between, on the same image. Image-bound: each failure stayed with the '
            f'image it came with (no pass after it on that image), and the last night passed.</p>'
            f'{history_table(histories)}</section>')
