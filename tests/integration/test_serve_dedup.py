"""runbook serve: dedup that survives a restart and an alert storm, and the
listener's credentials kept away from the runs it starts (issue 11)."""
import json
import os
import subprocess
import time

import rbtest
from test_serve import HMAC_KEY, TOKEN, Serve, fixture_body

ENV_BOOK = """local cmd = require "cmd"
return runbook {
  name = "alert-env", title = "Show the environment (test)", start = "look",
  params = { out = { required = true } },
  steps = {
    look = check { title = "What does a run see?", run = function(ctx)
      local r = cmd.read({"printenv"})
      print(r.stdout)
      return r.stdout ~= ""
    end, on = { [true] = "save", [false] = "done" } },
    save = action { title = "Save it", run = function(ctx)
      return cmd.run({"sh", "-c", 'printenv > "$1"', "sh", ctx.out}).code
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def alerts(n, start=0, starts_at="2026-11-22T09:36:08.312Z"):
    return json.dumps({"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "Storm", "n": str(i)},
         "annotations": {}, "startsAt": starts_at, "fingerprint": "storm%05d" % i}
        for i in range(start, start + n)]})


def statuses(body):
    return {r["fingerprint"]: r["status"] for r in json.loads(body)}


def test_restart_keeps_dedup_and_starts_no_second_run(tmp_path):
    s = Serve(tmp_path)
    assert s.port, s.text()
    assert s.post_alerts(fixture_body())[0] == 202
    s.wait_finished(1)
    assert s.stop() == 0, s.text()
    s = Serve(tmp_path)  # the same state dir
    assert s.port, s.text()
    try:
        code, body = s.post_alerts(fixture_body())
        assert code == 202, body
        assert statuses(body)["a3d9a4bfa0d26a05"] == "duplicate"
        m = s.metrics()
        assert m["runbook_runs_started_total"] == 0
        assert m["runbook_dedup_keys"] == 1
        with open(s.out) as f:
            assert f.read() == "checkout\n"  # one run across both listeners
        # a new firing of the same alert (another startsAt) is a new key
        again = json.loads(fixture_body())
        again["alerts"][1]["startsAt"] = "2026-11-22T10:00:00Z"
        code, body = s.post_alerts(json.dumps(again))
        assert statuses(body)["a3d9a4bfa0d26a05"] == "started", body
        s.wait_finished(1)
    finally:
        assert s.stop() == 0, s.text()


def test_restart_while_a_run_is_active_keeps_its_key(tmp_path):
    s = Serve(tmp_path)
    assert s.port, s.text()
    body = json.loads(fixture_body())
    body["alerts"][1]["labels"]["alertname"] = "NeedsApproval"  # waits at its gate
    body = json.dumps(body)
    assert statuses(s.post_alerts(body)[1])["a3d9a4bfa0d26a05"] == "started"
    s.proc.kill()  # no goodbye: the key was made durable before the answer
    s.proc.wait()
    s.logf.close()
    s = Serve(tmp_path)
    assert s.port, s.text()
    try:
        assert statuses(s.post_alerts(body)[1])["a3d9a4bfa0d26a05"] == "duplicate"
    finally:
        s.stop()
        # the first listener's run outlived it at its gate (runs do not die
        # with the listener); end it rather than leave it waiting
        subprocess.run(["pkill", "-f", str(tmp_path)], check=False)


def test_five_thousand_distinct_alerts_keep_every_key(tmp_path):
    rule = {"match": {"alertname": "Storm"}, "runbook": "alert-record", "mode": "dry-run",
            "vars": {"out": "/dev/null"}}
    s = Serve(tmp_path, more_rules=[rule], conf_extra="max_runs = 64\n")
    assert s.port, s.text()
    try:
        held = set()
        for start in range(0, 5000, 100):
            todo = alerts(100, start)
            for _ in range(600):  # a sender retries what got 503 (the queue was full)
                code, body = s.post_alerts(todo)
                assert code in (202, 503), body
                held.update(fp for fp, st in statuses(body).items()
                            if st in ("started", "queued"))
                if code == 202:
                    break
                time.sleep(0.05)
            assert code == 202, body
        assert len(held) == 5000
        s.wait_finished(5000, timeout=300)
        # the storm evicted nothing: every key answers duplicate, the first included
        for start in range(0, 5000, 500):
            code, body = s.post_alerts(alerts(500, start))
            assert code == 202 and set(statuses(body).values()) == {"duplicate"}, body
        m = s.metrics()
        assert m["runbook_dedup_keys"] == 5000
        assert m["runbook_runs_started_total"] == 5000
    finally:
        assert s.stop() == 0, s.text()


def test_store_bound_refuses_with_503_instead_of_forgetting(tmp_path):
    rule = {"match": {"alertname": "Storm"}, "runbook": "alert-record", "mode": "dry-run",
            "vars": {"out": "/dev/null"}}
    s = Serve(tmp_path, more_rules=[rule], conf_extra="dedup_max_keys = 10\n")
    assert s.port, s.text()
    try:
        code, body = s.post_alerts(alerts(10))
        assert code == 202, body
        code, body = s.post_alerts(alerts(1, 10))
        assert code == 503 and statuses(body)["storm00010"] == "rejected", body
        code, body = s.post_alerts(alerts(10))
        assert code == 202 and set(statuses(body).values()) == {"duplicate"}, body
        s.wait_finished(10)
    finally:
        assert s.stop() == 0, s.text()


def test_serve_token_absent_from_a_runs_environment_timeline_and_output(tmp_path):
    out = str(tmp_path / "env.txt")
    rule = {"match": {"alertname": "ShowEnv"}, "runbook": "alert-env", "mode": "exec",
            "vars": {"out": out}}
    s = Serve(tmp_path, more_rules=[rule], books={"alert-env": ENV_BOOK})
    assert s.port, s.text()
    try:
        body = json.dumps({"version": "4", "alerts": [
            {"status": "firing", "labels": {"alertname": "ShowEnv"}, "annotations": {},
             "startsAt": "2026-11-22T09:36:08.312Z", "fingerprint": "env1"}]})
        code, res = s.post_alerts(body)
        assert code == 202, res
        m = s.wait_finished(1)
        assert m['runbook_runs_finished_total{exit_code="0"}'] == 1, s.text()
    finally:
        assert s.stop() == 0, s.text()
    with open(out) as f:
        env = f.read()
    assert "PATH=" in env  # the command really printed its environment
    assert TOKEN not in env and HMAC_KEY not in env
    assert "RB_SERVE_TEST_TOKEN" not in env and "RB_SERVE_TEST_HMAC" not in env
    path = os.path.join(s.state, "incidents", "ALERT-env1-20261122T093608.312Z.jsonl")
    with open(path) as f:
        tl = f.read()
    assert "PATH=" in tl  # cmd.read's output is on the timeline
    assert TOKEN not in tl and HMAC_KEY not in tl and "RB_SERVE_TEST_TOKEN" not in tl
    r = rbtest.run(["timeline", "ALERT-env1-20261122T093608.312Z"], state_dir=s.state, timeout=30)
    assert r.code == 0 and TOKEN not in r.stdout
