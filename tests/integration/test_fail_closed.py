"""Fail closed (issue 10, runbooks): a mistake in a runbook, a parameter or a
scenario is refused before anything acts, with the exact message; the
static pass of `check`; strict module results; drill exit codes."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import rbtest  # noqa: E402

HAVE_LUACHECK = shutil.which("luacheck") is not None


def write_runbook(tmp_path, body, name="t.lua"):
    return rbtest.write(str(tmp_path / name), body)


def nothing_ran(r, marker):
    assert not os.path.exists(marker), "the action ran: %s exists" % marker
    incidents = os.path.join(r.state_dir, "incidents")
    assert not os.path.exists(incidents) or not os.listdir(incidents), os.listdir(incidents)


def stderr_of(r, tmp_path):
    return r.stderr.replace(str(tmp_path) + "/", "")


# -- runbook fields ------------------------------------------------------------

# rollback is declared on line 5, verify on line 8.
GATED = """local cmd = require "cmd"
return runbook {
  name = "gated", title = "Gated", start = "rollback",
  steps = {
    rollback = action { title = "roll back", %(action)s, run = function(ctx) return cmd.run({ "touch", "%(marker)s" }) end, next = "verify" },
    -- a wait for the misspelt wait option
    verify = wait {
      title = "ok?", until_ = function() return true end, %(wait)s,
      on = { [true] = "d", [false] = "d" },
    },
    d = resolved { title = "D" },
  },
}
"""

FIELD_CASES = [
    ("aproval = true", 'every = "1s"',
     "t.lua:5: unknown field 'aproval' in action 'rollback' (did you mean 'approval'?)"),
    ('approval = true, timeot = "1s"', 'every = "1s"',
     "t.lua:5: unknown field 'timeot' in action 'rollback' (did you mean 'timeout'?)"),
    ("approval = true, idempotnet = true", 'every = "1s"',
     "t.lua:5: unknown field 'idempotnet' in action 'rollback' (did you mean 'idempotent'?)"),
    ("approval = true", 'evry = "1s"',
     "t.lua:7: unknown field 'evry' in wait 'verify' (did you mean 'every'?)"),
    ("approval = { required = true, from = 2 }", 'every = "1s"',
     "t.lua:5: field 'from' in the approval of action 'rollback' must be a list of 1-64 "
     "names (accounts, approvers or groups), not a number"),
    ('approval = { required = true, approvers = { "alice" } }', 'every = "1s"',
     "t.lua:5: unknown field 'approvers' in the approval of action 'rollback'"),
    ("approval = { min = 0 }", 'every = "1s"',
     "t.lua:5: field 'min' in the approval of action 'rollback' must be a whole number of "
     "approvers, 1-16"),
    ("approval = { requird = true }", 'every = "1s"',
     "t.lua:5: unknown field 'requird' in the approval of action 'rollback' "
     "(did you mean 'required'?)"),
    ('approval = "yes"', 'every = "1s"',
     "t.lua:5: field 'approval' in action 'rollback' must be true, false or a table "
     "{ required = true }, not a string"),
    ("approval = true, timeout = 5", 'every = "1s"',
     "t.lua:5: field 'timeout' in action 'rollback' must be a duration such as \"30s\", "
     "not a number"),
    ('approval = true, idempotent = "yes"', 'every = "1s"',
     "t.lua:5: field 'idempotent' in action 'rollback' must be true or false, not a string"),
    ("approval = true", "every = 15",
     "t.lua:7: field 'every' in wait 'verify' must be a duration such as \"30s\", not a number"),
    ('approval = true, on_eror = "d"', 'every = "1s"',
     "t.lua:5: unknown field 'on_eror' in action 'rollback' (did you mean 'on_error'?)"),
]


@pytest.mark.parametrize("action,wait,message", FIELD_CASES,
                         ids=[c[2].split("'")[1] for c in FIELD_CASES])
def test_misspelt_or_mistyped_field_is_refused_and_nothing_runs(tmp_path, action, wait,
                                                                 message):
    marker = str(tmp_path / "acted")
    path = write_runbook(tmp_path, GATED % {"action": action, "wait": wait, "marker": marker})
    r = rbtest.run(["check", path])
    assert r.code == 3, r
    assert message in stderr_of(r, tmp_path).splitlines(), r
    for args in (["exec", path], ["exec", "--dry-run", path], ["show", path]):
        r = rbtest.run(args, stdin="yes\n")
        assert r.code == 3, (args, r)
        assert message in stderr_of(r, tmp_path), r
        nothing_ran(r, marker)


def test_the_same_runbook_spelt_right_asks_before_acting(tmp_path):
    marker = str(tmp_path / "acted")
    path = write_runbook(tmp_path, GATED % {"action": "approval = true", "wait": 'every = "1s"',
                                            "marker": marker})
    r = rbtest.run(["check", path])
    assert r.code == 0, r
    r = rbtest.run(["show", path])
    assert "rollback [action, write, approval] roll back" in r.stdout, r


OTHER_TABLES = [
    ("""return runbook {
  name = "x", tittle = "X", start = "d",
  steps = { d = resolved { title = "D" } },
}""", "t.lua:1: unknown field 'tittle' in the runbook (did you mean 'title'?)"),
    ("""return runbook {
  name = "x", title = "X", start = "d",
  params = { env = { defualt = "prod" } },
  steps = { d = resolved { title = "D" } },
}""", "t.lua:1: unknown field 'defualt' in param 'env' (did you mean 'default'?)"),
    ("""return runbook {
  name = "x", title = "X", start = "d",
  params = { env = { required = "yes" } },
  steps = { d = resolved { title = "D" } },
}""", "t.lua:1: field 'required' in param 'env' must be true or false, not a string"),
    ("""return runbook {
  name = "x", title = "X", start = "n",
  steps = {
    n = notify { title = "N", phse = "Identified", next = "d" },
    d = resolved { title = "D" },
  },
}""", "t.lua:4: unknown field 'phse' in notify 'n' (did you mean 'phase'?)"),
    ("""return runbook {
  name = "x", title = "X", start = "d",
  steps = { d = resolved { title = "D", mesage = "x" } },
}""", "t.lua:3: unknown field 'mesage' in resolved 'd'"),
    ("""return runbook {
  name = "x", title = "X", start = "a",
  steps = {
    a = approval { title = "Go?", question = 42, next = "d" },
    d = resolved { title = "D" },
  },
}""", "t.lua:4: field 'question' in approval 'a' must be a string or a function, not a number"),
]


@pytest.mark.parametrize("body,message", OTHER_TABLES,
                         ids=[m.split("'")[1] for _, m in OTHER_TABLES])
def test_every_table_the_loader_reads_accepts_only_its_fields(tmp_path, body, message):
    path = write_runbook(tmp_path, body)
    r = rbtest.run(["check", path])
    assert r.code == 3, r
    assert message in stderr_of(r, tmp_path).splitlines(), r


# -- the static pass -----------------------------------------------------------

LINTED = """local cmd = require "cmd"
local ssh = require "ssh"
local prom = require "prom"
return runbook {
  name = "lint", title = "Lint", start = "c",
  steps = {
    c = check { title = "Fast?", run = function(ctx)
        local v = prom.value("x")
        return v < p99
      end, on = { [true] = "w", [false] = "w" } },
    w = wait { title = "Up?", until_ = function(ctx)
        cmd.run({ "systemctl", "restart", ctxx.service })
        return true
      end, on = { [true] = "a", [false] = "a" } },
    a = action { title = "Fix", run = function(ctx)
        return ssh.run("app", "fix " .. string.fomat("%s", ctx.service))
      end, next = "d" },
    d = resolved { title = "D" },
  },
}
"""

LINT_WARNINGS = [
    "t.lua:9: warning: accessing undefined variable 'p99'",
    "t.lua:12: warning: wait 'w' calls cmd.run, a write: a wait must stay read-only",
    "t.lua:12: warning: accessing undefined variable 'ctxx'",
    "t.lua:16: warning: accessing undefined field 'fomat' of global 'string'",
]


@pytest.mark.skipif(not HAVE_LUACHECK, reason="luacheck (lua-check) is not installed")
def test_check_warns_about_undeclared_globals_and_writes_in_waits(tmp_path):
    path = write_runbook(tmp_path, LINTED)
    r = rbtest.run(["check", path])
    assert r.code == 0, r
    lines = stderr_of(r, tmp_path).splitlines()
    for w in LINT_WARNINGS:
        assert w in lines, (w, r)
    # ssh.run inside an action is what actions are for.
    assert not [line for line in lines if "ssh.run" in line], r
    assert len(lines) == len(LINT_WARNINGS), r
    r = rbtest.run(["check", "--strict", path])
    assert r.code == 3, r
    assert "t.lua: 4 warnings (--strict makes them errors)" in stderr_of(r, tmp_path), r


@pytest.mark.skipif(not HAVE_LUACHECK, reason="luacheck (lua-check) is not installed")
def test_check_names_a_write_in_a_check(tmp_path):
    path = write_runbook(tmp_path, """local flags = require "flags"
