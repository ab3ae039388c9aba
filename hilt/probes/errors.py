"""Why a probe produced no metrics.

A skip (nothing to measure here, e.g. copy bandwidth on a CPU-only node) is not a failure. A probe that
fails or hangs on the candidate image is a product problem (the test fails); a node that cannot be
commanded stays a hilt.errors.NodeError from the node layer, and so does a node whose Python lacks what the
probe scripts import (ProbeDependencyMissing): that is the rig's setup, not the image under test.
"""

from __future__ import annotations

from hilt.errors import HiltError, NodeError


class ProbeSkipped(HiltError):
    """The probe does not apply to this node; the message says why."""


class ProbeFailed(HiltError):
    """The probe ran but produced no usable result; the message names the nodes and the tail of stderr."""


class ProbeTimeout(ProbeFailed):
    """The probe did not finish in time; its processes were killed on every node."""


class StrayProcesses(ProbeFailed):
    """Processes of a probe run survived the kill on a node (a rig left dirty)."""


class ProbeDependencyMissing(NodeError):
    """The node's Python lacks a module the probe scripts import (torch): an infrastructure problem of that node,
    whose message names the extra to install there."""
