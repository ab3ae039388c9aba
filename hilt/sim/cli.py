"""`hilt sim`: start, stop and look at the simulated racks, and build their images (docs/sim.md).

The root command (hilt/cli.py) mounts ``sim_app`` as `hilt sim`; nothing else in hilt imports this package's
code: the engine reaches a sim only through rigs.yaml's provider, Redfish and SSH.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import typer
import yaml

from hilt.errors import HiltError, LeaseWaitCancelled
from hilt.exitcodes import ExitCode, exit_code_for
from hilt.lease.hold import LeaseHold
from hilt.rig.config import Inventory
from hilt.rig.provider import materialize
from hilt.sim.lease_target import lease_target
from hilt.util.cli_output import error_line, fail, print_json, say
from hilt.util.cli_output import stdout as console
from hilt.util.stop_signals import StopSignals

# The sim's own modules are imported inside the commands (start-up cost): its lifecycle, control client and image
# builders bring requests and cryptography, which every other `hilt` command would load for nothing.

sim_app = typer.Typer(help="The simulated rack (needs root for network namespaces).", no_args_is_help=True)
sim_image_app = typer.Typer(help="Simulated rack images.", no_args_is_help=True)


@sim_app.command("up")
def sim_up(
    name: str = typer.Option("sim", help="sim name (several can run, on different subnets)"),
    nodes: int = typer.Option(4, help="number of nodes"),
    boot_delay: float = typer.Option(1.0, help="seconds a node takes to boot"),
    subnet: int = typer.Option(0, help="10.200.SUBNET.0/24 for the nodes"),
    profile: str = typer.Option("sim-4gpu", help="fabric profile of the nodes"),
    image: str = typer.Option(None, help="boot this image (good, regressed, ...) on every node, holding their lease "
                              "meanwhile; returns once each is verified (exit 6 naming a node that is not, or the "
                              "holder of a node another holder has): what `hilt rollout` starts from"),
    rig_name: str = typer.Option(None, "--rig", help="with --image: the rig whose lease the boot takes (default: "
                                 "the rig of rigs.yaml that uses this sim, else the sim's name)"),
    rigs_file: Path = typer.Option(None, envvar="HILT_RIGS", help="with --image: the inventory naming the rig and "
                                   "its lease store (default: ./rigs.yaml where there is one, or $HILT_RIGS)"),
    lease_store: str = typer.Option(None, "--lease-store", envvar="HILT_LEASE_STORE",
                                    help="with --image: lease store URL (default: $HILT_LEASE_STORE, else rigs.yaml)"),
    lease_wait: float = typer.Option(0.0, help="with --image: seconds to queue for nodes another holder has"),
) -> None:
    """Start a simulated rack in the background and print its nodes and images (rigs.yaml shape)."""
    from hilt.sim import lifecycle  # start-up cost (see the top)
    from hilt.sim.image import STANDARD_IMAGES

    if image is not None and image not in STANDARD_IMAGES:
        fail(f"--image {image}: not an image of the sim; its images: {', '.join(STANDARD_IMAGES)}")
    if not image:
        _start(lifecycle, name, nodes, boot_delay, subnet, profile)
        return
    hold = _open_hold(name, nodes, rig_name, rigs_file, lease_wait, lease_store)
    # a CI job's timeout (SIGTERM) or Ctrl-C while the nodes are leased (or waited for): the lease is given back
    # before the exit, not left to its TTL (before, SIGTERM killed the command holding it); the sim stays up, as
    # after a failed boot
    phase, code = "waiting for", None
    with StopSignals(interrupt=True) as stop:
        try:
            try:
                _lease_nodes(hold, name, nodes, image, lease_wait, stop.event)
                phase = "starting the sim, holding"
                rig = _start(lifecycle, name, nodes, boot_delay, subnet, profile)
                phase = f"booting {image}, holding"
                code = _boot_sim(name, rig, image)
            finally:
                hold.release()
        except (KeyboardInterrupt, LeaseWaitCancelled):
            if stop.name is None:
                raise
    if stop.name is not None and code is None:  # a signal once the boot had ended changes nothing it said
        after = "nothing leased, the sim not started" if phase == "waiting for" else \
            "the lease given back; the sim stays up (`hilt sim down` stops it)"
        fail(f"sim {name}: stopped by {stop.name} while {phase} the lease on rig {hold.rig}'s nodes: {image} not "
             f"verified, {after}", ExitCode.INCONCLUSIVE)
    raise typer.Exit(code)


def _start(lifecycle: Any, name: str, nodes: int, boot_delay: float, subnet: int, profile: str) -> dict[str, Any]:
    """Start the rack and print its rig (rigs.yaml shape); a rack that does not start is one error line."""
    try:
        rig = lifecycle.sim_up(name, nodes=nodes, boot_delay_s=boot_delay, subnet=subnet, profile=profile)
    except HiltError as exc:
        fail(exc)
    console.print(yaml.safe_dump(rig, sort_keys=False), markup=False, soft_wrap=True)
    return rig


def _open_hold(name: str, nodes: int, rig: str | None, rigs_file: Path | None, wait_s: float,
               store_url: str | None) -> LeaseHold:
    """The hold on the nodes the boot will reboot, in the lease a run on the rig that uses this sim takes
    (hilt.sim.lease_target): a run or rollout holding one keeps `sim up --image` off it, and the reverse."""
    if not 1 <= nodes <= 250:
        fail(f"--nodes {nodes}: must be between 1 and 250")
    if not (math.isfinite(wait_s) and wait_s >= 0):
        fail(f"--lease-wait {wait_s}: must be 0 or more seconds, and finite")
    try:
        target = lease_target(name, rigs_file=rigs_file, rig=rig, store_url=store_url)
        return LeaseHold.open(target.store_url, target.rig, f"sim-up-{name}")
    except HiltError as exc:
        fail(exc)


def _lease_nodes(hold: LeaseHold, name: str, nodes: int, image: str, wait_s: float, cancel: threading.Event) -> None:
    """Lease the nodes before the rack starts; refused (exit 6, naming the holder) while another holder has one.
    A wait that ``cancel`` calls off raises LeaseWaitCancelled."""
    names = [f"node{i + 1}" for i in range(nodes)]  # the sim's node names (hilt.sim.provider.node_specs)
    try:
        hold.acquire(names, f"hilt sim up --image {image} (sim {name})", ttl_s=60.0, wait_s=wait_s,
                     on_wait=lambda waiting: say(f"sim {name}: waiting for nodes: {waiting.describe()}"),
                     cancel=cancel)
    except LeaseWaitCancelled:
        raise
    except HiltError as exc:
        hold.release()
        fail(f"sim {name}: not started, {image} not booted: no lease on rig {hold.rig}'s nodes ({hold.store.where}): "
             f"{exc}", exit_code_for(exc))


def _boot_sim(name: str, rig: dict[str, Any], image: str) -> int:
    """Boot ``image`` on every node of the sim just started and verify each (as a run's boot does); the sim stays
    up whatever happens, so a failed node can be looked at (`hilt sim status`) before `hilt sim down`."""
    from hilt.provision.boot import provision  # start-up cost (see the top): paramiko, the Redfish client

    inventory = materialize(Inventory.model_validate({"default_rig": name, "rigs": {name: {}}}), name, rig)
    image_name, image_cfg = inventory.image(image)
    results = provision(inventory.rig(name).nodes, image_name, image_cfg, boot=True,
                        progress=lambda node, what: say(f"{node}: {what}"))
    failed = [f"node {node}: {result.error}" for node, result in sorted(results.items()) if not result.ok]
    if failed:
        error_line(f"sim {name}: {image_name} not verified on " + "; ".join(failed))
        return int(ExitCode.INCONCLUSIVE)
    say(f"sim {name}: {image_name} runs on {', '.join(sorted(results))}, each verified")
    return int(ExitCode.PASS)


@sim_app.command("down")
def sim_down(name: str = typer.Option("sim", help="sim name")) -> None:
    """Stop a simulated rack and remove everything it made (also a stale one of a crashed run)."""
    from hilt.sim import lifecycle  # start-up cost (see the top)

    removed = lifecycle.sim_down(name)
    say(f"sim {name}: down" + (f" (removed {len(removed)} items)" if removed else " (was not running)"))


@sim_app.command("status")
def sim_status(name: str = typer.Option(None, help="only this sim")) -> None:
    """Which simulated racks run (or were left stale), and what their nodes show (JSON)."""
    from hilt.sim import lifecycle  # start-up cost (see the top)

    print_json(lifecycle.sim_status(name))


@sim_image_app.command("build")
def sim_image_build(
    name: str = typer.Argument(..., help="image name: good, regressed, broken, links-down, ... or a new one"),
    out: Path = typer.Option(Path("reports/images"), help="output directory"),
    arch: str = typer.Option("x86_64", help="x86_64 (namespace rack) or riscv64 (QEMU rack: kernel + initramfs)"),
    authorized_key: Path = typer.Option(Path("~/.ssh/id_ed25519.pub"), help="riscv64: root's authorized key"),
) -> None:
    """Build a simulated rack image: a tarball with a manifest and a root overlay (or a kernel and initramfs)."""
    from hilt.sim.image import STANDARD_IMAGES, build_image  # start-up cost (see the top)
    from hilt.sim.riscv.image import build_images

    try:
        if arch == "riscv64":
            key = authorized_key.expanduser().read_text().strip()
            images, host_key = build_images(out, authorized_key=key, names=[name])
            say(f"{images[0].path}\nhost key to pin: {host_key}")
            return
        if arch != "x86_64":
            fail(f"--arch {arch}: valid architectures are x86_64 and riscv64")
        say(build_image(name, out, **STANDARD_IMAGES.get(name, {})))
    except OSError as exc:
        fail(f"{authorized_key}: {exc.strerror}")
    except HiltError as exc:
        fail(exc)


sim_app.add_typer(sim_image_app, name="image")
