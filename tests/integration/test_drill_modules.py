"""Call-level drills of checkout-errors through its branches with http, ssh
(per host), deploy and flags answered, writes answered too (a rollback that
fails on one host, a flag change that fails, a POST answered 500), patterns,
unanswered calls named with the closest answer, and bad answers refused."""
import json
import pathlib
import re
import shutil

import pytest

import rbtest
from test_drill_calls import ERROR_RATE, POOL, drill

STATUS = "https://status.payments.example/api/v2/status.json"
APP = ["app-1", "app-2", "app-3", "app-4"]
ROLLBACK = {"glob": "deploy rollback *"}
RECOVERS = {"query": ERROR_RATE, "values": [0.05, 0.02, 0.004]}


def events(r, step, event=None, incident="calls"):
    return [e for e in r.timeline(incident) if e["step"] == step
            and (event is None or e["event"] == event)]


def path(*tail):
    return ["announce", "recent_deploy"] + list(tail)


def test_a_rollback_failing_on_one_host_takes_rollback_failed(tmp_path):
    r, _ = drill(tmp_path, {
        "inventory": {"app": APP},
        "calls": {
            "deploy": [{"service": "checkout", "value": {"revision": "r42"}}],
            "ssh": [{"host": "app-2", "command": ROLLBACK, "exit": 1,
                     "stderr": "no previous release"},
                    {"host": {"glob": "*"}, "command": ROLLBACK}]},
        "expect": {"outcome": "escalated", "path": path("rollback", "rollback_failed")}})
    assert r.code == 0, r
    would = events(r, "rollback", "would_run")
    assert [e["detail"]["host"] for e in would] == APP
    assert all(e["detail"]["command"] == "deploy rollback checkout" for e in would)
    failed = [e["detail"] for e in events(r, "rollback", "failed") if e["detail"].get("host")]
    assert [(d["host"], d["exit_code"]) for d in failed] == [("app-2", 1)]
    # batch = 2, max_fail = 0: the second batch is never started
    err = [e for e in events(r, "rollback", "failed") if "error" in e["detail"]
           and not e["detail"].get("host")][0]["detail"]["error"]
    assert "ssh: 1 of 4 hosts failed (max_fail 0), 2 not started: ssh app-2: exit code 1" \
        in err, err


def test_a_rollback_on_every_host_then_recovery_resolves(tmp_path):
    r, _ = drill(tmp_path, {
        "inventory": {"app": APP},
        "calls": {
            "deploy": [{"service": "checkout",
                        "value": {"revision": "r2026.11.30-2", "author": "bob"}}],
            "ssh": [{"host": {"glob": "app-*"}, "command": ROLLBACK, "stdout": "ok\n"}],
            "prom": [RECOVERS]},
        "expect": {"outcome": "resolved",
                   "path": path("rollback", "identified_deploy", "verify", "monitoring",
                                "all_clear", "done")}})
    assert r.code == 0, r
    # recent_deploy's own code stored the revision the deploy answer gave
    msg = [e for e in events(r, "identified_deploy") if e["event"] == "finished"][0]
    assert "(r2026.11.30-2)" in json.dumps(msg["detail"]), msg
    assert len([e for e in events(r, "rollback", "finished") if e["detail"].get("host")]) == 4


PROVIDER_DOWN = {
    "deploy": [{"service": "checkout", "value": None}],
    "http": [{"url": STATUS, "json": {"status": {"indicator": "major"}}}],
    "flags": [{"flag": "checkout-payment-fallback", "state": False}],
    "prom": [RECOVERS]}


def test_no_deploy_and_a_degraded_provider_turn_the_fallback_on(tmp_path):
    r, _ = drill(tmp_path, {
        "calls": PROVIDER_DOWN,
        "expect": {"outcome": "resolved",
                   "path": path("dependency", "enable_fallback", "identified_dependency",
                                "verify", "monitoring", "all_clear", "done")}})
    assert r.code == 0, r
    w = events(r, "enable_fallback", "would_run")[0]["detail"]
    assert (w["op"], w["flag"], w["before"], w["wanted"], w["environment"]) == \
        ("flags", "checkout-payment-fallback", False, True, "production")
    got = [e["detail"] for e in events(r, "dependency", "finished") if e["detail"].get("op")]
    assert got[0]["answered_by"] == "scenario" and got[0]["status"] == 200


