#!/usr/bin/env python3
"""Nodes as real processes on 127.0.0.1 (tests/actors/node_peer.cpp):
publish and reach across processes, waiting for a peer, failure detection,
TLS with mutual authentication, malformed bytes on a node's port.

    node_test.py NODE_PEER [unittest options]

Every process is started in its own process group and killed when its test
ends, passed or failed (and when this script is terminated). Ports are
picked by the nodes themselves (port 0) or asked of the OS.
"""
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

PEER = None
live = []
live_lock = threading.Lock()


def kill_all():
    with live_lock:
        procs = list(live)
        live.clear()
    for p in procs:
        p.kill()


def on_signal(signum, _frame):
    kill_all()
    sys.exit(128 + signum)


class Proc:
    """A node_peer process whose output lines are collected as they come."""

    def __init__(self, *args):
        self.args = [PEER, *args]
        self.popen = subprocess.Popen(
            self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        with live_lock:
            live.append(self)
        self.lines = {"out": [], "err": []}
        self.cond = threading.Condition()
        self.readers = [
            threading.Thread(target=self._read, args=(self.popen.stdout, "out"),
                             daemon=True),
            threading.Thread(target=self._read, args=(self.popen.stderr, "err"),
                             daemon=True),
        ]
        for r in self.readers:
            r.start()

    def _read(self, stream, key):
        for line in stream:
            with self.cond:
                self.lines[key].append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines[key].append(None)
            self.cond.notify_all()

    def mark(self, key="err"):
        """How many lines `key` has so far: expect(since=) looks after them."""
        with self.cond:
            return len(self.lines[key])

    def count(self, pattern, key="err"):
        rx = re.compile(pattern)
        with self.cond:
            return sum(1 for l in self.lines[key] if l is not None and rx.search(l))

    def expect(self, pattern, key="out", timeout=20, since=0):
        """The first line of `key` matching `pattern` (after the first
        `since` lines); fails after `timeout`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[key][since:]:
                    if line is not None and rx.search(line):
                        return rx.search(line)
                if None in self.lines[key]:
                    raise AssertionError(
                        f"{self.args[1:]}: {key} ended without /{pattern}/\n"
                        + self.transcript())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.args[1:]}: no /{pattern}/ on {key} within "
                        f"{timeout} s\n" + self.transcript())
                self.cond.wait(left)

    def saw(self, pattern, key="out"):
        rx = re.compile(pattern)
        with self.cond:
            return any(l is not None and rx.search(l) for l in self.lines[key])

    def wait(self, timeout=30):
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.args[1:]}: still running after "
                                 f"{timeout} s\n" + self.transcript())
        for r in self.readers:
            r.join(5)
        return code

    def transcript(self):
        out = [l for l in self.lines["out"] if l is not None]
        err = [l for l in self.lines["err"] if l is not None]
        return "stdout:\n  " + "\n  ".join(out) + "\nstderr:\n  " + "\n  ".join(err)

    def running(self):
        return self.popen.poll() is None

    def signal(self, sig):
        os.killpg(self.popen.pid, sig)

    def kill(self):
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass
        for r in self.readers:
            r.join(5)
        for f in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            f.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(*args):
    """A node serving "echo" and its port."""
    p = Proc("serve", *args)
    return p, int(p.expect(r"^port (\d+)$").group(1))


def assert_serving(test, port, *args):
    """A reach and a request to the node at `port` work."""
    ask = Proc("ask", "--port", str(port), *args)
    code = ask.wait()
    test.assertEqual(code, 0, ask.transcript())
    test.assertTrue(ask.saw(r"^receipt sku-7 42$"), ask.transcript())


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certs(d):
    """docs/distribution.md's commands: a CA, node certs it signs, an
    encrypted key, and a node whose cert another CA signed."""
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                f"{ca}.key", "-out", f"{ca}.pem", "-days", "30", "-subj",
                f"/CN=troupe test {ca}", cwd=d)

    def node_cert(name, ca, encrypted=False):
        if encrypted:
            openssl("genrsa", "-aes256", "-passout", "pass:open sesame",
                    "-out", f"{name}.key", "2048", cwd=d)
            openssl("req", "-new", "-key", f"{name}.key", "-passin",
                    "pass:open sesame", "-out", f"{name}.csr", "-subj",
                    f"/CN={name}", cwd=d)
        else:
            openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    f"{name}.key", "-out", f"{name}.csr", "-subj",
                    f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem",
                "-CAkey", f"{ca}.key", "-CAcreateserial", "-out",
                f"{name}.pem", "-days", "30", cwd=d)

    node_cert("a", "ca")
    node_cert("b", "ca")
    node_cert("locked", "ca", encrypted=True)
    node_cert("stranger", "other-ca")


class ProcessTest(unittest.TestCase):
    def tearDown(self):
        kill_all()


class ReachTest(ProcessTest):
    def test_publish_and_reach_round_trip_a_user_type(self):
        server, port = serve()
        assert_serving(self, port)
        self.assertTrue(server.running())

    def test_reach_waits_for_a_peer_that_starts_later(self):
        port = free_port()
        ask = Proc("ask", "--port", str(port), "--patience-ms", "60000")
        ask.expect(rf"waiting for echo at 127\.0\.0\.1:{port} \(\d+ s;", "err")
        serve("--port", str(port))
        self.assertEqual(ask.wait(), 0, ask.transcript())
        self.assertTrue(ask.saw(r"^receipt sku-7 42$"), ask.transcript())

    def test_reach_fails_with_node_unreachable_after_its_patience(self):
        port = free_port()
        start = time.monotonic()
        ask = Proc("ask", "--port", str(port), "--patience-ms", "2500")
        code = ask.wait()
        elapsed = time.monotonic() - start
        self.assertEqual(code, 2, ask.transcript())
        self.assertTrue(ask.saw(r"^error: .*node_unreachable", "err"),
                        ask.transcript())
        self.assertTrue(ask.saw(r"^waiting for echo at ", "err"), ask.transcript())
        self.assertGreaterEqual(elapsed, 2.4)
        self.assertLess(elapsed, 30)

    def test_an_unknown_name_fails_with_no_actor_published_at_port(self):
        _, port = serve()
        ask = Proc("ask", "--port", str(port), "--name", "nobody",
                   "--patience-ms", "300")
        self.assertEqual(ask.wait(), 3, ask.transcript())
        self.assertTrue(ask.saw(r"no_actor_published_at_port.*nobody", "err"),
                        ask.transcript())


    def test_a_node_that_stops_closes_its_port(self):
        server, port = serve()
        assert_serving(self, port)
        server.popen.stdin.close()
        self.assertEqual(server.wait(), 0, server.transcript())
        ask = Proc("ask", "--port", str(port), "--patience-ms", "0")
        self.assertEqual(ask.wait(), 2, ask.transcript())


class FailureDetectionTest(ProcessTest):
    def test_a_killed_node_gives_down_remote_link_unreachable(self):
        server, port = serve()
        watch = Proc("watch", "--port", str(port))
        watch.expect(r"^watching$")
        server.signal(signal.SIGKILL)
        watch.expect(r"^down .*remote_link_unreachable", timeout=30)
        self.assertEqual(watch.wait(), 0, watch.transcript())

    def test_a_hung_node_is_down_within_about_node_timeout(self):
        beat = ["--heartbeat-ms", "100", "--timeout-ms", "1000"]
        server, port = serve(*beat)
        watch = Proc("watch", "--port", str(port), *beat)
        watch.expect(r"^watching$")
        # A healthy peer is not taken for dead: three node_timeouts pass
        # without a down (the failure this bounds is a false down_msg).
        with self.assertRaises(AssertionError):
            watch.expect(r"^down", timeout=3)
        server.signal(signal.SIGSTOP)
        stopped = time.monotonic()
        watch.expect(r"^down .*remote_link_unreachable", timeout=30)
        noticed = time.monotonic() - stopped
        print(f"\nhung node noticed after {noticed:.2f} s (node_timeout 1 s)",
              file=sys.stderr)
        self.assertLess(noticed, 30)
        server.signal(signal.SIGCONT)


class TlsTest(ProcessTest):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="troupe-tls-")
        cls.d = Path(cls.dir.name)
        make_certs(cls.d)

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def tls(self, name, ca="ca"):
        return ["--tls", str(self.d / f"{name}.pem"), str(self.d / f"{name}.key"),
                str(self.d / f"{ca}.pem")]

    def test_nodes_with_certificates_of_the_same_ca_talk(self):
        server, port = serve(*self.tls("a"))
        server.expect(r"listening on 127\.0\.0\.1:\d+ \(TLS\)", "err")
        assert_serving(self, port, *self.tls("b"))

    def test_a_tls_node_that_stops_closes_its_port(self):
        server, port = serve(*self.tls("a"))
        assert_serving(self, port, *self.tls("b"))
        server.popen.stdin.close()
        self.assertEqual(server.wait(), 0, server.transcript())
        ask = Proc("ask", "--port", str(port), "--patience-ms", "0",
                   *self.tls("b"))
        self.assertEqual(ask.wait(), 2, ask.transcript())

    def test_an_encrypted_key_with_its_passphrase_works(self):
        _, port = serve(*self.tls("locked"), "--passphrase", "open sesame")
        assert_serving(self, port, *self.tls("a"))

    def test_a_wrong_passphrase_is_an_error_at_start_up(self):
        p = Proc("serve", *self.tls("locked"), "--passphrase", "open says me")
        self.assertEqual(p.wait(), 4, p.transcript())
        self.assertTrue(p.saw(r"^error: TLS: cannot load the private key .*"
                              r"wrong passphrase", "err"), p.transcript())

    def test_a_node_with_a_certificate_of_another_ca_cannot_join(self):
        server, port = serve(*self.tls("a"))
        start = time.monotonic()
        # It trusts its own CA only; the server's certificate fails too.
        ask = Proc("ask", "--port", str(port), "--patience-ms", "20000",
                   *self.tls("stranger", "other-ca"))
        self.assertEqual(ask.wait(), 2, ask.transcript())
        self.assertTrue(ask.saw(r"^error: .*node_unreachable.*refused", "err"),
                        ask.transcript())
        # A refused handshake fails at once, not after the patience.
        self.assertLess(time.monotonic() - start, 15)
        self.assertTrue(ask.saw(r"refused a TLS peer \(connecting to "
                                rf"127\.0\.0\.1:{port}\).*does not verify", "err"),
                        ask.transcript())
        # The stranger refused the node's certificate first, and the node
        # logs the alert it got for it.
        server.expect(r"a TLS peer refused us \(accepting .*unknown CA", "err",
                      timeout=10)
        assert_serving(self, port, *self.tls("b"))

    def test_a_stranger_trusting_our_ca_is_still_refused(self):
        # The stranger's own certificate is what the node checks: trusting
        # the node's CA does not let it in.
        server, port = serve(*self.tls("a"))
        ask = Proc("ask", "--port", str(port), "--patience-ms", "20000",
                   *self.tls("stranger", "ca"))
        self.assertEqual(ask.wait(), 2, ask.transcript())
        server.expect(r"refused a TLS peer \(accepting 127\.0\.0\.1:\d+\): its "
                      r"certificate \[CN = stranger\] issued by \[CN = troupe "
                      r"test other-ca\] does not verify", "err", timeout=10)
        print("\n" + server.transcript(), file=sys.stderr)
        assert_serving(self, port, *self.tls("b"))

    def test_a_plain_peer_cannot_join_a_tls_node(self):
        server, port = serve(*self.tls("a"))
        ask = Proc("ask", "--port", str(port), "--patience-ms", "20000")
        self.assertEqual(ask.wait(), 2, ask.transcript())
        server.expect(r"dropped a connection \(accepting 127\.0\.0\.1:\d+\): not "
                      r"a TLS handshake", "err", timeout=10)
        print("\n" + server.transcript(), file=sys.stderr)
        assert_serving(self, port, *self.tls("b"))


def send_and_see_closed(test, port, payload, wrap=None):
    """Sends `payload` to the node and waits (bounded) until it closes the
    connection: what CAF does with bytes it cannot take."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        s = wrap(raw) if wrap else raw
        try:
            s.sendall(payload)
            while s.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            pass
        finally:
            if s is not raw:
                s.close()


class MalformedBytesTest(ProcessTest):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="troupe-tls-")
        cls.d = Path(cls.dir.name)
        make_certs(cls.d)

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def tls(self, name):
        return ["--tls", str(self.d / f"{name}.pem"), str(self.d / f"{name}.key"),
                str(self.d / "ca.pem")]

    def tls_client(self, name):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(self.d / "ca.pem")
        ctx.load_cert_chain(self.d / f"{name}.pem", self.d / f"{name}.key")
        return lambda raw: ctx.wrap_socket(raw)

    garbage = [
        ("random bytes", bytes(random.Random(7).getrandbits(8) for _ in range(4096))),
        ("an HTTP request", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    ]

    def test_garbage_on_a_plain_port_is_dropped_with_a_log_line(self):
        server, port = serve()
        for what, payload in self.garbage:
            with self.subTest(what):
                since = server.mark()
                send_and_see_closed(self, port, payload)
                server.expect(r"dropped a connection from 127\.0\.0\.1:\d+: its "
                              r"bytes are not CAF's BASP", "err", 10, since)
                self.assertTrue(server.running(), server.transcript())
        assert_serving(self, port)
        # One line per dropped connection, none for a peer that came and
        # went in order.
        self.assertEqual(server.count(r"dropped a connection"), len(self.garbage),
                         server.transcript())

    def test_a_huge_announced_message_is_not_allocated(self):
        server, port = serve()
        # A client handshake header (operation 1) announcing 4 GiB - 256
        # bytes, then one byte of it: CAF alone would allocate it all.
        header = bytes([1, 0, 0, 0]) + (0xFFFFFF00).to_bytes(4, "big") + bytes(24)
        send_and_see_closed(self, port, header + b"x")
        server.expect(r"dropping a connection from 127\.0\.0\.1:\d+: it announced "
                      r"a message of 4294967040 bytes \(the limit is 67108864\)",
                      "err", timeout=10)
        rss_kb = int(re.search(r"VmRSS:\s+(\d+) kB", Path(
            f"/proc/{server.popen.pid}/status").read_text()).group(1))
        self.assertLess(rss_kb, 512 * 1024)
        assert_serving(self, port)

    def test_garbage_on_a_tls_port_is_dropped_with_a_log_line(self):
        server, port = serve(*self.tls("a"))
        for what, payload in self.garbage:
            with self.subTest(what + " before the handshake"):
                since = server.mark()
                send_and_see_closed(self, port, payload)
                server.expect(r"dropped a connection \(accepting 127\.0\.0\.1:\d+\): "
                              r"not a TLS handshake", "err", 10, since)
            with self.subTest(what + " inside TLS"):
                since = server.mark()
                send_and_see_closed(self, port, payload, self.tls_client("b"))
                server.expect(r"dropped a connection from 127\.0\.0\.1:\d+: its "
                              r"bytes are not CAF's BASP", "err", 10, since)
            self.assertTrue(server.running(), server.transcript())
        assert_serving(self, port, *self.tls("b"))


def main():
    global PEER
    PEER = sys.argv.pop(1)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        unittest.main(verbosity=2)
    finally:
        kill_all()


if __name__ == "__main__":
    main()
