"""The coherent fabric a node showed (C2C links, its NVLink domain, IMEX), carried from the suites to the run record.

Why test properties, as for the topology matrix (hilt.pytestplugin.topology): under xdist a test runs in a worker
and only its report reaches the controller's run collector, which puts each record on its node's entry, where the
report's fabric picture reads it (docs/reports.md). test_c2c records ``hilt.c2c`` and test_fabric_state
``hilt.domain`` for their node; the lease-wide test_imex_domain records ``hilt.imex``, one view per node.
"""

from __future__ import annotations

import json

import pytest

from hilt.record.run_record import C2cRecord, DomainRecord, ImexRecord, NodeRecord

C2C_PROPERTY = "hilt.c2c"
DOMAIN_PROPERTY = "hilt.domain"
IMEX_PROPERTY = "hilt.imex"


def record_c2c(request: pytest.FixtureRequest, record: C2cRecord) -> None:
    request.node.user_properties.append((C2C_PROPERTY, record.model_dump_json()))


def record_domain(request: pytest.FixtureRequest, record: DomainRecord) -> None:
    request.node.user_properties.append((DOMAIN_PROPERTY, record.model_dump_json()))


def record_imex(request: pytest.FixtureRequest, views: dict[str, ImexRecord]) -> None:
    """IMEX as each node of the lease saw it (a lease-wide test has no node of its own)."""
    request.node.user_properties.append((IMEX_PROPERTY, json.dumps({n: v.model_dump() for n, v in views.items()})))


def apply_to_nodes(props: dict[str, str], node: str | None, nodes: list[NodeRecord]) -> None:
    """Put what a test report carries onto the run record's nodes; a value that is not a record is ignored (a
    report of an older hilt, or a hand-made property), as the topology's is."""
    by_name = {n.name: n for n in nodes}
    target = by_name.get(node) if node is not None else None
    c2c = _parse(C2cRecord, props.get(C2C_PROPERTY))
    if c2c is not None and target is not None:
        target.c2c = c2c
    domain = _parse(DomainRecord, props.get(DOMAIN_PROPERTY))
    if domain is not None and target is not None:
        imex = target.domain.imex if target.domain is not None else None
        target.domain = domain.model_copy(update={"imex": domain.imex or imex})
    text = props.get(IMEX_PROPERTY)
    try:
        views = json.loads(text) if text else {}
    except ValueError:
        views = {}
    for name, raw in views.items() if isinstance(views, dict) else ():
        record = by_name.get(name)
        view = _parse(ImexRecord, json.dumps(raw))
        if record is None or view is None:
            continue
        record.domain = (record.domain or DomainRecord()).model_copy(update={"imex": view})


def _parse(model, text: str | None):  # noqa: ANN001, ANN202 - a pydantic model class and its instance
    if not text:
        return None
    try:
        return model.model_validate_json(text)
    except ValueError:
        return None
