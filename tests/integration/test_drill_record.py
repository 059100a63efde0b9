"""Record and replay: `runbook exec --dry-run --record FILE` against the real
Prometheus and sshd of the harness saves every read's answer as a call-level
scenario expecting the path taken; the drill replays it offline on the same
path, and an edited answer takes another one, which `runbook test` reports."""
import json
import os
import shutil

import pytest

import httpservers as hs
import rbtest
import sshd

SECRET = "s3cr3t-prom-token-4b1d"

RUNBOOK = '''
local cmd = require "cmd"
local http = require "http"
local prom = require "prom"
local ssh = require "ssh"

return runbook {
  name = "record-demo", title = "Record demo", start = "errors",
  params = { hosts = { default = "app" }, motd = { default = "" }, page = { default = "" },
             threshold = { type = "number", default = 0.01 } },
  steps = {
    errors = check {
      title = "Error ratio above threshold?",
      run = function(ctx)
        ctx.motd_text = cmd.read({ "cat", ctx.motd }).stdout
        local page = http.get(ctx.page, { query = { q = "ratio" } })
        assert(page.body:find("checkout_error_ratio", 1, true), "unexpected page")
        return prom.value("checkout_error_ratio") > ctx.threshold
      end,
      on = { [true] = "restart", [false] = "disk" },
    },
    disk = check {
      title = "Any host over 90% disk?",
      run = function(ctx)
        local r = ssh.read(ctx.hosts, "echo 12")
        for _, h in ipairs(r.hosts) do
          if tonumber(h.stdout) > 90 then return true end
        end
        return false
      end,
      on = { [true] = "cleanup", [false] = "healthy" },
    },
    cleanup = action {
      title = "Clean up",
      run = function(ctx) return ssh.run(ctx.hosts, "echo cleaned") end,
      next = "cleaned",
    },
    restart = escalate { title = "Restart", to = "oncall", message = "errors" },
    cleaned = resolved { title = "Cleaned up" },
    healthy = resolved { title = "Healthy" },
  },
}
'''


@pytest.fixture(scope="module")
def systems(tmp_path_factory):
    exp = hs.Exporter()
    prom = hs.Prometheus(exp, str(tmp_path_factory.mktemp("prom")))
    prom.exporter_url = "http://127.0.0.1:%d" % exp.port
    cluster = sshd.Cluster(2)
    cluster.write_known_hosts()
    for s in cluster.servers:
        s.start()
    yield prom, cluster
    cluster.stop()
    prom.close()
    exp.close()


def recorded(tmp_path, systems):
    prom, cluster = systems
    page = prom.exporter_url + "/metrics"
    cfg = str(tmp_path / "runbook.conf")
    with open(cluster.config()) as f:
        text = f.read()
    rbtest.write(cfg, text + "\n[prom]\nurl = %s\ntoken_env = RB_TEST_PROM_TOKEN\n" % prom.url)
    rb = rbtest.write(str(tmp_path / "rb" / "record-demo.lua"), RUNBOOK)
    motd = rbtest.write(str(tmp_path / "motd"), "welcome; token %s\n" % SECRET)
    rec = str(tmp_path / "recorded.json")
    r = rbtest.run(["--config", cfg, "exec", rb, "--dry-run", "--record", rec,
                    "--incident", "REC", "--var", "motd=" + motd, "--var", "page=" + page],
                   env={"RB_TEST_PROM_TOKEN": SECRET})
    return r, rb, rec, motd, page


def test_a_dry_run_records_every_read_as_a_scenario(tmp_path, systems):
    r, rb, rec, motd, page = recorded(tmp_path, systems)
    assert r.code == 0, r
    text = open(rec).read()
    assert SECRET not in text
    s = json.loads(text)
    assert s["expect"] == {"outcome": "resolved", "path": ["errors", "disk", "healthy"]}
    assert s["vars"] == {"motd": motd, "page": page}
    got = s["calls"]["http"]
    assert [(h["method"], h["url"], h["status"]) for h in got] == [("GET", page + "?q=ratio", 200)]
    assert got[0]["headers"] == {"content-type": "text/plain; version=0.0.4"}
    assert "checkout_error_ratio 0.003" in got[0]["body"]
    assert s["calls"]["prom"] == [{"query": "checkout_error_ratio", "value": 0.003}]
    assert s["calls"]["cmd"] == [{"argv": ["cat", motd], "exit": 0,
                                  "stdout": "welcome; token [REDACTED]\n", "stderr": ""}]
    names = [sv.name for sv in systems[1].servers]
    assert s["inventory"] == {"app": names}
    assert s["calls"]["ssh"] == [{"host": n, "command": "echo 12", "exit": 0,
                                  "stdout": "12\n", "stderr": ""} for n in names]
    # prom's own HTTP request is kept as the query's number, not as an http answer
    assert "/api/v1/query" not in json.dumps(got)


