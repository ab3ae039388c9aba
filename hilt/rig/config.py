"""rigs.yaml: the inventory of rigs, nodes, images and stores, and its schema.

Errors name the file, the line, the field and what would be valid, on one line, because the person
reading them is usually a release engineer staring at a red CI job. Credentials are never written in
the file: only references (``${ENV_VAR}`` or ``file:/path``) that are resolved at use.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from hilt.errors import ConfigError
from hilt.profiles.model import FirmwareSpec
from hilt.rig.credentials import Secret, is_reference, reference
from hilt.rig.store_url import StoreUrlError, parse_url
from hilt.util import safe_yaml
from hilt.util.locations import default_history, default_history_path, default_lease_store_url
from hilt.util.safe_yaml import YamlDocument
from hilt.util.url_password import has_password


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BmcConfig(_Model):
    """How to reach a node's BMC over Redfish."""

    url: str = Field(description="Redfish service URL, e.g. https://10.0.0.11")
    system_id: str | None = Field(None, description="Systems/<id>; None picks the only system")
    username: Secret
    password: Secret
    verify: bool | str = Field(True, description="verify TLS: true, false, or a CA bundle path")
    auth: Literal["auto", "session", "basic"] = "auto"
    vmedia_target: str | None = Field(None, description="boot override target for virtual media (Cd, UsbCd)")

    @field_validator("verify", mode="before")
    @classmethod
    def _verify(cls, v: object) -> bool | str:
        """Only a YAML boolean turns verification off: ``""`` used to do it silently (requests reads an empty
        CA path as false), and ``"false"``, ``0`` or ``null`` are not the explicit ``false`` it takes."""
        if isinstance(v, bool):
            return v
        if isinstance(v, str):
            if not v.strip():
                raise ValueError("an empty CA bundle path: use true (system CAs), a CA bundle file, or an "
                                 "explicit false to turn TLS verification off")
            if v.strip().lower() in ("true", "false", "yes", "no", "on", "off", "0", "1", "none", "null"):
                raise ValueError(f"{v!r} is a string, not a boolean or a CA bundle path: write true or false "
                                 "without quotes, or the path of a CA bundle file")
            return v
        raise ValueError("must be true, false, or a CA bundle path")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http(s) URL like https://10.0.0.11")
        return v.rstrip("/")

    @field_validator("username", mode="before")
    @classmethod
    def _username(cls, v: object) -> Secret:
        if isinstance(v, str) and not is_reference(v):
            return Secret(f"literal:{v}")
        return reference(v, "username")

    @field_validator("password", mode="before")
    @classmethod
    def _password(cls, v: object) -> Secret:
        return reference(v, "password")


class SshConfig(_Model):
    """How to reach a node's OS; host keys are pinned or read from known_hosts, never accepted blindly."""

    host: str
    port: int = Field(22, ge=1, le=65535)
    user: str = "root"
    key: str | None = Field(None, description="path to the private key file")
    host_key: str | None = Field(None, description='pinned public host key, "ssh-ed25519 AAAA..."')
    known_hosts: str | None = Field(None, description="known_hosts file holding the node's key")
    python: str = Field("python3", description="Python interpreter on the node for probes")
    connect_timeout_s: float = Field(10.0, gt=0)

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.:\[\]-]{1,253}", v):
            raise ValueError("must be a host name or an IP address")
        return v

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, v: str | None) -> str | None:
        """A pinned key that cannot be parsed is a config error now, not a binascii.Error at connect time."""
        if v is not None:
            problem = host_key_problem(v)
            if problem:
                raise ValueError(problem)
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", v):
            raise ValueError("must be a POSIX user name (letters, digits, _ . -)")
        return v


_HOST_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")


