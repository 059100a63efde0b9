"""test_serve: `runbook serve` driven over HTTP on loopback: Alertmanager
webhooks start runs (real `runbook exec` children), dedup, auth, metrics,
approvals, and a real Prometheus Alertmanager 0.25 as the sender."""
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import rbtest

TOKEN = "serve-test-token-5f2a"
HMAC_KEY = "serve-test-hmac-key-91c3"
FIXTURE = os.path.join(rbtest.FIXTURES, "alertmanager-webhook-v4.json")
AM_BIN = "/usr/bin/prometheus-alertmanager"

RECORD_BOOK = """local cmd = require "cmd"
return runbook {
  name = "alert-record", title = "Record the service (test)", start = "record",
  params = { service = { default = "none" }, out = { required = true } },
  steps = {
    record = action { title = "Record", run = function(ctx)
      return cmd.run({"sh", "-c", 'echo "$1" >> "$2"', "sh", ctx.service, ctx.out}).code
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""

GATED_BOOK = """local cmd = require "cmd"
return runbook {
  name = "alert-gated", title = "Gated (test)", start = "act",
  params = { out = { required = true } },
  steps = {
    act = action { title = "Touch it", approval = true, run = function(ctx)
      return cmd.run({"touch", ctx.out}).code
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


class Serve:
    """A running `runbook serve` with its own state dir, rules and config."""

    def __init__(self, tmp, extra=(), auth=True, conf_extra="", more_rules=(), books=None):
        self.tmp = str(tmp)
        self.state = os.path.join(self.tmp, "state")
        self.out = os.path.join(self.tmp, "out.txt")
        self.gated_out = os.path.join(self.tmp, "gated.txt")
        rbtest.write(os.path.join(self.tmp, "runbooks", "alert-record.lua"), RECORD_BOOK)
        rbtest.write(os.path.join(self.tmp, "runbooks", "alert-gated.lua"), GATED_BOOK)
        for name, text in (books or {}).items():
            rbtest.write(os.path.join(self.tmp, "runbooks", name + ".lua"), text)
        rules = [
            {"match": {"alertname": "CheckoutHighErrorRate", "severity": "critical"},
             "runbook": "alert-record", "mode": "exec",
             "vars": {"service": "{{labels.service}}", "out": self.out}},
            {"match": {"alertname": "~Needs.*"}, "runbook": "alert-gated", "mode": "exec",
             "vars": {"out": self.gated_out}},
        ] + list(more_rules)
        self.rules = rbtest.write(os.path.join(self.tmp, "rules.json"), json.dumps(rules))
        conf = "[serve]\ntoken_env = RB_SERVE_TEST_TOKEN\nhmac_key_env = RB_SERVE_TEST_HMAC\n"
        if not auth:
            conf = ""
        conf += conf_extra
        self.conf = rbtest.write(os.path.join(self.tmp, "rb.conf"), conf)
        self.log = os.path.join(self.tmp, "serve.log")
        env = dict(os.environ, NO_COLOR="1", RB_SERVE_TEST_TOKEN=TOKEN,
                   RB_SERVE_TEST_HMAC=HMAC_KEY)
        env.pop("XDG_CONFIG_HOME", None)
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(
            [rbtest.RUNBOOK_BIN, "--config", self.conf, "--state-dir", self.state, "serve",
             "--listen", "127.0.0.1:0", "--rules", self.rules] + list(extra),
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT, env=env,
            cwd=self.tmp)
        self.port = None
        deadline = time.time() + 30
        while time.time() < deadline and self.proc.poll() is None:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.text())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)

    def text(self):
        with open(self.log) as f:
            return f.read()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def request(self, method, path, body=None, headers=None):
        data = body if isinstance(body, (bytes, type(None))) else body.encode()
        req = urllib.request.Request(self.url(path), data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def post_alerts(self, body, token=TOKEN, headers=None):
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + token
        h.update(headers or {})
        return self.request("POST", "/alerts/alertmanager", body, h)

    def metrics(self):
        code, text = self.request("GET", "/metrics")
        assert code == 200
        return parse_metrics(text)

    def timeline(self, incident):
        path = os.path.join(self.state, "incidents", incident + ".jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            evs = [json.loads(line) for line in f if line.strip()]
        return [e for e in evs if e.get("event") != "timeline_header"]

    def wait_finished(self, n, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = self.metrics()
            done = sum(v for k, v in m.items() if k.startswith("runbook_runs_finished_total"))
            if done >= n:
                return m
            time.sleep(0.1)
        raise AssertionError("runs did not finish:\n" + self.text())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


def parse_metrics(text):
    """Prometheus text format 0.0.4: every sample line parses, HELP/TYPE for each."""
    out, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line.strip():
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)', line)
        assert m, "bad metrics line: %r" % line
        base = re.sub(r"_(sum|count)$", "", m.group(1))  # a summary's own samples
        assert m.group(1) in typed or base in typed, "no TYPE for " + m.group(1)
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def incident_id(group_key, starts_at):
    """The incident of an alert-started run (docs/serve.md, "Incidents"):
    ALERT-<12 hex of SHA-256(groupKey)>-<firing's startsAt, UTC, ms>."""
    group = hashlib.sha256(group_key.encode()).hexdigest()[:12] if group_key else None
    return "ALERT-%s-%s" % (group, starts_at)


FIXTURE_INCIDENT = incident_id("{}:{}", "20261122T093608.312Z")  # the earliest firing
E1_INCIDENT = "ALERT-e1-20261122T093608.312Z"  # no groupKey: its own group and startsAt


@pytest.fixture
def serve(tmp_path):
    s = Serve(tmp_path)
    assert s.port, s.text()
    yield s
    assert s.stop() == 0, s.text()
    assert TOKEN not in s.text() and HMAC_KEY not in s.text()


def fixture_body():
    with open(FIXTURE) as f:
        return f.read()


def test_fixture_starts_one_run_with_actor_and_templated_var(serve):
    code, body = serve.post_alerts(fixture_body())
    assert code == 202, body
    res = {r["fingerprint"]: r for r in json.loads(body)}
    assert res["c0a91155a79b9c9b"]["status"] == "no_rule"
    hit = res["a3d9a4bfa0d26a05"]
    assert hit["status"] == "started" and hit["runbook"] == "alert-record"
    assert hit["incident"] == FIXTURE_INCIDENT
    m = serve.wait_finished(1)
    assert m['runbook_runs_finished_total{exit_code="0"}'] == 1, serve.text()
    assert m["runbook_runs_started_total"] == 1
    assert m["runbook_alerts_received_total"] == 2
    assert m["runbook_alerts_matched_total"] == 1
    ev = serve.timeline(FIXTURE_INCIDENT)
    assert ev and all(e["actor"] == "alert:CheckoutHighErrorRate" for e in ev)
    assert ev[0]["detail"]["params"]["service"] == "checkout"
    assert ev[-1]["event"] == "finished" or any(e["event"] == "finished" for e in ev)
    with open(serve.out) as f:
        assert f.read() == "checkout\n"
    # only the matched alert has a timeline
    assert os.listdir(os.path.join(serve.state, "incidents")) == [FIXTURE_INCIDENT + ".jsonl"]


def test_same_payload_again_is_a_duplicate(serve):
    assert serve.post_alerts(fixture_body())[0] == 202
    code, body = serve.post_alerts(fixture_body())  # while active or just finished
    assert code == 202
    res = {r["fingerprint"]: r["status"] for r in json.loads(body)}
    assert res["a3d9a4bfa0d26a05"] == "duplicate"
    serve.wait_finished(1)
    code, body = serve.post_alerts(fixture_body())  # finished, inside the window
    assert {r["fingerprint"]: r["status"] for r in json.loads(body)}["a3d9a4bfa0d26a05"] == "duplicate"
    m = serve.metrics()
    assert m["runbook_runs_started_total"] == 1
    assert m["runbook_alerts_duplicate_total"] == 2
    with open(serve.out) as f:
        assert f.read() == "checkout\n"


def test_resolved_alert_starts_nothing(serve):
    body = json.loads(fixture_body())
    for a in body["alerts"]:
        a["status"] = "resolved"
    code, out = serve.post_alerts(json.dumps(body))
    assert code == 202
    assert [r["status"] for r in json.loads(out)] == ["resolved", "resolved"]
    assert serve.metrics()["runbook_runs_started_total"] == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic " + TOKEN},
                                     {"X-Runbook-Signature": "sha256=" + "0" * 64}])
def test_wrong_credentials_get_401_and_are_counted(serve, headers):
    code, body = serve.post_alerts(fixture_body(), token=None, headers=headers)
    assert code == 401, body
    m = serve.metrics()
    assert m["runbook_auth_failures_total"] == 1
    assert m['runbook_requests_total{path="/alerts/alertmanager",code="401"}'] == 1
    assert m["runbook_runs_started_total"] == 0


def test_hmac_signed_body_is_accepted(serve):
    body = fixture_body().encode()
    sig = "sha256=" + hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest()
    code, out = serve.post_alerts(body, token=None, headers={"X-Runbook-Signature": sig})
    assert code == 202, out
    assert "started" in [r["status"] for r in json.loads(out)]
    # the same signature over another body is a forgery
    code, _ = serve.post_alerts(body + b" ", token=None, headers={"X-Runbook-Signature": sig[:-1] + "0"})
    assert code == 401
    serve.wait_finished(1)


@pytest.mark.parametrize("body,field", [
    ("{", "body: invalid JSON"),
    ('{"alerts": 3}', "alerts: expected an array"),
    ('{"alerts":[{"status":"firing","fingerprint":"a","labels":{}},'
     '{"status":"firing","fingerprint":"b","labels":[]}]}', "alerts[1].labels: expected an object"),
])
def test_bad_json_is_400_naming_the_field(serve, body, field):
    code, out = serve.post_alerts(body)
    assert code == 400
    assert json.loads(out)["error"].startswith(field)


def test_oversized_body_is_413(serve):
    # The listener answers from the Content-Length alone and may close before
    # reading a body it will not accept, so the client announces the body
    # (Expect: 100-continue) and reads the answer before sending it; writing
    # the megabyte first could end in a broken pipe instead of the 413.
    with socket.create_connection(("127.0.0.1", serve.port), timeout=20) as sk:
        sk.sendall(("POST /alerts/alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                    % (TOKEN, 1024 * 1024 + 1)).encode())
        status = sk.recv(4096).split(b"\r\n", 1)[0]
    assert status.startswith(b"HTTP/1.1 413"), status
    assert serve.request("GET", "/healthz") == (200, "ok\n")


def test_healthz_metrics_and_unknown_path(serve):
    assert serve.request("GET", "/healthz") == (200, "ok\n")
    assert serve.request("GET", "/nope")[0] == 404
    m = serve.metrics()
    for name in ["runbook_alerts_received_total", "runbook_alerts_matched_total",
                 "runbook_alerts_duplicate_total", "runbook_runs_started_total",
                 "runbook_runs_active", "runbook_auth_failures_total"]:
        assert name in m
    assert m['runbook_requests_total{path="/healthz",code="200"}'] == 1
    assert m['runbook_requests_total{path="other",code="404"}'] == 1
    assert "runbook serve: 127.0.0.1 GET /healthz 200" in serve.text()


ALICE_TOKEN = "approver-alice-token-7d41c0"


def test_approvals_endpoint_needs_an_approver_token_and_records_its_name(tmp_path,
                                                                       monkeypatch):
    monkeypatch.setenv("RB_APPR_ALICE", ALICE_TOKEN)
    serve = Serve(tmp_path, conf_extra="[approver.alice]\ntoken_env = RB_APPR_ALICE\n")
    assert serve.port, serve.text()
    alert = {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "NeedsApproval"}, "annotations": {},
         "fingerprint": "feedbeef00000001"}]}
    assert serve.post_alerts(json.dumps(alert))[0] == 202
    auth = {"Authorization": "Bearer " + ALICE_TOKEN, "Content-Type": "application/json"}
    alert_auth = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
    assert serve.request("GET", "/approvals")[0] == 401
    # the alert sender's credential answers nothing
    assert serve.request("GET", "/approvals", headers=alert_auth)[0] == 401
    deadline, pending = time.time() + 60, []
    while time.time() < deadline and not pending:
        code, body = serve.request("GET", "/approvals", headers=auth)
        assert code == 200, body
        pending = json.loads(body)
        time.sleep(0.1)
    assert pending, serve.text()
    run, step = pending[0]["run"], pending[0]["step"]
    path = "/approvals/%s/%s" % (run, step)
    assert step == "act" and not os.path.exists(serve.gated_out)
    assert serve.request("POST", path, '{"approve":true}', alert_auth)[0] == 401
    assert serve.request("POST", "/approvals/nope/act", '{"approve":true}', auth)[0] == 404
    assert serve.request("POST", path, '{"approve":"yes"}', auth)[0] == 400
    code, body = serve.request("POST", path, '{"approve":true,"by":"bob"}', auth)
    assert code == 400 and "credential" in body
    code, body = serve.request("POST", path, '{"approve":true,"comment":"go"}', auth)
    assert code == 200, body
    assert json.loads(body)["by"] == "alice"
    m = serve.wait_finished(1)
    assert m['runbook_runs_finished_total{exit_code="0"}'] == 1
    assert os.path.exists(serve.gated_out)
    code, body = serve.request("POST", path, '{"approve":false}', auth)
    assert code == 409 and "already approved by alice" in body
    ok = [e for e in serve.timeline("ALERT-feedbeef00000001") if e["event"] == "approved"]
    assert ok[0]["detail"]["by"] == "alice" and ok[0]["detail"]["via"] == "http"
    assert ok[0]["actor"] == "alert:NeedsApproval"
    assert serve.stop() == 0


