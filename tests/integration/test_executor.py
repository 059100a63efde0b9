"""The executor end to end: the real binary, real runbooks, real local
commands, the timeline it writes, and the CLI's exit codes."""
import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import rbtest  # noqa: E402

CHECKOUT = os.path.join(rbtest.SOURCE_DIR, "runbooks", "checkout-errors.lua")
SCENARIOS = os.path.join(rbtest.SOURCE_DIR, "runbooks", "scenarios", "checkout-errors")


def runbook_file(tmp_path, body, name="t.lua"):
    return rbtest.write(str(tmp_path / name), body)


SIMPLE = """
return runbook {
  name = "simple", title = "Simple", start = "a",
  steps = {
    a = action { title = "A", run = function(ctx) ctx.seen = "yes"; return { n = 1 } end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


# -- checkout-errors: every branch through its scenarios -------------------------

@pytest.mark.parametrize("scenario", sorted(
    f[:-5] for f in os.listdir(SCENARIOS) if f.endswith(".json") and f != "default.json"))
def test_every_checkout_scenario_walks_its_expected_path(scenario):
    with open(os.path.join(SCENARIOS, scenario + ".json")) as f:
        expect = json.load(f)["expect"]
    r = rbtest.run(["drill", "checkout-errors", "--scenario", scenario, "--incident", "i1"])
    # The scenario states what should happen and it did: the drill passed,
    # whatever the outcome.
    assert r.code == 0, r
    events = r.timeline("i1")
    steps_started = [e["step"] for e in events
                     if e["kind"] != "run" and e["event"] in ("started",)]
    last = events[-2] if events[-1]["event"] == "note" else events[-1]
    assert last["kind"] == "run"
    assert last["detail"]["outcome"] == expect["outcome"]
    assert last["detail"]["path"] == expect["path"]
    terminal = expect["path"][-1]
    assert [s for s in expect["path"] if s != terminal] == \
        [s for s in steps_started if s != terminal][:len(expect["path"]) - 1]
    for e in events:
        for field in ("ts", "incident", "run", "runbook", "step", "kind", "event", "mode",
                      "actor", "detail"):
            assert field in e, (field, e)
        assert e["mode"] == "drill"
        assert e["ts"].endswith("Z") and len(e["ts"]) == 24


def test_the_seven_checkout_scenarios_cover_every_step():
    covered = set()
    for f in os.listdir(SCENARIOS):
        with open(os.path.join(SCENARIOS, f)) as fh:
            covered.update(json.load(fh)["expect"]["path"])
    r = rbtest.run(["show", "checkout-errors"])
    assert r.code == 0, r
    declared = {line.split("[")[0].split("-> ")[-1].strip()
                for line in r.stdout.splitlines() if "[" in line}
    assert declared - covered == set()


def test_drill_records_decisions_with_question_value_and_branch():
    r = rbtest.run(["drill", "checkout-errors", "--scenario", "database", "--incident", "d"])
    assert r.code == 0, r
    decisions = {e["step"]: e["detail"] for e in r.timeline("d") if e["event"] == "decision"}
    assert decisions["recent_deploy"] == {
        "question": "Deploy in the last 2 hours?", "value": False, "branch": "dependency"}
    assert decisions["database"]["branch"] == "restart"
    assert decisions["verify"]["value"] is True


def test_drill_records_actions_as_would_run_and_touches_nothing():
    r = rbtest.run(["drill", "checkout-errors", "--scenario", "bad-deploy", "--incident", "w"])
    assert r.code == 0, r
    would = [e for e in r.timeline("w") if e["event"] == "would_run"]
    assert would and would[0]["step"] == "rollback"
    assert would[0]["detail"]["command"] == "deploy rollback checkout"
    approvals = [e for e in r.timeline("w") if e["event"] in ("approval_requested", "approved")]
    assert [e["event"] for e in approvals] == ["approval_requested", "approved"]
    assert approvals[1]["detail"]["by"] == "alice"


def test_default_scenario_is_used_when_none_is_named():
    r = rbtest.run(["drill", "checkout-errors", "--incident", "x"])
    assert r.code == 0, r
    assert "resolved" in r.stdout and "timeline:" in r.stdout


def test_drill_that_leaves_its_expected_path_exits_6(tmp_path):
    scn = rbtest.write(str(tmp_path / "s.json"), json.dumps({
        "steps": {"recent_deploy": False, "dependency": True, "database": False},
        "expect": {"outcome": "resolved"}}))
    r = rbtest.run(["drill", "checkout-errors", "--scenario", scn])
    assert r.code == 6, r
    assert "drill: expected outcome 'resolved', got 'escalated'" in r.stderr


def test_scenario_that_does_not_answer_a_check_names_the_step(tmp_path):
    scn = rbtest.write(str(tmp_path / "s.json"), json.dumps({"steps": {"recent_deploy": False}}))
    r = rbtest.run(["drill", "checkout-errors", "--scenario", scn, "--incident", "q"])
    assert r.code == 3, r
    assert "does not answer step 'dependency' (a check)" in r.stderr
    failed = [e for e in r.timeline("q") if e["event"] == "failed" and e["step"] == "dependency"]
    assert failed, r.timeline("q")


def test_scenario_naming_an_unknown_step_is_invalid(tmp_path):
    scn = rbtest.write(str(tmp_path / "s.json"), json.dumps({"steps": {"recnt_deploy": True}}))
    r = rbtest.run(["drill", "checkout-errors", "--scenario", scn])
    assert r.code == 3, r
    assert "steps.recnt_deploy: runbook 'checkout-errors' has no step 'recnt_deploy'" in r.stderr


def test_missing_scenario_is_a_usage_error():
    r = rbtest.run(["drill", "checkout-errors", "--scenario", "nope"])
    assert r.code == 2, r
    assert "scenario 'nope' not found" in r.stderr


# -- invalid runbooks: exact error and line ------------------------------------

INVALID = [
    ("""return runbook {
  name = "x", title = "X", start = "a",
  steps = {
    a = check { title = "A?", run = function() return true end,
      on = { [true] = "b", [false] = "nowhere" } },
    b = resolved { title = "B" },
  },
}""", "t.lua:4: step 'a': branch 'false' goes to unknown step 'nowhere'"),
    ("""return runbook {
  name = "x", title = "X",
  steps = {
    a = resolved { title = "A" },
  },
}""", "t.lua:1: runbook has no start step"),
    ("""return runbook {
  name = "x", title = "X", start = "a",
  steps = {
    a = resolved { title = "A" },
    lost = resolved { title = "Lost" },
  },
}""", "t.lua:5: step 'lost': is unreachable from start step 'a'"),
    ("""return runbook {
  name = "x", title = "X", start = "a",
  steps = {
    a = check { title = "A?", run = function() return true end, on = { [true] = "b" } },
    b = resolved { title = "B" },
  },
}""", "t.lua:4: step 'a': check branches must cover both true and false, or declare a default"),
    ("""return runbook {
  name = "x", title = "X", start = "a",
  steps = {
    a = action { run = function() end, next = "b" },
    b = resolved { title = "B" },
  },
}""", "t.lua:4: step 'a': has no title"),
    ("""return runbook {
  name = "x", title = "X", start = "a",
  steps = {
    a = action { title = "A", run = function() end, next = "b", timeout = "5 minutes" },
    b = resolved { title = "B" },
  },
}""", "t.lua:4: field 'timeout' in action 'a': bad duration '5 minutes'"),
    ("""return runbook {
  name = "x", title = "X", start = "a"
  steps = {},
}""", "t.lua:3: '}' expected (to close '{' at line 1) near 'steps'"),
    ("""local x = undefined_thing
