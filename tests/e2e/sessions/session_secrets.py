"""Run by tests/e2e/test_no_secrets_in_reports.py as a whole session (not collected on its own): while the
simulated rack is up, note every secret it holds, so that the test can look for them under reports/ after
the session ended. The notes go to $HILT_TEST_SECRETS_OUT, outside reports/."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hilt.rig.config import load_inventory
from hilt.rig.credentials import resolve_username
from hilt.sim import state


def _private_key_bodies(directory: Path) -> list[str]:
    """The middle line of every PEM/OpenSSH private key under ``directory``: text only that key contains."""
    bodies = []
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            text = path.read_text(errors="replace")
            if "PRIVATE KEY-----" in text:
                lines = [line for line in text.splitlines() if line and "-----" not in line]
                bodies.append(lines[len(lines) // 2])
    return bodies


def test_note_the_racks_secrets(hilt_session):
    inventory = load_inventory(hilt_session.rigs_file)
    nodes = inventory.rig(hilt_session.rig).nodes
    bmc = next(iter(nodes.values())).bmc
    name = inventory.rig(hilt_session.rig).provider.options.get("name", hilt_session.rig)
    state_dir = Path(state.lookup(name)["state_dir"])
    htpasswd = (state_dir / "bmc" / "htpasswd").read_text().split(":", 1)[1].strip()
    notes = {"state_dir": str(state_dir), "password": bmc.password.resolve(),
             "username": resolve_username(bmc.username), "htpasswd_hash": htpasswd,
             "key_bodies": _private_key_bodies(state_dir)}
    Path(os.environ["HILT_TEST_SECRETS_OUT"]).write_text(json.dumps(notes))
    assert notes["key_bodies"], f"no private key found under {state_dir}"
