"""A replay peer: serves a captured vendor tree (tests/data/redfish-captures) over real HTTP(S) on 127.0.0.1 and
applies writes the way that vendor's firmware does (behaviour.py says which behaviour comes from where).

Faults that fleets hit are switched on per test: ``busy`` (the first N answers of *every* path, login and logout
included, are 503 with ``Retry-After`` as an HTTP date), ``not_ready`` (login answers 500 "not ready" first),
``refuse_slot`` (a slot answers 409 ResourceInUse to InsertMedia), ``drop_field`` (a boot PATCH answers 204 and
silently drops one field).
"""

from __future__ import annotations

import copy
import email.utils
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from testkit.redfish_replay.behaviour import BEHAVIOURS, Behaviour

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "redfish-captures"
TREES = sorted(BEHAVIOURS)
USER, PASSWORD = "admin", "replay-Pw-1"


def load_tree(name: str) -> dict[str, Any]:
    """path (no trailing slash) -> resource, from the tree's one-``index.json``-per-resource layout."""
    root = DATA / name
    tree: dict[str, Any] = {}
    for f in root.rglob("index.json"):
        rel = f.parent.relative_to(root).as_posix()
        path = "/redfish/v1" + ("" if rel == "." else f"/{rel}")
        tree[path] = json.loads(f.read_text())
    return tree


def _err(status: int, message_id: str, message: str) -> tuple:
    return (status, {"error": {"code": message_id, "message": message, "@Message.ExtendedInfo": [
        {"MessageId": message_id, "Message": message, "Severity": "Warning"}]}})


@dataclass
class Faults:
    busy: int = 0
    not_ready: int = 0
    refuse_slot: str | None = None
    drop_field: str | None = None


