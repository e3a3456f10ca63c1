#!/usr/bin/env bash
# SIGTERM during a run drains it: exit 0, lost 0. The test waits until the
# metrics endpoint shows items flowing, then signals. A topology without a
# stream runs until a signal; a second signal during a slow drain cancels
# (exit 130).
set -euo pipefail
tool=$1
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2> /dev/null; rm -rf "$dir"' EXIT

fail() { echo "FAIL: $*" >&2; [ -f "$dir/err" ] && cat "$dir/err" >&2; exit 1; }

cat > "$dir/slow.toml" <<'TOML'
[system]
threads = 2
shutdown = "20s"

[actors.numbers]
kind = "test_numbers"
count = 100000000
interval = "1ms"
next = "pass"

[actors.pass]
kind = "test_pass"
next = "sink"

[actors.sink]
kind = "test_sink"
TOML

# Prints the sink's in count from the endpoint named on stderr (empty until
# there is one).
sink_count() {
  python3 - "$dir/err" <<'PY'
import re, sys, urllib.request
m = re.search(r"metrics: (http://\S+)", open(sys.argv[1]).read())
if not m:
    sys.exit(0)
try:
    body = urllib.request.urlopen(m.group(1), timeout=10).read().decode()
except OSError:
    sys.exit(0)
m = re.search(r'^troupe_actor_in_total\{actor="sink",kind="test_sink"\} (\d+)$', body, re.M)
print(m.group(1) if m else "")
PY
}

# Waits (bounded) until items reached the sink.
await_progress() {
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2> /dev/null || fail "troupe run ended early"
    n=$(sink_count)
    [ -n "$n" ] && [ "$n" -gt 0 ] && return 0
    sleep 0.1
  done
  fail "no progress on the metrics endpoint"
}

"$tool" run "$dir/slow.toml" --report json --metrics 127.0.0.1:0 \
  > "$dir/report.json" 2> "$dir/err" &
pid=$!
await_progress
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ $status -eq 0 ] || fail "exit $status after SIGTERM"
python3 - "$dir/report.json" <<'PY' || fail "report: $(cat "$dir/report.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["exit_code"] == 0, r
assert r["outcome"] == "drained after a signal", r["outcome"]
assert r["lost"] == 0, r["lost"]
actors = {a["name"]: a for a in r["actors"]}
assert actors["sink"]["in"] > 0
assert actors["sink"]["in"] == actors["numbers"]["out"], (actors["sink"], actors["numbers"])
PY
grep -q "SIGTERM: shutting down gracefully" "$dir/err" || fail "no notice of the signal"

# Without a stream, a run lasts until a signal.
cat > "$dir/service.toml" <<'TOML'
[actors.echo]
kind = "test_echo"
TOML
"$tool" run "$dir/service.toml" --report json --metrics :0 \
  > "$dir/report.json" 2> "$dir/err" &
pid=$!
for _ in $(seq 1 600); do
  grep -q "running until a signal" "$dir/err" && break
  kill -0 "$pid" 2> /dev/null || fail "troupe run ended without a signal"
  sleep 0.1
done
kill -0 "$pid" 2> /dev/null || fail "troupe run ended without a signal"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ $status -eq 0 ] || fail "exit $status after SIGTERM without a stream"
grep -q '"outcome": "drained after a signal"' "$dir/report.json" || fail "report: $(cat "$dir/report.json")"

# A second signal while a slow stage drains what it holds cancels the run.
cat > "$dir/slow_drain.toml" <<'TOML'
[system]
threads = 2
shutdown = "60s"

[actors.numbers]
kind = "test_numbers"
count = 100000000
interval = "1ms"
next = "pass"

[actors.pass]
kind = "test_pass"
delay = "100ms"
credit = 64
next = "sink"

[actors.sink]
kind = "test_sink"
TOML
"$tool" run "$dir/slow_drain.toml" --report json --metrics :0 \
  > "$dir/report.json" 2> "$dir/err" &
pid=$!
await_progress
kill -TERM "$pid"
for _ in $(seq 1 600); do
  grep -q "shutting down gracefully" "$dir/err" && break
  sleep 0.1
done
kill -INT "$pid"
status=0
wait "$pid" || status=$?
pid=
[ $status -eq 130 ] || fail "exit $status after a second signal"
python3 - "$dir/report.json" <<'PY' || fail "report: $(cat "$dir/report.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["exit_code"] == 130 and r["outcome"] == "cancelled by a second signal", r
PY
echo "ok"
