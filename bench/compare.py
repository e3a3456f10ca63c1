#!/usr/bin/env python3
"""Compare troupe with the Tokio reference and with plain CAF actors.

Builds troupe-bench (release, in its own build dir) and the Tokio reference
(its build.sh), runs the two alternately for several rounds, and writes under
bench/results/: the raw JSON lines of every round (DATE.jsonl), a summary
(DATE.md: medians, ratios, extra fields, targets met or not, the machine) and
a chart of the throughput ratios (DATE.svg, drawn by gnuplot), plus copies
named latest.md and latest.svg that the README shows.

  bench/compare.py                     full comparison, 3 rounds
  bench/compare.py --quick pool state  a fast check of the script on two workloads
  bench/compare.py --summarize FILE.jsonl [--out DIR]
                                       only the summary and chart, from lines
                                       already taken (no build, no run)

The exit status is 1 when a line lost items, a checksum differs from Tokio's
for the same workload, or a program failed; a target that is not met is
reported, not an error. Progress goes to stderr, the summary to stdout.
See bench/README.md for the columns.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Spec order; the children run as part of their parent in some programs.
ORDER = ["pipeline", "fanout", "pool", "pool_skewed", "batcher", "batcher_latency",
         "limiter", "breaker", "breaker_trip", "state", "shutdown", "spawn", "remote"]
PARENT = {"pool_skewed": "pool", "breaker_trip": "breaker"}

# Workloads whose items/s says nothing about speed: they are paced by timers
# (batcher_latency, limiter, breaker_trip) or judged by their own fields.
NOT_THROUGHPUT = {"batcher_latency", "limiter", "breaker_trip", "shutdown", "spawn"}

# SPEC.md, Fairness: a shared resource reached by messages is the fair peer of
# an actor; the in-process figures are shown beside it.
SERVICE_PEER = {"breaker", "state"}

# Workloads the Tokio reference has no counterpart of: no Tokio figure, no
# troupe/Tokio ratio (the chart shows troupe/CAF alone). Each maps to the Tokio
# workload that moves the same items through the same steps, whose checksum
# its lines must equal (`remote` is `pipeline` with its sink in a second
# process).
NO_TOKIO = {"remote": "pipeline"}

BASE_FIELDS = {"impl", "workload", "items", "seconds", "items_per_s", "checksum", "lost",
               "round"}

# Extra fields shown per workload, in this order; other numeric fields a
# program prints are appended after them.
EXTRA_FIELDS = {
    "pipeline": ["max_in_flight"],
    "pool_skewed": ["makespan_s"],
    "batcher": ["batches", "full_batches"],
    "batcher_latency": ["p50_ms", "p99_ms", "max_ms"],
    "limiter": ["achieved_per_s", "rate_error", "max_in_10ms"],
    "breaker_trip": ["calls_until_open", "rejected_while_open", "ms_to_half_open"],
    "shutdown": ["shutdown_ms", "drained", "lost"],
    "spawn": ["spawn_per_s", "rss_kb_per_actor"],
    "remote": ["ratio_to_local", "local_items_per_s", "wide_items_per_s", "wide_credit"],
}

# (workload, field) -> (operator, bound, why); judged on troupe's median.
TARGETS = {
    ("batcher_latency", "p99_ms"): ("<=", 6.0, "timeout 5 ms + 1 ms"),
    ("limiter", "rate_error"): ("<=", 0.01, "1 %"),
    ("limiter", "max_in_10ms"): ("<=", 300, "burst 100 + 20,000/s x 10 ms"),
    ("breaker_trip", "calls_until_open"): ("==", 5, "threshold 5"),
    ("shutdown", "shutdown_ms"): ("<=", 100, "SPEC"),
    ("shutdown", "lost"): ("==", 0, "SPEC"),
}

RATIO_TARGET = 1.0          # troupe / Tokio peer
CAF_OVERHEAD = 1.5          # CAF / troupe at most: each pattern within 1.5x of plain CAF

MET = "met"
NOT_MET = "**not met**"


def progress(msg):
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Summary: pure functions of the lines, testable without running anything.
# ---------------------------------------------------------------------------

def parse_lines(text):
    """Splits a JSONL text into (meta, results, runs); bad lines are returned as notes."""
    meta, results, runs, notes = {}, [], [], []
    last_round, taken = {}, set()
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            notes.append(f"line {n} is not JSON, skipped: {line[:80]}")
            continue
        if "meta" in obj:
            meta.update(obj["meta"])
        elif "run" in obj:
            runs.append(obj)
        elif "workload" in obj and "impl" in obj:
            # Lines without a round (a program's plain output) count as one
            # round per repetition of the same impl and workload.
            key = (obj["impl"], obj["workload"])
            if "round" not in obj:
                obj = dict(obj, round=last_round.get(key, 0) + 1)
            if (key, obj["round"]) in taken:
                notes.append(f"line {n}: second {obj['impl']} {obj['workload']} line in "
                             f"round {obj['round']}, skipped")
                continue
            taken.add((key, obj["round"]))
            last_round[key] = max(last_round.get(key, 0), obj["round"])
            results.append(obj)
        else:
            notes.append(f"line {n} is neither a result, a run nor meta, skipped")
    return meta, results, runs, notes


def iota_checksum(items):
    return f"{(items * (items - 1) // 2) % (1 << 64):016x}"


def median(values):
    values = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return statistics.median(values) if values else None


def is_tokio(impl):
    return impl == "tokio" or impl.startswith("tokio-")


def peer_impl(workload):
    """The Tokio impl a workload is judged against; None if Tokio has no such workload."""
    if workload in NO_TOKIO:
        return None
    return "tokio-service" if workload in SERVICE_PEER else "tokio"


def fmt_rate(v):
    if v is None:
        return "—"
    for div, unit in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.3g}"


def fmt_ratio(v):
    if v is None:
        return "—"
    return f"{v:.2f}" if v >= 0.1 else f"{v:.3f}"


def fmt_num(v):
    if v is None:
        return "—"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 100):
        return f"{int(v):,}"
    if abs(v) >= 1e5:
        return fmt_rate(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def judge(value, op, bound):
    if value is None:
        return "—"
    ok = value <= bound if op == "<=" else value == bound
    return MET if ok else NOT_MET


class Summary:
    """Medians, ratios, targets and checks of a set of result lines."""

    def __init__(self, results, runs=(), notes=()):
        self.results = results
        self.runs = list(runs)
        self.notes = list(notes)
        self.problems = []
        self.by = {}
        for r in results:
            self.by.setdefault((r["workload"], r["impl"]), []).append(r)
        present = {r["workload"] for r in results}
        self.workloads = [w for w in ORDER if w in present] + \
            sorted(present - set(ORDER))
        self.rounds = sorted({r["round"] for r in results})
        self._check_lost()
        self._check_checksums()
        self._check_runs()

    def med(self, workload, impl, field):
        return median([r.get(field) for r in self.by.get((workload, impl), [])])

    def values(self, workload, impl, field):
        return [r.get(field) for r in sorted(self.by.get((workload, impl), []),
                                             key=lambda r: r["round"])]

    def has(self, workload, impl):
        return (workload, impl) in self.by

    def ratio(self, a, b):
        return a / b if a is not None and b else None

    def throughput_rows(self):
        rows = []
        for w in self.workloads:
            if w in NOT_THROUGHPUT:
                continue
            peer = peer_impl(w)
            troupe = self.med(w, "troupe", "items_per_s")
            caf = self.med(w, "caf", "items_per_s")
            tokio = self.med(w, peer, "items_per_s")
            vs_tokio = self.ratio(troupe, tokio)
            vs_caf = self.ratio(troupe, caf)
            rows.append({
                "workload": w, "troupe": troupe, "caf": caf, "tokio": tokio, "peer": peer,
                "vs_tokio": vs_tokio,
                "tokio_met": None if vs_tokio is None else vs_tokio >= RATIO_TARGET,
                "vs_caf": vs_caf,
                "caf_met": None if vs_caf is None else 1 / vs_caf <= CAF_OVERHEAD,
                "tuned": self.med(w, "tokio-tuned", "items_per_s"),
                "in_process": self.med(w, "tokio", "items_per_s")
                if peer not in ("tokio", None) else None,
            })
        return rows

    def extra_rows(self):
        rows = []
        for w in self.workloads:
            fields = list(EXTRA_FIELDS.get(w, []))
            for r in self.results:
                if r["workload"] != w:
                    continue
                for k, v in r.items():
                    if k not in BASE_FIELDS and k not in fields and \
                            isinstance(v, (int, float)) and not isinstance(v, bool):
                        fields.append(k)
            peer = peer_impl(w)
            for f in fields:
                target = TARGETS.get((w, f))
                troupe = self.med(w, "troupe", f)
                rows.append({
                    "workload": w, "field": f, "troupe": troupe,
                    "troupe_rounds": self.values(w, "troupe", f),
                    "caf": self.med(w, "caf", f),
                    "tokio": self.med(w, peer, f), "peer": peer,
                    "tuned": self.med(w, "tokio-tuned", f),
                    "target": target,
                    "mark": judge(troupe, target[0], target[1]) if target else "",
                })
        return rows

    def _check_lost(self):
        for r in self.results:
            if r.get("lost", 0) != 0:
                self.problems.append(f"LOST ITEMS: {r['impl']} {r['workload']} round "
                                     f"{r['round']} lost {r['lost']}")

    def _check_checksums(self):
        """Every line's checksum equals Tokio's for the same workload and item count."""
        self.checksums_compared = set()
        for w in self.workloads:
            lines = [r for r in self.results if r["workload"] == w]
            if w == "limiter":
                # Items let through vary from run to run; the checksum is the
                # sum of the item numbers 0..items-1 on every side.
                for r in lines:
                    if r["checksum"] != iota_checksum(r["items"]):
                        self.problems.append(
                            f"CHECKSUM MISMATCH: {r['impl']} limiter round {r['round']}: "
                            f"{r['checksum']}, sum of 0..{r['items'] - 1} is "
                            f"{iota_checksum(r['items'])}")
                    elif not is_tokio(r["impl"]):
                        self.checksums_compared.add(w)
                continue
            as_w = NO_TOKIO.get(w, w)
            tokio = [r for r in self.results if r["workload"] == as_w and is_tokio(r["impl"])]
            if not tokio:
                if any(r["impl"] == "troupe" for r in lines):
                    self.notes.append(f"{w}: no Tokio {as_w} line, checksum not compared")
                continue
            # breaker_trip sums the results of the 101 calls that pass,
            # whatever the number of calls made.
            key = (lambda r: 0) if w == "breaker_trip" else (lambda r: r["items"])
            ref = {}
            for r in tokio:
                ref.setdefault(key(r), []).append(r["checksum"])
            ref = {k: max(set(v), key=v.count) for k, v in ref.items()}
            for r in lines:
                expected = ref.get(key(r))
                if expected is None:
                    tokio_items = ", ".join(str(i) for i in sorted({t["items"] for t in tokio}))
                    note = (f"{w}: {r['impl']} ran {r['items']} items, Tokio {as_w} "
                            f"{tokio_items}: checksum not compared")
                    if note not in self.notes:
                        self.notes.append(note)
                elif r["checksum"] != expected:
                    self.problems.append(
                        f"CHECKSUM MISMATCH: {r['impl']} {w} round {r['round']}: "
                        f"{r['checksum']}, Tokio {expected} ({r['items']} items"
                        + (f", Tokio's {as_w})" if as_w != w else ")"))
                elif not is_tokio(r["impl"]):
                    self.checksums_compared.add(w)

    def _check_runs(self):
        for run in self.runs:
            if run.get("exit", 0) != 0:
                self.problems.append(f"PROGRAM FAILED: {run['run']} round {run.get('round')} "
                                     f"exited {run['exit']}")

    def chart_rows(self):
        return [(r["workload"], r["vs_tokio"], r["vs_caf"]) for r in self.throughput_rows()]


def machine_line(meta):
    if not meta:
        return "machine not recorded"
    ram = meta.get("ram_gib")
    return f"{meta.get('cpu', '?')}, {meta.get('cores', '?')} cores" + \
        (f", {ram:.0f} GiB" if isinstance(ram, (int, float)) else "")


def render_markdown(summary, meta, stem, chart_file):
    s = summary
    out = []
    date = meta.get("date", "undated")
    out.append(f"# troupe vs Tokio vs plain CAF, {date}")
    out.append("")
    if meta.get("quick"):
        out.append("**Quick run (item counts / 20): a check of the script, not figures "
                   "to quote.**")
        out.append("")
    facts = [
        ("date", meta.get("started", date)),
        ("machine", machine_line(meta)),
        ("kernel", meta.get("kernel")),
        ("OS", meta.get("os")),
        ("C++ compiler", meta.get("cxx")),
        ("CAF", meta.get("caf")),
        ("Rust", meta.get("rustc")),
        ("Tokio", meta.get("tokio")),
        ("troupe commit", meta.get("commit")),
        ("rounds", f"{len(s.rounds)} (medians; the programs alternate, "
                   "troupe first in odd rounds)" if len(s.rounds) > 1 else
                   str(len(s.rounds))),
        ("load average", meta.get("load")),
    ]
    out.append("| | |")
    out.append("|---|---|")
    for k, v in facts:
        if v not in (None, ""):
            out.append(f"| {k} | {v} |")
    out.append("")
    if chart_file:
        out.append(f"![throughput ratios]({chart_file})")
        out.append("")

    out.append("## Throughput (items/s, medians)")
    out.append("")
    out.append(f"Targets: troupe/Tokio >= {RATIO_TARGET:g} against the peer (`tokio`, or "
               f"`tokio-service` for breaker and state); CAF/troupe <= {CAF_OVERHEAD:g} "
               "(troupe's pattern within 1.5x of a plain hand-written CAF actor).")
    out.append("")
    out.append("| workload | troupe | CAF | Tokio | peer | troupe/Tokio | >= 1 | troupe/CAF "
               "| CAF/troupe <= 1.5 | tokio-tuned (troupe/tuned) | tokio in-process |")
    out.append("|---|--:|--:|--:|---|--:|---|--:|---|--:|--:|")
    for r in s.throughput_rows():
        def mark(m):
            return "—" if m is None else (MET if m else NOT_MET)
        tuned = "" if r["tuned"] is None else \
            f"{fmt_rate(r['tuned'])} ({fmt_ratio(s.ratio(r['troupe'], r['tuned']))})"
        inproc = "" if r["in_process"] is None else fmt_rate(r["in_process"])
        out.append(f"| {r['workload']} | {fmt_rate(r['troupe'])} | {fmt_rate(r['caf'])} "
                   f"| {fmt_rate(r['tokio'])} | {r['peer'] or 'none'} "
                   f"| {fmt_ratio(r['vs_tokio'])} "
                   f"| {mark(r['tokio_met'])} | {fmt_ratio(r['vs_caf'])} | {mark(r['caf_met'])} "
                   f"| {tuned} | {inproc} |")
    out.append("")
    alone = [w for w in s.workloads if w in NO_TOKIO and w not in NOT_THROUGHPUT]
    if alone:
        out.append(f"No Tokio counterpart (peer none): {', '.join(alone)}. "
                   "`remote` is `pipeline` with its sink in a second process over "
                   "127.0.0.1; its `ratio_to_local` (to the local pipeline of the same "
                   "side in the same run) is among the extra fields.")
        out.append("")
    skipped = [w for w in s.workloads if w in NOT_THROUGHPUT]
    if skipped:
        out.append(f"Not judged by items/s (paced by timers, or judged by their own fields "
                   f"below): {', '.join(skipped)}.")
        out.append("")

    out.append("## Extra fields (medians) and targets")
    out.append("")
    out.append("| workload | field | troupe | troupe per round | CAF | Tokio | target "
               "| troupe |")
    out.append("|---|---|--:|---|--:|--:|---|---|")
    for r in s.extra_rows():
        target = ""
        if r["target"]:
            op, bound, why = r["target"]
            target = f"{'<=' if op == '<=' else '='} {fmt_num(bound)} ({why})"
        tokio = fmt_num(r["tokio"])
        if r["tuned"] is not None:
            tokio += f" (tuned {fmt_num(r['tuned'])})"
        shown = [fmt_num(v) for v in r["troupe_rounds"]]
        rounds = " / ".join(shown) if len(set(shown)) > 1 else ""
        out.append(f"| {r['workload']} | {r['field']} | {fmt_num(r['troupe'])} | {rounds} "
                   f"| {fmt_num(r['caf'])} | {tokio} | {target} | {r['mark']} |")
    out.append("")

    out.append("## Checks")
    out.append("")
    if s.problems:
        for p in s.problems:
            out.append(f"- **{p}**")
    else:
        compared = ", ".join(w for w in s.workloads if w in s.checksums_compared)
        out.append(f"- lost 0 on all {len(s.results)} lines; checksums equal Tokio's "
                   f"(limiter: the sum of the items let through) for: {compared or 'none'}.")
    if not any(r["impl"] == "caf" for r in s.results):
        out.append("- no `caf` lines (troupe-bench without `--baseline`): the CAF columns "
                   "are empty.")
    for n in s.notes:
        out.append(f"- {n}")
    out.append("")
    return "\n".join(out)


def chart_script(rows, title, svg_path):
    """A gnuplot script drawing the ratios as clustered bars on a log scale, or None."""
    rows = [r for r in rows if r[1] is not None or r[2] is not None]
    if not rows:
        return None
    with_caf = any(r[2] is not None for r in rows)
    values = [v for r in rows for v in r[1:] if v] + [1.0, 1 / CAF_OVERHEAD]
    lo = 10 ** math.floor(math.log10(min(values) / 1.5))
    hi = 10 ** math.ceil(math.log10(max(values) * 1.5))
    data = "\n".join(f"{w} {fmt_ratio(a) if a else '?'} {fmt_ratio(b) if b else '?'}"
                     for w, a, b in rows)
    gp = f"""set encoding utf8
