"""Client of the sim daemon's fault API (HTTP on 127.0.0.1): what tests use to make a node misbehave.

Faults: ``bmc_unreachable`` (the node's BMC accepts and never answers), ``slow_boot`` (seconds=...),
``never_boot``, ``ssh_drop`` (established SSH sessions are killed once; sshd keeps listening),
``old_os_lingers`` (seconds=...: after the next reset/off the old OS keeps answering SSH with its old boot
id), ``host_key_changed`` (the next boot presents a new host key). The first three stay until cleared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from hilt.errors import HiltError


class SimControlError(HiltError):
    """The sim daemon refused or did not answer a control request."""


class SimControl:
    """Talks to the daemon of the sim whose state directory is ``state_dir``."""

    def __init__(self, state_dir: str | Path, timeout_s: float = 10.0):
        self.state_dir = Path(state_dir)
        self.timeout_s = timeout_s
        try:
            self.url = json.loads((self.state_dir / "ready.json").read_text())["control_url"]
        except (OSError, ValueError, KeyError):
            raise SimControlError(f"no running sim in {self.state_dir} (ready.json missing)") from None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        with requests.Session() as s:
            s.trust_env = False  # loopback only: never through a proxy
            try:
                rsp = s.request(method, f"{self.url}{path}", json=body, timeout=self.timeout_s)
            except requests.RequestException as exc:
                raise SimControlError(f"sim daemon at {self.url} did not answer {path}: {exc}") from None
        data = rsp.json() if rsp.content else {}
        if rsp.status_code >= 400:
            raise SimControlError(f"sim daemon refused {path}: {data.get('error', rsp.text)}")
        return data

    def set_fault(self, node: str, fault: str, **params: Any) -> dict[str, Any]:
        return self._call("POST", "/control/fault", {"node": node, "fault": fault, "params": params})

    def clear_faults(self, node: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/control/clear", {"node": node})

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/control/status")
