"""The plugin's shared state: stash keys, test property names and the session hand-off, with no hooks.

Kept apart from ``hooks`` so that fixtures, the collector and the scheduler read the state without importing the
hook module (which imported them back: a cycle closed only by imports inside functions).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import allure
import pytest

from hilt.record.metrics import Metric

if TYPE_CHECKING:
    from hilt.session.rig_session import SessionState

log = logging.getLogger(__name__)

RIG_WANTED = pytest.StashKey[bool]()
SESSION = pytest.StashKey[object]()
STATE_PATH = pytest.StashKey[str]()
RUN = pytest.StashKey[object]()
STATE_CACHE = pytest.StashKey[object]()
STARTING = pytest.StashKey[threading.Thread]()  # the rig session's start, while it runs beside xdist's workers
STARTED = pytest.StashKey[object]()  # its outcome: the SessionState, or the exception to raise in the controller
WORKERS_SET = pytest.StashKey[bool]()

METRIC_PROPERTY = "hilt.metric"
KIND_PROPERTY = "hilt.kind"
NODE_PROPERTY = "hilt.node"  # set by the `node` fixture: the node a test ran on
PROFILE_PROPERTY = "hilt.profile"  # set with it: that node's profile
TEST_PROPERTY = "hilt.test"  # set at collection: the test's identity across runs (pytestplugin/identity.py)
PROBE_PROPERTY = "hilt.probe"  # this test feeds the gate (so the run is a gate): JSON list of what it measures


def probe_metrics(item: pytest.Item) -> list[str] | None:
    """What a test says it measures, or None when it is no probe.

    A probe is marked ``@pytest.mark.probe("nccl.all_reduce.busbw", "torch.")`` (metric names, or families
    ending in ``.``) or takes ``release_gate`` (then it may say nothing: ``[]``). Coverage explains an entry that
    was not measured from the probes that declare its metric, whatever the tests are called (docs/suites.md).
    """
    marker = item.get_closest_marker("probe")
    if marker is None and "release_gate" not in getattr(item, "fixturenames", ()):
        return None
    return [str(name) for name in marker.args] if marker is not None else []


def mark_probe(item: pytest.Item, gated: bool = False) -> None:
    """Put what a probe measures on its reports (they reach the controller under xdist, the items do not).
    ``gated``: the test has just asked for ``release_gate`` (at run time, perhaps): it is a probe."""
    declared = probe_metrics(item)
    if declared is None and gated:
        declared = []
    if declared is not None and not any(name == PROBE_PROPERTY for name, _ in item.user_properties):
        item.user_properties.append((PROBE_PROPERTY, json.dumps(declared)))


def is_controller(config: pytest.Config) -> bool:
    """The only process, or the xdist controller (a worker has ``workerinput``)."""
    return not hasattr(config, "workerinput")


def want_rig(config: pytest.Config) -> None:
    """Called by the suites' conftest: these tests run against a rig."""
    config.stash[RIG_WANTED] = True


def session_work_dir(config: pytest.Config) -> Path | None:
    """The session's work directory (state file, node locks), in the controller and in every worker."""
    path = config.stash.get(STATE_PATH, "")
    return Path(path).parent if path else None


def session_state(config: pytest.Config) -> SessionState | None:
    """The session's typed hand-off (read once per process, cached in the stash)."""
    # imported here, not at the top: the plugin loads in every pytest process (unit tests, each xdist worker)
    # and the session module brings paramiko and requests (0.3 s); only a rig session needs it
    from hilt.session.rig_session import SessionState

    path = config.stash.get(STATE_PATH, "")
    if not path:
        return None
    cache = config.stash.get(STATE_CACHE, None)
    if cache is None:
        _wait_for_state(Path(path))
        cache = SessionState.load(Path(path))
        config.stash[STATE_CACHE] = cache
    return cache


def _wait_for_state(path: Path) -> None:
    """A worker starts while the controller boots the nodes; the state file appears (written whole, by rename)
    when the boot is done or has failed, never later. A real rack's boot may take many minutes: no deadline,
    but a worker whose controller is gone stops waiting."""
    controller = os.getppid()
    while not path.exists():
        if os.getppid() != controller:
            raise RuntimeError(f"the controlling pytest process ended before writing {path}")
        time.sleep(0.1)


def record_metric_on(item_or_request, metric: Metric, verdict: dict | None = None,
                     baseline: dict | None = None, profile: str | None = None) -> None:
    """Attach a metric to the running test's report (travels to the controller under xdist)."""
    node = getattr(item_or_request, "node", item_or_request)
    payload = metric.to_dict()
    payload["verdict"] = verdict
    payload["baseline"] = baseline
    props = dict(p for p in node.user_properties if isinstance(p, tuple) and len(p) == 2)
    payload["node"] = props.get(NODE_PROPERTY)  # None: a lease-wide test
    payload["profile"] = profile or props.get(PROFILE_PROPERTY)
    node.user_properties.append((METRIC_PROPERTY, json.dumps(payload)))
    _attach_to_allure(metric.key, payload)


def _attach_to_allure(key: str, payload: dict) -> None:
    """Every sample, the baseline and the verdict, next to the test in the Allure report."""
    try:
        allure.attach(json.dumps(payload, indent=2), name=f"metric {key}", attachment_type=allure.attachment_type.JSON)
    except Exception as exc:  # noqa: BLE001 - a report attachment must never fail a measurement
        log.debug("allure attachment of %s skipped: %s", key, exc)
