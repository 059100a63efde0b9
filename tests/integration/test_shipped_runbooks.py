"""The runbooks that ship (runbooks/*.lua): each passes `check --strict`,
states its severity, posts status updates in the Current status / Impact /
Actions / Next update form, and its scenarios drill with exit 0 and between
them walk every edge of its graph (branch values and on_error apart)."""
import glob
import json
import os
import re

import pytest

import rbtest

RUNBOOKS = sorted(glob.glob(os.path.join(rbtest.SOURCE_DIR, "runbooks", "*.lua")))
NAMES = [os.path.basename(p)[:-len(".lua")] for p in RUNBOOKS]


def scenarios(name):
    return sorted(glob.glob(os.path.join(rbtest.SOURCE_DIR, "runbooks", "scenarios", name,
                                         "*.json")))


def walked_edges(events):
    """(from, to, kind, value) of every edge the drill took, from its timeline."""
    fin = [e for e in events if e["kind"] == "run" and e["event"] == "finished"][-1]
    path = fin["detail"]["path"]
    failed = {e["step"] for e in events if e["event"] == "failed" and e.get("step")}
    value = {e["step"]: e["detail"].get("value") for e in events if e["event"] == "decision"}
    out = set()
    for a, b in zip(path, path[1:]):
        if a in failed:
            out.add((a, b, "on_error", None))
        elif a in value:
            v = value[a]
            out.add((a, b, "branch", json.dumps(v) if not isinstance(v, str) else v))
        else:
            out.add((a, b, "next", None))
    return out


def test_every_shipped_runbook_is_listed():
    assert {"api-high-error-rate", "checkout-errors", "db-connection-pool-exhausted",
            "dependency-down"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_runbook_passes_strict_check_and_states_severity(name):
    r = rbtest.run(["check", "--strict", name])
    assert r.code == 0, r
    src = open(os.path.join(rbtest.SOURCE_DIR, "runbooks", name + ".lua")).read()
    if name != "checkout-errors":
        assert re.search(r'^\s*severity = "sev\d"', src, re.M), name
        assert "Current status: %s\\nImpact: %s\\nActions: %s\\nNext update in %d minutes." in src


@pytest.mark.parametrize("name", NAMES)
def test_scenarios_drill_clean_and_cover_every_edge(name):
    files = scenarios(name)
    assert files, "runbook %s ships without scenarios" % name
    show = rbtest.run(["show", name, "--format", "json"])
    assert show.code == 0, show
    doc = json.loads(show.stdout)
    edges = {(e["from"], e["to"], e["kind"], e["value"]) for e in doc["edges"]}
    walked, outcomes = set(), set()
    for f in files:
        sc = json.load(open(f))
        assert "expect" in sc and "description" in sc, f
        incident = "SC-" + os.path.basename(f)[:-len(".json")]
        r = rbtest.run(["drill", name, "--scenario", f, "--incident", incident])
        assert r.code == 0, (f, r)
        walked |= walked_edges(r.timeline(incident))
        outcomes.add(sc["expect"]["outcome"])
    missing = edges - walked
    assert not missing, "edges no scenario walks: %s" % sorted(missing, key=str)
    terminals = {n["id"] for n in doc["nodes"] if n["outcome"]}
    print("%s: %d scenarios, %d edges, %d terminals, outcomes %s" % (
        name, len(files), len(edges), len(terminals), sorted(outcomes)))


def test_status_updates_follow_the_template():
    r = rbtest.run(["drill", "api-high-error-rate", "--incident", "TPL"])
    assert r.code == 0, r
    updates = [e["detail"] for e in r.timeline("TPL")
               if e["event"] == "finished" and "phase" in e.get("detail", {})]
    assert [u["phase"] for u in updates] == ["Investigating", "Identified", "Monitoring",
                                            "Resolved"]
    for u in updates:
        assert re.fullmatch(r"Current status: .+\nImpact: .+\nActions: .+\n"
                            r"Next update in 30 minutes\.", u["message"]), u


def test_checkout_titles_follow_parameters():
    src = open(os.path.join(rbtest.SOURCE_DIR, "runbooks", "checkout-errors.lua")).read()
    assert not re.search(r'title = "[^"]*\d+%', src)
    assert "> 0.9" not in src
    r = rbtest.run(["drill", "checkout-errors", "--scenario", "rollback-fails",
                    "--var", "threshold=0.05", "--incident", "T5"])
    assert r.code == 0, r
