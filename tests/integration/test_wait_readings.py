"""A wait's readings: the second value its condition returns, one per poll,
on the wait's decision (redacted like every event), on the poll line, and
as "3.2% -> 0.4%" in the brief timeline's row for the wait."""
import rbtest

COUNTER = """
local n = 0
return runbook {
  name = "counter", title = "Counting polls", start = "watch",
  steps = {
    watch = wait {
      title = "Enough?",
      until_ = function(ctx)
        n = n + 1
        if n == 2 then error("the exporter is down", 0) end
        if n == 3 then return false end           -- a poll without a reading
        return n >= LIMIT, n * 1.5
      end,
      every = "10ms", timeout = "20s",
      on = { [true] = "ok", [false] = "gave_up" },
    },
    ok = resolved { title = "Enough" },
    gave_up = escalated { title = "Not enough" },
  },
}
"""


def decision(r, step):
    return [e for e in r.timeline("inc") if e["event"] == "decision" and e["step"] == step][0]


def test_each_poll_journals_its_reading_and_the_brief_row_spans_them(tmp_path):
    book = rbtest.write(str(tmp_path / "counter.lua"), COUNTER.replace("LIMIT", "5"))
    r = rbtest.run(["exec", book, "--incident", "inc"])
    assert r.code == 0, r
    d = decision(r, "watch")["detail"]
    assert d["polls"] == 5
    assert d["readings"] == [1.5, None, None, 6, 7.5], d
    assert "not yet (1.5)" in r.stdout and "true (7.5)" in r.stdout
    t = rbtest.run(["timeline", "inc", "--format", "markdown"], state_dir=r.state_dir)
    rows = [ln for ln in t.stdout.splitlines() if "watch: polled" in ln]
    assert len(rows) == 1, t.stdout
    assert "watch: polled 5 times over " in rows[0] and ", 1.5 -> 7.5: Enough? -> true" in rows[0]


def test_past_64_readings_the_first_and_the_latest_stay(tmp_path):
    book = rbtest.write(str(tmp_path / "counter.lua"), COUNTER.replace("LIMIT", "80"))
    r = rbtest.run(["exec", book, "--incident", "inc"])
    assert r.code == 0, r
    d = decision(r, "watch")["detail"]
    assert d["polls"] == 80 and len(d["readings"]) == 64
    assert d["readings_dropped"] == 16
    assert d["readings"][0] == 1.5 and d["readings"][-1] == 120
    assert d["readings"][31] == 32 * 1.5  # the first half is kept whole


SECRET = """
local cmd = require "cmd"
return runbook {
  name = "secret-reading", title = "A reading that holds a secret", start = "use",
  steps = {
    use = action { title = "Use the token", run = function(ctx)
        return cmd.run({ "true" }, { env = { TOKEN = { section = "flags.used", key = "token" } } })
      end, next = "watch" },
    watch = wait { title = "Seen?", every = "10ms", timeout = "5s",
      until_ = function(ctx) return true, "token p4ssed-s3cret seen" end,
      on = { [true] = "ok", [false] = "ok" } },
    ok = resolved { title = "ok" },
  },
}
"""


def test_a_reading_is_redacted_like_every_event(tmp_path):
    book = rbtest.write(str(tmp_path / "s.lua"), SECRET)
    conf = rbtest.write(str(tmp_path / "runbook.conf"),
                        "[flags.used]\nprovider = unleash\nurl = http://127.0.0.1:9\n"
                        "token_env = PASSED_SECRET\n")
    r = rbtest.run(["--config", conf, "exec", book, "--incident", "inc"],
                   env={"PASSED_SECRET": "p4ssed-s3cret"})
    assert r.code == 0, r
    assert decision(r, "watch")["detail"]["readings"] == ["token [REDACTED] seen"]
    assert "p4ssed-s3cret" not in r.stdout + r.stderr


def test_the_bad_deploy_drill_reads_the_error_rate_at_each_poll():
    r = rbtest.run(["drill", "checkout-errors", "--scenario", "bad-deploy", "--incident", "inc"])
    assert r.code == 0, r
    d = decision(r, "verify")["detail"]
    assert d["readings"] == ["3.2%", "1.9%", "1.2%", "0.4%"] and d["simulated"] is True
    assert "poll 2, 15.00 s of 5m00s: not yet (1.9%)" in r.stdout
    t = rbtest.run(["timeline", "inc", "--format", "markdown"], state_dir=r.state_dir)
    rows = [ln for ln in t.stdout.splitlines() if ln.startswith("| ")][1:]  # past the header
    assert len(rows) == 12, t.stdout  # measured: 12 brief rows, as before the readings
    assert any("verify: polled 4 times, 3.2% -> 0.4%: " in ln for ln in rows), t.stdout
