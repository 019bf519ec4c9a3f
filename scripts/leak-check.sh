#!/usr/bin/env bash
# Fails when the test suite left anything behind: network namespaces and veths (of test
# servers, "wt..."/"wv...", and of the abuse suite's network lab, "wal..."), nftables
# tables, runsc sandboxes, mounts or cgroups of Warren test servers (names start "wt"),
# and mounts left under a Go test's temporary directory (/tmp/Test<Name><n>/), or the null-netns
# bind mount a current runsc pins in a --root under /tmp (doctor, bench), and prometheus
# processes of test/observability.
set -u
bad=0
say() { echo "leak-check: $*"; bad=1; }

# wal...: the abuse suite's network lab (test/abuse/network_test.go).
ns=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^(wt|wal)' || true)
[ -n "$ns" ] && say "network namespaces left: $ns"
veths=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(wv|wti|wte|wal)' || true)
[ -n "$veths" ] && say "veth interfaces left: $veths"
tables=$(nft list tables 2>/dev/null | awk '{print $3}' | grep -E '^wt' || true)
[ -n "$tables" ] && say "nftables tables left: $tables"
mounts=$(grep -E 'warren-test|/wt[a-z0-9]+/|/tmp/Test[A-Za-z]+[0-9]+/|/tmp/[^ ]*/null-netns ' /proc/mounts || true)
[ -n "$mounts" ] && say "mounts left: $mounts"
procs=$(ps -eo pid,args | grep -E 'runsc.*warren-test' | grep -v grep || true)
[ -n "$procs" ] && say "runsc processes left: $procs"
# test/observability's prometheus runs with its config in the test's temporary directory.
procs=$(ps -eo pid,args | grep -E 'prometheus --config.file=/tmp/Test' | grep -v grep || true)
[ -n "$procs" ] && say "prometheus processes left: $procs"
cg=$(ls -d /sys/fs/cgroup/*/wt* 2>/dev/null || true)
[ -n "$cg" ] && say "cgroups left: $cg"
if [ "$bad" = 0 ]; then echo "leak-check: clean (no namespaces, veths, tables, mounts, runsc or prometheus processes or cgroups left)"; fi
exit "$bad"
