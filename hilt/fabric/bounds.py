"""Bounds every parser applies to a node's output: a node's tools are not trusted.

A parser's work must be linear in its input and its memory bounded, whatever the text holds: a size cap on
the whole text, numbers read only from short digit strings (Python refuses integers over 4,300 digits with a
ValueError, and `float("1e999")` is infinity), and counts that cannot ask for more than the text shows.
"""

from __future__ import annotations

import math
import re

from hilt.errors import ParseError

#: Largest text a parser accepts. Real outputs are kilobytes (a full nvbandwidth run on 8 GPUs is 14 KB,
#: nccl-tests with NCCL_DEBUG=INFO on 16 ranks a few hundred KB); 8 MiB leaves room for chatty logs.
MAX_TEXT = 8 * 1024 * 1024
#: Longest digit string read as a number; 2**64 has 20 digits, so no real counter is longer.
MAX_DIGITS = 24

_D = f"{{1,{MAX_DIGITS}}}"
_INT = re.compile(r"-?\d" + _D)
_FLOAT = re.compile(r"-?(?:\d" + _D + r"(?:\.\d" + _D + r"|\.)?|\.\d" + _D + r")(?:[eE][+-]?\d{1,3})?")


def check_size(text: str, what: str) -> None:
    """Refuse text over MAX_TEXT before any work is done on it."""
    if len(text) > MAX_TEXT:
        raise ParseError(f"{what}: {len(text)} characters is more than the {MAX_TEXT} a real output holds")


def to_int(token: str, what: str, line_no: int | None = None, line: str | None = None) -> int:
    """An integer of at most MAX_DIGITS digits, else ParseError."""
    if not _INT.fullmatch(token):
        raise ParseError(f"{what}: {token[:40]!r} is not an integer of at most {MAX_DIGITS} digits", line_no, line)
    return int(token)


def to_float(token: str, what: str, line_no: int | None = None, line: str | None = None) -> float:
    """A finite decimal number from a short token, else ParseError (no `inf`, `nan` or `1e999`)."""
    if not _FLOAT.fullmatch(token):
        raise ParseError(f"{what}: {token[:40]!r} is not a finite number", line_no, line)
    value = float(token)
    if not math.isfinite(value):
        raise ParseError(f"{what}: {token[:40]!r} is not a finite number", line_no, line)
    return value


def is_int(token: str) -> bool:
    return _INT.fullmatch(token) is not None


def is_float(token: str) -> bool:
    return _FLOAT.fullmatch(token) is not None and math.isfinite(float(token))