def test_runs_beyond_max_runs_are_queued_and_start_when_one_ends(tmp_path, monkeypatch):
    monkeypatch.setenv("RB_APPR_ALICE", ALICE_TOKEN)
    s = Serve(tmp_path,
              conf_extra="max_runs = 1\n[approver.alice]\ntoken_env = RB_APPR_ALICE\n")
    assert s.port, s.text()
    auth = {"Authorization": "Bearer " + ALICE_TOKEN, "Content-Type": "application/json"}
    try:
        gated = {"alerts": [{"status": "firing", "labels": {"alertname": "NeedsApproval"},
                             "fingerprint": "feedbeef00000002"}]}
        assert json.loads(s.post_alerts(json.dumps(gated))[1])[0]["status"] == "started"
        code, body = s.post_alerts(fixture_body())
        assert code == 202
        assert {r["fingerprint"]: r["status"] for r in json.loads(body)}["a3d9a4bfa0d26a05"] == "queued"
        m = s.metrics()
        assert m["runbook_runs_active"] == 1 and m["runbook_runs_queued"] == 1
        deadline, pending = time.time() + 60, []
        while time.time() < deadline and not pending:
            pending = json.loads(s.request("GET", "/approvals", headers=auth)[1])
            time.sleep(0.1)
        assert pending, s.text()
        assert s.request("POST", "/approvals/%s/act" % pending[0]["run"],
                         '{"approve":false}', auth)[0] == 200
        m = s.wait_finished(2)
        assert m['runbook_runs_finished_total{exit_code="4"}'] == 1  # denied
        assert m['runbook_runs_finished_total{exit_code="0"}'] == 1
        assert m["runbook_runs_started_total"] == 2 and m["runbook_runs_queued"] == 0
    finally:
        assert s.stop() == 0


