"""A wait on the terminal: one line rewritten in place per poll (poll n,
elapsed of timeout, what the condition said) when stdout is a TTY, a plain
line per poll otherwise; never a "failed" line per failing read."""
import os
import pty
import subprocess

import rbtest

WAITER = """
local cmd = require "cmd"
local n = 0
return runbook {
  name = "waiter",
  title = "Wait for recovery",
  start = "watch",
  steps = {
    watch = wait {
      title = "Recovered?",
      until_ = function(ctx)
        n = n + 1
        if n < 3 then cmd.read({"sh", "-c", "exit 1"}) end
        return n >= 5
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


def run_on_pty(args, state_dir):
    master, slave = pty.openpty()
    env = dict(os.environ, NO_COLOR="1")
    p = subprocess.Popen([rbtest.RUNBOOK_BIN, "--state-dir", state_dir] + args,
                         stdout=slave, stderr=slave, env=env, cwd=rbtest.SOURCE_DIR)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert p.wait(timeout=60) == 0, out
    return out.decode()


def test_wait_rewrites_one_line_on_a_terminal(tmp_path):
    book = rbtest.write(str(tmp_path / "waiter.lua"), WAITER)
    out = run_on_pty(["exec", book], str(tmp_path / "state"))
    polls = out.split("\r\x1b[K")
    assert len(polls) == 6, repr(out)  # what came before, then five polls
    assert polls[1].startswith("      poll 1, ") and " of 10" in polls[1]
    assert polls[1].endswith(": command 'sh' exited with code 1")
    assert polls[3].endswith(": not yet (false)")
    assert polls[5].startswith("      poll 5, ") and polls[5].split("\r\n")[0].endswith(": true")
    assert "\n" not in "".join(polls[1:5]), "the poll line is rewritten, not repeated"
    assert "failed" not in out
    assert "+ watch                true -> ok" in polls[5]


def test_wait_prints_plain_lines_when_not_a_terminal(tmp_path):
    book = rbtest.write(str(tmp_path / "waiter.lua"), WAITER)
    r = rbtest.run(["exec", book])
    assert r.code == 0, r
    assert "\x1b" not in r.stdout and "\r" not in r.stdout
    lines = [ln.strip() for ln in r.stdout.splitlines() if ln.strip().startswith("poll ")]
    assert len(lines) == 5, r.stdout
    assert lines[0].endswith("command 'sh' exited with code 1")
    assert lines[4].startswith("poll 5, ") and lines[4].endswith(": true")
    assert "failed" not in r.stdout
