"""Nodes: the protocol suites, probes and fabric readers ask for, and its SSH implementation."""
