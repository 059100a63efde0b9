"""escalate steps that page: each kind of [escalation.NAME] target against
the FAKE vendor server (the exact method, path, headers and body as PagerDuty
Events v2, the Opsgenie Alert API, Slack and our webhook document them),
trigger and resolve; dry-run and drill record the exact request and send
nothing; unknown targets and bad target configs fail closed; a failed page
is said loudly and secrets never reach the timeline."""
import json
import os

import pytest

import httpservers as hs
import rbtest

PD_KEY = "pd-routing-key-0123456789abcdef"
OG_KEY = "og-api-key-0123456789abcdef"
BOT = "xoxb-bot-token-0123456789"
HOOK_TOKEN = "hook-bearer-0123456789"
SLACK_PATH = "/services/T000/B000/slack-secret-path"
SECRETS = (PD_KEY, OG_KEY, BOT, HOOK_TOKEN, "slack-secret-path")

BOOK_SRC = """return runbook {
  name = "pg", title = "Paging", start = "page", severity = "sev2",
  steps = {
    page = escalate { title = "Page the DBAs", to = "%(to)s",
      message = "pool exhausted on db-1"%(next)s },
%(end)s
  },
}
"""
ENDS = {"done": '    done = resolved { title = "Done" },',
        "gave_up": '    gave_up = escalated { title = "Handed over" },', "": ""}


class _Book:
    """BOOK % {"to": ..., "next": "done" | "gave_up" | ""} (no next: ends escalated)."""

    def __mod__(self, v):
        nxt = ', next = "%s"' % v["next"] if v["next"] else ""
        return BOOK_SRC % {"to": v["to"], "next": nxt, "end": ENDS[v["next"]]}


BOOK = _Book()


@pytest.fixture
def fake():
    f = hs.FakeServer()
    yield f
    f.close()


def run(tmp_path, config, args=(), to="dba-team", nxt="done", env=None, incident="inc1"):
    book = rbtest.write(str(tmp_path / "pg.lua"), BOOK % {"to": to, "next": nxt})
    conf = rbtest.write(str(tmp_path / "runbook.conf"), config)
    e = {"PD_KEY": PD_KEY, "OG_KEY": OG_KEY, "BOT": BOT, "HOOK_TOKEN": HOOK_TOKEN}
    e.update(env or {})
    return rbtest.run(["--config", conf, "exec", book, "--incident", incident] + list(args),
                      state_dir=str(tmp_path / "state"), env=e)


def drill_book(tmp_path, to="dba-team"):
    book = rbtest.write(str(tmp_path / "pg.lua"), BOOK % {"to": to, "next": "done"})
    rbtest.write(str(tmp_path / "scenarios" / "pg" / "default.json"),
                 '{"steps": {}, "expect": {"outcome": "resolved"}}')
    return book


def run_id(res):
    return res.timeline()[0]["run"]


def body(req):
    return json.loads(req["body"])


def no_secrets(res):
    text = json.dumps(res.timeline()) + res.stdout + res.stderr
    for s in SECRETS:
        assert s not in text, s


def details(res):
    return {"runbook": "pg", "run": run_id(res), "step": "page", "reason": "Page the DBAs",
            "incident": "inc1", "target": "dba-team"}


def page_detail(res):
    fin = [e for e in res.timeline() if e["step"] == "page" and e["event"] == "finished"
           and "op" not in e["detail"]]
    return fin[0]["detail"]["page"]


