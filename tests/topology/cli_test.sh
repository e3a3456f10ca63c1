#!/usr/bin/env bash
# The command line: check, graph, run --report json, kinds, --help and
# --version, through a `troupe` with the test kinds registered ($1) and the
# installed-style `troupe` itself ($2).
set -euo pipefail
tool=$1
troupe=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$dir/ok.toml" <<'TOML'
[system]
threads = 2

[supervisors.work]

[actors.numbers]
kind = "test_numbers"
supervisor = "work"
count = 2000
next = "pass"

[actors.pass]
kind = "test_pass"
supervisor = "work"
next = "sink"

[actors.sink]
kind = "test_sink"
TOML

cat > "$dir/bad.toml" <<'TOML'
[actors.numbers]
kind = "test_numbrs"
next = "sink"
TOML

# check: ok, and an invalid file with its errors on stderr and exit 2.
out=$("$tool" check "$dir/ok.toml")
[ "$out" = "$dir/ok.toml: ok (3 actors, 2 supervisors)" ] || fail "check ok: $out"
status=0
"$tool" check "$dir/bad.toml" > "$dir/out" 2> "$dir/err" || status=$?
[ $status -eq 2 ] || fail "check bad: exit $status"
grep -q "^$dir/bad.toml:2:8: .*test_numbrs" "$dir/err" || fail "check bad: $(cat "$dir/err")"
[ ! -s "$dir/out" ] || fail "check bad wrote to stdout"
status=0
"$tool" check "$dir/missing.toml" 2> "$dir/err" || status=$?
[ $status -eq 2 ] || fail "check of a missing file: exit $status"

# graph: DOT on stdout.
"$tool" graph "$dir/ok.toml" > "$dir/g.dot"
grep -q '^digraph ' "$dir/g.dot" || fail "graph: $(head -3 "$dir/g.dot")"
grep -q 'cluster_work' "$dir/g.dot" || fail "graph has no cluster for work"
status=0
"$tool" graph "$dir/bad.toml" > /dev/null 2>&1 || status=$?
[ $status -eq 2 ] || fail "graph bad: exit $status"

# run --report json: the counts, lost 0, exit 0; no view when not asked for.
"$tool" run "$dir/ok.toml" --report json > "$dir/report.json" 2> "$dir/err" \
  || fail "run: exit $? $(cat "$dir/err")"
python3 - "$dir/report.json" <<'PY' || fail "run report: $(cat "$dir/report.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["exit_code"] == 0 and r["outcome"] == "drained", r["outcome"]
assert r["lost"] == 0
assert r["totals"]["emitted"] == 2000 and r["totals"]["consumed"] == 2000
actors = {a["name"]: a for a in r["actors"]}
assert actors["sink"]["in"] == 2000 and actors["pass"]["supervisor"] == "work"
assert actors["root"]["kind"] == "supervisor"
PY
grep -q "drained, lost 0" "$dir/err" || fail "run summary: $(cat "$dir/err")"

# A root supervisor that gives up: exit 1.
cat > "$dir/crash.toml" <<'TOML'
[supervisor]
max_restarts = 1
period = "1m"

[actors.numbers]
kind = "test_numbers"
next = "crash"

[actors.crash]
kind = "test_crash"
next = "sink"

[actors.sink]
kind = "test_sink"
TOML
status=0
"$tool" run "$dir/crash.toml" --report json > "$dir/report.json" 2> "$dir/err" || status=$?
[ $status -eq 1 ] || fail "a root that gives up: exit $status $(cat "$dir/err")"
grep -q '"exit_code": 1' "$dir/report.json" || fail "a root that gives up: $(cat "$dir/report.json")"

# --view off a terminal: plain timestamped blocks on stderr.
"$tool" run "$dir/ok.toml" --view --view-interval 10ms > /dev/null 2> "$dir/err" \
  || fail "run --view: exit $?"
grep -q '^\[[0-9:]*\] troupe run ' "$dir/err" || fail "run --view: $(cat "$dir/err")"
grep -q 'numbers ' "$dir/err" || fail "run --view shows no actor"

# Usage errors exit with 2.
for args in "run" "run $dir/ok.toml --report xml" "run $dir/ok.toml --view-interval 5x" \
            "frobnicate" "run $dir/ok.toml --view --no-view"; do
  status=0
  # shellcheck disable=SC2086
  "$tool" $args > /dev/null 2>&1 || status=$?
  [ $status -eq 2 ] || fail "'$args': exit $status"
done

# An empty metrics address is a usage error, not "no metrics".
status=0
"$tool" run "$dir/ok.toml" --metrics '' > /dev/null 2> "$dir/err" || status=$?
[ $status -eq 2 ] || fail "--metrics '': exit $status"
grep -q -- "--metrics" "$dir/err" || fail "--metrics '': $(cat "$dir/err")"

# The address printed is the one bound: "0" is 0.0.0.0, port 0 a real port.
"$tool" run "$dir/ok.toml" --metrics 0:0 > /dev/null 2> "$dir/err" \
  || fail "--metrics 0:0: exit $? $(cat "$dir/err")"
grep -Eq '^metrics: http://0\.0\.0\.0:[1-9][0-9]*/metrics$' "$dir/err" \
  || fail "--metrics 0:0: $(cat "$dir/err")"

# A metrics address that cannot be used: exit 2, before running.
status=0
"$tool" run "$dir/ok.toml" --metrics 127.0.0.1:http > /dev/null 2> "$dir/err" || status=$?
[ $status -eq 2 ] || fail "bad metrics address: exit $status"
grep -q "metrics" "$dir/err" || fail "bad metrics address: $(cat "$dir/err")"

# kinds: the registered ones, with summaries.
"$tool" kinds | grep -q '^test_numbers .*test source of integers' \
  || fail "kinds: $("$tool" kinds)"

# --help everywhere, --version.
"$troupe" --help | grep -q 'check' || fail "troupe --help"
"$troupe" run --help | grep -q -- '--metrics' || fail "troupe run --help"
"$troupe" run --help | grep -q -- '--view-interval' || fail "troupe run --help"
"$troupe" check --help | grep -q 'FILE' || fail "troupe check --help"
"$troupe" graph --help | grep -q 'DOT' || fail "troupe graph --help"
"$troupe" kinds --help > /dev/null || fail "troupe kinds --help"
"$troupe" --version | grep -q '^troupe [0-9]' || fail "troupe --version"
# Every way to each exit code is listed.
"$troupe" run --help > "$dir/help"
for phrase in "root supervisor gave" "overran its deadline" "killed actors" \
              "no final report" "130 a run cancelled by a second signal" \
              "2 an invalid file"; do
  tr '\n' ' ' < "$dir/help" | grep -q "$phrase" || fail "run --help lacks '$phrase'"
done
status=0
"$troupe" > /dev/null 2>&1 || status=$?
[ $status -eq 2 ] || fail "troupe without a command: exit $status"
echo "ok"
