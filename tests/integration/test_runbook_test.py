"""`runbook test`: every scenario with an expect run as a drill, its output,
exit code, JUnit report (as tests/summary.py counts it) and coverage."""
import json
import os
import re
import shutil
import sys

import rbtest

sys.path.insert(0, os.path.join(rbtest.SOURCE_DIR, "tests"))
import summary  # noqa: E402

SHIPPED = os.path.join(rbtest.SOURCE_DIR, "runbooks")


def copy_runbook(tmp_path):
    """checkout-errors and two of its scenarios in a runbooks dir of tmp_path."""
    d = tmp_path / "runbooks"
    (d / "scenarios" / "checkout-errors").mkdir(parents=True)
    shutil.copy(os.path.join(SHIPPED, "checkout-errors.lua"), d)
    for s in ("bad-deploy", "rollback-denied"):
        shutil.copy(os.path.join(SHIPPED, "scenarios", "checkout-errors", s + ".json"),
                    d / "scenarios" / "checkout-errors")
    return d


def scenario(d, name, body):
    rbtest.write(str(d / "scenarios" / "checkout-errors" / (name + ".json")), json.dumps(body))


def test_the_shipped_scenarios_all_pass_one_line_each():
    r = rbtest.run(["test"])
    assert r.code == 0, r
    lines = r.stdout.splitlines()
    assert lines[-1] == "%d passed, 0 failed" % (len(lines) - 1), r
    bad_deploy = [l for l in lines if l.startswith("ok checkout-errors/bad-deploy ")]
    assert len(bad_deploy) == 1, r
    assert re.fullmatch(r"ok checkout-errors/bad-deploy \(8 steps, \d+\.\d ms\)", bad_deploy[0]), r
    d = os.path.join(SHIPPED, "scenarios", "checkout-errors")
    files = sorted(f for f in os.listdir(d) if not os.path.islink(os.path.join(d, f)))
    names = [f[:-len(".json")] for f in files]  # in file name order, as ls
    assert os.path.islink(os.path.join(d, "default.json"))  # an alias: not run twice
    assert [l.split()[1].split("/")[1] for l in lines[:-1]
            if l.split()[1].startswith("checkout-errors/")] == names


def test_a_failing_scenario_is_named_with_the_difference_and_exits_1(tmp_path):
    d = copy_runbook(tmp_path)
    scenario(d, "wrong-path", {
        "steps": {"recent_deploy": True, "rollback": {"approved": True}, "verify": False},
        "expect": {"outcome": "resolved",
                   "path": ["announce", "recent_deploy", "rollback", "identified_deploy",
                            "verify", "monitoring", "all_clear", "done"]}})
    scenario(d, "exercise", {"steps": {"recent_deploy": False}})  # no expect: not a test
    junit = tmp_path / "out" / "runbook-test.xml"
    r = rbtest.run(["test", "--junit", str(junit)], cwd=str(tmp_path))
    assert r.code == 1, r
    lines = r.stdout.splitlines()
    assert lines[-1] == "2 passed, 1 failed", r
    assert len(lines) == 4, r
    fail = [l for l in lines if l.startswith("FAIL")]
    assert fail == [
        "FAIL checkout-errors/wrong-path: expected outcome resolved, got escalated; "
        'expected path ["announce","recent_deploy","rollback","identified_deploy","verify",'
        '"monitoring","all_clear","done"], got ["announce","recent_deploy","rollback",'
        '"identified_deploy","verify","escalate_unresolved"]'], r
    assert not any("exercise" in l for l in lines)
    passed, failed, skipped, failures = summary.count([str(junit.parent)])
    assert (passed, failed, skipped) == (2, 1, 0)
    assert failures == ["checkout-errors::wrong-path (out)"]


def test_an_invalid_scenario_fails_with_the_drills_message(tmp_path):
    d = copy_runbook(tmp_path)
    scenario(d, "typo", {"steps": {"recent_deploy": {"valeu": True}},
                         "expect": {"outcome": "resolved"}})
    r = rbtest.run(["test", str(d / "checkout-errors.lua")])
    assert r.code == 1, r
    assert re.search(r"^FAIL checkout-errors/typo: exit 3: scenario .*typo.json: unknown field "
                     r"'valeu' in steps.recent_deploy \(did you mean 'value'\?\)$",
                     r.stdout, re.M), r
    assert r.stdout.splitlines()[-1] == "2 passed, 1 failed"


def test_coverage_lists_untaken_answers_and_unreached_steps(tmp_path):
    d = copy_runbook(tmp_path)
    r = rbtest.run(["test", "--coverage", "checkout-errors"], cwd=str(tmp_path))
    assert r.code == 0, r
    cov = [l for l in r.stdout.splitlines() if l.startswith("coverage ")]
    assert "coverage checkout-errors: (recent_deploy, false) is taken by no scenario " \
           "(-> dependency)" in cov, r
    assert "coverage checkout-errors: (verify, false) is taken by no scenario " \
           "(-> escalate_unresolved)" in cov, r
    assert "coverage checkout-errors: (rollback, error) is taken by no scenario " \
           "(-> rollback_failed)" in cov, r
    assert "coverage checkout-errors: step database is reached by no scenario" in cov, r
    assert not any("(recent_deploy, true)" in l or "(verify, true)" in l for l in cov), r
    assert r.stdout.splitlines()[-1] == "2 passed, 0 failed"


def test_the_shipped_scenarios_take_every_branch():
    r = rbtest.run(["test", "--coverage"])
    assert r.code == 0, r
    assert [l for l in r.stdout.splitlines() if l.startswith("coverage ")] == [], r


def test_no_scenario_to_run_fails(tmp_path):
    d = tmp_path / "runbooks"
    d.mkdir()
    shutil.copy(os.path.join(SHIPPED, "checkout-errors.lua"), d)
    r = rbtest.run(["test"], cwd=str(tmp_path))
    assert r.code == 1, r
    assert r.stdout == "0 passed, 0 failed\n", r
    assert "no scenario with an \"expect\" found" in r.stderr
