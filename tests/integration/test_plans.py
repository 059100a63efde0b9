"""Plans (docs/plans.md): a dry-run saves its path and writes; `exec --plan`
follows it against a real sshd and a recording HTTP server on loopback, and
refuses before any write when the world, the runbook or the plan's age no
longer fit. The server counts what really arrived."""
import http.server
import json
import os
import re
import socketserver
import subprocess
import threading
import time
import urllib.request

import pytest

import rbtest
import sshd

BOOK = """local http = require "http"
local ssh = require "ssh"
return runbook {
  name = "plan-test", title = "Plan test", start = "look",
  approval_policy = { min = 1, from = { "root" }, not_self = false },
  params = {
    base = { description = "the recording server" },
    version = { default = "v41" },
    read_target = { type = "boolean", default = false },
  },
  steps = {
    look = check {
      title = "Error rate above 1%%?",
      run = function(ctx) return tonumber(http.get(ctx.base .. "/metric").body) > 0.01 end,
      on = { [true] = "rollback", [false] = "fine" },
    },
    rollback = action {
      title = "Roll back", %(approval)s
      run = function(ctx)
        local to = ctx.version
        if ctx.read_target then to = http.get(ctx.base .. "/target").body end
        http.post(ctx.base .. "/rollback", { json = { service = "checkout", to = to } })
        ssh.run("app", "touch %(marker)s")
        return true
      end,
      next = "done",
    },
    fine = resolved { title = "Nothing to do" },
    done = resolved { title = "Rolled back" },
  },
}
"""


class Recorder:
    """A recording HTTP server (Python, loopback): GET /metric answers the
    value the test sets; every other request is recorded and answered 200."""

    def __init__(self):
        self.metric = "0.05"
        self.targets = []  # /target answers these in turn, then the last again
        self.flags = {}  # the generic flag provider's states, by name
        self.writes = []
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, body, ctype="text/plain"):
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path.startswith("/flag/"):
                    on = rec.flags.get(self.path[len("/flag/"):], False)
                    self._reply(json.dumps({"enabled": on}).encode(), "application/json")
                    return
                if self.path == "/target":
                    t = rec.targets.pop(0) if len(rec.targets) > 1 else rec.targets[0]
                    self._reply(t.encode())
                    return
                self._reply(rec.metric.encode())

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                rec.writes.append((self.command, self.path, body))
                if self.path.startswith("/flag/") and self.path.endswith("/set"):
                    rec.flags[self.path[len("/flag/"):-len("/set")]] = json.loads(body)["on"]
                self._reply(b"ok")

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def cluster():
    c = sshd.Cluster(1)
    yield c
    c.stop()


@pytest.fixture
def world(cluster, tmp_path):
    srv = Recorder()
    marker = os.path.join(str(tmp_path), "rolled-back")
    book = rbtest.write(os.path.join(str(tmp_path), "plan-test.lua"),
                        BOOK % {"approval": "", "marker": marker})
    with open(cluster.config()) as f:
        conf = rbtest.write(os.path.join(str(tmp_path), "runbook.conf"), f.read())
    w = {"srv": srv, "book": book, "conf": conf, "marker": marker,
         "state": os.path.join(str(tmp_path), "state"), "tmp": str(tmp_path)}
    yield w
    srv.close()


def run(w, *args, conf=None):
    return rbtest.run(["--config", conf or w["conf"]] + list(args), state_dir=w["state"],
                      timeout=90)


def dry_run(w, *extra):
    r = run(w, "exec", w["book"], "--dry-run", "--incident", "INC-1",
            "--var", "base=" + w["srv"].url, *extra)
    assert r.code == 0, r
    plan_id = [line.split()[1] for line in r.stdout.splitlines()
               if line.startswith("plan: ")][0]
    return r, plan_id


def load_plan(w, plan_id):
    with open(os.path.join(w["state"], "runs", plan_id + ".plan.json")) as f:
        return json.load(f)


