"""A Redfish peer of our own that can behave like the quirky BMCs of the issue.

It serves a service tree built from the DMTF public rack-mount example (tests/data/redfish/dmtf) over real
HTTP(S) on 127.0.0.1, answers errors with real BMC error bodies (tests/data/redfish/sushy), applies power
changes, and records every request so that tests can assert on what a client actually sent.
Quirks are switched on by name (see QUIRKS); a mock only for what sushy-emulator cannot produce.
"""

from __future__ import annotations

import base64
import copy
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

IMAGE = "http://127.0.0.1:9/images/candidate.iso"  # a URL the peer accepts and never fetches
DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "redfish"
SYS = "/redfish/v1/Systems/437XR1138R2"
MGR = "/redfish/v1/Managers/BMC"

QUIRKS = {
    "session-only",       # basic auth refused; X-Auth-Token sessions only
    "session-expires",    # the first token dies after one use: 401 NoValidSession
    "etag",               # PATCH needs If-Match; weak tags are refused (412) in their W/ form
    "vmedia-manager",     # virtual media under the Manager only
    "vmedia-patch",       # no InsertMedia action: PATCH Image/Inserted/WriteProtected (all required)
    "transfer-proto",     # InsertMedia needs TransferProtocolType (ActionParameterMissing body)
    "transfer-proto-general",  # the same, as a GeneralError body
    "transfer-method",    # InsertMedia needs TransferMethod
    "credentials",        # InsertMedia needs UserName/Password
    "reject-inserted",    # InsertMedia refuses Inserted/WriteProtected in the body
    "eject-body",         # EjectMedia refuses a POST without a JSON body
    "task",               # InsertMedia and Reset answer 202 + task monitor with Retry-After
    "task-fails",         # the task ends in Exception with a message
    "busy-503",           # the first 3 requests to each resource answer 503
    "idrac-sys518",       # first Reset answers 400 SYS518
    "ilo-state",          # first boot PATCH answers 400 InvalidOperationForSystemState
    "supermicro",         # Vendor Supermicro; boot targets include UsbCd, not Cd
    "restricted-reset",   # ResetType allowable values only On/ForceOff
    "reject-mode",        # a boot PATCH carrying BootSourceOverrideMode is refused whole
    "require-mode",       # a boot PATCH without BootSourceOverrideMode is refused
    "settings",           # Boot is written through @Redfish.Settings; the system itself refuses it
    "no-identity",        # 406 when Accept-Encoding: identity is requested
    "dead",               # accept connections, never answer
    "echo-body",          # a refused login answers 400 echoing the raw request body (password and all)
    "cookie",             # every answer sets a session cookie; a cookie-authenticated write is refused (403,
                          # bmcweb's CSRF rule) with the cookie echoed in the message
}


def _load(rel: str) -> Any:
    return json.loads((DATA / rel).read_text())


