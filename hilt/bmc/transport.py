"""One Redfish connection: auth, retries, ETags, task monitors, and errors that name the BMC and the step.

Built on ``requests`` directly, as sushy's ``connector.py`` is (docs/bmc.md says why not the DMTF library):
- one ``requests.Session`` per BMC, no proxy from the environment, TLS verified against the CA bundle of requests by
  default (``verify=True``), a CA bundle path, or off only with an explicit ``verify=False``;
- Redfish sessions (``POST SessionService/Sessions``, ``X-Auth-Token``, ``DELETE`` of its ``Location`` at close),
  HTTP basic auth where there is no session service; cookies are never kept (a BMC's session cookie would switch
  bmcweb to cookie auth with CSRF checks) and their values are treated as secrets;
- bounded retries, the same for every request (session login and logout included), only on what is transient:
  503/502/504 and "not ready" answers (iDRAC SYS518, iLO InvalidOperationForSystemState,
  Base ServiceTemporarilyUnavailable / ServiceInUnknownState), connection resets, one timeout; ``Retry-After``
  in seconds or as an HTTP date;
- 401 after a session expired: log in again once; 406 on ``Accept-Encoding: identity``: drop it;
- 202 with a task monitor: poll it honouring ``Retry-After`` until the task is done.
"""

from __future__ import annotations

import base64
import email.utils
import http.cookiejar
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from hilt.bmc.errors import BmcRequestError, error_text, message_ids
from hilt.bmc.redact import REDACTOR, SecretBody, redact_structure

log = logging.getLogger("hilt.bmc")

# Message ids that mean "busy or not ready right now, ask again": iDRAC SYS518 (job queue/LC busy right after a
# power change), iLO InvalidOperationForSystemState (POST in progress), Base ServiceTemporarilyUnavailable and
# ServiceInUnknownState (bmcweb and AMI while their Redfish daemon starts).
TRANSIENT_IDS = ("SYS518", "InvalidOperationForSystemState", "ServiceTemporarilyUnavailable",
                 "ServiceInUnknownState")
TASK_RUNNING = {"New", "Starting", "Running", "Pending", "Suspended", "Stopping", "Interrupted", "Service"}
TASK_FAILED = {"Exception", "Killed", "Cancelled", "Cancelling"}
SESSIONS = "/redfish/v1/SessionService/Sessions"