return runbook { name = "x", title = "X", start = "a", steps = {} }""",
     "t.lua:1: undeclared global 'undefined_thing'"),
    ("""return { name = "x" }""", "t.lua:1: runbook has no steps table"),
    ("""return 42""", "t.lua:1: the file must return runbook { ... } (it returned a number)"),
]


@pytest.mark.parametrize("body,message", INVALID, ids=[m.split(": ", 1)[1][:40] for _, m in INVALID])
def test_invalid_runbook_is_refused_with_file_line_and_step(tmp_path, body, message):
    path = runbook_file(tmp_path, body)
    r = rbtest.run(["check", path])
    assert r.code == 3, r
    assert message in r.stderr.replace(str(tmp_path) + "/", ""), r
    r = rbtest.run(["exec", path])
    assert r.code == 3, r
    assert not os.path.exists(os.path.join(r.state_dir, "incidents")) or \
        not os.listdir(os.path.join(r.state_dir, "incidents"))


def test_check_accepts_the_shipped_runbooks():
    r = rbtest.run(["check", "checkout-errors"])
    assert r.code == 0, r
    assert "ok (checkout-errors, 17 steps)" in r.stdout


# -- steps that fail -----------------------------------------------------------

def test_step_that_errors_fails_the_run_with_file_and_line(tmp_path):
    path = runbook_file(tmp_path, """return runbook {
  name = "e", title = "E", start = "a",
  steps = {
    a = action { title = "A", run = function(ctx)
      error("the load balancer said no")
    end, next = "b" },
    b = resolved { title = "B" },
  },
}""")
    r = rbtest.run(["exec", path, "--incident", "e"])
    assert r.code == 1, r
    failed = [e for e in r.timeline("e") if e["event"] == "failed"]
    assert failed[0]["step"] == "a"
    assert failed[0]["detail"]["error"].endswith("t.lua:5: the load balancer said no")
    assert failed[-1]["kind"] == "run" and failed[-1]["detail"]["outcome"] == "failed"
    assert "step 'a': " in r.stderr and "the load balancer said no" in r.stderr


def test_failing_step_follows_on_error(tmp_path):
    path = runbook_file(tmp_path, """return runbook {
  name = "e", title = "E", start = "a",
  steps = {
    a = action { title = "A", run = function() error("nope") end, next = "b", on_error = "c" },
    b = resolved { title = "B" },
    c = escalated { title = "Handed over" },
  },
}""")
    r = rbtest.run(["exec", path, "--incident", "e"])
    assert r.code == 5, r
    ev = r.timeline("e")
    assert [e["step"] for e in ev if e["event"] == "failed"] == ["a"]
    assert ev[-1]["detail"]["path"] == ["a", "c"]
    assert ev[-1]["detail"]["outcome"] == "escalated"


def test_step_that_times_out_is_stopped_and_recorded(tmp_path):
    path = runbook_file(tmp_path, """return runbook {
  name = "slow", title = "Slow", start = "spin",
  steps = {
    spin = action { title = "Spin", timeout = "1s", run = function()
      while true do end
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}""")
    t0 = time.monotonic()
    r = rbtest.run(["exec", path, "--incident", "s"])
    took = time.monotonic() - t0
    assert r.code == 1, r
    assert took < 3.0, took
    failed = [e for e in r.timeline("s") if e["event"] == "failed" and e["step"] == "spin"]
    assert "step 'spin' exceeded its timeout (1.00 s)" in failed[0]["detail"]["error"]


def test_step_stuck_inside_one_c_call_is_killed_by_the_watchdog(tmp_path):
    path = runbook_file(tmp_path, """return runbook {
  name = "bomb", title = "Bomb", start = "b",
  steps = {
    b = check { title = "Pattern bomb", timeout = "1s", run = function()
      return string.find(string.rep("a", 40), string.rep("a*", 40) .. "b") ~= nil
    end, on = { [true] = "done", [false] = "done" } },
    done = resolved { title = "Done" },
  },
}""")
    t0 = time.monotonic()
    r = rbtest.run(["exec", path, "--incident", "w"])
    took = time.monotonic() - t0
    assert r.code == 1, r
    assert took < 4.0, took
    ev = r.timeline("w")
    step_fail = [e for e in ev if e["event"] == "failed" and e["step"] == "b"]
    assert step_fail and step_fail[0]["detail"]["watchdog"] is True
    assert ev[-1]["kind"] == "run" and ev[-1]["event"] == "failed"
    # nothing written before the kill was lost
    assert [e["event"] for e in ev[:2]] == ["started", "started"]


def test_executor_killed_mid_run_leaves_a_readable_timeline(tmp_path):
    path = runbook_file(tmp_path, """local cmd = require "cmd"
return runbook {
  name = "long", title = "Long", start = "a",
  steps = {
    a = action { title = "A", run = function() return 1 end, next = "b" },
    b = action { title = "B", run = function() cmd.run({"sleep", "30"}) end, next = "done" },
    done = resolved { title = "Done" },
  },
}""")
    state = tempfile.mkdtemp(prefix="rb-kill-")
    env = dict(os.environ, NO_COLOR="1")
    p = subprocess.Popen([rbtest.RUNBOOK_BIN, "--state-dir", state, "exec", path,
                          "--incident", "k"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    tl = os.path.join(state, "incidents", "k.jsonl")
    deadline = time.time() + 10
    while time.time() < deadline:
        if os.path.exists(tl) and '"op":"cmd"' in open(tl).read():
            break
        time.sleep(0.05)
    child = subprocess.run(["pgrep", "-P", str(p.pid), "-x", "runbook"], capture_output=True,
                           text=True).stdout.split()
    assert child, "no executor child found"
    os.kill(int(child[0]), signal.SIGKILL)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 1
    assert "the executor died from signal 9" in err
    with open(tl) as f:
        events = [json.loads(line) for line in f]
    assert events[-1]["event"] == "failed" and "signal 9" in events[-1]["detail"]["error"]
    assert [e["step"] for e in events if e["event"] == "finished"] == ["a"]
    # exactly this run's `sleep 30`: a looser pattern kills other tests' commands
    subprocess.run(["pkill", "-x", "-f", "sleep 30"], check=False)


def test_interrupt_aborts_the_run_and_records_it(tmp_path):
    path = runbook_file(tmp_path, """return runbook {
  name = "int", title = "Int", start = "a",
  steps = {
    a = action { title = "A", run = function() while true do end end, next = "done" },
    done = resolved { title = "Done" },
  },
}""")
    state = tempfile.mkdtemp(prefix="rb-int-")
    p = subprocess.Popen([rbtest.RUNBOOK_BIN, "--state-dir", state, "exec", path,
                          "--incident", "i"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    time.sleep(0.5)
    os.killpg(p.pid, signal.SIGINT)
    p.communicate(timeout=20)
    assert p.returncode == 1
    with open(os.path.join(state, "incidents", "i.jsonl")) as f:
        events = [json.loads(line) for line in f]
    assert "interrupted by the operator" in events[-2]["detail"]["error"]


# -- local commands, dry-run and the read/write rule ------------------------------

CMD_BOOK = """local cmd = require "cmd"
return runbook {
  name = "cmds", title = "Commands", start = "look",
  params = { target = { required = true } },
  steps = {
    look = check { title = "Is there something to do?", run = function(ctx)
      local r = cmd.read({"sh", "-c", "echo hello; echo warn >&2"})
      ctx.said = r.stdout
      return r.stdout == "hello\\n"
    end, on = { [true] = "act", [false] = "done" } },
    act = action { title = "Touch the target", run = function(ctx)
      return cmd.run({"touch", ctx.target}).code
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def test_exec_runs_commands_and_records_them(tmp_path):
    path = runbook_file(tmp_path, CMD_BOOK)
    target = str(tmp_path / "touched")
    r = rbtest.run(["exec", path, "--var", "target=" + target, "--incident", "c"])
    assert r.code == 0, r
    assert os.path.exists(target)
    ev = r.timeline("c")
    ops = [e for e in ev if e["detail"].get("op") == "cmd"]
    assert [(e["step"], e["event"]) for e in ops] == [
        ("look", "finished"), ("act", "started"), ("act", "finished")]
    assert ops[0]["detail"]["stdout_tail"] == "hello\n"
    assert ops[0]["detail"]["stderr_tail"] == "warn\n"
    assert ops[2]["detail"]["exit_code"] == 0
    assert ops[2]["detail"]["command"] == ["touch", target]
    decision = [e for e in ev if e["event"] == "decision"][0]
    assert decision["detail"]["ctx"]["said"] == "hello\n"


def test_dry_run_runs_reads_but_only_records_writes(tmp_path):
    path = runbook_file(tmp_path, CMD_BOOK)
    target = str(tmp_path / "untouched")
    r = rbtest.run(["exec", "--dry-run", path, "--var", "target=" + target, "--incident", "d"])
    assert r.code == 0, r
    assert not os.path.exists(target)
    ev = r.timeline("d")
    assert all(e["mode"] == "dry-run" for e in ev)
    would = [e for e in ev if e["event"] == "would_run"]
    assert len(would) == 1 and would[0]["detail"]["command"] == ["touch", target]
    reads = [e for e in ev if e["event"] == "finished" and e["detail"].get("op") == "cmd"]
    assert len(reads) == 1  # the check's read ran for real
    assert "would run `touch " + target + "`" in r.stdout


def test_write_from_a_check_is_refused(tmp_path):
    path = runbook_file(tmp_path, """local cmd = require "cmd"
return runbook {
  name = "bad", title = "Bad", start = "c",
  steps = {
    c = check { title = "Sneaky", run = function() cmd.run({"true"}) return true end,
      on = { [true] = "d", [false] = "d" } },
    d = resolved { title = "D" },
  },
}""")
    r = rbtest.run(["exec", path, "--incident", "b"])
    assert r.code == 1, r
    err = [e for e in r.timeline("b") if e["event"] == "failed"][0]["detail"]["error"]
    assert "cmd.run: step 'c' is a check and must stay read-only" in err


def test_failed_command_fails_the_step_with_its_stderr(tmp_path):
    path = runbook_file(tmp_path, """local cmd = require "cmd"
return runbook {
  name = "f", title = "F", start = "a",
  steps = {
    a = action { title = "A", run = function()
      cmd.run({"sh", "-c", "echo no such deployment >&2; exit 3"})
    end, next = "d" },
    d = resolved { title = "D" },
  },
}""")
    r = rbtest.run(["exec", path, "--incident", "f"])
    assert r.code == 1, r
    ev = r.timeline("f")
    op = [e for e in ev if e["detail"].get("op") == "cmd" and e["event"] == "failed"][0]
    assert op["detail"]["exit_code"] == 3
    assert "command 'sh' exited with code 3: no such deployment" in op["detail"]["error"]


def test_command_timeout_kills_the_command(tmp_path):
    path = runbook_file(tmp_path, """local cmd = require "cmd"
return runbook {
  name = "t", title = "T", start = "a",
  steps = {
    a = action { title = "A", run = function()
      cmd.run({"sleep", "20"}, { timeout = "500ms" })
    end, next = "d" },
    d = resolved { title = "D" },
  },
}""")
    t0 = time.monotonic()
    r = rbtest.run(["exec", path, "--incident", "t"])
    assert time.monotonic() - t0 < 5
    assert r.code == 1, r
    op = [e for e in r.timeline("t") if e["detail"].get("op") == "cmd" and e["event"] == "failed"]
    assert op[0]["detail"]["timed_out"] is True
    assert "timed out after" in op[0]["detail"]["error"]


def test_shell_string_is_refused(tmp_path):
    path = runbook_file(tmp_path, """local cmd = require "cmd"
return runbook {
  name = "s", title = "S", start = "a",
  steps = {
    a = action { title = "A", run = function() cmd.run("rm -rf /tmp/x") end, next = "d" },
    d = resolved { title = "D" },
  },
}""")
    r = rbtest.run(["exec", path, "--incident", "s"])
    assert r.code == 1, r
    assert "want an argv list" in r.timeline("s")[-1]["detail"]["error"]


# -- approvals ----------------------------------------------------------------

APPROVAL_BOOK = """local cmd = require "cmd"
return runbook {
  name = "gate", title = "Gate", start = "act",
  params = { target = { required = true } },
  steps = {
    act = action { title = "Touch it", approval = true, run = function(ctx)
      return cmd.run({"touch", ctx.target}).code
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def start_exec(path, state, incident, extra=(), config=None):
    args = [rbtest.RUNBOOK_BIN, "--state-dir", state]
    if config:
        args += ["--config", config]
    args += ["exec", path, "--incident", incident] + list(extra)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)


def wait_pending(state, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = rbtest.run(["approvals"], state_dir=state)
        if "no pending approvals" not in r.stdout and r.stdout.strip():
            return r.stdout.split()[:2]
        time.sleep(0.1)
    raise AssertionError("no approval request appeared")


def test_approved_action_runs_and_records_who_approved(tmp_path):
    path = runbook_file(tmp_path, APPROVAL_BOOK)
    target = str(tmp_path / "t")
    state = tempfile.mkdtemp()
    p = start_exec(path, state, "a", ["--var", "target=" + target])
    run, step = wait_pending(state)
    assert step == "act"
    assert not os.path.exists(target)
    r = rbtest.run(["approve", run, step, "--as", "carol", "--comment", "go"], state_dir=state)
    assert r.code == 0, r
    p.communicate(timeout=20)
    assert p.returncode == 0
    assert os.path.exists(target)
    ev = rbtest.Result(subprocess.CompletedProcess([], 0, "", ""), state).timeline("a")
    req = [e for e in ev if e["event"] == "approval_requested"][0]
    assert req["detail"]["would_run"][0]["command"] == ["touch", target]
    ok = [e for e in ev if e["event"] == "approved"][0]
    # the real account answers; --as is only a label next to it
    me = pwd.getpwuid(os.getuid()).pw_name
    assert ok["detail"]["by"] == me + " (as carol)" and ok["detail"]["comment"] == "go"
    assert ok["detail"]["via"] == "cli"
    assert ok["detail"]["answers"][0]["identity"] == me
    assert ok["detail"]["answers"][0]["label"] == "carol"
    # a second answer is refused
    r = rbtest.run(["approve", run, step, "--deny"], state_dir=state)
    assert r.code == 1 and "already approved by " + me in r.stderr


def test_denied_action_does_not_run_and_exits_4(tmp_path):
    path = runbook_file(tmp_path, APPROVAL_BOOK)
    target = str(tmp_path / "t")
    state = tempfile.mkdtemp()
    p = start_exec(path, state, "d", ["--var", "target=" + target])
    run, step = wait_pending(state)
    rbtest.run(["approve", run, step, "--deny", "--as", "dave"], state_dir=state)
    p.communicate(timeout=20)
    assert p.returncode == 4
    assert not os.path.exists(target)


def test_unanswered_approval_is_denied_at_the_timeout(tmp_path):
    path = runbook_file(tmp_path, APPROVAL_BOOK)
    conf = rbtest.write(str(tmp_path / "rb.conf"), "[approvals]\ntimeout = 1s\n")
    target = str(tmp_path / "t")
    r = rbtest.run(["--config", conf, "exec", path, "--var", "target=" + target,
                    "--incident", "to"])
    assert r.code == 4, r
    assert not os.path.exists(target)
    denied = [e for e in r.timeline("to") if e["event"] == "denied"][0]
    assert denied["detail"]["timed_out"] is True and denied["detail"]["by"] == "nobody"


def test_dry_run_does_not_ask_for_approval(tmp_path):
    path = runbook_file(tmp_path, APPROVAL_BOOK)
    r = rbtest.run(["exec", "--dry-run", path, "--var", "target=/nonexistent/x", "--incident", "n"])
    assert r.code == 0, r
    ev = r.timeline("n")
    assert not [e for e in ev if e["event"] == "approval_requested"]
    assert [e for e in ev if e["event"] == "skipped"][0]["step"] == "act"


# -- parameters and the command line -----------------------------------------

def test_missing_required_var_is_a_usage_error(tmp_path):
    r = rbtest.run(["exec", runbook_file(tmp_path, CMD_BOOK)])
    assert r.code == 2, r
    assert "missing required parameter 'target': pass --var target=VALUE" in r.stderr


def test_unknown_var_is_a_usage_error_naming_it(tmp_path):
    r = rbtest.run(["exec", runbook_file(tmp_path, CMD_BOOK), "--var", "target=x",
                    "--var", "tagret=y"])
    assert r.code == 2, r
    assert "unknown --var 'tagret': runbook 'cmds' takes target" in r.stderr


@pytest.mark.parametrize("args,needle", [
    ([], "no command given"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["exec"], "exec needs exactly one runbook"),
    (["exec", "no-such-runbook"], "no runbook named 'no-such-runbook' in ./runbooks"),
    (["drill", "checkout-errors", "--dry-run"], "--dry-run is an option of exec"),
    (["timeline", "x", "--format", "pdf"], "--format must be text, json or markdown"),
    (["exec", "checkout-errors", "--incident", "../etc"], "invalid incident id"),
])
def test_usage_errors_exit_2(args, needle):
    r = rbtest.run(args)
    assert r.code == 2, r
    assert needle in r.stderr


@pytest.mark.parametrize("cmd", ["exec", "drill", "check", "show", "list", "timeline",
                                 "approve", "approvals", "resume", "ssh"])
def test_every_command_has_help(cmd):
    r = rbtest.run([cmd, "--help"])
    assert r.code == 0
    assert r.stdout.startswith("usage: runbook " + cmd)


def test_version():
    r = rbtest.run(["--version"])
    assert r.code == 0 and r.stdout.startswith("runbook 0.")


def test_list_and_show():
    r = rbtest.run(["list"])
    assert r.code == 0
    assert "checkout-errors" in r.stdout and "High error rate on checkout" in r.stdout
    r = rbtest.run(["show", "checkout-errors"])
    assert r.code == 0
    assert "recent_deploy [check] Deploy in the last 2 hours?" in r.stdout
    assert "true -> rollback [action, write, approval]" in r.stdout


def test_runbook_path_is_searched(tmp_path):
    d = tmp_path / "books"
    d.mkdir()
    runbook_file(d, SIMPLE, "simple.lua")
    r = rbtest.run(["exec", "simple"], env={"RUNBOOK_PATH": str(d)})
    assert r.code == 0, r


# -- the timeline ---------------------------------------------------------------

def test_json_flag_streams_the_timeline_to_stdout(tmp_path):
    r = rbtest.run(["exec", runbook_file(tmp_path, SIMPLE), "--json", "--incident", "j"])
    assert r.code == 0, r
    streamed = [json.loads(line) for line in r.stdout.splitlines()]
    # the stream carries the events; the hash chain's fields are the file's
    stored = [{k: v for k, v in e.items() if k not in ("seq", "prev")}
              for e in r.timeline("j")]
    assert streamed == stored


def test_timeline_exports_the_postmortem_table(tmp_path):
    r = rbtest.run(["drill", "checkout-errors", "--incident", "pm"])
    assert r.code == 0
    t = rbtest.run(["timeline", "pm", "--format", "markdown", "--full"], state_dir=r.state_dir)
    assert t.code == 0
    lines = t.stdout.splitlines()
    assert "| Time (UTC) | Event |" in lines
    rows = [line for line in lines if line.startswith("| ") and "Time (UTC)" not in line]
    assert len(rows) == len(r.timeline("pm"))
    t = rbtest.run(["timeline", "pm", "--format", "json"], state_dir=r.state_dir)
    with open(os.path.join(r.state_dir, "incidents", "pm.jsonl")) as f:
        assert t.stdout == f.read()  # byte for byte, header and hashes included
    t = rbtest.run(["timeline", "pm"], state_dir=r.state_dir)
    assert "recent_deploy" in t.stdout


def test_torn_last_line_is_repaired_and_nothing_else_is_lost(tmp_path):
    path = runbook_file(tmp_path, SIMPLE)
    r = rbtest.run(["exec", path, "--incident", "torn"])
    tl = os.path.join(r.state_dir, "incidents", "torn.jsonl")
    before = r.timeline("torn")
    with open(tl, "a") as f:
        f.write('{"ts":"2026-11-22T10:00:00.000Z","event":"sta')
    t = rbtest.run(["timeline", "torn", "--format", "json"], state_dir=r.state_dir)
    assert t.code == 0
    assert "ignoring torn last timeline line" in t.stderr
    assert len(t.stdout.splitlines()) == len(before) + 1  # and the header
    r2 = rbtest.run(["exec", path, "--incident", "torn"], state_dir=r.state_dir)
    assert r2.code == 0
    assert "torn line" in r2.stderr
    after = r2.timeline("torn")
    assert after[:len(before)] == before
    assert len({e["run"] for e in after}) == 2


def test_ctx_changes_are_journaled(tmp_path):
    r = rbtest.run(["exec", runbook_file(tmp_path, SIMPLE), "--incident", "ctx"])
    fin = [e for e in r.timeline("ctx") if e["step"] == "a" and e["event"] == "finished"][0]
    assert fin["detail"]["ctx"]["seen"] == "yes"
    assert fin["detail"]["result"] == {"n": 1}


def test_result_that_is_not_json_fails_the_step(tmp_path):
    path = runbook_file(tmp_path, """return runbook {
  name = "r", title = "R", start = "a",
  steps = {
    a = action { title = "A", run = function() return { f = print } end, next = "d" },
    d = resolved { title = "D" },
  },
}""")
    r = rbtest.run(["exec", path, "--incident", "r"])
    assert r.code == 1, r
    assert "not JSON-serialisable: cannot convert a function to JSON" in \
        r.timeline("r")[-1]["detail"]["error"]


# -- notify steps post to the configured channels ------------------------------

NOTIFY_BOOK = """return runbook {
  name = "n", title = "N", start = "update",
  steps = {
    update = notify { title = "Tell people", phase = "Identified",
      message = function(ctx) return "cause found in " .. ctx.incident end,
      impact = "Checkout slow", next = "done" },
    done = resolved { title = "Done" },
  },
}"""


def webhook_receiver():
    """A generic-webhook receiver on loopback that keeps what it is sent."""
    import http.server
    import threading
    got = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", 0))
            got.append((self.path, json.loads(self.rfile.read(n))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, got


def test_notify_step_posts_its_update_to_the_webhook(tmp_path):
    srv, got = webhook_receiver()
    try:
        url = "http://127.0.0.1:%d/hook" % srv.server_port
        conf = rbtest.write(str(tmp_path / "rb.conf"),
                            "[notify.team]\ntype = webhook\nurl_env = RB_TEST_HOOK\n")
        path = runbook_file(tmp_path, NOTIFY_BOOK)
        r = rbtest.run(["--config", conf, "exec", path, "--incident", "nt"],
                       env={"RB_TEST_HOOK": url})
        assert r.code == 0, r
        assert len(got) == 1
        assert got[0][0] == "/hook"
        assert got[0][1]["phase"] == "Identified"
        assert got[0][1]["title"] == "cause found in nt"
        assert got[0][1]["impact"] == "Checkout slow"
        ev = r.timeline("nt")
        post = [e for e in ev if e["detail"].get("op") == "http" and e["event"] != "started"]
        assert post and post[0]["detail"]["status"] == 200
        fin = [e for e in ev if e["step"] == "update" and e["event"] == "finished"
               and "op" not in e["detail"]]
        assert fin[0]["detail"]["phase"] == "Identified"
        # the webhook URL is a secret: it never reaches the timeline
        assert url not in open(os.path.join(r.state_dir, "incidents", "nt.jsonl")).read()
        # dry-run records the post without sending it
        r = rbtest.run(["--config", conf, "exec", "--dry-run", path, "--incident", "nd"],
                       env={"RB_TEST_HOOK": url})
        assert r.code == 0, r
        assert len(got) == 1
        would = [e for e in r.timeline("nd") if e["event"] == "would_run"]
        assert would and would[0]["detail"]["method"] == "POST"
    finally:
        srv.shutdown()
