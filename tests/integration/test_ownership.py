"""One owner per run: a live executor's lease refuses a second resume or exec
(naming the holder), --force is recorded, a run killed before its first step
resumes at start, an in-doubt HTTP write names its request, and a run waiting
at a gate stops at once on `runbook cancel`, SIGTERM or SIGINT."""
import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import rbtest  # noqa: E402

GATE = """local cmd = require "cmd"
return runbook {
  name = "gated", title = "Gated", start = "act",
  params = { log = { required = true } },
  steps = {
    act = action { title = "Touch it", approval = true, run = function(ctx)
      cmd.run({"sh", "-c", "echo x >> " .. ctx.log})
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def env():
    e = dict(os.environ)
    e["NO_COLOR"] = "1"
    e.pop("XDG_CONFIG_HOME", None)
    return e


def start(state, args):
    return subprocess.Popen([rbtest.RUNBOOK_BIN, "--state-dir", state] + args,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env(),
                            start_new_session=True)


def events(state, inc):
    with open(os.path.join(state, "incidents", inc + ".jsonl")) as f:
        # the chain's header line belongs to no run
        return [e for e in (json.loads(line) for line in f if line.strip())
                if e.get("event") != "timeline_header"]


def wait_for(state, inc, pred, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            ev = events(state, inc)
            if any(pred(e) for e in ev):
                return ev
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError("timeline never showed the expected event")


def at_gate(e):
    return e["event"] == "approval_requested"


def gated_run(tmp_path, inc="inc"):
    book = rbtest.write(str(tmp_path / "gated.lua"), GATE)
    state = str(tmp_path / "state")
    log = str(tmp_path / "log")
    p = start(state, ["exec", book, "--incident", inc, "--var", "log=" + log])
    ev = wait_for(state, inc, at_gate)
    return book, state, log, p, ev[0]["run"]


def stop(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.communicate(timeout=20)


def test_second_resume_of_a_live_run_is_refused_naming_the_holder(tmp_path):
    book, state, log, p, run = gated_run(tmp_path)
    try:
        r = rbtest.run(["resume", run], state_dir=state)
        assert r.code == 8, r
        assert "owned by a live process: pid %d" % p.pid in r.stderr, r
        assert "@" in r.stderr and "since" in r.stderr
    finally:
        stop(p)


def test_parallel_resumes_of_an_interrupted_run_one_acts(tmp_path):
    book, state, log, p, run = gated_run(tmp_path)
    os.killpg(p.pid, signal.SIGKILL)  # killed at the gate: nothing was sent
    p.communicate(timeout=20)
    runs = rbtest.run(["runs", "--state", "interrupted"], state_dir=state)
    assert run in runs.stdout, runs
    first = start(state, ["resume", run])
    try:
        wait_for(state, "inc",
                 lambda e: len([x for x in events(state, "inc") if at_gate(x)]) >= 2)
        second = rbtest.run(["resume", run], state_dir=state)
        assert second.code == 8, second
        assert "pid %d" % first.pid in second.stderr, second
        rbtest.run(["approve", run, "act"], state_dir=state)
        out, err = first.communicate(timeout=30)
        assert first.returncode == 0, err
        assert "nothing was sent" in err
    finally:
        stop(first)
    assert open(log).read().split() == ["x"]
    finished = [e for e in events(state, "inc") if e["kind"] == "run" and e["event"] == "finished"]
    assert len(finished) == 1


def test_second_exec_for_one_incident_is_refused_and_force_is_recorded(tmp_path):
    book, state, log, p, run = gated_run(tmp_path)
    try:
        r = rbtest.run(["exec", book, "--incident", "inc", "--var", "log=" + log],
                       state_dir=state)
        assert r.code == 8, r
        assert "already being run by pid" in r.stderr and run in r.stderr, r
        other = rbtest.run(["exec", book, "--incident", "other", "--var", "log=" + log,
                            "--dry-run"], state_dir=state)
        assert other.code == 0, other
        forced = start(state, ["exec", book, "--incident", "inc", "--var", "log=" + log,
                               "--force"])
        ev = wait_for(state, "inc", lambda e: e["event"] == "started" and
                      e["kind"] == "run" and "forced" in e["detail"])
        f = [e for e in ev if e["kind"] == "run" and "forced" in e["detail"]][0]
        assert f["detail"]["forced"]["holder"]["run"] == run
        assert f["detail"]["forced"]["lock"] == "exec/gated/incident=inc"
        stop(forced)
    finally:
        stop(p)


def test_exec_lock_on_an_unknown_parameter_fails_closed(tmp_path):
    book = rbtest.write(str(tmp_path / "gated.lua"), GATE)
    conf = rbtest.write(str(tmp_path / "runbook.conf"), "[core]\nexec_lock = param:service\n")
    r = rbtest.run(["--config", conf, "exec", book, "--var", "log=/dev/null"])
    assert r.code == 3, r
    assert "no parameter 'service'" in r.stderr
    conf = rbtest.write(str(tmp_path / "bad.conf"), "[core]\nexec_lock = incidnet\n")
    r = rbtest.run(["--config", conf, "exec", book, "--var", "log=/dev/null"])
    assert r.code == 3 and "expected 'incident' or 'param:NAME'" in r.stderr, r


def test_run_killed_before_its_first_step_resumes_at_start(tmp_path):
    book = rbtest.write(str(tmp_path / "gated.lua"), GATE.replace("approval = true, ", ""))
    state = str(tmp_path / "state")
    log = str(tmp_path / "log")
    os.makedirs(os.path.join(state, "incidents"))
    run = "20260101-000000-abcdef"
    started = {"ts": "2026-01-01T00:00:00.000Z", "incident": "k", "run": run,
               "runbook": "gated", "step": None, "kind": "run", "event": "started",
               "mode": "exec", "actor": "user:test",
               "detail": {"file": book, "title": "Gated", "params": {"log": log}}}
    with open(os.path.join(state, "incidents", "k.jsonl"), "w") as f:
        f.write(json.dumps(started, separators=(",", ":")) + "\n")
    r = rbtest.run(["resume", run], state_dir=state)
    assert r.code == 0, r
    assert open(log).read().split() == ["x"]
    again = [e for e in events(state, "k") if e["event"] == "started" and e["kind"] == "run"]
    assert again[-1]["detail"]["resumed_at"] == "act"


class Hang(http.server.BaseHTTPRequestHandler):
    """Fault injection: takes the request and never answers in time."""
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Hang.seen.set()
        time.sleep(20)

    def log_message(self, *a):
        pass


def test_in_doubt_http_write_names_the_request(tmp_path):
    Hang.seen = threading.Event()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hang)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/scale" % srv.server_address[1]
    book = rbtest.write(str(tmp_path / "post.lua"), """local http = require "http"
