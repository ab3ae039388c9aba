"""The BMC layer's exception and the reading of a BMC's own error body.

A person reading a failed boot needs four things: which BMC, which step, the HTTP status and what the BMC
said (``error.@Message.ExtendedInfo``). Passwords and session tokens are scrubbed from everything we render.
"""

from __future__ import annotations

from typing import Any

from hilt.bmc.redact import REDACTOR, Redactor
from hilt.errors import BmcError

__all__ = ["BmcError", "BmcRequestError", "extended_messages", "error_text", "Redactor"]


def extended_messages(body: Any) -> list[dict[str, Any]]:
    """The ``@Message.ExtendedInfo`` entries of a Redfish error body (or of a Task's ``Messages``)."""
    if not isinstance(body, dict):
        return []
    err = body.get("error")
    if isinstance(err, dict):
        info = err.get("@Message.ExtendedInfo") or []
        return [m for m in info if isinstance(m, dict)]
    msgs = body.get("Messages") or body.get("@Message.ExtendedInfo") or []
    return [m for m in msgs if isinstance(m, dict)] if isinstance(msgs, list) else []


def error_text(body: Any) -> str:
    """The BMC's human message: every ExtendedInfo ``Message``, else ``error.message``."""
    parts = [str(m.get("Message")) for m in extended_messages(body) if m.get("Message")]
    if not parts and isinstance(body, dict) and isinstance(body.get("error"), dict):
        msg = body["error"].get("message") or body["error"].get("code")
        if msg:
            parts.append(str(msg))
    return "; ".join(parts)


def error_blob(body: Any) -> str:
    """Everything an error says (ids, args, properties, messages) as one string, for quirk matching."""
    if not isinstance(body, dict):
        return str(body or "")
    bits: list[str] = []
    err = body.get("error") if isinstance(body.get("error"), dict) else {}
    bits += [str(err.get("code", "")), str(err.get("message", ""))]
    for m in extended_messages(body):
        bits += [str(m.get("MessageId", "")), str(m.get("Message", ""))]
        bits += [str(a) for a in m.get("MessageArgs") or []]
        bits += [str(p) for p in m.get("RelatedProperties") or []]
    return " ".join(bits)


def message_ids(body: Any) -> list[str]:
    ids = [str(m.get("MessageId", "")) for m in extended_messages(body)]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        ids.append(str(body["error"].get("code", "")))
    return [i for i in ids if i]


class BmcRequestError(BmcError):
    """A Redfish request that the BMC refused or never answered.

    ``status`` is the HTTP status (None when there was no answer), ``bmc_message`` the BMC's own words.
    """

    def __init__(self, bmc: str, step: str, status: int | None, bmc_message: str = "", detail: str = ""):
        self.bmc = bmc
        self.step = step
        self.status = status
        self.bmc_message = bmc_message = REDACTOR.scrub(bmc_message)
        shown = f"HTTP {status}" if status is not None else "no answer"
        text = f"BMC {bmc}: {step} failed ({shown})"
        if bmc_message:
            text += f": {bmc_message}"
        if detail:
            text += f" [{detail}]"
        super().__init__(REDACTOR.scrub(text))