def test_refuses_to_start_without_auth(tmp_path):
    s = Serve(tmp_path, auth=False)
    assert s.proc.wait(timeout=30) == 2
    s.logf.close()
    assert "no authentication configured" in s.text()


def test_insecure_no_auth_is_logged(tmp_path):
    s = Serve(tmp_path, extra=["--insecure-no-auth"], auth=False)
    assert s.port, s.text()
    assert s.request("GET", "/approvals")[0] == 401  # approvers always need a token
    assert s.stop() == 0
    assert "--insecure-no-auth" in s.text()


def test_bad_rules_file_is_refused_naming_index_and_field(tmp_path):
    rules = rbtest.write(str(tmp_path / "bad.json"),
                         '[{"match":{"a":"b"},"runbook":"x"},{"match":{"a":1},"runbook":"x"}]')
    conf = rbtest.write(str(tmp_path / "rb.conf"), "[serve]\ntoken_env = RB_SERVE_TEST_TOKEN\n")
    r = rbtest.run(["--config", conf, "serve", "--listen", "127.0.0.1:0", "--rules", rules],
                   env={"RB_SERVE_TEST_TOKEN": TOKEN}, timeout=30)
    assert r.code == 2, r
    assert "bad.json: rule 1.match.a: expected a string" in r.stderr


