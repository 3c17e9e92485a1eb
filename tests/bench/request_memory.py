#!/usr/bin/python3
"""Resident memory of aersd taken by large control-plane requests, against
its own idle figure from the same run: 400 ApplyGraph requests of 2 to 8 MiB
(every one refused: too long or too large), 64 at a time, on the null
backend. Prints idle RSS, RSS after, and the ratio.

    tests/bench/request_memory.py [BUILD_DIR]     (default: build)

Needs Debian's python3 (python3-grpcio) and protoc."""
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def main(build):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["protoc", f"-I{ROOT}/proto/aers/v1", f"--python_out={tmp}",
                        f"--grpc_out={tmp}", "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                        "control.proto"], check=True)
        sys.path.insert(0, tmp)
        import grpc
        import control_pb2 as pb
        import control_pb2_grpc as rpc
        sock = os.path.join(tmp, "aersd.sock")
        daemon = subprocess.Popen([
            os.path.join(build, "daemon", "aersd"), "--config",
            os.path.join(ROOT, "tests", "integration", "configs", "null_tone.yaml"),
            "--backend", "null", "--socket", sock, "--state_file",
            os.path.join(tmp, "state.yaml"), "--log_level", "error"])
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(sock) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)
            idle = rss_kib(daemon.pid)
            stub = rpc.ControlStub(grpc.insecure_channel(
                f"unix:{sock}", options=[("grpc.max_send_message_length", 64 << 20)]))
            sizes = [(2 << 20) - 4096, 8 << 20]

            def call(i):
                text = "version: 1\n" + "#" * sizes[i % 2] + "\n"
                try:
                    stub.ApplyGraph(pb.ApplyGraphRequest(yaml=text, dry_run=True), timeout=60)
                    return "OK"
                except grpc.RpcError as e:
                    return e.code().name
            with concurrent.futures.ThreadPoolExecutor(64) as ex:
                codes = sorted(set(ex.map(call, range(400))))
            after = rss_kib(daemon.pid)
            print(f"codes: {', '.join(codes)}")
            print(f"idle RSS {idle / 1024:.1f} MiB, after 400 requests of 2-8 MiB "
                  f"(64 at once) {after / 1024:.1f} MiB, ratio {after / idle:.2f}x")
        finally:
            daemon.terminate()
            daemon.wait()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
