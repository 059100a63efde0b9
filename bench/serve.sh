#!/usr/bin/env bash
# bench/serve.sh: the alert listener on loopback (issue 13).
#  1. wrk: accepted alerts/s and latency p50/p99 for distinct alerts that
#     match no rule, one matching alert resent (duplicates), and distinct
#     matching alerts (each starts a run, beyond max_runs + queue: 503);
#  2. alert sent -> first step started, p50/p99 over N alerts (timelines);
#  3. /healthz during a bounded slowloris (CONNS connections, SECONDS s),
#     with the alert rate achieved meanwhile;
#  4. RSS idle, the highest sampled under load, and the peak (VmHWM).
# Usage: bench/serve.sh [BUILD_DIR]; env: PORT (0: any free one), WRK_SECONDS
# (10), LAT_N (1000), LAT_RATE (25/s), CONNS (200), SECONDS_SLOW (60), MAX_RUNS (8),
# STATE_BASE (/var/tmp; /dev/shm puts the state dir, dedup log and timelines on tmpfs),
# PHASES ("wrk latency slowloris").
# Not part of CI: it loads both cores for about two and a half minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-build}/runbook")
[ -x "$bin" ] || { echo "build first: cmake -S . -B build && cmake --build build" >&2; exit 2; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 2; }
PORT=${PORT:-0} WRK_SECONDS=${WRK_SECONDS:-10} LAT_N=${LAT_N:-1000} LAT_RATE=${LAT_RATE:-25}
CONNS=${CONNS:-200} SECONDS_SLOW=${SECONDS_SLOW:-60} MAX_RUNS=${MAX_RUNS:-8}
here=$PWD
work=$(mktemp -d "${STATE_BASE:-/var/tmp}/rb-bench-serve-XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export RB_BENCH_TOKEN=bench-token-$RANDOM-$RANDOM-$RANDOM

mkdir -p "$work/runbooks"
cat >"$work/runbooks/bench-hit.lua" <<'LUA'
return runbook { name = "bench-hit", title = "Bench: one step", start = "s1",
  steps = { s1 = action { title = "One", run = function(ctx) return 0 end, next = "done" },
            done = resolved { title = "Done" } } }
LUA
echo '[{"match": {"alertname": "BenchHit"}, "runbook": "bench-hit", "mode": "exec"}]' >"$work/rules.json"
printf '[serve]\ntoken_env = RB_BENCH_TOKEN\nmax_runs = %s\n' "$MAX_RUNS" >"$work/rb.conf"

cd "$work"
"$bin" --config rb.conf --state-dir "$work/state" serve --listen "127.0.0.1:$PORT" \
  --rules rules.json 2>"$work/serve.log" &
pid=$!
for _ in $(seq 100); do
  grep -q "listening on" serve.log 2>/dev/null && break
  sleep 0.1
done
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' serve.log)
[ -n "$port" ] || { cat serve.log >&2; exit 1; }
url=http://127.0.0.1:$port
echo "== runbook serve pid $pid on $url (max_runs $MAX_RUNS; state $work/state; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg))"

rss() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status"; } # kB
metric() { curl -s "$url/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
drain() { # until no run is active or queued
  for _ in $(seq 600); do
    [ "$(metric runbook_runs_active)" = 0 ] && [ "$(metric runbook_runs_queued)" = 0 ] && return
    sleep 0.1
  done
}
sampler() { # the highest VmRSS while the load runs
  local max=0 v
  while [ -e "$work/sampling" ]; do
    v=$(rss VmRSS) && [ "$v" -gt "$max" ] && max=$v && echo "$max" >"$work/rss-max"
    sleep 0.1
  done
}

sleep 1
idle=$(rss VmRSS)
echo "RSS idle: $idle kB ($((idle / 1024)) MiB)"

cat >"$work/alerts.lua" <<'LUA'
-- one alert per request: kind "miss" (distinct, no rule), "dup" (one matching
-- alert resent), "hit" (distinct, matching: each starts a run)
local threads, n = {}, 0
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  kind, seq, ok, busy, other = args[1], 0, 0, 0, 0
  token = os.getenv("RB_BENCH_TOKEN")
end
function request()
  seq = seq + 1
  local fp, name = string.format("w%s%d-%d", kind, tid, seq), "BenchMiss"
  if kind == "dup" then fp = "dup0" end
  if kind ~= "miss" then name = "BenchHit" end
  local body = '{"version":"4","status":"firing","alerts":[{"status":"firing",' ..
    '"labels":{"alertname":"' .. name .. '"},"annotations":{},' ..
    '"startsAt":"2026-11-22T09:36:08Z","fingerprint":"' .. fp .. '"}]}'
  return wrk.format("POST", "/alerts/alertmanager",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
function response(status, headers, body)
  if status == 202 then ok = ok + 1 elseif status == 503 then busy = busy + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do
    a, b, c = a + t:get("ok"), b + t:get("busy"), c + t:get("other")
  end
  local s = summary.duration / 1e6
  io.write(string.format("%d requests in %.1f s: %.0f/s; 202 %d (%.0f/s), 503 %d, other %d; " ..
    "latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", summary.requests, s,
    summary.requests / s, a, a / s, b, c, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
LUA

touch "$work/sampling"; echo 0 >"$work/rss-max"
sampler &
spid=$!
PHASES=${PHASES:-wrk latency slowloris}
has() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }
for kind in miss dup hit; do
  has wrk || break
  case $kind in
  miss) echo "== wrk: distinct alerts matching no rule" ;;
  dup) echo "== wrk: one matching alert resent (duplicates after the first)" ;;
  hit) echo "== wrk: distinct matching alerts (each a run; 503 when $MAX_RUNS run and 64 wait)" ;;
  esac
  wrk -t2 -c16 -d"${WRK_SECONDS}s" --latency -s alerts.lua "$url" -- "$kind" | tail -1
  drain
done
started=$(metric runbook_runs_started_total)
echo "runs started by the wrk phases: $started"

if has latency; then
  echo "== alert -> first step started"
  python3 "$here/bench/serve_load.py" latency "$url" "$RB_BENCH_TOKEN" "$work/state" "$LAT_N" "$LAT_RATE"
  drain
fi
if has slowloris; then
  echo "== slowloris"
  python3 "$here/bench/serve_load.py" slowloris "$url" "$RB_BENCH_TOKEN" "$CONNS" "$SECONDS_SLOW"
fi
rm -f "$work/sampling"
wait "$spid" || true
echo "closed by the listener: deadline $(metric 'runbook_connections_closed_total{why="deadline"}'), evicted $(metric 'runbook_connections_closed_total{why="evicted"}')"
echo "== end: load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "RSS: idle $idle kB, highest sampled under load $(cat "$work/rss-max") kB, peak (VmHWM) $(rss VmHWM) kB, now $(rss VmRSS) kB"
kill -TERM "$pid"
wait "$pid" || true
pid=
