#!/usr/bin/env bash
# The webhook front door on 127.0.0.1, three servers in one run, and the binary's cold start.
#
#   benches/serve-load.sh                           # builds what it needs
#   ROUNDS=5 DURATION=15 CONNECTIONS=16 benches/serve-load.sh
#
# Every server gets the same signed 13 KB `issue_comment` (the Function URL fixture's body), each
# request with its own X-GitHub-Delivery, from `wrk -t1 -cCONNECTIONS` for DURATION s (after
# WARMUP s not counted):
# * tfpilot — `tfpilot serve` (release build) on a fresh fs store: verifies the signature, parses,
#   stores the delivery durably (group commit: one fdatasync per batch) and only then answers 202;
# * probot  — Probot PROBOT_VERSION (Node), installed from npm into a scratch directory: a minimal
#   app that verifies the signature with the same secret and routes `issue_comment` to an empty
#   handler (200); it stores nothing;
# * limit   — benches/bare_axum.rs: axum reads the body and answers 202; no check, no storage.
# Rounds alternate tfpilot, probot, limit, tfpilot, … (each server started fresh for its round) so
# machine noise hits all three. Per round and as medians: req/s, p99 latency, peak RSS (VmHWM),
# then the ratios. After each tfpilot round, with the front door idle, DRAIN s of its worker
# finishing the backlog the round left (items/s: claim, handler, done marker). TfPilot's store is
# under target/serve-load/ (the disk under test); between rounds the script syncs and, as root,
# drops the page cache. Before the rounds, benches/startup.py: exec -> first answered webhook,
# for `serve` and for the Lambda function (STARTUP_RUNS runs each). wrk and the servers share
# the machine's cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
DRAIN="${DRAIN:-10}"
[[ "$DRAIN" =~ ^[1-9][0-9]*$ ]] || { echo "DRAIN must be a whole number of seconds, at least 1" >&2; exit 1; }
CONNECTIONS="${CONNECTIONS:-16}"
STARTUP_RUNS="${STARTUP_RUNS:-20}"
PROBOT_VERSION="${PROBOT_VERSION:-14.3.2}"
SECRET="tfpilot-test-webhook-secret" # the fixture's (tests/fixtures/lambda/make-fixtures.mjs)
EVENT_FILE="tests/fixtures/lambda/function-url-webhook.json"

for tool in wrk python3 openssl curl node npm; do
  command -v "$tool" >/dev/null || {
    echo "benchmark needs $tool (Debian: apt-get install $tool; node and npm: apt-get install nodejs npm)" >&2
    exit 1
  }
done

target_dir="${CARGO_TARGET_DIR:-target}"
BIN="${TFPILOT_BIN:-$target_dir/release/tfpilot}"
if [ -z "${TFPILOT_BIN:-}" ]; then
  cargo build --release --bin tfpilot
fi
LIMIT_BIN="${LIMIT_BIN:-$(cargo bench --bench bare_axum --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "bare_axum" and m.get("executable"):
        print(m["executable"])')}"
[ -x "$LIMIT_BIN" ] || { echo "could not build benches/bare_axum.rs" >&2; exit 1; }

work="$(mktemp -d)"
# TfPilot's store lives on the disk under test (the build's target directory), not in $TMPDIR,
# which may be a tmpfs where an fsync costs nothing.
data_root="$(mkdir -p "$target_dir/serve-load" && mktemp -d "$target_dir/serve-load/run.XXXXXX")"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() { stop_server; rm -rf "$work" "$data_root"; }
trap cleanup EXIT

echo "== binary: $BIN, $(stat -c %s "$BIN" | awk '{ printf "%.1f MB (%.1f MiB)", $1 / 1e6, $1 / 1048576 }')"
echo "== start-up"
python3 benches/startup.py "$BIN" "$STARTUP_RUNS"

echo "== installing Probot $PROBOT_VERSION from npm into $work/probot"
mkdir -p "$work/probot"
cat >"$work/probot/package.json" <<JSON
{ "name": "probot-bench", "private": true, "type": "module",
  "dependencies": { "probot": "$PROBOT_VERSION" } }
JSON
cat >"$work/probot/server.mjs" <<'JS'
// A minimal Probot app: Probot's webhook middleware verifies the signature and routes the event;
// the `issue_comment` handler does nothing.
import fs from "node:fs";
import http from "node:http";
import { Probot, createNodeMiddleware } from "probot";

const probot = new Probot({
  appId: 1,
  privateKey: fs.readFileSync(process.env.PRIVATE_KEY_PATH, "utf8"),
  secret: process.env.WEBHOOK_SECRET,
  logLevel: "warn",
});
const app = (app) => {
  app.on("issue_comment", async () => {});
};
const middleware = await createNodeMiddleware(app, { probot, webhooksPath: "/webhooks/github" });
http.createServer(middleware).listen(Number(process.env.PORT), "127.0.0.1");
JS
openssl genrsa -out "$work/probot/key.pem" 2048 2>/dev/null
(cd "$work/probot" && npm install --no-audit --no-fund --loglevel=error >/dev/null)

python3 -c "import json; print(json.load(open('$EVENT_FILE'))['body'], end='')" >"$work/body.json"
signature="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$work/body.json" | cut -d' ' -f1)"
# wrk's Lua: the body and signature are fixed (the signature covers only the body); every request
# gets a unique delivery id; any 2xx counts as answered (Probot answers 200, the others 202).
cat >"$work/delivery.lua" <<LUA
local body_file = io.open("$work/body.json", "rb")
wrk.method = "POST"
wrk.body = body_file:read("*a")
body_file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "issue_comment"
wrk.headers["X-Hub-Signature-256"] = "$signature"
local counter = 0
local failed = 0
local run = os.getenv("RUN_TAG") or "0"
function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("%s-%012d", run, counter)
  return wrk.format()
