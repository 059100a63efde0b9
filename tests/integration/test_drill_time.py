"""Simulated time in a drill: a wait polls its scenario's "values" each
`every` on a simulated clock, so a five-minute verification takes
milliseconds of real time and the timeline says "(simulated)"."""
import json
import time

import pytest

import rbtest


def drill(tmp_path, verify, expect=None):
    body = {"steps": {"recent_deploy": True, "rollback": {"approved": True}, "verify": verify}}
    if expect:
        body["expect"] = expect
    scn = rbtest.write(str(tmp_path / "s.json"), json.dumps(body))
    t0 = time.monotonic()
    r = rbtest.run(["drill", "checkout-errors", "--scenario", scn, "--incident", "sim"])
    return r, time.monotonic() - t0


def decision(r, step="verify"):
    return [e for e in r.timeline("sim") if e["step"] == step and e["event"] == "decision"][0]


def test_a_wait_that_recovers_after_three_failing_polls_takes_45_simulated_seconds(tmp_path):
    r, wall = drill(tmp_path, {"values": [False, False, False, True]},
                    {"outcome": "resolved"})
    assert r.code == 0, r
    d = decision(r)["detail"]
    # verify polls every 15s: at 0, 15, 30 (false) and 45 s (true).
    assert (d["polls"], d["waited_ms"], d["simulated"], d["value"]) == (4, 45000, True, True)
    assert d["branch"] == "monitoring"
    assert decision(r)["duration_ms"] < 1000
    assert wall < 1.0, wall
    assert "true -> monitoring after 45 s (simulated)" in r.stdout, r
    text = rbtest.run(["timeline", "sim"], state_dir=r.state_dir)
    assert "-> true after 45 s (simulated), taking 'monitoring'" in text.stdout, text


def test_a_wait_that_never_recovers_times_out_on_simulated_time(tmp_path):
    r, wall = drill(tmp_path, {"values": [False, False]}, {"outcome": "escalated"})
    assert r.code == 0, r
    d = decision(r)["detail"]
    # timeout 5m, every 15s: polls at 0 .. 285 s; the 21st would be at the timeout.
    assert (d["polls"], d["waited_ms"], d["timed_out"], d["simulated"]) == (20, 285000, True, True)
    assert d["branch"] == "escalate_unresolved"
    assert wall < 1.0, wall
    text = rbtest.run(["timeline", "sim"], state_dir=r.state_dir)
    assert "-> false after 4m45s (simulated), taking 'escalate_unresolved'" in text.stdout, text


def test_the_last_value_holds_and_a_bare_value_is_polled_too(tmp_path):
    r, _ = drill(tmp_path, {"values": [False, True]})
    d = decision(r)["detail"]
    assert (d["polls"], d["waited_ms"], d["value"]) == (2, 15000, True)
    r, _ = drill(tmp_path, False)
    d = decision(r)["detail"]
    assert (d["polls"], d["waited_ms"], d["value"]) == (20, 285000, False)
    r, _ = drill(tmp_path, True)
    assert (decision(r)["detail"]["polls"], decision(r)["detail"]["waited_ms"]) == (1, 0)


@pytest.mark.parametrize("steps,message", [
    ({"recent_deploy": {"values": [True]}},
     "steps.recent_deploy.values: 'recent_deploy' is a check; only a wait polls"),
    ({"verify": {"values": [], "note": "x"}},
     "steps.verify.values must be a non-empty list of true/false, one per poll"),
    ({"verify": {"values": [False, "yes"]}}, "steps.verify.values[1] must be true or false"),
    ({"verify": {"values": [True], "value": True}},
     "steps.verify: give \"value\" or \"values\", not both"),
    ({"verify": {"vaules": [True]}},
     "unknown field 'vaules' in steps.verify (did you mean 'values'?)"),
])
def test_a_bad_values_answer_is_refused_at_load(tmp_path, steps, message):
    scn = rbtest.write(str(tmp_path / "bad.json"), json.dumps({"steps": steps}))
    r = rbtest.run(["drill", "checkout-errors", "--scenario", scn])
    assert r.code == 3, r
    assert message in r.stderr, r