def test_the_recording_replays_offline_on_the_same_path(tmp_path, systems):
    r, rb, rec, _, _ = recorded(tmp_path, systems)
    assert r.code == 0, r
    # no config at all: no Prometheus URL, no inventory, no known_hosts
    d = rbtest.run(["drill", rb, "--scenario", rec, "--incident", "REPLAY"])
    assert d.code == 0, d
    fin = [e for e in d.timeline("REPLAY") if e["event"] == "finished" and e["step"] is None]
    assert fin[0]["detail"]["path"] == ["errors", "disk", "healthy"]
    assert fin[0]["detail"]["outcome"] == "resolved"


def test_an_edited_answer_takes_another_path_and_runbook_test_says_so(tmp_path, systems):
    r, rb, rec, _, _ = recorded(tmp_path, systems)
    assert r.code == 0, r
    sdir = tmp_path / "rb" / "scenarios" / "record-demo"
    os.makedirs(sdir)
    shutil.copy(rec, sdir / "recorded.json")
    s = json.load(open(rec))
    s["calls"]["ssh"][1]["stdout"] = "97\n"  # the second host's disk is nearly full
    rbtest.write(str(sdir / "disk-full.json"), json.dumps(s))
    t = rbtest.run(["test", rb])
    assert t.code == 1, t
    lines = t.stdout.splitlines()
    assert lines[0] == ('FAIL record-demo/disk-full: expected path ["errors","disk","healthy"], '
                        'got ["errors","disk","cleanup","cleaned"]'), t
    assert lines[1].startswith("ok record-demo/recorded ("), t
    assert lines[-1] == "1 passed, 1 failed", t


def test_record_is_an_option_of_a_dry_run(tmp_path):
    rb = rbtest.write(str(tmp_path / "rb" / "record-demo.lua"), RUNBOOK)
    r = rbtest.run(["exec", rb, "--record", str(tmp_path / "x.json")])
    assert r.code == 2, r
    assert "--record is an option of exec --dry-run" in r.stderr, r
    assert not os.path.exists(tmp_path / "x.json")


CLOCK = '''
local prom = require "prom"
return runbook {
  name = "clock", title = "Clock", start = "start",
  steps = {
    start = check { title = "Start",
      run = function(ctx) ctx.t0 = math.floor(prom.value("time()")); return true end,
      on = { [true] = "tick", [false] = "late" } },
    tick = wait { title = "Two seconds on Prometheus's clock",
      until_ = function(ctx) return math.floor(prom.value("time() + 0")) >= ctx.t0 + 2 end,
      every = "1s", timeout = "20s", on = { [true] = "done", [false] = "late" } },
    done = resolved { title = "done" },
    late = escalate { title = "late", to = "x", message = "late" } } }
'''


def test_a_wait_is_recorded_poll_by_poll_and_replays_its_polls(tmp_path, systems):
    prom, _ = systems
    cfg = rbtest.write(str(tmp_path / "runbook.conf"), "[prom]\nurl = %s\n" % prom.url)
    rb = rbtest.write(str(tmp_path / "rb" / "clock.lua"), CLOCK)
    rec = str(tmp_path / "clock.json")
    r = rbtest.run(["--config", cfg, "exec", rb, "--dry-run", "--record", rec,
                    "--incident", "CLK"])
    assert r.code == 0, r
    s = json.load(open(rec))
    tick = [e for e in r.timeline("CLK") if e["step"] == "tick" and e["event"] == "decision"]
    polls = tick[0]["detail"]["polls"]
    vals = [c for c in s["calls"]["prom"] if c["query"] == "time() + 0"][0]["values"]
    assert len(vals) == polls >= 2, (vals, polls)
    assert vals == sorted(vals) and vals[-1] > vals[0], vals
    d = rbtest.run(["drill", rb, "--scenario", rec, "--incident", "CLK2"])
    assert d.code == 0, d
    again = [e for e in d.timeline("CLK2") if e["step"] == "tick" and e["event"] == "decision"]
    assert again[0]["detail"]["polls"] == polls and again[0]["detail"]["simulated"]


