"""Call-level drill answers: the step's own code runs in the sandbox, its
prom queries and cmd reads are answered from the scenario's "calls", a call
no answer covers is named, and a drill opens no network socket."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

import rbtest

ERROR_RATE = ('sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m]))'
              ' / sum(rate(http_requests_total{service="checkout"}[5m]))')
POOL = 'max(db_pool_in_use{service="checkout"} / db_pool_size{service="checkout"})'


def drill(tmp_path, body, runbook="checkout-errors", incident="calls", wrap=None):
    scn = rbtest.write(str(tmp_path / ("%s.json" % incident)), json.dumps(body))
    args = ["drill", runbook, "--scenario", scn, "--incident", incident]
    t0 = time.monotonic()
    if wrap is None:
        r = rbtest.run(args)
    else:  # under strace or unshare: the same binary and state dir
        state = str(tmp_path / "state")
        env = dict(os.environ, NO_COLOR="1")
        if wrap[0] == "strace":  # LeakSanitizer cannot run under ptrace
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        proc = subprocess.run(wrap + [rbtest.RUNBOOK_BIN, "--state-dir", state] + args,
                              capture_output=True, text=True, cwd=rbtest.SOURCE_DIR,
                              env=env, timeout=60)
        r = rbtest.Result(proc, state)
    return r, time.monotonic() - t0


def verify_decision(r, incident="calls"):
    return [e for e in r.timeline(incident)
            if e["step"] == "verify" and e["event"] == "decision"][0]["detail"]


ROLLED_BACK = {"recent_deploy": True, "rollback": {"approved": True, "by": "alice"}}


def test_an_error_rate_of_0_011_with_threshold_0_01_does_not_resolve(tmp_path):
    r, wall = drill(tmp_path, {
        "steps": ROLLED_BACK,
        "calls": {"prom": [{"query": ERROR_RATE, "value": 0.011}]},
        "expect": {"outcome": "escalated",
                   "path": ["announce", "recent_deploy", "rollback", "identified_deploy",
                            "verify", "escalate_unresolved"]}})
    assert r.code == 0, r
    d = verify_decision(r)
    # The runbook's own `error_rate(ctx) < ctx.threshold` ran at every poll.
    assert (d["value"], d["polls"], d["waited_ms"], d["simulated"]) == (False, 20, 285000, True)
    assert wall < 1.0, wall


def test_the_threshold_itself_resolves_below_it(tmp_path):
    r, _ = drill(tmp_path, {
        "steps": ROLLED_BACK,
        "calls": {"prom": [{"query": ERROR_RATE, "value": 0.0099}]},
        "expect": {"outcome": "resolved"}})
    assert r.code == 0, r
    assert verify_decision(r)["polls"] == 1


def test_a_sequence_of_values_recovers_on_the_third_simulated_poll(tmp_path):
    r, wall = drill(tmp_path, {
        "steps": ROLLED_BACK,
        "calls": {"prom": [{"query": ERROR_RATE, "values": [0.05, 0.03, 0.004]}]},
        "expect": {"outcome": "resolved"}})
    assert r.code == 0, r
    d = verify_decision(r)
    assert (d["value"], d["polls"], d["waited_ms"]) == (True, 3, 30000)
    assert "true -> monitoring after 30 s (simulated)" in r.stdout, r
    assert wall < 1.0, wall


@pytest.mark.parametrize("pool,path_tail", [
    (0.95, ["database", "restart", "page_dba", "verify", "monitoring", "all_clear", "done"]),
    (0.9, ["database", "escalate_unknown"]),  # "> 0.9": exactly 90% is not saturated
])
def test_the_database_check_compares_the_pool_saturation(tmp_path, pool, path_tail):
    r, _ = drill(tmp_path, {
        "steps": {"recent_deploy": False, "dependency": True, "restart": {"approved": True}},
        "calls": {"prom": [{"query": POOL, "value": pool},
                           {"query": ERROR_RATE, "value": 0.002}]},
        "expect": {"path": ["announce", "recent_deploy", "dependency"] + path_tail}})
    assert r.code == 0, r


def test_a_query_no_answer_covers_is_named_with_the_closest(tmp_path):
    near = ERROR_RATE.replace('service="checkout",code', 'service="checkout", code')
    r, _ = drill(tmp_path, {"steps": ROLLED_BACK,
                            "calls": {"prom": [{"query": "up", "value": 1},
                                               {"query": near, "value": 0.001}]}})
    assert r.code == 3, r
    assert ("step 'verify': prom query \"%s\" is answered by no entry of the scenario's "
            "calls.prom (closest: \"%s\")" % (ERROR_RATE, near)) in r.stderr, r
    # No polling on a scenario mistake: one poll, then the drill stops.
    failed = [e for e in r.timeline("calls") if e["step"] == "verify" and e["event"] == "failed"]
    assert failed and "note" not in [e["event"] for e in r.timeline("calls")
                                    if e["step"] == "verify"]


def test_a_step_answered_at_the_step_level_does_not_run_its_code(tmp_path):
    steps = dict(ROLLED_BACK, verify=True)
    r, _ = drill(tmp_path, {"steps": steps, "calls": {"prom": [{"query": "up", "value": 1}]},
                            "expect": {"outcome": "resolved"}})
    assert r.code == 0, r  # verify's query is not answered, and not asked either


CMD_RUNBOOK = '''
local cmd = require "cmd"
return runbook {
  name = "deploy-status", title = "Deploy status", start = "status",
  params = { marker = { default = "" } },
  steps = {
    status = check {
      title = "Is the deploy healthy?",
      run = function(ctx)
        local r = cmd.read({ "deploy", "status", "--service", "checkout" }, { allow_fail = true })
        if r.code ~= 0 then return "broken" end
        ctx.revision = r.stdout:match("revision (%S+)")
        return r.stdout:match("^healthy") ~= nil
      end,
      on = { [true] = "touch", [false] = "bad", broken = "bad" },
    },
    touch = check {
      title = "Marker",
      run = function(ctx) return cmd.read({ "touch", ctx.marker }).ok end,
      on = { [true] = "good", [false] = "bad" },
    },
    good = resolved { title = "Healthy" },
    bad = escalate { title = "Unhealthy", to = "oncall", message = "deploy unhealthy" },
  },
}
'''


def cmd_runbook(tmp_path):
    return rbtest.write(str(tmp_path / "rb" / "deploy-status.lua"), CMD_RUNBOOK)


def test_cmd_reads_are_answered_by_argv_and_never_run(tmp_path):
    rb = cmd_runbook(tmp_path)
    marker = str(tmp_path / "must-not-exist")
    r, _ = drill(tmp_path, {
        "vars": {"marker": marker},
        "calls": {"cmd": [
            {"argv": ["deploy", "status", "--service", "checkout"], "exit": 0,
             "stdout": "healthy revision r42\n"},
            {"argv": ["touch", marker]}]},
        "expect": {"outcome": "resolved", "path": ["status", "touch", "good"]}}, runbook=rb)
    assert r.code == 0, r
    assert not os.path.exists(marker)
    ev = [e for e in r.timeline("calls") if e["step"] == "status" and e["event"] == "finished"
          and e["detail"].get("op") == "cmd"][0]["detail"]
    assert ev["answered_by"] == "scenario" and ev["stdout_tail"] == "healthy revision r42\n"


def test_a_failing_cmd_answer_takes_the_runbooks_own_branch(tmp_path):
    rb = cmd_runbook(tmp_path)
    r, _ = drill(tmp_path, {
        "calls": {"cmd": [{"argv": ["deploy", "status", "--service", "checkout"], "exit": 2,
                           "stderr": "no such service"}]},
        "expect": {"outcome": "escalated", "path": ["status", "bad"]}}, runbook=rb)
    assert r.code == 0, r


def test_an_argv_no_answer_covers_is_named(tmp_path):
    rb = cmd_runbook(tmp_path)
    r, _ = drill(tmp_path, {"calls": {"cmd": [{"argv": ["deploy", "status"]}]}}, runbook=rb)
    assert r.code == 3, r
    assert ('cmd argv ["deploy","status","--service","checkout"] is answered by no entry '
            'of the scenario\'s calls.cmd (closest: ["deploy","status"])') in r.stderr, r


NO_NET_SCENARIO = {"steps": {"recent_deploy": False, "restart": {"approved": True}},
                   "calls": {"prom": [{"query": POOL, "value": 0.97},
                                      {"query": ERROR_RATE, "values": [0.2, 0.001]}]}}


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_a_call_level_drill_opens_no_network_socket(tmp_path):
    trace = str(tmp_path / "trace")
    body = dict(NO_NET_SCENARIO, steps=dict(NO_NET_SCENARIO["steps"], dependency=True),
                expect={"outcome": "resolved"})
    r, _ = drill(tmp_path, body, wrap=["strace", "-f", "-qq", "-e", "trace=socket,connect",
                                       "-o", trace])
    assert r.code == 0, r
    calls = open(trace).read()
    assert re.search(r"socket\(AF_INET6?\b", calls) is None, calls
    assert re.search(r"connect\(\d+, \{sa_family=AF_INET6?\b", calls) is None, calls


def test_a_call_level_drill_runs_without_a_network(tmp_path):
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -n is not permitted here")
    body = dict(NO_NET_SCENARIO, steps=dict(NO_NET_SCENARIO["steps"], dependency=True),
                expect={"outcome": "resolved"})
    r, _ = drill(tmp_path, body, wrap=["unshare", "-n"])
    assert r.code == 0, r


def test_a_read_of_a_module_without_call_answers_is_still_refused(tmp_path):
    # dependency's http.get has no calls.http: the read gate refuses it, and
    # the check's on_error takes the database branch, as the runbook says.
    r, _ = drill(tmp_path, dict(NO_NET_SCENARIO, expect={"outcome": "resolved"}))
    assert r.code == 0, r
    failed = [e for e in r.timeline("calls") if e["step"] == "dependency"
              and e["event"] == "failed"]
    assert "a drill touches no system" in failed[0]["detail"]["error"], failed


@pytest.mark.parametrize("calls,message", [
    ({"mysql": []}, "unknown field 'mysql' in calls (call-level answers cover prom, cmd, http, "
                    "ssh, flags and deploy)"),
    ({"prom": [{"value": 1}]}, "calls.prom[0].query must be the PromQL query (a string)"),
    ({"prom": [{"query": "up", "value": 1, "values": [1]}]},
     'calls.prom[0]: give one of "value", "values", "vector" or "fail"'),
    ({"prom": [{"query": "up", "vector": [{"labels": {"a": 1}, "value": 1}]}]},
     "calls.prom[0].vector[0].labels.a must be a string"),
    ({"prom": [{"query": "up", "vector": [{"lables": {}, "value": 1}]}]},
     "unknown field 'lables' in calls.prom[0].vector[0]"),
    ({"prom": [{"query": "up", "values": [0.1, [{"value": "x"}]]}]},
     "calls.prom[0].values[1][0].value must be a number"),
    ({"prom": [{"query": "up", "values": [1, "x"]}]}, "calls.prom[0].values[1] must be a number"),
    ({"prom": [{"query": "up", "valeu": 1}]},
     "unknown field 'valeu' in calls.prom[0] (did you mean 'value'?)"),
    ({"cmd": [{"argv": []}]}, "calls.cmd[0].argv must be a non-empty list of strings"),
    ({"cmd": [{"argv": ["x"], "exit": "0"}]}, "calls.cmd[0].exit must be an integer"),
    ({"cmd": {"argv": ["x"]}}, "calls.cmd must be a list of answers"),
])
def test_bad_calls_are_refused_at_load(tmp_path, calls, message):
    r, _ = drill(tmp_path, {"calls": calls})
    assert r.code == 3, r
    assert message in r.stderr, r


def test_a_runbook_cannot_require_the_internal_drill_module(tmp_path):
    rb = rbtest.write(str(tmp_path / "sneaky.lua"),
                      'local d = require "drill"\n'
                      'return runbook { name = "sneaky", title = "x", start = "a",\n'
                      '  steps = { a = resolved { title = "a" } } }\n')
    r = rbtest.run(["check", rb])
    assert r.code == 3, r
    assert "sneaky.lua:1: module 'drill' not found: runbooks can require only cmd, config, " \
           "http, json, ssh," in r.stderr, r