set terminal svg size 960,540 dynamic enhanced font "sans,13" background rgb "white"
set output "{svg_path}"
set title "{title}" noenhanced
set datafile missing "?"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [{lo:g}:{hi:g}]
set ylabel "ratio of items/s (log scale; above 1 = troupe faster)"
set grid ytics
set xtics rotate by -25 noenhanced
set key top right
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "black"
set label "1.0" at graph 1, first 1 offset 0.5,0 left
set label "breaker, state: against tokio-service" at graph 0.01, graph 0.96 left font ",10"
"""
    if with_caf:
        gp += f"""set arrow from graph 0, first {1 / CAF_OVERHEAD:.4f} to graph 1, first {1 / CAF_OVERHEAD:.4f} nohead lw 1.5 dt 2 lc rgb "#d95f02"
set label "1/1.5" at graph 1, first {1 / CAF_OVERHEAD:.4f} offset 0.5,0 left tc rgb "#d95f02"
"""
    gp += f"$ratios << EOD\n{data}\nEOD\n"
    plots = [f'$ratios using 2:xtic(1) title "troupe / Tokio peer (target >= 1)" lc rgb "#1b9e77"',
             f'"" using ($0 - {0.5 / 3 if with_caf else 0:.4f}):2:2 with labels offset 0,0.7 '
             'font ",10" notitle']
    if with_caf:
        plots += ['$ratios using 3 title "troupe / plain CAF (target >= 1/1.5)" '
                  'lc rgb "#d95f02"',
                  f'"" using ($0 + {0.5 / 3:.4f}):3:3 with labels offset 0,0.7 font ",10" '
                  'notitle']
    gp += "set rmargin 8\nplot " + ", \\\n     ".join(plots) + "\n"
    return gp


def draw_chart(rows, title, svg_path, gnuplot):
    script = chart_script(rows, title, svg_path)
    if script is None:
        return "no throughput ratio to draw: chart skipped"
    if not gnuplot:
        return "chart not drawn (--no-chart)"
    exe = shutil.which(gnuplot)
    if not exe:
        return f"gnuplot not found ({gnuplot}): chart skipped (bash dev.sh setup installs it)"
    proc = subprocess.run([exe], input=script, text=True, capture_output=True)
    if proc.returncode != 0 or not Path(svg_path).exists():
        return f"gnuplot failed, chart skipped: {proc.stderr.strip()[:500]}"
    return None


def write_summary(text, out_dir, stem, gnuplot, latest=True):
    """Summarizes JSONL text into out_dir/STEM.md and STEM.svg (and latest.*).

    Returns (markdown, exit status)."""
    meta, results, runs, notes = parse_lines(text)
    summary = Summary(results, runs, notes)
    out_dir.mkdir(parents=True, exist_ok=True)
    svg = out_dir / f"{stem}.svg"
    title = f"troupe throughput ratios, {meta.get('date', 'undated')}, {machine_line(meta)}"
    if meta.get("quick"):
        title += " (quick run)"
    if svg.exists():
        svg.unlink()
    skipped = draw_chart(summary.chart_rows(), title, str(svg), gnuplot)
    if skipped:
        progress(skipped)
        summary.notes.append(skipped)
    md = render_markdown(summary, meta, stem, svg.name if not skipped else None)
    (out_dir / f"{stem}.md").write_text(md)
    if latest:
        shutil.copyfile(out_dir / f"{stem}.md", out_dir / "latest.md")
        if not skipped:
            shutil.copyfile(svg, out_dir / "latest.svg")
        elif (out_dir / "latest.svg").exists():
            # An older chart beside a newer summary would show figures it does not have.
            (out_dir / "latest.svg").unlink()
    progress(f"wrote {out_dir / (stem + '.md')}" + ("" if skipped else f" and {svg.name}"))
    return md, (1 if summary.problems else 0)


# ---------------------------------------------------------------------------
# Building and running.
# ---------------------------------------------------------------------------

def sh(cmd, **kw):
    progress("$ " + " ".join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def sudo():
    return [] if os.geteuid() == 0 else ["sudo"]


def ensure_gnuplot():
    """Installs gnuplot-nox from Debian if missing, as dev.sh setup does."""
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "gnuplot-nox"],
                            capture_output=True, text=True).stdout
    if "install ok installed" in status or shutil.which("gnuplot"):
        return
    progress("installing gnuplot-nox")
    sh(sudo() + ["apt-get", "update", "-qq"], stdout=sys.stderr)
    sh(sudo() + ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq",
                 "--no-install-recommends", "gnuplot-nox"], stdout=sys.stderr)


def build_troupe(build_dir, jobs):
    if not (build_dir / "build.ninja").exists():
        sh(["meson", "setup", build_dir, "--buildtype=release", "-Dwerror=false"],
           cwd=REPO, stdout=sys.stderr)
    else:
        opts = subprocess.run(["meson", "introspect", "--buildoptions", build_dir],
                              capture_output=True, text=True, cwd=REPO).stdout
        try:
            buildtype = next(o["value"] for o in json.loads(opts) if o["name"] == "buildtype")
        except (ValueError, StopIteration):
            buildtype = "release"
        if buildtype != "release":
            sh(["meson", "configure", build_dir, "-Dbuildtype=release"], cwd=REPO,
               stdout=sys.stderr)
    sh(["ninja", "-C", build_dir] + (["-j", str(jobs)] if jobs else []) +
       ["bench/troupe-bench"], stdout=sys.stderr)
    return build_dir / "bench" / "troupe-bench"


def build_tokio(ref):
    proc = sh(["bash", ref / "build.sh"], stdout=subprocess.PIPE, text=True)
    return Path(proc.stdout.strip().splitlines()[-1])


def help_text(exe):
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True)
    return proc.stdout + proc.stderr


def known_workloads(help_out):
    for line in help_out.splitlines():
        if line.startswith("workloads:"):
            return set(re.findall(r"[a-z_]+", line.split(":", 1)[1].replace("also:", "")))
    return set(ORDER)


def program_args(names, known):
    """The workload arguments of one program: a name it does not know runs as its parent."""
    args = []
    for n in names:
        a = n if n in known else PARENT.get(n)
        if a in known and a not in args:
            args.append(a)
    return args


def run_git(*args):
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def first_line(cmd, env=None):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env).stdout
        return out.strip().splitlines()[0] if out.strip() else None
    except OSError:
        return None


def machine_info(build_dir, ref):
    info = {}
    cpu = None
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if not cpu:
        for line in (first_line(["sh", "-c", "lscpu | grep 'Model name'"]) or "").splitlines():
            cpu = line.split(":", 1)[1].strip()
    info["cpu"] = cpu or platform.processor() or "unknown CPU"
    info["cores"] = os.cpu_count()
    try:
        kb = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
        info["ram_gib"] = round(kb / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    info["kernel"] = platform.release()
    try:
        os_release = dict(l.rstrip("\n").split("=", 1) for l in open("/etc/os-release") if "=" in l)
        info["os"] = os_release.get("PRETTY_NAME", "").strip('"')
    except OSError:
        info["os"] = platform.system()
    try:
        # Meson 1.0 has no introspection of compilers; its log names the one it found.
        log = (build_dir / "meson-logs" / "meson-log.txt").read_text(errors="replace")
        info["cxx"] = re.findall(r"C\+\+ compiler for the host machine: (?:ccache )?(.*)", log)[-1]
    except (OSError, IndexError):
        info["cxx"] = first_line(["c++", "--version"])
    try:
        m = re.search(r"#define CAF_VERSION (\d+)", open("/usr/include/caf/config.hpp").read())
        v = int(m.group(1))
        info["caf"] = f"{v // 10000}.{v // 100 % 100}.{v % 100}"
    except (OSError, AttributeError):
        pass
    env = dict(os.environ)
    env["PATH"] = env.get("PATH", "") + os.pathsep + str(Path.home() / ".cargo" / "bin")
    info["rustc"] = first_line(["rustc", "--version"], env)
    try:
        m = re.search(r'name = "tokio"\nversion = "([^"]+)"', (ref / "Cargo.lock").read_text())
        info["tokio"] = m.group(1)
    except (OSError, AttributeError):
        pass
    commit = run_git("rev-parse", "--short", "HEAD")
    if commit and run_git("status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    info["commit"] = commit
    return info


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def run_program(name, cmd, rnd, sink, wanted):
    """Runs one program once; its result lines, tagged with the round, go to sink.

    With wanted workloads, the lines of other workloads run along (a parent's) are dropped."""
    progress(f"round {rnd}: {' '.join(str(c) for c in cmd)}")
    load = loadavg()
    start = time.monotonic()
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, text=True)
    lines, seen = 0, set()
    for line in proc.stdout:
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            progress(f"{name}: not a JSON line, skipped: {line[:80]}")
            continue
        if wanted and obj.get("workload") not in wanted:
            continue
        # A parent named beside its child (tokio-reference's breaker runs
        # breaker_trip too) runs the child twice: the first line counts.
        key = (obj.get("impl"), obj.get("workload"))
        if key in seen:
            continue
        seen.add(key)
        obj["round"] = rnd
        sink.write(json.dumps(obj) + "\n")
        sink.flush()
        lines += 1
    code = proc.wait()
    secs = time.monotonic() - start
    sink.write(json.dumps({"run": name, "round": rnd, "exit": code, "lines": lines,
                           "seconds": round(secs, 3), "load1_before": load}) + "\n")
    sink.flush()
    if code != 0:
        progress(f"{name} exited {code} in round {rnd}")
    return secs


