"""Long operations on the terminal: a fan-out's hosts done of total,
failures so far and the host it is waiting for, and a long local command's
"waiting for `argv`: 12 s of 1m", each as one line rewritten in place on a
TTY; plain lines, without escape sequences, when stdout is not a terminal."""
import os
import pty
import subprocess

import pytest

import rbtest
import sshd

FANOUT = """
local ssh = require "ssh"
return runbook {
  name = "fanout", title = "Restart everywhere",
  start = "restart",
  steps = {
    restart = action { title = "Restart", run = function(ctx)
        local r = ssh.run("app", [[%s]], { allow_fail = true, max_fail = 5 })
        return { failed = r.failed, succeeded = r.succeeded }
      end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


@pytest.fixture(scope="module")
def cluster():
    c = sshd.Cluster(3)
    c.write_known_hosts()
    yield c
    c.stop()


def book(cluster, tmp_path):
    slow, bad = cluster.servers[0].port, cluster.servers[1].port
    # the first host takes 2.5 s, the second fails: the line shows both
    cmd = ('case "$SSH_CONNECTION" in *" %d") sleep 2.5;; *" %d") exit 3;; esac; echo ok'
           % (slow, bad))
    return rbtest.write(str(tmp_path / "fanout.lua"), FANOUT % cmd)


def run_on_pty(args):
    master, slave = pty.openpty()
    env = dict(os.environ, NO_COLOR="1")
    p = subprocess.Popen([rbtest.RUNBOOK_BIN] + args, stdout=slave, stderr=slave, env=env,
                         cwd=rbtest.SOURCE_DIR)
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


def test_fanout_rewrites_one_status_line_on_a_terminal(cluster, tmp_path):
    state = str(tmp_path / "state")
    out = run_on_pty(["--state-dir", state, "--config", cluster.config(), "exec",
                      book(cluster, tmp_path)])
    parts = out.split("\r\x1b[K")
    status = [p.split("\r\n")[0] for p in parts[1:]]
    assert status, repr(out)
    assert all(s.startswith("      ssh: ") for s in status), status
    # while the slow host runs, the line names it; the last one stays on screen
    waiting = [s for s in status if "waiting for app-1" in s]
    assert waiting and "1 running" in waiting[-1], status
    assert status[-1].startswith("      ssh: 3/3 hosts done, 1 failed, "), status
    assert "running" not in status[-1]
    assert "\n" in parts[-1] and "+ restart" in parts[-1], repr(parts[-1])


def test_fanout_prints_plain_lines_when_not_a_terminal(cluster, tmp_path):
    r = rbtest.run(["--config", cluster.config(), "exec", book(cluster, tmp_path)])
    assert r.code == 0, r
    assert "\x1b" not in r.stdout and "\r" not in r.stdout
    lines = [ln.strip() for ln in r.stdout.splitlines() if ln.strip().startswith("ssh: ")]
    assert lines and lines[-1].startswith("ssh: 3/3 hosts done, 1 failed, "), r.stdout
    # every change of the counts is a line (at most one a second)
    assert any(ln.startswith("ssh: 2/3 hosts done, 1 failed, 1 running (waiting for app-1)")
               for ln in lines), r.stdout
    # a heartbeat (nothing finished) is printed at most every 30 s: in a
    # 2.5 s fan-out, only the changes are
    assert len(lines) <= 4, r.stdout


LONG = """
local cmd = require "cmd"
return runbook {
  name = "long", title = "A long command", start = "roll",
  steps = {
    roll = action { title = "Roll out", run = function(ctx)
        return cmd.run({ "sleep", "6.5" })
      end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def test_a_long_command_says_what_it_waits_for_on_a_terminal(tmp_path):
    book = rbtest.write(str(tmp_path / "long.lua"), LONG)
    out = run_on_pty(["--state-dir", str(tmp_path / "state"), "exec", book])
    parts = out.split("\r\x1b[K")
    status = [p.split("\r\n")[0] for p in parts[1:]]
    # nothing for the first 5 s, then about one a second, then the end
    assert 1 <= len(status) <= 4, status
    assert status[0].startswith("      waiting for `sleep 6.5`: 5"), status
    assert status[0].endswith(" of 1m00s")
    assert status[-1].startswith("      `sleep 6.5` ran for 6.")


def test_a_long_command_says_it_in_plain_lines_when_not_a_terminal(tmp_path):
    book = rbtest.write(str(tmp_path / "long.lua"), LONG)
    r = rbtest.run(["exec", book])
    assert r.code == 0, r
    assert "\x1b" not in r.stdout and "\r" not in r.stdout
    lines = [ln.strip() for ln in r.stdout.splitlines()]
    waiting = [ln for ln in lines if ln.startswith("waiting for `sleep 6.5`")]
    assert len(waiting) == 1, r.stdout  # then one every 30 s at most
    assert any(ln.startswith("`sleep 6.5` ran for 6.") for ln in lines), r.stdout
