"""Reading a summary.json back as a RunRecord (`hilt history import`, `hilt report` of an older run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from hilt.errors import ConfigError
from hilt.record.run_record import SCHEMA_VERSION as RECORD_SCHEMA_VERSION
from hilt.record.run_record import RunRecord
from hilt.util.safe_yaml import decode


class HistoryError(ConfigError):
    """The history store or an imported summary cannot be used; the message names the file or database."""

if TYPE_CHECKING:
    pass

def load_summary(path: Path | str) -> RunRecord:
    """Read and validate a summary.json; errors name the file and the offending field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = json.loads(decode(raw, str(path)), parse_constant=_no_constant)
    except ConfigError as exc:
        raise HistoryError(str(exc)) from None
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read summary ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise HistoryError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    except ValueError as exc:
        raise HistoryError(f"{path}: {exc}") from None
    except RecursionError:
        raise HistoryError(f"{path}: nested too deep to be a summary.json") from None
    if not isinstance(data, dict):
        raise HistoryError(f"{path}: a summary is a JSON object (a run record), got {type(data).__name__}")
    version = data.get("schema_version", 1)
    if isinstance(version, int) and version > RECORD_SCHEMA_VERSION:
        raise HistoryError(f"{path}: schema_version {version} is newer than this hilt reads "
                           f"({RECORD_SCHEMA_VERSION})")
    try:
        return RunRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise HistoryError(f"{path}: field {where}: {first['msg'].removeprefix('Value error, ')} "
                           f"({exc.error_count()} problem(s) in all)") from None
    except RecursionError:
        raise HistoryError(f"{path}: nested too deep to be a summary.json") from None


def _no_constant(name: str) -> float:
    """JSON has no Infinity or NaN; Python's json reads them anyway. A summary holding one is refused."""
    raise ValueError(f"{name} is not a JSON number; samples must be finite")
