"""What a node ran before: an image of rigs.yaml named by the identity a node shows, or the history's last
passed run on that node (``--rollback-to previous``, or a node whose running image rigs.yaml does not name)."""

from __future__ import annotations

import logging

from hilt.errors import HiltError
from hilt.history.open import open_history
from hilt.rig.config import Inventory

log = logging.getLogger(__name__)


def image_name_of(inventory: Inventory, image_id: str | None) -> str | None:
    """The rigs.yaml image whose identity has ``image_id`` (None: none, or several do and the name is unsure)."""
    if not image_id:
        return None
    names = [name for name, image in inventory.images.items() if image.identity.image_id == image_id]
    return names[0] if len(names) == 1 else None


def last_passed_images(inventory: Inventory, rig: str) -> dict[str, str]:
    """node -> the image it ran in the newest run of ``rig`` whose gate passed (and that rigs.yaml still names)."""
    try:
        runs = open_history(inventory.history, inventory.history_password).runs(rig=rig)
    except HiltError as exc:
        log.warning("history %s unreadable: %s", inventory.history, exc)
        return {}
    found: dict[str, str] = {}
    for run in sorted(runs, key=lambda r: r.started_at, reverse=True):
        if run.gate is None or run.gate.outcome != "pass":
            continue
        for node in run.nodes:
            name = image_name_of(inventory, node.image_id)
            if node.booted and name and node.name not in found:
                found[node.name] = name
    return found