def test_pagerduty_trigger_and_resolve(tmp_path, fake):
    ok = {"status": "success", "message": "Event processed", "dedup_key": "runbook-inc1"}
    hdr = {"Content-Type": "application/json"}
    fake.expect("POST", "/v2/enqueue", status=202, json_body=ok, want_headers=hdr)
    fake.expect("POST", "/v2/enqueue", status=202, json_body=ok, want_headers=hdr)
    res = run(tmp_path, "[escalation.dba-team]\nkind = pagerduty\nrouting_key_env = PD_KEY\n"
              "url = %s/v2/enqueue\n" % fake.url)
    assert res.code == 0, res
    fake.check()
    trigger, resolve = fake.requests
    assert body(trigger) == {
        "routing_key": PD_KEY, "event_action": "trigger", "dedup_key": "runbook-inc1",
        "client": "runbook",
        "payload": {"summary": "pool exhausted on db-1", "source": "runbook",
                    "severity": "error", "custom_details": details(res)}}
    assert body(resolve) == {"routing_key": PD_KEY, "event_action": "resolve",
                             "dedup_key": "runbook-inc1"}
    page = page_detail(res)
    assert page["ok"] is True and page["status"] == 202 and page["kind"] == "pagerduty"
    notes = [e for e in hs.events(res, op="page", event="note")]
    assert notes[0]["step"] == "done" and notes[0]["detail"]["event"] == "resolve"
    assert notes[0]["detail"]["ok"] is True
    assert "paged dba-team (pagerduty, HTTP 202)" in res.stdout
    assert "resolved the page to dba-team (HTTP 202)" in res.stdout
    # the write-intent journal: the trigger was journaled before it was sent
    started = hs.events(res, op="http", event="started")
    assert len(started) == 2 and started[0]["detail"]["body_sha256"]
    no_secrets(res)


def test_opsgenie_alert_and_close(tmp_path, fake):
    accepted = {"result": "Request will be processed", "took": 0.1, "requestId": "r1"}
    auth = {"Authorization": "GenieKey " + OG_KEY, "Content-Type": "application/json"}
    fake.expect("POST", "/v2/alerts", status=202, json_body=accepted, want_headers=auth)
    fake.expect("POST", "/v2/alerts/runbook-inc1/close", status=202, json_body=accepted,
                want_headers=auth, want_query={"identifierType": "alias"})
    res = run(tmp_path, "[escalation.dba-team]\nkind = opsgenie\napi_key_file = %s\n"
              "url = %s/v2/alerts\nteam = dba\nseverity = sev1\n"
              % (keyfile(tmp_path, OG_KEY), fake.url))
    assert res.code == 0, res
    fake.check()
    alert, close = fake.requests
    run_ = run_id(res)
    assert body(alert) == {
        "message": "pool exhausted on db-1", "alias": "runbook-inc1",
        "description": "Page the DBAs\n\nRunbook pg, incident inc1, run %s, step page." % run_,
        "priority": "P1", "source": "runbook", "details": details(res),
        "responders": [{"type": "team", "name": "dba"}]}
    assert body(close) == {"source": "runbook",
                           "note": "The run %s of pg ended resolved." % run_}
    no_secrets(res)


def keyfile(tmp_path, secret):
    p = str(tmp_path / "secret")
    with open(p, "w") as f:
        f.write(secret + "\n")
    os.chmod(p, 0o600)
    return p