@dataclass
class Response:
    """What a step needs from an HTTP answer."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def etag(self) -> str | None:
        tag = self.headers.get("etag")
        if not tag and isinstance(self.body, dict):
            tag = self.body.get("@odata.etag")
        return tag or None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Transport:
    """Authenticated, retrying requests to one BMC; counts every HTTP request it sends."""

    def __init__(self, url: str, username: str, password: str, *, name: str, verify: bool | str = True,
                 auth: str = "auto", timeout_s: float = 10.0, retries: int = 4, backoff_s: float = 0.5,
                 task_timeout_s: float = 600.0):
        __tracebackhide__ = True  # pytest prints frame arguments in tracebacks: the password is one
        if auth not in ("auto", "session", "basic"):
            raise ValueError(f"auth must be 'auto', 'session' or 'basic', not {auth!r}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"BMC url must be http(s)://host[:port], not {parts.scheme}://{parts.hostname}")
        if verify == "":
            raise ValueError("verify must be true, false or a CA bundle path, not an empty string")
        port = f":{parts.port}" if parts.port else ""
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self.base = f"{parts.scheme}://{host}{port}"
        self.name = name
        self.auth_mode = auth
        self.timeout = (min(timeout_s, 5.0), timeout_s)
        self.retries = retries
        self.backoff_s = backoff_s
        self.task_timeout_s = task_timeout_s
        self.requests_sent = 0
        self.identity_encoding = True
        self.root: dict[str, Any] = {}
        self.last_error_body: Any = None
        self.last_etag: dict[str, str] = {}
        self.auth_used: str | None = None
        self._username = username
        self._password = password
        self._token: str | None = None
        self._session_path: str | None = None
        self._basic: str | None = None
        self._secrets: list[str] = []
        self._remember(password)
        self._http = requests.Session()
        self._http.trust_env = False  # a BMC network is never reached through an HTTP proxy
        self._http.verify = verify
        self._http.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))

    def _remember(self, secret: str | None) -> None:
        if secret and secret not in self._secrets:
            self._secrets.append(secret)
            REDACTOR.add(secret)

    def _forget(self, secret: str | None) -> None:
        if secret and secret in self._secrets:
            self._secrets.remove(secret)
            REDACTOR.discard(secret)

    # ---------------------------------------------------------------- auth
    def connect(self) -> None:
        """Read the service root and log in (session, else basic), once."""
        root = self.request("GET", "/redfish/v1/", step="read service root", auth=False)
        self.root = root.body if isinstance(root.body, dict) else {}
        sessions = (self.root.get("Links") or {}).get("Sessions", {}).get("@odata.id")
        if self.auth_mode == "basic" or (self.auth_mode == "auto" and not sessions
                                         and "SessionService" not in self.root):
            self._use_basic()
            return
        try:
            self._login_session(sessions or SESSIONS)
        except BmcRequestError as exc:
            if self.auth_mode == "session" or exc.status in (401, 403) or exc.status is None:
                raise
            log.info("BMC %s: no Redfish session (%s); using HTTP basic auth", self.name, exc.status)
            self._use_basic()

    def _use_basic(self) -> None:
        self._basic = base64.b64encode(f"{self._username}:{self._password}".encode()).decode()
        self._remember(self._basic)
        self.auth_used = "basic"

    def _login_session(self, sessions: str | None = None) -> None:
        sessions = sessions or (self.root.get("Links") or {}).get("Sessions", {}).get("@odata.id") or SESSIONS
        self._drop_token()
        step = "log in (Redfish session)"
        try:
            resp = self.request("POST", sessions, SecretBody(UserName=self._username, Password=self._password),
                                step=step, auth=False, follow_task=False)
        except BmcRequestError as exc:
            if exc.status == 401:
                raise BmcRequestError(self.name, step, 401, "invalid credentials") from None
            raise
        token = resp.headers.get("x-auth-token")
        if not token:
            raise BmcRequestError(self.name, step, resp.status, "", "the answer had no X-Auth-Token")
        self._token = token
        self._remember(token)
        location = resp.headers.get("location")
        if not location and isinstance(resp.body, dict):
            location = resp.body.get("@odata.id")
        self._session_path = urlsplit(location).path if location else None
        self.auth_used = "session"

    def _drop_token(self) -> None:
        self._forget(self._token)
        self._token = None
        self._session_path = None

    def close(self) -> None:
        """Log out (delete our session, retried like any request) and close the connection; never raises."""
        try:
            if self._token and self._session_path:
                self.request("DELETE", self._session_path, step="log out", ok=(401, 404), follow_task=False)
        except Exception as exc:  # the session times out on its own; a failed logout must not hide a result
            log.warning("BMC %s: log out failed: %s", self.name, REDACTOR.scrub(str(exc)))
        finally:
            self._http.close()
            self._drop_token()

    def forget_secrets(self) -> None:
        for s in list(self._secrets):
            self._forget(s)

    # ---------------------------------------------------------------- requests
    def _headers(self, extra: dict[str, str] | None, auth: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "OData-Version": "4.0"}
        if self.identity_encoding:
            headers["Accept-Encoding"] = "identity"
        if auth and self._token:
            headers["X-Auth-Token"] = self._token
        elif auth and self._basic:
            headers["Authorization"] = f"Basic {self._basic}"
        headers.update(extra or {})
        return headers

    def _send(self, method: str, path: str, body: Any, headers: dict[str, str]) -> Response:
        self.requests_sent += 1
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        url = path if path.startswith(("http://", "https://")) else f"{self.base}{path}"
        resp = self._http.request(method, url, data=data, headers=headers, timeout=self.timeout,
                                  allow_redirects=False)
        for cookie in resp.raw.headers.getlist("Set-Cookie") if resp.raw is not None else []:
            # A session cookie is a credential as much as a token: never shown anywhere, by value.
            self._remember(cookie.split(";", 1)[0].partition("=")[2] or None)
        try:
            parsed: Any = json.loads(resp.content) if resp.content.strip() else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        hdrs = {k.lower(): v for k, v in resp.headers.items()}
        log.debug("BMC %s: %s %s -> %s %s", self.name, method, path, resp.status_code,
                  json.dumps(redact_structure(hdrs)))
        return Response(resp.status_code, parsed, hdrs)

    def request(self, method: str, path: str, body: Any = None, *, step: str,
                headers: dict[str, str] | None = None, auth: bool = True, ok: tuple[int, ...] = (),
                follow_task: bool = True) -> Response:
        """Send one request with bounded retries; raise BmcRequestError unless 2xx (or a status in ``ok``)."""
        relogged = False
        attempt = 0
        timeouts = 0
        while True:
            attempt += 1
            try:
                resp = self._send(method, path, body, self._headers(headers, auth))
            except (requests.RequestException, OSError) as exc:
                cause = exc.__cause__ or exc
                is_timeout = isinstance(cause, requests.Timeout)
                timeouts += is_timeout
                # A BMC that did not answer within timeout_s is retried once; a reset connection a few times.
                # A certificate that does not verify will not verify on a retry either.
                if attempt <= self.retries and timeouts <= 1 and not isinstance(cause, requests.exceptions.SSLError):
                    self._sleep(attempt, None, f"{step}: {type(cause).__name__}")
                    continue
                raise BmcRequestError(self.name, step, None, "", _cause(exc)) from None
            if resp.status == 406 and self.identity_encoding:
                log.info("BMC %s refuses Accept-Encoding: identity; dropping it", self.name)
                self.identity_encoding = False
                continue
            if resp.status == 401 and auth and self.auth_used == "session" and not relogged:
                log.info("BMC %s: session expired; logging in again", self.name)
                relogged = True
                self._login_session()
                continue
            if self._transient(resp) and attempt <= self.retries:
                self._sleep(attempt, resp.headers.get("retry-after"), f"{step}: HTTP {resp.status}")
                continue
            if resp.status == 202 and follow_task and "location" in resp.headers:
                return self._follow_task(resp, step)
            if resp.ok or resp.status in ok:
                if method == "GET" and resp.etag:
                    self.last_etag[path] = resp.etag
                return resp
            self.last_error_body = resp.body
            raise BmcRequestError(self.name, step, resp.status, error_text(resp.body) or _short(resp.body))

    def _transient(self, resp: Response) -> bool:
        if resp.status in (502, 503, 504):
            return True
        if resp.status in (400, 409, 500):
            if any(any(t in mid for t in TRANSIENT_IDS) for mid in message_ids(resp.body)):
                return True
            return "not ready" in error_text(resp.body).lower()  # "iDRAC is not ready", "BMC not ready"
        return False

    def _sleep(self, attempt: int, retry_after: str | None, why: str) -> None:
        delay = _retry_after(retry_after)
        if delay is None:
            delay = self.backoff_s * (2 ** (attempt - 1))
        log.info("BMC %s: %s; retrying in %.1fs (attempt %d of %d)", self.name, why, delay, attempt + 1,
                 self.retries + 1)
        time.sleep(delay)

    def _follow_task(self, first: Response, step: str) -> Response:
        """Poll a task monitor until the task leaves its running states, honouring Retry-After."""
        monitor = urlsplit(first.headers["location"]).path
        deadline = time.monotonic() + self.task_timeout_s
        resp = first
        while True:
            delay = _retry_after(resp.headers.get("retry-after"))
            time.sleep(1.0 if delay is None else delay)
            if time.monotonic() > deadline:
                raise BmcRequestError(self.name, step, 202, f"task {monitor} still running after "
                                      f"{self.task_timeout_s:.0f}s")
            resp = self.request("GET", monitor, step=f"{step} (task {monitor})", follow_task=False)
            body = resp.body if isinstance(resp.body, dict) else {}
            state = body.get("TaskState")
            if resp.status == 202 or state in TASK_RUNNING:
                continue
            if state in TASK_FAILED or body.get("TaskStatus") in ("Critical",):
                raise BmcRequestError(self.name, step, resp.status,
                                      error_text(body) or f"task ended {state}")
            return resp

    # ---------------------------------------------------------------- helpers
    def get(self, path: str, *, step: str) -> Response:
        return self.request("GET", path, step=step)

    def patch(self, path: str, body: dict[str, Any], *, step: str, etag: str | None) -> Response:
        """PATCH with ``If-Match``; on 412 try the weak tag made strong, then no tag. Never an empty tag."""
        tags: list[str | None] = []
        if etag:
            tags.append(etag)
            if etag.startswith("W/"):
                tags.append(etag[2:])
        tags.append(None)
        last: BmcRequestError | None = None
        for tag in tags:
            try:
                hdrs = {"If-Match": tag} if tag else None
                return self.request("PATCH", path, body, step=step, headers=hdrs)
            except BmcRequestError as exc:
                if exc.status != 412:
                    raise
                last = exc
                log.info("BMC %s: %s got 412 with If-Match %s", self.name, step, tag)
        assert last is not None
        raise last


def _retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110), capped at 30 s."""
    if not value:
        return None
    try:
        return max(0.0, min(float(value), 30.0))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return 1.0  # unreadable: a second is a safe answer
    return max(0.0, min(when.timestamp() - (time.time() if now is None else now), 30.0))


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return REDACTOR.scrub(f"{type(cause).__name__}: {cause}")[:300]


def _short(body: Any) -> str:
    if body is None:
        return ""
    text = body if isinstance(body, str) else json.dumps(redact_structure(body))
    return REDACTOR.scrub(text)[:200]