@dataclass
class ReplayState:
    behaviour: Behaviour
    tree: dict[str, Any]
    faults: Faults
    requests: list[tuple[str, str]] = field(default_factory=list)
    sessions: dict[str, str] = field(default_factory=dict)
    busy_seen: dict[str, int] = field(default_factory=dict)
    resets: list[str] = field(default_factory=list)
    patches: list[tuple[str, Any]] = field(default_factory=list)
    inserts: list[tuple[str, Any]] = field(default_factory=list)
    ejects: list[str] = field(default_factory=list)
    booted: list[tuple[str, str | None]] = field(default_factory=list)
    """(boot target, what the host booted: a slot's image URL or the URI) at each power on / restart."""
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # headers and body in one segment: no Nagle/delayed-ACK 40 ms per answer
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        st = self.server.state
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._send(*_err(400, "Base.1.8.MalformedJSON", "The request body is not JSON"))
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        with st.lock:
            st.requests.append((method, path))
            reply = self._route(st, method, path, body)
        self._send(*reply)

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    # ------------------------------------------------------------------ routing
    def _route(self, st: ReplayState, method: str, path: str, body: Any) -> tuple:
        t = st.tree
        key = f"{method} {path}"
        if st.busy_seen.get(key, 0) < st.faults.busy:
            st.busy_seen[key] = st.busy_seen.get(key, 0) + 1
            when = email.utils.formatdate(time.time() + 1, usegmt=True)  # an HTTP date, one second ahead
            return (*_err(503, "Base.1.8.ServiceTemporarilyUnavailable", "The service is busy"),
                    {"Retry-After": when})
        if path == "/redfish/v1" and method == "GET":
            return (200, t[path])
        sessions = ((t["/redfish/v1"].get("Links") or {}).get("Sessions") or {}).get("@odata.id",
                                                                                     "/redfish/v1/SessionService/Sessions")
        sessions = sessions.rstrip("/")
        if path == sessions and method == "POST":
            if st.faults.not_ready > 0:
                st.faults.not_ready -= 1
                return _err(500, "Base.1.8.InternalError", "BMC is not ready, try again later")
            if (body or {}).get("UserName") != USER or (body or {}).get("Password") != PASSWORD:
                return _err(401, "Base.1.8.NoValidSession", "Invalid username or password")
            sid = str(len(st.sessions) + 1 + len(st.requests))
            token = f"rt-{sid}-{time.monotonic_ns()}"
            st.sessions[token] = sid
            return (201, {"@odata.id": f"{sessions}/{sid}", "Id": sid},
                    {"X-Auth-Token": token, "Location": f"{sessions}/{sid}"})
        if self.headers.get("X-Auth-Token") not in st.sessions:
            return _err(401, "Base.1.8.NoValidSession", "No valid session")
        if path.startswith(sessions + "/") and method == "DELETE":
            sid = path.rsplit("/", 1)[-1]
            for tok, s in list(st.sessions.items()):
                if s == sid:
                    del st.sessions[tok]
            return (204,)
        if path.endswith("/Actions/ComputerSystem.Reset") and method == "POST":
            return self._reset(st, path.rsplit("/Actions", 1)[0], body or {})
        if path.endswith("/Actions/VirtualMedia.InsertMedia") and method == "POST":
            return self._insert(st, path.rsplit("/Actions", 1)[0], body or {})
        if path.endswith("/Actions/VirtualMedia.EjectMedia") and method == "POST":
            return self._eject(st, path.rsplit("/Actions", 1)[0], body)
        res = t.get(path)
        if res is None:
            return _err(404, "Base.1.8.ResourceMissingAtURI", f"The resource at the URI {path} was not found")
        if method == "GET":
            return (200, res)
        if method == "PATCH" and isinstance((body or {}).get("Boot"), dict):
            return self._patch_boot(st, path, res, body["Boot"])
        return _err(405, "Base.1.8.OperationNotAllowed", f"{method} is not allowed on {path}")

    # ------------------------------------------------------------------ writes
    def _system_of(self, st: ReplayState, path: str) -> dict[str, Any] | None:
        return st.tree.get(path)

    def _patch_boot(self, st: ReplayState, path: str, res: dict[str, Any], boot: dict[str, Any]) -> tuple:
        b = st.behaviour
        st.patches.append((path, copy.deepcopy(boot)))
        current = res.setdefault("Boot", {})
        if b.mode_rule == "reject-if-sent" and "BootSourceOverrideMode" in boot:
            return _err(400, "Base.1.8.PropertyNotWritable",
                        "The property BootSourceOverrideMode is a read only property and cannot be assigned a value")
        if "BootSourceOverrideMode" in boot and "BootSourceOverrideMode" not in current:
            return _err(400, "Base.1.8.PropertyUnknown", "The property BootSourceOverrideMode is not in the list "
                        "of valid properties for the resource")
        allowed = current.get("BootSourceOverrideTarget@Redfish.AllowableValues")
        target = boot.get("BootSourceOverrideTarget")
        if allowed and target is not None and target not in allowed:
            return _err(400, "Base.1.8.PropertyValueNotInList", f"The value {target} for the property "
                        "BootSourceOverrideTarget is not in the list of acceptable values")
        if "HttpBootUri" in boot and "HttpBootUri" not in current:
            return _err(400, "Base.1.8.PropertyUnknown", "The property HttpBootUri is not in the list of valid "
                        "properties for the resource")
        applied = {k: v for k, v in boot.items() if k != st.faults.drop_field}
        if b.mode_rule == "reset-unless-sent" and "BootSourceOverrideMode" not in applied and \
                "BootSourceOverrideMode" in current:
            applied["BootSourceOverrideMode"] = b.mode_default
        current.update(applied)
        return (204,)

    def _reset(self, st: ReplayState, system_path: str, body: dict[str, Any]) -> tuple:
        system = st.tree.get(system_path)
        if system is None:
            return _err(404, "Base.1.8.ResourceMissingAtURI", f"No system at {system_path}")
        kind = body.get("ResetType")
        action = (system.get("Actions") or {}).get("#ComputerSystem.Reset") or {}
        allowed = action.get("ResetType@Redfish.AllowableValues")
        info = st.tree.get(str(action.get("@Redfish.ActionInfo", "")).rstrip("/"))
        if info:
            allowed = next((p.get("AllowableValues") for p in info.get("Parameters", [])
                            if p.get("Name") == "ResetType"), allowed)
        if allowed is None:  # ASSUMED for trimmed captures: the usual reset types
            allowed = ["On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "PushPowerButton"]
        if kind not in allowed:
            return _err(400, "Base.1.8.ActionParameterNotSupported",
                        f"The value {kind} for the parameter ResetType is not supported")
        st.resets.append(kind)
        system["PowerState"] = "Off" if kind in ("ForceOff", "GracefulShutdown") else "On"
        if st.behaviour.pending_settings and kind not in ("ForceOff", "GracefulShutdown"):
            settings = ((system.get("@Redfish.Settings") or {}).get("SettingsObject") or {}).get("@odata.id")
            pending = st.tree.get(str(settings).rstrip("/")) or {}
            system.setdefault("Boot", {}).update({k: v for k, v in (pending.get("Boot") or {}).items()
                                                  if k.startswith(("BootSourceOverride", "HttpBootUri"))})
        if system["PowerState"] == "On":
            st.booted.append(self._boots(st, system))
        return (204,)

    def _boots(self, st: ReplayState, system: dict[str, Any]) -> tuple[str, str | None]:
        """What the host boots now: the override target, and the media or URI it finds there."""
        boot = system.get("Boot") or {}
        target = str(boot.get("BootSourceOverrideTarget"))
        if boot.get("BootSourceOverrideEnabled") not in ("Once", "Continuous"):
            return ("disk", None)
        if target == "UefiHttp":
            return (target, boot.get("HttpBootUri"))
        if target in ("Cd", "UsbCd", "Usb", "CD/DVD"):
            slots = [(p.rsplit("/", 1)[-1], r) for p, r in st.tree.items()
                     if "/VirtualMedia/" in p and isinstance(r, dict) and r.get("Inserted")]
            order = st.behaviour.boot_slots
            if order:  # the firmware boots only its documented slots
                slots = sorted([s for s in slots if s[0] in order], key=lambda s: order.index(s[0]))
            return (target, slots[0][1].get("Image") if slots else None)
        return (target, None)

    def _insert(self, st: ReplayState, dev_path: str, body: dict[str, Any]) -> tuple:
        b, dev = st.behaviour, st.tree.get(dev_path)
        if dev is None:
            return _err(404, "Base.1.8.ResourceMissingAtURI", f"No virtual media at {dev_path}")
        st.inserts.append((dev_path, copy.deepcopy(body)))
        if "#VirtualMedia.InsertMedia" not in (dev.get("Actions") or {}):
            return _err(405, "Base.1.8.ActionNotSupported", "InsertMedia is not supported by this resource")
        if st.faults.refuse_slot and dev_path.endswith("/" + st.faults.refuse_slot):
            return _err(409, "Base.1.8.ResourceInUse", "The virtual media slot is in use by another session")
        for name in b.insert_requires:
            if name not in body:
                return _err(400, "Base.1.8.ActionParameterMissing",
                            f"The action InsertMedia requires the parameter {name} to be present in the request body")
        if dev.get("Inserted"):
            return _err(409, "Base.1.8.ResourceInUse", "Media is already inserted; eject it first")
        dev.update(Image=body.get("Image"), Inserted=True, ConnectedVia="URI")
        return (204,)

    def _eject(self, st: ReplayState, dev_path: str, body: Any) -> tuple:
        b, dev = st.behaviour, st.tree.get(dev_path)
        if dev is None:
            return _err(404, "Base.1.8.ResourceMissingAtURI", f"No virtual media at {dev_path}")
        st.ejects.append(dev_path)
        if b.eject_needs_body and body is None:
            return _err(400, "Base.1.8.MalformedJSON", "The request body submitted was malformed JSON")
        if not dev.get("Inserted") and b.eject_when_empty == "refuse":
            return _err(400, "Base.1.8.ActionNotSupported", "No media is mounted: nothing to eject")
        dev.update(Image=None, Inserted=False, ConnectedVia="NotConnected")
        return (204,)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: ReplayState):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@dataclass
class Replay:
    server: _Server
    url: str
    thread: threading.Thread

    @property
    def state(self) -> ReplayState:
        return self.server.state

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_replay(tree: str, faults: Faults | None = None, tls: tuple[Path, Path] | None = None) -> Replay:
    if tree not in BEHAVIOURS:
        raise ValueError(f"unknown tree {tree!r}; known: {', '.join(TREES)}")
    state = ReplayState(BEHAVIOURS[tree], load_tree(tree), faults or Faults())
    server = _Server(state)
    scheme = "http"
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, name=f"replay-{tree}", daemon=True)
    thread.start()
    return Replay(server, f"{scheme}://127.0.0.1:{server.server_address[1]}", thread)
