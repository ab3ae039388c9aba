"""This repository runs the package's reference coherent-memory suite (hilt/suites/test_coherent_memory.py)
unchanged."""

from hilt.suites.test_coherent_memory import *  # noqa: F403
