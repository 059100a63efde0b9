"""runbook resume: a run whose executor was killed continues from its
journal, never re-running a finished action, and asks a human about an
action that started and never finished."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import rbtest  # noqa: E402

BOOK = """local cmd = require "cmd"
return runbook {
  name = "crashy", title = "Crashy", start = "first",
  params = { log = { required = true } },
  steps = {
    first = action { title = "First write", run = function(ctx)
      cmd.run({"sh", "-c", "echo first >> " .. ctx.log})
      ctx.ref = "t-42"
    end, next = "look" },
    look = check { title = "Look", run = function(ctx)
      cmd.read({"sh", "-c", "test -e " .. ctx.log .. ".slowcheck && sleep 30 || true"})
      return true
    end, on = { [true] = "second", [false] = "second" } },
    second = action { title = "Second write", idempotent = IDEMPOTENT, run = function(ctx)
      cmd.run({"sh", "-c", "echo second-" .. ctx.ref .. " >> " .. ctx.log .. "; "
        .. "test -e " .. ctx.log .. ".hang && sleep 30 || true"})
    end, next = "third" },
    third = action { title = "Third write", run = function(ctx)
      cmd.run({"sh", "-c", "echo third-" .. ctx.ref .. " >> " .. ctx.log})
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def prepare(tmp_path, idempotent=False, hang="hang"):
    book = rbtest.write(str(tmp_path / "crashy.lua"),
                        BOOK.replace("IDEMPOTENT", "true" if idempotent else "false"))
    log = str(tmp_path / "log")
    open(log + "." + hang, "w").close()
    return book, log


def crash_during(book, log, state, marker):
    """Starts the run, waits until the journal shows `marker`, kills the
    executor child with SIGKILL, and returns the run id."""
    p = subprocess.Popen([rbtest.RUNBOOK_BIN, "--state-dir", state, "exec", book,
                          "--incident", "inc", "--var", "log=" + log],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tl = os.path.join(state, "incidents", "inc.jsonl")
    deadline = time.time() + 15
    while time.time() < deadline:
        if os.path.exists(tl) and marker in open(tl).read():
            break
        time.sleep(0.05)
    time.sleep(0.2)
    kids = subprocess.run(["pgrep", "-P", str(p.pid), "-x", "runbook"], capture_output=True,
                          text=True).stdout.split()
    assert kids, "executor child not found"
    os.kill(int(kids[0]), signal.SIGKILL)
    p.communicate(timeout=20)
    assert p.returncode == 1
    # only this test's shells (they name its log): a looser pattern kills
    # the commands of tests running beside it
    subprocess.run(["pkill", "-f", log + "."], check=False)
    with open(tl) as f:
        return [json.loads(line) for line in f if '"run"' in line][0]["run"]


def events(state):
    with open(os.path.join(state, "incidents", "inc.jsonl")) as f:
        evs = [json.loads(line) for line in f]
    return [e for e in evs if e.get("event") != "timeline_header"]


def lines(log):
    with open(log) as f:
        return f.read().split()


def test_action_in_doubt_is_refused_until_a_human_decides(tmp_path):
    book, log = prepare(tmp_path)
    state = tempfile.mkdtemp()
    run = crash_during(book, log, state, '"step":"second","kind":"action","event":"started"')
    assert lines(log) == ["first", "second-t-42"]
    open(log + ".hang", "w").close()
    os.unlink(log + ".hang")
    r = rbtest.run(["resume", run], state_dir=state)
    assert r.code == 2, r
    assert "step 'second' (an action) started and never finished" in r.stderr
    assert "--in-doubt rerun" in r.stderr
    assert lines(log) == ["first", "second-t-42"]  # nothing ran
    r = rbtest.run(["resume", run, "--in-doubt", "skip"], state_dir=state)
    assert r.code == 0, r
    # first and second never ran again; third saw the ctx the first step stored
    assert lines(log) == ["first", "second-t-42", "third-t-42"]
    ev = events(state)
    note = [e for e in ev if e["event"] == "note" and e["detail"].get("in_doubt")]
    assert note[0]["detail"]["in_doubt"] == "skip" and note[0]["step"] == "second"
    assert ev[-1]["event"] == "finished" and ev[-1]["detail"]["outcome"] == "resolved"
    assert all(e["run"] == run for e in ev)
    r = rbtest.run(["resume", run], state_dir=state)
    assert r.code == 2 and "already ended (resolved)" in r.stderr


def test_in_doubt_rerun_runs_the_action_again(tmp_path):
    book, log = prepare(tmp_path)
    state = tempfile.mkdtemp()
    run = crash_during(book, log, state, '"step":"second","kind":"action","event":"started"')
    os.unlink(log + ".hang")
    r = rbtest.run(["resume", run, "--in-doubt", "rerun"], state_dir=state)
    assert r.code == 0, r
    assert lines(log) == ["first", "second-t-42", "second-t-42", "third-t-42"]


def test_idempotent_action_is_rerun_without_asking(tmp_path):
    book, log = prepare(tmp_path, idempotent=True)
    state = tempfile.mkdtemp()
    run = crash_during(book, log, state, '"step":"second","kind":"action","event":"started"')
    os.unlink(log + ".hang")
    r = rbtest.run(["resume", run], state_dir=state)
    assert r.code == 0, r
    assert lines(log) == ["first", "second-t-42", "second-t-42", "third-t-42"]


def test_crash_during_a_check_reruns_the_check(tmp_path):
    book, log = prepare(tmp_path, hang="slowcheck")
    state = tempfile.mkdtemp()
    run = crash_during(book, log, state, '"step":"look","kind":"check","event":"started"')
    os.unlink(log + ".slowcheck")
    r = rbtest.run(["resume", run], state_dir=state)
    assert r.code == 0, r
    assert lines(log) == ["first", "second-t-42", "third-t-42"]
    started = [e["step"] for e in events(state)
               if e["event"] == "started" and e["kind"] != "run" and "op" not in e["detail"]]
    assert started == ["first", "look", "look", "second", "third"]


def test_resume_of_an_unknown_run_is_a_usage_error(tmp_path):
    r = rbtest.run(["resume", "20990101-000000-abcdef"])
    assert r.code == 2
    assert "holds run 20990101-000000-abcdef" in r.stderr


NONFINITE = """local cmd = require "cmd"
return runbook {
  name = "nonfinite", title = "Non-finite ctx", start = "first",
  params = { log = { required = true } },
  steps = {
    first = action { title = "Store", run = function(ctx)
      ctx.rate = 0 / 0
      ctx.top = math.huge
      ctx.stats = { low = -math.huge, ok = 1.5 }
      cmd.run({"sh", "-c", "echo first >> " .. ctx.log})
    end, next = "second" },
    second = action { title = "Hang", idempotent = true, run = function(ctx)
      cmd.run({"sh", "-c", "test -e " .. ctx.log .. ".hang && sleep 30 || true"})
    end, next = "third" },
    third = action { title = "Read back", run = function(ctx)
      local ok = ctx.rate ~= ctx.rate and ctx.top == math.huge
        and ctx.stats.low == -math.huge and ctx.stats.ok == 1.5
      cmd.run({"sh", "-c", "echo third-" .. tostring(ok) .. " >> " .. ctx.log})
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def test_nan_and_infinities_in_ctx_are_journaled_and_read_back(tmp_path):
    book = rbtest.write(str(tmp_path / "nonfinite.lua"), NONFINITE)
    log = str(tmp_path / "log")
    open(log + ".hang", "w").close()
    state = tempfile.mkdtemp()
    run = crash_during(book, log, state, '"step":"second","kind":"action","event":"started"')
    first = [e for e in events(state) if e["step"] == "first" and e["event"] == "finished"
             and "op" not in e["detail"]]
    ctx = first[0]["detail"]["ctx"]
    assert "ctx_error" not in first[0]["detail"]
    assert ctx["rate"] == {"$float": "NaN"} and ctx["top"] == {"$float": "Infinity"}
    assert ctx["stats"] == {"low": {"$float": "-Infinity"}, "ok": 1.5}
    os.unlink(log + ".hang")
    r = rbtest.run(["resume", run], state_dir=state)
    assert r.code == 0, r
    assert lines(log) == ["first", "third-true"]


def test_a_ctx_value_that_cannot_be_journaled_fails_the_step_by_key(tmp_path):
    book = rbtest.write(str(tmp_path / "fn.lua"), """return runbook {
  name = "fn", title = "Fn", start = "first",
  steps = {
    first = action { title = "Store", run = function(ctx)
      ctx.ok = 1
      ctx.callback = function() end
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
""")
    r = rbtest.run(["exec", book, "--incident", "inc"])
    assert r.code == 1, r
    failed = [e for e in r.timeline("inc") if e["event"] == "failed" and e["step"] == "first"]
    assert failed, r.timeline("inc")
    err = failed[0]["detail"]["error"]
    assert err.startswith("ctx.callback: cannot convert a function to JSON"), err
    book2 = rbtest.write(str(tmp_path / "tag.lua"), """return runbook {
  name = "tag", title = "Tag", start = "first",
  steps = {
    first = action { title = "Store", run = function(ctx)
      ctx.fake = { ["$float"] = "NaN" }
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
""")
    r = rbtest.run(["exec", book2, "--incident", "inc"])
    assert r.code == 1 and "ctx.fake:" in r.stdout + r.stderr and "reserved" in r.stdout + r.stderr, r
