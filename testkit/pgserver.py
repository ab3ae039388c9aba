"""A real PostgreSQL server for tests: Debian's ``postgresql`` binaries, a cluster made by ``initdb`` in a
temporary directory, listening only on a unix socket in that directory, stopped by its PID at the end.

Password authentication (scram-sha-256) is on, so the store's credential reference is really exercised.
``initdb`` refuses to run as root: as root the cluster belongs to ``nobody`` (``runuser``), otherwise to
the current user.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

SUPERUSER = "hilt"
PASSWORD_ENV = "HILT_TEST_PG_PASSWORD"


def pg_bin_dir() -> Path | None:
    """The newest installed server's bin directory (``/usr/lib/postgresql/<major>/bin``), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PgServer:
    def __init__(self) -> None:
        bindir = pg_bin_dir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                               "(apt-get install postgresql; scripts/setup.sh does)")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="hilt-pg-", dir="/tmp"))  # short: a socket path is <108 bytes
        self.data = self.root / "data"
        self.password = secrets.token_urlsafe(16)
        self.pid: int | None = None
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "nobody", "--"]
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
        self.root.chmod(0o700 if not self._as else 0o711)

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120, cwd=self.root)

    def start(self) -> PgServer:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as:
            nobody = pwd.getpwnam("nobody")
            os.chown(pwfile, nobody.pw_uid, nobody.pw_gid)
        pwfile.chmod(0o600)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}",
                  "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        opts = f"-c listen_addresses='' -c unix_socket_directories={self.root} -c fsync=off -c max_connections=60"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")
        self.pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.root}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), password=self.password, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT to the postmaster), then the directory goes."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGINT)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    os.kill(self.pid, 0)
                    time.sleep(0.05)
                os.kill(self.pid, signal.SIGQUIT)
            except ProcessLookupError:
                pass
            self.pid = None
        shutil.rmtree(self.root, ignore_errors=True)
