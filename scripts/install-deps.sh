#!/usr/bin/env bash
# Installs what Warren needs on Debian 12 (bookworm), as root: the system packages, and
# gVisor's runsc, built from gVisor's Go module at the version pinned in
# scripts/runsc.version and installed as /usr/local/bin/runsc.
# Idempotent: does nothing when everything is already there.
#
# The runsc build takes 1-3 minutes on 2 cores, once per pinned version: the binary is
# kept in $WARREN_RUNSC_CACHE/<commit>/runsc (default /var/cache/warren/runsc) and later
# runs only install it. With WARREN_RUNSC_BACKGROUND=1 (what `make run` sets) the build
# runs in the background, holding $WARREN_RUNSC_CACHE/build.lock until runsc is
# installed, so the base template build of `warren serve` runs beside it; warren serve
# waits for that lock before it starts its runtimes.
set -euo pipefail

need=()
# runc is the trusted-work driver (and the runc conformance suite).
want_pkgs=(debootstrap iproute2 nftables util-linux ca-certificates curl e2fsprogs procps kmod runc)
# What the test suite needs besides: PostgreSQL and Redis for the store and rate limiter
# suites, Python with httpx and pytest for the Python SDK, chromium for the console tests,
# matplotlib for the code interpreter's chart tests, ping for the network tests, git for the docs check,
# docker-registry for the OCI image pull tests (internal/template/oci), busybox-static for
# the image the template-from-OCI-image e2e test makes, prometheus (with
# promtool) for the observability suite, which starts its own prometheus and checks
# deploy/prometheus, systemd (systemd-analyze) for test/systemd's check of deploy/systemd's
# units. test/deps checks that every program the tree runs is here.
if [ "${WARREN_TEST_DEPS:-0}" = 1 ]; then
  want_pkgs+=(postgresql redis-server python3 python3-matplotlib python3-httpx python3-pytest python3-pytest-asyncio python3-venv python3-pip chromium iputils-ping git docker-registry busybox-static prometheus systemd)
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

if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "install-deps: apt-get update"
  apt-get update -qq || echo "install-deps: apt-get update reported errors (unreachable extra sources are ignored)"
  echo "install-deps: installing ${need[*]}"
  apt-get install -y -qq --no-install-recommends "${need[@]}"
else
  echo "install-deps: all system packages present"
fi

# --- runsc -------------------------------------------------------------------------
# Debian's runsc (0.0~20240729, bookworm-backports) cannot checkpoint a sandbox that has
# any TCP endpoint open (TIME_WAIT included), which pause and fork need, and needs the
# gVisor #10704 workaround; so runsc is built from gVisor's Go module. A Debian runsc
# already in /usr/bin stays, but /usr/local/bin comes first on PATH.
# The binary also has runsc's seccomp programs precompiled into it (scripts/runsc-seccomp.go,
# as gVisor's own release builds have; without them every sandbox start builds its filters),
# so it is cached by the pinned commit and a hash of that recipe.
runsc_version=$(tr -d ' \n' <"$(dirname "$0")/runsc.version")
runsc_seccomp=$(dirname "$0")/runsc-seccomp.go
runsc_cache=${WARREN_RUNSC_CACHE:-/var/cache/warren/runsc}
runsc_dest=${WARREN_RUNSC_BIN_DIR:-/usr/local/bin}/runsc

install_runsc() {
  if cmp -s "$runsc_bin" "$runsc_dest"; then
    echo "install-deps: runsc $runsc_version already installed at $runsc_dest"
    return
  fi
  # Replace, never write into, a binary that running sandboxes may have mapped.
  install -m 0755 "$runsc_bin" "$runsc_dest.new"
  mv -f "$runsc_dest.new" "$runsc_dest"
  echo "install-deps: installed runsc $runsc_version at $runsc_dest"
}

