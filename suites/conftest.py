"""This repository's suites run against a rig: ask the hilt plugin for a rig session."""

import pytest

from hilt.pytestplugin import want_rig


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    want_rig(config)
