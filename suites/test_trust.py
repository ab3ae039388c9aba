"""This repository runs the package's reference trust suite (hilt/suites/test_trust.py) unchanged."""

from hilt.suites.test_trust import *  # noqa: F403
