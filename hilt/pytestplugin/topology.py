"""The node's topology matrix, found and expected, carried from test_topology to the run record.

Why a test property: under xdist the test runs in a worker and only its report reaches the controller's
run collector, as metrics do (``hilt.metric``). The collector puts it on the node's record, where the
report's fabric picture reads it (docs/reports.md).
"""

from __future__ import annotations

import pytest

from hilt.record.run_record import TopologyRecord

TOPOLOGY_PROPERTY = "hilt.topology"


def record_topology(request: pytest.FixtureRequest, record: TopologyRecord) -> None:
    """Attach ``record`` to the running test's report (the node is the test's ``hilt.node`` property)."""
    request.node.user_properties.append((TOPOLOGY_PROPERTY, record.model_dump_json()))


def topology_from_report(props: dict[str, str]) -> TopologyRecord | None:
    """The record a test attached, or None (a test that records none, or a value that is not one)."""
    text = props.get(TOPOLOGY_PROPERTY)
    if not text:
        return None
    try:
        return TopologyRecord.model_validate_json(text)
    except ValueError:
        return None
