"""This repository runs the package's reference topology suite (hilt/suites/test_topology.py) unchanged."""

from hilt.suites.test_topology import *  # noqa: F403
