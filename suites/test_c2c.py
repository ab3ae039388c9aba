"""This repository runs the package's reference c2c suite (hilt/suites/test_c2c.py) unchanged."""

from hilt.suites.test_c2c import *  # noqa: F403
