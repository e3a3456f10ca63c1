#!/usr/bin/env python3
"""A topology spread over nodes, with real `troupe run --node` processes on
127.0.0.1: ports picked free at test time and written into generated files;
every process is started in a process group of its own and killed when a
case ends, passed or failed.

    nodes_test.py TROUPE [CASE...]

Without CASE names every case runs. Waits are on output lines and exits,
with deadlines only as failure bounds.
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TROUPE = None
DEADLINE = 60  # seconds: the failure bound of every wait


def free_port():
    """A port free now, below Linux's ephemeral range (32768 and up), where
    no outgoing connection of another program can take it meanwhile."""
    while True:
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class Node:
    """One `troupe run --node` process; its stderr read line by line."""

    def __init__(self, case, name, file, extra=(), env=None):
        self.name = name
        view = [] if "--view" in extra else ["--no-view"]
        args = [TROUPE, "run", "--node", name, *view, *extra, str(file)]
        self.out = case.dir / f"{name}.{len(case.processes)}.out"
        with open(self.out, "w") as out:
            self.proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.PIPE, text=True,
                start_new_session=True, env=env)
        case.processes.append(self)
        self.lines = []
        self.ended = False
        self.changed = threading.Condition()
        self.stdout = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.ended = True
            self.changed.notify_all()

    def wait_line(self, pattern, timeout=DEADLINE, since=0):
        """The first line from line `since` on (seen so far or to come)
        matching `pattern`, and its index."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        i = since
        with self.changed:
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return self.lines[i], i
                    i += 1
                if self.ended:
                    raise AssertionError(
                        f"node {self.name} exited ({self.proc.wait()}) without "
                        f"a line matching {pattern!r}")
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"node {self.name}: no line matching {pattern!r} "
                        f"within {timeout} s")
                self.changed.wait(left)

    def finish(self, timeout=DEADLINE):
        """Its exit code, once it exited by itself (a failure past `timeout`)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"node {self.name} still running after {timeout} s; stderr:\n"
                + "\n".join(self.lines))
        self._reader.join(timeout=5)
        self.stdout = self.out.read_text()
        # A sanitizer build's findings fail the case, whatever the exit.
        for line in self.lines:
            assert "runtime error:" not in line and "Sanitizer" not in line, \
                f"node {self.name}: {line}\n" + self.stderr()
        return self.proc.returncode

    def report(self):
        return json.loads(self.stdout)

    def stderr(self):
        return "\n".join(self.lines)

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()


class Case:
    def __init__(self, name):
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"troupe-nodes-{name}-"))
        self.processes = []

    def file(self, text, name="topology.toml"):
        path = self.dir / name
        path.write_text(text)
        return path

    def node(self, name, file, **kw):
        return Node(self, name, file, **kw)

    def close(self):
        for p in self.processes:
            p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def actor(report, name):
    for a in report["actors"]:
        if a["name"] == name:
            return a
    raise AssertionError(f"no actor {name!r} in the report: {report}")


def nodes_section(names, tls=None):
    out = ""
    for n in names:
        out += f"[nodes.{n}]\nport = {free_port()}\n"
        if tls:
            out += tls(n)
        out += "\n"
    return out


def pipeline(count, source_node=None, sink_node=None, rate=None,
             system='connect_timeout = "20s"\n', names=("a", "b"), tls=None):
    source = f"node = {json.dumps(source_node)}\n" if source_node else ""
    sink = f"node = {json.dumps(sink_node)}\n" if sink_node else ""
    paced = f'rate = "{rate}/s"\n' if rate else ""
    return (f'[system]\n{system}\n'
            + nodes_section(names, tls)
            + f'[actors.source]\nkind = "generator"\ncount = {count}\n'
              f'{paced}next = "sink"\n{source}\n'
            + f'[actors.sink]\nkind = "counter"\n{sink}')


def check_delivered(home, count):
    r = home.report()
    sink = actor(r, "sink")
    assert sink["stats"]["items"] == count, sink
    assert sink["stats"]["checksum"] == count * (count - 1) // 2, sink
    assert r["lost"] == 0, r


# -- the cases ----------------------------------------------------------------


def case_pipeline_sink_remote_started_first(c):
    """Source on the home node a, sink on b; b starts first and waits for a."""
    f = c.file(pipeline(20000, sink_node="b"))
    b = c.node("b", f)
    b.wait_line(r"waiting for the home node a")
    a = c.node("a", f, extra=["--report", "json"])
    assert a.finish() == 0, a.stderr()
    assert b.finish() == 0, b.stderr()
    b.wait_line(r"started sink")
    check_delivered(a, 20000)


def case_pipeline_source_remote_home_started_first(c):
    """Source on b, sink on the home node a; a starts first and waits for b,
    saying so on stderr."""
    f = c.file(pipeline(20000, source_node="b"))
    a = c.node("a", f, extra=["--report", "json"])
    a.wait_line(r"waiting for troupe\.node at 127\.0\.0\.1:\d+ \(\d+ s")
    b = c.node("b", f)
    assert a.finish() == 0, a.stderr()
    assert b.finish() == 0, b.stderr()
    check_delivered(a, 20000)


def case_shutdown_from_the_other_node(c):
    """SIGTERM to the non-home node drains the whole cluster: every process
    exits 0 and nothing is lost."""
    f = c.file(pipeline(0, source_node="b", rate=5000))
    a = c.node("a", f, extra=["--report", "json", "--view",
                              "--view-interval", "100ms"])
    b = c.node("b", f)
    b.wait_line(r"joined the home node a")
    # Items flow: the live view's row of the sink counts some.
    a.wait_line(r"^\s+sink\s+counter\s+[1-9]")
    b.proc.send_signal(signal.SIGTERM)
    b.wait_line(r"SIGTERM: asking the home node a to shut down gracefully")
    assert a.finish() == 0, a.stderr()
    assert b.finish() == 0, b.stderr()
    a.wait_line(r"drained after a signal, lost 0")
    r = a.report()
    assert r["lost"] == 0, r
    source, sink = actor(r, "source"), actor(r, "sink")
    assert source["out"] > 0, source
    assert sink["stats"]["items"] == source["out"], (source, sink)


def case_home_node_killed(c):
    """The other nodes of a home node that dies stop what they run and
    exit 1, saying why."""
    f = c.file(pipeline(0, source_node="b", rate=1000))
    a = c.node("a", f)
    b = c.node("b", f)
    a.wait_line(r"source started on node b")
    os.killpg(a.proc.pid, signal.SIGKILL)
    a.proc.wait()
    assert b.finish() == 1, b.stderr()
    b.wait_line(r"\(node b\): the home node a is gone \(.*remote_link_unreachable.*\): "
                r"stopped this node's actors")


def case_restart_on_the_next_candidate(c):
    """A child of the root (on a) placed on ["b", "a"]: when b is killed, the
    supervisor restarts it on a, and the stream goes on into it."""
    f = c.file(pipeline(0, sink_node=["b", "a"], rate=2000))
    a = c.node("a", f, extra=["--report", "json", "--view",
                              "--view-interval", "100ms"])
    b = c.node("b", f)
    a.wait_line(r"sink started on node b")
    os.killpg(b.proc.pid, signal.SIGKILL)
    b.proc.wait()
    _, at = a.wait_line(r"starting sink here")
    # The live view's rows: "  sink  counter  IN  OUT ... RESTARTS  STATE".
    row = r"^\s+sink\s+counter\s+(\d+)\s.*\s1\s+running$"
    line, at = a.wait_line(row, since=at)
    first = int(re.search(row, line).group(1))
    while True:
        line, at = a.wait_line(row, since=at + 1)
        if int(re.search(row, line).group(1)) > first:
            break
    a.proc.send_signal(signal.SIGTERM)
    assert a.finish() == 0, a.stderr()
    r = a.report()
    sink = actor(r, "sink")
    assert sink["restarts"] == 1, sink
    assert sink["stats"]["items"] > first, sink


def case_nested_supervisor_on_another_node(c):
    """A nested supervisor placed on b runs its subtree there, and places one
    child of its own back on the home node a."""
    count = 5000
    f = c.file('[system]\nconnect_timeout = "20s"\n\n'
               + nodes_section(("a", "b"))
               + '[supervisors.far]\nnode = "b"\n\n'
               + f'[actors.source]\nkind = "generator"\ncount = {count}\n'
                 'supervisor = "far"\nnext = "mid"\n\n'
               + '[actors.mid]\nkind = "hash"\nsupervisor = "far"\n'
                 'next = "sink"\n\n'
               + '[actors.sink]\nkind = "counter"\nsupervisor = "far"\n'
                 'node = "a"\n')
    b = c.node("b", f)
    a = c.node("a", f, extra=["--report", "json"])
    assert a.finish() == 0, a.stderr()
    assert b.finish() == 0, b.stderr()
    b.wait_line(r"started far$")
    b.wait_line(r"sink started on node a")
    a.wait_line(r"started sink$")
    check_delivered(a, count)
    assert actor(a.report(), "sink")["path"] == ["root", "far"]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_ca(dir, ca):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-subj", f"/CN={ca}",
            cwd=dir)


def make_cert(dir, name, ca):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=dir)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem",
            "-CAkey", f"{ca}.key", "-CAcreateserial", "-days", "2",
            "-out", f"{name}.pem", cwd=dir)


def tls_keys(cafile, certs):
    return lambda n: (f'certificate = "{certs[n]}.pem"\nkey = "{certs[n]}.key"\n'
                      f'cafile = "{cafile}.pem"\n')


def case_tls_cluster(c):
    """Nodes with certificates from one CA (paths relative to the file)."""
    make_ca(c.dir, "ca")
    for n in ("a", "b"):
        make_cert(c.dir, n, "ca")
    f = c.file(pipeline(5000, sink_node="b",
                        tls=tls_keys("ca", {"a": "a", "b": "b"})))
    b = c.node("b", f)
    a = c.node("a", f, extra=["--report", "json"])
    a.wait_line(r"listening on 127\.0\.0\.1:\d+ \(TLS\)")
    assert a.finish() == 0, a.stderr()
    assert b.finish() == 0, b.stderr()
    check_delivered(a, 5000)


def case_tls_other_ca_refused(c):
    """A node whose certificate another CA signed cannot join: the home node
    cannot start what is placed on it, and it cannot reach the home node."""
    make_ca(c.dir, "ca")
    make_ca(c.dir, "rogue")
    make_cert(c.dir, "a", "ca")
    make_cert(c.dir, "b", "rogue")
    f = c.file(pipeline(100, sink_node="b",
                        system='connect_timeout = "3s"\n',
                        tls=tls_keys("ca", {"a": "a", "b": "b"}))
               .replace("[nodes.a]", "[supervisor]\nmax_restarts = 0\n\n[nodes.a]"))
    b = c.node("b", f)
    a = c.node("a", f, extra=["--report", "json"])
    assert a.finish() == 1, a.stderr()
    assert b.finish() == 1, b.stderr()
    # A refused handshake is final: the start fails at once, without waiting
    # for connect_timeout.
    a.wait_line(r"refused a TLS peer \(connecting to .*\): its certificate "
                r"\[CN = b\] issued by \[CN = rogue\] does not verify")
    b.wait_line(r"the home node a cannot be reached")
    assert not any("started sink" in line for line in b.lines), b.stderr()


def case_tls_misconfigured_is_a_start_error(c):
    """A key file that does not exist: exit 2 with a clear line, at start."""
    make_ca(c.dir, "ca")
    make_cert(c.dir, "a", "ca")
    f = c.file(pipeline(10, sink_node="b",
                        tls=tls_keys("ca", {"a": "a", "b": "missing"})))
    b = c.node("b", f)
    assert b.finish() == 2, b.stderr()
    b.wait_line(r"TLS: cannot read the certificate file '.*missing\.pem'")


def case_pool_node_killed_and_restarted(c):
    """A pool on a with workers on b and c: c is killed mid-run, its jobs go
    to b's workers, and c started again rejoins; every job completes."""
    # Each job takes 20 ms: at 2000 a second about 40 are always in flight,
    # half of them on c when it is killed.
    count = 16000
    text = (f'[system]\nconnect_timeout = "20s"\n\n'
            + nodes_section(("a", "b", "c"))
            + f'[actors.source]\nkind = "generator"\ncount = {count}\n'
              f'rate = "2000/s"\nnext = "work"\n\n'
            + '[actors.work]\nkind = "pool"\nworkers = 4\n'
              'worker = { kind = "sleep_service", delay = "20ms" }\n'
              'worker_nodes = ["b", "c"]\nnext = "sink"\n\n'
            + '[actors.sink]\nkind = "counter"\n')
    f = c.file(text)
    b = c.node("b", f)
    c1 = c.node("c", f)
    a = c.node("a", f, extra=["--report", "json", "--view",
                              "--view-interval", "100ms"])
    a.wait_line(r"work/worker-3 started on node c")
    row = r"^\s+sink\s+counter\s+(\d+)\s"
    at = 0
    while True:
        line, at = a.wait_line(row, since=at + 1)
        if int(re.search(row, line).group(1)) >= 2000:
            break
    os.killpg(c1.proc.pid, signal.SIGKILL)
    c1.proc.wait()
    _, at = a.wait_line(r"node c is gone", since=at)
    c2 = c.node("c", f)
    a.wait_line(r"work/worker-[13] started on node c", since=at)
    assert a.finish() == 0, a.stderr()
    assert b.finish() == 0, b.stderr()
    assert c2.finish() == 0, c2.stderr()
    r = a.report()
    sink, work = actor(r, "sink"), actor(r, "work")
    assert sink["stats"]["items"] == count, sink
    assert sink["stats"]["checksum"] == count * (count - 1) // 2, sink
    assert work["stats"]["node_losses"] >= 1, work
    assert work["stats"]["rejoined"] >= 1, work
    assert work["stats"]["failed"] == 0, work
    assert work["stats"]["redispatched"] >= 1, work
    assert r["lost"] == 0, r