def test_a_failing_flag_change_fails_the_action(tmp_path):
    calls = dict(PROVIDER_DOWN, flags=PROVIDER_DOWN["flags"] + [
        {"flag": "checkout-payment-fallback", "op": "set", "fail": "HTTP 500: internal error"}])
    r, _ = drill(tmp_path, {"calls": calls, "expect": {
        "outcome": "failed", "path": path("dependency", "enable_fallback")}})
    assert r.code == 0, r
    err = events(r, "enable_fallback", "failed")[-1]["detail"]["error"]
    assert "flags.set checkout-payment-fallback: HTTP 500: internal error" in err, err
    # the change is still recorded as would_run: the drill shows what it tried
    assert events(r, "enable_fallback", "would_run")


@pytest.mark.parametrize("answer", [{"status": 503, "body": "upstream down"},
                                    {"json": {"status": {"indicator": "minor"}}}])
def test_the_runbooks_own_status_page_logic_reads_the_answer(tmp_path, answer):
    calls = dict(PROVIDER_DOWN, http=[dict(answer, url=STATUS)])
    r, _ = drill(tmp_path, {"calls": calls, "expect": {
        "path": path("dependency", "enable_fallback", "identified_dependency", "verify",
                     "monitoring", "all_clear", "done")}})
    assert r.code == 0, r


def test_an_unreadable_status_page_takes_on_error_to_the_database(tmp_path):
    r, _ = drill(tmp_path, {
        "inventory": {"app": APP},
        "calls": {
            "deploy": [{"service": "checkout", "value": None}],
            "http": [{"url": STATUS, "fail": "Could not resolve host"}],
            "prom": [{"query": POOL, "value": 0.97}, RECOVERS],
            "ssh": [{"host": {"glob": "*"}, "command": {"glob": "sudo systemctl restart *"}}]},
        "steps": {"restart": {"approved": True}},
        "expect": {"outcome": "resolved",
                   "path": path("dependency", "database", "restart", "page_dba", "verify",
                                "monitoring", "all_clear", "done")}})
    assert r.code == 0, r
    err = events(r, "dependency", "failed")[-1]["detail"]["error"]
    assert "http GET %s: Could not resolve host" % STATUS in err, err
    # batch = "50%" of four hosts: all four restarted, two at a time
    assert [e["detail"]["host"] for e in events(r, "restart", "would_run")] == APP


def test_a_healthy_provider_and_pool_escalate_as_unknown(tmp_path):
    r, _ = drill(tmp_path, {
        "calls": {"deploy": [{"service": {"glob": "check*"}, "value": None}],
                  "http": [{"method": "GET", "url": {"glob": "https://status.*"},
                            "json": {"status": {"indicator": "none"}}}],
                  "prom": [{"query": POOL, "value": 0.4}]},
        "expect": {"outcome": "escalated",
                   "path": path("dependency", "database", "escalate_unknown")}})
    assert r.code == 0, r


@pytest.mark.parametrize("calls,message", [
    ({"deploy": [{"service": "payments", "value": None}]},
     'deploy op "recent" service "checkout" is answered by no entry of the scenario\'s '
     'calls.deploy (closest: op "recent" service "payments")'),
    ({"deploy": [{"service": "checkout", "value": None}],
      "http": [{"url": "https://status.payments.example/api/v2/status"}]},
     'http method "GET" url "%s" is answered by no entry of the scenario\'s calls.http '
     '(closest: method "GET" url "https://status.payments.example/api/v2/status")' % STATUS),
    ({"deploy": [{"service": "checkout", "value": None}],
      "http": [{"url": STATUS, "json": {"status": {"indicator": "major"}}}],
      "flags": [{"flag": "checkout-fallback", "state": True}]},
     None),  # flags.set's read of the state before is optional: no error
])
def test_a_call_no_answer_covers_is_named_with_the_closest(tmp_path, calls, message):
    r, _ = drill(tmp_path, {"calls": dict(calls, prom=[RECOVERS])})
    if message is None:
        assert r.code == 0, r
        return
    assert r.code == 3, r
    assert message in r.stderr, r


