"""Run by tests/e2e/test_parallel_nodes.py as a whole session (not collected on its own): each test keeps its
node (or, lease-wide, every node) busy for a moment, so the run's Allure timestamps show what ran together."""

from __future__ import annotations


def test_probe_a(node):
    node.run(["sleep", "1.5"])


def test_probe_b(node):
    node.run(["sleep", "1.5"])


def test_across_the_lease(lease_nodes):
    for node in lease_nodes:
        node.run(["true"])