CASES = [
    case_pipeline_sink_remote_started_first,
    case_pipeline_source_remote_home_started_first,
    case_shutdown_from_the_other_node,
    case_home_node_killed,
    case_restart_on_the_next_candidate,
    case_nested_supervisor_on_another_node,
    case_tls_cluster,
    case_tls_other_ca_refused,
    case_tls_misconfigured_is_a_start_error,
    case_pool_node_killed_and_restarted,
]


def suppress_caf_openssl_leak(dir):
    """CAF 0.17.6's openssl module leaks the session of a handshake that
    failed (a peer refused by its CA): LeakSanitizer in a sanitizer build
    would fail the refusal case for a leak that is not troupe's. Only that
    library's allocations (and what they hold) are suppressed."""
    supp = Path(dir) / "lsan.supp"
    supp.write_text("leak:libcaf_openssl\n")
    options = os.environ.get("LSAN_OPTIONS", "")
    os.environ["LSAN_OPTIONS"] = (options + ":" if options else "") \
        + f"suppressions={supp}"


def main():
    global TROUPE
    TROUPE = sys.argv[1]
    scratch = tempfile.mkdtemp(prefix="troupe-nodes-")
    suppress_caf_openssl_leak(scratch)
    args = sys.argv[2:]
    wanted = set(args)
    failed = 0
    for fn in CASES:
        name = fn.__name__[len("case_"):]
        if wanted and name not in wanted:
            continue
        if name.startswith("tls") and not shutil.which("openssl"):
            print(f"skip {name}: no openssl command")
            continue
        c = Case(name)
        start = time.monotonic()
        try:
            fn(c)
            print(f"ok   {name} ({time.monotonic() - start:.1f} s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report every case
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
            for p in c.processes:
                print(f"--- node {p.name} (exit {p.proc.poll()}):\n{p.stderr()}",
                      flush=True)
        finally:
            c.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
