#!/usr/bin/env bash
# Installs the system packages Warren needs on Debian 12 (bookworm), as root.
# Idempotent: does nothing when everything is already there.
set -euo pipefail

need=()
# runc is the trusted-work driver (and the runc conformance suite).
want_pkgs=(debootstrap iproute2 nftables util-linux ca-certificates curl e2fsprogs procps kmod runc)
# What the test suite needs besides: PostgreSQL and Redis for the store and rate limiter
# suites, Python with httpx and pytest for the Python SDK, chromium for the console tests,
# ping for the network tests, git for the docs check. test/deps checks that every program the tree runs is here.
if [ "${WARREN_TEST_DEPS:-0}" = 1 ]; then
  want_pkgs+=(postgresql redis-server python3 python3-httpx python3-pytest python3-pytest-asyncio python3-venv python3-pip chromium iputils-ping git)
fi
# Node.js and npm build the console (web/) and run the E2B SDK and browser suites; a
# machine that already has a node on PATH keeps it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  want_pkgs+=(nodejs npm)
fi
for p in "${want_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ -n "${WARREN_EXTRA_PKGS:-}" ]; then
  for p in $WARREN_EXTRA_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
fi

# bookworm's own runsc (2022) lacks the systrap platform; the backports build has it.
runsc_ok=0
if command -v runsc >/dev/null 2>&1 && runsc flags 2>&1 | grep -q systrap; then runsc_ok=1; fi
if [ "$runsc_ok" = 1 ] && [ "${#need[@]}" -eq 0 ]; then
  echo "install-deps: all system packages present"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# gVisor's runsc must come from bookworm-backports: bookworm's 2022 build has no systrap platform.
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "install-deps: adding bookworm-backports to apt sources"
  cat > /etc/apt/sources.list.d/warren-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
echo "install-deps: apt-get update"
apt-get update -qq || echo "install-deps: apt-get update reported errors (unreachable extra sources are ignored)"
if [ "${#need[@]}" -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [ "$runsc_ok" = 0 ]; then
  echo "install-deps: installing runsc from bookworm-backports"
  apt-get install -y -qq --no-install-recommends -t bookworm-backports runsc
fi
echo "install-deps: done"