def test_an_ssh_host_no_answer_covers_is_named(tmp_path):
    rb = rbtest.write(str(tmp_path / "rb" / "disk.lua"), '''
local ssh = require "ssh"
return runbook { name = "disk", title = "Disk", start = "full",
  steps = {
    full = check { title = "Disk full?",
      run = function() return ssh.read("app", "df -h /").ok end,
      on = { [true] = "ok", [false] = "ok" } },
    ok = resolved { title = "ok" } } }
''')
    r, _ = drill(tmp_path, {"inventory": {"app": ["app-1", "app-2"]},
                            "calls": {"ssh": [{"host": "app-1", "command": "df -h /"}]}},
                 runbook=rb)
    assert r.code == 3, r
    assert ('step \'full\': ssh host "app-2" command "df -h /" is answered by no entry of the '
            'scenario\'s calls.ssh (closest: host "app-1" command "df -h /")') in r.stderr, r


HTTP_WRITE = '''
local http = require "http"
return runbook { name = "purge", title = "Purge", start = "purge",
  steps = {
    purge = action { title = "Purge the CDN",
      run = function() return http.post("https://cdn.example/api/purge?zone=checkout",
        { json = { all = true } }) end,
      next = "done", on_error = "purge_failed" },
    done = resolved { title = "Purged" },
    purge_failed = escalate { title = "Purge failed", to = "cdn-team", message = "purge" } } }
'''


@pytest.mark.parametrize("answer,tail", [
    ({"status": 500, "body": "internal error"}, "purge_failed"),
    ({"status": 202}, "done"),
    (None, "done"),  # a write no entry answers succeeds, as without calls
])
def test_an_http_write_is_recorded_and_answered(tmp_path, answer, tail):
    rb = rbtest.write(str(tmp_path / "rb" / "purge.lua"), HTTP_WRITE)
    entries = [] if answer is None else [dict(answer, method="POST",
                                              url={"glob": "https://cdn.example/api/purge*"})]
    r, _ = drill(tmp_path, {"calls": {"http": entries},
                            "expect": {"path": ["purge", tail]}}, runbook=rb)
    assert r.code == 0, r
    w = events(r, "purge", "would_run")[0]["detail"]
    assert (w["method"], w["url"], w["body"]) == \
        ("POST", "https://cdn.example/api/purge?zone=checkout", {"all": True})
    if answer and answer["status"] == 500:
        err = events(r, "purge", "failed")[-1]["detail"]["error"]
        assert "http POST https://cdn.example/api/purge?zone=checkout: HTTP 500: " \
               "internal error" in err, err


def test_a_glob_star_can_be_escaped(tmp_path):
    rb = rbtest.write(str(tmp_path / "rb" / "ratio.lua"), '''
local prom = require "prom"
return runbook { name = "ratio", title = "Ratio", start = "high",
  steps = {
    high = check { title = "High?",
      run = function() return prom.value("rate(errors[5m]) * 100") > 5 end,
      on = { [true] = "yes", [false] = "no" } },
    yes = resolved { title = "yes" }, no = resolved { title = "no" } } }
''')
    for pattern, tail in [({"glob": "rate(errors[*]) \\* 100"}, "yes"),
                          ("rate(errors[5m]) * 100", "yes")]:
        r, _ = drill(tmp_path, {"calls": {"prom": [{"query": pattern, "value": 7}]},
                                "expect": {"path": ["high", tail]}}, runbook=rb)
        assert r.code == 0, (pattern, r)
    r, _ = drill(tmp_path, {"calls": {"prom": [{"query": {"glob": "rate(errors[*]) \\* 10"},
                                                "value": 7}]}}, runbook=rb)
    assert r.code == 3 and "is answered by no entry" in r.stderr, r


