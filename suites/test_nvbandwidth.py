"""This repository runs the package's reference nvbandwidth suite (hilt/suites/test_nvbandwidth.py) unchanged."""

from hilt.suites.test_nvbandwidth import *  # noqa: F403
