"""This repository runs the package's reference devicetree suite (hilt/suites/test_devicetree.py) unchanged."""

from hilt.suites.test_devicetree import *  # noqa: F403
