"""Node Feature Discovery's local feature files: the file hilt writes on a node, and the reading NFD does.

NFD's ``local`` source reads every file in ``/etc/kubernetes/node-feature-discovery/features.d/``: one
``name[=value]`` per line (the value defaults to ``true``), ``#`` comments, the directive
``# +expiry-time=<RFC3339>`` applying to the lines after it (an expired line is dropped), files over 64 kB
ignored whole, dot-files ignored (so a writer writes ``.name`` and renames it: NFD never reads half a file).
nfd-master then publishes an unprefixed name under ``feature.node.kubernetes.io/`` and refuses names in a
``kubernetes.io`` or ``k8s.io`` namespace other than ``feature.node.`` and ``profile.node.``. The writer here
refuses whatever the reader would drop, so what hilt writes is what the cluster gets; GPU Feature Discovery's
file (``gfd``, ``nvidia.com/...`` names) is read with the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from hilt.errors import ConfigError
from hilt.k8s.labels import key_problem, value_problem

FEATURES_DIR = "/etc/kubernetes/node-feature-discovery/features.d"
MAX_FILE_BYTES = 65536  # NFD ignores a larger file (source/local: MaxFeatureFileSize)
DEFAULT_NAMESPACE = "feature.node.kubernetes.io"
_ALLOWED_K8S = ("feature.node.kubernetes.io", "profile.node.kubernetes.io")
_DIRECTIVE = "# +"


def qualified(name: str) -> str:
    """The label key nfd-master publishes for a feature name (unprefixed -> the default namespace)."""
    return name if "/" in name else f"{DEFAULT_NAMESPACE}/{name}"


def namespace_problem(name: str) -> str | None:
    """Why nfd-master would refuse this feature name's namespace, or None."""
    namespace = qualified(name).rpartition("/")[0]
    for denied in ("kubernetes.io", "k8s.io"):
        if namespace == denied or namespace.endswith("." + denied):
            if any(namespace == ok or namespace.endswith("." + ok) for ok in _ALLOWED_K8S):
                return None
            return (f"feature {name!r}: namespace {namespace!r} is refused by NFD (only feature.node.kubernetes.io "
                    f"and profile.node.kubernetes.io of the {denied} namespaces are allowed)")
    return None


def rfc3339(moment: datetime) -> str:
    """``2026-03-02T02:00:00Z``: what Go's time.RFC3339 parses."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_feature_file(labels: dict[str, str], expires: datetime, comment: str = "") -> str:
    """The feature file for ``labels`` (name -> value), every line valid until ``expires``.

    ConfigError for a name or value the cluster would refuse (label syntax, NFD's namespace rules), for a line
    that NFD would read differently (a name with ``=`` or ``#``), and for a file over NFD's 64 kB limit.
    """
    if expires.tzinfo is None:
        raise ConfigError("the feature file's expiry needs a time zone (NFD reads RFC 3339 times)")
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines.append(f"{_DIRECTIVE}expiry-time={rfc3339(expires)}")
    for name, value in labels.items():
        problem = key_problem(qualified(name)) or namespace_problem(name) or value_problem(value)
        if problem:
            raise ConfigError(problem)
        lines.append(f"{name}={value}")
    text = "\n".join(lines) + "\n"
    size = len(text.encode())
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"feature file of {len(labels)} labels is {size} bytes: NFD ignores files over "
                          f"{MAX_FILE_BYTES} bytes")
    return text


@dataclass
class FeatureFile:
    """What NFD takes from one file: the labels (qualified keys), the expiry that applied last, and what it dropped."""

    labels: dict[str, str] = field(default_factory=dict)
    expires: datetime | None = None
    dropped: list[str] = field(default_factory=list)  # why lines or the whole file were not taken


def read_feature_file(name: str, data: bytes, now: datetime) -> FeatureFile:
    """Read one feature file's bytes as NFD's local source and nfd-master would, at time ``now``."""
    result = FeatureFile()
    if name.startswith("."):
        result.dropped.append(f"{name}: a dot-file (NFD skips it)")
        return result
    if len(data) > MAX_FILE_BYTES:
        result.dropped.append(f"{name}: {len(data)} bytes, over NFD's {MAX_FILE_BYTES} byte limit (whole file ignored)")
        return result
    expiry: datetime | None = None
    for number, raw in enumerate(data.decode(errors="replace").split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith(_DIRECTIVE + "expiry-time="):
                try:
                    expiry = datetime.fromisoformat(line.split("=", 1)[1].strip().replace("Z", "+00:00"))
                except ValueError:
                    result.dropped.append(f"{name}:{number}: expiry-time is not an RFC 3339 time")
                    continue
                if expiry.tzinfo is None:
                    result.dropped.append(f"{name}:{number}: expiry-time has no time zone")
                    expiry = None
                result.expires = expiry
            continue
        if expiry is not None and expiry < now:
            result.dropped.append(f"{name}:{number}: expired at {rfc3339(expiry)}")
            continue
        feature, _, value = line.partition("=")
        value = value if "=" in line else "true"
        key = qualified(feature)
        problem = key_problem(key) or namespace_problem(feature) or value_problem(value)
        if problem:
            result.dropped.append(f"{name}:{number}: {problem}")
            continue
        result.labels[key] = value
    return result
