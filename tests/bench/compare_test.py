#!/usr/bin/env python3
"""bench/compare.py's summary, on fixed lines instead of a run: the medians and
ratios it prints, the targets it marks met or not, and that lost items, a
checksum that differs from Tokio's or a failed program are reported with a
non-zero exit. No benchmark runs here.

usage: compare_test.py BENCH_COMPARE FIXTURE.jsonl
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

compare, fixture = sys.argv[1], Path(sys.argv[2])
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


def summarize(lines, out, gnuplot=None):
    src = out / "run.jsonl"
    src.write_text("".join(json.dumps(line) + "\n" for line in lines))
    env = dict(os.environ)
    if gnuplot is not None:
        env["GNUPLOT"] = gnuplot
    proc = subprocess.run([sys.executable, compare, "--summarize", str(src), "--out", str(out)],
                          capture_output=True, text=True, env=env)
    return proc, (out / "run.md").read_text() if (out / "run.md").exists() else ""


def table_row(md, *first_cells):
    """The cells of the first Markdown table row starting with these cells."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:len(first_cells)] == list(first_cells):
            return cells
    return None


original = [json.loads(l) for l in fixture.read_text().splitlines() if l.strip()]

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)

    # The fixture as it is: every check passes, some targets are not met.
    out = tmp / "ok"
    out.mkdir()
    proc, md = summarize(original, out)
    check(proc.returncode == 0, f"clean lines exit 0 (got {proc.returncode}: {proc.stderr})")
    check(md != "" and (out / "latest.md").read_text() == md, "run.md written, copied to latest.md")
    check(proc.stdout.strip() == md.strip(), "the summary is printed on stdout too")

    # workload | troupe | CAF | Tokio | peer | troupe/Tokio | >= 1 | troupe/CAF | CAF/troupe <= 1.5
    row = table_row(md, "pipeline")
    check(row is not None and row[1:9] == ["3 M", "4 M", "6 M", "tokio", "0.50", "**not met**",
                                           "0.75", "met"],
          f"pipeline: medians 3 M / 4 M / 6 M, troupe/Tokio 0.50 not met, troupe/CAF 0.75 met: {row}")
    check(row is not None and row[9] == "60 M (0.050)", f"pipeline: tokio-tuned beside: {row}")
    row = table_row(md, "breaker")
    check(row is not None and row[1:9] == ["4 M", "8 M", "2 M", "tokio-service", "2.00", "met",
                                           "0.50", "**not met**"],
          f"breaker: judged against tokio-service, CAF 2x faster is not met: {row}")
    check(row is not None and row[10] == "80 M", f"breaker: in-process tokio beside: {row}")
    throughput = md.split("## Throughput")[1].split("## Extra")[0]
    for w in ("batcher_latency", "limiter", "breaker_trip", "shutdown", "spawn"):
        check(table_row(throughput, w) is None, f"{w}: not judged by items/s")

    row = table_row(md, "batcher_latency", "p99_ms")
    check(row is not None and row[2] == "5.5" and row[3] == "5.2 / 5.5 / 7" and row[-1] == "met",
          f"batcher_latency p99 median 5.5 <= 6 met, rounds shown: {row}")
    row = table_row(md, "limiter", "rate_error")
    check(row is not None and row[2] == "0.02" and row[-1] == "**not met**",
          f"limiter rate_error 2 % not met: {row}")
    row = table_row(md, "limiter", "max_in_10ms")
    check(row is not None and row[2] == "296" and row[-1] == "met", f"limiter max_in_10ms: {row}")
    row = table_row(md, "shutdown", "shutdown_ms")
    check(row is not None and row[2] == "250" and row[-1] == "**not met**",
          f"shutdown 250 ms not met: {row}")
    row = table_row(md, "spawn", "rss_kb_per_actor")
    check(row is not None and row[2] == "3.2" and row[5] == "0.22", f"spawn memory reported: {row}")
    row = table_row(md, "pipeline", "max_in_flight")
    check(row is not None and row[5] == "516 (tuned 640)", f"extra field of tokio-tuned: {row}")
    # remote: Tokio has no such workload; shown without a Tokio figure or
    # ratio, beside plain CAF, its checksum compared with Tokio's pipeline
    # (the same items).
    row = table_row(throughput, "remote")
    check(row is not None and row[1:9] == ["1.2 M", "300 k", "—", "none", "—", "—", "4.00",
                                           "met"],
          f"remote: troupe's and CAF's medians, no Tokio peer, no troupe/Tokio: {row}")
    check("No Tokio counterpart (peer none): remote" in throughput,
          "remote: said to have no Tokio counterpart")
    row = table_row(md, "remote", "ratio_to_local")
    check(row is not None and row[2] == "0.45" and row[3] == "0.4 / 0.5 / 0.45"
          and row[4] == "0.2" and row[5] == "—",
          f"remote: ratio_to_local median and rounds, CAF's, no Tokio: {row}")
    row = table_row(md, "remote", "local_items_per_s")
    check(row is not None and row[2] == "2.7 M", f"remote: local_items_per_s: {row}")
    row = table_row(md, "remote", "wide_items_per_s")
    check(row is not None and row[2] == "4.2 M", f"remote: wide_items_per_s: {row}")
    checks = md.split("## Checks")[1]
    check("remote" in checks.splitlines()[2] and "no Tokio" not in checks,
          f"remote: checksum compared with Tokio's pipeline: {checks.splitlines()[2]}")

    check("Test CPU 3000, 2 cores, 24 GiB" in md and "2026-01-02" in md and "abc1234" in md,
          "machine, date and commit in the summary")
    check("breaker_trip" in md and "CHECKSUM" not in md,
          "breaker_trip and limiter checksums agree though their item counts differ")

    if shutil.which("gnuplot"):
        svg = out / "run.svg"
        check(svg.exists() and "<svg" in svg.read_text() and "pipeline" in svg.read_text(),
              "the chart is an SVG naming the workloads")
        check((out / "latest.svg").read_bytes() == svg.read_bytes(), "copied to latest.svg")
        check("remote" in svg.read_text(), "remote charted by its troupe/CAF ratio alone")
        check("![throughput ratios](run.svg)" in md, "the summary shows the chart")
    else:
        print("skip  gnuplot not installed: chart not checked")

    # Without gnuplot the summary still comes, the chart is skipped with a message.
    out = tmp / "nognuplot"
    out.mkdir()
    proc, md = summarize(original, out, gnuplot=str(tmp / "no-such-gnuplot"))
    check(proc.returncode == 0 and not (out / "run.svg").exists() and "chart skipped" in md
          and "chart skipped" in proc.stderr, "gnuplot missing: exit 0, chart skipped, said so")

    # A troupe line whose checksum differs from Tokio's for the same items.
    bad = [dict(l) for l in original]
    for l in bad:
        if l.get("impl") == "troupe" and l.get("workload") == "pipeline" and l.get("round") == 2:
            l["checksum"] = "00000000000abcdf"
    out = tmp / "checksum"
    out.mkdir()
    proc, md = summarize(bad, out)
    check(proc.returncode == 1 and "CHECKSUM MISMATCH: troupe pipeline round 2" in md,
          f"a checksum mismatch is reported, exit 1 (got {proc.returncode})")

    # A remote line whose checksum differs from Tokio's pipeline.
    bad = [dict(l) for l in original]
    for l in bad:
        if l.get("impl") == "troupe" and l.get("workload") == "remote" and l.get("round") == 1:
            l["checksum"] = "00000000000abcdf"
    out = tmp / "remote"
    out.mkdir()
    proc, md = summarize(bad, out)
    check(proc.returncode == 1 and "CHECKSUM MISMATCH: troupe remote round 1" in md
          and "Tokio's pipeline" in md,
          f"a remote checksum off Tokio's pipeline is reported, exit 1 (got {proc.returncode})")

    # A limiter line whose checksum is not the sum of the items let through.
    bad = [dict(l) for l in original]
    for l in bad:
        if l.get("impl") == "troupe" and l.get("workload") == "limiter" and l.get("round") == 1:
            l["items"] += 1
    out = tmp / "limiter"
    out.mkdir()
    proc, md = summarize(bad, out)
    check(proc.returncode == 1 and "CHECKSUM MISMATCH: troupe limiter round 1" in md,
          f"a limiter checksum off its item count is reported, exit 1 (got {proc.returncode})")

    # Lost items on any line, even Tokio's.
    bad = [dict(l) for l in original]
    for l in bad:
        if l.get("impl") == "caf" and l.get("workload") == "breaker" and l.get("round") == 3:
            l["lost"] = 3
    out = tmp / "lost"
    out.mkdir()
    proc, md = summarize(bad, out)
    check(proc.returncode == 1 and "LOST ITEMS: caf breaker round 3 lost 3" in md,
          f"lost > 0 is reported, exit 1 (got {proc.returncode})")

    # A program that failed in one round.
    bad = [dict(l) for l in original]
    for l in bad:
        if l.get("run") == "troupe-bench" and l.get("round") == 2:
            l["exit"] = 1
    out = tmp / "failed"
    out.mkdir()
    proc, md = summarize(bad, out)
    check(proc.returncode == 1 and "PROGRAM FAILED: troupe-bench round 2 exited 1" in md,
          f"a failed program is reported, exit 1 (got {proc.returncode})")

print("all checks passed" if not failures else f"{len(failures)} checks failed")
sys.exit(1 if failures else 0)
