#!/usr/bin/env bash
# Runs every Go fuzz target in the main module for a bounded time each (FUZZTIME, 15s by
# default), one after another. The seed corpora live in the repository
# (<package>/testdata/fuzz/<Target>/) and also run as plain tests in `go test`. With
# --save, the inputs a run found interesting are copied into those folders (at most
# FUZZ_KEEP per target, 40 by default) so the corpus grows with the code.
# A failing input is written by go test to testdata/fuzz/<Target>/ and the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-15s}"
keep="${FUZZ_KEEP:-40}"
save=0
[ "${1:-}" = "--save" ] && save=1
cache="$(go env GOCACHE)/fuzz/github.com/warren-sh/warren"
targets=$(grep -rlE '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' --include='*_test.go' cmd internal | sort)
n=0
start=$(date +%s)
for file in $targets; do
  pkg="./$(dirname "$file")"
  for fn in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed 's/^func //'); do
    n=$((n + 1))
    echo "fuzz: $pkg $fn for $fuzztime"
    ok=0
    for try in 1 2 3; do
      if out=$(go test -count=1 -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
        ok=1
        break
      fi
      if echo "$out" | grep -q "Failing input written to"; then
        echo "$out" | tail -30
        echo "fuzz: FAIL: $fn in $pkg found a failing input (saved under $(dirname "$file")/testdata/fuzz/$fn/; 'go test -run $fn $pkg' replays it)"
        exit 1
      fi
      # No input to blame: the fuzzing engine itself failed (a worker that did not
      # start in time on a loaded machine). Say so, and try once more.
      echo "$out" | tail -15 | sed 's/^/  /'
      echo "fuzz: $fn: the fuzzing engine failed without a failing input (try $try of 3)"
    done
    if [ "$ok" != 1 ]; then
      echo "fuzz: FAIL: $fn in $pkg could not be fuzzed (see above)"
      exit 1
    fi
    echo "$out" | grep -E 'elapsed: .*execs' | tail -1 | sed 's/^/  /'
    if [ "$save" = 1 ] && [ -d "$cache/${pkg#./}/$fn" ]; then
      dst="$(dirname "$file")/testdata/fuzz/$fn"
      mkdir -p "$dst"
      ls "$cache/${pkg#./}/$fn" | head -n "$keep" | while read -r f; do cp "$cache/${pkg#./}/$fn/$f" "$dst/$f"; done
    fi
  done
done
if [ "$n" -lt 5 ]; then
  echo "fuzz: FAIL: found only $n fuzz targets; the search has gone blind"
  exit 1
fi
echo "fuzz: $n targets passed, $fuzztime each, $(( $(date +%s) - start )) s in all"
