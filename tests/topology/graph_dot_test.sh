#!/usr/bin/env bash
# `troupe graph` output is accepted by Graphviz: names that need quoting,
# nested supervisors, service edges. Skipped (77) without `dot`.
set -euo pipefail
tool=$1
command -v dot > /dev/null || { echo "dot not installed: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/g.toml" <<'TOML'
[supervisors.'ingest "edge"']
strategy = "rest_for_one"

[supervisors.empty]

[actors.'source {1}; -> "x" \ y']
kind = "test_numbers"
supervisor = 'ingest "edge"'
next = ["call", "sink"]

[actors.call]
kind = "test_call"
service = "echo"
next = "sink"

[actors.echo]
kind = "test_echo"

[actors."sink\nline"]
kind = "test_sink"

[actors.sink]
kind = "test_sink"
TOML
# The unused sink is fine for check; only graph matters here.
"$tool" graph "$dir/g.toml" > "$dir/g.dot" || {
  echo "FAIL: troupe graph exit $?" >&2; exit 1; }
dot -Tsvg "$dir/g.dot" > "$dir/g.svg" 2> "$dir/err" || {
  echo "FAIL: dot rejected it: $(cat "$dir/err")" >&2; cat "$dir/g.dot" >&2; exit 1; }
[ ! -s "$dir/err" ] || { echo "FAIL: dot warned: $(cat "$dir/err")" >&2; exit 1; }
grep -q '<svg' "$dir/g.svg" || { echo "FAIL: no svg" >&2; exit 1; }
echo "ok"