def host_key_problem(text: str) -> str | None:
    """Why ``TYPE BASE64 [comment]`` is not a public host key hilt can pin, or None when it is one."""
    parts = text.split()
    if len(parts) < 2:
        return "not 'TYPE BASE64' (copy a line of ssh-keyscan HOST, or /etc/ssh/ssh_host_ed25519_key.pub)"
    kind, data = parts[0], parts[1]
    if kind not in _HOST_KEY_TYPES:
        return f"key type {kind[:40]!r} is not one of {', '.join(_HOST_KEY_TYPES)}"
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return f"the {kind} key is not valid base64"
    fields: list[bytes] = []
    at = 0
    while at < len(blob):  # the blob is SSH strings: uint32 length + bytes, nothing left over
        if at + 4 > len(blob):
            return f"the {kind} key data is truncated"
        (length,) = struct.unpack(">I", blob[at:at + 4])
        if at + 4 + length > len(blob):
            return f"the {kind} key data is truncated"
        fields.append(blob[at + 4:at + 4 + length])
        at += 4 + length
    if not fields or fields[0] != kind.encode():
        return f"the key data is not a {kind} key"
    expected = {"ssh-ed25519": 2, "ssh-rsa": 3}.get(kind, 3)
    if len(fields) != expected or (kind == "ssh-ed25519" and len(fields[1]) != 32):
        return f"the {kind} key data is truncated or malformed"
    try:
        import paramiko  # start-up cost (~0.1 s): only a pinned host key needs it, and every `hilt` reads rigs.yaml

        paramiko.PKey.from_type_string(kind, blob)
    except Exception:  # noqa: BLE001 - paramiko raises several types for a malformed key
        return f"the {kind} key data is malformed"
    return None


class NodeConfig(_Model):
    """One server: one BMC, one OS."""

    bmc: BmcConfig
    ssh: SshConfig
    profile: str = Field(description="fabric profile name (hilt/profiles/<name>.yaml)")
    address: str | None = Field(None, description="address other nodes reach it at (default ssh.host)")
    labels: dict[str, str] = Field(default_factory=dict)
    console: str | None = Field(None, description="serial console log: a path on this host")

    @property
    def fabric_address(self) -> str:
        return self.address or self.ssh.host


class ImageIdentity(_Model):
    """What a node must show once the image runs."""

    image_id: str | None = None
    kernel: str | None = None
    driver: str | None = None
    firmware: FirmwareSpec | None = None
    """Firmware versions this build is compatible with (its driver's compatibility matrix): test_trust checks
    them as well as the profile's (docs/trust.md)."""


class ImageConfig(_Model):
    url: str
    sha256: str | None = None
    boot_method: Literal["virtual_media", "http", "pxe", "network", "none"] = Field(
        "virtual_media", description="virtual_media (a virtual CD), http (UEFI HTTP boot from url), pxe "
        "(one-time PXE; the PXE server decides what boots), none; network: old name of http")
    identity: ImageIdentity = Field(default_factory=ImageIdentity)
    boot_timeout_s: float = Field(900.0, gt=0)


class ProviderConfig(_Model):
    """A factory that materialises a rig's nodes before use (a simulated rack, a cloud allocation)."""

    factory: str = Field(description="module:Class implementing start(rig, options, workdir) and stop()")
    options: dict[str, Any] = Field(default_factory=dict)


class KubernetesPublish(_Model):
    """Opt-in hand-off to Kubernetes: after a run whose gate passed, write hilt's NFD feature file on each node;
    remove it from a node the run failed on (hilt.k8s.publish; docs/kubernetes.md)."""

    validity_s: float = Field(86400.0, gt=0, le=366 * 86400,
                              description="how long the published labels hold (NFD's expiry-time): a node not "
                                          "verified again within this time loses them")
    features_dir: str = Field("/etc/kubernetes/node-feature-discovery/features.d",
                              description="NFD's local feature directory on the nodes")
    file: str = Field("hilt", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                      description="the feature file's name there (not a dot-file: NFD skips those)")

    @field_validator("features_dir")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/") or any(c in v for c in "\n\0"):
            raise ValueError(f"{v!r} is not an absolute directory on the nodes")
        return v.rstrip("/") or "/"


