"""A simulated rack started in-process through its rig provider (own name and subnet per caller, so test modules
can run side by side under xdist), and the inventory materialised from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from hilt.rig.config import ImageConfig, Inventory, NodeConfig, parse_inventory
from hilt.rig.provider import materialize
from hilt.sim.control import SimControl
from hilt.sim.provider import SimProvider


@dataclass
class Sim:
    inventory: Inventory
    control: SimControl
    workdir: Path

    @property
    def nodes(self) -> dict[str, NodeConfig]:
        return dict(self.inventory.rig("sim").nodes)

    def image(self, name: str = "good", **changes: object) -> tuple[str, ImageConfig]:
        image_name, image = self.inventory.image(name)
        return image_name, image.model_copy(update=changes) if changes else image

    def some(self, *names: str) -> dict[str, NodeConfig]:
        return {n: self.nodes[n] for n in names}


def start_sim(request: pytest.FixtureRequest, workdir: Path, *, name: str, subnet: int, nodes: int,
              **options: object) -> Sim:
    """Start a sim through the rig provider; stopped (namespaces, processes) by the request's finalizer."""
    provider = SimProvider()
    request.addfinalizer(provider.stop)
    opts = {"nodes": nodes, "subnet": subnet, "name": name, "boot_delay_s": 1.0, "power_delay_s": 0.5,
            "images": ["good"], **options}
    provided = provider.start("sim", opts, workdir)
    inventory = materialize(parse_inventory("default_rig: sim\nrigs:\n  sim: {}\n"), "sim", provided)
    return Sim(inventory, SimControl(provider.state_dir), workdir)
