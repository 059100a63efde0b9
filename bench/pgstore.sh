#!/usr/bin/env bash
# bench/pgstore.sh: two `runbook serve` replicas on one PostgreSQL 15 (the
# shared store, docs/store.md), all on loopback:
#  1. deduplicated alerts/s and latency percentiles: one wrk per replica
#     posting single-alert webhooks whose keys are all claimed already (the
#     duplicate path: one INSERT ... ON CONFLICT round trip per alert);
#  2. alert -> first step: a new alert posted to a replica until the run's
#     first action reaches a local counting server, p50/p99 over N alerts;
#  3. failover: kill -9 of the replica in the middle of a run (between
#     steps) until the other replica's resume of it starts (its started
#     event in the store) and until its next action, with replica_timeout 2s.
# Usage: bench/pgstore.sh [BUILD_DIR] [SECONDS] [FIRST_STEP_ALERTS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
secs=${2:-10}
nfirst=${3:-100}
[ -x "$build/runbook" ] || { echo "build first" >&2; exit 2; }
command -v wrk >/dev/null || { echo "needs wrk" >&2; exit 2; }
RUNBOOK_BIN=$build/runbook RB_SOURCE_DIR=$PWD RB_BUILD_DIR=$build BENCH_SECS=$secs \
  BENCH_FIRST=$nfirst PYTHONPATH=$PWD/tests/integration exec /usr/bin/python3 - <<'PY'
import json, os, re, subprocess, sys, tempfile, threading, time, urllib.request

import rbtest
from pgstore import StorePostgres
from test_serve import TOKEN, Serve
from test_store_pg import (COUNT_BOOK, STEPS_BOOK, Counter, counted, count_rule,
                           steps_alert, store_conf)

secs, nfirst = int(os.environ["BENCH_SECS"]), int(os.environ["BENCH_FIRST"])
tmp = tempfile.mkdtemp(prefix="rb-bench-pg-")
pg = StorePostgres()
counter = Counter()
reps = []
try:
    conf = store_conf(pg, tmp)
    path = rbtest.write(os.path.join(tmp, "m.conf"), conf)
    assert rbtest.run(["--config", path, "store", "migrate"]).code == 0
    for name in ("a", "b"):
        steps = {"match": {"alertname": "Steps"}, "runbook": "alert-steps", "mode": "exec",
                 "vars": {"counter": counter.url, "fp": "{{fingerprint}}"}}
        reps.append(Serve(os.path.join(tmp, name),
                          conf_extra=store_conf(pg, tmp, 'replica = "%s"\nreplica_timeout = "2s"\n'
                                                % name),
                          books={"alert-count": COUNT_BOOK, "alert-steps": STEPS_BOOK},
                          more_rules=[count_rule(counter), steps]))
        assert reps[-1].port, reps[-1].text()
    a, b = reps
    # the keys the load repeats: claimed once, their runs finished
    keys = ["dup%03d" % i for i in range(64)]
    a.post_alerts(counted(keys))
    deadline = time.time() + 120
    while counter.total() < len(keys) and time.time() < deadline:
        time.sleep(0.1)
    a.wait_finished(len(keys))
    lua = os.path.join(tmp, "dup.lua")
    bodies = ",".join("[==[%s]==]" % counted([k]) for k in keys)
    with open(lua, "w") as f:
        f.write("""local bodies = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, "/alerts/alertmanager", nil, bodies[i])
end
""" % (bodies, TOKEN))
    procs = [subprocess.Popen(["wrk", "-t1", "-c8", "-d%ds" % secs, "--latency", "-s", lua,
                               "http://127.0.0.1:%d" % s.port],
                              stdout=subprocess.PIPE, text=True) for s in reps]
    outs = [p.communicate()[0] for p in procs]
    total, worst99 = 0.0, ""
    print("== deduplicated alerts, two replicas, one PostgreSQL, %d s, 8 connections each" % secs)
    for name, out in zip("ab", outs):
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        lat = dict(re.findall(r"\s+(50|90|99)%\s+([\d.]+\w+)", out))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        total += rps
        print("replica %s: %.0f alerts/s, p50 %s p90 %s p99 %s%s" % (
            name, rps, lat.get("50"), lat.get("90"), lat.get("99"),
            ", %s non-2xx" % non2xx.group(1) if non2xx else ""))
    print("both: %.0f deduplicated alerts/s" % total)
    runs = sum(s.metrics().get("runbook_runs_started_total", 0) for s in reps)
    dups = sum(s.metrics()["runbook_alerts_duplicate_total"] for s in reps)
    print("runs started in all: %d (the %d keys), duplicates answered: %d" % (
        runs, len(keys), dups))
    # alert -> first step
    lat = []
    for i in range(nfirst):
        s = reps[i % 2]
        before = counter.total()
        t0 = time.time()
        code, body = s.post_alerts(counted(["first%04d" % i]))
        assert code == 202, body
        while counter.total() == before:
            time.sleep(0.001)
        lat.append((time.time() - t0) * 1000)
    lat.sort()
    print("== alert -> first step (POST to the action's HTTP call), %d alerts" % nfirst)
    print("p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
        lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))], lat[-1]))
    # failover
    a.post_alerts(steps_alert("failover"))
    while counter.hits.get("/hit/failover/one") != 1:
        time.sleep(0.01)
    time.sleep(0.5)  # inside the 3 s check step
    a.proc.kill()
    t0 = time.time()
    a.proc.wait()
    q = ("SELECT count(*) FROM rb_events WHERE incident = 'ALERT-failover' AND "
         "line LIKE '%\"kind\":\"run\",\"event\":\"started\"%'")
    while pg.scalar(q) != "2":
        time.sleep(0.02)
    resumed = time.time() - t0
    while counter.hits.get("/hit/failover/two") != 1:
        time.sleep(0.01)
    print("== failover, replica_timeout 2s: kill -9 -> resumed on the other replica %.2f s, "
          "-> its next action %.2f s (the interrupted 3 s check runs again)" % (
              resumed, time.time() - t0))
finally:
    for s in reps:
        if s.proc.poll() is None:
            s.stop()
    counter.close()
    pg.close()
PY
