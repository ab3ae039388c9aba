#!/usr/bin/env bash
# Install everything hilt needs on a fresh Debian 12 machine: system packages, a virtualenv, the
# package with its extras, and the Allure command line. Idempotent: a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(openssh-server openssh-client iproute2 etcd-server etcd-client chromium chromium-driver
              device-tree-compiler qemu-system-misc gcc-riscv64-linux-gnu linux-source-6.1 bc flex bison cpio
              make debian-archive-keyring prometheus-node-exporter
              gcc libc6-dev    # host compiler + headers: the RISC-V kernel build compiles its host tools (fixdep)
              postgresql)      # the history tests start a real PostgreSQL server (initdb, pg_ctl)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Java (for the Allure command line) and npm may come from elsewhere (a JDK, nodesource's nodejs, which
# conflicts with Debian's npm): install Debian's packages only when the commands are missing.
command -v java >/dev/null || missing+=(default-jre-headless)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" prometheus-node-exporter "* ]] && command -v systemctl >/dev/null; then
    # only a test tool here (metrics.prom against the real textfile collector): no daemon on :9100
    systemctl disable --now prometheus-node-exporter >/dev/null 2>&1 || true
  fi
fi

# A Debian root made by debootstrap (a container, a CI image) may have no /etc/hosts, which every installed
# Debian has: the simulated nodes bind their own hosts file over it, so it must exist. Debian's default content.
if [ ! -e /etc/hosts ] && [ "$(id -u)" -eq 0 ]; then
  echo "setup: /etc/hosts is missing: writing Debian's default (localhost) so the simulated nodes can mount theirs"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n' \
    > /etc/hosts
fi

# Debian's own python3 (3.11.2 on Debian 12) when present: the oldest Python that requires-python admits is the
# one CI proves, not a newer one that happens to be first on PATH (tarfile's filter= is 3.11.4+, for one).
if [ -z "${PYTHON:-}" ]; then
  if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
want=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')
if [ -x .venv/bin/python ] && [ "$(.venv/bin/python -c 'import sys; print(sys.version.split()[0])')" != "$want" ]; then
  echo "setup: .venv runs another Python than $PYTHON ($want): recreating it"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.hilt-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  # Exact torch on purpose: 2.13.0 is the CPU build whose wheel lies on this kind of machine (/opt/wheels); an
  # unpinned torch resolves to the multi-GB CUDA build from the index. The package itself pins nothing
  # (hilt[probes] asks torch>=2.1): the controller never imports torch, the nodes' probes do.
  .venv/bin/pip install -q 'torch==2.13.0'
  # every extra: the simulated rack, probes, etcd leases, change-point reports, the PostgreSQL history, the kubelet's
  # gRPC (test_kubernetes), the linter
  .venv/bin/pip install -q -e '.[sim,probes,etcd,report,postgres,k8s,dev]'
  touch "$stamp"
fi

if [ -x scripts/install_allure.sh ]; then
  scripts/install_allure.sh
fi
