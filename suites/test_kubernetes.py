"""This repository runs the package's reference kubelet suite (hilt/suites/test_kubernetes.py) unchanged."""

from hilt.suites.test_kubernetes import *  # noqa: F403
