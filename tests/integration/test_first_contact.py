"""First contact: what a newcomer meets before any infrastructure exists. A
drill resolves no secret and no inventory; approval hints and listings work
from any directory; the build needs no test tool."""
import os
import re
import shlex
import subprocess
import tempfile
import time

import rbtest

CHECKOUT = os.path.join(rbtest.SOURCE_DIR, "runbooks", "checkout-errors.lua")

# A config as a team would have it in production: the status channel's URL
# comes from an environment variable and the inventory has no `app` group.
PROD_CONFIG = """[ssh]
inventory = {inv}

[notify.status]
type = slack
url_env = STATUS_WEBHOOK_URL_NOT_SET_IN_TESTS

[notify.customers]
type = webhook
url_file = {missing}
"""


def prod_config(tmp_path):
    inv = rbtest.write(str(tmp_path / "hosts.ini"), "[web]\nweb-1 ansible_host=192.0.2.1\n")
    return rbtest.write(str(tmp_path / "runbook.conf"),
                        PROD_CONFIG.format(inv=inv, missing=str(tmp_path / "no-such-secret")))


def test_drill_resolves_no_secret_and_no_inventory(tmp_path):
    conf = prod_config(tmp_path)
    env = {"STATUS_WEBHOOK_URL_NOT_SET_IN_TESTS": ""}
    r = rbtest.run(["--config", conf, "drill", CHECKOUT], env=env)
    assert r.code == 0, r
    assert "is not set" not in r.stderr and "not set" not in r.stdout
    ev = r.timeline()
    posts = [e["detail"] for e in ev if e["event"] == "would_run" and e["detail"].get("op") == "http"]
    # one would_run per channel per status update, each naming its channel
    assert {p["url_from"] for p in posts} == {"notify.status.url", "notify.customers.url"}
    assert all(p["url"] == "[REDACTED]" for p in posts)
    ssh_ops = [e["detail"] for e in ev if e["event"] == "would_run" and e["detail"].get("op") == "ssh"]
    assert [o["host"] for o in ssh_ops] == ["app"]
    assert "(notify.status.url)" in r.stdout


def test_drill_of_database_branch_next_to_a_config_without_app_group(tmp_path):
    conf = prod_config(tmp_path)
    r = rbtest.run(["--config", conf, "drill", CHECKOUT, "--scenario", "database-unresolved"])
    # the scenario expects escalation; the walk matched (no exit 6)
    assert r.code != 6, r
    assert "names no hosts" not in r.stderr and "inventory" not in r.stderr
    ev = r.timeline()
    restart = [e for e in ev if e["step"] == "restart" and e["event"] == "would_run"]
    assert restart and restart[0]["detail"]["host"] == "app"


def test_exec_still_resolves_secrets(tmp_path):
    """The drill's leniency is the drill's alone: a real run that would post
    with an unset secret fails at the step, naming the variable."""
    conf = prod_config(tmp_path)
    book = rbtest.write(str(tmp_path / "n.lua"), """
return runbook {
  name = "n", title = "N", start = "tell",
  steps = {
    tell = notify { title = "Tell", phase = "Investigating", message = "looking", next = "done" },
    done = resolved { title = "Done" },
  },
}
""")
    r = rbtest.run(["--config", conf, "exec", book])
    assert r.code == 1, r
    assert "STATUS_WEBHOOK_URL_NOT_SET_IN_TESTS" in r.stderr


def test_approvals_names_the_state_dir_it_looked_in(tmp_path):
    state = str(tmp_path / "state")
    r = rbtest.run(["approvals"], state_dir=state)
    assert r.code == 0
    assert r.stdout.strip() == "no pending approvals in %s/approvals" % state


def test_relative_state_dir_is_made_absolute(tmp_path):
    os.makedirs(str(tmp_path / "here"))
    r = subprocess.run([rbtest.RUNBOOK_BIN, "--state-dir", "st", "approvals"], cwd=str(tmp_path / "here"),
                       capture_output=True, text=True)
    assert r.returncode == 0
    assert r.stdout.strip() == "no pending approvals in %s/approvals" % (tmp_path / "here" / "st")


GATE = """local cmd = require "cmd"
return runbook {
  name = "gate", title = "Gate", start = "act",
  params = { target = { required = true } },
  steps = {
    act = action { title = "Touch it", approval = true, run = function(ctx)
      return cmd.run({"touch", ctx.target}).code
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def test_approve_hint_works_from_another_directory(tmp_path):
    book = rbtest.write(str(tmp_path / "gate.lua"), GATE)
    target = str(tmp_path / "touched")
    work = tmp_path / "work"
    os.makedirs(str(work))
    # the exec runs with a relative state dir from its own directory
    p = subprocess.Popen([rbtest.RUNBOOK_BIN, "--state-dir", "st", "exec", book, "--var",
                          "target=" + target], cwd=str(work), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    hint = None
    deadline = time.time() + 15
    buf = ""
    while time.time() < deadline and hint is None:
        line = p.stdout.readline()
        if not line:
            break
        buf += line
        m = re.search(r"approve with: (.*?)   \(deny", line)
        if m:
            hint = m.group(1)
    assert hint is not None, buf
    assert "--state-dir %s" % (work / "st") in hint
    assert hint.startswith(os.path.realpath(rbtest.RUNBOOK_BIN))
    # another shell, another directory, no options of its own
    other = tempfile.mkdtemp()
    r = subprocess.run(hint + " --as tester", shell=True, cwd=other, capture_output=True,
                       text=True, env={k: v for k, v in os.environ.items() if k != "XDG_STATE_HOME"})
    assert r.returncode == 0, r.stderr
    p.communicate(timeout=20)
    assert p.returncode == 0
    assert os.path.exists(target)
    assert shlex.split(hint)[1] == "--state-dir"


def test_show_into_a_closed_pipe_ends_quietly(tmp_path):
    """`runbook show X | head -1`: the reader leaving is not a crash. The
    runbook is long enough that its picture overflows the pipe's buffer."""
    n = 3000
    steps = "\n".join('    s%d = action { title = "Step %d", run = function() end, next = "%s" },'
                      % (i, i, "s%d" % (i + 1) if i + 1 < n else "done") for i in range(n))
    book = rbtest.write(str(tmp_path / "long.lua"), 'return runbook { name = "long", '
                        'title = "Long", start = "s0", steps = {\n%s\n'
                        '    done = resolved { title = "Done" },\n} }\n' % steps)
    cmd = "%s --state-dir %s show %s --format dot | head -1" % (
        shlex.quote(rbtest.RUNBOOK_BIN), shlex.quote(str(tmp_path)), shlex.quote(book))
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True,
                       cwd=rbtest.SOURCE_DIR)
    assert r.stdout == "digraph runbook {\n", r
    assert r.returncode == 0, r
    assert "signal" not in r.stderr, r.stderr
