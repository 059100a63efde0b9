"""test_slack: approvals from Slack through `runbook serve`. A local HTTP
server that records every request plays Slack's Web API (chat.postMessage,
chat.update) and the callbacks' response_url; the callbacks are built and
signed here as Slack documents them (v0 HMAC-SHA256 of "v0:TS:BODY", the
payload form-encoded as payload=JSON)."""
import hashlib
import hmac
import http.server
import json
import os
import socketserver
import threading
import time
import urllib.parse

import pytest

import rbtest
from test_serve import Serve, TOKEN

BOT = "xoxb-test-bot-token-0c7e5a"
SIGNING = "slack-signing-secret-4b1d9e77"
ALICE_TOKEN = "approver-alice-http-token-19ae"
CHANNEL = "C0TEST"
MSG_TS = "1700000000.000100"

QUORUM_BOOK = """return runbook {
  name = "slack-quorum", title = "Two approvers (test)", start = "act",
  approval_policy = { min = 2 },
  steps = {
    act = action { title = "Fail over", approval = true, run = function(ctx)
      return true end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""

CONFIRM_BOOK = """return runbook {
  name = "slack-confirm", title = "Destructive (test)", start = "drop",
  steps = {
    drop = action { title = "Drop the cache", approval = { confirm = "checkout-db" },
      run = function(ctx) return true end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""

GATED = """return runbook {
  name = "slack-gated", title = "Gated (test)", start = "act",
  steps = {
    act = action { title = "Restart it", approval = true, run = function(ctx)
      return true end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


class SlackRecorder:
    """Plays Slack on loopback: every request is recorded; the Web API
    answers ok with a fixed channel and ts, a response_url answers "ok"."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with rec.lock:
                    rec.requests.append({"path": self.path, "body": body,
                                         "headers": {k.lower(): v for k, v in
                                                     self.headers.items()}})
                if self.path.startswith("/api/"):
                    out = json.dumps({"ok": True, "channel": CHANNEL, "ts": MSG_TS}).encode()
                    ctype = "application/json"
                else:
                    out, ctype = b"ok", "text/plain"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def posts(self, path):
        with self.lock:
            return [dict(r, json=json.loads(r["body"])) for r in self.requests
                    if r["path"] == path]

    def wait(self, path, n=1, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.posts(path)
            if len(got) >= n:
                return got
            time.sleep(0.05)
        raise AssertionError("%d POST %s not seen; got %r" % (n, path, self.requests))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def sign(body, ts, secret=SIGNING):
    base = b"v0:" + ts.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def click(user, run, step, approve=True, hook="/hooks/T0/1/a", word=None, msg_ts=MSG_TS):
    """The form body of a block_actions callback, as Slack sends it."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEST"},
        "api_app_id": "A0TEST", "team": {"id": "T0TEST", "domain": "test"},
        "container": {"type": "message", "message_ts": msg_ts, "channel_id": CHANNEL},
        "channel": {"id": CHANNEL, "name": "ops"},
        "trigger_id": "1.2.%d" % time.time_ns(),
        "response_url": SLACK.url + hook,
        "state": {"values": {}},
        "actions": [{"type": "button", "block_id": "rb_gate",
                     "action_id": "rb_approve" if approve else "rb_deny",
                     "value": "%s/%s" % (run, step),
                     "action_ts": "%.6f" % time.time()}],
    }
    if word is not None:
        payload["state"]["values"]["rb_confirm"] = {
            "word": {"type": "plain_text_input", "value": word}}
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def deliver(serve, body, ts=None, secret=SIGNING, sig=None):
    ts = ts or str(int(time.time()))
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Slack-Request-Timestamp": ts}
    if sig is not False:  # False: no signature header at all
        headers["X-Slack-Signature"] = sig or sign(body, ts, secret)
    return serve.request("POST", "/slack/actions", body, headers)


SLACK = None


@pytest.fixture
def slack(monkeypatch):
    global SLACK
    SLACK = SlackRecorder()
    monkeypatch.setenv("RB_SLACK_BOT", BOT)
    monkeypatch.setenv("RB_SLACK_SIGNING", SIGNING)
    monkeypatch.setenv("RB_APPR_ALICE", ALICE_TOKEN)
    yield SLACK
    SLACK.close()


def slack_conf(extra=""):
    return ("[slack]\napi_url = %s/api\nchannel = %s\nbot_token_env = RB_SLACK_BOT\n"
            "signing_secret_env = RB_SLACK_SIGNING\n"
            "[approver.alice]\ntoken_env = RB_APPR_ALICE\nslack_user = U0ALICE\n"
            "[approver.bob]\nslack_user = U0BOB\n" % (SLACK.url, CHANNEL)) + extra


def start(tmp_path, name, book, fingerprint):
    rule = {"match": {"alertname": name}, "runbook": book.split('"')[1], "mode": "exec"}
    s = Serve(tmp_path, conf_extra=slack_conf(), more_rules=[rule],
              books={book.split('"')[1]: book})
    assert s.port, s.text()
    alert = {"alerts": [{"status": "firing", "labels": {"alertname": name},
                         "fingerprint": fingerprint}]}
    assert s.post_alerts(json.dumps(alert))[0] == 202
    return s


def pending(serve):
    r = rbtest.run(["approvals"], state_dir=serve.state)
    return r.stdout if "no pending approvals" not in r.stdout else ""


def events(serve, incident, kind):
    return [e for e in serve.timeline(incident) if e["event"] == kind]


def final(posts):
    """The last message without buttons among posts, or None."""
    done = [p["json"] for p in posts if not blocks_of(p["json"], "actions")]
    return done[-1] if done else None


def blocks_of(msg, kind):
    return [b for b in msg["blocks"] if b["type"] == kind]


def test_request_is_posted_with_buttons_and_a_signed_click_approves(tmp_path, slack):
    s = start(tmp_path, "SlackGate", GATED, "5ac0000000000001")
    try:
        post = slack.wait("/api/chat.postMessage")[0]
        assert post["headers"]["authorization"] == "Bearer " + BOT
        assert post["headers"]["content-type"].startswith("application/json")
        msg = post["json"]
        assert msg["channel"] == CHANNEL
        buttons = blocks_of(msg, "actions")[0]["elements"]
        assert [b["action_id"] for b in buttons] == ["rb_approve", "rb_deny"]
        assert [b["text"]["text"] for b in buttons] == ["Approve", "Deny"]
        run, step = buttons[0]["value"].split("/")
        assert step == "act" and buttons[1]["value"] == buttons[0]["value"]
        head = msg["blocks"][0]["text"]["text"]
        assert "run `%s`" % run in head and "step `act`" in head
        assert "incident `ALERT-5ac0000000000001`" in head
        code, body = deliver(s, click("U0ALICE", run, step))
        assert code == 200, body
        m = s.wait_finished(1)
        assert m['runbook_runs_finished_total{exit_code="0"}'] == 1, s.text()
        inc = "ALERT-5ac0000000000001"
        ans = events(s, inc, "approval_answered")
        assert [(a["detail"]["identity"], a["detail"]["channel"]) for a in ans] == [
            ("alice", "slack")]
        ok = events(s, inc, "approved")[0]["detail"]
        assert ok["by"] == "alice" and ok["via"] == "slack"
        assert "U0ALICE" in ok["answers"][0]["comment"]
        # the outcome replaces the message through the click's response_url
        deadline = time.time() + 30
        while time.time() < deadline and not final(slack.posts("/hooks/T0/1/a")):
            time.sleep(0.05)
        done = final(slack.posts("/hooks/T0/1/a"))
        assert done and done["replace_original"] is True, slack.requests
        # a late click on the decided gate's message is told so
        assert deliver(s, click("U0BOB", run, step, hook="/hooks/late"))[0] == 200
        late = slack.wait("/hooks/late")[0]["json"]["text"]
        assert "already approved by alice" in late, late
        assert "*Approved* by alice (slack)" in json.dumps(done)
    finally:
        assert s.stop() == 0, s.text()
    log = s.text()
    assert BOT not in log and SIGNING not in log and ALICE_TOKEN not in log




def test_refused_callbacks_leave_the_gate_pending_and_quorum_spans_slack_and_cli(
        tmp_path, slack):
    s = start(tmp_path, "SlackTwo", QUORUM_BOOK, "5ac0000000000002")
    inc = "ALERT-5ac0000000000002"
    try:
        msg = slack.wait("/api/chat.postMessage")[0]["json"]
        run, step = blocks_of(msg, "actions")[0]["elements"][0]["value"].split("/")
        good = click("U0ALICE", run, step)
        # a wrong signature, a missing one, another app's secret
        assert deliver(s, good, sig="v0=" + "0" * 64)[0] == 401
        assert deliver(s, good, sig=False)[0] == 401
        assert deliver(s, good, secret="another-apps-signing-secret")[0] == 401
        # correctly signed, but 6 minutes old (and 6 minutes ahead)
        old = str(int(time.time()) - 360)
        assert deliver(s, good, ts=old)[0] == 401
        assert deliver(s, good, ts=str(int(time.time()) + 360))[0] == 401
        # a user no [approver.NAME] maps
        eve = click("U0EVE", run, step, hook="/hooks/T0/2/eve")
        assert deliver(s, eve)[0] == 200
        told = slack.wait("/hooks/T0/2/eve")[0]["json"]
        assert told["response_type"] == "ephemeral" and told["replace_original"] is False
        assert "Slack user U0EVE is not an approver" in told["text"]
        assert "slack_user" in told["text"]
        time.sleep(0.5)
        assert "needs 0 of 2" in pending(s), pending(s)
        # alice's click counts once; the same callback again is a replay
        ts = str(int(time.time()))
        assert deliver(s, good, ts=ts)[0] == 200
        assert deliver(s, good, ts=ts)[0] == 409
        assert deliver(s, good, ts=ts)[0] == 409  # on the timeline once, below
        deadline = time.time() + 30
        while "1 of 2" not in pending(s) and time.time() < deadline:
            time.sleep(0.1)
        assert "needs 1 of 2; answered: alice" in pending(s), pending(s)
        # a fresh click by alice is hers again: one answer each
        assert deliver(s, click("U0ALICE", run, step, hook="/hooks/T0/3/a2"))[0] == 200
        told = slack.wait("/hooks/T0/3/a2")[0]["json"]
        assert "alice already answered" in told["text"]
        # a mapped user clicking on some other message
        other = click("U0BOB", run, step, hook="/hooks/T0/4/b", msg_ts="1700000001.000200")
        assert deliver(s, other)[0] == 200
        told = slack.wait("/hooks/T0/4/b")[0]["json"]
        assert "did not post for step 'act'" in told["text"]
        time.sleep(0.5)
        assert s.proc.poll() is None and "1 of 2" in pending(s)
        r = rbtest.run(["approve", run, step], state_dir=s.state)
        assert r.code == 0, r
        m = s.wait_finished(1)
        assert m['runbook_runs_finished_total{exit_code="0"}'] == 1, s.text()
        ok = events(s, inc, "approved")[0]["detail"]
        assert sorted((a["identity"], a["channel"]) for a in ok["answers"]) == [
            ("alice", "slack"), ("root", "cli")]
        refused = events(s, inc, "approval_refused")
        reasons = [(e["detail"]["identity"], e["detail"]["channel"], e["detail"]["reason"])
                   for e in refused]
        assert [r[0] for r in reasons if "not an approver" in r[2]] == ["slack:U0EVE"]
        assert [r[0] for r in reasons if "replayed" in r[2]] == ["alice"]
        assert [r[0] for r in reasons if "did not post" in r[2]] == ["bob"]
        assert len([r for r in reasons if "5 minutes" in r[2]]) == 2
        assert all(r[1] == "slack" for r in reasons)
        # bad signatures are not the run's: nothing of them on its timeline
        assert len(refused) == 5, reasons
        assert m["runbook_auth_failures_total"] >= 3
    finally:
        assert s.stop() == 0, s.text()


def test_confirm_gate_needs_the_word_from_slack_and_http(tmp_path, slack):
    s = start(tmp_path, "SlackWord", CONFIRM_BOOK, "5ac0000000000003")
    inc = "ALERT-5ac0000000000003"
    try:
        msg = slack.wait("/api/chat.postMessage")[0]["json"]
        box = blocks_of(msg, "input")
        assert box and box[0]["block_id"] == "rb_confirm"
        assert box[0]["element"]["action_id"] == "word"
        assert "`checkout-db`" in json.dumps(msg)
        run, step = blocks_of(msg, "actions")[0]["elements"][0]["value"].split("/")
        assert deliver(s, click("U0BOB", run, step, hook="/hooks/w/1"))[0] == 200
        told = slack.wait("/hooks/w/1")[0]["json"]["text"]
        assert "refused by step 'drop' (confirm)" in told and "'checkout-db'" in told
        assert deliver(s, click("U0BOB", run, step, hook="/hooks/w/2", word="yes"))[0] == 200
        assert "another" in slack.wait("/hooks/w/2")[0]["json"]["text"]
        # over HTTP the body carries it
        auth = {"Authorization": "Bearer " + ALICE_TOKEN, "Content-Type": "application/json"}
        path = "/approvals/%s/%s" % (run, step)
        code, body = s.request("POST", path, '{"approve": true}', auth)
        assert code == 403 and "(confirm)" in body, body
        time.sleep(0.5)
        assert s.proc.poll() is None and "0 of 1" in pending(s)
        code, body = deliver(s, click("U0BOB", run, step, hook="/hooks/w/3",
                                      word="checkout-db"))
        assert code == 200, body
        m = s.wait_finished(1)
        assert m['runbook_runs_finished_total{exit_code="0"}'] == 1, s.text()
        ok = events(s, inc, "approved")[0]["detail"]
        assert ok["by"] == "bob" and ok["answers"][0]["confirmed"] is True
        refused = [e["detail"] for e in events(s, inc, "approval_refused")]
        assert sorted((r["identity"], r["channel"]) for r in refused) == [
            ("alice", "http"), ("bob", "slack"), ("bob", "slack")]
    finally:
        assert s.stop() == 0, s.text()


def test_slack_secrets_stay_out_of_the_runs_environment(tmp_path, slack):
    s = start(tmp_path, "SlackGate", GATED, "5ac0000000000004")
    try:
        msg = slack.wait("/api/chat.postMessage")[0]["json"]
        run, step = blocks_of(msg, "actions")[0]["elements"][0]["value"].split("/")
        kids = []
        for p in os.listdir("/proc"):
            try:
                with open("/proc/%s/stat" % p) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == s.proc.pid:
                        kids.append(p)
            except (OSError, ValueError, IndexError):
                continue
        assert kids, "no run under the listener"
        for k in kids:
            try:
                with open("/proc/%s/environ" % k, "rb") as f:
                    env = f.read()
            except OSError:
                continue  # ended meanwhile
            for secret in (BOT, SIGNING, ALICE_TOKEN, TOKEN):
                assert secret.encode() not in env
        # a denial from Slack ends the run, and the message says so
        assert deliver(s, click("U0BOB", run, step, approve=False, hook="/hooks/d"))[0] == 200
        m = s.wait_finished(1)
        assert m['runbook_runs_finished_total{exit_code="4"}'] == 1, s.text()
        deadline = time.time() + 30
        while time.time() < deadline and not final(slack.posts("/hooks/d")):
            time.sleep(0.05)
        assert "*Denied* by bob (slack)" in json.dumps(final(slack.posts("/hooks/d")))
    finally:
        assert s.stop() == 0, s.text()


@pytest.mark.parametrize("conf,why", [
    ("[slack]\nchannel = C1\nbot_token_env = RB_SLACK_BOT\n",
     "[slack]: set signing_secret_env or signing_secret_file"),
    ("[slack]\nbot_token_env = RB_SLACK_BOT\nsigning_secret_env = RB_SLACK_SIGNING\n",
     "[slack] channel"),
    ("[slack]\nchannel = C1\nbot_token_env = RB_SLACK_BOT\n"
     "signing_secret_env = RB_SERVE_TEST_TOKEN\n", "equals another credential"),
    ("[slack]\nchannel = C1\nbot_token_env = RB_SLACK_BOT\n"
     "signing_secret_env = RB_SLACK_SIGNING\n[approver.a]\nslack_user = U0X\n"
     "[approver.b]\nslack_user = U0X\n", "one approver each"),
    ("[slack]\nchannel = C1\nbot_token_env = RB_SLACK_BOT\n"
     "signing_secret_env = RB_SLACK_SIGNING\n[approver.a]\nslack_user = alice\n",
     "not a Slack user id"),
])
def test_incomplete_or_unsafe_slack_config_stops_start_up(tmp_path, slack, conf, why):
    s = Serve(tmp_path, conf_extra=conf)
    assert s.proc.wait(timeout=30) == 2
    s.logf.close()
    assert why in s.text(), s.text()


def test_without_slack_config_the_route_is_404(tmp_path, slack):
    s = Serve(tmp_path)
    try:
        body = b"payload=%7B%7D"
        assert deliver(s, body)[0] == 404
    finally:
        assert s.stop() == 0
