"""This repository runs the package's reference boot suite (hilt/suites/test_boot.py) unchanged."""

from hilt.suites.test_boot import *  # noqa: F403
