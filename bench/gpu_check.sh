#!/usr/bin/env bash
# GPU check (issues 6, 7 and 17): the fabric parsers, the probes, nvbandwidth and dcgmi diag -r 1 (where
# installed) on a real NVIDIA GPU. See bench/gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec timeout 420 "$PY" bench/gpu_check.py