# -- rules checked at start-up, alerts whose run cannot start ---------------


def start_refused(tmp_path, rules, books=None):
    for name, text in (books or {}).items():
        rbtest.write(str(tmp_path / "runbooks" / (name + ".lua")), text)
    rbtest.write(str(tmp_path / "runbooks" / "alert-record.lua"), RECORD_BOOK)
    path = rbtest.write(str(tmp_path / "rules.json"), json.dumps(rules))
    conf = rbtest.write(str(tmp_path / "rb.conf"), "[serve]\ntoken_env = RB_SERVE_TEST_TOKEN\n")
    r = rbtest.run(["--config", conf, "serve", "--listen", "127.0.0.1:0", "--rules", path],
                   state_dir=str(tmp_path / "state"), env={"RB_SERVE_TEST_TOKEN": TOKEN},
                   timeout=30, cwd=str(tmp_path))
    assert r.code == 2, r
    assert "listening" not in r.stderr
    return r.stderr


GOOD_RULE = {"match": {"alertname": "A"}, "runbook": "alert-record", "mode": "exec",
             "vars": {"out": "/dev/null"}}


def test_rule_naming_a_missing_runbook_refuses_start_up_with_its_index(tmp_path):
    err = start_refused(tmp_path, [GOOD_RULE, dict(GOOD_RULE, runbook="no-such-book")])
    assert "rules.json: rule 1: no runbook named 'no-such-book'" in err, err


