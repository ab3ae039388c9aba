"""The simulated rack that the sim daemon (hilt/sim/daemon.py) owns: assembled, driven by its BMCs, torn down.

``SimDaemon.start`` builds the images, the bridge and the node namespaces, starts sushy-emulator (one system per
node) behind one TCP forwarder per node, serves the images and the fault control (hilt/sim/http_api.py), writes
``ready.json`` (the generated rig) and then turns what the BMC says (power, boot override, virtual media) into
what the nodes do. The engine never talks to this process: only to the BMCs and sshd.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import shutil
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from hilt.sim import netns, state
from hilt.sim.bmc_emulator import start_sushy_emulator
from hilt.sim.forwarder import TcpForwarder
from hilt.sim.http_api import RackServer, serve_api
from hilt.sim.image import STANDARD_IMAGES, Image, build_standard_images, read_image
from hilt.sim.machine import FAULTS, Machine, generate_ssh_key
from hilt.sim.trust_view import SYSTEM_FIRMWARE
from hilt.util.processes import pid_alive

log = logging.getLogger("hilt.sim.daemon")
REQUIRED_TOOLS = ("ip", "tc", "unshare", "ssh-keygen")


class SimStartError(Exception):
    """The sim cannot start here; the message says what to do."""


def find_sshd() -> str:
    for cand in (shutil.which("sshd"), "/usr/sbin/sshd"):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise SimStartError("OpenSSH sshd is not installed: apt-get install -y openssh-server")


def preflight() -> str:
    """Root and the host tools the sim needs; returns the sshd path."""
    if os.geteuid() != 0:
        raise SimStartError("the simulated rack needs root (network and mount namespaces, bridges): "
                            "run as root, e.g. in CI or with sudo")
    missing = [t for t in REQUIRED_TOOLS if not shutil.which(t)]
    if missing:
        raise SimStartError(f"missing host tools {missing}: apt-get install -y iproute2 util-linux openssh-client")
    return find_sshd()


class SimDaemon:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.name: str = args.name
        self.state_dir: Path = args.state_dir.resolve()
        self.subnet: int = args.subnet
        self.stop_event = threading.Event()
        self.machines: dict[str, Machine] = {}
        self.by_system: dict[str, str] = {}  # system id -> node name
        self.images: dict[str, Image] = {}
        self.forwarders: dict[str, TcpForwarder] = {}
        self.emulator: Any = None
        self.http: RackServer | None = None
        self._obs_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self.state: dict[str, Any] = {
            "name": self.name, "state_dir": str(self.state_dir), "daemon_pid": os.getpid(),
            "daemon_start": state.pid_start_time(os.getpid()), "owner_pid": args.owner_pid,
            "temporary_state_dir": bool(args.temporary), "subnet": self.subnet, "bridge": None,
            "namespaces": [], "veths": [], "pids": {}, "started_at": time.time(), "ready": False,
        }

    # ------------------------------------------------------------------ state
    def save(self) -> None:
        with self._state_lock:
            state.write_json(self.state_dir / "state.json", self.state)

    def record_pid(self, pid: int, alive: bool) -> None:
        with self._state_lock:
            if alive:
                self.state["pids"][str(pid)] = state.pid_start_time(pid)
            else:
                self.state["pids"].pop(str(pid), None)
        self.save()

    def register_with_bmc_secrets(self) -> Path:
        """Save and register the rack's state, and write its BMCs' fresh credentials (0600, never in a log): the
        first step of every simulated rack's start. Returns the secrets directory rigs.yaml's references name."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.save()
        state.register(self.name, self.state_dir)
        secrets_dir = self.state_dir / "secrets"
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        user, password = "hilt", secrets.token_urlsafe(18)
        for fname, value in (("bmc-user", user), ("bmc-pass", password)):
            fd = os.open(secrets_dir / fname, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(value + "\n")
        self.bmc_auth = (user, password)
        return secrets_dir

    # ------------------------------------------------------------------ start
    def start(self) -> dict[str, Any]:
        sshd = preflight()
        secrets_dir = self.register_with_bmc_secrets()
        user, password = self.bmc_auth
        keys = self.state_dir / "keys"
        keys.mkdir(mode=0o700, exist_ok=True)
        client_key = keys / "id_ed25519"
        authorized = keys / "authorized_keys"
        specs = node_specs(self.args)
        self._start_http()

        netns.check_subnet_free(self.subnet)
        self.state["bridge"] = netns.bridge_name(self.subnet)
        self.save()
        netns.create_bridge(self.subnet)
        systems = []
        # the trays of one profile form one NVLink domain, in rig order (its IMEX node config)
        domains: dict[str, list[str]] = {}
        for i, (_, profile) in enumerate(specs):
            domains.setdefault(profile, []).append(netns.node_address(self.subnet, i))
        for i, (node, profile) in enumerate(specs):
            address = netns.node_address(self.subnet, i)
            m = Machine(sim=self.name, name=node, index=i, subnet=self.subnet, node_dir=self.state_dir / "nodes" / node,
                        authorized_keys=authorized, boot_delay_s=self.args.boot_delay_s, sshd=sshd,
                        record_pid=self.record_pid, profile=profile, tray_index=domains[profile].index(address),
                        domain=domains[profile])
            system_id = str(uuid.uuid4())
            m.system_uuid = system_id  # before create(): every boot, the first included, shows this identity
            self.machines[node] = m
            self.by_system[system_id] = node
            # the BMC reports the board serial the node's SMBIOS shows (hilt.sim.identity.write_dmi)
            systems.append({"uuid": system_id, "name": node, "power_state": "Off", **SYSTEM_FIRMWARE,
                            "serial_number": f"SIM-{node}",
                            "nics": [{"mac": f"02:00:0a:c8:{self.subnet:02x}:{i + 2:02x}", "ip": m.address}]})
        # recorded before any is made: a start that fails half-way is cleaned up by name (state.cleanup)
        self.state["namespaces"] = [m.ns for m in self.machines.values()]
        self.state["veths"] = [netns.veth_name(self.subnet, i) for i in range(len(specs))]
        self.save()
        netns.add_namespaces(self.state["namespaces"])

        # Side by side: the BMC emulator's start (a process and its TLS key), the images, the client key and each
        # node's network and host key. One after another, start-up grew with the node count (bench/sim_startup.py).
        with ThreadPoolExecutor(max_workers=min(32, len(specs) + 3), thread_name_prefix="sim-start") as pool:
            jobs = [pool.submit(self._start_emulator, systems, user, password),
                    pool.submit(self._load_images, specs),
                    pool.submit(lambda: authorized.write_text(
                        generate_ssh_key(client_key, f"hilt-sim-{self.name}") + "\n"))]
            jobs += [pool.submit(self._create_node, m) for m in self.machines.values()]
            problems = [job.exception() for job in jobs if job.exception() is not None]
        if problems:
            raise problems[0]
        assert self.emulator is not None
        emu = urlparse(self.emulator.url)
        for node in self.machines:
            self.forwarders[node] = TcpForwarder((emu.hostname, emu.port))
        return self.publish_ready(client_key, secrets_dir)

    def _start_emulator(self, systems: list[dict[str, Any]], user: str, password: str) -> None:
        self.emulator = start_sushy_emulator(
            self.state_dir / "bmc", systems, username=user, password=password,
            power_delay_s=self.args.power_delay_s, external_notification_url=f"{self.base_url}/notify")
        self.record_pid(self.emulator.pid, True)

    def _load_images(self, specs: list[tuple[str, str]]) -> None:
        names = [n for n in (self.args.images.split(",") if self.args.images else STANDARD_IMAGES) if n]
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hilt" / "sim-images"
        profiles = list(dict.fromkeys(profile for _, profile in specs))
        for path in build_standard_images(self.state_dir / "images", cache_dir=cache, names=names,
                                          profile=profiles[0], profiles=profiles):
            self.images[path.name] = read_image(path)

    def _create_node(self, m: Machine) -> None:
        netns.create_node_namespace(self.name, m.name, self.subnet, m.index, added=True)
        m.create()

    def _start_http(self) -> None:
        """The images, the BMC notifications and the fault control (hilt/sim/http_api.py)."""
        self.http = serve_api(self)
        self.base_url = self.http.base_url

    def publish_ready(self, client_key: Path, secrets_dir: Path) -> dict[str, Any]:
        """Start watching the BMCs and hand the starter its rig (ready.json): the sim is up."""
        threading.Thread(target=self._poll_loop, daemon=True, name="bmc-poll").start()
        rig = self.rig_dict(client_key, secrets_dir)
        self.state.update(ready=True, control_url=self.base_url)
        self.save()
        state.write_json(self.state_dir / "ready.json", {"rig": rig, "control_url": self.base_url})
        return rig

    def rig_dict(self, client_key: Path, secrets_dir: Path) -> dict[str, Any]:
        nodes = {}
        for system_id, node in self.by_system.items():
            m = self.machines[node]
            nodes[node] = {
                "bmc": {"url": f"https://127.0.0.1:{self.forwarders[node].port}", "system_id": system_id,
                        "username": f"file:{secrets_dir / 'bmc-user'}", "password": f"file:{secrets_dir / 'bmc-pass'}",
                        "verify": str(self.emulator.ca_path)},
                "ssh": {"host": m.address, "port": 22, "user": "root", "key": str(client_key),
                        "host_key": m.host_key, "python": sys.executable},
                "profile": m.profile or self.args.profile, "address": m.address, "labels": {"sim": "true"},
                "console": str(m.node_dir / "console.log"),
            }
        images = {}
        for fname, img in self.images.items():
            images[img.name] = {"url": f"{self.base_url}/images/{fname}", "sha256": img.sha256,
                                "boot_method": "virtual_media", "identity": img.identity(),
                                "boot_timeout_s": self.args.boot_timeout_s}
        return {"nodes": nodes, "images": images}

    # ------------------------------------------------------------------ faults
    def set_fault(self, node: str, fault: str, params: dict[str, Any]) -> dict[str, Any]:
        if node not in self.machines:
            raise ValueError(f"unknown node {node!r}; nodes: {sorted(self.machines)}")
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; faults: {sorted(FAULTS)}")
        m = self.machines[node]
        if fault == "ssh_drop":
            return {"dropped": m.drop_ssh_sessions()}
        with m._lock:
            m.faults[fault] = dict(params)
        if fault == "bmc_unreachable":
            self.forwarders[node].set_blackhole(True)
        m.event(f"fault set: {fault} {params or ''}")
        return {"node": node, "faults": dict(m.faults)}

    def clear_faults(self, node: str | None) -> dict[str, Any]:
        targets = [node] if node else list(self.machines)
        for name in targets:
            if name not in self.machines:
                raise ValueError(f"unknown node {name!r}; nodes: {sorted(self.machines)}")
            m = self.machines[name]
            with m._lock:
                m.faults.clear()
            self.forwarders[name].set_blackhole(False)
        return {"cleared": targets}

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "state_dir": str(self.state_dir), "pid": os.getpid(),
                "owner_pid": self.state["owner_pid"], "images": sorted(i.name for i in self.images.values()),
                "nodes": {n: m.status() for n, m in self.machines.items()}}

    # ------------------------------------------------------------------ BMC -> machine
    def on_notification(self, system: dict[str, Any]) -> None:
        node = self.by_system.get(system.get("uuid", "")) or (
            system.get("name") if system.get("name") in self.machines else None)
        if node is None:
            return
        pending = system.get("pending_power") or {}
        if pending.get("apply_time"):
            delay = max(0.0, float(pending["apply_time"]) - time.time()) + 0.05
            threading.Timer(delay, self._poll_one, args=(node,)).start()
        self.observe(node, system.get("power_state", "Off"), "Restart" in str(pending.get("power_state", "")))

    def observe(self, node: str, power: str, reset_pending: bool = False) -> None:
        m = self.machines[node]
        with self._obs_lock:
            if reset_pending and (m.power == "On" or m.up):
                m.power_off(reset=True)
            elif power == "Off" and m.power == "On":
                m.power_off()
            elif power == "On" and m.power == "Off":
                m.power = "On"  # claimed here so that a second report does not boot twice
                threading.Thread(target=self._power_on, args=(node,), daemon=True).start()

    def _power_on(self, node: str) -> None:
        m = self.machines[node]
        try:
            image, source = self.media_image(node)
        except Exception as exc:  # unreadable media: the server finds nothing to boot from it
            m.event(f"virtual media cannot be read: {exc}")
            image, source = None, "disk"
        m.power_on(image, source)

    def _session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False
        s.auth = self.bmc_auth
        s.verify = str(self.emulator.ca_path)
        return s

    def media_image(self, node: str) -> tuple[Image | None, str]:
        """The image in the node's virtual CD when the boot override says Cd, the image at ``HttpBootUri`` when
        it says UefiHttp (UEFI HTTP boot), else (None, "disk")."""
        system_id = next(s for s, n in self.by_system.items() if n == node)
        with self._session() as s:
            system = s.get(f"{self.emulator.url}/redfish/v1/Systems/{system_id}", timeout=10).json()
            boot = system.get("Boot") or {}
            if boot.get("BootSourceOverrideTarget") == "UefiHttp" and boot.get("HttpBootUri"):
                return self.fetch_image(node, boot["HttpBootUri"]), f"UEFI HTTP {boot['HttpBootUri']}"
            if boot.get("BootSourceOverrideTarget") != "Cd":
                return None, "disk"
            # Redfish puts virtual media under the system (newer) or under its manager (older BMCs)
            collections = [(system.get("VirtualMedia") or {}).get("@odata.id")]
            collections += [f"{m['@odata.id']}/VirtualMedia" for m in (system.get("Links") or {}).get("ManagedBy", [])]
            url = None
            for coll_path in filter(None, collections):
                rsp = s.get(f"{self.emulator.url}{coll_path}", timeout=10)
                if rsp.status_code != 200:
                    continue
                for member in rsp.json().get("Members", []):
                    vm = s.get(f"{self.emulator.url}{member['@odata.id']}", timeout=10).json()
                    cd = any("CD" in t or "DVD" in t for t in vm.get("MediaTypes", [])) or vm.get("Id") == "Cd"
                    if cd and vm.get("Inserted") and vm.get("Image"):
                        url = vm["Image"]
                        break
                if url:
                    break
        if not url:
            return None, "disk"
        return self.fetch_image(node, url), f"virtual media {url}"

    def fetch_image(self, node: str, url: str) -> Image:
        """Download the media like a BMC would, and check it against the sha256 the sim published."""
        dest = self.machines[node].node_dir / "media.tar"
        with requests.get(url, stream=True, timeout=30) as rsp:
            rsp.raise_for_status()
            with dest.open("wb") as fh:
                for chunk in rsp.iter_content(1 << 20):
                    fh.write(chunk)
        published = self.images.get(Path(urlparse(url).path).name) if url.startswith(self.base_url) else None
        return read_image(dest, expected_sha256=published.sha256 if published else None)

    def _poll_one(self, node: str) -> None:
        system_id = next(s for s, n in self.by_system.items() if n == node)
        try:
            with self._session() as s:
                power = s.get(f"{self.emulator.url}/redfish/v1/Systems/{system_id}", timeout=10).json()["PowerState"]
        except (requests.RequestException, KeyError, ValueError) as exc:
            log.debug("poll %s: %s", node, exc)
            return
        self.observe(node, power)

    def _poll_loop(self) -> None:
        """A slow safety net: notifications carry the news, this applies power transitions nobody read."""
        while not self.stop_event.wait(2.0):
            for node in list(self.machines):
                self._poll_one(node)

    # ------------------------------------------------------------------ stop
    def watch_owner(self) -> None:
        owner = self.args.owner_pid
        while not self.stop_event.wait(0.5):
            if owner and not pid_alive(owner):
                log.warning("owner pid %s died: tearing the sim down", owner)
                self.stop_event.set()

    def shutdown(self, keep_state_dir: bool = False) -> None:
        for m in self.machines.values():
            with contextlib.suppress(Exception):
                m.shutdown()
        for f in self.forwarders.values():
            f.close()
        if self.emulator is not None:
            with contextlib.suppress(Exception):
                self.emulator.stop()
        if self.http is not None:
            self.http.shutdown()
        self.state["daemon_pid"] = None  # cleanup() must not kill us
        for removed in state.cleanup(self.state, remove_state_dir=False if keep_state_dir else None):
            log.info("removed %s", removed)


def node_specs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(name, profile) of every node: the explicit list, or node1..N of the rig-wide profile."""
    if args.node_specs:
        return [(str(n), str(p)) for n, p in json.loads(args.node_specs)]
    return [(f"node{i + 1}", args.profile) for i in range(args.nodes)]
