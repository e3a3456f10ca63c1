#!/usr/bin/env bash
# The benchmark program as a smoke test: `troupe-bench --quick` finishes and
# prints one valid JSON line per workload, each with lost 0. No timing is
# judged here; the figures belong to bench/.
set -euo pipefail
bench=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bench" --quick > "$out"
python3 - "$out" <<'PY'
import json, sys
expected = {"pipeline", "fanout", "pool", "pool_skewed", "batcher", "batcher_latency",
            "limiter", "breaker", "breaker_trip", "state", "shutdown", "spawn"}
seen = set()
for n, line in enumerate(open(sys.argv[1]), 1):
    r = json.loads(line)
    for key in ("impl", "workload", "items", "seconds", "items_per_s", "checksum", "lost"):
        assert key in r, f"line {n}: no {key}: {line}"
    assert r["lost"] == 0, f"line {n}: lost {r['lost']}"
    assert len(r["checksum"]) == 16, f"line {n}: checksum {r['checksum']}"
    seen.add(r["workload"])
missing = expected - seen
assert not missing, f"no line for {sorted(missing)}"
print(f"{len(seen)} workloads, lost 0")
PY