build_runsc() {
  local go tmp pid n start
  go=$(command -v go || true)
  [ -n "$go" ] || go=/usr/local/go/bin/go
  if [ ! -x "$go" ]; then
    echo "install-deps: Go is needed to build runsc (gvisor.dev/gvisor/runsc@$runsc_version) but is not installed." >&2
    echo "install-deps: install Go $(sed -n 's/^go //p' "$(dirname "$0")/../go.mod") or newer from https://go.dev/dl/ into /usr/local/go" >&2
    echo "install-deps: (tar -C /usr/local -xzf go1.*.linux-amd64.tar.gz), or put its bin/ on PATH, then run this again." >&2
    return 1
  fi
  mkdir -p "$runsc_cache"
  rm -rf "$runsc_cache"/.build.* # what an interrupted build left
  tmp=$(mktemp -d "$runsc_cache/.build.XXXXXX")
  echo "install-deps: building runsc $runsc_version with $go (2-4 minutes, once per version; log: $runsc_cache/build.log)"
  start=$(date +%s)
  # Built from a writable copy of the module (go install gvisor.dev/gvisor/runsc@version
  # builds the same sources, but cannot take the precompiled seccomp programs), with the
  # module version stamped in, which runsc --version prints (gvisor.ReadVersion reads it).
  # -v names each package as it is compiled: the count is the progress shown.
  (
    set -e
    export HOME=${HOME:-/root} CGO_ENABLED=0 GOFLAGS=-mod=readonly
    mod=$(cd "$tmp" && "$go" mod download -json "gvisor.dev/gvisor@$runsc_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -d "$mod" ] || { echo "go mod download gvisor.dev/gvisor@$runsc_version gave no module directory"; exit 1; }
    cp -r "$mod" "$tmp/src"
    chmod -R u+w "$tmp/src"
    cp "$runsc_seccomp" "$tmp/src/warren-seccomp.go"
    cd "$tmp/src"
    echo "precompiling runsc's seccomp programs (about a minute)"
    "$go" run ./warren-seccomp.go
    "$go" build -v -trimpath -ldflags "-X gvisor.dev/gvisor/runsc/version.version=$runsc_version" -o "$tmp/runsc" ./runsc
  ) >"$runsc_cache/build.log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15
    if kill -0 "$pid" 2>/dev/null; then
      n=$(grep -c '^[a-z]' "$runsc_cache/build.log" || true)
      echo "install-deps: building runsc: $((  $(date +%s) - start ))s, $n packages compiled"
    fi
  done
  if ! wait "$pid" || [ ! -x "$tmp/runsc" ]; then
    echo "install-deps: building runsc failed; the end of $runsc_cache/build.log:" >&2
    tail -n 20 "$runsc_cache/build.log" >&2
    rm -rf "$tmp"
    return 1
  fi
  mkdir -p "$runsc_dir"
  mv -f "$tmp/runsc" "$runsc_bin"
  rm -rf "$tmp"
  echo "install-deps: built runsc $runsc_version in $(( $(date +%s) - start ))s ($runsc_bin)"
}

# The recipe: the generator and the build steps as bash holds them (comments aside).
runsc_recipe=$( { cat "$runsc_seccomp"; declare -f build_runsc; } | sha256sum | cut -c1-12)
runsc_dir=$runsc_cache/${runsc_version##*-}-$runsc_recipe # the pseudo-version's commit, the recipe
runsc_bin=$runsc_dir/runsc

if [ -x "$runsc_bin" ]; then
  install_runsc
  rm -f "$runsc_cache/build.failed"
elif [ "${WARREN_RUNSC_BACKGROUND:-0}" = 1 ]; then
  # The lock is taken here and held by the background job (it inherits fd 9) until
  # runsc is installed, so a warren serve started right after cannot miss it.
  mkdir -p "$runsc_cache"
  exec 9>"$runsc_cache/build.lock"
  flock 9
  # A failed build leaves build.failed beside the lock; warren serve reports it.
  ( if { [ -x "$runsc_bin" ] || build_runsc; } && install_runsc; then rm -f "$runsc_cache/build.failed"; else
      echo "runsc $runsc_version was not built or installed; see $runsc_cache/build.log and run scripts/install-deps.sh" >"$runsc_cache/build.failed"
      echo "install-deps: runsc is NOT installed: run scripts/install-deps.sh again to see why" >&2
    fi ) &
  exec 9>&-
  echo "install-deps: runsc is building in the background; warren serve waits for it before starting sandboxes"
  exit 0
else
  mkdir -p "$runsc_cache"
  exec 9>"$runsc_cache/build.lock"
  flock 9
  # Another install-deps may have built it while this one waited for the lock.
  if [ ! -x "$runsc_bin" ]; then build_runsc; fi
  install_runsc
  rm -f "$runsc_cache/build.failed"
  exec 9>&-
fi
echo "install-deps: done"
