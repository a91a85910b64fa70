#!/usr/bin/env python3
"""Cold start of the tfpilot binary, as GitHub sees it: from exec to the first answered webhook.

Usage: startup.py BINARY RUNS

* serve: exec `tfpilot serve`, then POST the signed Function URL fixture's `issue_comment` to
  /webhooks/github (retrying while the port is closed) until the first 202: the delivery was
  verified and durably stored.
* lambda: exec the binary with AWS_LAMBDA_RUNTIME_API pointing at a tiny runtime API emulator
  (below) that hands out one Function URL invocation (tests/fixtures/lambda/function-url-webhook.json)
  and records when the function posts its response; the time is exec -> that response (statusCode
  202). This is Lambda's init plus the first invocation, without the download of the package.

Each run gets an empty environment but PATH, a free port and a fresh data directory. Prints one
line per run and a summary (milliseconds).
"""
import http.client
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
EVENT_FILE = os.path.join(ROOT, "tests/fixtures/lambda/function-url-webhook.json")
# The secret the fixture is signed with (tests/fixtures/lambda/make-fixtures.mjs).
SECRET = "tfpilot-test-webhook-secret"
TIMEOUT_S = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_event() -> dict:
    with open(EVENT_FILE, encoding="utf-8") as f:
        return json.load(f)


def post_webhook(port: int, event: dict, delivery: str):
    """The status of one signed delivery, or None while nobody listens."""
    headers = {k: v for k, v in event["headers"].items()
               if k.startswith("x-github") or k.startswith("x-hub") or k == "content-type"}
    headers["x-github-delivery"] = delivery
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        conn.request("POST", "/webhooks/github", body=event["body"].encode(), headers=headers)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def environment(data: str) -> dict:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TFPILOT_WEBHOOK_SECRET": SECRET,
            "TFPILOT_STORE": f"fs://{data}"}


def serve_run(binary: str, event: dict, run: int) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = environment(data) | {"PORT": str(port)}
        start = time.perf_counter()
        proc = subprocess.Popen([binary, "serve", "--host", "127.0.0.1"], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            while True:
                status = post_webhook(port, event, f"5747-{os.getpid()}-{run}")
                if status == 202:
                    return (time.perf_counter() - start) * 1000
                if status is not None:
                    sys.exit(f"serve answered {status}, not 202, to the first webhook")
                if proc.poll() is not None:
                    sys.exit(f"tfpilot exited with {proc.returncode} before answering")
                if time.perf_counter() - start > TIMEOUT_S:
                    sys.exit(f"no 202 within {TIMEOUT_S} s")
                time.sleep(0.0005)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """The Lambda runtime API, as far as one invocation needs it."""

    protocol_version = "HTTP/1.1"
    event = b""
    answered = None  # threading.Event, set with the response
    response = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path != "/2018-06-01/runtime/invocation/next" or self.server.handed_out:
            # The second /next waits, as on Lambda, until the run is stopped.
            time.sleep(TIMEOUT_S)
            self.send_error(404)
            return
        self.server.handed_out = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.event)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-0001")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                         "arn:aws:lambda:eu-west-1:123456789012:function:tfpilot-webhook")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.end_headers()
        self.wfile.write(self.event)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.response = (self.path, body)
        self.server.answered.set()


def lambda_run(binary: str, event: dict) -> float:
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    api.daemon_threads = True
    api.handle_error = lambda request, address: None  # the killed function's open /next
    api.handed_out = False
    api.answered = threading.Event()
    api.response = None
    RuntimeApi.event = json.dumps(event).encode()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as data:
        env = environment(data) | {
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
            "TFPILOT_LAMBDA_FUNCTION": "webhook",
            "AWS_LAMBDA_FUNCTION_NAME": "tfpilot-webhook",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_REGION": "eu-west-1",
        }
        start = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not api.answered.wait(TIMEOUT_S):
                sys.exit(f"the function answered no invocation within {TIMEOUT_S} s "
                         f"(exit code {proc.poll()})")
            elapsed = (time.perf_counter() - start) * 1000
        finally:
            proc.kill()
            proc.wait(timeout=10)
            api.shutdown()
    path, body = api.response
    if not path.endswith("/response"):
        sys.exit(f"the function reported an error: {path} {body[:300]!r}")
    status = json.loads(body).get("statusCode")
    if status != 202:
        sys.exit(f"the function answered {status}, not 202: {body[:300]!r}")
    return elapsed


def report(name: str, times: list) -> None:
    times = sorted(times)
    print(f"startup {name}, {len(times)} runs: median {statistics.median(times):.1f} ms, "
          f"min {times[0]:.1f} ms, max {times[-1]:.1f} ms")


def main() -> None:
    binary, runs = sys.argv[1], int(sys.argv[2])
    event = load_event()
    serve, lam = [], []
    # Alternated, so machine noise hits both.
    for i in range(runs):
        serve.append(serve_run(binary, event, i))
        lam.append(lambda_run(binary, event))
        print(f"  run {i + 1:2}: serve {serve[-1]:6.1f} ms   lambda {lam[-1]:6.1f} ms")
    report("serve (exec -> first 202 on a signed webhook)", serve)
    report("lambda (exec -> first Function URL invocation answered 202)", lam)


if __name__ == "__main__":
    main()
