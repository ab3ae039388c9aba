"""The run's provenance in JUnit: run id, rig, image and each node's identity as ``<testsuite>`` properties.

``record_testsuite_property`` is pytest's public way, but it records nothing under xdist (pytest issue 7767) and
hilt's runs use ``-n``; so the properties are added to the file pytest wrote (a public format), and the file is
replaced whole (hilt.util.atomic_file): a CI job never reads a half-rewritten junit.xml.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from hilt.record.run_record import RunRecord
from hilt.util.atomic_file import write_atomic

_NODE_FIELDS = ("image_id", "kernel", "driver", "bios_version", "bmc_firmware", "boot_s")


def junit_properties(record: RunRecord) -> list[tuple[str, str]]:
    """``hilt.run_id``, ``hilt.rig``, ``hilt.image`` and ``hilt.node.<name>.<field>`` for every known field."""
    props = [("hilt.run_id", record.run_id), ("hilt.rig", record.rig), ("hilt.image", record.image or "")]
    for node in record.nodes:
        for field in _NODE_FIELDS:
            value = getattr(node, field)
            if value is not None:
                props.append((f"hilt.node.{node.name}.{field}", str(value)))
    return props


def add_junit_properties(xmlpath: Path | str, props: list[tuple[str, str]]) -> bool:
    """Set ``props`` on the first ``<testsuite>`` of ``xmlpath``; False when there is no such file or suite.

    A property of the same name is replaced, not repeated: a run's end can write its outputs twice (once more
    after a crash), and a CI parser reading the first of two values would read a stale one."""
    path = Path(xmlpath)
    if not props or not path.exists():
        return False
    tree = ElementTree.parse(path)
    root = tree.getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return False
    properties = suite.find("properties")
    if properties is None:
        properties = ElementTree.Element("properties")
        suite.insert(0, properties)
    names = {name for name, _ in props}
    for stale in [p for p in properties.findall("property") if p.get("name") in names]:
        properties.remove(stale)
    for name, value in props:
        ElementTree.SubElement(properties, "property", name=name, value=value)
    write_atomic(path, ElementTree.tostring(root, encoding="utf-8", xml_declaration=True))
    return True


def is_whole(xmlpath: Path | str) -> bool:
    """True when ``xmlpath`` parses as XML: pytest writes junit.xml in place, and a full disk leaves it cut."""
    try:
        ElementTree.parse(xmlpath)
    except (OSError, ElementTree.ParseError):
        return False
    return True
