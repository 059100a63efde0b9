"""Who may approve: quorum counted by identity (a second uid), not_self,
from, and the timeline of answers and refusals."""
import json
import os
import pwd
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import rbtest  # noqa: E402

OTHER = "rbapprover2"

BOOK = """return runbook {
  name = "gate", title = "Gate", start = "act",
  approval_policy = { min = %(min)d, from = { %(from)s }, not_self = %(not_self)s },
  steps = {
    act = action { title = "Fail over", approval = true, run = function(ctx)
      return true end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def other_account():
    try:
        pwd.getpwnam(OTHER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", OTHER],
                       check=True)
    return OTHER


def start(tmp, min_=1, frm='"root"', not_self="false"):
    book = rbtest.write(os.path.join(str(tmp), "b.lua"),
                        BOOK % {"min": min_, "from": frm, "not_self": not_self})
    state = tempfile.mkdtemp()
    os.chmod(state, 0o777)
    p = subprocess.Popen([rbtest.RUNBOOK_BIN, "--state-dir", state, "exec", book,
                          "--incident", "i"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        r = rbtest.run(["approvals"], state_dir=state)
        if "no pending approvals" not in r.stdout and r.stdout.strip():
            run, step = r.stdout.split()[:2]
            subprocess.run(["chmod", "-R", "a+rwX", os.path.join(state, "approvals")])
            return p, state, run, step
        time.sleep(0.1)
    p.kill()
    raise AssertionError("no approval request appeared")


def approve_as(account, state, run, step, *extra):
    return subprocess.run(["setpriv", "--reuid", account, "--regid", account,
                           "--clear-groups", rbtest.RUNBOOK_BIN, "--state-dir", state,
                           "approve", run, step] + list(extra),
                          capture_output=True, text=True)


def events(state):
    return rbtest.Result(subprocess.CompletedProcess([], 0, "", ""), state).timeline("i")


def test_quorum_of_two_counts_identities_and_refuses_a_repeat(tmp_path):
    other = other_account()
    p, state, run, step = start(tmp_path, 2, '"root", "%s"' % other)
    r = rbtest.run(["approve", run, step], state_dir=state)
    assert r.code == 0 and "1 of 2 from root/%s; answered: root" % other in r.stdout, r
    time.sleep(0.6)
    assert p.poll() is None  # one answer keeps it waiting
    r = rbtest.run(["approvals"], state_dir=state)
    assert "needs 1 of 2" in r.stdout and "answered: root" in r.stdout, r.stdout
    r = rbtest.run(["approve", run, step, "--as", "someone-else"], state_dir=state)
    assert r.code == 1 and "root already answered" in r.stderr, r
    r = approve_as(other, state, run, step)
    assert r.returncode == 0, r.stderr
    p.communicate(timeout=20)
    assert p.returncode == 0
    ev = events(state)
    ok = [e for e in ev if e["event"] == "approved"][0]
    assert sorted(a["identity"] for a in ok["detail"]["answers"]) == sorted(["root", other])
    answered = [e for e in ev if e["event"] == "approval_answered"]
    assert [e["detail"]["channel"] for e in answered] == ["cli", "cli"]
    req = [e for e in ev if e["event"] == "approval_requested"][0]
    assert req["detail"]["policy"]["min"] == 2


def test_not_self_refuses_the_starter(tmp_path):
    other = other_account()
    p, state, run, step = start(tmp_path, 1, '"root", "%s"' % other, "true")
    r = rbtest.run(["approve", run, step], state_dir=state)
    assert r.code == 1
    assert "refused by approval_policy (not_self): root started this run" in r.stderr
    assert approve_as(other, state, run, step).returncode == 0
    p.communicate(timeout=20)
    assert p.returncode == 0
    ev = events(state)
    ref = [e for e in ev if e["event"] == "approval_refused"]
    assert ref and ref[0]["detail"]["identity"] == "root"
    assert "not_self" in ref[0]["detail"]["reason"]


def test_from_refuses_an_outsider(tmp_path):
    other = other_account()
    p, state, run, step = start(tmp_path, 1, '"root"')
    r = approve_as(other, state, run, step)
    assert r.returncode == 1
    assert "refused by approval_policy: %s is not in from = [\"root\"]" % other in r.stderr
    assert p.poll() is None
    assert rbtest.run(["approve", run, step, "--deny"], state_dir=state).code == 0
    p.communicate(timeout=20)
    assert p.returncode == 4


CONFIRM_BOOK = """return runbook {
  name = "gate", title = "Gate", start = "act",
  steps = {
    act = action { title = "Drop the cache", approval = { confirm = "checkout-db" },
      run = function(ctx) return true end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def start_book(tmp, text):
    book = rbtest.write(os.path.join(str(tmp), "c.lua"), text)
    state = tempfile.mkdtemp()
    p = subprocess.Popen([rbtest.RUNBOOK_BIN, "--state-dir", state, "exec", book,
                          "--incident", "i"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        r = rbtest.run(["approvals"], state_dir=state)
        if "no pending approvals" not in r.stdout and r.stdout.strip():
            return p, state, r.stdout.split()[0], r.stdout.split()[1]
        time.sleep(0.1)
    p.kill()
    raise AssertionError("no approval request appeared")


def test_confirm_gate_needs_the_word_from_runbook_approve(tmp_path):
    p, state, run, step = start_book(tmp_path, CONFIRM_BOOK)
    r = rbtest.run(["approvals"], state_dir=state)
    assert "approving needs the word 'checkout-db' (--confirm checkout-db)" in r.stdout
    r = rbtest.run(["approve", run, step], state_dir=state)
    assert r.code == 1
    assert ("refused by step 'act' (confirm): approving needs the word 'checkout-db'"
            in r.stderr), r
    assert "--confirm WORD" in r.stderr
    r = rbtest.run(["approve", run, step, "--confirm", "checkout"], state_dir=state)
    assert r.code == 1 and "the answer gave another" in r.stderr, r
    time.sleep(0.6)
    assert p.poll() is None
    # on a terminal, the word is asked for
    import pty
    master, slave = pty.openpty()
    q = subprocess.Popen([rbtest.RUNBOOK_BIN, "--state-dir", state, "approve", run, step],
                         stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    os.close(slave)
    os.write(master, b"checkout-db\n")
    out, err = q.communicate(timeout=20)
    os.close(master)
    assert q.returncode == 0, err
    assert "step 'act' asks for a confirm word: type 'checkout-db' to approve" in err
    p.communicate(timeout=20)
    assert p.returncode == 0
    ev = events(state)
    ref = [e["detail"] for e in ev if e["event"] == "approval_refused"]
    assert len(ref) == 2 and all("(confirm)" in r["reason"] for r in ref)
    ok = [e for e in ev if e["event"] == "approved"][0]["detail"]
    assert ok["answers"][0]["confirmed"] is True and ok["via"] == "cli"


def test_a_denial_needs_no_confirm_word(tmp_path):
    p, state, run, step = start_book(tmp_path, CONFIRM_BOOK)
    assert rbtest.run(["approve", run, step, "--deny"], state_dir=state).code == 0
    p.communicate(timeout=20)
    assert p.returncode == 4


def test_an_approval_file_without_the_word_is_refused_by_the_run(tmp_path):
    """A file written past `runbook approve` (same account) still needs the word."""
    p, state, run, step = start_book(tmp_path, CONFIRM_BOOK)
    forged = os.path.join(state, "approvals", run, "%s.answer.%s.json" % (step, rb_account()))
    with open(forged + ".part", "w") as f:
        json.dump({"identity": rb_account(), "approve": True, "comment": "",
                   "channel": "cli", "at": "2026-01-01T00:00:00.000Z"}, f)
    os.rename(forged + ".part", forged)
    deadline, ref = time.time() + 10, []
    while time.time() < deadline and not ref:
        ref = [e["detail"]["reason"] for e in events(state)
               if e["event"] == "approval_refused"]
        time.sleep(0.1)
    assert any("does not carry the confirm word" in r for r in ref), ref
    assert p.poll() is None
    assert rbtest.run(["cancel", run], state_dir=state).code == 0
    p.communicate(timeout=20)
    assert p.returncode == 4


def rb_account():
    return pwd.getpwuid(os.getuid()).pw_name