return runbook {
  name = "x", title = "X", start = "c",
  steps = {
    c = check { title = "On?", run = function(ctx)
        return flags.set("kill", true).changed
      end, on = { [true] = "d", [false] = "d" } },
    d = resolved { title = "D" },
  },
}""")
    r = rbtest.run(["check", "--strict", path])
    assert r.code == 3, r
    assert "t.lua:6: warning: check 'c' calls flags.set, a write: a check must stay " \
        "read-only" in stderr_of(r, tmp_path).splitlines(), r


@pytest.mark.skipif(not HAVE_LUACHECK, reason="luacheck (lua-check) is not installed")
def test_check_names_a_page_sent_from_a_check_or_wait(tmp_path):
    # paging.send is the escalate step's write (an http POST underneath): a
    # check that pages is flagged like one that posts, also by another name
    path = write_runbook(tmp_path, """local paging = require "paging"
local pg = require("paging")
return runbook {
  name = "x", title = "X", start = "c",
  steps = {
    c = check { title = "Paged?", run = function(ctx)
        return paging.send({ target = "dba-team", event = "trigger" }).ok
      end, on = { [true] = "w", [false] = "w" } },
    w = wait { title = "W", until_ = function(ctx)
        return pg.send({ target = "dba-team", event = "resolve" }).ok
      end, on = { [true] = "d", [false] = "d" } },
    d = resolved { title = "D" },
  },
}""")
    r = rbtest.run(["check", "--strict", path])
    assert r.code == 3, r
    lines = stderr_of(r, tmp_path).splitlines()
    assert "t.lua:7: warning: check 'c' calls paging.send, a write: a check must stay " \
        "read-only" in lines, r
    assert "t.lua:10: warning: wait 'w' calls paging.send, a write: a wait must stay " \
        "read-only" in lines, r


@pytest.mark.skipif(not HAVE_LUACHECK, reason="luacheck (lua-check) is not installed")
def test_the_shipped_runbook_passes_the_strict_check():
    r = rbtest.run(["check", "--strict", "checkout-errors"])
    assert r.code == 0, r
    assert r.stderr == "", r


def test_without_luacheck_check_says_the_static_pass_was_skipped(tmp_path):
    path = write_runbook(tmp_path, LINTED)
    env = {"PATH": str(tmp_path / "nothing-here")}
    r = rbtest.run(["check", path], env=env)
    assert r.code == 0, r
    assert "t.lua: static pass skipped: luacheck is not installed (Debian package " \
        "lua-check); undeclared globals and writes in checks were not looked for" \
        in stderr_of(r, tmp_path), r
    r = rbtest.run(["check", "--strict", path], env=env)
    assert r.code == 3, r
    assert "t.lua: --strict needs the static pass" in stderr_of(r, tmp_path), r


def test_check_refuses_an_unknown_option():
    r = rbtest.run(["check", "--stict", "checkout-errors"])
    assert r.code == 2, r
    assert "runbook: check: unknown option '--stict'" in r.stderr, r


# -- strict module results -----------------------------------------------------

def test_reading_a_missing_result_field_fails_the_wait_at_once(tmp_path):
    path = write_runbook(tmp_path, """local cmd = require "cmd"