def _ext_error(message_id: str, message: str) -> dict[str, Any]:
    return {"error": {"code": message_id, "message": message, "@Message.ExtendedInfo": [
        {"MessageId": message_id, "Message": message, "Severity": "Warning"}]}}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class PeerState:
    quirks: set[str]
    username: str
    password: str
    tree: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    sessions: dict[str, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    power_log: list[str] = field(default_factory=list)
    cookie: str = field(default_factory=lambda: f"ck{time.monotonic_ns()}")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bump(self, key: str) -> int:
        self.counters[key] = self.counters.get(key, 0) + 1
        return self.counters[key]


def build_tree(quirks: set[str]) -> dict[str, dict[str, Any]]:
    t: dict[str, dict[str, Any]] = {
        "/redfish/v1": _load("dmtf/root.json"),
        "/redfish/v1/Systems": _load("dmtf/systems.json"),
        SYS: _load("dmtf/system.json"),
        "/redfish/v1/Managers": _load("dmtf/managers.json"),
        MGR: _load("dmtf/manager.json"),
        f"{SYS}/LogServices": _load("dmtf/log_services.json"),
        f"{SYS}/LogServices/Log1": _load("dmtf/log1.json"),
        f"{SYS}/LogServices/Log1/Entries": _load("dmtf/log1_entries.json"),
        f"{SYS}/SecureBoot": _load("dmtf/secure_boot.json"),
        "/redfish/v1/SessionService": _load("dmtf/session_service.json"),
    }
    # The Manager's own log (the DMTF sample has none): the System's sample log, re-homed (PROVENANCE.md).
    t[MGR]["LogServices"] = {"@odata.id": f"{MGR}/LogServices"}
    mlogs = _load("dmtf/log_services.json")
    mlogs["@odata.id"] = f"{MGR}/LogServices"
    mlogs["Members"] = [{"@odata.id": f"{MGR}/LogServices/Log1"}]
    t[f"{MGR}/LogServices"] = mlogs
    t[f"{MGR}/LogServices/Log1"] = {**_load("dmtf/log1.json"), "@odata.id": f"{MGR}/LogServices/Log1",
                                    "Entries": {"@odata.id": f"{MGR}/LogServices/Log1/Entries"}}
    mentries = _load("dmtf/log1_entries.json")
    for i, e in enumerate(mentries.get("Members") or []):
        e.update({"@odata.id": f"{MGR}/LogServices/Log1/Entries/{i + 1}",
                  "Message": f"BMC: {e.get('Message')}", "Created": f"2012-03-07T14:46:0{i}Z"})
    t[f"{MGR}/LogServices/Log1/Entries"] = mentries
    sysr = t[SYS]
    sysr["PowerState"] = "Off"
    vm_base = f"{MGR}/VirtualMedia" if "vmedia-manager" in quirks else f"{SYS}/VirtualMedia"
    coll = _load("dmtf/vmedia_collection.json")
    coll["@odata.id"] = vm_base
    coll["Members"] = [{"@odata.id": f"{vm_base}/Floppy1"}, {"@odata.id": f"{vm_base}/CD1"}]
    t[vm_base] = coll
    for dev in ("Floppy1", "CD1"):
        res = _load(f"dmtf/vmedia_{dev.lower()}.json")
        res["@odata.id"] = f"{vm_base}/{dev}"
        if "vmedia-patch" not in quirks:
            res["Actions"] = {
                "#VirtualMedia.InsertMedia": {"target": f"{vm_base}/{dev}/Actions/VirtualMedia.InsertMedia"},
                "#VirtualMedia.EjectMedia": {"target": f"{vm_base}/{dev}/Actions/VirtualMedia.EjectMedia"}}
        t[f"{vm_base}/{dev}"] = res
    if "vmedia-manager" in quirks:
        sysr.pop("VirtualMedia", None)
        t[MGR]["VirtualMedia"] = {"@odata.id": vm_base}
    else:
        t[MGR].pop("VirtualMedia", None)
    if "supermicro" in quirks:
        t["/redfish/v1"]["Vendor"] = "Supermicro"
        sysr["Manufacturer"] = "Supermicro"
        sysr["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"] = ["None", "Pxe", "Hdd", "UsbCd",
                                                                              "BiosSetup", "UefiHttp"]
    if "restricted-reset" in quirks:
        sysr["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"] = ["On", "ForceOff"]
    if "settings" in quirks:
        settings = _load("sushy/settings-body-bootsourceoverridemode-only.json")
        settings["@odata.id"] = f"{SYS}/Settings"
        t[f"{SYS}/Settings"] = settings
        sysr["@Redfish.Settings"] = {"@odata.type": "#Settings.v1_3_0.Settings",
                                     "SettingsObject": {"@odata.id": f"{SYS}/Settings"}}
    return t


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # headers and body in one segment: no Nagle/delayed-ACK 40 ms per answer
    server: PeerServer

    def log_message(self, *args: Any) -> None:  # quiet: tests read state.requests instead
        pass

    # ------------------------------------------------------------ plumbing
    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
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
        if "dead" in st.quirks:
            time.sleep(3600)
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._reply(400, _load("sushy/error.json"))
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        with st.lock:
            st.requests.append(Seen(method, path, dict(self.headers.items()), body))
            reply = self._route(st, method, path, body, raw)
        if "cookie" in st.quirks:
            reply = (reply + (None, None))[:3]
            reply = (reply[0], reply[1], {**(reply[2] or {}),
                                          "Set-Cookie": f"QSESSIONID={st.cookie}; Path=/; HttpOnly"})
        self._reply(*reply)

    do_GET = lambda self: self._handle("GET")  # noqa: E731
    do_POST = lambda self: self._handle("POST")  # noqa: E731
    do_PATCH = lambda self: self._handle("PATCH")  # noqa: E731
    do_DELETE = lambda self: self._handle("DELETE")  # noqa: E731

    # ------------------------------------------------------------ behaviour
    def _authorized(self, st: PeerState) -> tuple[bool, dict[str, Any] | None]:
        token = self.headers.get("X-Auth-Token")
        if token:
            if token not in st.sessions:
                return False, _load("sushy/session_error.json")
            # the first session dies on its third use (after one power_state read), as if it timed out
            if "session-expires" in st.quirks and st.sessions[token] == "1" and st.bump(f"use:{token}") > 2:
                del st.sessions[token]
                return False, _load("sushy/session_error.json")
            return True, None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic ") and "session-only" not in st.quirks:
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            return (user == st.username and pw == st.password), _load("sushy/session_error.json")
        return False, _load("sushy/session_error.json")

    def _route(self, st: PeerState, method: str, path: str, body: Any, raw: bytes = b"") -> tuple:
        q = st.quirks
        if "no-identity" in q and "identity" in (self.headers.get("Accept-Encoding") or ""):
            return (406, _ext_error("Base.1.8.GeneralError", "Accept-Encoding identity is not supported"))
        if "busy-503" in q and st.bump(f"503:{method}:{path}") <= 3:
            return (503, _ext_error("Base.1.8.ServiceTemporarilyUnavailable", "The service is busy"),
                    {"Retry-After": "0"})
        if path == "/redfish/v1":
            return (200, st.tree[path])
        sessions = "/redfish/v1/SessionService/Sessions"
        if path == sessions and method == "POST":
            if (body or {}).get("UserName") != st.username or body.get("Password") != st.password:
                if "echo-body" in q:
                    return (400, _ext_error("Base.1.8.GeneralError",
                                            f"Login failed for request {raw.decode('utf-8', 'replace')}"))
                return (401, _load("sushy/session_error.json"))
            sid = str(st.bump("session-ids"))
            token = f"tok-{sid}-{time.monotonic_ns()}"
            st.sessions[token] = sid
            return (201, {"Id": sid, "UserName": st.username},
                    {"X-Auth-Token": token, "Location": f"{sessions}/{sid}"})
        cookie = self.headers.get("Cookie")
        if "cookie" in q and cookie and method != "GET" and not self.headers.get("X-XSRF-TOKEN"):
            return (403, _ext_error("Base.1.8.InsufficientPrivilege",
                                    f"CSRF check failed for cookie session ({cookie})"))
        ok, err = self._authorized(st)
        if not ok:
            return (401, err)
        if path.startswith(sessions + "/") and method == "DELETE":
            sid = path.rsplit("/", 1)[-1]
            for tok, s in list(st.sessions.items()):
                if s == sid:
                    del st.sessions[tok]
            return (204,)
        if path.startswith("/taskmon/"):
            return self._task(st, path)
        if path.endswith("/Actions/ComputerSystem.Reset") and method == "POST":
            return self._reset(st, body or {})
        if path.endswith("/Actions/VirtualMedia.InsertMedia") and method == "POST":
            return self._insert(st, path.rsplit("/Actions", 1)[0], body or {})
        if path.endswith("/Actions/VirtualMedia.EjectMedia") and method == "POST":
            if "eject-body" in q and body is None:
                return (400, _load("sushy/error.json"))
            res = st.tree[path.rsplit("/Actions", 1)[0]]
            res.update(Image=None, Inserted=False)
            return (204,)
        res = st.tree.get(path)
        if res is None:
            return (404, _ext_error("Base.1.8.ResourceMissingAtURI", f"No resource at URI {path}"))
        etag = f'W/"{st.counters.get("etag:" + path, 0)}"'
        if method == "GET":
            return (200, res, {"ETag": etag} if "etag" in q else {})
        if method == "PATCH":
            if "etag" in q:
                match = self.headers.get("If-Match")
                if match is None:
                    return (428, _ext_error("Base.1.8.PreconditionRequired", "If-Match is required"))
                if match != etag.removeprefix("W/"):  # this BMC wants the strong form
                    return (412, _ext_error("Base.1.8.PreconditionFailed", "ETag does not match"))
                st.bump("etag:" + path)
            return self._patch(st, path, res, body or {})
        return (405, _ext_error("Base.1.8.OperationNotAllowed", f"{method} not allowed on {path}"))

    def _task(self, st: PeerState, path: str) -> tuple:
        n = st.tasks.get(path, 0)
        st.tasks[path] = n + 1
        if n < 1:
            return (202, {"TaskState": "Running"}, {"Retry-After": "1", "Location": path})
        task = _load("sushy/task_monitor.json")
        if "task-fails" in st.quirks:
            task.update(TaskState="Exception", TaskStatus="Critical", Messages=[
                {"MessageId": "Base.1.8.GeneralError", "Severity": "Critical",
                 "Message": "Unable to mount the image: share not reachable"}])
        return (200, task)

    def _accepted(self, st: PeerState) -> tuple | None:
        if "task" in st.quirks or "task-fails" in st.quirks:
            mon = f"/taskmon/{len(st.tasks) + 1}"
            st.tasks[mon] = 0
            return (202, None, {"Location": mon, "Retry-After": "1"})
        return None

    def _reset(self, st: PeerState, body: dict[str, Any]) -> tuple:
        sysr = st.tree[SYS]
        kind = body.get("ResetType")
        allowed = sysr["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"]
        if kind not in allowed:
            return (400, _ext_error("Base.1.8.ActionParameterNotSupported",
                                    f"The parameter ResetType value {kind} is not supported"))
        if "idrac-sys518" in st.quirks and st.bump("sys518") == 1:
            return (400, _ext_error("IDRAC.2.8.SYS518", "iDRAC is not ready. The configuration values cannot "
                                    "be accessed. Please retry after a few minutes."))
        st.power_log.append(kind)
        pending = st.tree.get(f"{SYS}/Settings")
        if pending:
            st.tree[SYS]["Boot"].update({k: v for k, v in pending["Boot"].items() if k.startswith("BootSource")})
        sysr["PowerState"] = "Off" if kind in ("ForceOff", "GracefulShutdown") else "On"
        return self._accepted(st) or (204,)

    def _insert(self, st: PeerState, dev_path: str, body: dict[str, Any]) -> tuple:
        q = st.quirks
        if "transfer-proto" in q and "TransferProtocolType" not in body:
            return (400, _load("sushy/transfer_proto_required_error.json"))
        if "transfer-proto-general" in q and "TransferProtocolType" not in body:
            return (400, _load("sushy/transfer_proto_required_error2.json"))
        if "transfer-method" in q and "TransferMethod" not in body:
            return (400, _load("sushy/transfer_method_required_error.json"))
        if "credentials" in q and not ("UserName" in body and "Password" in body):
            return (400, _load("sushy/credentials_required_error.json"))
        if "reject-inserted" in q and ("Inserted" in body or "WriteProtected" in body):
            return (400, _ext_error("Base.1.8.PropertyUnknown", "The property Inserted is not known"))
        st.tree[dev_path].update(Image=body.get("Image"), Inserted=True)
        return self._accepted(st) or (204,)

    def _patch(self, st: PeerState, path: str, res: dict[str, Any], body: dict[str, Any]) -> tuple:
        q = st.quirks
        if "/VirtualMedia/" in path:
            if "Image" in body and body["Image"] and not ("Inserted" in body and "WriteProtected" in body):
                return (400, _ext_error("Base.1.8.PropertyMissing", "Inserted, WriteProtected are required"))
            res.update({k: body[k] for k in ("Image", "Inserted", "WriteProtected") if k in body})
            return (204,)
        boot = body.get("Boot")
        if not isinstance(boot, dict):
            return (400, _load("sushy/error.json"))
        if path == SYS and "settings" in q:
            return (400, _ext_error("Base.1.8.PropertyNotWritable",
                                    "The property Boot is a read only property; use the Settings resource"))
        if "ilo-state" in q and st.bump("ilo-state") == 1:
            return (400, _ext_error("iLO.2.14.InvalidOperationForSystemState",
                                    "Unable to modify the boot order while the system is in POST."))
        if "reject-mode" in q and "BootSourceOverrideMode" in boot:
            return (400, _ext_error("Base.1.8.PropertyValueNotInList",
                                    "The value for the property BootSourceOverrideMode is not in the list"))
        if "require-mode" in q and "BootSourceOverrideMode" not in boot:
            return (400, _ext_error("Base.1.8.PropertyMissing", "BootSourceOverrideMode is required"))
        target = boot.get("BootSourceOverrideTarget")
        allowed = st.tree[SYS]["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"]
        if target is not None and target not in allowed:
            return (400, _ext_error("Base.1.8.PropertyValueNotInList",
                                    f"The value {target} for the property BootSourceOverrideTarget is not in "
                                    "the list of acceptable values"))
        if path.endswith("/Settings"):  # pending settings: kept there, applied to the system at the next reset
            res.setdefault("Boot", {}).update(boot)
            return (204,)
        st.tree[SYS]["Boot"].update(boot)
        return (204,)


class PeerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: PeerState):
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state


@dataclass
class Peer:
    server: PeerServer
    url: str
    thread: threading.Thread

    @property
    def state(self) -> PeerState:
        return self.server.state

    def count(self, method: str | None = None, path_part: str = "") -> int:
        return sum(1 for r in self.state.requests
                   if (method is None or r.method == method) and path_part in r.path)

    def sent(self, method: str, path_part: str) -> list[Seen]:
        return [r for r in self.state.requests if r.method == method and path_part in r.path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_peer(quirks: set[str] | frozenset[str] = frozenset(), *, username: str = "admin",
               password: str = "peer-pw", tls: tuple[Path, Path] | None = None) -> Peer:
    unknown = set(quirks) - QUIRKS
    if unknown:
        raise ValueError(f"unknown quirks {sorted(unknown)}; known: {sorted(QUIRKS)}")
    state = PeerState(set(quirks), username, password)
    state.tree = copy.deepcopy(build_tree(state.quirks))
    server = PeerServer(state)
    scheme = "http"
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, name="redfish-peer", daemon=True)
    thread.start()
    return Peer(server, f"{scheme}://127.0.0.1:{server.server_address[1]}", thread)
