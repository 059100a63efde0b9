"""Pictures of the decision tree: `runbook show --format text|mermaid|dot|json`
and `--run`, checked against Graphviz, a strict Mermaid line grammar and the
JSON schema in docs/show.schema.json."""
import json
import os
import re
import shutil
import subprocess

import pytest

import rbtest

SCHEMA = os.path.join(rbtest.SOURCE_DIR, "docs", "show.schema.json")


def drill(scenario, incident):
    r = rbtest.run(["drill", "checkout-errors", "--scenario", scenario, "--incident", incident])
    assert r.code in (0, 4, 5), r
    ev = r.timeline(incident)
    return r, ev[0]["run"], ev


def show(r, *args):
    s = rbtest.run(["show", "checkout-errors"] + list(args), state_dir=r.state_dir)
    assert s.code == 0, s
    return s.stdout


def validate(doc, schema, where="$"):
    """The subset of JSON Schema docs/show.schema.json uses, checked strictly."""
    types = {"string": str, "boolean": bool, "integer": int, "array": list,
             "object": dict, "null": type(None)}
    if "enum" in schema:
        assert doc in schema["enum"], (where, doc)
    if "type" in schema:
        want = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(isinstance(doc, types[t]) and not (t == "integer" and isinstance(doc, bool))
                 for t in want)
        assert ok, (where, doc, want)
    if isinstance(doc, dict):
        for k in schema.get("required", []):
            assert k in doc, (where, "missing", k)
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            assert set(doc) <= set(props), (where, set(doc) - set(props))
        for k, v in doc.items():
            if k in props:
                validate(v, props[k], where + "." + k)
    if isinstance(doc, list) and "items" in schema:
        for i, v in enumerate(doc):
            validate(v, schema["items"], "%s[%d]" % (where, i))


SHAPES = [("{{", "}}"), ("[[", "]]"), ("([", "])"), ("((", "))"), ("[/", "/]"),
          ("{", "}"), ("[", "]"), (">", "]")]
LABEL = r'"[^"\n]*"'