DEPLOYED = '''
local deploy = require "deploy"
return runbook {
  name = "deployed", title = "Deployed", start = "recent",
  steps = {
    recent = check { title = "Deploy in the last 2 hours?",
      run = function(ctx)
        local d = deploy.recent("checkout", { within = "2h" })
        if d then ctx.rev = d.revision end
        return d ~= nil and d.message == "checkout v2.3"
      end,
      on = { [true] = "yes", [false] = "no" } },
    yes = resolved { title = "yes" }, no = resolved { title = "no" } } }
'''


def test_a_deploy_read_is_recorded_as_the_deploy_not_its_git_log(tmp_path):
    from test_deploy_notify import git
    repo = str(tmp_path / "repo")
    os.makedirs(repo)
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "checkout v2.3")
    cfg = rbtest.write(str(tmp_path / "runbook.conf"),
                       "[deploy.checkout]\nsource = git\nrepo = %s\n" % repo)
    rb = rbtest.write(str(tmp_path / "rb" / "deployed.lua"), DEPLOYED)
    rec = str(tmp_path / "deployed.json")
    r = rbtest.run(["--config", cfg, "exec", rb, "--dry-run", "--record", rec])
    assert r.code == 0, r
    s = json.load(open(rec))
    assert list(s["calls"]) == ["deploy"], s  # git's cmd.read is not recorded apart
    d = s["calls"]["deploy"][0]
    assert (d["op"], d["service"], d["value"]["message"], d["value"]["author"]) == \
        ("recent", "checkout", "checkout v2.3", "Ada")
    assert s["expect"]["path"] == ["recent", "yes"]
    # replayed with no config: no [deploy] section, no repository
    assert rbtest.run(["drill", rb, "--scenario", rec]).code == 0
    s["calls"]["deploy"][0]["value"] = None  # no deploy in the window
    rbtest.write(rec, json.dumps(s))
    m = rbtest.run(["drill", rb, "--scenario", rec])
    assert m.code == 6 and 'got path      ["recent","no"]' in m.stderr, m


FLAGGED = '''
local flags = require "flags"
return runbook {
  name = "flagged", title = "Flagged", start = "on",
  steps = {
    on = check { title = "Beta on?", run = function() return flags.get("beta") end,
      on = { [true] = "off", [false] = "done" } },
    off = action { title = "Turn beta off", run = function() return flags.set("beta", false) end,
      next = "done" },
    done = resolved { title = "done" } } }
'''


def test_a_flag_read_is_recorded_as_its_state_and_replays_without_config(tmp_path):
    fake = hs.FakeServer()
    try:
        fake.expect("GET", "/flags/beta", json_body={"data": {"state": "on"}})
        fake.expect("GET", "/flags/beta", json_body={"data": {"state": "on"}})
        cfg = rbtest.write(str(tmp_path / "runbook.conf"),
                           "[flags.gen]\nprovider = generic\nurl = %s\n"
                           "get_url = %s/flags/{name}\nset_url = %s/flags/{name}/{environment}\n"
                           "set_method = PUT\nstate_path = data.state\nenvironment = prod\n"
                           "token_env = RB_FLAG_TOKEN\n" % (fake.url, fake.url, fake.url))
        rb = rbtest.write(str(tmp_path / "rb" / "flagged.lua"), FLAGGED)
        rec = str(tmp_path / "flagged.json")
        r = rbtest.run(["--config", cfg, "exec", rb, "--dry-run", "--record", rec],
                       env={"RB_FLAG_TOKEN": SECRET})
        assert r.code == 0, r
        assert [q["method"] for q in fake.requests] == ["GET", "GET"]  # the PUT is not sent
    finally:
        fake.close()
    text = open(rec).read()
    assert SECRET not in text
    s = json.loads(text)
    assert s["calls"] == {"flags": [{"op": "get", "flag": "beta", "state": True}]}, s
    assert s["expect"]["path"] == ["on", "off", "done"]
    d = rbtest.run(["drill", rb, "--scenario", rec, "--incident", "FL"])
    assert d.code == 0, d
    w = [e for e in d.timeline("FL") if e["event"] == "would_run"][0]["detail"]
    assert (w["flag"], w["before"], w["wanted"]) == ("beta", True, False)
