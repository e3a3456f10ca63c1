#!/usr/bin/env bash
# `troupe graph` output is accepted by Graphviz: a file name that needs
# quoting, nested and empty supervisors, service edges. Skipped (77) without `dot`.
set -euo pipefail
tool=$1
command -v dot > /dev/null || { echo "dot not installed: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Actor names are plain; a file name may hold anything, and names the graph.
file="$dir/my \"odd\" {topology}; \\ file.toml"
cat > "$file" <<'TOML'
[supervisors.ingest]
strategy = "rest_for_one"

[supervisors.empty]

[supervisors.inner]
parent = "ingest"

[actors.source-1]
kind = "test_numbers"
supervisor = "ingest"
next = ["call", "sink"]

[actors.call]
kind = "test_call"
service = "echo"
next = "sink"

[actors.echo]
kind = "test_echo"

[actors.sink]
kind = "test_sink"
TOML
"$tool" graph "$file" > "$dir/g.dot" || {
  echo "FAIL: troupe graph exit $?" >&2; exit 1; }
dot -Tsvg "$dir/g.dot" > "$dir/g.svg" 2> "$dir/err" || {
  echo "FAIL: dot rejected it: $(cat "$dir/err")" >&2; cat "$dir/g.dot" >&2; exit 1; }
[ ! -s "$dir/err" ] || { echo "FAIL: dot warned: $(cat "$dir/err")" >&2; exit 1; }
grep -q '<svg' "$dir/g.svg" || { echo "FAIL: no svg" >&2; exit 1; }
grep -q 'cluster_inner' "$dir/g.svg" || { echo "FAIL: no cluster for inner" >&2; exit 1; }
echo "ok"
