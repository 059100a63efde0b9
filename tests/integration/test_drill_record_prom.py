"""Record and replay of what a number cannot say: a multi-series prom.query
recorded as a vector (labels, value, time) from the harness's real
Prometheus and replayed offline with the runbook seeing the same series; a
failed read (Prometheus stopped, a closed port, an HTTP error, a flag
provider or deploy source that cannot be read) recorded as a `fail`, so the
replay takes the same on_error path."""
import json

import pytest

import httpservers as hs
import rbtest

WORST = '''
local prom = require "prom"
return runbook {
  name = "worst", title = "Worst region", start = "worst",
  params = { threshold = { type = "number", default = 0.01 } },
  steps = {
    worst = check {
      title = "Which region is worst, and is it over the threshold?",
      run = function(ctx)
        local series = prom.query("checkout_region_error_ratio")
        local worst, seen = nil, {}
        for _, s in ipairs(series) do
          seen[#seen + 1] = string.format("%s=%s@%s", s.labels.region, s.value, s.time)
          if worst == nil or s.value > worst.value then worst = s end
        end
        table.sort(seen)
        ctx.seen = table.concat(seen, ",")
        ctx.worst = worst.labels.region
        if worst.value <= ctx.threshold then return "none" end
        return worst.labels.region
      end,
      on = { eu = "drain_eu", us = "drain_us", none = "fine", default = "blind" },
      on_error = "blind" },
    drain_eu = escalate { title = "Drain eu", to = "oncall", message = "eu" },
    drain_us = escalate { title = "Drain us", to = "oncall", message = "us" },
    fine = resolved { title = "Fine" },
    blind = escalate { title = "Cannot see", to = "oncall", message = "no metrics" },
  },
}
'''

REGIONS = {'checkout_region_error_ratio{region="eu"}': 0.002,
           'checkout_region_error_ratio{region="us"}': 0.02,
           'checkout_region_error_ratio{region="ap"}': 0.0005}


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    exp = hs.Exporter()
    exp.values.update(REGIONS)
    p = hs.Prometheus(exp, str(tmp_path_factory.mktemp("prom")))
    hs.wait_for(lambda: len(p.query("checkout_region_error_ratio")) == 3, 30, "regions scraped")
    yield p
    p.close()
    exp.close()


def record(tmp_path, url, book=WORST, name="worst", extra=""):
    cfg = rbtest.write(str(tmp_path / "runbook.conf"), "[prom]\nurl = %s\n%s" % (url, extra))
    rb = rbtest.write(str(tmp_path / "rb" / (name + ".lua")), book)
    rec = str(tmp_path / "rec.json")
    r = rbtest.run(["--config", cfg, "exec", rb, "--dry-run", "--record", rec,
                    "--incident", "REC"])
    return r, rb, rec


def end_of(r, incident):
    return [e for e in r.timeline(incident) if e["event"] == "finished"
            and e["step"] is None][0]["detail"]


def ctx_of(r, incident, step):
    for e in r.timeline(incident):
        if e["step"] == step and "ctx" in e.get("detail", {}):
            return e["detail"]["ctx"]
    return None


def test_a_multi_series_query_is_recorded_as_a_vector_and_replayed(tmp_path, prom):
    r, rb, rec = record(tmp_path, prom.url)
    assert r.code == 5, r  # us at 2% is over 1%: escalated
    s = json.load(open(rec))
    assert s["expect"]["path"] == ["worst", "drain_us"]
    (entry,) = s["calls"]["prom"]
    assert entry["query"] == "checkout_region_error_ratio" and set(entry) == {"query", "vector"}
    by = {x["labels"]["region"]: x for x in entry["vector"]}
    assert {k: v["value"] for k, v in by.items()} == {"eu": 0.002, "us": 0.02, "ap": 0.0005}
    assert by["us"]["labels"]["__name__"] == "checkout_region_error_ratio"
    assert by["us"]["labels"]["job"] == "checkout"
    assert all(isinstance(x["time"], float) for x in entry["vector"])
    live = ctx_of(r, "REC", "worst")
    # offline, with no config: the runbook sees the same series, field for field
    d = rbtest.run(["drill", rb, "--scenario", rec, "--incident", "REPLAY"])
    assert d.code == 0, d
    assert end_of(d, "REPLAY")["path"] == ["worst", "drain_us"]
    again = ctx_of(d, "REPLAY", "worst")
    assert (again["seen"], again["worst"]) == (live["seen"], live["worst"]) == (live["seen"], "us")
    assert "us=0.02@" in live["seen"], live