def test_dry_run_saves_the_plan(world):
    r, plan_id = dry_run(world)
    assert "execute it with: runbook exec plan-test --plan %s" % plan_id in r.stdout, r
    plan = load_plan(world, plan_id)
    assert plan["mode"] == "dry-run" and plan["finished"] and plan["incident"] == "INC-1"
    assert [(e["step"], e.get("branch")) for e in plan["path"]] == [
        ("look", "rollback"), ("rollback", None), ("done", None)]
    assert plan["path"][0]["value"] is True
    ops = [(x["op"], x.get("method"), x.get("host"), x["step"]) for x in plan["writes"]]
    assert ops == [("http", "POST", None, "rollback"), ("ssh", None, "app-1", "rollback")]
    assert plan["writes"][0]["url"] == world["srv"].url + "/rollback"
    assert plan["writes"][0]["body"] == {"service": "checkout", "to": "v41"}
    assert plan["writes"][1]["command"] == "touch " + world["marker"]
    assert all(p["ok"] for p in plan["preflight"]) and len(plan["preflight"]) == 2
    assert plan["params"] == {"base": world["srv"].url, "version": "v41",
                              "read_target": False}
    assert len(plan["digest"]) == 64
    fin = [e for e in r.timeline("INC-1") if e["event"] == "finished" and e["step"] is None]
    assert fin[-1]["detail"]["plan"]["id"] == plan_id
    assert world["srv"].writes == [] and not os.path.exists(world["marker"])


def test_plan_with_unchanged_world_executes_the_same_writes(world):
    _, plan_id = dry_run(world)
    r = run(world, "exec", "plan-test", "--plan", plan_id,
            conf=conf_with_path(world))
    assert r.code == 0, r
    assert "the dry-run pass matches" in r.stdout, r
    srv = world["srv"]
    assert [(m, p) for m, p, _ in srv.writes] == [("POST", "/rollback")]
    assert json.loads(srv.writes[0][2]) == {"service": "checkout", "to": "v41"}
    assert os.path.exists(world["marker"])
    ev = r.timeline("INC-1")
    runs = {e["run"]: e["mode"] for e in ev if e["event"] == "started" and e["step"] is None}
    assert sorted(runs.values()) == ["dry-run", "dry-run", "exec"], runs
    fin = [e for e in ev if e["event"] == "finished" and e["step"] is None
           and e["mode"] == "exec"][0]
    assert fin["detail"]["plan"]["id"] == plan_id and fin["detail"]["outcome"] == "resolved"


def conf_with_path(w):
    """The config, with the test's dir as the runbook path (exec by name)."""
    with open(w["conf"]) as f:
        text = f.read()
    return rbtest.write(os.path.join(w["tmp"], "named.conf"),
                        '[core]\nrunbook_path = "%s"\n%s' % (w["tmp"], text))


def test_plan_refused_when_a_check_now_answers_differently(world):
    _, plan_id = dry_run(world)
    world["srv"].metric = "0.001"  # the error rate recovered in between
    r = run(world, "exec", world["book"], "--plan", plan_id)
    assert r.code == 6, r
    assert "refused before any write" in r.stderr, r
    assert "the path differs at step 1" in r.stderr, r
    assert "plan: 'look' (check, decision) -> branch 'rollback' (read true)" in r.stderr, r
    assert "now:  'look' (check, decision) -> branch 'fine' (read false)" in r.stderr, r
    assert world["srv"].writes == [] and not os.path.exists(world["marker"])
    modes = [e["mode"] for e in r.timeline("INC-1") if e["event"] == "started"
             and e["step"] is None]
    assert "exec" not in modes, modes


def test_plan_refused_when_a_write_now_differs(world):
    _, plan_id = dry_run(world)
    with open(world["book"]) as f:
        src = f.read()
    # the same runbook, but a parameter the write uses is given differently
    r = run(world, "exec", world["book"], "--plan", plan_id, "--var", "version=v40")
    assert r.code == 2, r
    assert "--var version=v40 differs from the plan's version=v41" in r.stderr, r
    assert world["srv"].writes == []
    assert src  # unchanged


def test_plan_refused_when_a_write_would_now_differ(world):
    srv = world["srv"]
    srv.targets = ["v41", "v39"]  # the version to roll back to moved after the plan
    _, plan_id = dry_run(world, "--var", "read_target=true")
    r = run(world, "exec", world["book"], "--plan", plan_id)
    assert r.code == 6, r
    assert "refused before any write" in r.stderr and "write 1 differs:" in r.stderr, r
    assert ('plan: [rollback] http POST %s/rollback' % srv.url) in r.stderr, r
    assert 'body {"service":"checkout","to":"v41"}' in r.stderr, r
    assert 'body {"service":"checkout","to":"v39"}' in r.stderr, r
    assert srv.writes == [] and not os.path.exists(world["marker"])


