"""Root conftest of the reference suites: the fixtures they compose from the engine."""

pytest_plugins = ["fixtures.rig", "fixtures.measure"]