def test_slack_webhook_and_bot(tmp_path, fake):
    fake.expect("POST", SLACK_PATH, body="ok", content_type="text/plain",
                want_headers={"Content-Type": "application/json"})
    fake.expect("POST", SLACK_PATH, body="ok", content_type="text/plain")
    res = run(tmp_path, "[escalation.dba-team]\nkind = slack\nwebhook_url_env = SLACK\n",
              env={"SLACK": fake.url + SLACK_PATH})
    assert res.code == 0, res
    fake.check()
    trigger, resolve = fake.requests
    assert body(trigger) == {"text": ":rotating_light: *Escalated to dba-team*: pool "
                             "exhausted on db-1\nRunbook pg, incident inc1, run %s, step "
                             "page." % run_id(res)}
    assert body(resolve)["text"].startswith(":white_check_mark: *Resolved*: incident inc1")
    would = [e["detail"] for e in hs.events(res, op="http", event="started")]
    assert would[0]["url"] == "[REDACTED]" and would[0]["url_from"] == \
        "escalation.dba-team.webhook_url"
    no_secrets(res)

    bot = hs.FakeServer()
    try:
        ts = {"ok": True, "channel": "C123", "ts": "1700000000.000100"}
        hdr = {"Authorization": "Bearer " + BOT,
               "Content-Type": "application/json; charset=utf-8"}
        bot.expect("POST", "/api/chat.postMessage", json_body=ts, want_headers=hdr)
        bot.expect("POST", "/api/chat.postMessage", json_body=ts, want_headers=hdr)
        res = run(tmp_path / "bot", "[escalation.dba-team]\nkind = slack\nbot_token_env = BOT\n"
                  "channel = C123\nurl = %s/api/chat.postMessage\n" % bot.url)
        assert res.code == 0, res
        bot.check()
        trigger, resolve = bot.requests
        assert body(trigger)["channel"] == "C123" and "thread_ts" not in body(trigger)
        assert body(resolve)["thread_ts"] == "1700000000.000100"
        no_secrets(res)
    finally:
        bot.close()


def test_slack_api_error_in_a_200_is_a_failed_page(tmp_path, fake):
    fake.expect("POST", "/api/chat.postMessage", json_body={"ok": False,
                                                            "error": "channel_not_found"})
    res = run(tmp_path, "[escalation.dba-team]\nkind = slack\nbot_token_env = BOT\n"
              "channel = C404\nurl = %s/api/chat.postMessage\n" % fake.url, nxt="")
    assert res.code == 5, res
    assert "page dba-team FAILED: slack: channel_not_found; nobody was paged" in res.stderr


def test_webhook_trigger_and_resolve(tmp_path, fake):
    hdr = {"Authorization": "Bearer " + HOOK_TOKEN, "Content-Type": "application/json"}
    fake.expect("POST", "/page", status=200, json_body={}, want_headers=hdr)
    fake.expect("POST", "/page", status=204, want_headers=hdr)
    res = run(tmp_path, "[escalation.dba-team]\nkind = webhook\nurl = %s/page\n"
              "token_env = HOOK_TOKEN\n" % fake.url)
    assert res.code == 0, res
    fake.check()
    trigger, resolve = fake.requests
    common = {"version": 1, "dedup_key": "runbook-inc1", "target": "dba-team",
              "incident": "inc1", "runbook": "pg", "run": run_id(res), "step": "page"}
    assert body(trigger) == dict(common, event="trigger", summary="pool exhausted on db-1",
                                 reason="Page the DBAs", severity="sev2")
    assert body(resolve) == dict(common, event="resolve")
    no_secrets(res)


def test_webhook_without_token_sends_no_authorization(tmp_path, fake):
    fake.expect("POST", "/page", json_body={})
    res = run(tmp_path, "[escalation.dba-team]\nkind = webhook\nurl = %s/page\n" % fake.url,
              nxt="gave_up")
    assert res.code == 5, res
    fake.check()
    assert "authorization" not in fake.requests[0]["headers"]
    assert len(fake.requests) == 1  # escalated, not resolved: nothing to resolve


CONFIGS = {
    "pagerduty": "kind = pagerduty\nrouting_key_env = PD_KEY\nurl = %s/v2/enqueue\n",
    "opsgenie": "kind = opsgenie\napi_key_env = OG_KEY\nurl = %s/v2/alerts\n",
    "slack": "kind = slack\nbot_token_env = BOT\nchannel = C1\nurl = %s/api/chat.postMessage\n",
    "webhook": "kind = webhook\nurl = %s/page\ntoken_env = HOOK_TOKEN\n",
}