@pytest.mark.parametrize("body,message", [
    ({"calls": {"ssh": [{"host": {"glob": "app-\\1"}, "command": "x"}]}},
     'calls.ssh[0].host glob "app-\\1": a backslash escapes only * or \\ (at offset 4)'),
    ({"calls": {"http": [{"url": {"regex": ".*"}}]}},
     'calls.http[0].url must be a string (matched exactly) or {"glob": "..."}'),
    ({"calls": {"http": [{"url": "https://x", "status": 700}]}},
     "calls.http[0].status must be an HTTP status (100-599)"),
    ({"calls": {"http": [{"url": "https://x", "body": "a", "json": {}}]}},
     'calls.http[0]: give "body" or "json", not both'),
    ({"calls": {"ssh": [{"host": "app-1"}]}}, "calls.ssh[0].command must be the command"),
    ({"calls": {"ssh": [{"host": "app-1", "command": "x", "exti": 1}]}},
     "unknown field 'exti' in calls.ssh[0] (did you mean 'exit'?)"),
    ({"calls": {"flags": [{"flag": "f", "op": "toggle"}]}},
     "calls.flags[0].op must be one of get, set"),
    ({"calls": {"flags": [{"flag": "f"}]}}, 'calls.flags[0]: a get answer needs "state"'),
    ({"calls": {"deploy": [{"service": "checkout", "value": 42}]}},
     "calls.deploy[0].value must be an object (null: no recent deploy)"),
    ({"calls": {"cmd": [{"argv": ["x", 1]}]}}, "calls.cmd[0].argv[1] must be a string"),
    ({"inventory": {"app": []}, "calls": {}},
     "inventory.app must be a non-empty list of host names"),
])
def test_bad_answers_are_refused_at_load(tmp_path, body, message):
    r, _ = drill(tmp_path, body)
    assert r.code == 3, r
    assert message in r.stderr, r
    assert "calls.json" in r.stderr, r  # the scenario file is named


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_http_and_ssh_answers_open_no_network_socket(tmp_path):
    trace = str(tmp_path / "trace")
    r, _ = drill(tmp_path, {
        "inventory": {"app": APP},
        "calls": dict(PROVIDER_DOWN, ssh=[{"host": {"glob": "*"}, "command": ROLLBACK}]),
        "expect": {"outcome": "resolved"}},
        wrap=["strace", "-f", "-qq", "-e", "trace=socket,connect", "-o", trace])
    assert r.code == 0, r
    calls = open(trace).read()
    assert re.search(r"socket\(AF_INET6?\b", calls) is None, calls
    assert re.search(r"connect\(\d+, \{sa_family=AF_INET6?\b", calls) is None, calls


CMD_WRITE = '''
local cmd = require "cmd"
return runbook { name = "restart", title = "Restart", start = "restart",
  steps = {
    restart = action { title = "Restart x",
      run = function() return cmd.run({ "systemctl", "restart", "x" }) end,
      next = "ok", on_error = "bad" },
    ok = resolved { title = "ok" },
    bad = escalate { title = "bad", to = "oncall", message = "restart failed" } } }
'''


@pytest.mark.parametrize("entries,tail", [
    ([{"argv": ["systemctl", "restart", {"glob": "*"}], "exit": 3, "stderr": "unit failed"}],
     "bad"),
    ([{"argv": ["systemctl", "restart", "x"], "fail": "No such file or directory"}], "bad"),
    ([], "ok"),
])
def test_a_local_write_is_recorded_and_answered(tmp_path, entries, tail):
    rb = rbtest.write(str(tmp_path / "rb" / "restart.lua"), CMD_WRITE)
    r, _ = drill(tmp_path, {"calls": {"cmd": entries}, "expect": {"path": ["restart", tail]}},
                 runbook=rb)
    assert r.code == 0, r
    assert events(r, "restart", "would_run")[0]["detail"]["command"] == \
        ["systemctl", "restart", "x"]
    assert not [e for e in events(r, "restart", "started") if e["detail"].get("op")]