def test_rule_with_a_misspelt_field_is_refused_with_a_suggestion(tmp_path):
    bad = {"match": {"alertname": "A"}, "runbok": "alert-record"}
    err = start_refused(tmp_path, [GOOD_RULE, bad])
    assert "rules.json: rule 1: unknown field 'runbok' (did you mean 'runbook'?)" in err, err


def test_rule_leaving_a_required_parameter_unmapped_is_refused(tmp_path):
    err = start_refused(tmp_path, [dict(GOOD_RULE, vars={"service": "{{labels.service}}"})])
    assert ("rules.json: rule 0: runbook 'alert-record' requires parameter 'out': map it "
            "in vars from a label, an annotation or a constant") in err, err


def test_rule_mapping_an_undeclared_parameter_is_refused(tmp_path):
    err = start_refused(tmp_path, [dict(GOOD_RULE, vars={"out": "/dev/null", "servce": "x"})])
    assert ("rule 0: vars.servce: runbook 'alert-record' has no parameter 'servce' "
            "(did you mean 'service'?)") in err, err


def test_rule_whose_runbook_does_not_load_is_refused(tmp_path):
    broken = "return runbook { name = 'broken', title = 'x', start = 'a', steps = { a = resolved { titel = 'x' } } }"
    err = start_refused(tmp_path, [GOOD_RULE, dict(GOOD_RULE, runbook="broken")],
                        books={"broken": broken})
    assert "rules.json: rule 1:" in err and "titel" in err, err


def test_rule_with_a_bad_mode_is_refused(tmp_path):
    err = start_refused(tmp_path, [dict(GOOD_RULE, mode="execute")])
    assert "rules.json: rule 0.mode: expected \"exec\" or \"dry-run\"" in err, err


def one_alert(fp, labels, starts="2026-11-22T09:36:08.312Z"):
    return json.dumps({"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": labels, "annotations": {}, "startsAt": starts,
         "fingerprint": fp}]})


