"""Every example in the docs runs as a test. A fenced block whose info
string says `example` (```` ```lua example mode=drill exit=0 ````) is
extracted from README.md and docs/*.md and run with the real binary; the
blocks right after it that say `scenario`, `config` or `output` belong to
it. The conventions are in docs/runbooks.md, "Examples are tests". A doc
example that is wrong fails here, at its file and line."""
import glob
import json
import os
import re
import shutil
import socket
import subprocess

import pytest

import rbtest

DOCS = [os.path.join(rbtest.SOURCE_DIR, "README.md")] + sorted(
    glob.glob(os.path.join(rbtest.SOURCE_DIR, "docs", "*.md")))
ATTACHED = ("scenario", "config", "output")
KINDS = ("runbook", "action", "check")
MODES = ("check", "drill", "dry-run", "exec")
TOUR_DIR = "/tmp/runbook-tour"  # the tour's paths and ports, replaced per test
TOUR_PORTS = ("9093", "9095")


def fences(path):
    """Every fenced block of a markdown file: (line, lang, words, attrs, text)."""
    out, cur = [], None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            m = re.match(r"^```(.*)$", line.rstrip("\n"))
            if cur is None and m:
                info = m.group(1).split()
                words = [w for w in info[1:] if "=" not in w]
                attrs = dict(w.split("=", 1) for w in info[1:] if "=" in w)
                cur = {"line": n, "lang": info[0] if info else "", "words": words,
                       "attrs": attrs, "text": []}
            elif cur is not None and line.rstrip("\n") == "```":
                cur["text"] = "".join(cur["text"])
                out.append(cur)
                cur = None
            elif cur is not None:
                cur["text"].append(line)
    assert cur is None, "%s:%d: a fence that never closes" % (path, cur["line"])
    return out


def examples():
    found = []
    for path in DOCS:
        last = None
        for b in fences(path):
            b["file"] = os.path.relpath(path, rbtest.SOURCE_DIR)
            role = b["words"][0] if b["words"] else None
            if role == "example":
                b["parts"] = {}
                found.append(b)
                last = b
            elif role in ATTACHED:
                assert last is not None, "%s:%d: %s block with no example before it" % (
                    b["file"], b["line"], role)
                assert role not in last["parts"], "%s:%d: second %s block" % (
                    b["file"], b["line"], role)
                last["parts"][role] = b
            else:
                last = None
    return found


EXAMPLES = examples()
LUA = [e for e in EXAMPLES if e["lang"] == "lua"]
SHELL = [e for e in EXAMPLES if e["lang"] == "sh"]


def ident(e):
    return "%s:%d" % (e["file"], e["line"])


def test_every_lua_block_in_the_docs_is_an_example():
    """A lua block that is not run could be wrong: there are none."""
    untested = []
    for path in DOCS:
        for b in fences(path):
            if b["lang"] == "lua" and "example" not in b["words"]:
                untested.append("%s:%d" % (os.path.relpath(path, rbtest.SOURCE_DIR),
                                           b["line"]))
    assert not untested, "lua blocks without 'example': %s" % ", ".join(untested)
    assert len(LUA) >= 10 and len(SHELL) >= 3, (len(LUA), len(SHELL))


def test_every_json_block_in_the_docs_parses():
    bad = []
    for path in DOCS:
        for b in fences(path):
            if b["lang"] == "json":
                try:
                    json.loads(b["text"])
                except ValueError as err:
                    bad.append("%s:%d: %s" % (os.path.relpath(path, rbtest.SOURCE_DIR),
                                              b["line"], err))
    assert not bad, "\n".join(bad)


TRIVIAL = 'return runbook { name = "t", title = "t", start = "done", ' \
    'steps = { done = resolved { title = "done" } } }\n'


def test_every_settings_block_in_the_docs_loads(tmp_path):
    """A ```ini block is a settings file (docs/config.md) unless it says
    `inventory`: each loads, every key known and every value well typed."""
    book = rbtest.write(str(tmp_path / "t.lua"), TRIVIAL)
    bad, n = [], 0
    for path in DOCS:
        for b in fences(path):
            if b["lang"] != "ini" or "inventory" in b["words"]:
                continue
            n += 1
            conf = rbtest.write(str(tmp_path / ("c%d.conf" % n)), b["text"])
            r = rbtest.run(["--config", conf, "check", book])
            if r.code != 0:
                bad.append("%s:%d: %s" % (os.path.relpath(path, rbtest.SOURCE_DIR), b["line"],
                                          r.stderr.strip()))
    assert not bad, "\n".join(bad)
    assert n >= 5, n