def test_an_edited_vector_takes_another_branch(tmp_path, prom):
    r, rb, rec = record(tmp_path, prom.url)
    s = json.load(open(rec))
    for x in s["calls"]["prom"][0]["vector"]:
        x["value"] = {"eu": 0.4, "us": 0.003, "ap": 0.0}[x["labels"]["region"]]
    s["expect"]["path"] = ["worst", "drain_eu"]
    p = rbtest.write(str(tmp_path / "eu.json"), json.dumps(s))
    d = rbtest.run(["drill", rb, "--scenario", p, "--incident", "EU"])
    assert d.code == 0, d


def test_a_vector_answer_reads_as_a_live_one(tmp_path):
    book = '''
local prom = require "prom"
return runbook { name = "shape", title = "Shape", start = "a", steps = {
  a = check { title = "a", run = function(ctx)
    local two = prom.query("two")
    assert(#two == 2 and two[1].labels.pod == "p1" and two[2].value == 0.5, "two")
    assert(type(two[1].time) == "number" and two[1].time > 1.7e9, "time filled")
    assert(two[2].time == 1700000000.5, "time kept")
    assert(prom.query("one") == 3, "one sample is a number")
    local one = prom.query("one", { series = true })
    assert(#one == 1 and one[1].labels.pod == "p9" and one[1].value == 3, "series")
    assert(prom.value("one") == 3)
    local n = prom.value("nan")
    assert(n ~= n, "NaN")
    assert(prom.value("inf") == math.huge)
    local ok, err = pcall(prom.value, "two")
    assert(not ok and err:find('returned 2 series, want exactly 1', 1, true), err)
    assert(#prom.query("none") == 0, "empty vector")
    return true
  end, on = { [true] = "ok", [false] = "no" } },
  ok = resolved { title = "ok" }, no = resolved { title = "no" } } }
'''
    rb = rbtest.write(str(tmp_path / "shape.lua"), book)
    sc = rbtest.write(str(tmp_path / "s.json"), json.dumps({"calls": {"prom": [
        {"query": "two", "vector": [{"labels": {"pod": "p1"}, "value": 0.1},
                                    {"labels": {"pod": "p2"}, "value": 0.5,
                                     "time": 1700000000.5}]},
        {"query": "one", "vector": [{"labels": {"pod": "p9"}, "value": 3}]},
        {"query": "nan", "value": "NaN"},
        {"query": "inf", "vector": [{"value": "+Inf"}]},
        {"query": "none", "vector": []}]},
        "expect": {"path": ["a", "ok"]}}))
    d = rbtest.run(["drill", rb, "--scenario", sc])
    assert d.code == 0, d


def test_vectors_over_simulated_time(tmp_path):
    book = '''
local prom = require "prom"
return runbook { name = "pods", title = "Pods", start = "w", steps = {
  w = wait { title = "every pod under 1%", every = "10s", timeout = "1m",
    until_ = function(ctx)
      for _, s in ipairs(prom.query("ratio", { series = true })) do
        if s.value >= 0.01 then return false end
      end
      return true
    end, on = { [true] = "ok", [false] = "no" } },
  ok = resolved { title = "ok" }, no = resolved { title = "no" } } }
'''
    rb = rbtest.write(str(tmp_path / "pods.lua"), book)
    bad = [{"labels": {"pod": "a"}, "value": 0.001}, {"labels": {"pod": "b"}, "value": 0.3}]
    good = [{"labels": {"pod": "a"}, "value": 0.001}, {"labels": {"pod": "b"}, "value": 0.004}]
    sc = rbtest.write(str(tmp_path / "s.json"), json.dumps({"calls": {"prom": [
        {"query": "ratio", "values": [bad, {"fail": "prom: Prometheus restarting"}, bad, good]}]},
        "expect": {"path": ["w", "ok"]}}))
    d = rbtest.run(["drill", rb, "--scenario", sc, "--incident", "P"])
    assert d.code == 0, d
    dec = [e for e in d.timeline("P") if e["step"] == "w" and e["event"] == "decision"]
    assert dec[0]["detail"]["polls"] == 4 and dec[0]["detail"]["waited_ms"] == 30000, dec
    notes = [e for e in d.timeline("P") if e["step"] == "w" and e["event"] == "note"]
    assert any("Prometheus restarting" in json.dumps(n) for n in notes), notes