def default_reference():
    env = os.environ.get("TOKIO_REFERENCE")
    return Path(env) if env else REPO.parent / "shared" / "bench" / "tokio-reference"


def run_comparison(args):
    ref = Path(args.tokio_reference).resolve()
    build_dir = (REPO / args.build_dir).resolve()
    if not (ref / "build.sh").exists():
        sys.exit(f"compare: no Tokio reference at {ref} (no build.sh); "
                 "give --tokio-reference DIR or set TOKIO_REFERENCE")
    # The cargo target dir goes beside troupe's build, not into the shared reference tree.
    os.environ.setdefault("CARGO_TARGET_DIR", str(build_dir / "tokio-reference"))
    if not args.no_chart:
        ensure_gnuplot()
    if args.skip_build:
        troupe = build_dir / "bench" / "troupe-bench"
        tokio = Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "tokio-reference"
        if not tokio.exists():
            tokio = ref / "target" / "release" / "tokio-reference"
    else:
        troupe = build_troupe(build_dir, args.jobs)
        tokio = build_tokio(ref)
    for exe in (troupe, tokio):
        if not os.access(exe, os.X_OK):
            sys.exit(f"compare: {exe} is not built (run without --skip-build)")

    troupe_help = help_text(troupe)
    tokio_help = help_text(tokio)
    names = []
    for n in args.workloads:
        names += [n] + [c for c, p in PARENT.items() if p == n]
    troupe_known, tokio_known = known_workloads(troupe_help), known_workloads(tokio_help)
    unknown = [n for n in args.workloads
               if not program_args([n], troupe_known) and not program_args([n], tokio_known)]
    if unknown:
        sys.exit(f"compare: unknown workload(s): {', '.join(unknown)}")
    troupe_cmd = [troupe] + (["--quick"] if args.quick else [])
    if "--baseline" in troupe_help:
        troupe_cmd.append("--baseline")
    else:
        progress("troupe-bench has no --baseline: the plain CAF column stays empty")
    tokio_cmd = [tokio] + (["--quick"] if args.quick else [])
    programs = [("troupe-bench", troupe_cmd, program_args(names, troupe_known)),
                ("tokio-reference", tokio_cmd, program_args(names, tokio_known))]
    programs = [(n, c + a, a) for n, c, a in programs if a or not names]

    partial = args.quick or bool(args.workloads)
    out_dir = Path(args.out).resolve() if args.out else \
        (build_dir / "compare-results" if partial else REPO / "bench" / "results")
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now().astimezone()
    stem = now.strftime("%Y-%m-%d") + ("-quick" if args.quick else "")
    base, n = stem, 2
    while (out_dir / f"{stem}.jsonl").exists():
        stem, n = f"{base}-{n}", n + 1
    meta = machine_info(build_dir, ref)
    meta.update({"date": now.strftime("%Y-%m-%d"), "started": now.strftime("%Y-%m-%d %H:%M %Z"),
                 "rounds": args.rounds, "quick": args.quick,
                 "workloads": args.workloads or "all"})
    jsonl = out_dir / f"{stem}.jsonl"
    progress(f"{args.rounds} rounds into {jsonl}")
    loads = [loadavg()]
    with open(jsonl, "w") as sink:
        sink.write(json.dumps({"meta": meta}) + "\n")
        for rnd in range(1, args.rounds + 1):
            order = programs if rnd % 2 else list(reversed(programs))
            for name, cmd, _ in order:
                run_program(name, cmd, rnd, sink, set(names))
                loads.append(loadavg())
        meta_end = {"load": f"{min(loads)}–{max(loads)} (1 min, before and after each run)"}
        sink.write(json.dumps({"meta": meta_end}) + "\n")
    md, status = write_summary(jsonl.read_text(), out_dir, stem, args.gnuplot)
    print(md)
    progress("done: " + ("problems found, see Checks" if status else "all checks passed"))
    return status


