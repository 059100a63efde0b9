"""Alert-started runs get one incident per alert group and firing
(docs/serve.md, "Incidents"): a repeat notification or a second alert of the
same firing joins its incident; a firing after a resolve opens a new one.
With direct v4 posts and with a real Prometheus Alertmanager as the sender."""
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from test_serve import AM_BIN, TOKEN, Serve, free_port, incident_id

GROUP = '{}:{alertname="CheckoutHighErrorRate"}'


def payload(status, alerts):
    return json.dumps({"version": "4", "groupKey": GROUP, "status": status, "receiver": "rb",
                       "alerts": [{"status": st, "fingerprint": fp, "startsAt": at,
                                   "labels": {"alertname": "CheckoutHighErrorRate",
                                              "severity": "critical", "service": svc},
                                   "annotations": {}} for st, fp, at, svc in alerts]})


def incidents(s):
    d = os.path.join(s.state, "incidents")
    return sorted(f[:-len(".jsonl")] for f in os.listdir(d)) if os.path.isdir(d) else []


def runs_of(s, incident):
    return sorted({e["run"] for e in s.timeline(incident) if e.get("run")})


def post(s, body):
    code, out = s.post_alerts(body)
    assert code == 202, out
    return json.loads(out)


@pytest.fixture
def serve(tmp_path):
    s = Serve(tmp_path)
    assert s.port, s.text()
    yield s
    assert s.stop() == 0, s.text()


def test_same_firing_joins_one_incident_and_a_refiring_after_resolve_opens_another(serve):
    t1, t2 = "2026-11-22T09:36:08.312Z", "2026-11-22T09:36:38.5Z"
    first = post(serve, payload("firing", [("firing", "g1", t1, "checkout")]))
    i1 = incident_id(GROUP, "20261122T093608.312Z")
    assert [(r["status"], r["incident"]) for r in first] == [("started", i1)]
    serve.wait_finished(1)
    # the repeat notification, now with a second alert of the same firing
    again = post(serve, payload("firing", [("firing", "g1", t1, "checkout"),
                                           ("firing", "g2", t2, "payments")]))
    assert [(r["status"], r["incident"]) for r in again] == [("duplicate", i1), ("started", i1)]
    serve.wait_finished(2)
    assert incidents(serve) == [i1] and len(runs_of(serve, i1)) == 2
    # resolved, then the same alert fires again: a new firing, a new incident
    done = post(serve, payload("resolved", [("resolved", "g1", t1, "checkout"),
                                            ("resolved", "g2", t2, "payments")]))
    # noted on the incident their firing opened
    assert [(r["status"], r["incident"]) for r in done] == [("resolved", i1), ("resolved", i1)]
    assert [e["detail"]["fingerprint"] for e in serve.timeline(i1)
            if e["event"] == "alert_resolved"] == ["g1", "g2"]
    t3 = "2026-11-22T09:50:00Z"
    refire = post(serve, payload("firing", [("firing", "g1", t3, "checkout")]))
    i2 = incident_id(GROUP, "20261122T095000.000Z")
    assert i2 != i1 and [(r["status"], r["incident"]) for r in refire] == [("started", i2)]
    serve.wait_finished(3)
    assert incidents(serve) == sorted([i1, i2])
    assert len(runs_of(serve, i1)) == 2 and len(runs_of(serve, i2)) == 1
    with open(serve.out) as f:
        assert f.read() == "checkout\npayments\ncheckout\n"
    # another group firing at the same moment is another incident
    other = json.loads(payload("firing", [("firing", "h1", t3, "search")]))
    other["groupKey"] = '{}:{alertname="SearchDown"}'
    [r] = post(serve, json.dumps(other))
    assert r["incident"] == incident_id(other["groupKey"], "20261122T095000.000Z") != i2


def start_alertmanager(tmp_path, serve_port):
    am_dir = tmp_path / "am"
    am_dir.mkdir()
    cfg = am_dir / "alertmanager.yml"
    cfg.write_text("""route:
  receiver: runbook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: runbook
    webhook_configs:
      - url: http://127.0.0.1:%d/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: %s
""" % (serve_port, TOKEN))
    for _ in range(5):  # the port may be taken between probe and bind
        port = free_port()
        log = open(str(am_dir / "am.log"), "w")
        am = subprocess.Popen([AM_BIN, "--config.file", str(cfg),
                               "--storage.path", str(am_dir / "data"),
                               "--web.listen-address", "127.0.0.1:%d" % port,
                               "--cluster.listen-address="],
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline and am.poll() is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=2) as r:
                    if r.status == 200:
                        return am, port, am_dir
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        am.kill()
        am.wait()
    raise AssertionError((am_dir / "am.log").read_text())


def am_post(port, starts, ends):
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # noqa: E731
    alerts = [{"labels": {"alertname": "CheckoutHighErrorRate", "service": "checkout",
                          "severity": "critical"},
               "startsAt": iso(starts), "endsAt": iso(ends)}]
    req = urllib.request.Request("http://127.0.0.1:%d/api/v2/alerts" % port,
                                 data=json.dumps(alerts).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def wait(what, fn, timeout=40):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(what)


@pytest.mark.skipif(not os.access(AM_BIN, os.X_OK), reason="prometheus-alertmanager not installed")
def test_real_alertmanager_repeat_joins_and_refiring_after_resolve_is_a_new_incident(serve,
                                                                                   tmp_path):
    am, port, am_dir = start_alertmanager(tmp_path, serve.port)
    posts = lambda: serve.text().count("POST /alerts/alertmanager 202")  # noqa: E731
    try:
        now = datetime.now(timezone.utc)
        am_post(port, now, now + timedelta(hours=1))
        [i1] = wait("the first run", lambda: incidents(serve))
        wait("a repeat notification", lambda: posts() >= 2)
        serve.wait_finished(1)
        assert incidents(serve) == [i1] and len(runs_of(serve, i1)) == 1
        # resolve it: Alertmanager sends the resolve, then a new firing
        n = posts()
        am_post(port, now, datetime.now(timezone.utc) - timedelta(seconds=1))
        wait("the resolved notification", lambda: posts() > n)
        later = datetime.now(timezone.utc)
        am_post(port, later, later + timedelta(hours=1))
        both = wait("the second incident", lambda: len(incidents(serve)) == 2 and incidents(serve))
        serve.wait_finished(2)
        [i2] = [i for i in both if i != i1]
        assert i1[:19] == i2[:19]  # the same group
        assert i2[19:] == later.strftime("%Y%m%dT%H%M%S.") + "%03dZ" % (later.microsecond // 1000)
        assert len(runs_of(serve, i1)) == 1 and len(runs_of(serve, i2)) == 1
    finally:
        am.send_signal(signal.SIGTERM)
        try:
            am.wait(timeout=20)
        except subprocess.TimeoutExpired:
            am.kill()
            am.wait()