end
function response(status, headers, body)
  if status < 200 or status > 299 then failed = failed + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50=%.3f p99=%.3f max=%.3f failed=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, failed,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() { # name port
  local name="$1" port="$2"
  case "$name" in
    tfpilot)
      # A new directory per round: deleting the last round's 100,000 files just before would
      # make ext4 skip the inodes just freed on every create of this round. The one before is
      # deleted after this round (two other servers' rounds before the next TfPilot round).
      data="$data_root/round-$round"
      env -i PATH="$PATH" PORT="$port" TFPILOT_WEBHOOK_SECRET="$SECRET" TFPILOT_STORE="fs://$data" \
        "$BIN" serve --host 127.0.0.1 2>"$work/server.log" &
      ;;
    probot)
      (cd "$work/probot" && exec env -i PATH="$PATH" PORT="$port" WEBHOOK_SECRET="$SECRET" \
        PRIVATE_KEY_PATH="$work/probot/key.pem" NODE_ENV=production node server.mjs) 2>"$work/server.log" &
      ;;
    limit)
      "$LIMIT_BIN" serve "$port" 2>"$work/server.log" &
      ;;
  esac
  server_pid=$!
  # Ready when a signed delivery is answered 2xx.
  for _ in $(seq 1 400); do
    code="$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "@$work/body.json" \
      -H 'Content-Type: application/json' -H 'X-GitHub-Event: issue_comment' \
      -H "X-GitHub-Delivery: ready-$name-$RANDOM$RANDOM" -H "X-Hub-Signature-256: $signature" \
      "http://127.0.0.1:$port/webhooks/github" || true)"
    case "$code" in 2??) return 0 ;; esac
    sleep 0.05
  done
  echo "$name did not answer a signed delivery (last: $code)" >&2; cat "$work/server.log" >&2; exit 1
}

echo "== $ROUNDS rounds of tfpilot, probot, limit: wrk -t1 -c$CONNECTIONS, ${WARMUP}s warm-up + ${DURATION}s each"
: >"$work/results"
for round in $(seq 1 "$ROUNDS"); do
  for name in tfpilot probot limit; do
    port="$(free_port)"
    start_server "$name" "$port"
    RUN_TAG="w$round$name" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -s "$work/delivery.lua" \
      "http://127.0.0.1:$port/webhooks/github" >/dev/null
    result="$(RUN_TAG="r$round$name" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$work/delivery.lua" \
      "http://127.0.0.1:$port/webhooks/github" | grep '^RESULT')"
    hwm="$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$server_pid/status")"
    stored="" worker=""
    if [ "$name" = tfpilot ]; then
      finished() { find "$data/inbox-done" -name '*.json' | wc -l; }
      stored=" stored=$(find "$data/inbox" "$data/inbox-finished" -name '*.json' | wc -l)"
      under_load="$(finished)"
      sleep "$DRAIN"
      drained="$(finished)"
      rate=$(( (drained - under_load) / DRAIN ))
      pending=$(find "$data/inbox" -name '*.json' | wc -l)
      stored="$stored finished_under_load=$under_load worker=${rate}/s pending_after=$pending"
      # A worker that ran out of items before DRAIN ended is measured too low: said, not hidden.
      [ "$pending" -gt 0 ] || stored="$stored (backlog emptied: the rate is a lower bound)"
      worker=" worker_per_s=$rate"
    fi
    stop_server
    if [ "$name" = tfpilot ]; then
      [ -z "${previous_data:-}" ] || rm -rf "$previous_data"
      previous_data="$data"
    fi
    # The round's writes reach the disk before the next server starts, not during its round,
    # and (where allowed: root) every server starts on an empty page cache: a cache the last
    # round filled with gigabytes of files made the next round's allocations reclaim it first.
    sync
    { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null || true
    echo "$name $result hwm_kib=$hwm$worker" >>"$work/results"
    echo "  round $round $(printf '%-8s' "$name") ${result#RESULT } peak_rss=$((hwm / 1024))MiB$stored"
  done
done

python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, _, *fields = line.split()
    values = dict(f.split("=") for f in fields)
    rows.setdefault(name, []).append({k: float(v) for k, v in values.items()})
med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in rows.items()}
print("== medians over %d rounds" % len(rows["tfpilot"]))
print("  %-8s %10s %9s %9s %14s %8s" % ("server", "req/s", "p50 ms", "p99 ms", "peak RSS MiB", "failed"))
for n in ("tfpilot", "probot", "limit"):
    m = med[n]
    print("  %-8s %10.0f %9.2f %9.2f %14.1f %8.0f" % (n, m["rps"], m["p50"], m["p99"], m["hwm_kib"] / 1024,
                                                   m["failed"] + m["errors"]))
t, p, l = med["tfpilot"], med["probot"], med["limit"]
print("== tfpilot's worker, front door idle: %.0f items/s finished (median)" % t["worker_per_s"])
print("== ratios: tfpilot/probot throughput %.2fx (goal >= 5x), tfpilot/limit %.2fx; "
      "tfpilot p99 %.2f ms (goal <= 5 ms); peak RSS tfpilot/probot %.2f (goal <= 0.25)"
      % (t["rps"] / p["rps"], t["rps"] / l["rps"], t["p99"], t["hwm_kib"] / p["hwm_kib"]))
PY
