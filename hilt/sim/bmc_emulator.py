"""Start and stop sushy-emulator BMCs for the simulated rack and for tests.

Each emulator is a real Redfish service: HTTPS with a per-session self-signed certificate (SAN 127.0.0.1),
HTTP basic auth from an htpasswd file, bound to 127.0.0.1, state in a fresh directory. Configuration goes
through a config file because sushy ignores its environment variables for these settings.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests


@dataclass
class EmulatorProcess:
    url: str
    ca_path: Path
    pid: int
    system_ids: list[str]
    log_path: Path
    _proc: subprocess.Popen = field(repr=False)

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; reaps the process."""
        if self._proc.poll() is not None:
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self._proc.wait(timeout_s)

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def self_signed_cert(cert_path: Path, key_path: Path) -> None:
    """Write a self-signed certificate (its own CA, for 127.0.0.1 and localhost, valid two days) and its key as
    PEM: the emulated BMC's HTTPS, which a client verifies by passing the certificate as its CA bundle."""
    from cryptography import x509  # the sim extra: the controller imports hilt.sim without it
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hilt-sim-bmc")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)


def _htpasswd(path: Path, username: str, password: str) -> None:
    import bcrypt  # sushy's auth_basic depends on it, so it is installed with sushy-tools

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"{username}:{hashed}\n")
    path.chmod(0o600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sushy_emulator(state_dir: Path, systems: list[dict[str, Any]], *, username: str, password: str,
                         port: int = 0, power_delay_s: float = 1.0,
                         external_notification_url: str | None = None,
                         vmedia_devices: dict[str, dict[str, Any]] | None = None,
                         ready_timeout_s: float = 30.0) -> EmulatorProcess:
    """Start sushy-emulator (fake driver) serving ``systems``; returns once its service root answers.

    ``vmedia_devices`` (id -> ``{"Name", "MediaTypes"}``, in the order the collection lists them) replaces
    sushy's default virtual-media slots (``Cd``, ``Floppy``): a BMC with two CD slots, for instance."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    if any(state_dir.iterdir()):
        raise ValueError(f"state_dir {state_dir} must be empty (a fresh emulator state)")
    cert, key, auth = state_dir / "cert.pem", state_dir / "key.pem", state_dir / "htpasswd"
    self_signed_cert(cert, key)
    _htpasswd(auth, username, password)
    port = port or _free_port()
    fake = [{"external_notifier": bool(external_notification_url), **s} for s in systems]
    config = {
        "SUSHY_EMULATOR_LISTEN_IP": "127.0.0.1",
        "SUSHY_EMULATOR_LISTEN_PORT": port,
        "SUSHY_EMULATOR_SSL_CERT": str(cert),
        "SUSHY_EMULATOR_SSL_KEY": str(key),
        "SUSHY_EMULATOR_AUTH_FILE": str(auth),
        "SUSHY_EMULATOR_FAKE_DRIVER": True,
        "SUSHY_EMULATOR_FAKE_SYSTEMS": fake,
        "SUSHY_EMULATOR_STATE_DIR": str(state_dir / "state"),
    }
    if external_notification_url:
        config["EXTERNAL_NOTIFICATION_URL"] = external_notification_url
    if vmedia_devices is not None:
        config["SUSHY_EMULATOR_VMEDIA_DEVICES"] = vmedia_devices
    conf_path = state_dir / "emulator.conf"
    conf_path.write_text("".join(f"{k} = {v!r}\n" for k, v in config.items()))
    log_path = state_dir / "emulator.log"
    env = {**os.environ, "SUSHY_FAST_POWER_DELAY_S": str(power_delay_s), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hilt.sim.sushy_fast", "--config", str(conf_path)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    emu = EmulatorProcess(f"https://127.0.0.1:{port}", cert, proc.pid, [], log_path, proc)
    try:
        _wait_ready(emu, proc, username, password, ready_timeout_s)
    except BaseException:
        emu.stop()
        raise
    return emu


def _wait_ready(emu: EmulatorProcess, proc: subprocess.Popen, username: str, password: str,
                timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with requests.Session() as s:
        s.trust_env = False
        s.verify = str(emu.ca_path)
        while True:
            if proc.poll() is not None:
                tail = emu.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"sushy-emulator exited with {proc.returncode}:\n{tail}")
            try:
                if s.get(f"{emu.url}/redfish/v1/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"sushy-emulator at {emu.url} not ready after {timeout_s:.0f}s "
                                   f"(log: {emu.log_path})")
            time.sleep(0.1)
        members = s.get(f"{emu.url}/redfish/v1/Systems", auth=(username, password), timeout=5).json()
        emu.system_ids = [m["@odata.id"].rstrip("/").rsplit("/", 1)[-1] for m in members.get("Members", [])]


def systems_json(systems: list[dict[str, Any]]) -> str:
    return json.dumps(systems)
