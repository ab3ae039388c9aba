"""This repository runs the package's reference nccl suite (hilt/suites/test_nccl.py) unchanged."""

from hilt.suites.test_nccl import *  # noqa: F403
