#!/usr/bin/env python3
"""layers.py: lists the #include "..." lines of every C file of the product
and asserts the layer rule of docs/design.md ("Layers"):

    cli (runner/main.c) -> runner core -> {sandbox, host interface} -> base
    stdlib modules and plugins -> {host interface, stdlib, base}

nothing points back up. The CMake layer views make a wrong include fail the
build; this test also catches what a view can not see ("../" paths, a file
put in the wrong directory) and holds the plugins to the host interface for
redaction. `layers.py --exports BINARY PLUGIN...` checks what the built
files export: the binary the functions declared in stdlib/rb_host.h, each
plugin its descriptor alone. `layers.py --graph [ROOT]` prints the directory-level include
graph instead (for any checkout, before or after)."""
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SOURCES = ("runner", "sandbox", "stdlib")

# Which layers each layer may include. "openers" is stdlib/modules.h, the
# list of C module openers the runner assembles into the sandbox's table.
ALLOWED = {
    "base": {"base"},
    "host": {"host"},
    "sandbox": {"sandbox", "base"},
    "stdlib": {"stdlib", "openers", "host", "base"},
    "runner": {"runner", "sandbox", "host", "openers", "base"},
    "cli": {"runner", "host", "base"},
}
# Code built into a plugin: it must reach the process's one secret registry
# through rb_host_redact, never link base's redactor itself.
PLUGIN_DIRS = ("stdlib/http", "stdlib/ssh", "stdlib/serve")
PLUGIN_FILES = ("stdlib/http.c", "stdlib/ssh.c")


def layer_of(rel):
    # The host interface: rb_host.h and the vocabulary it includes.
    if rel in ("stdlib/rb_host.h", "stdlib/policy.h"):
        return "host"
    if rel == "stdlib/modules.h":
        return "openers"
    if rel == "runner/main.c":
        return "cli"
    if rel.startswith("runner/base/"):
        return "base"
    return rel.split("/", 1)[0]


def c_files(root):
    for top in SOURCES:
        for d, _, names in os.walk(os.path.join(root, top)):
            for n in sorted(names):
                if n.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, n), root)


def includes(root, rel):
    """(line, include text, resolved path relative to root or None)."""
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        text = f.read()
    for m in INCLUDE.finditer(text):
        inc = m.group(1)
        line = text.count("\n", 0, m.start()) + 1
        here = os.path.normpath(os.path.join(os.path.dirname(rel), inc))
        if os.path.exists(os.path.join(root, here)):
            yield line, inc, here
        elif os.path.exists(os.path.join(root, inc)):
            yield line, inc, os.path.normpath(inc)
        else:
            yield line, inc, None


def check(root):
    problems = []
    for rel in c_files(root):
        me = layer_of(rel)
        for line, inc, target in includes(root, rel):
            where = "%s:%d: #include \"%s\"" % (rel, line, inc)
            if ".." in inc.split("/"):
                problems.append(where + ": a path that climbs out of its layer's view")
            elif target is None:
                problems.append(where + ": no such file in the tree")
            elif layer_of(target) not in ALLOWED[me] and layer_of(target) != me:
                problems.append("%s: layer %s may not include layer %s" %
                                (where, me, layer_of(target)))
        in_plugin = rel.startswith(PLUGIN_DIRS) or rel in PLUGIN_FILES
        if in_plugin:
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                for n, text in enumerate(f, 1):
                    if re.search(r"\brb_redact_\w+\s*\(", text):
                        problems.append("%s:%d: a plugin redacts through rb_host_redact, "
                                        "not base's registry" % (rel, n))
    return problems


def graph(root):
    edges = {}
    for rel in c_files(root):
        src = os.path.dirname(rel)
        for _, _, target in includes(root, rel):
            if target is not None and os.path.dirname(target) != src:
                key = (src, os.path.dirname(target))
                edges[key] = edges.get(key, 0) + 1
    for (a, b), n in sorted(edges.items()):
        print("%-14s -> %-14s %d" % (a, b, n))


def dynamic_symbols(path):
    out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True,
                         text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines()
            if line.split() and line.split()[-1].startswith(("rb_", "sb_", "luaopen_"))}


def exports(root, binary, plugins):
    with open(os.path.join(root, "stdlib", "rb_host.h"), encoding="utf-8") as f:
        declared = set(re.findall(r"^[a-z][a-z0-9_ ]*[ *](rb_[a-z0-9_]+)\(", f.read(), re.M))
    problems = []
    got = dynamic_symbols(binary)
    for name in sorted(got - declared):
        problems.append("%s exports %s, which stdlib/rb_host.h does not declare" %
                        (binary, name))
    for name in sorted(declared - got):
        problems.append("%s does not export %s (stdlib/rb_host.h)" % (binary, name))
    for p in plugins:
        got = dynamic_symbols(p)
        if got != {"rb_plugin_descriptor"}:
            problems.append("%s exports %s, not rb_plugin_descriptor alone" %
                            (p, ", ".join(sorted(got)) or "nothing"))
    return problems


def main(argv):
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if len(argv) > 2 and argv[1] == "--exports":
        problems = exports(here, argv[2], argv[3:])
        for p in problems:
            print(p)
        print("exports: %s" % ("%d problem(s)" % len(problems) if problems else "as declared"))
        return 1 if problems else 0
    if len(argv) > 1 and argv[1] == "--graph":
        graph(argv[2] if len(argv) > 2 else here)
        return 0
    problems = check(here)
    for p in problems:
        print(p)
    if problems:
        print("%d include(s) break the layer rule (docs/design.md, Layers)" % len(problems))
        return 1
    print("layers: every #include follows the rule")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
