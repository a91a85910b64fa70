#!/usr/bin/env python3
"""Start-up time of `tfpilot serve`: from exec to the first 200 on GET /healthz.

Usage: startup.py BINARY RUNS. Prints one line per run and a summary (milliseconds).
Each run gets an empty environment but PATH, a free port and a fresh data directory.
"""
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def one_run(binary: str) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(port),
               "TFPILOT_STORE": f"fs://{data}"}
        start = time.perf_counter()
        proc = subprocess.Popen([binary, "serve", "--host", "127.0.0.1"], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            while not healthy(port):
                if proc.poll() is not None:
                    sys.exit(f"tfpilot exited with {proc.returncode} before answering")
                if time.perf_counter() - start > 10:
                    sys.exit("no 200 from /healthz within 10 s")
                time.sleep(0.0005)
            return (time.perf_counter() - start) * 1000
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def main() -> None:
    binary, runs = sys.argv[1], int(sys.argv[2])
    times = []
    for i in range(runs):
        ms = one_run(binary)
        times.append(ms)
        print(f"  run {i + 1:2}: {ms:6.1f} ms")
    times.sort()
    print(f"startup (exec -> first 200 on /healthz), {runs} runs: "
          f"median {statistics.median(times):.1f} ms, min {times[0]:.1f} ms, "
          f"max {times[-1]:.1f} ms")


if __name__ == "__main__":
    main()
