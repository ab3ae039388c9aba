"""This repository runs the package's reference nvlink suite (hilt/suites/test_nvlink.py) unchanged."""

from hilt.suites.test_nvlink import *  # noqa: F403