def test_a_write_that_changes_after_the_check_pass_is_not_sent(world):
    """The race: the world changes between the dry-run pass and the real
    run. The real run compares each write with the plan before sending it."""
    srv = world["srv"]
    srv.targets = ["v41", "v41", "v39"]  # plan, dry-run pass, then the real run
    _, plan_id = dry_run(world, "--var", "read_target=true")
    r = run(world, "exec", world["book"], "--plan", plan_id)
    assert r.code == 6, r
    assert "the dry-run pass matches" in r.stdout, r
    assert "refused by the plan: write 1 differs: plan [rollback] http POST %s/rollback" \
        % srv.url in r.stderr, r
    assert srv.writes == [] and not os.path.exists(world["marker"])
    ev = r.timeline("INC-1")
    notes = [e for e in ev if e["event"] == "note" and "plan_diverged" in e["detail"]]
    assert notes and notes[0]["step"] == "rollback" and notes[0]["mode"] == "exec"
    fin = [e for e in ev if e["step"] is None and e["mode"] == "exec"
           and e["event"] in ("finished", "failed")][0]
    assert "write 1 differs" in fin["detail"]["plan_diverged"]


def test_plan_refused_when_the_runbook_was_edited(world):
    _, plan_id = dry_run(world)
    with open(world["book"], "a") as f:
        f.write("-- edited\n")
    r = run(world, "exec", world["book"], "--plan", plan_id)
    assert r.code == 4, r
    assert "the runbook %s changed since plan %s was made" % (world["book"], plan_id) \
        in r.stderr, r
    assert world["srv"].writes == [] and not os.path.exists(world["marker"])


def test_stale_plan_refused(world):
    _, plan_id = dry_run(world)
    time.sleep(1.2)
    conf = rbtest.write(os.path.join(world["tmp"], "stale.conf"),
                        open(world["conf"]).read() + "\n[plan]\nmax_age = 1s\n")
    r = run(world, "exec", world["book"], "--plan", plan_id, conf=conf)
    assert r.code == 4, r
    assert "plan %s is stale" % plan_id in r.stderr and "max_age is 1.00 s" in r.stderr, r
    assert world["srv"].writes == []


def test_only_a_finished_dry_run_is_a_plan(world):
    r = run(world, "exec", world["book"], "--incident", "INC-2", "--var",
            "base=" + world["srv"].url)
    assert r.code == 0, r
    exec_run = [e["run"] for e in r.timeline("INC-2") if e["event"] == "started"][0]
    n = len(world["srv"].writes)
    r = run(world, "exec", world["book"], "--plan", exec_run)
    assert r.code == 2 and "was an exec, not a dry-run" in r.stderr, r
    r = run(world, "exec", world["book"], "--plan", "nosuchrun")
    assert r.code == 2 and "no run nosuchrun" in r.stderr, r
    assert len(world["srv"].writes) == n


def http_approvals(tmp, state, book):
    """The listener's GET /approvals, as an approver sees it."""
    conf = rbtest.write(os.path.join(tmp, "serve.conf"),
                        "[serve]\ntoken_env = RB_PLAN_T\nhmac_key_env = RB_PLAN_H\n"
                        "[approver.alice]\ntoken_env = RB_PLAN_A\n")
    rules = rbtest.write(os.path.join(tmp, "rules.json"), json.dumps(
        [{"match": {"alertname": "Never"}, "runbook": "plan-test", "mode": "dry-run"}]))
    os.makedirs(os.path.join(tmp, "runbooks"), exist_ok=True)
    os.symlink(book, os.path.join(tmp, "runbooks", "plan-test.lua"))  # rules name runbooks
    log = os.path.join(tmp, "serve.log")
    env = dict(os.environ, RB_PLAN_T="t" * 32, RB_PLAN_H="h" * 32, RB_PLAN_A="a" * 32)
    with open(log, "w") as logf:
        p = subprocess.Popen([rbtest.RUNBOOK_BIN, "--config", conf, "--state-dir", state,
                              "serve", "--listen", "127.0.0.1:0", "--rules", rules],
                             stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                             env=env, cwd=tmp)
    try:
        port, deadline = None, time.time() + 30
        while port is None and time.time() < deadline and p.poll() is None:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(log).read())
            port = int(m.group(1)) if m else None
            time.sleep(0.05)
        assert port, open(log).read()
        req = urllib.request.Request("http://127.0.0.1:%d/approvals" % port,
                                     headers={"Authorization": "Bearer " + "a" * 32})
        with urllib.request.urlopen(req, timeout=20) as r:
            return json.loads(r.read().decode())
    finally:
        p.terminate()
        p.wait(timeout=20)