def wrap(e):
    """The runbook file an example makes: itself, or a fragment as the body of
    an action's (or a check's) run function."""
    text = e["text"]
    kind = e["attrs"].get("kind") or ("runbook" if re.search(r"\breturn runbook\b", text)
                                      else "action")
    assert kind in KINDS, "%s: kind=%s is not one of %s" % (ident(e), kind, KINDS)
    if kind == "runbook":
        return text
    body = "\n".join("      " + ln for ln in text.splitlines())
    if kind == "check":
        step = "check {\n    title = \"the example\",\n    run = function(ctx)\n%s\n    end,\n" \
               "    on = { default = \"done\" },\n  }" % body
    else:
        step = "action {\n    title = \"the example\",\n    run = function(ctx)\n%s\n    end,\n" \
               "    next = \"done\",\n  }" % body
    return ("return runbook {\n  name = \"doc-example\", title = \"doc example\",\n"
            "  start = \"example\",\n  steps = {\n  example = %s,\n"
            "  done = resolved { title = \"done\" },\n  },\n}\n" % step)


def expect_output(e, out, fix=lambda t: t):
    """Each line of the output block appears in out; `...` stands for anything."""
    part = e["parts"].get("output")
    if part is None:
        return
    for line in fix(part["text"]).splitlines():
        if not line.strip():
            continue
        pattern = ".*?".join(re.escape(p) for p in line.strip().split("..."))
        assert re.search(pattern, out), "%s: the output has no line like\n  %s\n--- got:\n%s" % (
            ident(e), line.strip(), out)


@pytest.mark.parametrize("e", LUA, ids=[ident(e) for e in LUA])
def test_lua_example(e, tmp_path):
    name = e["attrs"].get("file", "example.lua")
    rbtest.write(str(tmp_path / name), wrap(e))
    kind_runbook = e["attrs"].get("kind", "runbook" if "return runbook" in e["text"] else "")
    mode = e["attrs"].get("mode") or ("check" if kind_runbook == "runbook" and
                                      "scenario" not in e["parts"] else "drill")
    assert mode in MODES, "%s: mode=%s is not one of %s" % (ident(e), mode, MODES)
    args = []
    if "config" in e["parts"]:
        rbtest.write(str(tmp_path / "runbook.conf"), e["parts"]["config"]["text"])
        args += ["--config", "runbook.conf"]
    if mode == "check":
        args += ["check", name]
    else:
        args += ["drill" if mode == "drill" else "exec", name]
        if mode == "dry-run":
            args.append("--dry-run")
        if mode == "drill":
            scenario = e["parts"].get("scenario")
            rbtest.write(str(tmp_path / "scenario.json"),
                         scenario["text"] if scenario else '{"steps": {}}\n')
            args += ["--scenario", "scenario.json"]
    for kv in filter(None, e["attrs"].get("vars", "").split(",")):
        args += ["--var", kv]
    r = rbtest.run(args, cwd=str(tmp_path), stdin="")
    want = int(e["attrs"].get("exit", "0"))
    assert r.code == want, "%s: exit %d, want %d\n%r" % (ident(e), r.code, want, r)
    expect_output(e, r.stdout + r.stderr)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def tour_tree(tmp_path):
    """A working copy for the README's commands: the shipped runbooks, a copy
    of docs/examples with the tour's directory and ports made this test's
    own, and `runbook` on PATH."""
    tour = str(tmp_path / "tour")
    os.makedirs(tour)
    ports = {p: free_port() for p in TOUR_PORTS}
    os.symlink(os.path.join(rbtest.SOURCE_DIR, "runbooks"), str(tmp_path / "runbooks"))
    shutil.copytree(os.path.join(rbtest.SOURCE_DIR, "docs", "examples"),
                    str(tmp_path / "docs" / "examples"))
    for f in glob.glob(str(tmp_path / "docs" / "examples" / "**" / "*"), recursive=True):
        if os.path.isfile(f):
            with open(f) as fh:
                text = fh.read()
            with open(f, "w") as fh:
                fh.write(localise(text, tour, ports))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(rbtest.RUNBOOK_BIN, str(bindir / "runbook"))
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]), NO_COLOR="1",
               XDG_STATE_HOME=str(tmp_path / "state"), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    env.pop("RUNBOOK_PATH", None)
    return tour, ports, env


def localise(text, tour, ports):
    text = text.replace(TOUR_DIR, tour)
    for p, q in ports.items():
        text = re.sub(r"\b%s\b" % p, q, text)
    return text


@pytest.mark.parametrize("e", SHELL, ids=[ident(e) for e in SHELL])
def test_shell_example(e, tmp_path):
    for tool in filter(None, e["attrs"].get("needs", "").split(",")):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed" % tool)
    tour, ports, env = tour_tree(tmp_path)
    script = "set -euo pipefail\n" + localise(e["text"], tour, ports)
    p = subprocess.run(["bash", "-c", script], cwd=str(tmp_path), env=env, text=True,
                       capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
                       start_new_session=True)
    want = int(e["attrs"].get("exit", "0"))
    out = p.stdout + p.stderr
    assert p.returncode == want, "%s: exit %d, want %d\n%s" % (ident(e), p.returncode, want,
                                                                 out)
    expect_output(e, out, lambda t: localise(t, tour, ports))


def test_the_readme_keeps_its_two_commands():
    with open(os.path.join(rbtest.SOURCE_DIR, "README.md")) as f:
        text = f.read()
    assert "\n    .ci/drill\n" in text and "\n    .ci/test\n" in text