@pytest.mark.parametrize("kind", sorted(CONFIGS))
@pytest.mark.parametrize("mode", ["--dry-run", "drill"])
def test_dry_run_and_drill_record_the_exact_request_and_send_nothing(tmp_path, fake, kind,
                                                                      mode):
    conf = "[escalation.dba-team]\n" + CONFIGS[kind] % fake.url
    if mode == "drill":
        book = drill_book(tmp_path)
        c = rbtest.write(str(tmp_path / "runbook.conf"), conf)
        res = rbtest.run(["--config", c, "drill", book, "--incident", "inc1"],
                         state_dir=str(tmp_path / "state"))
    else:
        res = run(tmp_path, conf, args=[mode])
    assert res.code == 0, res
    assert fake.requests == []
    would = [e for e in hs.events(res, op="http", event="would_run")]
    assert [e["step"] for e in would] == ["page", "done"]  # trigger, then resolve
    d = would[0]["detail"]
    assert d["method"] == "POST" and d["url"].startswith(fake.url)
    assert d["body"] and d["headers"]["Content-Type"].startswith("application/json")
    if kind == "pagerduty":
        assert d["body"]["routing_key"] == "[REDACTED]"
        assert d["body"]["dedup_key"] == "runbook-inc1"
    if kind == "opsgenie":
        assert d["headers"]["Authorization"] == "[REDACTED]"
        assert would[1]["detail"]["url"] == fake.url + \
            "/v2/alerts/runbook-inc1/close?identifierType=alias"
    if kind in ("slack", "webhook"):
        assert d["headers"]["Authorization"] == "[REDACTED]"
    if mode == "--dry-run":
        assert d["preflight"] == {"ok": True, "target": fake.url}
    else:
        assert "preflight" not in d
    no_secrets(res)


def test_drill_without_config_names_the_target(tmp_path):
    book = drill_book(tmp_path)
    res = rbtest.run(["drill", book, "--incident", "inc1"], state_dir=str(tmp_path / "state"))
    assert res.code == 0, res
    would = hs.events(res, op="page", event="would_run")
    assert would[0]["detail"]["target"] == "dba-team"
    assert would[0]["detail"]["configured"] is False
    assert "no [escalation.dba-team]" in would[0]["detail"]["message"]


def test_unknown_target_is_a_check_and_exec_error_with_file_and_line(tmp_path, fake):
    conf = "[escalation.dba-team]\nkind = webhook\nurl = %s/page\n" % fake.url
    book = rbtest.write(str(tmp_path / "pg.lua"), BOOK % {"to": "dba-tema", "next": "done"})
    c = rbtest.write(str(tmp_path / "runbook.conf"), conf)
    r = rbtest.run(["--config", c, "check", book])
    assert r.code == 3, r
    assert "%s:4: escalate step 'page': unknown escalation target 'dba-tema' (no " \
        "[escalation.dba-tema] in %s)" % (book, c) in r.stderr, r
    for args in (["exec"], ["exec", "--dry-run"]):
        r = rbtest.run(["--config", c] + args + [book, "--incident", "x"],
                       state_dir=str(tmp_path / "state"))
        assert r.code == 3, r
        assert "unknown escalation target 'dba-tema'" in r.stderr
    assert fake.requests == []
    assert not os.path.exists(str(tmp_path / "state" / "incidents" / "x.jsonl"))


def test_check_without_paging_config_says_targets_were_not_checked(tmp_path):
    book = rbtest.write(str(tmp_path / "pg.lua"), BOOK % {"to": "dba-team", "next": "done"})
    r = rbtest.run(["check", book])
    assert r.code == 0, r
    assert "note: escalation targets not checked: no [escalation.*] in the config" in r.stdout


