"""runbook stats: runs of several modes and outcomes made here (exec with a
cmd write, a failing exec, a dry-run, drills, exec behind an approval gate);
the counts, and medians and 90th percentiles recomputed from the timelines'
own times (docs/stats.md)."""
import calendar
import json
import math
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import rbtest  # noqa: E402

FIXER = """local cmd = require "cmd"
return runbook {
  name = "fixer", title = "Fixer", start = "act",
  params = { delay = { default = "0" }, fail = { default = "no" } },
  steps = {
    act = action { title = "Fix", run = function(ctx)
      cmd.run({"sleep", ctx.delay})
      if ctx.fail == "yes" then cmd.run({"false"}) end
      return true end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""

GATED = """local cmd = require "cmd"
return runbook {
  name = "gated", title = "Gated", start = "act",
  steps = {
    act = action { title = "Fail over", approval = true, run = function(ctx)
      cmd.run({"true"})
      return true end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def ms(ts):
    """Wall ms of "2026-12-01T18:06:05.988Z"."""
    whole, frac = ts.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) * 1000 + int(frac)


def quantile(v, q):
    """R-7, as docs/stats.md says: linear between the closest ranks."""
    v = sorted(v)
    h = (len(v) - 1) * q
    lo = int(h)
    return v[lo] if lo + 1 >= len(v) else v[lo] + (h - lo) * (v[lo + 1] - v[lo])


def events(state):
    out = []
    d = os.path.join(state, "incidents")
    for f in sorted(os.listdir(d)):
        with open(os.path.join(d, f)) as fh:
            out += [json.loads(line) for line in fh if line.strip()]
    return [e for e in out if e.get("event") != "timeline_header"]


def by_run(evs):
    runs = {}
    for e in evs:
        runs.setdefault(e["run"], []).append(e)
    return runs


def expected_times(state, runbook):
    """Time to the first write that finished, to resolved, and each gate's
    wait, from the events themselves, for the exec runs of runbook."""
    ttm, ttr, waits = [], [], []
    for run, evs in by_run(events(state)).items():
        start = evs[0]
        if start["runbook"] != runbook or start["mode"] != "exec":
            continue
        t0 = ms(start["ts"])
        intent = False
        first = None
        for e in evs:
            d = e.get("detail", {})
            if "op" in d and e["event"] == "started":
                intent = True
            elif "op" in d and e["event"] == "finished" and intent:
                intent = False
                if first is None and d.get("exit_code", 0) == 0:
                    first = ms(e["ts"])
            if e["event"] == "approval_requested":
                asked = ms(e["ts"])
            if e["event"] in ("approved", "denied"):
                waits.append((ms(e["ts"]) - asked) / 1000.0)
        if first is not None:
            ttm.append((first - t0) / 1000.0)
        end = evs[-1]
        if end["kind"] == "run" and end.get("detail", {}).get("outcome") == "resolved":
            ttr.append((ms(end["ts"]) - t0) / 1000.0)
    return ttm, ttr, waits


def stats(state, *args):
    r = rbtest.run(["stats", "--json"] + list(args), state_dir=state)
    assert r.code == 0, r
    return {b["runbook"]: b for b in json.loads(r.stdout)["runbooks"]}


def gated_run(state, book, wait_s):
    p = subprocess.Popen([rbtest.RUNBOOK_BIN, "--state-dir", state, "exec", book, "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)
    deadline = time.time() + 15
    while time.time() < deadline:
        r = rbtest.run(["approvals"], state_dir=state)
        if r.stdout.strip() and "no pending approvals" not in r.stdout:
            break
        time.sleep(0.05)
    else:
        p.kill()
        raise AssertionError("no approval request appeared")
    time.sleep(wait_s)
    run, step = r.stdout.split()[:2]
    assert rbtest.run(["approve", run, step], state_dir=state).code == 0
    p.communicate(timeout=30)
    assert p.returncode == 0


def make_runs(tmp_path):
    state = str(tmp_path / "state")
    fixer = rbtest.write(str(tmp_path / "fixer.lua"), FIXER)
    gated = rbtest.write(str(tmp_path / "gated.lua"), GATED)
    rbtest.write(str(tmp_path / "scenarios" / "fixer" / "default.json"),
                 '{"description": "fine", "steps": {}, "expect": {"outcome": "resolved"}}')
    rbtest.write(str(tmp_path / "scenarios" / "fixer" / "wrong.json"),
                 '{"description": "expects the wrong end", "steps": {},'
                 ' "expect": {"outcome": "escalated"}}')
    rbtest.write(str(tmp_path / "scenarios" / "fixer" / "broken.json"),
                 '{"description": "the fix fails", "steps": {"act": {"fail": "boom"}}}')
    for delay in ("0.1", "0.5", "1.0"):
        assert rbtest.run(["exec", fixer, "--var", "delay=" + delay, "--quiet"],
                          state_dir=state).code == 0
    assert rbtest.run(["exec", fixer, "--var", "fail=yes", "--quiet"], state_dir=state).code == 1
    assert rbtest.run(["exec", fixer, "--dry-run", "--quiet"], state_dir=state).code == 0
    assert rbtest.run(["drill", fixer, "--quiet"], state_dir=state).code == 0
    assert rbtest.run(["drill", fixer, "--quiet"], state_dir=state).code == 0
    assert rbtest.run(["drill", fixer, "--scenario", "broken", "--quiet"],
                      state_dir=state).code == 1
    # `runbook test` drills in a state dir of its own: counted as tests, not drills
    r = rbtest.run(["test", fixer], state_dir=state)
    assert r.code == 1 and "1 passed, 1 failed" in r.stdout, r
    gated_run(state, gated, 0.3)
    gated_run(state, gated, 1.2)
    return state


def test_stats_counts_and_times_from_the_timelines(tmp_path):
    state = make_runs(tmp_path)
    got = stats(state)
    assert set(got) == {"fixer", "gated"}
    f, g = got["fixer"], got["gated"]
    assert f["by_mode"] == {"exec": {"resolved": 3, "failed": 1}, "dry-run": {"resolved": 1},
                            "drill": {"resolved": 2, "failed": 1}}
    assert f["runs"] == 8 and f["drills"] == 3
    assert f["tests"] == {"runs": 2, "passed": 1, "failed": 1}
    assert g["tests"] == {"runs": 0, "passed": 0, "failed": 0}
    assert g["by_mode"] == {"exec": {"resolved": 2}} and g["drills"] == 0

    ttm, ttr, waits = expected_times(state, "fixer")
    # the failing run's first write (sleep 0) succeeded: it mitigated, never resolved
    assert len(ttm) == 4 and len(ttr) == 3
    m = f["time_to_mitigate"]
    assert m["count"] == 4
    assert abs(m["median_s"] - quantile(ttm, 0.5)) < 0.0005
    assert abs(m["p90_s"] - quantile(ttm, 0.9)) < 0.0005
    assert abs(m["sum_s"] - sum(ttm)) < 0.002
    # the sleeps order the samples: median between the 0.1 s and 0.5 s runs
    assert 0.1 <= m["median_s"] < 1.0 and m["p90_s"] >= 0.5 + 0.7 * 0.5
    r = f["time_to_resolve"]
    assert r["count"] == 3
    assert abs(r["median_s"] - quantile(ttr, 0.5)) < 0.0005
    assert abs(r["p90_s"] - quantile(ttr, 0.9)) < 0.0005
    assert 0.5 <= r["median_s"] < 1.0 and r["p90_s"] >= 0.9
    assert f["approval_wait"] == {"count": 0, "sum_s": 0, "median_s": None, "p90_s": None}

    _, gttr, waits = expected_times(state, "gated")
    w = g["approval_wait"]
    assert w["count"] == 2 and len(waits) == 2
    assert abs(w["sum_s"] - sum(waits)) < 0.002
    assert abs(w["median_s"] - sum(waits) / 2) < 0.0005
    assert min(waits) >= 0.3 and max(waits) >= 1.2
    assert g["time_to_resolve"]["count"] == 2
    assert g["time_to_resolve"]["median_s"] >= w["median_s"]

    text = rbtest.run(["stats"], state_dir=state)
    assert text.code == 0, text
    lines = text.stdout.splitlines()
    assert any(line.split()[:4] == ["fixer", "exec", "4", "resolved"] and
               "failed 1" in line for line in lines), text.stdout
    assert any(line.split()[:3] == ["fixer", "drill", "3"] for line in lines), text.stdout
    row = [line for line in lines if line.startswith("gated ") and "(2)" in line]
    assert row and row[0].split()[-2:] == ["0", "0/0"], text.stdout
    row = [line for line in lines if line.startswith("fixer ") and "(4)" in line]
    assert row and row[0].split()[-2:] == ["3", "1/2"], text.stdout


def test_stats_filters_and_fails_closed(tmp_path):
    state = make_runs(tmp_path)
    assert set(stats(state, "gated")) == {"gated"}
    only = stats(state, "gated", "nosuch")
    assert only["nosuch"]["runs"] == 0 and only["nosuch"]["time_to_mitigate"]["count"] == 0
    assert set(stats(state, "--since", "1h")) == {"fixer", "gated"}
    with open(os.path.join(state, "tests.jsonl"), "a") as f:
        f.write('{"runbook": "fixer", "ok": "yes"}\n')
    r = rbtest.run(["stats", "--json", "fixer"], state_dir=state)
    assert r.code == 0 and "tests.jsonl:3: not a test result, skipped" in r.stderr, r
    assert json.loads(r.stdout)["runbooks"][0]["tests"]["runs"] == 2
    time.sleep(1.2)
    doc = json.loads(rbtest.run(["stats", "--json", "--since", "1s"], state_dir=state).stdout)
    assert doc["runbooks"] == [] and doc["since"] is not None
    assert "no runs" in rbtest.run(["stats", "--since", "1s"], state_dir=state).stdout
    for bad, why in (("0", "longer than 0"), ("5x", "unknown unit 'x'"),
                     ("-1d", "bad duration"), ("1000d", "longer than a year"),
                     ("", "empty duration")):
        r = rbtest.run(["stats", "--since", bad], state_dir=state)
        assert r.code == 2 and why in r.stderr and r.stdout == "", (bad, r)
    r = rbtest.run(["stats", "--since"], state_dir=state)
    assert r.code == 2 and "--since" in r.stderr, r
    r = rbtest.run(["stats", "--jsn"], state_dir=state)
    assert r.code == 2 and "--jsn" in r.stderr, r


def test_stats_on_an_empty_state_dir(tmp_path):
    r = rbtest.run(["stats"], state_dir=str(tmp_path / "empty"))
    assert r.code == 0 and "no runs" in r.stdout, r


# -- the same figures on the listener's /metrics, scraped by a real Prometheus


def strict_families(text):
    """The exposition format 0.0.4, strictly: HELP then TYPE once per family,
    a family's samples together and after its TYPE, label values quoted and
    escaped, values that parse as floats; returns {family: [(name, labels, value)]}."""
    fams, current, order = {}, None, []
    label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
    sample = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:%s)(?:,%s)*\})? (\S+)$' % (label, label))
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in fams, "second HELP for " + name
            fams[name] = {"type": None, "samples": []}
            current = name
            order.append(name)
        elif line.startswith("# TYPE "):
            _, _, name, typ = line.split()
            assert name == current and fams[name]["type"] is None, line
            assert typ in ("counter", "gauge", "summary", "histogram", "untyped"), line
            fams[name]["type"] = typ
        else:
            m = sample.match(line)
            assert m, "bad sample line: %r" % line
            name = m.group(1)
            base = current if fams[current]["type"] == "summary" and name in (
                current, current + "_sum", current + "_count") else name
            assert base == current, "%s outside its family (in %s)" % (name, current)
            float(m.group(3))
            labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                     m.group(2) or ""))
            fams[current]["samples"].append((name, labels, float(m.group(3))))
    return fams


