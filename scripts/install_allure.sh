#!/usr/bin/env bash
# Install the Allure command line (npm package allure-commandline) into the repository's node_modules,
# so `hilt report --allure` and `make report` build the Allure report offline. Idempotent: does
# nothing when the pinned version is already installed. Needs node/npm and Java 17 (Allure runs on the JVM).
set -euo pipefail

ALLURE_VERSION="${ALLURE_VERSION:-2.46.1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/node_modules/.bin/allure"

if [[ -x "$BIN" ]] && "$BIN" --version 2>/dev/null | grep -qx "$ALLURE_VERSION"; then
  echo "allure $ALLURE_VERSION already installed at $BIN"
  exit 0
fi

command -v npm >/dev/null || { echo "install_allure.sh: npm not found (apt-get install -y npm)" >&2; exit 1; }
command -v java >/dev/null || echo "install_allure.sh: warning: java not found; allure needs Java 8+ (17 recommended)" >&2

cd "$ROOT"
if [[ -f package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error --save-exact "allure-commandline@$ALLURE_VERSION"
fi
"$BIN" --version
