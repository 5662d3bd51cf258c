#!/usr/bin/env bash
# Install everything the tests need on Debian/Ubuntu (servers, browser, Python packages) and run them.
# Usage: ./scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"

# Real servers for the integration tests (their services are not started: the tests start their
# own), openssl, which makes the certificates of the TLS tests, and chromium, the browser the link
# page tests drive through Playwright (Debian's build: `playwright install` downloads its own).
packages="mosquitto influxdb postgresql python3-venv openssl chromium"
missing=""
for pkg in $packages; do dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"; done
if [ -n "$missing" ]; then
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  # Debian starts the packaged daemons (and a PostgreSQL cluster); the tests run their own on free
  # ports from the same binaries.
  $sudo_cmd systemctl disable --now mosquitto influxdb postgresql >/dev/null 2>&1 || true
  # Without systemd (a container), the package started its cluster through pg_ctlcluster.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h | while read -r version cluster _; do
      $sudo_cmd pg_ctlcluster "$version" "$cluster" stop >/dev/null 2>&1 || true
    done
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'

.venv/bin/ruff check .
.venv/bin/mypy
# One pytest worker per core, two at least (pytest-xdist): every test starts its own servers on free
# ports in its own directories, so they run side by side. On a slow 2-core machine the suite takes
# 14 min this way and 35 min in one process. `-n 0` among the arguments runs it in one.
workers=$(nproc)
[ "$workers" -ge 2 ] || workers=2
# pytest-timeout bounds each test; this bounds the whole run should anything still hang (25 min:
# with the install, within CI's 30; the suite takes 14 min on a slow machine).
timeout --kill-after=30 1500 .venv/bin/python -m pytest -n "$workers" "$@"