@pytest.mark.parametrize("conf,message", [
    ("kind = pagerdutty\nrouting_key_env = K\n",
     "runbook.conf:2: [escalation.t] kind must be pagerduty, opsgenie, slack or webhook "
     "(got 'pagerdutty')"),
    ("kind = pagerduty\n", "[escalation.t] a pagerduty target needs routing_key_env or "
     "routing_key_file"),
    ("kind = pagerduty\nrouting_key_env = K\nteam = dba\n",
     "runbook.conf:4: [escalation.t] a pagerduty target does not take 'team' (it takes: "
     "url, routing_key, source, severity)"),
    ("kind = opsgenie\napi_key = literal\n", "'api_key' is a secret"),
    ("kind = slack\nchannel = C1\n", "a slack target needs webhook_url_env/_file, or "
     "bot_token_env/_file with channel"),
    ("kind = slack\nbot_token_env = B\n", "a slack target with bot_token needs channel"),
    ("kind = webhook\n", "a webhook target needs url"),
    ("kind = webhook\nurl = ftp://x\n", "url must start with https:// or http://"),
    ("kind = webhook\nurl = http://x\nseverity = high\n", "severity must be sev1 ... sev5"),
    ("url = http://x\n", "runbook.conf:2: [escalation.t] has no kind"),
])
def test_bad_target_configs_are_refused_at_load(tmp_path, conf, message):
    book = rbtest.write(str(tmp_path / "pg.lua"), BOOK % {"to": "t", "next": "done"})
    c = rbtest.write(str(tmp_path / "runbook.conf"), "[escalation.t]\n" + conf)
    r = rbtest.run(["--config", c, "check", book])
    assert r.code == 2, r  # a bad config stops every command, as any config error does
    assert message in r.stderr, r


def test_failed_page_is_loud_and_the_run_still_ends_escalated(tmp_path, fake):
    fake.expect("POST", "/v2/enqueue", status=400, json_body={"status": "invalid event"})
    res = run(tmp_path, "[escalation.dba-team]\nkind = pagerduty\nrouting_key_env = PD_KEY\n"
              "url = %s/v2/enqueue\n" % fake.url, nxt="gave_up")
    assert res.code == 5, res
    fake.check()
    page = page_detail(res)
    assert page["ok"] is False and "HTTP 400" in page["error"]
    fin = res.timeline()[-1]
    assert fin["detail"]["outcome"] == "escalated"
    assert "page dba-team FAILED: HTTP 400" in fin["detail"]["pages_failed"][0]
    assert "nobody was paged" in res.stdout and "nobody was paged" in res.stderr
    no_secrets(res)


def test_connection_refused_page_and_no_config_at_all_in_exec(tmp_path):
    port = hs.free_port()
    res = run(tmp_path, "[escalation.dba-team]\nkind = webhook\nurl = http://127.0.0.1:%d/p\n"
              % port, nxt="done")
    assert res.code == 0, res  # escalate-and-continue: the run went on and resolved
    assert "page dba-team FAILED" in res.stderr and "nobody was paged" in res.stderr
    assert not hs.events(res, op="page", event="note")  # nothing was paged: no resolve
    res = run(tmp_path / "none", "", nxt="gave_up")
    assert res.code == 5, res
    assert "page dba-team FAILED: no [escalation.dba-team] in" in res.stderr, res


RESUME_BOOK = """local cmd = require "cmd"
return runbook {
  name = "pg", title = "Paging", start = "page",
  steps = {
    page = escalate { title = "Page the DBAs", to = "dba-team", message = "pool", next = "look" },
    look = check { title = "Look", run = function(ctx)
      cmd.read({"sh", "-c", "test -e %(marker)s && sleep 5 || true"})
      return true
    end, on = { [true] = "done", [false] = "done" } },
    done = resolved { title = "Done" },
  },
}
"""