def parse_mermaid(text):
    """A strict reading of the Mermaid subset `show` writes: every line must
    be a node, an edge, a classDef, a class or a linkStyle; edges and styles
    must name declared nodes and existing links."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes, edges, classes, styled = {}, [], {}, []
    for line in lines[1:]:
        m = re.fullmatch(r"  (s_\w+) -->(?:\|(" + LABEL + r")\|)? (s_\w+)", line)
        if m:
            edges.append((m.group(1), m.group(3), (m.group(2) or '""')[1:-1]))
            continue
        m = re.fullmatch(r"  classDef (\w+) [\w#:,.\-; ]+", line)
        if m:
            classes[m.group(1)] = True
            continue
        m = re.fullmatch(r"  class (s_\w+) (\w+)", line)
        if m:
            assert m.group(1) in nodes and m.group(2) in classes, line
            styled.append((m.group(1), m.group(2)))
            continue
        m = re.fullmatch(r"  linkStyle (\d+) [\w#:,.\-]+", line)
        if m:
            assert int(m.group(1)) < len(edges), line
            styled.append((int(m.group(1)), "link"))
            continue
        m = re.fullmatch(r"  (s_\w+)(.*)", line)
        assert m, "not Mermaid: %r" % line
        rest = m.group(2)
        shape = next(((o, c) for o, c in SHAPES
                      if re.fullmatch(re.escape(o) + LABEL + re.escape(c), rest)), None)
        assert shape, "bad node shape: %r" % line
        nodes[m.group(1)] = shape
    for a, b, _ in edges:
        assert a in nodes and b in nodes, (a, b)
    return nodes, edges, styled


def test_dot_is_accepted_by_graphviz_with_outcomes_shaped_apart():
    r, run, _ = drill("bad-deploy", "pic-dot")
    dot = show(r, "--format", "dot", "--run", run)
    p = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "<svg" in p.stdout and 'id="step_done"' in p.stdout
    shape = dict(re.findall(r'^  "(\w+)" \[shape=(\w+)', dot, re.M))
    assert shape["done"] == "doublecircle"
    assert shape["rollback_failed"] == shape["escalate_unknown"] == "doubleoctagon"
    assert shape["recent_deploy"] == shape["verify"] == "diamond"
    assert shape["rollback"] == shape["restart"] == "box3d"  # approval gates
    assert shape["page_dba"] == "house" and shape["announce"] == "note"
    assert '"recent_deploy" -> "rollback" [label="true"' in dot
    assert '"dependency" -> "database" [label="on error", style=dashed' in dot


def test_mermaid_parses_with_questions_on_the_edges_and_shapes_per_outcome():
    r = rbtest.run(["show", "checkout-errors", "--format", "mermaid"])
    assert r.code == 0, r
    nodes, edges, _ = parse_mermaid(r.stdout)
    assert len(nodes) == 17
    assert ("s_recent_deploy", "s_rollback", "true") in edges
    assert ("s_verify", "s_escalate_unresolved", "false") in edges
    assert ("s_rollback", "s_rollback_failed", "on error") in edges
    assert nodes["s_done"] == ("([", "])")
    assert nodes["s_escalate_unknown"] == ("{{", "}}")
    assert nodes["s_rollback"] == ("[[", "]]")
    assert nodes["s_database"] == ("{", "}")
    assert "write" in r.stdout and "approval" in r.stdout


@pytest.mark.parametrize("scenario", ["bad-deploy", "rollback-denied", "rollback-fails",
                                      "dependency-down", "database"])
def test_run_lights_exactly_the_journaled_path(scenario):
    r, run, ev = drill(scenario, "pic-" + scenario)
    walked = [e["step"] for e in ev if e["step"] and e["event"] == "started"]
    fin = [e for e in ev if e["kind"] == "run" and e["event"] == "finished"][0]["detail"]
    assert fin["path"][:len(walked)] == walked
    doc = json.loads(show(r, "--format", "json", "--run", run))
    with open(SCHEMA) as f:
        validate(doc, json.load(f))
    assert doc["run"]["path"] == fin["path"]
    assert doc["run"]["stopped"] == fin["path"][-1]
    assert doc["run"]["outcome"] == fin["outcome"]
    lit = {n["id"] for n in doc["nodes"] if n["taken"]}
    assert lit == set(fin["path"])
    taken = {(e["from"], e["to"]) for e in doc["edges"] if e["taken"]}
    assert taken == set(zip(fin["path"], fin["path"][1:]))
    # The same path in Mermaid and dot.
    _, edges, styled = parse_mermaid(show(r, "--format", "mermaid", "--run", run))
    links = {edges[i][:2] for i, k in styled if k == "link"}
    assert links == {("s_" + a, "s_" + b) for a, b in taken}
    stopped = [n for n, k in styled if k == "stopped"]
    assert stopped == ["s_" + fin["path"][-1]]
    dot = show(r, "--format", "dot", "--run", run)
    lit_dot = set(re.findall(r'^  "(\w+)" -> "(\w+)" \[[^\n]*class="taken"', dot, re.M))
    assert lit_dot == taken
    assert re.search(r'"%s" \[[^\n]*xlabel="%s"' % (fin["path"][-1], fin["outcome"]), dot)
    text = show(r, "--run", run)
    marked = {re.search(r"(\w+) (\[|\(see)", ln).group(1)
              for ln in text.splitlines() if ln.startswith("* ")}
    assert marked == set(fin["path"])
    assert "<== " + fin["outcome"] in text


def test_json_without_a_run_has_no_walk_and_matches_the_schema():
    r = rbtest.run(["show", "checkout-errors", "--format", "json"])
    assert r.code == 0, r
    doc = json.loads(r.stdout)
    with open(SCHEMA) as f:
        validate(doc, json.load(f))
    assert "run" not in doc and doc["start"] == "announce"
    gates = {n["id"] for n in doc["nodes"] if n["approval"]}
    assert gates == {"rollback", "restart"}
    writes = {n["id"] for n in doc["nodes"] if n["write"]}
    assert writes == {"rollback", "enable_fallback", "restart"}


def test_show_refuses_bad_format_and_unknown_run():
    r = rbtest.run(["show", "checkout-errors", "--format", "png"])
    assert r.code == 2 and "--format must be text, mermaid, dot or json" in r.stderr
    r = rbtest.run(["show", "checkout-errors", "--run", "no-such-run"])
    assert r.code == 1 and "no-such-run" in r.stderr, r


POLLER = """
local n = 0
return runbook {
  name = "poller",
  title = "Wait for recovery",
  start = "watch",
  steps = {
    watch = wait {
      title = "Recovered?",
      until_ = function(ctx)
        n = n + 1
        if n < 4 then error("not yet (poll " .. n .. ")") end
        return n >= 6
      end,
      every = "50ms",
      timeout = "10s",
      on = { [true] = "ok", [false] = "gave_up" },
    },
    ok = resolved { title = "Recovered" },
    gave_up = escalated { title = "Still broken" },
  },
}
"""


def test_brief_markdown_folds_a_waits_polls_into_one_row(tmp_path):
    book = rbtest.write(str(tmp_path / "poller.lua"), POLLER)
    r = rbtest.run(["exec", book, "--incident", "polls"])
    assert r.code == 0, r
    full = rbtest.run(["timeline", "polls", "--format", "markdown", "--full"],
                      state_dir=r.state_dir)
    brief = rbtest.run(["timeline", "polls", "--format", "markdown"], state_dir=r.state_dir)
    rows = lambda t: [ln for ln in t.stdout.splitlines()  # noqa: E731
                      if ln.startswith("| ") and "Time (UTC)" not in ln]
    assert len(rows(full)) == len(r.timeline("polls"))
    assert len(rows(brief)) < len(rows(full))
    polls = [ln for ln in rows(brief) if "polled" in ln]
    assert len(polls) == 1 and "watch: polled 6 times over " in polls[0], brief.stdout
    assert "Recovered? -> true, taking 'ok'" in polls[0]
    assert not [ln for ln in rows(brief) if "not yet" in ln]
    print("rows: full %d, brief %d" % (len(rows(full)), len(rows(brief))))


def test_brief_timeline_keeps_decisions_approvals_writes_and_status_updates():
    r, run, ev = drill("bad-deploy", "brief")
    t = rbtest.run(["timeline", "brief", "--format", "markdown"], state_dir=r.state_dir)
    assert t.code == 0, t
    out = t.stdout
    assert "recent_deploy: Deploy in the last 2 hours? -> true, taking 'rollback'" in out
    assert "rollback: approved by alice" in out
    assert "rollback: would run `deploy rollback checkout` on app" in out
    for phase in ("Investigating", "Identified", "Monitoring", "Resolved"):
        assert "status update [%s]" % phase in out
    assert ": started (" not in out  # step starts are in --full only
    # --run keeps one run's events: a second run in the same incident is left out
    r2 = rbtest.run(["drill", "checkout-errors", "--scenario", "unknown-cause", "--incident",
                     "brief"], state_dir=r.state_dir)
    assert r2.code == 0, r2  # a drill that walks its expected path exits 0
    one = rbtest.run(["timeline", "brief", "--format", "markdown", "--run", run],
                     state_dir=r.state_dir)
    assert one.code == 0 and "escalate_unknown" not in one.stdout, one
    both = rbtest.run(["timeline", "brief", "--format", "markdown"], state_dir=r.state_dir)
    assert "escalate_unknown: escalated to checkout-secondary" in both.stdout, both.stdout


def test_postmortem_is_prefilled_from_the_timeline():
    r, run, ev = drill("bad-deploy", "pm")
    p = rbtest.run(["postmortem", "pm"], state_dir=r.state_dir)
    assert p.code == 0, p
    out = p.stdout
    assert out.startswith("# Postmortem: High error rate on checkout (pm)\n")
    for h in ("## Summary", "## Impact", "## Detection and mitigation",
              "## Timeline (All times UTC)", "## Root Cause Analysis", "### 5 Whys Analysis",
              "## What Went Well", "## What Went Poorly", "## Action Items",
              "## Lessons Learned"):
        assert "\n" + h + "\n" in out, h
    assert "it ended resolved" in out
    def utc(ts):
        return ts[:10] + " " + ts[11:19] + " UTC"
    assert "- **Detected**: " + utc(ev[0]["ts"]) in out
    writes = [e for e in ev if e["event"] == "would_run"]
    assert "- **First mitigation**: " + utc(writes[0]["ts"]) in out
    assert "rollback: approved by alice" in out
    assert rbtest.run(["postmortem", "nope"], state_dir=r.state_dir).code == 1
