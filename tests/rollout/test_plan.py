"""Waves from --canary and --waves: who boots the new image when, and who is the control group meanwhile."""

from __future__ import annotations

import re

import pytest

from hilt.errors import ConfigError
from hilt.rollout.plan import plan_waves

NODES = ["node1", "node2", "node3", "node4"]


def test_one_canary_then_the_rest():
    waves = plan_waves(NODES, "1", "100%")
    assert [(w.nodes, w.control) for w in waves] == [
        (("node1",), ("node2", "node3", "node4")),
        (("node2", "node3", "node4"), ()),
    ]
    assert [w.name for w in waves] == ["canary", "wave 2"]


def test_shares_are_cumulative_and_round_up():
    waves = plan_waves(NODES, "25%", "50%,100%")
    assert [w.nodes for w in waves] == [("node1",), ("node2",), ("node3", "node4")]
    assert waves[1].control == ("node3", "node4")
    # 25% of 3 nodes is one node, never none
    assert plan_waves(NODES[:3], "25%")[0].nodes == ("node1",)


def test_a_wave_the_canary_already_covers_is_dropped():
    assert [w.nodes for w in plan_waves(NODES, "2", "50%,100%")] == [("node1", "node2"), ("node3", "node4")]


@pytest.mark.parametrize(("canary", "waves", "message"), [
    ("4", "100%", "leave at least one node on the old image"),
    ("100%", "100%", "leave at least one node"),
    ("0", "100%", "whole number of at least 1"),
    ("1.5", "100%", "whole number"),
    ("x", "100%", "expected a node count (1) or a share of the rig (25%)"),
    ("0%", "100%", "above 0%"),
    ("1", "50%", "end with 100%"),
    ("1", "75%,50%,100%", "must grow"),
    ("1", "", "expected cumulative shares"),
])
def test_bad_options_are_refused_naming_the_option(canary, waves, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as exc:
        plan_waves(NODES, canary, waves)
    assert str(exc.value).startswith(("--canary", "--waves"))


def test_a_single_node_rig_has_no_control_group():
    with pytest.raises(ConfigError, match="at least 2 nodes"):
        plan_waves(["node1"], "1")