def main():
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workloads", nargs="*", metavar="WORKLOAD",
                   help=f"restrict to these workloads ({' '.join(ORDER)}); default all")
    p.add_argument("--rounds", type=int, default=3, help="rounds of both programs (default 3)")
    p.add_argument("--quick", action="store_true",
                   help="pass --quick to both programs (item counts / 20)")
    p.add_argument("--skip-build", action="store_true",
                   help="run the binaries already built, build nothing")
    p.add_argument("--tokio-reference", default=str(default_reference()), metavar="DIR",
                   help="the Tokio reference (default: $TOKIO_REFERENCE, else "
                        "../shared/bench/tokio-reference from the repository root)")
    p.add_argument("--build-dir", default="build-release", metavar="DIR",
                   help="troupe's release build dir, relative to the repository root "
                        "(default build-release); the reference's cargo target dir goes "
                        "inside it unless CARGO_TARGET_DIR is set")
    p.add_argument("--jobs", type=int, metavar="N", help="ninja -j N")
    p.add_argument("--out", metavar="DIR",
                   help="results dir (default bench/results for a full run; "
                        "BUILD_DIR/compare-results for --quick or some workloads; "
                        "the input file's dir for --summarize)")
    p.add_argument("--summarize", metavar="FILE",
                   help="only summarize the JSON lines of FILE (no build, no run)")
    p.add_argument("--gnuplot", default=os.environ.get("GNUPLOT", "gnuplot"), metavar="EXE",
                   help="gnuplot program (default: $GNUPLOT, else gnuplot); if it is "
                        "missing the chart is skipped")
    p.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    args = p.parse_args()
    if args.no_chart:
        args.gnuplot = None
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.summarize:
        src = Path(args.summarize)
        if not src.exists():
            p.error(f"no such file: {src}")
        out_dir = Path(args.out) if args.out else src.resolve().parent
        md, status = write_summary(src.read_text(), out_dir, src.stem, args.gnuplot)
        print(md)
        return status
    return run_comparison(args)


if __name__ == "__main__":
    sys.exit(main())