def test_resumed_run_resolves_the_page_sent_before_the_crash(tmp_path, fake):
    import signal
    import subprocess
    import time
    fake.expect("POST", "/page", json_body={})
    fake.expect("POST", "/page", json_body={})
    marker = str(tmp_path / "slow")
    open(marker, "w").close()
    book = rbtest.write(str(tmp_path / "pg.lua"), RESUME_BOOK % {"marker": marker})
    conf = rbtest.write(str(tmp_path / "runbook.conf"),
                        "[escalation.dba-team]\nkind = webhook\nurl = %s/page\n" % fake.url)
    state = str(tmp_path / "state")
    p = subprocess.Popen([rbtest.RUNBOOK_BIN, "--state-dir", state, "--config", conf, "exec",
                          book, "--incident", "inc1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    tl = os.path.join(state, "incidents", "inc1.jsonl")
    deadline = time.time() + 15
    while time.time() < deadline:
        if os.path.exists(tl) and '"step":"look"' in open(tl).read():
            break
        time.sleep(0.05)
    time.sleep(0.2)
    kids = subprocess.run(["pgrep", "-P", str(p.pid), "-x", "runbook"], capture_output=True,
                          text=True).stdout.split()
    assert kids, "executor child not found"
    os.kill(int(kids[0]), signal.SIGKILL)
    p.communicate(timeout=20)
    assert len(fake.requests) == 1 and body(fake.requests[0])["event"] == "trigger"
    os.unlink(marker)
    run_ = json.loads([line for line in open(tl) if '"run"' in line][0])["run"]
    r = rbtest.run(["--config", conf, "resume", run_], state_dir=state)
    assert r.code == 0, r
    fake.check()
    assert body(fake.requests[1])["event"] == "resolve"
    assert body(fake.requests[1])["dedup_key"] == "runbook-inc1"


def test_computed_unknown_target_is_a_failed_page_and_a_dry_run_would_fail(tmp_path, fake):
    conf = "[escalation.dba-team]\nkind = webhook\nurl = %s/page\n" % fake.url
    src = BOOK % {"to": "X", "next": ""}
    src = src.replace('to = "X"', 'to = function(ctx) return "nobody-" .. ctx.incident end')
    book = rbtest.write(str(tmp_path / "pg.lua"), src)
    c = rbtest.write(str(tmp_path / "runbook.conf"), conf)
    r = rbtest.run(["--config", c, "check", book])
    assert r.code == 0, r  # known only when the step runs
    r = rbtest.run(["--config", c, "exec", "--dry-run", book, "--incident", "i1"],
                   state_dir=str(tmp_path / "state"))
    assert r.code == 7, r
    assert "escalation nobody-i1: no [escalation.nobody-i1]" in r.stdout + r.stderr, r
    r = rbtest.run(["--config", c, "exec", book, "--incident", "i2"],
                   state_dir=str(tmp_path / "state"))
    assert r.code == 5, r
    assert "page nobody-i2 FAILED: no [escalation.nobody-i2] in %s; nobody was paged" % c \
        in r.stderr, r
    assert fake.requests == []


def test_shipped_runbook_drills_page_by_target_name_without_config(tmp_path, fake):
    r = rbtest.run(["drill", "checkout-errors", "--scenario", "database", "--incident", "d1"])
    assert r.code == 0, r
    would = hs.events(r, op="page", event="would_run")
    assert [(e["step"], e["detail"]["target"], e["detail"]["configured"]) for e in would] == \
        [("page_dba", "dba-team", False)]
    assert "would page dba-team: no [escalation.dba-team] in the config" in r.stdout
    # with the target configured, the same drill shows the exact trigger and, as the
    # run ends resolved, the resolve; still nothing is sent
    conf = rbtest.write(str(tmp_path / "runbook.conf"), "[escalation.dba-team]\n"
                        "kind = pagerduty\nrouting_key_env = PD_KEY\nurl = %s/v2/enqueue\n"
                        % fake.url)
    r = rbtest.run(["--config", conf, "drill", "checkout-errors", "--scenario", "database",
                    "--incident", "d2"])
    assert r.code == 0, r
    bodies = [e["detail"]["body"] for e in hs.events(r, op="http", event="would_run")
              if e["detail"]["url"].endswith("/v2/enqueue")]
    assert [b["event_action"] for b in bodies] == ["trigger", "resolve"]
    assert bodies[0]["payload"]["severity"] == "critical"  # no runbook severity: sev1
    assert fake.requests == []
