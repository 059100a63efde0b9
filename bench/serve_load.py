#!/usr/bin/env python3
"""bench/serve_load.py: the parts of bench/serve.sh wrk cannot do.

  latency URL TOKEN STATE_DIR N RATE   N matching alerts, paced at RATE/s;
      alert sent -> first step started, from each run's timeline
  slowloris URL TOKEN CONNS SECONDS    CONNS connections trickling headers
      (from 127.0.1.x source addresses, reconnecting when cut) while
      /healthz is probed twice a second and alerts are posted back to back

Bounded: every loop ends at its deadline; every socket is closed."""
import datetime
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.parse


def conn(url, timeout=10):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)


def alert(fp, name, starts="2026-11-22T09:36:08Z"):
    return json.dumps({"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": name}, "annotations": {},
         "startsAt": starts, "fingerprint": fp}]})


def post(c, token, body):
    c.request("POST", "/alerts/alertmanager", body,
              {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def ts_ms(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000


def first_started(path):
    """(run started, first step started) times of a timeline, or None."""
    run = None
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            if e.get("event") == "started" and not e.get("step"):
                run = ts_ms(e["ts"])
            if e.get("event") == "started" and e.get("step"):
                return run, ts_ms(e["ts"])
    return None


def latency(url, token, state, n, rate):
    c = conn(url)
    sent, codes = {}, {}
    t0 = time.time()
    for i in range(n):
        due = t0 + i / rate
        while time.time() < due:
            time.sleep(max(0, due - time.time()))
        fp = "lat%06d" % i
        sent[fp] = time.time() * 1000
        code, _ = post(c, token, alert(fp, "BenchHit"))
        codes[code] = codes.get(code, 0) + 1
    took = time.time() - t0
    # wait for the runs to have started their first step
    deadline = time.time() + 120
    lat, run_lat, missing = [], [], list(sent)
    while missing and time.time() < deadline:
        left = []
        for fp in missing:
            # no groupKey: the alert is its own group, and its firing names
            # the incident (docs/serve.md, "Incidents")
            p = os.path.join(state, "incidents", "ALERT-%s-20261122T093608.000Z.jsonl" % fp)
            t = first_started(p) if os.path.exists(p) else None
            if t is None:
                left.append(fp)
            else:
                run_lat.append(t[0] - sent[fp])
                lat.append(t[1] - sent[fp])
        missing = left
        if missing:
            time.sleep(0.5)
    print("latency: %d alerts at %.1f/s (sent in %.1f s, codes %s): alert sent -> first "
          "step started p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (%d never "
          "started); the run's own started event p50 %.1f ms, p99 %.1f ms (timeline "
          "times are to the millisecond)"
          % (n, rate, took, codes, pct(lat, 50), pct(lat, 90), pct(lat, 99), max(lat),
             len(missing), pct(run_lat, 50), pct(run_lat, 99)))


def slowloris(url, token, nconns, seconds):
    u = urllib.parse.urlsplit(url)
    stop = time.time() + seconds
    st = {"opened": 0, "cut": 0, "refused": 0, "probes": 0, "probe_ok": 0,
          "probe_ms": [], "alerts": 0, "alert_ok": 0, "alert_err": 0}

    def open_one(i):
        src = "127.0.1.%d" % (1 + i % 250)
        try:
            s = socket.create_connection((u.hostname, u.port), timeout=5,
                                         source_address=(src, 0))
            s.sendall(b"POST /alerts/alertmanager HTTP/1.1\r\nHost: x\r\n")
            st["opened"] += 1
            return s
        except OSError:
            st["refused"] += 1
            return None

    def attack():
        socks = [open_one(i) for i in range(nconns)]
        k = 0
        while time.time() < stop:
            time.sleep(1)
            k += 1
            for i, s in enumerate(socks):
                try:
                    if s is None:
                        raise OSError
                    if k % 5 == 0:  # one header line every 5 s
                        s.sendall(b"X-Slow-%d: a\r\n" % k)
                except OSError:
                    if s is not None:
                        st["cut"] += 1
                        s.close()
                    socks[i] = open_one(i)  # a real attacker comes back at once
        for s in socks:
            if s is not None:
                s.close()

    def probe():
        while time.time() < stop:
            st["probes"] += 1
            t = time.time()
            try:
                c = conn(url, timeout=2)
                c.request("GET", "/healthz")
                r = c.getresponse()
                if r.status == 200 and r.read() == b"ok\n":
                    st["probe_ok"] += 1
                    st["probe_ms"].append((time.time() - t) * 1000)
                c.close()
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(max(0, 0.5 - (time.time() - t)))

    def alerts():
        i, c = 0, None
        while time.time() < stop:
            i += 1
            st["alerts"] += 1
            try:
                c = c or conn(url, timeout=5)
                code, _ = post(c, token, alert("slow%07d" % i, "BenchMiss"))
                st["alert_ok"] += code == 202
            except (OSError, http.client.HTTPException):
                st["alert_err"] += 1
                c = None

    ts = [threading.Thread(target=f) for f in (attack, probe, alerts)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ms = st["probe_ms"] or [0]
    print("slowloris: %d connections for %d s (%d opened, %d cut by the listener and "
          "reopened, %d refused): /healthz %d/%d ok (%.1f%%), p50 %.1f ms, max %.1f ms; "
          "alerts meanwhile %.0f/s (%d accepted, %d errors)"
          % (nconns, seconds, st["opened"], st["cut"], st["refused"], st["probe_ok"],
             st["probes"], 100.0 * st["probe_ok"] / max(1, st["probes"]), pct(ms, 50),
             max(ms), st["alert_ok"] / seconds, st["alert_ok"], st["alert_err"]))


if __name__ == "__main__":
    if sys.argv[1] == "latency":
        latency(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6]))
    elif sys.argv[1] == "slowloris":
        slowloris(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit("usage: serve_load.py latency|slowloris ...")