class Hook:
    """A webhook receiver on loopback that keeps each POST's path, headers and body."""

    def __init__(self):
        import http.server
        import threading
        got = self.got = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                got.append((self.path, dict(self.headers), self.rfile.read(n).decode()))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/hooks/T0KEN-in-url" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_alert_whose_parameter_is_empty_is_refused_noted_and_a_retry_starts_it(tmp_path):
    out = str(tmp_path / "empty-param.txt")
    rule = {"match": {"alertname": "EmptyParam"}, "runbook": "alert-record", "mode": "exec",
            "vars": {"service": "{{labels.service}}", "out": out}}
    hook = Hook()
    url_file = str(tmp_path / "hook.url")
    with open(os.open(url_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(hook.url + "\n")
    conf = 'notify = "oncall"\n[notify.oncall]\ntype = "webhook"\nurl_file = "%s"\n' % url_file
    s = Serve(tmp_path, more_rules=[rule], conf_extra=conf)
    assert s.port, s.text()
    try:
        code, body = s.post_alerts(one_alert("e1", {"alertname": "EmptyParam", "service": ""}))
        assert code == 500, body
        [item] = json.loads(body)
        assert item["status"] == "failed" and item["reason"] == "param_empty", item
        assert item["error"] == "parameter 'service' of runbook 'alert-record' came out empty"
        assert item["incident"] == E1_INCIDENT and item["rule"] == 2
        m = s.metrics()
        assert m['runbook_alerts_failed_total{reason="param_empty"}'] == 1
        assert m["runbook_runs_started_total"] == 0
        ev = s.timeline(E1_INCIDENT)
        assert [e["event"] for e in ev] == ["alert_not_started"], ev
        d = ev[0]["detail"]
        assert d["error"] == item["error"] and d["reason"] == "param_empty" and d["rule"] == 2
        assert ev[0]["runbook"] == "alert-record" and ev[0]["actor"] == "alert:EmptyParam"
        assert d["notified"] == "notify.oncall"
        [(path, headers, posted)] = hook.got
        assert path == "/hooks/T0KEN-in-url" and headers["Content-Type"] == "application/json"
        posted = json.loads(posted)
        assert posted["event"] == "alert_not_started" and posted["incident"] == E1_INCIDENT
        assert posted["reason"] == "param_empty" and posted["error"] == item["error"]
        # the sender retries once the label has a value: not a duplicate, it starts
        code, body = s.post_alerts(one_alert("e1", {"alertname": "EmptyParam", "service": "pay"}))
        assert code == 202, body
        assert json.loads(body)[0]["status"] == "started"
        s.wait_finished(1)
        with open(out) as f:
            assert f.read() == "pay\n"
        r = rbtest.run(["timeline", E1_INCIDENT], state_dir=s.state, timeout=30)
        assert r.code == 0 and "came out empty" in r.stdout, r
        assert len(hook.got) == 1  # the run that started is no failure
    finally:
        hook.close()
        assert s.stop() == 0, s.text()
    assert "T0KEN-in-url" not in s.text()


def test_alert_whose_runbook_disappeared_is_refused_and_starts_once_it_is_back(tmp_path):
    s = Serve(tmp_path)
    assert s.port, s.text()
    book = os.path.join(s.tmp, "runbooks", "alert-record.lua")
    try:
        os.rename(book, book + ".away")
        code, body = s.post_alerts(fixture_body())
        assert code == 500, body
        hit = {r["fingerprint"]: r for r in json.loads(body)}["a3d9a4bfa0d26a05"]
        assert hit["status"] == "failed" and hit["reason"] == "runbook_missing", hit
        assert "runbook 'alert-record' is gone" in hit["error"]
        assert s.metrics()['runbook_alerts_failed_total{reason="runbook_missing"}'] == 1
        assert s.timeline(FIXTURE_INCIDENT)[0]["detail"]["reason"] == "runbook_missing"
        os.rename(book + ".away", book)
        code, body = s.post_alerts(fixture_body())
        assert code == 202, body
        assert {r["fingerprint"]: r for r in json.loads(body)}["a3d9a4bfa0d26a05"]["status"] == "started"
        s.wait_finished(1)
    finally:
        assert s.stop() == 0, s.text()


# -- a real Prometheus Alertmanager ------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not os.access(AM_BIN, os.X_OK), reason="prometheus-alertmanager not installed")
def test_real_alertmanager_webhook_starts_the_run(serve, tmp_path):
    am_dir = tmp_path / "am"
    am_dir.mkdir()
    cfg = am_dir / "alertmanager.yml"
    cfg.write_text("""route:
  receiver: runbook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: runbook
    webhook_configs:
      - url: http://127.0.0.1:%d/alerts/alertmanager
        send_resolved: false
        http_config:
          authorization:
            credentials: %s
""" % (serve.port, TOKEN))
    am = None
    for _ in range(5):  # the port may be taken between probe and bind
        port = free_port()
        log = open(str(am_dir / "am.log"), "w")
        am = subprocess.Popen([AM_BIN, "--config.file", str(cfg),
                               "--storage.path", str(am_dir / "data"),
                               "--web.listen-address", "127.0.0.1:%d" % port,
                               "--cluster.listen-address="],
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        ready = False
        while time.time() < deadline and am.poll() is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=2) as r:
                    ready = r.status == 200
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        if ready:
            break
        am.kill()
        am.wait()
        am = None
    assert am is not None, (am_dir / "am.log").read_text()
    try:
        alerts = [{"labels": {"alertname": "CheckoutHighErrorRate", "service": "payments",
                              "severity": "critical"},
                   "annotations": {"summary": "from a real Alertmanager"}}]
        req = urllib.request.Request("http://127.0.0.1:%d/api/v2/alerts" % port,
                                     data=json.dumps(alerts).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
        deadline, ev = time.time() + 30, []
        inc_dir = os.path.join(serve.state, "incidents")
        while time.time() < deadline:
            files = os.listdir(inc_dir) if os.path.isdir(inc_dir) else []
            if files:
                ev = serve.timeline(files[0][:-len(".jsonl")])
                if any(e["event"] == "finished" and e["kind"] == "run" for e in ev) or \
                        any(e.get("kind") == "run" and e["event"] not in ("started",) for e in ev):
                    break
            time.sleep(0.2)
        assert ev, "no run started:\n" + serve.text() + (am_dir / "am.log").read_text()
        assert files[0].startswith("ALERT-")
        assert ev[0]["actor"] == "alert:CheckoutHighErrorRate"
        assert ev[0]["detail"]["params"]["service"] == "payments"
        assert "POST /alerts/alertmanager 202" in serve.text()
        serve.wait_finished(1)
        with open(serve.out) as f:
            assert f.read() == "payments\n"
    finally:
        am.send_signal(signal.SIGTERM)
        try:
            am.wait(timeout=20)
        except subprocess.TimeoutExpired:
            am.kill()
            am.wait()
        shutil.rmtree(str(am_dir), ignore_errors=True)


def test_sigterm_waits_for_running_children_then_exits_0(tmp_path):
    s = Serve(tmp_path)
    assert s.port, s.text()
    assert s.post_alerts(fixture_body())[0] == 202
    assert s.stop() == 0
    assert "stopped" in s.text()
    with open(s.out) as f:  # the run was allowed to finish
        assert f.read() == "checkout\n"


# -- Grafana unified alerting ------------------------------------------------

GRAFANA_FIXTURE = os.path.join(rbtest.FIXTURES, "grafana-webhook-v1.json")


def test_grafana_webhook_starts_the_matching_run(serve):
    with open(GRAFANA_FIXTURE) as f:
        body = f.read()
    code, out = serve.request("POST", "/alerts/grafana", body,
                              {"Authorization": "Bearer " + TOKEN,
                               "Content-Type": "application/json"})
    assert code == 202, out
    res = {r["fingerprint"]: r for r in json.loads(out)}
    assert res["0e4c9a7713b2d5f8"]["status"] == "resolved"
    hit = res["5b7a1f20c3e94d11"]
    assert hit["status"] == "started" and hit["incident"] == incident_id(
        '{}/{}:{alertname="CheckoutHighErrorRate"}', "20261122T084010.000Z")
    m = serve.wait_finished(1)
    assert m['runbook_runs_finished_total{exit_code="0"}'] == 1, serve.text()
    assert m['runbook_requests_total{path="/alerts/grafana",code="202"}'] == 1
    with open(serve.out) as f:
        assert f.read() == "checkout\n"
    # the same alert again is a duplicate, whichever route it came by
    code, out = serve.request("POST", "/alerts/grafana", body,
                              {"Authorization": "Bearer " + TOKEN,
                               "Content-Type": "application/json"})
    assert {r["fingerprint"]: r["status"] for r in json.loads(out)}["5b7a1f20c3e94d11"] == "duplicate"


@pytest.mark.parametrize("edit,field", [
    (lambda b: b.pop("version"), 'version: expected "1" (Grafana unified alerting webhook)'),
    (lambda b: b.update(version="4"), 'version: expected "1"'),
    (lambda b: b["alerts"][0].pop("fingerprint"), "alerts[0].fingerprint: expected a string"),
    (lambda b: b["alerts"][1]["labels"].update(x=1), "alerts[1].labels.x: expected a string"),
])
def test_grafana_payload_errors_are_400_naming_the_field(serve, edit, field):
    with open(GRAFANA_FIXTURE) as f:
        body = json.load(f)
    edit(body)
    code, out = serve.request("POST", "/alerts/grafana", json.dumps(body),
                              {"Authorization": "Bearer " + TOKEN,
                               "Content-Type": "application/json"})
    assert code == 400 and field in json.loads(out)["error"], out
    assert serve.post_alerts("{}")[0] == 400  # the Alertmanager route stays v4


# -- the generic JSON route -----------------------------------------------------

JSON_ROUTE = """[serve.json.uptime]
alerts = "/events"
fingerprint = "/check/id"
status = "/state"
resolved = "up"
starts_at = "/since"
labels = "alertname=/check/name, service=/tags/0/service, severity=/level"
annotations = "summary=/message"
"""


def test_generic_json_route_maps_labels_by_json_pointer(tmp_path):
    rule = {"match": {"alertname": "checkout-probe", "severity": "page"},
            "runbook": "alert-record", "mode": "exec",
            "vars": {"service": "{{labels.service}}", "out": str(tmp_path / "json.txt")}}
    s = Serve(tmp_path, more_rules=[rule], conf_extra=JSON_ROUTE)
    assert s.port, s.text()
    h = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
    try:
        body = {"events": [
            {"check": {"id": "chk-17", "name": "checkout-probe"}, "state": "down",
             "since": "2026-11-22T09:40:00Z", "tags": [{"service": "checkout"}],
             "level": "page", "message": "3 of 3 probes failed"},
            {"check": {"id": 18, "name": "search-probe"}, "state": "up",
             "since": 1764000000, "tags": [{"service": "search"}], "level": "page",
             "message": "back"}]}
        code, out = s.request("POST", "/alerts/json/uptime", json.dumps(body), h)
        assert code == 202, out
        res = {r["fingerprint"]: r for r in json.loads(out)}
        assert res["chk-17"]["status"] == "started" and res["chk-17"]["rule"] == 2
        assert res["18"]["status"] == "resolved"
        s.wait_finished(1)
        with open(str(tmp_path / "json.txt")) as f:
            assert f.read() == "checkout\n"
        code, out = s.request("POST", "/alerts/json/uptime", json.dumps(body), h)
        assert {r["fingerprint"]: r["status"] for r in json.loads(out)}["chk-17"] == "duplicate"
        # a mapped field that is missing is a 400 naming the alert, pointer and label
        del body["events"][1]["tags"]
        code, out = s.request("POST", "/alerts/json/uptime", json.dumps(body), h)
        assert code == 400, out
        assert json.loads(out)["error"] == "alerts[1]: /tags/0/service (service): missing"
        assert s.request("POST", "/alerts/json/nope", "{}", h)[0] == 404
    finally:
        assert s.stop() == 0, s.text()


def test_generic_json_route_with_a_bad_pointer_refuses_start_up(tmp_path):
    s = Serve(tmp_path, conf_extra='[serve.json.x]\nfingerprint = "id"\n')
    assert s.proc.wait(timeout=30) == 2
    assert "[serve.json.x] fingerprint: 'id' is not a JSON pointer" in s.text(), s.text()
    s.logf.close()
