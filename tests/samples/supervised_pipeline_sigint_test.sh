#!/usr/bin/env bash
# The sample shuts down gracefully on SIGINT: it is started with a threshold it
# never reaches, interrupted once it runs, and must exit 0 with nothing lost.
set -euo pipefail
sample=$1
out=$(mktemp)
trap 'rm -f "$out"; kill -9 "$pid" 2>/dev/null || true' EXIT
"$sample" --items-before-shutdown=18446744073709551615 >"$out" 2>&1 &
pid=$!
# Wait (bounded) for the line that says the pipeline runs.
for _ in $(seq 1 300); do
  grep -q "pipeline running" "$out" && break
  kill -0 "$pid" 2>/dev/null || { cat "$out"; exit 1; }
  sleep 0.1
done
grep -q "pipeline running" "$out" || { echo "sample never started"; cat "$out"; exit 1; }
kill -INT "$pid"
status=0
wait "$pid" || status=$?
cat "$out"
[ "$status" -eq 0 ] || { echo "exit status $status"; exit 1; }
grep -q "checksum ok; lost 0; dropped 0" "$out"
grep -q "shutting down gracefully" "$out"
