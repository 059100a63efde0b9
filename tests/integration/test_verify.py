"""test_verify: the timeline's hash chain against the real binary. `runbook
verify` on untouched timelines of a drill and an exec, and on files edited,
cut and reordered by hand; `runbook timeline` on an unparseable middle line
and a torn last line (docs/timeline.md)."""
import hashlib
import json
import os

import rbtest

BOOK = """
return runbook {
  name = "touchy", title = "Touchy", start = "a",
  params = { target = { required = true } },
  steps = {
    a = action { title = "A", run = function(ctx) return cmd.run({"touch", ctx.target}).code end,
                 next = "b" },
    b = action { title = "B", run = function(ctx) return cmd.run({"true"}).code end,
                 next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def exec_incident(tmp_path, incident="v"):
    book = rbtest.write(str(tmp_path / "touchy.lua"), BOOK)
    target = str(tmp_path / "touched")
    r = rbtest.run(["exec", book, "--incident", incident, "--var", "target=" + target])
    assert r.code == 0, r
    assert os.path.exists(target)
    return r, os.path.join(r.state_dir, "incidents", incident + ".jsonl")


def lines_of(path):
    with open(path) as f:
        return f.read().splitlines()


def put(path, lines):
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))


def verify(r, incident="v"):
    return rbtest.run(["verify", incident], state_dir=r.state_dir)


def test_untouched_exec_verifies_and_every_line_chains(tmp_path):
    r, path = exec_incident(tmp_path)
    lines = lines_of(path)
    assert json.loads(lines[0])["event"] == "timeline_header"
    for i in range(1, len(lines)):  # recomputed here, independently of the writer
        ev = json.loads(lines[i])
        assert ev["seq"] == i
        assert ev["prev"] == hashlib.sha256(lines[i - 1].encode()).hexdigest()
    v = verify(r)
    assert v.code == 0, v
    assert v.stdout.startswith("%d events verify\n" % (len(lines) - 1)), v
    head = hashlib.sha256(lines[-1].encode()).hexdigest()
    assert "head sha256 " + head in v.stdout


def test_untouched_drill_verifies(tmp_path):
    r = rbtest.run(["drill", "checkout-errors", "--incident", "d"])
    assert r.code == 0, r
    n = len(lines_of(os.path.join(r.state_dir, "incidents", "d.jsonl")))
    v = verify(r, "d")
    assert v.code == 0, v
    assert v.stdout.startswith("%d events verify" % (n - 1)), v


def test_two_runs_in_one_incident_form_one_chain(tmp_path):
    r, path = exec_incident(tmp_path)
    book = str(tmp_path / "touchy.lua")
    r2 = rbtest.run(["exec", book, "--incident", "v", "--var", "target=" + str(tmp_path / "t2")],
                    state_dir=r.state_dir)
    assert r2.code == 0, r2
    lines = lines_of(path)
    assert sum(1 for line in lines if "timeline_header" in line) == 1
    v = verify(r)
    assert v.code == 0 and v.stdout.startswith("%d events verify" % (len(lines) - 1)), v


def test_edited_middle_line_fails_naming_it(tmp_path):
    r, path = exec_incident(tmp_path)
    lines = lines_of(path)
    assert '"step":"a"' in lines[2]
    lines[2] = lines[2].replace('"step":"a"', '"step":"z"')
    put(path, lines)
    v = verify(r)
    assert v.code == 1, v
    assert "%s:3: does not chain: edited" % path in v.stdout, v


def test_deleted_line_fails_naming_the_line_after_the_gap(tmp_path):
    r, path = exec_incident(tmp_path)
    lines = lines_of(path)
    del lines[3]
    put(path, lines)
    v = verify(r)
    assert v.code == 1, v
    assert "%s:4: does not chain: deleted: 1 event(s) missing" % path in v.stdout, v


def test_reordered_lines_fail_naming_the_first(tmp_path):
    r, path = exec_incident(tmp_path)
    lines = lines_of(path)
    lines[3], lines[4] = lines[4], lines[3]
    put(path, lines)
    v = verify(r)
    assert v.code == 1, v
    assert "%s:4: does not chain: reordered" % path in v.stdout, v


def test_timeline_written_before_chaining_is_reported_unchained(tmp_path):
    r, path = exec_incident(tmp_path)
    plain = []
    for line in lines_of(path)[1:]:
        ev = json.loads(line)
        ev.pop("seq")
        ev.pop("prev")
        plain.append(json.dumps(ev, separators=(",", ":")))
    put(path, plain)
    v = verify(r)
    assert v.code == 1, v
    assert "lines 1-%d unchained (written before hash chaining)" % len(plain) in v.stdout, v


def test_unparseable_middle_line_fails_timeline_and_verify(tmp_path):
    r, path = exec_incident(tmp_path)
    lines = lines_of(path)
    lines[3] = lines[3][:20]
    put(path, lines)
    for fmt in ("text", "json", "markdown"):
        t = rbtest.run(["timeline", "v", "--format", fmt], state_dir=r.state_dir)
        assert t.code == 1, t
        assert "%s:4: unparseable" % path in t.stderr, t
    # the other events are still shown
    t = rbtest.run(["timeline", "v", "--format", "json"], state_dir=r.state_dir)
    assert len(t.stdout.splitlines()) == len(lines) - 1
    v = verify(r)
    assert v.code == 1 and "%s:4: does not chain: unparseable" % path in v.stdout, v
    # resume reads the same journal: it refuses rather than guess
    run = json.loads(lines[1])["run"]
    res = rbtest.run(["resume", run], state_dir=r.state_dir)
    assert res.code != 0 and ":4: unparseable" in res.stderr, res


def test_torn_last_line_is_a_warning(tmp_path):
    r, path = exec_incident(tmp_path)
    n = len(lines_of(path))
    with open(path, "a") as f:
        f.write('{"ts":"2026-11-22T10:00:00.000Z","event":"sta')
    t = rbtest.run(["timeline", "v"], state_dir=r.state_dir)
    assert t.code == 0, t
    assert "%s:%d: ignoring torn last timeline line" % (path, n + 1) in t.stderr, t
    v = verify(r)
    assert v.code == 0, v
    assert v.stdout.startswith("%d events verify" % (n - 1)), v
    assert "%s:%d: torn last line" % (path, n + 1) in v.stderr, v


def test_verify_of_unknown_incident_fails(tmp_path):
    r, _ = exec_incident(tmp_path)
    v = verify(r, "nope")
    assert v.code == 1 and "no timeline for incident 'nope'" in v.stderr, v
    v = rbtest.run(["verify"], state_dir=r.state_dir)
    assert v.code == 2, v
