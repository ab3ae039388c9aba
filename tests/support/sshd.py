"""A real OpenSSH server on 127.0.0.1 for tests of the SSH layer, stopped by PID. It runs as whoever runs the
tests and lets in that user (``Sshd.user``) with the client key: root is not needed (an sshd not started by root
lets in only its own user)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().split(" ", 2)[0:2] and " ".join(
        path.with_suffix(".pub").read_text().split()[:2])


@dataclass
class Sshd:
    port: int
    pid: int
    host_key: str
    client_key: Path
    dir: Path
    proc: subprocess.Popen
    user: str

    def session_pids(self) -> list[int]:
        """PIDs of the per-connection sshd processes (children of the listener)."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def stop(self) -> None:
        for pid in self.session_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_sshd(directory: Path, host_key_file: Path | None = None) -> Sshd:
    directory.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(exist_ok=True)
    host_key_file = host_key_file or directory / "host_ed25519"
    host_key = keygen(host_key_file) if not host_key_file.exists() else " ".join(
        host_key_file.with_suffix(".pub").read_text().split()[:2])
    client_key = directory / "client_ed25519"
    if not client_key.exists():
        keygen(client_key)
    (directory / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {host_key_file}\n"
        f"AuthorizedKeysFile {directory / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        f"PidFile {directory / 'sshd.pid'}\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=open(directory / "sshd.log", "ab"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(4) == b"SSH-":
                    break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError(f"sshd did not start: {(directory / 'sshd.log').read_text()}")
    return Sshd(port=port, pid=proc.pid, host_key=host_key, client_key=client_key, dir=directory, proc=proc,
                user=getpass.getuser())