return runbook {
  name = "post", title = "Post", start = "act",
  steps = {
    act = action { title = "Scale", run = function(ctx)
      http.post("%s", { body = "replicas=3" })
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
""" % url)
    state = str(tmp_path / "state")
    p = start(state, ["exec", book, "--incident", "h"])
    try:
        assert Hang.seen.wait(15)
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate(timeout=20)
        run = events(state, "h")[0]["run"]
        r = rbtest.run(["resume", run], state_dir=state)
        assert r.code == 2, r
        digest = hashlib.sha256(b"replicas=3").hexdigest()
        assert "http POST %s body sha256 %s (10 bytes) [IN DOUBT" % (url, digest) in r.stderr, r
        started = [e for e in events(state, "h") if e["event"] == "started" and
                   e["detail"].get("op") == "http"]
        assert started and started[0]["detail"]["body_sha256"] == digest
    finally:
        stop(p)
        srv.shutdown()


def test_cancel_at_a_gate_stops_the_run_and_records_who(tmp_path):
    book, state, log, p, run = gated_run(tmp_path)
    try:
        r = rbtest.run(["cancel", run, "--reason", "wrong service"], state_dir=state)
        assert r.code == 0, r
        assert "it stopped" in r.stdout, r
        p.communicate(timeout=5)
        assert p.returncode == 4
    finally:
        stop(p)
    fin = [e for e in events(state, "inc") if e["kind"] == "run" and e["event"] == "finished"]
    assert fin[0]["detail"]["outcome"] == "aborted"
    assert "cancelled by the operator (" in fin[0]["detail"]["error"]
    assert "wrong service" in fin[0]["detail"]["error"]
    assert not os.path.exists(log)
    runs = rbtest.run(["runs", "--state", "done"], state_dir=state)
    assert run in runs.stdout and "outcome=aborted" in runs.stdout
    pending = rbtest.run(["approvals"], state_dir=state)
    assert run not in pending.stdout


def test_cancel_of_an_interrupted_run_ends_it(tmp_path):
    book, state, log, p, run = gated_run(tmp_path)
    os.killpg(p.pid, signal.SIGKILL)
    p.communicate(timeout=20)
    r = rbtest.run(["cancel", run], state_dir=state)
    assert r.code == 0 and "now ended" in r.stdout, r
    again = rbtest.run(["resume", run], state_dir=state)
    assert again.code != 0 and "already ended" in again.stderr


def sig_at_gate(tmp_path, sig):
    book, state, log, p, run = gated_run(tmp_path)
    t0 = time.monotonic()
    os.kill(p.pid, sig)  # the supervisor only: it passes the signal on
    try:
        out, err = p.communicate(timeout=5)
    finally:
        stop(p)
    took = time.monotonic() - t0
    assert took < 1.0, took
    assert p.returncode == 4, err
    assert "cancelled by the operator" in err
    runs = rbtest.run(["runs"], state_dir=state)
    assert "done" in runs.stdout, runs


def test_sigterm_at_a_gate_ends_the_run_within_a_second(tmp_path):
    sig_at_gate(tmp_path, signal.SIGTERM)


def test_sigint_at_a_gate_ends_the_run_within_a_second(tmp_path):
    sig_at_gate(tmp_path, signal.SIGINT)


def test_runs_rejects_an_unknown_state(tmp_path):
    r = rbtest.run(["runs", "--state", "sleeping"])
    assert r.code == 2 and "--state must be" in r.stderr


SLEEPER = """local cmd = require "cmd"
return runbook {
  name = "sleeper", title = "Sleeper", start = "act",
  params = { pidfile = { required = true } },
  steps = {
    act = action { title = "Sleep long", run = function(ctx)
      cmd.run({"sh", "-c", "echo $$ > " .. ctx.pidfile .. "; exec sleep 30"},
              { timeout = "60s" })
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def test_sigterm_during_a_command_kills_it_and_ends_the_run(tmp_path):
    """A running cmd notices the stop request: it does not run to its own
    60 s timeout, its process is gone, and the timeline says why."""
    book = tmp_path / "sleeper.lua"
    book.write_text(SLEEPER)
    pidfile = str(tmp_path / "pid")
    state = str(tmp_path / "state")
    p = start(state, ["exec", str(book), "--incident", "s", "--var", "pidfile=" + pidfile])
    try:
        wait_for(state, "s", lambda e: e["event"] == "started" and
                 e.get("detail", {}).get("op") == "cmd")
        deadline = time.time() + 10
        while not (os.path.exists(pidfile) and open(pidfile).read().strip()):
            assert time.time() < deadline, "the command never started"
            time.sleep(0.02)
        child = int(open(pidfile).read())
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGTERM)
        out, err = p.communicate(timeout=10)
        took = time.monotonic() - t0
    finally:
        stop(p)
    assert took < 3.0, took
    assert p.returncode != 0, (out, err)
    try:
        os.kill(child, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive, "sleep %d outlived the run" % child
    failed = [e for e in events(state, "s") if e["event"] == "failed" and
              e.get("detail", {}).get("op") == "cmd"]
    assert failed and failed[0]["detail"].get("interrupted") is True, events(state, "s")
    assert "asked to stop" in failed[0]["detail"]["error"]
