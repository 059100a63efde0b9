"""runbook serve's receivers beyond Alertmanager (issue 13): PagerDuty v3
webhooks signed with X-PagerDuty-Signature (secret rotation, 400s naming the
field, ignored event types), Grafana's payloads as grafana/alerting's own
tests expect them, and resolved notifications noted on the run's timeline
by all four routes."""
import hashlib
import hmac
import json
import os

import pytest

import rbtest
from test_serve import FIXTURE_INCIDENT, TOKEN, Serve, fixture_body

PD_DIR = os.path.join(rbtest.FIXTURES, "pagerduty")
GRAFANA_DIR = os.path.join(rbtest.FIXTURES, "grafana")
PD_OLD = "pd-old-secret-0c1d2e3f4a5b"
PD_NEW = "pd-new-secret-9f8e7d6c5b4a"
PD_INCIDENT = "ALERT-pd-Q2W8TX4JPL6R0K-20261122T094107.000Z"  # its created_at, no groupKey
# groupKey "alertname", startsAt Go's zero time (unset): one incident, no firing to tell
GRAFANA_INCIDENT = "ALERT-%s" % hashlib.sha256(b"alertname").hexdigest()[:12]
JSON_HEADERS = {"Content-Type": "application/json"}

ENV_BOOK = """local cmd = require "cmd"
return runbook {
  name = "env-dump", title = "Dump the environment (test)", start = "dump",
  params = { out = { required = true } },
  steps = {
    dump = action { title = "Dump", run = function(ctx)
      return cmd.run({"sh", "-c", 'env > "$1"', "sh", ctx.out}).code
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def pd_body(name, edit=None):
    with open(os.path.join(PD_DIR, name)) as f:
        text = f.read()
    if edit is None:
        return text.encode()
    doc = json.loads(text)
    edit(doc)
    return json.dumps(doc).encode()


def pd_sig(body, *secrets):
    return ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest()
                    for s in secrets)


def post_pd(s, body, sig):
    h = dict(JSON_HEADERS)
    if sig is not None:
        h["X-PagerDuty-Signature"] = sig
    return s.request("POST", "/alerts/pagerduty", body, h)


def pd_rule(out):
    return {"match": {"source": "pagerduty", "event_type": "incident.triggered",
                      "urgency": "high"},
            "runbook": "alert-record", "mode": "exec",
            "vars": {"service": "{{labels.service}}|{{labels.service_id}}|"
                                "{{labels.priority}}|{{labels.incident_id}}|"
                                "{{labels.incident_number}}|{{labels.teams}}|"
                                "{{labels.escalation_policy}}|{{annotations.assignees}}",
                     "out": out}}


@pytest.fixture
def pd_serve(tmp_path, monkeypatch):
    monkeypatch.setenv("RB_PD_TEST_SECRET", PD_OLD + "," + PD_NEW)
    out = str(tmp_path / "pd.txt")
    s = Serve(tmp_path, more_rules=[pd_rule(out)],
              conf_extra="pagerduty_secret_env = RB_PD_TEST_SECRET\n")
    assert s.port, s.text()
    s.pd_out = out
    yield s
    assert s.stop() == 0, s.text()
    text = s.text()
    assert PD_OLD not in text and PD_NEW not in text


def test_pagerduty_triggered_starts_a_run_resolved_is_noted_others_ignored(pd_serve):
    s = pd_serve
    body = pd_body("incident-triggered.json")
    code, out = post_pd(s, body, pd_sig(body, PD_NEW))
    assert code == 202, out
    [item] = json.loads(out)
    assert item["status"] == "started" and item["incident"] == PD_INCIDENT, item
    assert item["fingerprint"] == "pd-Q2W8TX4JPL6R0K"
    assert item["alertname"] == "CheckoutHighErrorRate: checkout 5xx above 1%"
    m = s.wait_finished(1)
    assert m['runbook_runs_finished_total{exit_code="0"}'] == 1, s.text()
    assert m['runbook_requests_total{path="/alerts/pagerduty",code="202"}'] == 1
    with open(s.pd_out) as f:
        assert f.read() == ("Checkout API|PCHK0UT|P1|Q2W8TX4JPL6R0K|4812|Payments, SRE|"
                            "Checkout on-call|Dana Okafor\n")
    ev = s.timeline(PD_INCIDENT)
    assert ev[0]["actor"] == "alert:CheckoutHighErrorRate: checkout 5xx above 1%"
    # PagerDuty redelivers: the same incident is a duplicate
    code, out = post_pd(s, body, pd_sig(body, PD_OLD))
    assert json.loads(out)[0]["status"] == "duplicate", out

    ack = pd_body("incident-acknowledged.json")
    code, out = post_pd(s, ack, pd_sig(ack, PD_NEW))
    assert code == 202 and json.loads(out) == [
        {"event_type": "incident.acknowledged", "status": "ignored"}], out
    assert "(pagerduty incident.acknowledged: ignored)" in s.text()

    res = pd_body("incident-resolved.json")
    code, out = post_pd(s, res, pd_sig(res, PD_NEW))
    assert code == 202, out
    [item] = json.loads(out)
    assert item["status"] == "resolved" and item["incident"] == PD_INCIDENT, item
    noted = [e for e in s.timeline(PD_INCIDENT) if e["event"] == "alert_resolved"]
    assert len(noted) == 1, s.timeline(PD_INCIDENT)
    assert noted[0]["detail"] == {"fingerprint": "pd-Q2W8TX4JPL6R0K",
                                  "startsAt": "2026-11-22T09:41:07Z",
                                  "via": "/alerts/pagerduty"}
    assert s.metrics()["runbook_runs_started_total"] == 1


def test_pagerduty_signatures_any_of_several_under_any_secret(pd_serve):
    s = pd_serve
    body = pd_body("incident-acknowledged.json")
    good = [pd_sig(body, PD_OLD), pd_sig(body, PD_NEW),
            # PagerDuty during a rotation: one signature per secret
            pd_sig(body, "not-our-secret-at-all-123", PD_NEW),
            pd_sig(body, PD_OLD, "not-our-secret-at-all-123"),
            " v1=" + hmac.new(PD_NEW.encode(), body, hashlib.sha256).hexdigest().upper(),
            "v0=abc," + pd_sig(body, PD_NEW)]
    for sig in good:
        code, out = post_pd(s, body, sig)
        assert code == 202, (sig, out)
    hexsig = pd_sig(body, PD_NEW)[3:]
    bad = [None, "", pd_sig(body, "not-our-secret-at-all-123"),
           pd_sig(body + b" ", PD_NEW),          # the raw body is what is signed
           "v2=" + hexsig, hexsig, "v1=" + hexsig[:-1], "sha256=" + hexsig]
    for sig in bad:
        code, out = post_pd(s, body, sig)
        assert code == 401, (sig, out)
        assert json.loads(out)["error"] == "missing or wrong X-PagerDuty-Signature"
    # the other routes' credentials do not open this one, nor this one theirs
    h = dict(JSON_HEADERS, Authorization="Bearer " + TOKEN)
    assert s.request("POST", "/alerts/pagerduty", body, h)[0] == 401
    h = dict(JSON_HEADERS, **{"X-PagerDuty-Signature": pd_sig(fixture_body().encode(), PD_NEW)})
    assert s.request("POST", "/alerts/alertmanager", fixture_body(), h)[0] == 401
    assert s.metrics()["runbook_auth_failures_total"] == len(bad) + 2


def _drop(path):
    def edit(doc):
        o = doc
        for k in path[:-1]:
            o = o[k]
        del o[path[-1]]
    return edit


def _set(path, v):
    def edit(doc):
        o = doc
        for k in path[:-1]:
            o = o[k]
        o[path[-1]] = v
    return edit


@pytest.mark.parametrize("edit,error", [
    (_drop(["event"]), "event: missing"),
    (_drop(["event", "event_type"]), "event.event_type: missing"),
    (_set(["event", "event_type"], 7), "event.event_type: expected a string"),
    (_drop(["event", "data"]), "event.data: missing"),
    (_drop(["event", "data", "id"]), "event.data.id: missing"),
    (_drop(["event", "data", "title"]), "event.data.title: missing"),
    (_drop(["event", "data", "created_at"]), "event.data.created_at: missing"),
    (_drop(["event", "data", "urgency"]), "event.data.urgency: missing"),
    (_drop(["event", "data", "service"]), "event.data.service: missing"),
    (_drop(["event", "data", "service", "summary"]), "event.data.service.summary: missing"),
    (_set(["event", "data", "service", "id"], None), "event.data.service.id: expected a string"),
    (_set(["event", "data", "priority"], "P1"), "event.data.priority: expected an object or null"),
    (_set(["event", "data", "teams", 1], {}), "event.data.teams[1].summary: expected a string"),
    (_set(["event", "data", "id"], "../x"), "event.data.id: expected 1-60 letters"),
])
def test_pagerduty_payload_errors_are_400_naming_the_field(pd_serve, edit, error):
    body = pd_body("incident-triggered.json", edit)
    code, out = post_pd(pd_serve, body, pd_sig(body, PD_NEW))
    assert code == 400 and json.loads(out)["error"].startswith(error), out
    assert pd_serve.metrics()["runbook_runs_started_total"] == 0


def test_pagerduty_priority_null_and_no_teams_are_fine(pd_serve):
    def edit(doc):
        doc["event"]["data"]["priority"] = None
        del doc["event"]["data"]["teams"]
    body = pd_body("incident-triggered.json", edit)
    code, out = post_pd(pd_serve, body, pd_sig(body, PD_NEW))
    # the rule maps {{labels.priority}}, now absent: the variable is not passed
    assert code == 202 and json.loads(out)[0]["status"] == "started", out
    pd_serve.wait_finished(1)
    with open(pd_serve.pd_out) as f:
        assert f.read() == "none\n"


def test_pagerduty_secret_never_reaches_a_run(tmp_path, monkeypatch):
    monkeypatch.setenv("RB_PD_TEST_SECRET", PD_NEW)
    env_out = str(tmp_path / "env.txt")
    rule = {"match": {"source": "pagerduty"}, "runbook": "env-dump", "mode": "exec",
            "vars": {"out": env_out}}
    s = Serve(tmp_path, more_rules=[rule], books={"env-dump": ENV_BOOK},
              conf_extra="pagerduty_secret_env = RB_PD_TEST_SECRET\n")
    assert s.port, s.text()
    try:
        body = pd_body("incident-triggered.json")
        code, out = post_pd(s, body, pd_sig(body, PD_NEW))
        assert code == 202 and json.loads(out)[0]["status"] == "started", out
        s.wait_finished(1)
        with open(env_out) as f:
            env = f.read()
        assert "PATH=" in env
        assert PD_NEW not in env and "RB_PD_TEST_SECRET" not in env
        with open(os.path.join(s.state, "incidents", PD_INCIDENT + ".jsonl")) as f:
            assert PD_NEW not in f.read()
    finally:
        assert s.stop() == 0, s.text()


@pytest.mark.parametrize("secret,conf,error", [
    (TOKEN, "", "one of the secrets is the bearer token: give PagerDuty its own"),
    ("x" * 20 + "," + TOKEN, "", "one of the secrets is the bearer token"),
    ("approver-token-abcdef123", '[approver.alice]\ntoken_env = RB_PD_TEST_APPROVER\n',
     "an approver's token is one of the secrets"),
    ("short,also-short", "", "secret 1 is shorter than 16 characters"),
])
def test_pagerduty_secret_must_be_its_own(tmp_path, monkeypatch, secret, conf, error):
    monkeypatch.setenv("RB_PD_TEST_SECRET", secret)
    monkeypatch.setenv("RB_PD_TEST_APPROVER", "approver-token-abcdef123")
    s = Serve(tmp_path, conf_extra="pagerduty_secret_env = RB_PD_TEST_SECRET\n" + conf)
    assert s.proc.wait(timeout=30) == 2, s.text()
    s.logf.close()
    assert error in s.text(), s.text()
    assert secret not in s.text()


def test_pagerduty_route_without_a_secret_refuses(tmp_path):
    s = Serve(tmp_path)
    assert s.port, s.text()
    try:
        body = pd_body("incident-triggered.json")
        code, out = post_pd(s, body, pd_sig(body, PD_NEW))
        assert code == 401 and "no [serve] pagerduty_secret" in out, out
    finally:
        assert s.stop() == 0, s.text()


# -- Grafana, as grafana/alerting's tests expect it to send -----------------------

def grafana_rule(out):
    return {"match": {"alertname": "alert1", "lbl1": "~val[12]"}, "runbook": "alert-record",
            "mode": "exec", "vars": {"service": "{{labels.lbl1}}", "out": out}}


def post_grafana(s, body):
    return s.request("POST", "/alerts/grafana", body,
                     dict(JSON_HEADERS, Authorization="Bearer " + TOKEN))


def grafana_fixture(name):
    with open(os.path.join(GRAFANA_DIR, name)) as f:
        return f.read()


def test_grafana_payloads_from_grafana_alerting_tests_start_runs(tmp_path):
    out = str(tmp_path / "grafana.txt")
    s = Serve(tmp_path, more_rules=[grafana_rule(out)])
    assert s.port, s.text()
    try:
        code, body = post_grafana(s, grafana_fixture("alerting-default-payload.json"))
        assert code == 202, body
        assert [(r["fingerprint"], r["status"]) for r in json.loads(body)] == [
            ("fac0861a85de433a", "started")]
        s.wait_finished(1)
        code, body = post_grafana(s, grafana_fixture("alerting-truncated-two-of-three.json"))
        assert code == 202, body
        # same fingerprint and (zero) startsAt as before: the same firing
        assert [(r["fingerprint"], r["status"]) for r in json.loads(body)] == [
            ("fac0861a85de433a", "duplicate"), ("fab6861a85d5eeb5", "started")]
        s.wait_finished(2)
        with open(out) as f:
            assert f.read() == "val1\nval2\n"
        ev = s.timeline(GRAFANA_INCIDENT)  # both alerts of the group's firing
        assert ev[0]["actor"] == "alert:alert1"
    finally:
        assert s.stop() == 0, s.text()


# -- resolved notifications, every route ---------------------------------------------

JSON_ROUTE = """[serve.json.uptime]
alerts = "/events"
fingerprint = "/check/id"
status = "/state"
resolved = "up"
starts_at = "/since"
labels = "alertname=/check/name"
"""


def uptime(state):
    return json.dumps({"events": [{"check": {"id": "chk-17", "name": "checkout-probe"},
                                   "state": state, "since": "2026-11-22T09:40:00Z"}]})


def test_resolved_notifications_of_all_four_routes_are_noted_on_the_run_timeline(
        tmp_path, monkeypatch):
    monkeypatch.setenv("RB_PD_TEST_SECRET", PD_NEW)
    outs = {k: str(tmp_path / (k + ".txt")) for k in ("am", "gf", "js", "pd")}
    rules = [grafana_rule(outs["gf"]),
             {"match": {"alertname": "checkout-probe"}, "runbook": "alert-record",
              "mode": "exec", "vars": {"out": outs["js"]}},
             pd_rule(outs["pd"])]
    s = Serve(tmp_path, more_rules=rules,
              conf_extra="pagerduty_secret_env = RB_PD_TEST_SECRET\n" + JSON_ROUTE)
    assert s.port, s.text()
    auth = dict(JSON_HEADERS, Authorization="Bearer " + TOKEN)
    am = json.loads(fixture_body())
    gf = json.loads(grafana_fixture("alerting-default-payload.json"))
    trig, res = pd_body("incident-triggered.json"), pd_body("incident-resolved.json")
    try:
        # the firings
        assert s.post_alerts(json.dumps(am))[0] == 202
        assert post_grafana(s, json.dumps(gf))[0] == 202
        assert s.request("POST", "/alerts/json/uptime", uptime("down"), auth)[0] == 202
        assert post_pd(s, trig, pd_sig(trig, PD_NEW))[0] == 202
        s.wait_finished(4)
        # and their resolved notifications
        for a in am["alerts"]:
            a["status"] = "resolved"
        gf["alerts"][0]["status"] = "resolved"
        code, out = s.post_alerts(json.dumps(am))
        got = {r["fingerprint"]: r for r in json.loads(out)}
        assert got["a3d9a4bfa0d26a05"]["incident"] == FIXTURE_INCIDENT, out
        # the other alert of the group matched no rule, but was part of the firing:
        # noted on the group's incident too (one incident per group and firing)
        assert got["c0a91155a79b9c9b"]["status"] == "resolved"
        assert got["c0a91155a79b9c9b"]["incident"] == FIXTURE_INCIDENT
        assert post_grafana(s, json.dumps(gf))[0] == 202
        assert s.request("POST", "/alerts/json/uptime", uptime("up"), auth)[0] == 202
        assert post_pd(s, res, pd_sig(res, PD_NEW))[0] == 202
        for incident, via, n in [(FIXTURE_INCIDENT, "/alerts/alertmanager", 2),
                                 (GRAFANA_INCIDENT, "/alerts/grafana", 1),
                                 ("ALERT-chk-17-20261122T094000.000Z", "/alerts/json/uptime", 1),
                                 (PD_INCIDENT, "/alerts/pagerduty", 1)]:
            ev = s.timeline(incident)
            noted = [e for e in ev if e["event"] == "alert_resolved"]
            assert len(noted) == n and noted[0]["detail"]["via"] == via, (incident, ev)
            # after the run's own events, and the chain still verifies
            assert ev[-1]["event"] == "alert_resolved"
            v = rbtest.run(["verify", incident], state_dir=s.state)
            assert v.code == 0, v.stdout + v.stderr
            # the readers of a timeline take the listener's event in their stride
            v = rbtest.run(["postmortem", incident], state_dir=s.state)
            assert v.code == 0, v.stdout + v.stderr
            html = str(tmp_path / (incident + ".html"))
            v = rbtest.run(["report", incident, "--html", html], state_dir=s.state)
            assert v.code == 0, v.stdout + v.stderr
        # an alert that never started a run opens no timeline of its own
        assert len(os.listdir(os.path.join(s.state, "incidents"))) == 4
        assert s.metrics()["runbook_runs_started_total"] == 4
    finally:
        assert s.stop() == 0, s.text()