return runbook {
  name = "x", title = "X", start = "w",
  steps = {
    w = wait { title = "Up?", until_ = function(ctx)
        return cmd.read({ "true" }).exit == 0
      end, every = "1s", timeout = "30s", on = { [true] = "d", [false] = "d" } },
    d = resolved { title = "D" },
  },
}""")
    t0 = time.monotonic()
    r = rbtest.run(["exec", path, "--incident", "i1"])
    assert time.monotonic() - t0 < 10, "the wait polled on"
    assert r.code == 1, r
    msg = ("t.lua:6: cmd.read: the result has no field 'exit' (it has: code, duration_ms, "
           "ok, signal, simulated, stderr, stdout, timed_out, truncated)")
    assert msg in stderr_of(r, tmp_path), r
    failed = [e for e in r.timeline("i1") if e["step"] == "w" and e["event"] == "failed"]
    assert failed and "the result has no field 'exit'" in failed[0]["detail"]["error"]


def test_a_result_still_reads_its_fields_and_converts_to_json(tmp_path):
    path = write_runbook(tmp_path, """local cmd = require "cmd"
return runbook {
  name = "x", title = "X", start = "a",
  steps = {
    a = action { title = "A", run = function(ctx)
        local r = cmd.run({ "echo", "hi" })
        assert(r.code == 0 and r.stdout == "hi\\n" and r.ok)
        return r
      end, next = "d" },
    d = resolved { title = "D" },
  },
}""")
    r = rbtest.run(["exec", path, "--incident", "i1"])
    assert r.code == 0, r
    fin = [e for e in r.timeline("i1") if e["step"] == "a" and e["event"] == "finished"]
    assert fin[-1]["detail"]["result"]["code"] == 0  # the step, after the command


def test_an_action_reading_a_missing_field_names_it(tmp_path):
    path = write_runbook(tmp_path, """local cmd = require "cmd"
