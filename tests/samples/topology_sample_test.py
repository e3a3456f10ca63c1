#!/usr/bin/env python3
"""Runs one sample topology with `troupe run --report json` and checks what
samples/README.md promises for it.

    topology_sample_test.py TROUPE SAMPLE.toml
"""
import json
import subprocess
import sys
from pathlib import Path


def actor(report, name):
    for a in report["actors"]:
        if a["name"] == name:
            return a
    raise AssertionError(f"no actor {name!r} in the report")


def check_ingest(r):
    written = actor(r, "written")
    assert written["stats"]["items"] == 20000, written
    assert written["stats"]["checksum"] == 199990000, written
    # 200 full batches of 100; on a loaded machine the limiter's items can
    # arrive more than the batcher's 20 ms apart, and a timeout cuts a batch
    # short, so there may be a few more.
    assert 200 <= written["stats"]["batches"] <= 220, written
    assert actor(r, "write")["errors"] == 0, actor(r, "write")
    store = actor(r, "store")
    assert store["stats"]["failed"] > 0, store


def check_crawl(r):
    pages = actor(r, "pages")
    assert pages["stats"]["items"] == 5000, pages
    assert pages["stats"]["checksum"] == 12497500, pages
    assert actor(r, "fetch")["errors"] == 0, actor(r, "fetch")
    assert actor(r, "fetchers")["stats"]["completed"] == 5000, actor(r, "fetchers")


def check_failure_drill(r):
    unstable = actor(r, "unstable")
    done = actor(r, "done")
    assert unstable["restarts"] >= 15, unstable
    assert unstable["errors"] == unstable["restarts"], unstable
    assert done["stats"]["items"] + unstable["errors"] == 10000, (done, unstable)
    assert actor(r, "process")["stats"]["worker_restarts"] > 0, actor(r, "process")


def check_enrich(r):
    assert actor(r, "enriched")["stats"]["items"] == 4000, actor(r, "enriched")
    for name in ("lookup", "tally", "score"):
        assert actor(r, name)["errors"] == 0, actor(r, name)
    assert actor(r, "counts")["stats"]["updates"] == 2000, actor(r, "counts")


checks = {
    "ingest": check_ingest,
    "crawl": check_crawl,
    "failure_drill": check_failure_drill,
    "enrich": check_enrich,
}


def main():
    troupe, sample = sys.argv[1], Path(sys.argv[2])
    run = subprocess.run([troupe, "run", "--report", "json", "--no-view", str(sample)],
                         capture_output=True, text=True, timeout=240)
    if run.returncode != 0:
        sys.exit(f"{sample}: exit {run.returncode}\n{run.stderr}\n{run.stdout}")
    report = json.loads(run.stdout)
    assert report["outcome"] == "drained", report["outcome"]
    assert report["lost"] == 0, report["lost"]
    for a in report["actors"]:
        assert a["stopped"] in ("completed", "drained", "stopped"), a
    checks[sample.stem](report)
    print(f"{sample.name}: ok")


if __name__ == "__main__":
    main()
