"""The synthesized nights (tests/support/nights.py) as fixtures of the report tests."""

from tests.support.nights import fleet, nightly  # noqa: F401  (fixtures)
