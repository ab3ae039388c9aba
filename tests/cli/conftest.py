"""The `hilt` command as a user types it: typer's runner on the root app (the same entry point as the console
script, errors and exit codes included), on real files and a real sqlite lease store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from hilt.cli import app
from tests.support.markup import MARKUP


@pytest.fixture
def hilt() -> Callable[..., Result]:
    """``hilt(*args, env={...}, columns=200)`` runs the command and returns its result (stdout and stderr)."""
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None, columns: int = 200) -> Result:
        return runner.invoke(app, list(args), env={"COLUMNS": str(columns), **(env or {})})

    return invoke


@pytest.fixture
def rigs_file(tmp_path: Path) -> Path:
    """A static rig whose node name holds markup; its BMC and SSH ports are closed, so it shows unreachable."""
    node = {"bmc": {"url": "http://127.0.0.1:9", "username": "admin", "password": "${HILT_TEST_NO_SUCH_VAR}"},
            "ssh": {"host": "127.0.0.1", "port": 9}, "profile": "sim-4gpu"}
    data = {"default_rig": "lab", "lease_store": f"sqlite://{tmp_path}/leases.sqlite",
            "history": str(tmp_path / "history.sqlite"), "baselines_dir": str(tmp_path / "baselines"),
            "rigs": {"lab": {"nodes": {f"n1{MARKUP}": node}}, "other": {"nodes": {}}}}
    path = tmp_path / "rigs.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