class RigConfig(_Model):
    nodes: dict[str, NodeConfig] = Field(default_factory=dict)
    provider: ProviderConfig | None = None
    launcher: str | None = Field(None, description="MPI launcher for multi-node nccl-tests, e.g. mpirun")
    default_image: str | None = Field(None, description="image booted when --image is not given")
    suites: list[str] | None = Field(None, description="suite modules that apply to this rig (default: all)")
    kubernetes: KubernetesPublish | None = Field(None, description="publish verified facts to Kubernetes (NFD)")
    description: str | None = None


class HealthPolicy(_Model):
    bad_after: int = Field(3, ge=1, description="consecutive infrastructure failures before a node is bad")


class Inventory(_Model):
    default_rig: str = "sim"
    lease_store: str = Field(default_factory=default_lease_store_url,
                             description="default: the state directory, out of reach of clean-ups")
    baselines_dir: str = "baselines"
    history: str = Field(default_factory=lambda: str(default_history_path()),
                         description="run history: a SQLite file, or postgresql://[user@]host[:port]/database; "
                                     "default: history.sqlite in the state directory")
    history_password: Secret | None = Field(None, description="the PostgreSQL history's password: ${ENV} or file:")
    health: HealthPolicy = Field(default_factory=HealthPolicy)
    images: dict[str, ImageConfig] = Field(default_factory=dict)
    rigs: dict[str, RigConfig]

    source: str = Field("rigs.yaml", exclude=True)
    _history_note: str | None = PrivateAttr(None)  # set when the default history is still the old location

    @property
    def history_note(self) -> str | None:
        """A message for the user when the history read is the old default location (reports/history.sqlite)."""
        return self._history_note

    @field_validator("lease_store")
    @classmethod
    def _lease_store(cls, v: str) -> str:
        try:
            parse_url(v)
        except StoreUrlError as exc:
            raise ValueError(exc.problem) from None
        return v

    @field_validator("history")
    @classmethod
    def _history(cls, v: str) -> str:
        if re.match(r"^postgres(ql)?://", v) and has_password(v):  # also one holding "/", which urlsplit misses
            raise ValueError("a password is never written in the URL, not even percent-encoded: write "
                             "postgresql://[user@]host[:port]/database and give the password as history_password: "
                             "${ENV_VAR} or file:/path (an @ after the host is written %40)")
        if "://" in v and not re.match(r"^postgres(ql)?://", v):
            raise ValueError("must be a SQLite file path or a postgresql://[user@]host[:port]/database URL")
        return v

    @field_validator("history_password", mode="before")
    @classmethod
    def _history_password(cls, v: object) -> Secret | None:
        return None if v is None else reference(v, "history_password")

    def rig(self, name: str | None) -> RigConfig:
        name = name or self.default_rig
        if name not in self.rigs:
            known = ", ".join(sorted(self.rigs)) or "none"
            raise ConfigError(f"{self.source}: unknown rig {name!r}; known rigs: {known}")
        return self.rigs[name]

    def image(self, name_or_url: str) -> tuple[str, ImageConfig]:
        """An image by name, or an ad-hoc one from a URL (identity unknown: only the boot id is proven)."""
        if name_or_url in self.images:
            return name_or_url, self.images[name_or_url]
        if re.match(r"^(https?|nfs|cifs)://", name_or_url):
            return Path(name_or_url).name, ImageConfig(url=name_or_url)
        known = ", ".join(sorted(self.images)) or "none"
        raise ConfigError(f"{self.source}: unknown image {name_or_url!r}; known images: {known}, or a URL")


# ---------------------------------------------------------------- loading with line numbers


def _describe(error: dict) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "missing required field"
    return error["msg"].removeprefix("Value error, ")


def _format_validation(doc: YamlDocument, exc: ValidationError) -> str:
    source = doc.source
    messages = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        line = doc.line(loc)
        field = ".".join(str(p) for p in loc) or "(top level)"
        allowed = ""
        if error["type"] == "extra_forbidden" and len(loc) > 1:
            allowed = _allowed_fields(loc[:-1])
        messages.append(f"{source}:{line or '?'}: {field}: {_describe(error)}{allowed}")
    return messages[0] if len(messages) == 1 else "\n".join(messages)


