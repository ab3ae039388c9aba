#!/usr/bin/env bash
# GPU check (issues 6 and 7): the fabric parsers and the probes on a real NVIDIA GPU. See bench/gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec timeout 280 "$PY" bench/gpu_check.py