def runs_in(s, runbook, mode, outcome):
    fams = strict_families(s.request("GET", "/metrics")[1])
    return sum(v for _, lb, v in fams["runbook_runs_total"]["samples"]
               if (lb["runbook"], lb["mode"], lb["outcome"]) == (runbook, mode, outcome))


def test_metrics_carry_the_stats_and_prometheus_scrapes_them(tmp_path):
    import httpservers as hs
    from test_serve import Serve
    state = make_runs(tmp_path)
    want = stats(state)
    s = Serve(tmp_path)
    assert s.port and s.state == state, s.text()
    exp = prom = None
    try:
        code, text = s.request("GET", "/metrics")
        assert code == 200
        fams = strict_families(text)
        assert fams["runbook_runs_total"]["type"] == "counter"
        runs = {(lb["runbook"], lb["mode"], lb["outcome"]): v
                for _, lb, v in fams["runbook_runs_total"]["samples"]}
        assert runs == {("fixer", "exec", "resolved"): 3, ("fixer", "exec", "failed"): 1,
                        ("fixer", "dry-run", "resolved"): 1, ("fixer", "drill", "resolved"): 2,
                        ("fixer", "drill", "failed"): 1, ("gated", "exec", "resolved"): 2}
        assert fams["runbook_runs_open"]["samples"] == []
        tests = {(lb["runbook"], lb["result"]): v
                 for _, lb, v in fams["runbook_tests_total"]["samples"]}
        assert tests == {("fixer", "passed"): 1, ("fixer", "failed"): 1,
                         ("gated", "passed"): 0, ("gated", "failed"): 0}
        ttm = fams["runbook_time_to_mitigate_seconds"]
        assert ttm["type"] == "summary"
        got = {(n, lb["runbook"], lb.get("quantile")): v for n, lb, v in ttm["samples"]}
        f = want["fixer"]["time_to_mitigate"]
        assert abs(got[("runbook_time_to_mitigate_seconds", "fixer", "0.5")] - f["median_s"]) < 1e-6
        assert abs(got[("runbook_time_to_mitigate_seconds", "fixer", "0.9")] - f["p90_s"]) < 1e-6
        assert got[("runbook_time_to_mitigate_seconds_count", "fixer", None)] == 4
        wait = {(n, lb["runbook"], lb.get("quantile")): v
                for n, lb, v in fams["runbook_approval_wait_seconds"]["samples"]}
        assert wait[("runbook_approval_wait_seconds_count", "gated", None)] == 2
        assert abs(wait[("runbook_approval_wait_seconds_sum", "gated", None)] -
                   want["gated"]["approval_wait"]["sum_s"]) < 1e-6
        assert math.isnan(wait[("runbook_approval_wait_seconds", "fixer", "0.5")])

        # the listener caches each timeline's runs: a file that grew or went is read again
        fixer = str(tmp_path / "fixer.lua")
        assert rbtest.run(["exec", fixer, "--incident", "late", "--quiet"], state_dir=state).code == 0

        def resolved():
            samples = strict_families(s.request("GET", "/metrics")[1])["runbook_runs_total"]
            return {lb["runbook"]: v for _, lb, v in samples["samples"]
                    if lb["mode"] == "exec" and lb["outcome"] == "resolved"}
        assert resolved() == {"fixer": 4, "gated": 2}
        rbtest.run(["exec", fixer, "--incident", "late", "--var", "fail=yes", "--quiet"],
                   state_dir=state)
        assert runs_in(s, "fixer", "exec", "failed") == 2
        os.unlink(os.path.join(state, "incidents", "late.jsonl"))
        assert resolved() == {"fixer": 3, "gated": 2}
        assert runs_in(s, "fixer", "exec", "failed") == 1

        (tmp_path / "prom").mkdir()
        exp = hs.Exporter()
        prom = hs.Prometheus(exp, str(tmp_path / "prom"),
                             "  - job_name: runbook\n    static_configs:\n"
                             "      - targets: ['127.0.0.1:%d']\n" % s.port)
        hs.wait_for(lambda: prom.query('up{job="runbook"} == 1'), 30, "a scrape of the listener")
        res = prom.query('runbook_runs_total{job="runbook",runbook="fixer",mode="exec"}')
        assert {r["metric"]["outcome"]: float(r["value"][1]) for r in res} == \
            {"resolved": 3, "failed": 1}
        res = prom.query('runbook_time_to_resolve_seconds{job="runbook",quantile="0.5"}')
        by = {r["metric"]["runbook"]: float(r["value"][1]) for r in res}
        assert abs(by["fixer"] - want["fixer"]["time_to_resolve"]["median_s"]) < 1e-6
        assert abs(by["gated"] - want["gated"]["time_to_resolve"]["median_s"]) < 1e-6
        res = prom.query('sum(runbook_approval_wait_seconds_count{job="runbook"})')
        assert float(res[0]["value"][1]) == 2
    finally:
        if prom:
            prom.close()
        if exp:
            exp.close()
        assert s.stop() == 0, s.text()
