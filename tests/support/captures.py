"""Real captures edited the way a case needs that no capture shows (kept as edits, so the files stay as captured;
provenance: tests/data/corpus/PROVENANCE.md)."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"


def v02_with_waived(name: str) -> str:
    """The v0.2 full run as v0.2 prints it on a machine whose GPUs reach no peer: the peer testcase is waived with
    `Waiving <testcase>.` and a blank line (NVIDIA/nvbandwidth v0.2, nvbandwidth.cpp runTestcase)."""
    text = (CORPUS / "nvbandwidth" / "h800x8-v0.2-full-run-30-testcases-d2d-read-sm-labelled-ce.txt").read_text()
    start = text.index(f"Running {name}.")
    end = text.index("Running ", start + 1)
    return text[:start] + f"Waiving {name}.\n\n" + text[end:]
