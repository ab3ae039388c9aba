"""A throwaway single-member etcd on 127.0.0.1, for tests, benchmarks and demos of the etcd store.

It binds free ports on 127.0.0.1 only, keeps its data in a temporary directory, uses fast election settings
(10 ms heartbeat, 100 ms election: leases expire on time and short TTLs are allowed), and is stopped by its PID.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from hilt.errors import ConfigError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalEtcd:
    """``with LocalEtcd() as etcd: open_store(etcd.url)``."""

    def __init__(self, binary: str | None = None, startup_timeout_s: float = 20.0):
        found = binary or shutil.which("etcd")
        if found is None:
            raise ConfigError("etcd is not installed (Debian: apt-get install etcd-server)")
        self.binary = found
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.data_dir: str | None = None
        self.client_port = 0

    @property
    def url(self) -> str:
        return f"etcd://127.0.0.1:{self.client_port}"

    def start(self) -> LocalEtcd:
        for _ in range(3):  # a port taken between probing and binding: try other ports
            self.data_dir = tempfile.mkdtemp(prefix="hilt-etcd-")
            self.client_port, peer_port = _free_port(), _free_port()
            client, peer = f"http://127.0.0.1:{self.client_port}", f"http://127.0.0.1:{peer_port}"
            log = open(Path(self.data_dir) / "etcd.log", "wb")  # noqa: SIM115 - lives as long as the server
            self.proc = subprocess.Popen(
                [self.binary, "--name", "hilt-test", "--data-dir", str(Path(self.data_dir) / "data"),
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"hilt-test={peer}", "--heartbeat-interval", "10",
                 "--election-timeout", "100", "--logger", "zap", "--log-level", "error"],
                stdout=log, stderr=subprocess.STDOUT)
            log.close()
            if self._wait_healthy(client):
                return self
            self.stop()
        raise RuntimeError("local etcd did not become healthy; see its log in the temp dir")

    def _wait_healthy(self, client: str) -> bool:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                if requests.get(f"{client}/health", timeout=1).json().get("health") == "true":
                    return True
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # by PID: the Popen we started
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> LocalEtcd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
