#!/usr/bin/env bash
# Build (or reuse from ~/.cache/hilt/riscv) the RISC-V sim guest kernel and busybox/dropbear userland.
# Needs: apt-get install -y qemu-system-misc gcc-riscv64-linux-gnu linux-source-6.1 device-tree-compiler \
#        bc flex bison cpio make debian-archive-keyring
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec "$PY" -m hilt.sim.riscv.build "$@"