def test_a_dry_run_that_failed_is_not_a_plan(world):
    world["srv"].metric = "not a number"  # the check fails: the dry-run ends failed
    r = run(world, "exec", world["book"], "--dry-run", "--incident", "INC-3",
            "--var", "base=" + world["srv"].url)
    assert r.code == 1, r
    plan_id = [line.split()[1] for line in r.stdout.splitlines()
               if line.startswith("plan: ")][0]
    assert load_plan(world, plan_id)["finished"] is False
    assert "not executable: the dry-run did not finish" in r.stdout, r
    world["srv"].metric = "0.05"
    r = run(world, "exec", world["book"], "--plan", plan_id)
    assert r.code == 4, r
    assert "dry-run %s did not finish (it ended failed)" % plan_id in r.stderr, r
    assert world["srv"].writes == []


def test_approval_request_shows_the_plan(cluster, tmp_path):
    srv = Recorder()
    marker = os.path.join(str(tmp_path), "rolled-back")
    book = rbtest.write(os.path.join(str(tmp_path), "plan-test.lua"),
                        BOOK % {"approval": "approval = true,", "marker": marker})
    with open(cluster.config()) as f:
        conf = rbtest.write(os.path.join(str(tmp_path), "runbook.conf"), f.read())
    w = {"conf": conf, "state": os.path.join(str(tmp_path), "state"), "srv": srv,
         "book": book}
    try:
        _, plan_id = dry_run(w)
        plan = load_plan(w, plan_id)
        p = subprocess.Popen([rbtest.RUNBOOK_BIN, "--state-dir", w["state"], "--config",
                              conf, "exec", book, "--plan", plan_id],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True,
                             env=dict(os.environ, NO_COLOR="1"))
        listed = None
        deadline = time.time() + 30
        while time.time() < deadline:
            r = rbtest.run(["approvals"], state_dir=w["state"])
            if "plan " in r.stdout:
                listed = r.stdout
                break
            time.sleep(0.1)
        assert listed, r
        assert "plan %s (digest %s): 2 writes remain" % (plan_id, plan["digest"][:12]) \
            in listed, listed
        assert "[rollback] http POST %s/rollback" % srv.url in listed, listed
        assert "[rollback] ssh app-1: touch %s" % marker in listed, listed
        assert srv.writes == []
        pending = http_approvals(str(tmp_path), w["state"], book)
        assert [x["plan"]["id"] for x in pending] == [plan_id], pending
        assert pending[0]["plan"]["digest"] == plan["digest"]
        assert pending[0]["plan"]["writes_remaining"][1] == "[rollback] ssh app-1: touch " \
            + marker
        run_id, step = listed.split()[:2]
        r = rbtest.run(["approve", run_id, step], state_dir=w["state"])
        assert r.code == 0, r
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, out + err
        assert "planned writes remain" in out, out
        assert len(srv.writes) == 1 and os.path.exists(marker)
        ev = rbtest.Result(subprocess.CompletedProcess([], 0, "", ""), w["state"]).timeline(
            "INC-1")
        ok = [e for e in ev if e["event"] == "approved"][0]
        assert ok["detail"]["plan"] == plan_id
        assert ok["detail"]["plan_digest"] == plan["digest"]
        req = [e for e in ev if e["event"] == "approval_requested"][0]
        assert req["detail"]["plan"]["id"] == plan_id
        assert len(req["detail"]["plan"]["writes_remaining"]) == 2
    finally:
        srv.close()


