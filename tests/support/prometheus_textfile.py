"""What node_exporter's textfile collector accepts: Go's expfmt text parser (prometheus/common
``expfmt/text_parse.go``) plus the collector's own checks. A Python rendition for tests, since neither Go nor
node_exporter is installed here; each rule names the error text the Go side gives.

Parser: ``# HELP name text`` (escapes only ``\\\\`` and ``\\n``) and ``# TYPE name type`` with type one of
counter, gauge, histogram, summary, untyped ("unknown metric type"); at most one HELP and one TYPE per name,
TYPE before the samples ("second TYPE line for metric name ..., or TYPE reported after samples"); metric
names ``[a-zA-Z_:][a-zA-Z0-9_:]*``, label names ``[a-zA-Z_][a-zA-Z0-9_]*`` and not ``__name__``, no label twice
in a sample ("duplicate label names"), label values with escapes ``\\\\ \\" \\n`` only, a float value (Go's
ParseFloat: NaN, +Inf, -Inf). The collector refuses client-side timestamps and, when gathering, a series
(name and label set) seen twice ("was collected before with the same name and label values").
"""

from __future__ import annotations

import re

TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
METRIC = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({METRIC})(?:\{{((?:{LABEL}={VALUE},?)*)\}})?[ \t]+(\S+)(?:[ \t]+(\S+))?[ \t]*$")
PAIR = re.compile(rf"({LABEL})=({VALUE}),?")
FLOAT = re.compile(r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[Nn]a[Nn]|[Ii]nf(?:inity)?)$")


class Rejected(AssertionError):
    pass


def parse(text: str) -> dict[str, dict]:
    """The families of ``text`` as {name: {"type", "help", "series": {labels tuple: value}}}; Rejected if the
    collector would drop the file."""
    families: dict[str, dict] = {}

    def family(name: str) -> dict:
        return families.setdefault(name, {"type": None, "help": None, "series": {}})

    for number, line in enumerate(text.split("\n"), 1):
        where = f"line {number}: {line!r}"
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            tokens = line.lstrip()[1:].split(None, 2)
            if len(tokens) < 2 or tokens[0] not in ("HELP", "TYPE"):
                continue  # a plain comment
            keyword, name = tokens[0], tokens[1]
            if not re.fullmatch(METRIC, name):
                raise Rejected(f"invalid metric name in comment, {where}")
            rest = tokens[2] if len(tokens) > 2 else ""
            f = family(name)
            if keyword == "HELP":
                if f["help"] is not None:
                    raise Rejected(f"second HELP line for metric name {name!r}, {where}")
                if re.search(r"\\[^\\n]", rest):
                    raise Rejected(f"invalid escape sequence in help text, {where}")
                f["help"] = rest
            else:
                if f["type"] is not None or f["series"]:
                    raise Rejected(f"second TYPE line for metric name {name!r}, or TYPE reported after samples, "
                                   f"{where}")
                if rest.strip().lower() not in TYPES:
                    raise Rejected(f"unknown metric type {rest!r}, {where}")
                f["type"] = rest.strip().lower()
            continue
        match = SAMPLE.match(line)
        if not match:
            raise Rejected(f"invalid sample, {where}")
        name, pairs, value, timestamp = match.groups()
        if timestamp is not None:
            raise Rejected(f"textfile collector: client-side timestamps are not supported, {where}")
        if not FLOAT.match(value):
            raise Rejected(f"expected float as value, got {value!r}, {where}")
        labels = PAIR.findall(pairs or "")
        names = [k for k, _ in labels]
        if "__name__" in names:
            raise Rejected(f"label name '__name__' is reserved, {where}")
        if len(set(names)) != len(names):
            raise Rejected(f"duplicate label names for metric {name!r}, {where}")
        key = tuple(sorted(labels))
        f = family(name)
        if key in f["series"]:
            raise Rejected(f"collected metric {name} {dict(key)} was collected before with the same name and "
                           f"label values, {where}")
        f["series"][key] = float(value.replace("Inf", "inf").replace("NaN", "nan"))
    return families


def unquote(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value[1:-1])
