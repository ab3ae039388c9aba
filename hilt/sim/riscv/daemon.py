"""The RISC-V sim daemon: the namespace sim's daemon, with QEMU guests instead of namespaces.

``python -m hilt.sim.riscv.daemon --state-dir DIR --name sim-riscv --nodes 2`` builds (or reuses) the kernel and
userland, composes the session's images (its client key, one pinned host key), serves them on 127.0.0.1,
starts one sushy-emulator (fake driver, external notifications) with a system per node, writes ``ready.json``
with the generated rig, and turns BMC events into QEMU power transitions. BMC handling (notifications, the
virtual-media lookup, the safety poll, HTTP) is inherited from :class:`hilt.sim.rack.SimDaemon`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from hilt.sim.bmc_emulator import start_sushy_emulator
from hilt.sim.daemon import serve
from hilt.sim.machine import generate_ssh_key
from hilt.sim.rack import SimDaemon
from hilt.sim.riscv.build import default_cache_dir
from hilt.sim.riscv.image import STANDARD_IMAGES, build_images, read_image
from hilt.sim.riscv.machine import QemuMachine

log = logging.getLogger("hilt.sim.riscv.daemon")
PROFILE = "sim-riscv-nvlink"


class RiscvDaemon(SimDaemon):
    def start(self) -> dict[str, Any]:
        secrets_dir = self.register_with_bmc_secrets()
        user, password = self.bmc_auth
        keys = self.state_dir / "keys"
        keys.mkdir(mode=0o700, exist_ok=True)
        client_key = keys / "id_ed25519"
        pub = generate_ssh_key(client_key, f"hilt-sim-{self.name}")

        cache = self.args.cache_dir or default_cache_dir()
        names = [n for n in (self.args.images.split(",") if self.args.images else STANDARD_IMAGES) if n]
        built, self.host_key = build_images(self.state_dir / "images", authorized_key=pub, names=names,
                                            cache_dir=cache)
        self.images = {img.path.name: img for img in built}  # type: ignore[misc]
        self._start_http()

        systems = []
        for i in range(self.args.nodes):
            node = f"node{i + 1}"
            m = QemuMachine(name=node, node_dir=self.state_dir / "nodes" / node, cache_dir=cache / "firmware",
                            record_pid=self.record_pid, memory_mb=self.args.memory_mb,
                            boot_wait_s=self.args.boot_timeout_s, serial=f"SIM-RV-{node}")
            self.machines[node] = m  # type: ignore[assignment]
            system_id = str(uuid.uuid4())
            self.by_system[system_id] = node
            # the board's serial: in its firmware's device tree and in its BMC's System (SerialNumber)
            systems.append({"uuid": system_id, "name": node, "power_state": "Off", "serial_number": m.serial})

        self.emulator = start_sushy_emulator(
            self.state_dir / "bmc", systems, username=user, password=password,
            power_delay_s=self.args.power_delay_s, external_notification_url=f"{self.base_url}/notify")
        self.record_pid(self.emulator.pid, True)
        return self.publish_ready(client_key, secrets_dir)

    def rig_dict(self, client_key: Path, secrets_dir: Path) -> dict[str, Any]:
        nodes = {}
        for system_id, node in self.by_system.items():
            m: QemuMachine = self.machines[node]  # type: ignore[assignment]
            nodes[node] = {
                "bmc": {"url": self.emulator.url, "system_id": system_id,
                        "username": f"file:{secrets_dir / 'bmc-user'}", "password": f"file:{secrets_dir / 'bmc-pass'}",
                        "verify": str(self.emulator.ca_path)},
                "ssh": {"host": "127.0.0.1", "port": m.port, "user": "root", "key": str(client_key),
                        "host_key": self.host_key},
                "profile": PROFILE, "address": "127.0.0.1", "console": str(m.console),
                "labels": {"sim": "true", "arch": "riscv64"},
            }
        images = {}
        for fname, img in self.images.items():
            images[img.name] = {"url": f"{self.base_url}/images/{fname}", "sha256": img.sha256,
                                "boot_method": "virtual_media", "identity": img.identity(),
                                "boot_timeout_s": self.args.boot_timeout_s}
        return {"nodes": nodes, "images": images}

    def fetch_image(self, node: str, url: str):  # noqa: ANN201 - a RiscvImage where the parent has an Image
        """Download the media like a BMC would, check it against what the sim published, unpack it."""
        m: QemuMachine = self.machines[node]  # type: ignore[assignment]
        dest = m.node_dir / "media.tar"
        with requests.get(url, stream=True, timeout=30) as rsp:
            rsp.raise_for_status()
            with dest.open("wb") as fh:
                for chunk in rsp.iter_content(1 << 20):
                    fh.write(chunk)
        published = self.images.get(Path(urlparse(url).path).name) if url.startswith(self.base_url) else None
        image = read_image(dest, m.node_dir / "media", expected_sha256=published.sha256 if published else None)
        unpacked = m.node_dir / f"image-{image.sha256[:16]}"
        if not unpacked.exists():
            (m.node_dir / "media").rename(unpacked)
        m.image_dirs[image.sha256] = unpacked
        return image

    def shutdown(self, keep_state_dir: bool = False) -> None:
        super().shutdown(keep_state_dir)
        # the console logs stay (evidence); the session's images (tens of MB) go
        shutil.rmtree(self.state_dir / "images", ignore_errors=True)
        for node_dir in (self.state_dir / "nodes").glob("*"):
            for bulky in [*node_dir.glob("image-*"), node_dir / "media", node_dir / "media.tar"]:
                if bulky.is_dir():
                    shutil.rmtree(bulky, ignore_errors=True)
                else:
                    bulky.unlink(missing_ok=True)

    def set_fault(self, node: str, fault: str, params: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("the RISC-V sim injects no faults: its failures come from the images it boots")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hilt.sim.riscv.daemon", description=__doc__.splitlines()[0])
    p.add_argument("--state-dir", required=True, type=Path)
    p.add_argument("--name", default="sim-riscv")
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--power-delay-s", type=float, default=1.0)
    p.add_argument("--boot-timeout-s", type=float, default=120.0)
    p.add_argument("--memory-mb", type=int, default=256)
    p.add_argument("--images", default="", help="comma-separated images (default: all)")
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--owner-pid", type=int, default=None, help="tear down when this process dies")
    p.add_argument("--temporary", action="store_true", help="remove the state directory at stop")
    args = p.parse_args(argv)
    args.subnet = None  # no network of ours: QEMU user mode
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return serve(RiscvDaemon(args), args)


if __name__ == "__main__":
    sys.exit(main())