return runbook {
  name = "x", title = "X", start = "a",
  steps = {
    a = action { title = "A", run = function(ctx)
        return { failed = cmd.run({ "true" }).exit_code ~= 0 }
      end, next = "d" },
    d = resolved { title = "D" },
  },
}""")
    r = rbtest.run(["exec", "--dry-run", path])
    assert r.code == 1, r
    assert "t.lua:6: cmd.run: the result has no field 'exit_code' (it has: code, " \
        "duration_ms, ok, signal, simulated, stderr, stdout, timed_out, truncated)" \
        in stderr_of(r, tmp_path), r


# -- typed parameters ------------------------------------------------------------

TYPED = """return runbook {
  name = "typed", title = "Typed", start = "a",
  params = {
    s = { default = "x" },
    n = { type = "number", default = 0.5 },
    i = { type = "integer", default = 3 },
    b = { type = "boolean", default = false },
    d = { type = "duration", default = "5m" },
    e = { type = "enum", choices = { "blue", "green" }, default = "blue" },
    p = { pattern = "[a-z]+", default = "abc" },
  },
  steps = {
    a = action { title = "A", run = function(ctx)
        return { n = math.type(ctx.n), i = math.type(ctx.i), b = type(ctx.b), s = type(ctx.s),
          d = ctx.d, e = ctx.e, sum = ctx.n + ctx.i, neg = not ctx.b }
      end, next = "done" },
    done = resolved { title = "D" },
  },
}
"""


def test_steps_receive_typed_values(tmp_path):
    path = write_runbook(tmp_path, TYPED)
    r = rbtest.run(["exec", path, "--incident", "i1", "--var", "n=2.25", "--var", "i=-4",
                    "--var", "b=true", "--var", "e=green"])
    assert r.code == 0, r
    events = r.timeline("i1")
    assert events[0]["detail"]["params"] == {"s": "x", "n": 2.25, "i": -4, "b": True,
                                             "d": "5m", "e": "green", "p": "abc"}
    res = [e for e in events if e["step"] == "a" and e["event"] == "finished"][0]
    assert res["detail"]["result"] == {"n": "float", "i": "integer", "b": "boolean",
                                       "s": "string", "d": "5m", "e": "green",
                                       "sum": -1.75, "neg": False}


BAD_VARS = [
    ("n=abc", "runbook: --var n=abc: parameter 'n' must be a number, not 'abc'"),
    ("i=1.5", "runbook: --var i=1.5: parameter 'i' must be an integer, not '1.5'"),
    ("b=yes", "runbook: --var b=yes: parameter 'b' must be true or false, not 'yes'"),
    ("d=5 minutes", "runbook: --var d=5 minutes: parameter 'd' must be a duration such as "
     "\"30s\", not '5 minutes'"),
    ("e=red", "runbook: --var e=red: parameter 'e' must be one of blue, green, not 'red'"),
    ("p=ABC", "runbook: --var p=ABC: parameter 'p' must match [a-z]+, not 'ABC'"),
]


@pytest.mark.parametrize("var,message", BAD_VARS, ids=[v for v, _ in BAD_VARS])
def test_a_var_of_the_wrong_type_is_a_usage_error(tmp_path, var, message):
    path = write_runbook(tmp_path, TYPED)
    r = rbtest.run(["exec", path, "--var", var])
    assert r.code == 2, r
    assert message in r.stderr.splitlines(), r
    nothing_ran(r, str(tmp_path / "none"))


def test_checkout_threshold_must_be_a_number():
    r = rbtest.run(["drill", "checkout-errors", "--var", "threshold=abc"])
    assert r.code == 2, r
    assert "runbook: --var threshold=abc: parameter 'threshold' must be a number, not 'abc'" \
        in r.stderr.splitlines(), r
    nothing_ran(r, "/nonexistent")


BAD_PARAMS = [
    ('e = { type = "enum" }', "t.lua:1: param 'e' is an enum: list its choices = { \"a\", \"b\" }"),
    ('n = { type = "number", default = "x" }', "t.lua:1: default of param 'n': must be a "
     "number, not 'x'"),
    ('n = { type = "float" }', "t.lua:1: field 'type' in param 'n': unknown type 'float' "
     "(string, number, integer, boolean, duration or enum)"),
    ('s = { choices = { "a" } }', "t.lua:1: param 's' has choices but is not type = \"enum\""),
    ('s = { pattern = "[a-", default = "a" }', "t.lua:1: default of param 's': pattern '[a-' "
     "is not a valid regex"),
]


@pytest.mark.parametrize("decl,message", BAD_PARAMS, ids=[d.split(" ")[0] + str(i)
                                                          for i, (d, _) in enumerate(BAD_PARAMS)])
def test_a_bad_param_declaration_is_refused_at_load(tmp_path, decl, message):
    path = write_runbook(tmp_path, 'return runbook { name = "x", title = "X", start = "d", '
                         'params = { %s }, steps = { d = resolved { title = "D" } } }' % decl)
    r = rbtest.run(["check", path])
    assert r.code == 3, r
    assert message in stderr_of(r, tmp_path), r


# -- drill scenarios -------------------------------------------------------------

def checkout_scenario(tmp_path, scenario):
    return rbtest.write(str(tmp_path / "s.json"), json.dumps(scenario))


BASE_STEPS = {"recent_deploy": True, "rollback": {"approved": True}, "verify": True}
BASE_PATH = ["announce", "recent_deploy", "rollback", "identified_deploy", "verify",
             "monitoring", "all_clear", "done"]

BAD_SCENARIOS = [
    ({"steps": {"recnt_deploy": True}},
     "steps.recnt_deploy: runbook 'checkout-errors' has no step 'recnt_deploy' "
     "(did you mean 'recent_deploy'?)"),
    ({"steps": BASE_STEPS, "expext": {"outcome": "resolved"}},
     "unknown field 'expext' in the scenario (did you mean 'expect'?)"),
    ({"steps": dict(BASE_STEPS, verify={"valeu": True})},
     "unknown field 'valeu' in steps.verify (did you mean 'value'?)"),
    ({"steps": BASE_STEPS, "expect": {"outcome": "resolve"}},
     "expect.outcome 'resolve' is not an outcome (resolved, escalated, aborted or failed) "
     "(did you mean 'resolved'?)"),
    ({"steps": BASE_STEPS, "expect": {"outcom": "resolved"}},
     "unknown field 'outcom' in expect (did you mean 'outcome'?)"),
    ({"steps": BASE_STEPS, "expect": {"path": ["announce", "recent_deploy", "rollback",
                                               "identified_deploy", "verfy"]}},
     "expect.path[4]: runbook 'checkout-errors' has no step 'verfy' (did you mean 'verify'?)"),
    ({"steps": dict(BASE_STEPS, recent_deploy={"value": True, "ctx": "v1"})},
     "steps.recent_deploy.ctx must be an object (name -> value the step stores in ctx)"),
    ({"steps": dict(BASE_STEPS, rollback={"approved": "yes"})},
     "steps.rollback.approved must be true or false"),
]


@pytest.mark.parametrize("scenario,message", BAD_SCENARIOS,
                         ids=[m.split(" ")[0][:30] + str(i)
                              for i, (_, m) in enumerate(BAD_SCENARIOS)])
def test_a_bad_scenario_is_refused_before_the_drill_starts(tmp_path, scenario, message):
    path = checkout_scenario(tmp_path, scenario)
    r = rbtest.run(["drill", "checkout-errors", "--scenario", path])
    assert r.code == 3, r
    assert "runbook: scenario %s: %s" % (path, message) in r.stderr.splitlines(), r
    nothing_ran(r, "/nonexistent")


def test_a_scenario_answer_sets_ctx_for_the_actions_after_it(tmp_path):
    rb = write_runbook(tmp_path, """return runbook {
  name = "x", title = "X", start = "c",
  steps = {
    c = check { title = "Deploy?", run = function(ctx) ctx.rev = "live"; return true end,
      on = { [true] = "a", [false] = "d" } },
    a = action { title = "Roll back", run = function(ctx)
        return { rev = ctx.rev, n = ctx.n + 1 }
      end, next = "d" },
    d = resolved { title = "D" },
  },
}""")
    scn = checkout_scenario(tmp_path, {"steps": {"c": {"value": True,
                                                       "ctx": {"rev": "v7", "n": 41}}}})
    r = rbtest.run(["drill", rb, "--scenario", scn, "--incident", "i1"])
    assert r.code == 0, r
    events = r.timeline("i1")
    fin = [e for e in events if e["step"] == "a" and e["event"] == "finished"][0]
    assert fin["detail"]["result"] == {"rev": "v7", "n": 42}
    decision = [e for e in events if e["step"] == "c" and e["event"] == "decision"][0]
    assert decision["detail"]["ctx"]["rev"] == "v7"


def test_the_shipped_bad_deploy_scenario_names_the_revision():
    r = rbtest.run(["drill", "checkout-errors", "--scenario", "bad-deploy"])
    assert r.code == 0, r
    assert "A recent deploy of checkout (r2026.11.30-2) caused the errors" in r.stdout, r


# -- drill exit codes ---------------------------------------------------------------

def test_a_drill_that_meets_its_expect_passes_whatever_the_outcome():
    for name in ("rollback-denied", "rollback-fails", "unknown-cause"):
        r = rbtest.run(["drill", "checkout-errors", "--scenario", name])
        assert r.code == 0, (name, r)


def test_a_drill_that_misses_its_expect_exits_6(tmp_path):
    path = checkout_scenario(tmp_path, {
        "steps": dict(BASE_STEPS, rollback={"approved": False}),
        "expect": {"outcome": "resolved", "path": BASE_PATH}})
    r = rbtest.run(["drill", "checkout-errors", "--scenario", path])
    assert r.code == 6, r
    assert "drill: expected outcome 'resolved', got 'aborted'" in r.stderr, r


def test_a_drill_without_expect_exits_with_its_outcome(tmp_path):
    path = checkout_scenario(tmp_path, {"steps": {"recent_deploy": False, "dependency": True,
                                                  "database": False}})
    r = rbtest.run(["drill", "checkout-errors", "--scenario", path])
    assert r.code == 5, r
    path = checkout_scenario(tmp_path, {"steps": dict(BASE_STEPS,
                                                      rollback={"approved": False})})
    r = rbtest.run(["drill", "checkout-errors", "--scenario", path])
    assert r.code == 4, r


def test_a_broken_stdout_pipe_ends_the_drill_quietly_with_a_complete_timeline(tmp_path):
    state = str(tmp_path / "state")
    rd, wr = os.pipe()
    os.close(rd)  # nobody reads: the very first line meets a broken pipe
    env = dict(os.environ, NO_COLOR="1")
    p = subprocess.run([rbtest.RUNBOOK_BIN, "--state-dir", state, "drill", "checkout-errors",
                        "--incident", "i1", "--json"], stdout=wr, stderr=subprocess.PIPE,
                       text=True, env=env, cwd=rbtest.SOURCE_DIR, timeout=60)
    os.close(wr)
    assert p.returncode == 0, p.stderr
    assert p.stderr == "", p.stderr
    with open(os.path.join(state, "incidents", "i1.jsonl")) as f:
        events = [json.loads(line) for line in f]
    fin = [e for e in events if e.get("kind") == "run" and e["event"] == "finished"]
    assert fin and fin[0]["detail"]["path"] == BASE_PATH
    assert events[-1]["detail"].get("drill_expectation") == "met"


def test_drill_json_into_head_keeps_the_pipeline_green(tmp_path):
    cmd = ("set -o pipefail; '%s' --state-dir '%s' drill checkout-errors --incident i1 --json "
           "| head -1 >/dev/null" % (rbtest.RUNBOOK_BIN, tmp_path))
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True,
                       cwd=rbtest.SOURCE_DIR, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "signal" not in p.stderr, p.stderr


@pytest.mark.skipif(not HAVE_LUACHECK, reason="luacheck (lua-check) is not installed")
def test_the_static_pass_knows_modules_used_as_globals(tmp_path):
    path = write_runbook(tmp_path, """return runbook {
  name = "x", title = "X", start = "c",
  steps = {
    c = check { title = "C?", run = function(ctx)
        http.post("http://127.0.0.1:1/x", { body = "" })
        return json.encode({}) == "{}" and cmd.read({ "true" }).ok
      end, on = { [true] = "d", [false] = "d" } },
    d = resolved { title = "D" },
  },
}""")
    r = rbtest.run(["check", path])
    assert r.code == 0, r
    assert stderr_of(r, tmp_path).splitlines() == [
        "t.lua:5: warning: check 'c' calls http.post, a write: a check must stay read-only"], r


LUA_OPTS = """
local prom, deploy, flags, notify = require "prom", require "deploy", require "flags", require "notify"
return runbook { name = "lua-opts", title = "Options of the Lua modules", start = "a", steps = {
  a = action { title = "a", run = function(ctx)
    local out = {}
    for _, f in ipairs({
      function() local v = prom.value("up", { serie = true }) return v end,
      function() local v = prom.query("up", { serie = true }) return v end,
      function() local v = prom.range("up", { stop = 1 }) return v end,
      function() local v = deploy.recent("checkout", { withn = "1h" }) return v end,
      function() local v = deploy.status("checkout", { sorce = "x" }) return v end,
      function() local v = deploy.rollback("checkout", { to_revison = 1 }) return v end,
      function() local v = flags.get("f", { environmnt = "x" }) return v end,
      function() local v = flags.set("f", true, { provder = "x" }) return v end,
      function() local v = notify.post { phase = "Identified", titel = "x" } return v end,
    }) do
      local ok, err = pcall(f)
      out[#out + 1] = ok and "ok" or err
    end
    print(table.concat(out, "\\n"))
    return true
  end, next = "done" },
  done = resolved { title = "done" } } }
"""


def test_the_lua_modules_refuse_an_unknown_option_like_the_c_ones(tmp_path):
    book = rbtest.write(str(tmp_path / "lua-opts.lua"), LUA_OPTS)
    r = rbtest.run(["exec", "--dry-run", book])
    assert r.code == 0, r
    for fn, bad, near in [("prom.value", "serie", None), ("prom.query", "serie", "series"),
                          ("prom.range", "stop", "step"), ("deploy.recent", "withn", "within"),
                          ("deploy.status", "sorce", "source"),
                          ("deploy.rollback", "to_revison", "to_revision"),
                          ("flags.get", "environmnt", "environment"),
                          ("flags.set", "provder", "provider"),
                          ("notify.post", "titel", "title")]:
        msg = "%s: unknown option '%s'" % (fn, bad)
        if near:
            msg += " (did you mean '%s'?)" % near
        assert msg in r.stdout, (msg, r.stdout)
