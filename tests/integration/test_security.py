"""The control plane under attack, against a real aersd (null backend) with
real gRPC clients and aersctl: token guessing with a viewer token in hand,
lock-out that spares the local socket, an audit log that cannot be written,
1,100 idle TCP connections, a second daemon on the same socket, a regular
file at the socket path, revisions across a restart, hostile requests (NaN,
1 MiB names, oversized messages) and a config that is not UTF-8."""

import json
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import CONFIGS, wait_until  # noqa: E402

AERSCTL = os.environ.get("AERSCTL", "aersctl")
TONE = os.path.join(CONFIGS, "null_tone.yaml")
VIEWER = "viewer-" + "v" * 24
OPERATOR = "operator-" + "o" * 24


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_bytes(path):
    """The bytes of `path`, b"" when there is no such file."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


class SecurityTest(aers_it.JackTestCase):
    tag = "security"
    needs_jack = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        aers_it.generate_stubs(cls.tmp.path)
        global pb, rpc, grpc
        import grpc  # noqa: F401
        import control_pb2 as pb
        import control_pb2_grpc as rpc

    def setUp(self):
        self.tokens = self.tmp.file(f"tokens-{self._testMethodName}")
        with open(self.tokens, "w") as f:
            f.write(f"viewer {VIEWER} monitor\noperator {OPERATOR} alice\n")
        os.chmod(self.tokens, 0o600)
        self.port = free_port()
        self.audit = self.tmp.file(f"audit-{self._testMethodName}.jsonl")

    def start(self, extra=(), tcp=True, audit=None, tag=None, config=TONE, ready=True, cwd=None):
        args = ["--backend", "null", "--audit_log", audit or self.audit]
        if tcp:
            args += ["--listen", f"tcp:127.0.0.1:{self.port}", "--token_file", self.tokens]
        return self.start_aersd(config, args=args + list(extra), tag=tag or self._testMethodName,
                                ready=ready, cwd=cwd)

    def ctl(self, d, *args, token=None, target=None):
        base = [AERSCTL]
        if target:
            base += ["--target", target]
            if token:
                tf = self.tmp.file(f"client-token-{len(token)}-{token[:4]}")
                with open(tf, "w") as f:
                    f.write(token + "\n")
                base += ["--token-file", tf]
        else:
            base += ["--socket", self.socket_of(d)]
        return subprocess.run(base + list(args), capture_output=True, text=True, timeout=30)

    def socket_of(self, d):
        return d.proc.args[d.proc.args.index("--socket") + 1]

    def audit_records(self, path=None):
        with open(path or self.audit, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def tcp_stub(self):
        return rpc.ControlStub(grpc.insecure_channel(f"127.0.0.1:{self.port}"))

    def unix_stub(self, d):
        return rpc.ControlStub(grpc.insecure_channel(f"unix:{self.socket_of(d)}"))

    # --- authentication ---------------------------------------------------

    def test_guessing_with_a_viewer_token_is_locked_out(self):
        d = self.start()
        target = f"127.0.0.1:{self.port}"
        stub = self.tcp_stub()
        locked_after = None
        for i in range(100):
            try:
                stub.GetGraph(pb.GetGraphRequest(),
                              metadata=[("authorization", f"Bearer guess-{i:020d}")], timeout=5)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    locked_after = i
                    break
            if i % 4 == 3:  # the viewer logs in between guesses
                try:
                    stub.GetGraph(pb.GetGraphRequest(),
                                  metadata=[("authorization", f"Bearer {VIEWER}")], timeout=5)
                except grpc.RpcError as e:
                    if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        locked_after = i
                        break
        self.assertIsNotNone(locked_after, "100 guesses never locked out")
        self.assertLessEqual(locked_after, 6)
        # The operator's own token is refused from there too; aersctl says so.
        out = self.ctl(d, "status", token=OPERATOR, target=target)
        self.assertEqual(out.returncode, 8, out.stderr)
        self.assertIn("locked out", out.stderr)
        # The local socket is never locked out.
        self.assertEqual(self.ctl(d, "status").returncode, 0)
        # Guesses are in the audit log, aggregated, with masked addresses.
        recs = [r for r in self.audit_records() if r["operation"] != "plugin"]
        self.assertTrue(any(r["result"] == "UNAUTHENTICATED" for r in recs), recs)
        self.assertLess(len(recs), 10, recs)
        for r in recs:
            self.assertNotIn("127.0.0.1", json.dumps(r))
        self.assertNotIn("ipv4:", d.log())  # no peer address, no client port
        self.assertIn("127.0.xxx.xxx", d.log())

    def test_authentication_comes_before_arguments_and_roles_are_enforced(self):
        d = self.start()
        stub = self.tcp_stub()
        with self.assertRaises(grpc.RpcError) as e:
            stub.Connect(pb.ConnectRequest(**{"from": "..", "to": ""}), timeout=5)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(grpc.RpcError) as e:
            stub.SetParameter(pb.SetParameterRequest(node="level", param="window_ms",
                                                     value=pb.ParamValue(number=50)),
                              metadata=[("authorization", f"Bearer {VIEWER}")], timeout=5)
        self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        r = stub.SetParameter(pb.SetParameterRequest(node="level", param="window_ms",
                                                     value=pb.ParamValue(number=50)),
                              metadata=[("authorization", f"Bearer {OPERATOR}")], timeout=5)
        self.assertTrue(r.applied)
        recs = {(x["operation"], x["result"]): x for x in self.audit_records()}
        denied = recs[("SetParameter", "PERMISSION_DENIED")]
        self.assertEqual(denied["principal"]["name"], "monitor")
        self.assertEqual(denied["principal"]["address"], "127.0.xxx.xxx")
        ok = recs[("SetParameter", "OK")]
        self.assertEqual(ok["principal"]["name"], "alice")
        self.assertEqual(ok["revision_after"], ok["revision_before"] + 1)
        self.assertEqual(self.ctl(d, "status").returncode, 0)

    def test_tls_and_mutual_tls(self):
        d = self.tmp.file("pki")
        os.mkdir(d)

        def sh(*cmd):
            subprocess.run(cmd, check=True, capture_output=True, cwd=d)
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
           "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
           "-keyout", "server.key", "-out", "server.crt")
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
           "-subj", "/CN=aers-test-ca", "-keyout", "ca.key", "-out", "ca.crt")
        sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=alice-laptop",
           "-keyout", "client.key", "-out", "client.csr")
        sh("openssl", "x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
           "-CAcreateserial", "-days", "2", "-out", "client.crt")
        for k in ("server.key", "client.key", "ca.key"):
            os.chmod(os.path.join(d, k), 0o600)
        p = lambda name: os.path.join(d, name)  # noqa: E731
        target = f"localhost:{self.port}"
        tls = ["--tls-ca", p("server.crt")]
        mine = ["--tls-cert", p("client.crt"), "--tls-key", p("client.key")]

        def ctl(*args):
            return subprocess.run([AERSCTL, "--target", target, "--timeout", "10", *args],
                                  capture_output=True, text=True, timeout=60)
        # Mutual TLS, no tokens: the certificate is the credential.
        dm = self.start_aersd(TONE, tag="mtls", args=[
            "--backend", "null", "--audit_log", self.audit, "--listen", f"tcp:127.0.0.1:{self.port}",
            "--tls_cert", p("server.crt"), "--tls_key", p("server.key"),
            "--tls_client_ca", p("ca.crt")])
        for _ in range(10):  # every connection's handshake, not just the first
            out = ctl(*tls, *mine, "status")
            self.assertEqual(out.returncode, 0, out.stderr)
        out = ctl(*tls, *mine, "set", "level", "window_ms", "50")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(ctl(*tls, "status").returncode, 7)  # no client certificate
        self.assertEqual(ctl("--tls-ca", p("ca.crt"), *mine, "status").returncode, 7)  # wrong CA
        rec = [r for r in self.audit_records() if r["operation"] == "SetParameter"][-1]
        self.assertEqual(rec["principal"]["kind"], "certificate")
        self.assertIn("CN=alice-laptop", rec["principal"]["name"])
        dm.stop()
        # TLS plus tokens: the token decides the role.
        dt = self.start_aersd(TONE, tag="tls-tokens", args=[
            "--backend", "null", "--audit_log", self.audit, "--listen", f"tcp:127.0.0.1:{self.port}",
            "--tls_cert", p("server.crt"), "--tls_key", p("server.key"),
            "--token_file", self.tokens])
        viewer = self.tmp.file("viewer-token")
        with open(viewer, "w") as f:
            f.write(f"viewer {VIEWER} monitor\n")  # a daemon token-file line works as is
        for _ in range(5):
            out = ctl(*tls, "--token-file", viewer, "status")
            self.assertEqual(out.returncode, 0, out.stderr)
        out = ctl(*tls, "--token-file", viewer, "set", "level", "window_ms", "60")
        self.assertEqual(out.returncode, 8, out.stderr)
        self.assertIn("permission denied", out.stderr)
        dt.stop()

    # --- audit ------------------------------------------------------------

    def test_a_parameter_stream_is_audited(self):
        # The opening (before any value applies), each save with its net
        # change, and the value that ended the stream.
        audit = self.tmp.file("stream-audit.jsonl")
        d = self.start(tcp=False, audit=audit, tag="streamaudit")
        out = subprocess.run([AERSCTL, "--socket", self.socket_of(d), "set", "--stream", "osc"],
                             input="level_db -20\nlevel_db 1e9\n", capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertIn("stdin:2: values[1]", out.stderr)
        records = [r for r in self.audit_records(audit) if r["operation"] == "StreamParameters"]
        self.assertEqual([r["result"] for r in records], ["OK", "OK", "INVALID_ARGUMENT"],
                         records)
        self.assertEqual(records[1]["changes"], ["~ node osc: level_db -12 -> -20"])
        self.assertIn("values[1]", records[2]["message"])
        self.assertEqual(records[0]["principal"]["kind"], "unix")

    def test_an_audit_log_that_cannot_be_written_refuses_changes(self):
        d = self.start(audit="/dev/full", tcp=False)
        before = self.ctl(d, "graph", "--json")
        state = d.proc.args[d.proc.args.index("--state_file") + 1]

        def state_files():
            # The state file and its journal (state_store.h).
            out = []
            for p in (state, state + ".journal"):
                with open(p, "rb") as f:
                    out.append(f.read())
            return out
        state_before = state_files()
        out = self.ctl(d, "set", "level", "window_ms", "50")
        self.assertEqual(out.returncode, 7, out.stderr)
        self.assertIn("audit log /dev/full", out.stderr)
        self.assertEqual(json.loads(self.ctl(d, "graph", "--json").stdout),
                         json.loads(before.stdout))
        self.assertEqual(state_files(), state_before)
        # Audio goes on; reads still work.
        self.assertEqual(self.ctl(d, "status").returncode, 0)
        self.assertEqual(d.log().count("control-plane changes are refused"), 1)

    def test_an_edit_audited_but_never_saved_gets_a_follow_up_record(self):
        # The daemon killed between an edit's audit record and its journal
        # record: the restart does not have the edit, and the audit log must
        # not go on claiming it. Made here by a kill -9 after two edits and
        # cutting the journal back to the first.
        state = self.tmp.file("lost-state/graph.yaml")
        audit = self.tmp.file("lost-audit.jsonl")
        journal = state + ".journal"

        def read(p):  # the records, without the journal's zero-filled room
            with open(p, "rb") as f:
                return f.read().rstrip(b"\0")
        for attempt in range(3):
            for p in (state, journal, audit):
                if os.path.exists(p):
                    os.unlink(p)
            d = self.start(tcp=False, audit=audit, tag=f"lost{attempt}",
                           extra=["--state_file", state])
            self.assertEqual(self.ctl(d, "set", "level", "window_ms", "50").returncode, 0)
            first = read(journal)
            out = self.ctl(d, "set", "level", "window_ms", "60")
            self.assertEqual(out.returncode, 0, out.stderr)
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(timeout=10)
            d.stop()
            after = read(journal)
            if first and len(after) > len(first) and after.startswith(first):
                break  # no checkpoint (edits paused for a second) between the two
        else:
            self.fail("a checkpoint came between the two edits in three tries")
        with open(journal, "r+b") as f:  # the second record never written
            f.seek(len(first))
            f.write(b"\0" * (len(after) - len(first)))
        revs = [r["revision_after"] for r in self.audit_records(audit)
                if r["operation"] == "SetParameter" and r["result"] == "OK"]
        self.assertEqual(len(revs), 2, self.audit_records(audit))
        d = self.start(tcp=False, audit=audit, tag="lost-restart", extra=["--state_file", state])
        graph = json.loads(self.ctl(d, "graph", "--json").stdout)
        (level,) = [n for n in graph["graph"]["nodes"] if n["name"] == "level"]
        self.assertEqual(level["params"]["window_ms"], {"number": 50.0})
        self.assertIn(f"the audit log shows changes applied up to revision {revs[1]}, but the "
                      f"state file held revision {revs[0]}", d.log())
        last = self.audit_records(audit)[-1]
        self.assertEqual((last["operation"], last["result"], last["revision_before"]),
                         ("restart", "DATA_LOSS", revs[1]), last)
        self.assertGreater(last["revision_after"], revs[1], "revisions never repeat")
        self.assertEqual(last["principal"]["kind"], "internal")
        # Said once: the next start finds the state ahead of the audit log.
        d.stop()
        d = self.start(tcp=False, audit=audit, tag="lost-again", extra=["--state_file", state])
        self.assertEqual(self.ctl(d, "status").returncode, 0)
        d.stop()
        self.assertEqual(sum(r["operation"] == "restart" for r in self.audit_records(audit)), 1)
        self.assertNotIn("the audit log shows", d.log())

    def test_reload_is_audited_and_an_unreadable_config_keeps_audio(self):
        config = self.tmp.file("reload.yaml")
        with open(TONE) as f:
            text = f.read()
        with open(config, "w") as f:
            f.write(text)
        d = self.start(tcp=False, config=config)
        os.remove(config)
        os.mkdir(config)  # a directory where the config was
        mark = len(d.log())
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload rejected", after=mark)
        self.assertIsNone(d.proc.poll())
        os.rmdir(config)
        # Not UTF-8, in a key: refused, and the error event stays valid UTF-8.
        with open(config, "wb") as f:
            f.write(text.encode() + b"\nbogus\xff\xfe: 1\n")
        watcher = subprocess.Popen([AERSCTL, "--socket", self.socket_of(d), "watch", "--json"],
                                   stdout=subprocess.PIPE)
        time.sleep(0.5)
        mark = len(d.log())
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload rejected", after=mark)
        with open(config, "w") as f:
            f.write(text.replace("window_ms: 100", "window_ms: 50"))
        d.signal(signal.SIGHUP)
        d.wait_log(r"reloaded: revision", after=mark)
        events = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("graph_changed" in e for e in events):
            line = watcher.stdout.readline()
            if not line:
                break
            events.append(json.loads(line.decode("utf-8")))  # strict UTF-8
        watcher.terminate()
        watcher.wait()
        watcher.stdout.close()
        errors = [e["config_reloaded"].get("error", "") for e in events if "config_reloaded" in e]
        self.assertTrue(any("\ufffd" in err for err in errors), events)
        self.assertTrue(any("graph_changed" in e for e in events), events)
        recs = [r for r in self.audit_records() if r["operation"] == "reload"]
        self.assertEqual([r["result"] for r in recs],
                         ["FAILED_PRECONDITION", "INVALID_ARGUMENT", "OK"], recs)
        self.assertEqual(recs[-1]["principal"], {"kind": "internal", "name": "SIGHUP"})

    # --- limits -----------------------------------------------------------

    def test_hostile_requests_are_refused_naming_the_field(self):
        d = self.start(tcp=False)
        stub = self.unix_stub(d)
        with self.assertRaises(grpc.RpcError) as e:
            for _ in stub.StreamMeters(pb.StreamMetersRequest(rate_hz=float("nan")), timeout=5):
                pass
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("rate_hz", e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            stub.AddNode(pb.AddNodeRequest(node=pb.Node(name="x" * (1 << 20), kind="gain")),
                         timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("node.name: 1048576 bytes", e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            stub.Edit(pb.EditRequest(ops=[pb.EditOp()]), timeout=5)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("ops[0].op: not set", e.exception.details())
        # A message over 2 MiB: refused as too large, never as a lock-out.
        big = self.tmp.file("big.yaml")
        with open(big, "w") as f:
            f.write("version: 1\n" + "#" * (5 << 20) + "\n")
        out = self.ctl(d, "apply", big)
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertIn("request too large", out.stderr)
        self.assertNotIn("locked", out.stderr)
        # Bytes that are not UTF-8 in a string field fail inside gRPC's
        # parser, which logs each one: 2,000 of them add a line or two.
        raw = grpc.insecure_channel(f"unix:{self.socket_of(d)}").unary_unary(
            "/aers.v1.Control/Connect")
        size_before = os.path.getsize(d.log_path)
        for _ in range(2000):
            with self.assertRaises(grpc.RpcError):
                raw(b"\x0a\x02\xff\xfe", timeout=5)
        self.assertLess(os.path.getsize(d.log_path) - size_before, 4096)
        # Afterwards everything still works.
        self.assertEqual(self.ctl(d, "graph").returncode, 0)

    def test_idle_tcp_connections_do_not_starve_the_local_socket(self):
        # The worst case: a descriptor limit aersd cannot raise (soft = hard
        # = 1024), 1,100 idle TCP connections.
        d = self.start()
        subprocess.run(["prlimit", "--pid", str(d.proc.pid), "--nofile=1024:1024"], check=True)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < 2048:
            self.skipTest(f"this test needs 2048 descriptors of its own (hard limit {hard})")
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
        conns = []
        try:
            for _ in range(1100):
                conns.append(socket.create_connection(("127.0.0.1", self.port), timeout=5))
            t0 = time.monotonic()
            out = self.ctl(d, "status")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertLess(time.monotonic() - t0, 10)
            # Beyond --max_tcp_connections (256; 32 per source) aersd closes
            # them at once. A closed connection stays closed: count until
            # the gate has worked through the backlog.
            closed = set()

            def count_closed():
                for i, c in enumerate(conns):
                    if i in closed:
                        continue
                    c.setblocking(False)
                    try:
                        if c.recv(1) == b"":
                            closed.add(i)
                    except BlockingIOError:
                        pass
                    except ConnectionResetError:
                        closed.add(i)
                return len(closed) >= 1100 - 256
            wait_until(count_closed, 30, "the gate to close the connections over its limits")
            wait_until(lambda: "connection refused" in d.log(), 5, "a refusal in the log")
        finally:
            for c in conns:
                c.close()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        # Once they are gone, TCP clients get in again.
        wait_until(lambda: self.ctl(d, "status", token=VIEWER,
                                    target=f"127.0.0.1:{self.port}").returncode == 0,
                   15, "a TCP client to get in after the flood")

    def test_the_unix_socket_accepts_again_after_running_out_of_descriptors(self):
        d = self.start(tcp=False, tag="emfile")
        pid = str(d.proc.pid)
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        # A soft limit of 1: a new descriptor gets the lowest free number,
        # which is above it, so every accept4() fails with EMFILE (a limit at
        # the count open would not do: a lower number freed meanwhile is
        # handed out again), and the daemon says so.
        subprocess.run(["prlimit", "--pid", pid, f"--nofile=1:{hard}"], check=True)
        out = subprocess.run([AERSCTL, "--socket", self.socket_of(d), "--timeout", "2", "status"],
                             capture_output=True, text=True, timeout=60)
        self.assertNotEqual(out.returncode, 0, out.stdout)
        wait_until(lambda: "cannot accept a connection: Too many open files" in d.log(), 10,
                   "the failed accept in the log")
        # Descriptors free again: the socket accepts again.
        subprocess.run(["prlimit", "--pid", pid, f"--nofile=1024:{hard}"], check=True)
        out = self.ctl(d, "status")
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_idle_unix_connections_are_capped(self):
        # 600 idle connections to the Unix socket under a limit of 1024
        # descriptors: past the socket's cap of 256 they are closed at once,
        # the daemon's descriptors stay bounded, and once the flood is gone
        # a client gets in. (Local peers are operators: one that holds every
        # slot blocks the others until it lets go, as with any cap.)
        d = self.start(tcp=False, tag="unixflood")
        pid = str(d.proc.pid)
        in_use = len(os.listdir(f"/proc/{pid}/fd"))
        subprocess.run(["prlimit", "--pid", pid, "--nofile=1024:1024"], check=True)
        conns = []
        try:
            for _ in range(600):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect(self.socket_of(d))
                conns.append(c)
            wait_until(lambda: "unix:" in d.log() and "connection refused" in d.log(), 30,
                       "a refusal of the Unix socket in the log")
            self.assertLessEqual(len(os.listdir(f"/proc/{pid}/fd")), in_use + 256 + 16)
        finally:
            for c in conns:
                c.close()
        wait_until(lambda: self.ctl(d, "status").returncode == 0, 15,
                   "a client to get in after the flood")

    # --- lifecycle --------------------------------------------------------

    def test_the_socket_path_is_never_taken_over(self):
        path = self.tmp.file("taken.sock")
        with open(path, "w") as f:
            f.write("not a socket")
        d = self.start(tcp=False, extra=["--socket", path], ready=False)
        self.assertEqual(d.wait_exit(), 6)
        self.assertIn("is not a socket", d.log())
        with open(path) as f:
            self.assertEqual(f.read(), "not a socket")
        self.assertFalse(os.path.exists(path + ".lock"), "nothing created beside a refused path")
        os.remove(path)
        first = self.start(tcp=False, extra=["--socket", path], tag="first")
        second = self.start(tcp=False, extra=["--socket", path], tag="second", ready=False)
        self.assertEqual(second.wait_exit(), 6)
        self.assertIn("another aersd runs on this socket", second.log())
        self.assertEqual(self.ctl(first, "status").returncode, 0)
        first.stop()
        self.assertFalse(os.path.exists(path))

    def test_a_socket_named_without_a_directory_is_in_the_working_directory(self):
        work = self.tmp.file("cwd")
        os.makedirs(work, mode=0o750)
        d = self.start(tcp=False, extra=["--socket", "bare.sock"], tag="bare", cwd=work)
        path = os.path.join(work, "bare.sock")
        self.assertTrue(stat.S_ISSOCK(os.lstat(path).st_mode))
        r = subprocess.run([AERSCTL, "--socket", "bare.sock", "status"], capture_output=True,
                           text=True, timeout=30, cwd=work)
        self.assertEqual(r.returncode, 0, r.stderr)
        d.stop()
        self.assertFalse(os.path.exists(path))
        # A working directory others may write to is refused as any socket
        # directory is, and the message names the socket.
        open_dir = self.tmp.file("cwd-open")
        os.makedirs(open_dir)
        os.chmod(open_dir, 0o777)
        refused = self.start(tcp=False, extra=["--socket", "bare.sock"], tag="bare-open",
                             cwd=open_dir, ready=False)
        self.assertEqual(refused.wait_exit(), 6)
        self.assertIn("socket bare.sock: .: the socket directory must be owned", refused.log())
        self.assertEqual(os.listdir(open_dir), [])

    def test_aersctl_reaches_any_socket_path_and_reads_only_regular_files(self):
        # gRPC reads "unix:PATH" as a URI; aersctl encodes the path so that
        # '#', '?', '%' and spaces reach the socket as they are.
        odd = self.tmp.file("a#b?c%41 d.sock")
        d = self.start(tcp=False, extra=["--socket", odd], tag="odd")
        r = subprocess.run([AERSCTL, "--socket", odd, "health"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "SERVING"), r.stderr)
        # A comma would be read as a list of addresses: refused by both.
        comma = self.tmp.file("x,y.sock")
        refused = self.start(tcp=False, extra=["--socket", comma], tag="comma", ready=False)
        self.assertEqual(refused.wait_exit(), 6)
        self.assertIn("a comma in a socket path", refused.log())
        self.assertFalse(os.path.exists(comma + ".lock"))

        def ctl(*args):
            return subprocess.run([AERSCTL] + list(args), capture_output=True, text=True,
                                  timeout=20)
        r = ctl("--socket", comma, "health")
        self.assertEqual(r.returncode, 2)
        self.assertIn("comma", r.stderr)
        long_path = "/tmp/" + "m" * 110 + ".sock"
        r = ctl("--socket", long_path, "status")
        self.assertEqual(r.returncode, 2)
        self.assertIn("longer than a Unix socket path can be (107)", r.stderr)
        self.assertNotIn("parse_address", r.stderr)  # no gRPC log lines
        r = ctl("--socket", "", "health")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--socket: empty path", r.stderr)
        # Files: a directory, a FIFO and a device are refused at once,
        # named, never read (a FIFO blocked, /dev/zero grew without end).
        fifo = self.tmp.file("aersctl-fifo")
        os.mkfifo(fifo)
        cases = [
            (["apply", self.tmp.path], 3, f"{self.tmp.path}: a directory, not a regular file"),
            (["apply", fifo], 3, f"{fifo}: a FIFO, not a regular file"),
            (["apply", "/dev/zero", "--dry-run"], 3,
             "/dev/zero: a character device, not a regular file"),
            (["--token-file", fifo, "status"], 2, f"--token-file {fifo}: a FIFO"),
            (["--tls-ca", self.tmp.path, "--target", "127.0.0.1:1", "health"], 2,
             "--tls-ca"),
            (["--tls-ca", TONE, "--target", "127.0.0.1:1", "health"], 2,
             f"--tls-ca {TONE}: no PEM certificate in it"),
            # After "--", a file whose name starts with '-'.
            (["apply", "--", "-missing.yaml"], 3, "-missing.yaml: cannot open"),
        ]
        for args, rc, text in cases:
            with self.subTest(args=args):
                if "--target" not in args and "--socket" not in args:
                    args = ["--socket", odd] + args
                r = ctl(*args)
                self.assertEqual(r.returncode, rc, r.stderr)
                self.assertIn(text, r.stderr)
        d.stop()

    def test_one_state_file_serves_one_daemon(self):
        state = self.tmp.file("shared-state.yaml")
        first = self.start(tcp=False, extra=["--state_file", state], tag="state-first")
        self.assertEqual(self.ctl(first, "set", "level", "window_ms", "50").returncode, 0)
        journal = state + ".journal"
        saved, journal_before = read_bytes(state), read_bytes(journal)
        second = self.start(tcp=False, extra=["--state_file", state, "--reset_state"],
                            tag="state-second", ready=False)
        self.assertEqual(second.wait_exit(), 3)
        self.assertIn(f"{state}: in use by another aersd (pid {first.proc.pid})", second.log())
        self.assertEqual(read_bytes(state), saved)
        self.assertEqual(read_bytes(journal), journal_before)
        first.stop()
        third = self.start(tcp=False, extra=["--state_file", state], tag="state-third")
        graph = json.loads(self.ctl(third, "graph", "--json").stdout)
        level = [n for n in graph["graph"]["nodes"] if n["name"] == "level"][0]
        self.assertIn("50", json.dumps(level))  # the first daemon's edit, kept
        third.stop()

    def test_paths_that_would_overwrite_each_other_or_the_defaults_are_refused(self):
        config = self.tmp.file("own-config.yaml")
        shutil.copy(TONE, config)
        text = read_bytes(config)
        state = self.tmp.file("clash-state.yaml")
        cases = [
            (["--state_file", config], "--config " + config + " and --state_file " + config),
            (["--state_file", state, "--stats_file", os.path.join(self.tmp.path, ".",
                                                                  "clash-state.yaml")],
             "are the same file"),
            (["--state_file", state, "--audit_log", config], "--config"),
            (["--state_file="], "--state_file: empty path"),
            (["--state_file", state, "--socket="], "--socket: empty path"),
            (["--state_file", state, "--output", self.tmp.file("o.wav")],
             "--output is a flag of `aersd render`"),
            (["--state_file", state, "--stats_file", self.tmp.path],
             f"--stats_file {self.tmp.path}: exists and is not a regular file"),
            # The files beside them: the state's lock, the socket's lock.
            (["--state_file", state, "--stats_file", state + ".lock"],
             "the state file's lock"),
            (["--state_file", state, "--audit_log", state + ".journal"],
             "the state file's journal"),
            (["--state_file", state, "--socket", self.tmp.file("s.sock"), "--listen",
              "unix:" + self.tmp.file("s.sock")], "--socket"),
            # A file only read may not be one the daemon writes either.
            (["--state_file", state, "--token_file", self.tmp.file("tok"), "--stats_file",
              self.tmp.file("tok")], "--stats_file"),
            # A path ending in '/' names a directory.
            (["--state_file", self.tmp.file("newdir") + "/"], "ends in '/'"),
            (["--state_file", state, "--stats_file", self.tmp.file("statsdir") + "/"],
             "ends in '/'"),
        ]
        for i, (extra, text_expected) in enumerate(cases):
            with self.subTest(extra=extra):
                d = self.start_aersd(config, args=["--backend", "null"] + extra,
                                     tag=f"clash-{i}", ready=False)
                self.assertEqual(d.wait_exit(), 2, d.log())
                self.assertIn(text_expected, d.log())
                self.assertEqual(read_bytes(config), text)
                self.assertFalse(os.path.exists(state))
                self.assertFalse(os.path.exists(state + ".lock"))
        for name in ("newdir", "statsdir"):
            self.assertFalse(os.path.exists(self.tmp.file(name)))
        # The config's plugins.audit_log is one of the daemon's files too.
        plugin_config = self.tmp.file("plugin-audit.yaml")
        os.makedirs(self.tmp.file("proot"), mode=0o755, exist_ok=True)
        with open(plugin_config, "w") as f:
            f.write(text.decode().replace(
                "version: 1\n",
                "version: 1\nplugins: {root: " + self.tmp.file("proot") +
                ", require_signature: false, audit_log: " + state + "}\n", 1))
        d = self.start_aersd(plugin_config, args=["--backend", "null", "--state_file", state],
                             tag="clash-plugin-audit", ready=False)
        self.assertEqual(d.wait_exit(), 3, d.log())
        self.assertIn(f"--state_file {state} and {plugin_config}: plugins.audit_log {state} are "
                      "the same file", d.log())
        self.assertFalse(os.path.exists(state))
        # A lock file that is a symbolic link refuses the start as a held
        # lock does (it cannot be taken).
        os.symlink(self.tmp.file("nowhere"), state + ".lock")
        d = self.start_aersd(config, args=["--backend", "null", "--state_file", state],
                             tag="lock-symlink", ready=False)
        self.assertEqual(d.wait_exit(), 3, d.log())
        self.assertIn(f"its lock file {state}.lock is a symbolic link", d.log())
        os.remove(state + ".lock")
        # A socket path too long for sun_path creates nothing.
        deep = os.path.join(self.tmp.path, "d" * 60, "e" * 60 + ".sock")
        d = self.start_aersd(config, args=["--backend", "null", "--state_file", state,
                                           "--socket", deep], tag="long-socket", ready=False)
        self.assertEqual(d.wait_exit(), 6, d.log())
        self.assertIn("longer than a Unix socket path can be (107)", d.log())
        self.assertFalse(os.path.exists(os.path.dirname(deep)))

    def test_a_state_path_that_is_not_a_file_is_left_alone(self):
        fifo = self.tmp.file("state-fifo")
        os.mkfifo(fifo)
        d = self.start(tcp=False, extra=["--state_file", fifo], tag="fifo", ready=False)
        self.assertEqual(d.wait_exit(), 3)
        self.assertIn("is not a regular file", d.log())
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))

    def test_revisions_never_repeat_across_restarts(self):
        state = self.tmp.file("rev-state.yaml")
        d = self.start(tcp=False, extra=["--state_file", state], tag="rev1")
        self.assertEqual(self.ctl(d, "set", "level", "window_ms", "50").returncode, 0)
        rev = json.loads(self.ctl(d, "graph", "--json").stdout)["revision"]
        d.stop()
        d2 = self.start(tcp=False, extra=["--state_file", state], tag="rev2")
        rev2 = json.loads(self.ctl(d2, "graph", "--json").stdout)["revision"]
        self.assertGreater(int(rev2), int(rev))
        out = self.ctl(d2, "set", "level", "window_ms", "60", "--expect-revision", str(rev))
        self.assertEqual(out.returncode, 5, out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