FLAG_BOOK = """local flags = require "flags"
return runbook {
  name = "flag-plan", title = "Flag plan", start = "flip",
  params = { base = { description = "unused: the flag provider's URL is in the config" } },
  steps = {
    flip = action { title = "Payment fallback on",
      run = function(ctx) return flags.set("checkout-fallback", true).wanted end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def test_a_flag_change_is_planned_from_and_to_and_refused_when_its_state_moved(tmp_path):
    srv = Recorder()
    try:
        book = rbtest.write(os.path.join(str(tmp_path), "flag-plan.lua"), FLAG_BOOK)
        conf = rbtest.write(os.path.join(str(tmp_path), "runbook.conf"),
                            "[flags.gen]\nprovider = generic\nurl = %s\nget_url = %s/flag/{name}\n"
                            "set_url = %s/flag/{name}/set\nset_body = {\"on\": {on}}\n"
                            "environment = production\n" % (srv.url, srv.url, srv.url))
        w = {"conf": conf, "state": os.path.join(str(tmp_path), "state"), "srv": srv,
             "book": book}
        _, plan_id = dry_run(w)
        (write,) = load_plan(w, plan_id)["writes"]
        assert write["op"] == "http" and write["url"] == srv.url + "/flag/checkout-fallback/set"
        assert write["flag"] == {"flag": "checkout-fallback", "environment": "production",
                                 "from": False, "to": True}
        srv.flags["checkout-fallback"] = True  # someone turned it on in between
        r = run(w, "exec", book, "--plan", plan_id)
        assert r.code == 6 and "write 1 differs" in r.stderr, r
        assert "flag checkout-fallback: false -> true, production" in r.stderr, r
        assert "flag checkout-fallback: true -> true, production" in r.stderr, r
        assert srv.writes == []
        srv.flags["checkout-fallback"] = False
        _, plan_id = dry_run(w)
        r = run(w, "exec", book, "--plan", plan_id)
        assert r.code == 0, r
        assert [(m, p) for m, p, _ in srv.writes] == [("POST", "/flag/checkout-fallback/set")]
        assert srv.flags["checkout-fallback"] is True
    finally:
        srv.close()


PROM_BOOK = """local http = require "http"
local prom = require "prom"
return runbook {
  name = "prom-plan", title = "Prom plan", start = "look",
  params = { base = { description = "the recording server" } },
  steps = {
    look = check { title = "Checkout error ratio above 1%?",
      run = function(ctx) return prom.value("checkout_error_ratio") > 0.01 end,
      on = { [true] = "fix", [false] = "fine" } },
    fix = action { title = "Roll back",
      run = function(ctx) http.post(ctx.base .. "/rollback", { body = "checkout" }) end,
      next = "done" },
    fine = resolved { title = "Fine" },
    done = resolved { title = "Rolled back" },
  },
}
"""


def test_real_prometheus_metric_moves_between_plan_and_exec(tmp_path):
    import httpservers
    exp = httpservers.Exporter()
    prom = httpservers.Prometheus(exp, str(tmp_path))
    srv = Recorder()

    def serve_ratio(v):
        exp.values["checkout_error_ratio"] = v
        httpservers.wait_for(
            lambda: float(prom.query("checkout_error_ratio")[0]["value"][1]) == v, 30,
            "prometheus to scrape %s" % v)

    try:
        book = rbtest.write(os.path.join(str(tmp_path), "prom-plan.lua"), PROM_BOOK)
        conf = rbtest.write(os.path.join(str(tmp_path), "runbook.conf"),
                            "[prom]\nurl = %s\n" % prom.url)
        w = {"conf": conf, "state": os.path.join(str(tmp_path), "state"), "srv": srv,
             "book": book}
        serve_ratio(0.05)
        _, plan_id = dry_run(w)
        serve_ratio(0.002)
        r = run(w, "exec", book, "--plan", plan_id)
        assert r.code == 6, r
        assert "plan: 'look' (check, decision) -> branch 'fix' (read true)" in r.stderr, r
        assert "now:  'look' (check, decision) -> branch 'fine' (read false)" in r.stderr, r
        assert srv.writes == []
        serve_ratio(0.05)
        r = run(w, "exec", book, "--plan", plan_id)
        assert r.code == 0, r
        assert [(m, p, b) for m, p, b in srv.writes] == [("POST", "/rollback", b"checkout")]
    finally:
        srv.close()
        prom.close()
        exp.close()


RUN_BOOK = """local http = require "http"
return runbook {
  name = "run-plan", title = "Names its run", start = "tell",
  params = { base = { description = "the recording server" } },
  steps = {
    tell = action { title = "Tell the pager which run acts",
      run = function(ctx)
        http.post(ctx.base .. "/page/" .. ctx.run, { json = { run = ctx.run, note = "run " .. ctx.run } })
      end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def test_a_write_naming_its_own_run_matches_its_plan(tmp_path):
    """A page names the run that sends it: the plan's run id and the exec's
    differ, and are written as {run} when the two are compared."""
    srv = Recorder()
    try:
        book = rbtest.write(os.path.join(str(tmp_path), "run-plan.lua"), RUN_BOOK)
        conf = rbtest.write(os.path.join(str(tmp_path), "runbook.conf"), "")
        w = {"conf": conf, "state": os.path.join(str(tmp_path), "state"), "srv": srv,
             "book": book}
        _, plan_id = dry_run(w)
        (write,) = load_plan(w, plan_id)["writes"]
        assert write["url"] == "%s/page/%s" % (srv.url, plan_id)
        r = run(w, "exec", book, "--plan", plan_id)
        assert r.code == 0, r
        ((method, path, body),) = srv.writes
        exec_run = [e["run"] for e in r.timeline("INC-1")
                    if e["event"] == "started" and e["mode"] == "exec"][0]
        assert path == "/page/" + exec_run and json.loads(body)["run"] == exec_run
    finally:
        srv.close()
