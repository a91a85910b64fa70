#!/usr/bin/env bash
# Load and start-up benchmark of `tfpilot serve` on 127.0.0.1 (loopback only; bounded in time).
#
#   benches/serve-load.sh            # builds target/release/tfpilot if needed
#   RATE=500 DURATION=20 benches/serve-load.sh
#
# 1. start-up: exec -> first 200 on /healthz (benches/startup.py, STARTUP_RUNS runs);
# 2. fixed rate: wrk sends RATE signed `issue_comment` deliveries/s for DURATION s, each with its
#    own X-GitHub-Delivery, over CONNECTIONS connections; reports throughput, p50/p90/p99 latency;
# 3. saturation: the same without pacing for SATURATION_DURATION s (maximum throughput);
# 4. RSS of the server (idle, after the load, peak) and how long the worker took to empty the inbox.
# The load generator and the server share the machine's cores: numbers are for one box, not a fleet.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RATE="${RATE:-1000}"
DURATION="${DURATION:-30}"
SATURATION_DURATION="${SATURATION_DURATION:-15}"
CONNECTIONS="${CONNECTIONS:-32}"
STARTUP_RUNS="${STARTUP_RUNS:-20}"
SECRET="bench-webhook-secret"
BODY_FILE="tests/fixtures/webhooks/issue_comment.created.installation.json"

for tool in wrk python3 openssl curl; do
  command -v "$tool" >/dev/null || { echo "benchmark needs $tool (Debian: apt-get install $tool)" >&2; exit 1; }
done

target_dir="${CARGO_TARGET_DIR:-target}"
BIN="${TFPILOT_BIN:-$target_dir/release/tfpilot}"
if [ -z "${TFPILOT_BIN:-}" ]; then
  cargo build --release --bin tfpilot
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== start-up"
python3 benches/startup.py "$BIN" "$STARTUP_RUNS"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
env -i PATH="$PATH" PORT="$port" TFPILOT_WEBHOOK_SECRET="$SECRET" TFPILOT_STORE="fs://$work/data" \
  "$BIN" serve --host 127.0.0.1 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 200); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.05
done
curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || { echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

rss() { awk -v k="$1:" '$1 == k { printf "%.1f MiB", $2 / 1024 }' "/proc/$server_pid/status"; }
echo "== server pid $server_pid on 127.0.0.1:$port, RSS idle: $(rss VmRSS)"

signature="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$BODY_FILE" | cut -d' ' -f1)"
# wrk's Lua: the body and signature are fixed (the signature covers only the body); every request
# gets a unique delivery id. With INTERVAL_MS > 0 each wrk thread hands out send slots every
# INTERVAL_MS (a monotonic clock through LuaJIT's ffi), so the offered rate stays fixed however
# long answers take, as long as there are enough connections.
cat >"$work/delivery.lua" <<LUA
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local body_file = io.open("$BODY_FILE", "rb")
wrk.method = "POST"
wrk.body = body_file:read("*a")
body_file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "issue_comment"
wrk.headers["X-Hub-Signature-256"] = "$signature"
local threads = {}
local next_thread = 1
function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end
function init(args)
  counter = 0
  non202 = 0
  interval = tonumber(os.getenv("INTERVAL_MS") or "0")
  slot = now_ms()
  run = os.getenv("RUN_TAG") or "0"
end
function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("%s-%04d-%012d", run, tid, counter)
  return wrk.format()
end
function delay()
  if interval <= 0 then return 0 end
  slot = math.max(slot + interval, now_ms())
  return math.floor(slot - now_ms() + 0.5)
end
function response(status, headers, body)
  if status ~= 202 then non202 = non202 + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non202") end
  io.write(string.format("requests %d in %.1f s: %.0f req/s; non-202 answers %d; socket errors %d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("latency ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
end
LUA

interval_ms=$(python3 -c "print(2 * 1000 / $RATE)")
echo "== fixed rate: $RATE req/s offered ($CONNECTIONS connections, 2 threads, a slot every ${interval_ms} ms per thread) for ${DURATION}s"
INTERVAL_MS="$interval_ms" RUN_TAG="f1xed" wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$work/delivery.lua" \
  "http://127.0.0.1:$port/webhooks/github" | grep -E "^(requests|latency)"
echo "RSS after fixed rate: $(rss VmRSS)"

echo "== saturation: $CONNECTIONS connections, no pacing, ${SATURATION_DURATION}s"
INTERVAL_MS=0 RUN_TAG="5a7" wrk -t2 -c"$CONNECTIONS" -d"${SATURATION_DURATION}s" -s "$work/delivery.lua" \
  "http://127.0.0.1:$port/webhooks/github" | grep -E "^(requests|latency)"
echo "RSS after saturation: $(rss VmRSS), peak: $(rss VmHWM)"

start=$(date +%s.%N)
echo "== waiting for the worker to empty the inbox"
for _ in $(seq 1 1200); do
  depth=$(curl -fs "http://127.0.0.1:$port/metrics" | awk '$1 == "tfpilot_inbox_depth" { print $2 }')
  [ "${depth:-1}" = "0" ] && break
  sleep 0.5
done
echo "== worker: inbox depth ${depth:-?} $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s after the load; items stored: $(find "$work/data/inbox" -name '*.json' | wc -l)"