def _allowed_fields(parent: tuple) -> str:
    model: type[BaseModel] | None = Inventory
    for part in parent:
        if model is None:
            return ""
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        if field is None:
            # inside a dict: the key is a name (rig, node, image); keep the dict's value model
            continue
        model = _model_of(field.annotation)
    if model is None:
        return ""
    names = [n for n, f in model.model_fields.items() if not f.exclude]
    return f" (valid: {', '.join(names)})"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    args = getattr(annotation, "__args__", ())
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in reversed(args):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def parse_inventory(text: str | bytes, source: str = "rigs.yaml", base_dir: Path | None = None) -> Inventory:
    """Parse rigs.yaml text; relative paths in it are taken relative to ``base_dir``.

    The file goes through hilt.util.safe_yaml: duplicate keys, alias bombs and bytes that are not UTF-8 are
    refused with one line naming the file and the line.
    """
    doc = safe_yaml.load(text, source)
    data = doc.data
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: expected a mapping with a 'rigs' key")
    try:
        inventory = Inventory.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ConfigError(_format_validation(doc, exc)) from None
    if inventory.default_rig not in inventory.rigs:
        line = doc.line(("default_rig",)) or "?"
        known = ", ".join(sorted(inventory.rigs))
        raise ConfigError(f"{source}:{line}: default_rig: unknown rig {inventory.default_rig!r}; known: {known}")
    return _absolutize(inventory, base_dir) if base_dir else inventory


def _absolutize(inv: Inventory, base: Path) -> Inventory:
    """Relative paths in the file are relative to the file, not to wherever the command runs (docs/rigs.md):
    directories and stores, and each node's CA bundle, SSH key, known_hosts, console log and file: credentials.
    ``~`` paths stay as written (expanded at use)."""

    def path(p: str) -> str:
        if not p or Path(p).is_absolute() or "://" in p or p.startswith("~"):
            return p
        return str((base / p).resolve())

    def secret(s: Secret | None) -> Secret | None:
        return Secret("file:" + path(s[5:])) if s is not None and s.startswith("file:") else s

    def node(cfg: NodeConfig) -> NodeConfig:
        bmc, ssh = cfg.bmc, cfg.ssh
        verify = path(bmc.verify) if isinstance(bmc.verify, str) else bmc.verify
        return cfg.model_copy(update={
            "bmc": bmc.model_copy(update={"verify": verify, "username": secret(bmc.username),
                                          "password": secret(bmc.password)}),
            "ssh": ssh.model_copy(update={"key": ssh.key and path(ssh.key),
                                          "known_hosts": ssh.known_hosts and path(ssh.known_hosts)}),
            "console": cfg.console and path(cfg.console),
        })

    store = inv.lease_store
    if store.startswith("sqlite://") and not store.startswith("sqlite:///"):
        store = "sqlite:///" + path(store.removeprefix("sqlite://")).lstrip("/")
    rigs = {name: rig.model_copy(update={"nodes": {n: node(c) for n, c in rig.nodes.items()}})
            for name, rig in inv.rigs.items()}
    history, note = (path(inv.history), None) if "history" in inv.model_fields_set else default_history(base)
    absolute = inv.model_copy(
        update={"baselines_dir": path(inv.baselines_dir), "history": str(history), "lease_store": store,
                "history_password": secret(inv.history_password), "rigs": rigs}
    )
    absolute._history_note = note
    return absolute


def load_inventory(path: str | Path) -> Inventory:
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(safe_yaml.MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read rigs file: {exc.strerror or exc}") from None
    if len(raw) > safe_yaml.MAX_BYTES:
        raise ConfigError(f"{path}: larger than {safe_yaml.MAX_BYTES} bytes; not a rigs file")
    return parse_inventory(raw, source=str(path), base_dir=path.resolve().parent)
