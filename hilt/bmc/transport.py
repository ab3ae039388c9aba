"""One Redfish connection: auth, retries, ETags, task monitors, and errors that name the BMC and the step.

Built on the DMTF ``redfish`` library for the wire and login; what it lacks for real BMCs lives here:
- its own retry is 10 x 1 s on any exception; we set ``max_retry=0`` and retry ourselves with backoff,
  only on what is transient (503, connection reset, iDRAC SYS518, iLO InvalidOperationForSystemState);
- it verifies TLS only when given a CA file, so ``verify=True`` passes the system CA bundle explicitly;
- 401 after a session expired: log in again once; 406 on ``Accept-Encoding: identity``: drop it;
- 202 with a task monitor: poll it honouring ``Retry-After`` until the task is done.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redfish
import requests
from redfish.rest.v1 import InvalidCredentialsError, RetriesExhaustedError, SessionCreationError

from hilt.bmc.errors import REDACTOR, BmcRequestError, error_text, message_ids

log = logging.getLogger("hilt.bmc")

# Message ids that mean "busy right now, ask again": iDRAC SYS518 (job queue/LC busy right after a power
# change), iLO InvalidOperationForSystemState (POST in progress), generic ServiceTemporarilyUnavailable.
TRANSIENT_IDS = ("SYS518", "InvalidOperationForSystemState", "ServiceTemporarilyUnavailable", "SRV")
TASK_RUNNING = {"New", "Starting", "Running", "Pending", "Suspended", "Stopping", "Interrupted", "Service"}
TASK_FAILED = {"Exception", "Killed", "Cancelled", "Cancelling"}


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


def _ca_bundle(verify: bool | str) -> str | None:
    if verify is False:
        return None
    if isinstance(verify, str):
        return verify
    return requests.certs.where()


class Transport:
    """Authenticated, retrying requests to one BMC; counts every HTTP request it sends."""

    def __init__(self, url: str, username: str, password: str, *, name: str, verify: bool | str = True,
                 auth: str = "auto", timeout_s: float = 10.0, retries: int = 4, backoff_s: float = 0.5,
                 task_timeout_s: float = 600.0):
        if auth not in ("auto", "session", "basic"):
            raise ValueError(f"auth must be 'auto', 'session' or 'basic', not {auth!r}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"BMC url must be http(s)://host[:port], not {parts.scheme}://{parts.hostname}")
        port = f":{parts.port}" if parts.port else ""
        self.base = f"{parts.scheme}://{parts.hostname}{port}"
        self.name = name
        self.auth_mode = auth
        self.timeout_s = timeout_s
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
        REDACTOR.add(password)
        self._client = redfish.redfish_client(
            base_url=self.base, username=username, password=password, cafile=_ca_bundle(verify),
            timeout=(min(timeout_s, 5.0), timeout_s), max_retry=0, check_connectivity=False)
        self._client._session.trust_env = False  # a BMC network is never reached through an HTTP proxy

    # ---------------------------------------------------------------- auth
    def connect(self) -> None:
        """Read the service root and log in (session, else basic), once."""
        root = self.request("GET", "/redfish/v1/", step="read service root", auth=False)
        self.root = root.body if isinstance(root.body, dict) else {}
        self._client.root = redfish.rest.v1.RisObject.parse(self.root)
        self._client.root_resp = True
        sessions = (self.root.get("Links") or {}).get("Sessions", {}).get("@odata.id")
        self._client.login_url = sessions or "/redfish/v1/SessionService/Sessions"
        if self.auth_mode == "basic" or (self.auth_mode == "auto" and not sessions
                                         and "SessionService" not in self.root):
            self._use_basic()
            return
        try:
            self._login_session()
        except BmcRequestError as exc:
            if self.auth_mode == "session" or exc.status in (401, 403):
                raise
            log.info("BMC %s: no Redfish session (%s); using HTTP basic auth", self.name, exc.status)
            self._use_basic()

    def _use_basic(self) -> None:
        key = base64.b64encode(f"{self._username}:{self._password}".encode()).decode()
        self._client.set_session_key(None)
        self._client.set_authorization_key(f"Basic {key}")
        REDACTOR.add(key)
        self.auth_used = "basic"

    def _login_session(self) -> None:
        self.requests_sent += 1
        try:
            self._client.set_session_key(None)
            self._client.login(auth="session", headers=self._headers())
        except InvalidCredentialsError:
            raise BmcRequestError(self.name, "log in (Redfish session)", 401, "invalid credentials") from None
        except SessionCreationError as exc:
            status = _status_from(str(exc))
            raise BmcRequestError(self.name, "log in (Redfish session)", status,
                                  REDACTOR.scrub(str(exc).split("\n", 1)[-1])) from None
        except (RetriesExhaustedError, requests.RequestException) as exc:
            raise BmcRequestError(self.name, "log in (Redfish session)", None, _cause(exc)) from None
        token = self._client.get_session_key()
        if not token:
            raise BmcRequestError(self.name, "log in (Redfish session)", None, "answer had no X-Auth-Token")
        REDACTOR.discard(self._token)
        self._token = token
        REDACTOR.add(token)
        self.auth_used = "session"

    def close(self) -> None:
        """Log out (delete our session) and close the connection; never raises."""
        try:
            if self._token:
                self.requests_sent += 1
                self._client.logout()
        except Exception as exc:  # the session times out on its own; a failed logout must not hide a result
            log.warning("BMC %s: log out failed: %s", self.name, REDACTOR.scrub(str(exc)))
        finally:
            try:
                self._client._session.close()
            except Exception:
                pass
            REDACTOR.discard(self._token)
            self._token = None

    def forget_secrets(self) -> None:
        REDACTOR.discard(self._password)

    # ---------------------------------------------------------------- requests
    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.identity_encoding:
            headers["Accept-Encoding"] = "identity"
        headers.update(extra or {})
        return headers

    def _send(self, method: str, path: str, body: Any, headers: dict[str, str]) -> Response:
        self.requests_sent += 1
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["body"] = body
            headers.setdefault("Content-Type", "application/json")
        resp = getattr(self._client, method.lower())(path, **kwargs)
        try:
            text = resp.text
            data: Any = json.loads(text) if text and text.strip() else None
        except (ValueError, UnicodeDecodeError):
            data = None
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        return Response(resp.status, data, hdrs)

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
                resp = self._send(method, path, body, self._headers(headers))
            except (RetriesExhaustedError, requests.RequestException, OSError) as exc:
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
            return any(any(t in mid for t in TRANSIENT_IDS[:3]) for mid in message_ids(resp.body))
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


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, min(float(value), 30.0))
    except ValueError:
        return 1.0  # an HTTP date: rare on BMCs; a second is a safe answer


def _status_from(text: str) -> int | None:
    try:
        return int(text.split("HTTP ", 1)[1].split(":", 1)[0])
    except (IndexError, ValueError):
        return None


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return REDACTOR.scrub(f"{type(cause).__name__}: {cause}")[:300]


def _short(body: Any) -> str:
    if body is None:
        return ""
    return REDACTOR.scrub(json.dumps(body)[:200]) if not isinstance(body, str) else body[:200]
