"""This repository runs the package's reference ddp suite (hilt/suites/test_ddp.py) unchanged."""

from hilt.suites.test_ddp import *  # noqa: F403
