"""Exception types shared by every layer.

Infrastructure problems (a BMC that does not answer, a node that never comes up, a lost lease) are kept
apart from product problems (the image booted but its links are down): the first make tests *error* and the
gate *inconclusive*, the second make tests *fail*. Messages name the node, the step and the cause, never a
secret.
"""

from __future__ import annotations


class HiltError(Exception):
    """Base of every error hilt raises on purpose."""


class ConfigError(HiltError):
    """Bad user input: rigs.yaml, a profile, a baseline file or a command-line option."""


class ParseError(HiltError):
    """Text that is not the output of the tool its parser expects.

    Carries the 1-based line number and the offending line so that a person can find it at once.
    """

    def __init__(self, message: str, line_no: int | None = None, line: str | None = None):
        self.line_no = line_no
        self.line = line
        where = f" at line {line_no}" if line_no is not None else ""
        shown = f": {line!r}" if line is not None else ""
        super().__init__(f"{message}{where}{shown}")


class InfrastructureError(HiltError):
    """The rig, not the image, failed: tests error and the gate becomes inconclusive."""


class BmcError(InfrastructureError):
    """A Redfish BMC refused or failed a step."""


class NodeError(InfrastructureError):
    """A node could not be reached, booted or commanded over SSH."""


class LeaseError(InfrastructureError):
    """The lease store refused or failed a request."""


class LeaseLost(LeaseError):
    """Our lease expired or was broken: stop touching the nodes at once."""


class LeaseWaitCancelled(LeaseError):
    """A wait for busy nodes was called off by its caller (a run stopped by a signal): the waiter left the queue
    and holds nothing."""


class GateUndecided(HiltError):
    """The gate could not judge a metric (no baseline, or still inconclusive): the test errors, the run is
    inconclusive, and nobody mistakes it for a pass or a regression."""