DEPLOY_ROLLBACK = '''
local deploy = require "deploy"
return runbook { name = "undo", title = "Undo", start = "status",
  steps = {
    status = check { title = "Rolled out?",
      run = function() return deploy.status("checkout").done end,
      on = { [true] = "done", [false] = "undo" } },
    undo = action { title = "Roll back",
      run = function(ctx)
        local r = deploy.rollback("checkout")
        ctx.to = r.to
        return r
      end,
      next = "done", on_error = "stuck" },
    done = resolved { title = "done" },
    stuck = escalate { title = "stuck", to = "oncall", message = "rollback failed" } } }
'''


@pytest.mark.parametrize("rollback,tail", [
    ({"value": {"from": 5, "to": 4}}, "done"),
    ({"fail": "HTTP 409: the deployment is paused"}, "stuck"),
])
def test_a_kubernetes_rollback_is_recorded_and_answered(tmp_path, rollback, tail):
    rb = rbtest.write(str(tmp_path / "rb" / "undo.lua"), DEPLOY_ROLLBACK)
    r, _ = drill(tmp_path, {"calls": {"deploy": [
        {"service": "checkout", "op": "status",
         "value": {"done": False, "message": "1 of 3 updated replicas available"}},
        dict(rollback, service="checkout", op="rollback")]},
        "expect": {"path": ["status", "undo", tail]}}, runbook=rb)
    assert r.code == 0, r
    w = events(r, "undo", "would_run")[0]["detail"]
    assert (w["op"], w["action"], w["service"]) == ("deploy", "rollback", "checkout")
    if tail == "done":
        fin = events(r, "undo", "finished")[-1]["detail"]
        assert fin["ctx"]["to"] == 4, fin
    else:
        err = events(r, "undo", "failed")[-1]["detail"]["error"]
        assert "deploy.rollback checkout: HTTP 409: the deployment is paused" in err, err


def call_level_only(sc):
    """A scenario whose checks and waits are all answered at the call level
    (its steps answer approvals and nothing else)."""
    if "calls" not in sc:
        return False
    return all(isinstance(a, dict) and set(a) <= {"approved", "by", "comment", "note"}
               for a in sc.get("steps", {}).values())


def test_call_level_scenarios_alone_cover_every_branch_of_checkout_errors(tmp_path):
    src = rbtest.SOURCE_DIR + "/runbooks"
    sdir = tmp_path / "scenarios" / "checkout-errors"
    sdir.mkdir(parents=True)
    shutil.copy(src + "/checkout-errors.lua", tmp_path / "checkout-errors.lua")
    kept = []
    for f in sorted((pathlib.Path(src) / "scenarios" / "checkout-errors").glob("*.json")):
        if call_level_only(json.loads(f.read_text())):
            shutil.copy(f, sdir / f.name)
            kept.append(f.stem)
    assert {"calls-bad-deploy", "calls-still-above-threshold", "calls-unknown-cause",
            "calls-database-unresolved", "calls-rollback-denied"} <= set(kept)
    r = rbtest.run(["test", "--coverage", str(tmp_path / "checkout-errors.lua")])
    assert r.code == 0, r
    assert "coverage" not in r.stdout, r.stdout
    assert r.stdout.rstrip().endswith("%d passed, 0 failed" % len(kept)), r.stdout


@pytest.mark.parametrize("values,outcome,polls", [
    ([0.011], "escalated", 20),          # 1.1% with the threshold at 1%: not recovered
    ([0.01], "escalated", 20),           # exactly the threshold is not under it
    ([0.05, 0.01, 0.0099], "resolved", 3),
])
def test_the_threshold_comparison_runs_on_the_answers(tmp_path, values, outcome, polls):
    sc = json.load(open(rbtest.SOURCE_DIR
                        + "/runbooks/scenarios/checkout-errors/calls-bad-deploy.json"))
    sc["calls"]["prom"][0]["values"] = values
    del sc["expect"]
    p = tmp_path / "s.json"
    p.write_text(json.dumps(sc))
    r = rbtest.run(["drill", "checkout-errors", "--scenario", str(p), "--incident", "thr"])
    assert r.code == (0 if outcome == "resolved" else 5), r
    dec = [e for e in r.timeline("thr") if e["step"] == "verify" and e["event"] == "decision"]
    assert dec[-1]["detail"]["polls"] == polls, dec
