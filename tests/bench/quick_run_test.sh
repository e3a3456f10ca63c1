#!/usr/bin/env bash
# The benchmark program as a smoke test: `troupe-bench --quick --baseline`
# finishes and prints one valid JSON line per workload for troupe and one for
# its plain CAF baseline, each with lost 0, and the two agree on the checksum
# (they do the same work). `remote` (the pipeline with its sink in a second
# process) has the pipeline's checksum and its ratio to the local run, and
# no process is left behind. No timing is judged here; the figures
# belong to bench/.
set -euo pipefail
bench=$1
out=$(mktemp)
pid=
# Its own process group, so that whatever it started can be found after it,
# and killed with it if this script ends first (a timeout, a failure).
trap '[ -z "$pid" ] || kill -9 -- -"$pid" 2>/dev/null || true; rm -f "$out"' EXIT
setsid "$bench" --quick --baseline > "$out" &
pid=$!
wait $pid
left=$(pgrep -g $pid || true)
if [ -n "$left" ]; then
    echo "processes left behind by troupe-bench: $left" >&2
    kill -9 $left 2>/dev/null || true
    exit 1
fi
python3 - "$out" <<'PY'
import json, sys
expected = {"pipeline", "fanout", "pool", "pool_skewed", "batcher", "batcher_latency",
            "limiter", "breaker", "breaker_trip", "state", "shutdown", "spawn", "remote"}
lines = {"troupe": {}, "caf": {}}
for n, line in enumerate(open(sys.argv[1]), 1):
    r = json.loads(line)
    for key in ("impl", "workload", "items", "seconds", "items_per_s", "checksum", "lost"):
        assert key in r, f"line {n}: no {key}: {line}"
    assert r["impl"] in lines, f"line {n}: impl {r['impl']}"
    assert r["lost"] == 0, f"line {n}: lost {r['lost']}"
    assert len(r["checksum"]) == 16, f"line {n}: checksum {r['checksum']}"
    seen = lines[r["impl"]]
    assert r["workload"] not in seen, f"line {n}: a second {r['impl']} {r['workload']} line"
    seen[r["workload"]] = r
for impl, seen in lines.items():
    missing = expected - set(seen)
    assert not missing, f"no {impl} line for {sorted(missing)}"
for name in sorted(expected):
    ours, theirs = lines["troupe"][name], lines["caf"][name]
    if name == "limiter":
        # What passes depends on timing; both let through 0, 1, 2, ... in order.
        for r in (ours, theirs):
            k = r["items"]
            assert int(r["checksum"], 16) == k * (k - 1) // 2, f"limiter {r['impl']}: {r}"
    else:
        assert ours["checksum"] == theirs["checksum"], \
            f"{name}: troupe checksum {ours['checksum']}, caf {theirs['checksum']}"
for impl, seen in lines.items():
    remote, local = seen["remote"], seen["pipeline"]
    assert remote["items"] == local["items"] and remote["checksum"] == local["checksum"], \
        f"{impl} remote: {remote['items']} items, checksum {remote['checksum']}; pipeline {local}"
    assert remote["checksums_agree"] == "yes", f"{impl} remote: {remote}"
    assert remote["local_items_per_s"] > 0 and remote["ratio_to_local"] > 0, \
        f"{impl} remote: {remote}"
assert lines["troupe"]["remote"]["wide_items_per_s"] > 0, lines["troupe"]["remote"]
print(f"{len(expected)} workloads on troupe and plain CAF, lost 0, checksums agree")
PY
