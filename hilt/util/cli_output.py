"""How every `hilt` sub-command prints: data never read as Rich markup, errors on one unwrapped line, JSON.

Values come from data that users and machines write (node names, health reasons, holder purposes, run ids, BMC
error texts), so a ``[/dev/nvme0n1]`` in them is text, never a Rich tag: table cells are ``Text`` objects and
free text is printed with markup off. Errors are read by CI logs 80 columns wide and by scripts that grep them:
each is one ``error: ...`` line that Rich never wraps, and the exit code comes from ``exit_code_for`` (docs/ci.md).
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from hilt.exitcodes import ExitCode, exit_code_for

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)


def cell(value: object, style: str = "") -> Text:
    """A table cell showing ``value`` as plain text (``None`` as empty), whatever brackets it holds."""
    return Text("" if value is None else str(value), style=style)


def say(*parts: object, style: str = "") -> None:
    """Print one line of text made from data, with no markup and no highlighting."""
    stdout.print(Text(" ".join(str(p) for p in parts), style=style), soft_wrap=True)


def error_line(message: object) -> None:
    """``error: MESSAGE`` on stderr; a message of several lines gives several ``error:`` lines, none wrapped."""
    lines = [line for line in str(message).splitlines() if line.strip()] or [""]
    for line in lines:
        stderr.print(Text("error: ", style="red") + Text(line), soft_wrap=True)


def warning_line(message: object) -> None:
    """``warning: MESSAGE`` on stderr, one unwrapped line: allowed but never silent (e.g. TLS verify off)."""
    stderr.print(Text("warning: ", style="yellow") + Text(str(message)), soft_wrap=True)


def fail(problem: BaseException | str, code: int | None = None) -> NoReturn:
    """Print ``problem`` as one-line errors and leave with its code (usage error for a plain message)."""
    if code is None:
        code = exit_code_for(problem) if isinstance(problem, BaseException) else ExitCode.USAGE_ERROR
    error_line(problem)
    raise typer.Exit(int(code))


def print_json(document: dict[str, Any]) -> None:
    """The ``--json`` form of a listing: one JSON object on stdout (keys documented in docs/ci.md)."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()
