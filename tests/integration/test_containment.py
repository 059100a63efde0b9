"""Containment of local commands: a cmd.run child dies with the run that
started it (the supervisor kills its group, a parent-death signal backs that
up), and commands see a minimal environment, so a secret named by a config
`*_env` key reaches a command only when the runbook passes it."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import rbtest  # noqa: E402

ORPHAN = """local cmd = require "cmd"
return runbook {
  name = "orphan", title = "Orphan", start = "act",
  params = { marker = { required = true } },
  steps = {
    act = action { title = "Act", run = function(ctx)
      cmd.run({"sh", "-c", "sleep 2; touch " .. ctx.marker} OPTS)
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def start_orphan(tmp_path, new_session=False):
    book = rbtest.write(str(tmp_path / "orphan.lua"), ORPHAN.replace("OPTS", ""))
    marker = str(tmp_path / "MARKER")
    state = str(tmp_path / "state")
    p = subprocess.Popen([rbtest.RUNBOOK_BIN, "--state-dir", state, "exec", book,
                          "--incident", "inc", "--var", "marker=" + marker],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=new_session)
    tl = os.path.join(state, "incidents", "inc.jsonl")
    deadline = time.time() + 15
    while time.time() < deadline:
        if os.path.exists(tl) and '"op":"cmd"' in open(tl).read():
            break
        time.sleep(0.05)
    else:
        p.kill()
        raise AssertionError("the command never started")
    time.sleep(0.2)  # the command is sleeping now
    return p, marker, tl


def events(tl):
    with open(tl) as f:
        evs = [json.loads(line) for line in f if line.strip()]
    return [e for e in evs if e.get("event") != "timeline_header"]


def test_command_dies_with_a_killed_executor_and_the_kill_is_recorded(tmp_path):
    p, marker, tl = start_orphan(tmp_path)
    kids = subprocess.run(["pgrep", "-P", str(p.pid), "-x", "runbook"], capture_output=True,
                          text=True).stdout.split()
    assert kids, "executor child not found"
    os.kill(int(kids[0]), signal.SIGKILL)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 1
    time.sleep(4)
    assert not os.path.exists(marker), "the command acted after its executor died"
    evs = events(tl)
    notes = [e for e in evs if e["event"] == "note" and e["detail"].get("killed")]
    assert len(notes) == 1, evs
    d = notes[0]["detail"]
    assert notes[0]["step"] == "act"
    assert d["command"].startswith("sh -c sleep 2; touch ")
    assert "killed command pid %d (sh -c sleep 2; touch " % d["pid"] in d["message"]
    assert d["message"].endswith(") when the executor died")
    assert "killed command pid" in err
    # the kill is recorded before the executor's death, and the chain holds
    names = [e["event"] for e in evs]
    assert names.index("note") < names.index("failed")
    assert "the executor died from signal 9" in evs[-1]["detail"]["error"]
    v = rbtest.run(["verify", "inc"], state_dir=str(tmp_path / "state"))
    assert v.code == 0, v


def test_command_dies_when_the_whole_run_group_is_killed(tmp_path):
    # the supervisor dies too, so only the parent-death signal is left
    p, marker, tl = start_orphan(tmp_path, new_session=True)
    os.killpg(p.pid, signal.SIGKILL)
    p.communicate(timeout=20)
    time.sleep(4)
    assert not os.path.exists(marker), "the command acted after its run was killed"


def test_a_command_timeout_still_kills_its_group(tmp_path):
    book = rbtest.write(str(tmp_path / "orphan.lua"),
                        ORPHAN.replace("OPTS", ', { timeout = "0.5s" }'))
    marker = str(tmp_path / "MARKER")
    t0 = time.time()
    r = rbtest.run(["exec", book, "--incident", "inc", "--var", "marker=" + marker])
    assert r.code == 1, r
    assert time.time() - t0 < 2.0, r
    time.sleep(3)
    assert not os.path.exists(marker), "the timed-out command's shell acted"
    failed = [e for e in r.timeline("inc") if e["event"] == "failed" and
              e["detail"].get("op") == "cmd"]
    assert failed and failed[0]["detail"]["timed_out"] is True
    assert "timed out after" in failed[0]["detail"]["error"]


ENV_BOOK = """local cmd = require "cmd"
return runbook {
  name = "envy", title = "Env", start = "look",
  steps = {
    look = action { title = "Look", run = function(ctx)
      local r = cmd.read({"printenv"})
      print(r.stdout)
      ctx.env = r.stdout
      EXTRA
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""

ENV_CONF = """[deploy.unused]
source = kubernetes
api_url = http://127.0.0.1:9
token_env = UNRESOLVED_SECRET
namespace = ns
deployment = d

[flags.used]
provider = unleash
url = http://127.0.0.1:9
token_env = PASSED_SECRET
"""


def env_run(tmp_path, extra="", conf_extra="", env=None):
    book = rbtest.write(str(tmp_path / "envy.lua"), ENV_BOOK.replace("EXTRA", extra))
    conf = rbtest.write(str(tmp_path / "runbook.conf"), ENV_CONF + conf_extra)
    full = {"UNRESOLVED_SECRET": "s3cr3t-value", "PASSED_SECRET": "p4ssed-s3cret",
            "ALLOWED_VAR": "allowed-value", "OTHER_VAR": "other-value"}
    full.update(env or {})
    return rbtest.run(["--config", conf, "exec", book, "--incident", "inc"],
                      state_dir=str(tmp_path / "state"), env=full)


def everything(r):
    """stdout, stderr and every file of the state dir (timeline, logs, ...)."""
    text = r.stdout + r.stderr
    for root, _, files in os.walk(r.state_dir):
        for f in files:
            with open(os.path.join(root, f), errors="replace") as fh:
                text += fh.read()
    return text


def test_an_unresolved_secret_never_reaches_a_command(tmp_path):
    r = env_run(tmp_path)
    assert r.code == 0, r
    assert "s3cr3t-value" not in everything(r)
    assert "UNRESOLVED_SECRET" not in r.stdout
    # the minimal base is there, the rest is not
    assert "PATH=" in r.stdout and "HOME=" in r.stdout
    assert "OTHER_VAR" not in r.stdout and "ALLOWED_VAR" not in r.stdout


def test_an_allow_listed_variable_reaches_the_command(tmp_path):
    r = env_run(tmp_path, conf_extra="\n[cmd]\nenv_allow = ALLOWED_VAR, LC_NOTSET\n")
    assert r.code == 0, r
    assert "ALLOWED_VAR=allowed-value" in r.stdout
    assert "OTHER_VAR" not in r.stdout
    assert "s3cr3t-value" not in everything(r)


def test_allow_listing_a_variable_a_secret_names_is_refused(tmp_path):
    r = env_run(tmp_path, conf_extra="\n[cmd]\nenv_allow = UNRESOLVED_SECRET\n")
    assert r.code == 1, r
    assert ("[cmd] env_allow: UNRESOLVED_SECRET holds a secret ([deploy.unused] token_env "
            "names it)") in r.stderr
    assert "s3cr3t-value" not in everything(r)


def test_an_explicit_secret_reaches_the_command_and_is_redacted(tmp_path):
    out = str(tmp_path / "seen")
    extra = ('cmd.run({"sh", "-c", "printf %s \\"$TOKEN/$MODE\\" > ' + out +
             '; echo token=$TOKEN"}, { env = { TOKEN = { section = "flags.used", '
             'key = "token" }, MODE = "fast" } })')
    r = env_run(tmp_path, extra=extra)
    assert r.code == 0, r
    with open(out) as f:
        assert f.read() == "p4ssed-s3cret/fast"
    assert "p4ssed-s3cret" not in everything(r)
    tl = r.timeline("inc")
    started = [e for e in tl if e["event"] == "started" and e["detail"].get("op") == "cmd"]
    assert started[0]["detail"]["env"] == ["MODE", "TOKEN"]
    finished = [e for e in tl if e["event"] == "finished" and e["detail"].get("op") == "cmd"
                and "token=" in e["detail"]["stdout_tail"]]
    assert finished[0]["detail"]["stdout_tail"] == "token=[REDACTED]\n"
    # the explicit variables went to that command only
    assert "TOKEN=" not in r.stdout.split("token=")[0]


def test_a_bad_env_option_is_refused_before_anything_runs(tmp_path):
    for env, want in [('{ TOKEN = true }', "TOKEN is a boolean"),
                      ('{ ["A-B"] = "x" }', "the keys are variable names"),
                      ('{ T = { section = "flags.used" } }', "T needs both section= and key="),
                      ('{ T = { section = "flags.used", key = "token", x = 1 } }',
                       "got field 'x'"),
                      ('"TOKEN=1"', "option 'env' must be a table")]:
        extra = 'cmd.run({"true"}, { env = ' + env + ' })'
        r = env_run(tmp_path, extra=extra)
        assert r.code == 1, (env, r)
        assert want in r.stderr, (env, r)
        starts = [e for e in r.timeline("inc") if e["event"] == "started"
                  and e["detail"].get("command") == ["true"]]
        assert not starts, env


def test_a_secret_that_cannot_be_read_means_nothing_started(tmp_path):
    extra = ('cmd.run({"true"}, { env = { T = { section = "flags.used", key = "token" } } })')
    r = env_run(tmp_path, extra=extra, env={"PASSED_SECRET": ""})
    assert r.code == 1, r
    assert "environment variable PASSED_SECRET (named by token_env) is empty" in r.stderr
    assert not [e for e in r.timeline("inc") if e["event"] == "started"
                and e["detail"].get("command") == ["true"]]