def test_a_read_from_a_stopped_prometheus_is_recorded_as_a_fail(tmp_path, tmp_path_factory):
    exp = hs.Exporter()
    exp.values.update(REGIONS)
    p = hs.Prometheus(exp, str(tmp_path_factory.mktemp("stopped")))
    url = p.url
    p.close()  # the same address, nobody listening any more
    exp.close()
    r, rb, rec = record(tmp_path, url)
    assert r.code == 5, r
    s = json.load(open(rec))
    assert s["expect"]["path"] == ["worst", "blind"], s
    (entry,) = s["calls"]["prom"]
    assert set(entry) == {"query", "fail"}, entry
    live = [e for e in r.timeline("REC") if e["step"] == "worst" and e["event"] == "failed"]
    d = rbtest.run(["drill", rb, "--scenario", rec, "--incident", "REPLAY"])
    assert d.code == 0, d
    assert end_of(d, "REPLAY")["path"] == ["worst", "blind"]
    again = [e for e in d.timeline("REPLAY") if e["step"] == "worst" and e["event"] == "failed"]
    assert again[-1]["detail"]["error"] == live[-1]["detail"]["error"], (live, again)


def test_an_http_error_of_prometheus_is_recorded_as_a_fail(tmp_path, prom):
    book = WORST.replace('prom.query("checkout_region_error_ratio")',
                         'prom.query("rate(checkout_requests_total[5m")')
    r, rb, rec = record(tmp_path, prom.url, book)
    assert r.code == 5, r
    s = json.load(open(rec))
    assert "bad_data" in s["calls"]["prom"][0]["fail"], s
    d = rbtest.run(["drill", rb, "--scenario", rec, "--incident", "REPLAY"])
    assert d.code == 0, d
    assert end_of(d, "REPLAY")["path"] == ["worst", "blind"]


READS = '''
local deploy = require "deploy"
local flags = require "flags"
return runbook { name = "reads", title = "Reads", start = "flag", steps = {
  flag = check { title = "fallback on?",
    run = function(ctx) return flags.get("fallback") end,
    on = { [true] = "done", [false] = "recent" }, on_error = "recent" },
  recent = check { title = "recent deploy?",
    run = function(ctx) return deploy.recent("checkout") ~= nil end,
    on = { [true] = "done", [false] = "done" }, on_error = "blind" },
  done = resolved { title = "done" },
  blind = escalate { title = "blind", to = "oncall", message = "no data" } } }
'''


def test_failed_flag_and_deploy_reads_are_recorded_and_replayed(tmp_path):
    closed = "http://127.0.0.1:%d" % hs.free_port()
    extra = ("[flags.gen]\nprovider = generic\nurl = %s\nget_url = %s/flags/{name}\n"
             "set_url = %s/flags/{name}\nset_method = PUT\nstate_path = data.state\n"
             "[deploy.checkout]\nsource = git\nrepo = %s\n"
             % (closed, closed, closed, tmp_path / "no-such-repo"))
    r, rb, rec = record(tmp_path, closed, READS, "reads", extra)
    assert r.code == 5, r
    s = json.load(open(rec))
    assert s["expect"]["path"] == ["flag", "recent", "blind"], s
    (f,) = s["calls"]["flags"]
    assert f["flag"] == "fallback" and f["op"] == "get" and "fail" in f and "state" not in f
    (dp,) = s["calls"]["deploy"]
    assert dp["service"] == "checkout" and "fail" in dp and "value" not in dp, dp
    d = rbtest.run(["drill", rb, "--scenario", rec, "--incident", "REPLAY"])
    assert d.code == 0, d
    assert end_of(d, "REPLAY")["path"] == ["flag", "recent", "blind"]
