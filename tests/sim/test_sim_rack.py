"""The simulated rack end to end: real sushy-emulator BMCs, real sshd nodes in namespaces, real images.

Driven only through what the engine uses (Redfish with the rig's CA and credentials, SSH with the pinned
host key), plus the fault API. Rack tests (tests/sim/conftest.py): they need root and the rack lock.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import paramiko
import pytest
import requests

from hilt.sim import state
from hilt.sim.control import SimControl
from hilt.sim.lifecycle import SimError, sim_down, sim_status, sim_up
from hilt.util.processes import pid_alive

SIM, SUBNET = "tsim", 252


def _secret(ref: str) -> str:
    assert ref.startswith("file:"), "credentials must be file: references, never inline"
    path = Path(ref[5:])
    assert path.stat().st_mode & 0o077 == 0, f"{path} must be 0600"
    return path.read_text().strip()


class Redfish:
    def __init__(self, node: dict, timeout: float = 10):
        bmc = node["bmc"]
        self.url, self.sid, self.timeout = bmc["url"], bmc["system_id"], timeout
        self.s = requests.Session()
        self.s.trust_env = False
        self.s.verify = bmc["verify"]
        self.s.auth = (_secret(bmc["username"]), _secret(bmc["password"]))

    def system(self) -> dict:
        return self.s.get(f"{self.url}/redfish/v1/Systems/{self.sid}", timeout=self.timeout).json()

    def boot_from_media(self, image_url: str) -> None:
        vm = f"{self.url}/redfish/v1/Systems/{self.sid}/VirtualMedia/Cd"
        r = self.s.post(f"{vm}/Actions/VirtualMedia.InsertMedia", json={"Image": image_url}, timeout=30)
        assert r.status_code in (200, 204), r.text
        r = self.s.patch(f"{self.url}/redfish/v1/Systems/{self.sid}", timeout=self.timeout,
                         json={"Boot": {"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}})
        assert r.status_code in (200, 204), r.text

    def reset(self, kind: str) -> None:
        r = self.s.post(f"{self.url}/redfish/v1/Systems/{self.sid}/Actions/ComputerSystem.Reset",
                        json={"ResetType": kind}, timeout=self.timeout)
        assert r.status_code in (200, 202, 204), r.text


def ssh(node: dict, timeout: float = 20) -> paramiko.SSHClient:
    """Connect with the pinned host key (an unknown key is rejected), retrying until the node is up."""
    cfg = node["ssh"]
    kind, blob = cfg["host_key"].split()[:2]
    deadline = time.monotonic() + timeout
    while True:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.get_host_keys().add(cfg["host"], kind, paramiko.Ed25519Key(data=base64.b64decode(blob)))
        try:
            client.connect(cfg["host"], port=cfg["port"], username=cfg["user"], key_filename=cfg["key"],
                           timeout=2, banner_timeout=5, allow_agent=False, look_for_keys=False)
            return client
        except paramiko.BadHostKeyException:
            client.close()
            raise
        except (OSError, paramiko.SSHException):
            client.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run(client: paramiko.SSHClient, command: str) -> str:
    _, out, err = client.exec_command(command, timeout=20)
    text = out.read().decode()
    assert out.channel.recv_exit_status() == 0, err.read().decode()
    return text


def ssh_refused(node: dict) -> bool:
    try:
        with socket.create_connection((node["ssh"]["host"], 22), timeout=2):
            return False
    except OSError:
        return True


def wait_until(predicate, timeout: float = 15, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    rig = sim_up(SIM, nodes=2, subnet=SUBNET, images=["good", "broken"], boot_delay_s=0.5, power_delay_s=0.5,
                 state_dir=tmp_path_factory.mktemp("sim"), owner_pid=os.getpid())
    yield rig
    sim_down(SIM)


def test_generated_rig_pins_keys_and_keeps_secrets_in_files(rig):
    assert sorted(rig["nodes"]) == ["node1", "node2"]
    node = rig["nodes"]["node1"]
    assert node["ssh"]["host"] == f"10.200.{SUBNET}.2" and node["ssh"]["host_key"].startswith("ssh-ed25519 ")
    assert node["bmc"]["url"].startswith("https://127.0.0.1:")
    assert node["bmc"]["url"] != rig["nodes"]["node2"]["bmc"]["url"]  # one BMC endpoint per node
    _secret(node["bmc"]["password"])
    good = rig["images"]["good"]
    assert good["identity"]["image_id"] == "hilt-sim-good" and len(good["sha256"]) == 64
    assert hashlib_sha256(requests.get(good["url"], timeout=10).content) == good["sha256"]


def hashlib_sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_power_on_with_virtual_media_boots_the_image_and_power_off_takes_it_down(rig):
    node, good = rig["nodes"]["node1"], rig["images"]["good"]
    bmc = Redfish(node)
    assert ssh_refused(node)  # powered off at start
    bmc.boot_from_media(good["url"])
    bmc.reset("On")
    client = ssh(node)
    shown = run(client, "cat /etc/os-release; echo ---; cat /proc/sys/kernel/random/boot_id; echo ---; "
                        "cat /proc/sys/kernel/osrelease; echo ---; cat /sys/module/nvidia/version; echo ---; "
                        "cat /proc/driver/nvidia/version; echo ---; hostname; echo ---; echo $PYTHONPATH")
    os_release, boot_id, kernel, driver, proc_driver, hostname, pythonpath = shown.split("---\n")
    assert 'IMAGE_ID="hilt-sim-good"' in os_release
    assert boot_id.strip() != Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert kernel.strip() == good["identity"]["kernel"] and driver.strip() == good["identity"]["driver"]
    assert good["identity"]["driver"] in proc_driver and hostname.strip() == "node1"
    assert "/opt/hilt-sim/python" in pythonpath
    assert "GPU0" in run(client, "nvidia-smi topo -m")
    assert run(client, "cat /sys/class/nvlink/gpu0-link0/state").strip() == "active"
    assert run(client, "ls /sys/class/net").split() == ["eth0", "lo"]  # the real class entries still there
    assert "tbf" in run(client, "tc qdisc show dev eth0")
    client.close()

    bmc.reset("ForceRestart")  # media still inserted: the same image, a fresh boot id
    assert wait_until(lambda: ssh_refused(node), 10)
    client = ssh(node)
    again = run(client, "cat /proc/sys/kernel/random/boot_id").strip()
    assert again and again != boot_id.strip()
    client.close()

    bmc.reset("ForceOff")
    assert wait_until(lambda: ssh_refused(node), 10), "SSH must refuse once the node is powered off"
    assert bmc.system()["PowerState"] == "Off"


def test_never_boot_and_bmc_unreachable_faults(rig):
    control = SimControl(sim_status(SIM)[SIM]["state_dir"])
    node = rig["nodes"]["node2"]
    bmc = Redfish(node)
    control.set_fault("node2", "never_boot")
    bmc.boot_from_media(rig["images"]["good"]["url"])
    bmc.reset("On")
    assert wait_until(lambda: control.status()["nodes"]["node2"]["power"] == "On", 10)
    time.sleep(2.0)  # well past power delay + boot delay
    assert ssh_refused(node)
    assert not control.status()["nodes"]["node2"]["up"]

    control.set_fault("node2", "bmc_unreachable")
    with pytest.raises(requests.exceptions.ReadTimeout):
        Redfish(node, timeout=1.5).system()
    assert Redfish(rig["nodes"]["node1"]).system()["Id"]  # the other node's BMC still answers
    with pytest.raises(Exception, match="unknown fault"):
        control.set_fault("node2", "meteor_strike")
    control.clear_faults()
    assert Redfish(node).system()["PowerState"] == "On"
    bmc.reset("ForceOff")


def _leftovers(name: str, subnet: int) -> list[str]:
    found = [ns for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
             if ns.startswith(f"hilt-{name}-")]
    if subprocess.run(["ip", "link", "show", f"hiltbr{subnet}"], capture_output=True).returncode == 0:
        found.append(f"bridge hiltbr{subnet}")
    if state.registry_path(name).exists():
        found.append("registry entry")
    return found


def test_crashed_sim_is_cleaned_at_next_start_and_down_leaves_nothing(tmp_path):
    name, subnet = "tstale", 253
    sim_up(name, nodes=1, subnet=subnet, images=["good"], state_dir=tmp_path / "a")
    with pytest.raises(SimError, match="already running"):
        sim_up(name, nodes=1, subnet=subnet, images=["good"], state_dir=tmp_path / "x")
    crashed = state.lookup(name)
    emulator_pids = [int(p) for p in crashed["pids"]]
    os.kill(crashed["daemon_pid"], signal.SIGKILL)  # a crash: nothing gets cleaned up
    assert wait_until(lambda: not pid_alive(crashed["daemon_pid"]), 5)
    assert _leftovers(name, subnet)

    sim_up(name, nodes=1, subnet=subnet, images=["good"], state_dir=tmp_path / "b")
    assert not any(pid_alive(p) for p in emulator_pids), "the crashed sim's processes must be gone"
    fresh = state.lookup(name)
    assert fresh["daemon_pid"] != crashed["daemon_pid"]

    sim_down(name)
    assert not pid_alive(fresh["daemon_pid"])
    assert not any(pid_alive(int(p)) for p in fresh["pids"])
    assert _leftovers(name, subnet) == []
    assert not (tmp_path / "b" / "secrets").exists()


def test_ssh_drop_old_os_lingers_and_host_key_changed(rig):
    control = SimControl(sim_status(SIM)[SIM]["state_dir"])
    node = rig["nodes"]["node1"]
    bmc = Redfish(node)
    bmc.boot_from_media(rig["images"]["good"]["url"])
    bmc.reset("On")
    client = ssh(node)
    old_boot = run(client, "cat /proc/sys/kernel/random/boot_id").strip()
    assert control.set_fault("node1", "ssh_drop")["dropped"] >= 1
    with pytest.raises((OSError, paramiko.SSHException, EOFError)):
        run(client, "true")
    client = ssh(node)  # sshd kept listening
    control.set_fault("node1", "old_os_lingers", seconds=2)
    control.set_fault("node1", "host_key_changed")
    bmc.reset("ForceRestart")
    time.sleep(1.0)  # past the power delay: a real node would be down now
    assert run(ssh(node, timeout=2), "cat /proc/sys/kernel/random/boot_id").strip() == old_boot
    assert wait_until(lambda: ssh_refused(node), 10)
    with pytest.raises(paramiko.BadHostKeyException):  # the pinned key no longer matches
        ssh(node, timeout=10)
    control.clear_faults()
    bmc.reset("ForceOff")
