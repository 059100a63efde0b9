"""The shared store (issue 17): `runbook store migrate` against a real
PostgreSQL 15 on loopback, and `runbook serve` replicas sharing its dedup:
one run per alert however many replicas get it, 503 while the database is
away and recovery when it returns."""
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

import rbtest
from httpservers import free_port, make_tls
from pgstore import PASSWORD, StorePostgres
from test_serve import TOKEN, Hook, Serve

COUNT_BOOK = """local http = require "http"
return runbook {
  name = "alert-count", title = "Count the run (test)", start = "hit",
  params = { counter = { required = true }, fp = { required = true } },
  steps = {
    hit = action { title = "Tell the counter", run = function(ctx)
      return http.post(ctx.counter .. "/hit/" .. ctx.fp, { body = "x", retries = 0 })
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


class Counter:
    """A local HTTP server the runs' actions call: hits per path."""

    def __init__(self):
        self.hits = {}
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                with outer.lock:
                    outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def total(self):
        with self.lock:
            return sum(self.hits.values())

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture(scope="module")
def pg():
    p = StorePostgres()
    yield p
    p.close()


@pytest.fixture
def db(pg):
    """A fresh, migrated schema for each test."""
    pg.psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION rb", db="rb")
    return pg


@pytest.fixture
def counter():
    c = Counter()
    yield c
    c.close()


def store_conf(pg, tmp, extra=""):
    pw = rbtest.write(os.path.join(str(tmp), "pgpass"), PASSWORD + "\n")
    os.chmod(pw, 0o600)
    return '[store]\nurl = "%s"\npassword_file = "%s"\n%s' % (pg.url(), pw, extra)


def store_cmd(tmp, conf, *args, env=None):
    path = rbtest.write(os.path.join(str(tmp), "store.conf"), conf)
    return rbtest.run(["--config", path, "store"] + list(args), env=env)


def migrate(pg, tmp):
    res = store_cmd(tmp, store_conf(pg, tmp), "migrate")
    assert res.code == 0, res


def test_migrate_is_versioned_idempotent_and_refuses_a_newer_database(db, tmp_path):
    conf = store_conf(db, tmp_path)
    res = store_cmd(tmp_path, conf, "status")
    assert res.code == 1 and "schema version 0 (this binary: 5)" in res.stdout, res
    res = store_cmd(tmp_path, conf, "migrate")
    assert res.code == 0 and "schema migrated from version 0 to 5" in res.stdout, res
    res = store_cmd(tmp_path, conf, "migrate")
    assert res.code == 0 and "schema version 5: up to date, nothing to do" in res.stdout
    assert res.stderr == "", res
    assert db.psql("SELECT version, name FROM rb_schema_migrations ORDER BY 1", db="rb") == [
        "1|dedup keys and replicas", "2|approval gates and answers across replicas",
        "3|run timelines and owners across replicas",
        "4|the confirm word of an answer across replicas",
        "5|Slack messages of gates and used Slack signatures across replicas"]
    res = store_cmd(tmp_path, conf, "status")
    assert res.code == 0 and res.stdout == "schema version 5 (this binary: 5)\nconnection: no TLS\n"
    # a database one migration behind is brought forward by one
    db.psql("DROP TABLE rb_slack_seen; ALTER TABLE rb_gates DROP COLUMN slack_channel, "
            "DROP COLUMN slack_ts; DELETE FROM rb_schema_migrations WHERE version = 5",
            db="rb")
    res = store_cmd(tmp_path, conf, "status")
    assert res.code == 1 and "schema version 4 (this binary: 5): run `runbook store migrate`" \
        in res.stdout, res
    s = Serve(tmp_path / "v4", conf_extra=conf)
    assert s.proc.wait(timeout=30) != 0, s.text()  # a version 4 database is not served
    assert "schema is version 4, this binary needs 5: run `runbook store migrate`" in s.text()
    res = store_cmd(tmp_path, conf, "migrate")
    assert res.code == 0 and "schema migrated from version 4 to 5" in res.stdout, res
    assert db.scalar("SELECT count(*) FROM information_schema.columns WHERE "
                     "table_name = 'rb_gates' AND column_name LIKE 'slack_%'") == "2"
    db.psql("DROP TABLE rb_events, rb_runs, rb_slack_seen; ALTER TABLE rb_answers DROP "
            "COLUMN confirm; ALTER TABLE rb_gates DROP COLUMN slack_channel, DROP COLUMN "
            "slack_ts; DELETE FROM rb_schema_migrations WHERE version >= 3", db="rb")
    res = store_cmd(tmp_path, conf, "migrate")
    assert res.code == 0 and "schema migrated from version 2 to 5" in res.stdout, res
    # a database a newer binary migrated: neither migrated nor served
    db.psql("INSERT INTO rb_schema_migrations VALUES (6, 'future', now(), 'test')", db="rb")
    res = store_cmd(tmp_path, conf, "migrate")
    assert res.code == 1, res
    assert "schema is version 6, newer than this binary's 5: refusing to touch it" in res.stderr
    s = Serve(tmp_path / "a", conf_extra=conf)
    assert s.proc.wait(timeout=30) != 0
    assert "newer than this binary's 5: upgrade runbook" in s.text(), s.text()


def test_serve_refuses_an_unmigrated_database(db, tmp_path):
    s = Serve(tmp_path, conf_extra=store_conf(db, tmp_path))
    assert s.proc.wait(timeout=30) != 0
    assert "schema is version 0, this binary needs 5: run `runbook store migrate`" in s.text()


def test_a_password_in_the_url_is_refused_and_never_printed(db, tmp_path):
    url = db.url().replace("rb@", "rb:%s@" % PASSWORD)
    res = store_cmd(tmp_path, '[store]\nurl = "%s"\n' % url, "migrate")
    assert res.code == 1, res
    assert "[store] url carries a password: remove it and set [store] password_env" in res.stderr
    assert PASSWORD not in res.stdout + res.stderr
    url = db.url() + "?password=" + PASSWORD
    res = store_cmd(tmp_path, '[store]\nurl = "%s"\n' % url, "migrate")
    assert res.code == 1 and "carries a password" in res.stderr, res


def test_password_from_the_environment_and_a_wrong_one(db, tmp_path):
    conf = '[store]\nurl = "%s"\npassword_env = "RB_TEST_PG_PW"\n' % db.url()
    res = store_cmd(tmp_path, conf, "migrate", env={"RB_TEST_PG_PW": PASSWORD})
    assert res.code == 0, res
    res = store_cmd(tmp_path, conf, "status", env={"RB_TEST_PG_PW": "not-the-password"})
    assert res.code == 1 and 'password authentication failed for user "rb"' in res.stderr
    res = store_cmd(tmp_path, conf, "status")  # variable unset: no password sent
    assert res.code == 1, res


def test_bad_store_settings_fail_closed(db, tmp_path):
    res = store_cmd(tmp_path, store_conf(db, tmp_path, 'sslmode = "verify-fuII"\n'), "status")
    assert res.code == 1 and "[store] sslmode: 'verify-fuII' is none of" in res.stderr, res
    res = store_cmd(tmp_path, '[store]\nurl = "host=127.0.0.1 dbname=rb"\n', "status")
    assert res.code == 1 and "[store] url must start with postgresql://" in res.stderr, res
    res = store_cmd(tmp_path, store_conf(db, tmp_path, "tls = true\n"), "status")
    assert res.code == 2 and "store.conf:4: unknown key 'tls' in [store]" in res.stderr, res
    res = store_cmd(tmp_path, "", "migrate")
    assert res.code == 3 and "[store] url is not set" in res.stderr, res
    # no TLS on this server: verify-full does not fall back to plaintext
    res = store_cmd(tmp_path, store_conf(db, tmp_path, 'sslmode = "verify-full"\n'), "status")
    assert res.code == 1 and "cannot connect" in res.stderr, res


def test_tls_verify_full_with_the_configured_ca(tmp_path):
    certs_dir = tmp_path / "tls"
    certs_dir.mkdir()
    certs = make_tls(str(certs_dir))
    p = StorePostgres(tls=certs)
    try:
        ok = store_conf(p, tmp_path, 'sslmode = "verify-full"\nsslrootcert = "%s"\n'
                        % certs["ca"])
        res = store_cmd(tmp_path, ok, "migrate")
        assert res.code == 0, res
        res = store_cmd(tmp_path, ok, "status")
        assert res.code == 0 and "connection: TLS TLSv1.3" in res.stdout, res
        # another CA: the server's certificate does not verify
        other = tmp_path / "other"
        other.mkdir()
        wrong = make_tls(str(other))["ca"]
        res = store_cmd(tmp_path, ok.replace(certs["ca"], wrong), "status")
        assert res.code == 1 and "certificate verify failed" in res.stderr, res
        # verify-full checks the name too: the certificate has no SAN for 127.0.0.2
        res = store_cmd(tmp_path, ok.replace("127.0.0.1", "127.0.0.2"), "status")
        assert res.code == 1, res
    finally:
        p.close()


# -- replicas ------------------------------------------------------------------

def count_rule(counter):
    return {"match": {"alertname": "Counted"}, "runbook": "alert-count", "mode": "exec",
            "vars": {"counter": counter.url, "fp": "{{fingerprint}}"}}


ALICE = "approver-alice-token-7d41c0"


def replica(tmp, name, pg, counter, extra=""):
    conf = store_conf(pg, tmp, 'replica = "%s"\n%s' % (name, extra))
    return Serve(os.path.join(str(tmp), name), conf_extra=conf,
                 books={"alert-count": COUNT_BOOK}, more_rules=[count_rule(counter)])


def counted(fps, starts_at="2026-12-01T10:00:00Z"):
    return json.dumps({"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "Counted", "n": fp},
         "annotations": {}, "startsAt": starts_at, "fingerprint": fp} for fp in fps]})


def incident_of(fp, starts_at="20261201T100000.000Z"):
    """The incident serve gives an alert of a batch without a groupKey: its
    own group, named by its fingerprint, and its firing (docs/serve.md)."""
    return "ALERT-%s-%s" % (fp, starts_at)


KO_INC = incident_of("ko0001")


def statuses(body):
    return {r["fingerprint"]: r["status"] for r in json.loads(body)}


def wait(fn, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out: " + what)


def started(s):
    return s.metrics().get("runbook_runs_started_total", 0)


@pytest.fixture
def pair(db, tmp_path, counter):
    migrate(db, tmp_path)
    a = replica(tmp_path, "a", db, counter)
    b = replica(tmp_path, "b", db, counter)
    assert a.port and b.port, a.text() + b.text()
    yield a, b
    for s in (a, b):
        if s.proc.poll() is None:
            assert s.stop() == 0, s.text()


def test_the_same_alerts_posted_to_both_replicas_start_one_run_each(pair, db, counter):
    a, b = pair
    fps = ["fp%04d" % i for i in range(40)]
    answers = {}

    def post(s, tag, chunk):
        code, body = s.post_alerts(counted(chunk))
        answers[(tag, chunk[0])] = (code, body)

    threads = []
    for i in range(0, len(fps), 5):  # both replicas get each batch at once
        for tag, s in (("a", a), ("b", b)):
            threads.append(threading.Thread(target=post, args=(s, tag, fps[i:i + 5])))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    per_fp = {}
    for (tag, _), (code, body) in answers.items():
        assert code == 202, body
        for fp, st in statuses(body).items():
            per_fp.setdefault(fp, []).append(st)
    for fp in fps:
        assert sorted(per_fp[fp]) in (["duplicate", "started"], ["duplicate", "queued"]), (
            fp, per_fp[fp])
    wait(lambda: counter.total() >= 40 and started(a) + started(b) == 40, 120,
         "40 runs: %d hits" % counter.total())
    a.wait_finished(started(a))
    b.wait_finished(started(b))
    assert counter.total() == 40, counter.hits
    assert all(counter.hits["/hit/" + fp] == 1 for fp in fps), counter.hits
    assert db.scalar("SELECT count(*) FROM rb_dedup") == "40"
    assert db.scalar("SELECT count(*) FROM rb_dedup WHERE hits = 1") == "40"
    owners = db.psql("SELECT owner, count(*) FROM rb_dedup GROUP BY owner", db="rb")
    assert {o.split("|")[0] for o in owners} <= {"a", "b"}
    assert db.scalar("SELECT count(*) FROM rb_dedup WHERE active") == "0"
    # every run's timeline is in the store, each run recorded once, finished
    wait(lambda: db.scalar("SELECT count(*) FROM rb_runs WHERE state = 'finished'") == "40",
         10, "40 runs finished in rb_runs")
    assert db.scalar("SELECT count(DISTINCT incident) FROM rb_events") == "40"
    # a resend to either replica within the window starts nothing
    for s in (a, b):
        code, body = s.post_alerts(counted(fps[:3]))
        assert set(statuses(body).values()) == {"duplicate"}, body
    time.sleep(0.5)
    assert counter.total() == 40
    assert "store: postgresql (replica a)" in a.request("GET", "/healthz")[1]


def test_losing_the_database_answers_503_and_recovers(pair, db, counter):
    a, b = pair
    code, body = a.post_alerts(counted(["before"]))
    assert code == 202 and statuses(body)["before"] == "started", body
    wait(lambda: counter.total() == 1, 60, "the first run")
    db.stop()
    try:
        for s in (a, b):
            code, body = s.post_alerts(counted(["during"]))
            assert code == 503, body
            assert statuses(body)["during"] == "rejected", body
            code, text = s.request("GET", "/healthz")
            assert code == 503 and text.startswith("unavailable\nstore: postgresql "
                                                   "unavailable: "), text
            m = s.metrics()
            assert m["runbook_store_up"] == 0 and m["runbook_store_errors_total"] >= 1, m
            assert "store: lost the database" in s.text(), s.text()
    finally:
        db.start()
    for s in (a, b):
        wait(lambda: s.request("GET", "/healthz")[0] == 200, 15, "healthz back")
        assert "store: the database is back; taking alerts again" in s.text()
        assert s.metrics()["runbook_store_up"] == 1
    # the retry Alertmanager sends after a 503 starts the run, once
    codes = [s.post_alerts(counted(["during"])) for s in (a, b)]
    sts = sorted(statuses(body)["during"] for _, body in codes)
    assert sts == ["duplicate", "started"], codes
    wait(lambda: counter.total() == 2, 60, "the retried run")
    assert counter.hits["/hit/during"] == 1
    wait(lambda: db.scalar("SELECT count(*) FROM rb_dedup WHERE active") == "0", 30,
         "the runs' keys ended")


def test_a_replica_restarted_after_a_crash_ends_its_own_keys(db, tmp_path, counter):
    migrate(db, tmp_path)
    db.psql("INSERT INTO rb_dedup VALUES ('old|x', true, 'a', 0, NULL, 0)", db="rb")
    a = replica(tmp_path, "a", db, counter)
    try:
        assert a.port, a.text()
        assert db.scalar("SELECT active FROM rb_dedup WHERE key = 'old|x'") == "f"
    finally:
        assert a.stop() == 0, a.text()


def test_the_keys_of_a_dead_replica_end_and_expired_keys_are_dropped(db, tmp_path,
                                                                      counter):
    migrate(db, tmp_path)
    db.psql("INSERT INTO rb_replicas VALUES ('gone', 0, 0)", db="rb")
    db.psql("INSERT INTO rb_dedup VALUES ('dead|x', true, 'gone', 0, NULL, 0), "
            "('expired|x', false, 'gone', 0, 1, 0)", db="rb")
    a = replica(tmp_path, "a", db, counter)
    try:
        assert a.port, a.text()
        wait(lambda: db.scalar("SELECT active FROM rb_dedup WHERE key = 'dead|x'") == "f",
             15, "the dead replica's key ended")
        assert db.scalar("SELECT count(*) FROM rb_dedup WHERE key = 'expired|x'") == "0"
    finally:
        assert a.stop() == 0, a.text()


def test_the_runs_do_not_see_the_database_password_variable(db, tmp_path, counter):
    migrate(db, tmp_path)
    env_book = """local cmd = require "cmd"
return runbook {
  name = "alert-env", title = "Save the environment (test)", start = "save",
  params = { out = { required = true } },
  steps = {
    save = action { title = "Save it", run = function(ctx)
      return cmd.run({"sh", "-c", 'printenv > "$1"', "sh", ctx.out}).code
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""
    out = str(tmp_path / "env.txt")
    conf = '[store]\nurl = "%s"\npassword_env = "RB_TEST_PG_PW"\n' % db.url()
    os.environ["RB_TEST_PG_PW"] = PASSWORD
    try:
        s = Serve(tmp_path, conf_extra=conf, books={"alert-env": env_book}, more_rules=[
            {"match": {"alertname": "Env"}, "runbook": "alert-env", "mode": "exec",
             "vars": {"out": out}}])
    finally:
        del os.environ["RB_TEST_PG_PW"]
    try:
        assert s.port, s.text()
        body = counted(["env"]).replace("Counted", "Env")
        assert s.post_alerts(body)[0] == 202
        s.wait_finished(1)
        with open(out) as f:
            text = f.read()
        assert "PATH=" in text and "RB_TEST_PG_PW" not in text and PASSWORD not in text
    finally:
        assert s.stop() == 0, s.text()


def test_an_answer_through_replica_b_completes_a_gate_held_by_a(db, tmp_path, counter,
                                                                 monkeypatch):
    monkeypatch.setenv("RB_APPR_ALICE", ALICE)
    migrate(db, tmp_path)
    appr = "[approver.alice]\ntoken_env = RB_APPR_ALICE\n"
    a = replica(tmp_path, "a", db, counter, extra=appr)
    b = replica(tmp_path, "b", db, counter, extra=appr)
    try:
        assert a.port and b.port, a.text() + b.text()
        alert = counted(["gate0001"]).replace("Counted", "NeedsApproval")
        assert statuses(a.post_alerts(alert)[1])["gate0001"] == "started"
        auth = {"Authorization": "Bearer " + ALICE, "Content-Type": "application/json"}
        pending = wait(lambda: json.loads(a.request("GET", "/approvals", headers=auth)[1]),
                       60, "the gate on a")
        run, step = pending[0]["run"], pending[0]["step"]
        wait(lambda: db.scalar("SELECT replica FROM rb_gates WHERE run = '%s'" % run) == "a",
             10, "the gate published")
        assert b.request("GET", "/approvals", headers=auth) == (200, "[]")  # a's, not b's
        path = "/approvals/%s/%s" % (run, step)
        assert b.request("POST", path, '{"approve":true}',
                         {"Content-Type": "application/json"})[0] == 401
        assert b.request("POST", "/approvals/nope/act", '{"approve":true}', auth)[0] == 404
        t0 = time.time()
        code, body = b.request("POST", path, '{"approve":true,"comment":"via b"}', auth)
        answered = time.time() - t0
        assert code == 200, body
        got = json.loads(body)
        assert got["by"] == "alice" and got["replica"] == "a" and got["approved"], got
        wait(lambda: os.path.exists(a.gated_out), 5, "the gated action on a")
        took = time.time() - t0
        print("answer through b: %.3f s to the answer, %.3f s to the action" % (answered, took))
        assert took < 2.0, took
        a.wait_finished(1)
        ok = [e for e in a.timeline(incident_of("gate0001")) if e["event"] == "approved"]
        assert ok[0]["detail"]["by"] == "alice" and ok[0]["detail"]["via"] == "http", ok
        code, body = b.request("POST", path, '{"approve":false}', auth)
        assert code in (404, 409), body  # decided: gone from the store, or refused
        assert db.scalar("SELECT count(*) FROM rb_answers WHERE code = 0 AND via = 'b'") == "1"
        assert "approval of %s/act by alice taken by replica b: recorded" % run in a.text()
    finally:
        for s in (a, b):
            assert s.stop() == 0, s.text()


CONFIRM_BOOK = """local cmd = require "cmd"
return runbook {
  name = "alert-confirm", title = "Destructive (test)", start = "drop",
  params = { out = { required = true } },
  steps = {
    drop = action { title = "Drop the cache", approval = { confirm = "checkout-db" },
      run = function(ctx) return cmd.run({"touch", ctx.out}).code end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def test_a_confirm_gate_held_by_a_needs_its_word_through_replica_b(db, tmp_path, counter,
                                                                   monkeypatch):
    monkeypatch.setenv("RB_APPR_ALICE", ALICE)
    migrate(db, tmp_path)
    out = str(tmp_path / "dropped")
    rule = {"match": {"alertname": "Confirmed"}, "runbook": "alert-confirm", "mode": "exec",
            "vars": {"out": out}}
    reps = [Serve(tmp_path / n, books={"alert-confirm": CONFIRM_BOOK}, more_rules=[rule],
                  conf_extra=store_conf(db, tmp_path, 'replica = "%s"\n'
                                        '[approver.alice]\ntoken_env = RB_APPR_ALICE\n' % n))
            for n in ("a", "b")]
    a, b = reps
    try:
        assert a.port and b.port, a.text() + b.text()
        alert = counted(["conf0001"]).replace("Counted", "Confirmed")
        assert statuses(a.post_alerts(alert)[1])["conf0001"] == "started"
        auth = {"Authorization": "Bearer " + ALICE, "Content-Type": "application/json"}
        pending = wait(lambda: json.loads(a.request("GET", "/approvals", headers=auth)[1]),
                       60, "the gate on a")
        run, step = pending[0]["run"], pending[0]["step"]
        wait(lambda: db.scalar("SELECT replica FROM rb_gates WHERE run = '%s'" % run) == "a",
             10, "the gate published")
        path = "/approvals/%s/%s" % (run, step)
        for body in ('{"approve":true}', '{"approve":true,"confirm":"checkout"}'):
            code, got = b.request("POST", path, body, auth)
            assert code == 403 and json.loads(got)["replica"] == "a", (code, got)
            assert "checkout-db" in json.loads(got)["error"], got
        assert not os.path.exists(out)
        assert db.psql("SELECT coalesce(confirm, '-'), code FROM rb_answers ORDER BY id",
                       db="rb") == ["-|-3", "checkout|-3"]
        code, got = b.request("POST", path, '{"approve":true,"confirm":"checkout-db"}', auth)
        assert code == 200 and json.loads(got)["replica"] == "a", got
        wait(lambda: os.path.exists(out), 5, "the confirmed action on a")
        a.wait_finished(1)
        ok = [e for e in a.timeline(incident_of("conf0001")) if e["event"] == "approved"]
        assert ok[0]["detail"]["by"] == "alice" and ok[0]["detail"]["via"] == "http", ok
    finally:
        for s in (a, b):
            assert s.stop() == 0, s.text()


def test_a_slack_click_through_replica_b_answers_a_gate_posted_by_a(db, tmp_path, counter,
                                                                   monkeypatch):
    import test_slack as ts
    ts.SLACK = slack = ts.SlackRecorder()
    monkeypatch.setenv("RB_SLACK_BOT", ts.BOT)
    monkeypatch.setenv("RB_SLACK_SIGNING", ts.SIGNING)
    monkeypatch.setenv("RB_APPR_ALICE", ts.ALICE_TOKEN)
    migrate(db, tmp_path)
    a = replica(tmp_path, "a", db, counter, extra=ts.slack_conf())
    b = replica(tmp_path, "b", db, counter, extra=ts.slack_conf())
    try:
        assert a.port and b.port, a.text() + b.text()
        alert = counted(["slk00001"]).replace("Counted", "NeedsApproval")
        assert statuses(a.post_alerts(alert)[1])["slk00001"] == "started"
        msg = slack.wait("/api/chat.postMessage")[0]["json"]
        run, step = ts.blocks_of(msg, "actions")[0]["elements"][0]["value"].split("/")
        wait(lambda: db.scalar("SELECT slack_channel || ' ' || slack_ts FROM rb_gates "
                               "WHERE run = '%s' AND replica = 'a'" % run)
             == "%s %s" % (ts.CHANNEL, ts.MSG_TS), 10, "the posted message published")
        # an unmapped Slack user through b: refused, told why, the gate still pending
        code, body = ts.deliver(b, ts.click("U0NOBODY", run, step, hook="/hooks/nobody"))
        assert code == 200, body
        told = slack.wait("/hooks/nobody")[0]["json"]["text"]
        assert "U0NOBODY is not an approver" in told, told
        assert db.scalar("SELECT count(*) FROM rb_answers") == "0"
        # a click on a message no replica posted for the gate: refused
        code, body = ts.deliver(b, ts.click("U0ALICE", run, step, hook="/hooks/other",
                                            msg_ts="1700000000.999999"))
        assert code == 200 and "no replica posted" in slack.wait("/hooks/other")[0][
            "json"]["text"]
        assert not os.path.exists(a.gated_out)
        # alice's click through b: approved by a's gate, the action runs on a
        form, t = ts.click("U0ALICE", run, step, hook="/hooks/alice"), str(int(time.time()))
        sig = ts.sign(form, t)
        t0 = time.time()
        code, body = ts.deliver(b, form, ts=t, sig=sig)
        assert code == 200, body
        wait(lambda: os.path.exists(a.gated_out), 10, "the gated action on a")
        print("slack click through b: %.3f s to the action on a" % (time.time() - t0))
        told = slack.wait("/hooks/alice")[0]["json"]["text"]
        assert "alice approves step %s of %s (replica a)" % (step, run) in told, told
        a.wait_finished(1)
        inc = incident_of("slk00001")
        ans = [e["detail"] for e in a.timeline(inc) if e["event"] == "approval_answered"]
        assert [(x["identity"], x["channel"]) for x in ans] == [("alice", "slack")], ans
        ok = [e for e in a.timeline(inc) if e["event"] == "approved"][0]["detail"]
        assert ok["by"] == "alice" and ok["via"] == "slack", ok
        assert "U0ALICE" in ok["answers"][0]["comment"], ok
        assert db.scalar("SELECT count(*) FROM rb_answers WHERE code = 0 AND via = 'b' "
                         "AND channel = 'slack' AND by = 'alice'") == "1"
        # the same callback replayed to a: its signature was used on b
        code, body = ts.deliver(a, form, ts=t, sig=sig)
        assert code == 409 and "used before" in body, (code, body)
        assert db.scalar("SELECT count(*) FROM rb_slack_seen WHERE sig = '%s'" % sig) == "1"
        refused = [e["detail"] for e in a.timeline(inc) if e["event"] == "approval_refused"]
        assert not refused or "replayed" in refused[-1]["reason"], refused
    finally:
        for s in (a, b):
            assert s.stop() == 0, s.text()
        slack.close()
    assert ts.SIGNING not in a.text() + b.text() and ts.BOT not in a.text() + b.text()


def test_a_slack_click_through_replica_b_carries_the_confirm_word(db, tmp_path, counter,
                                                                  monkeypatch):
    import test_slack as ts
    ts.SLACK = slack = ts.SlackRecorder()
    monkeypatch.setenv("RB_SLACK_BOT", ts.BOT)
    monkeypatch.setenv("RB_SLACK_SIGNING", ts.SIGNING)
    monkeypatch.setenv("RB_APPR_ALICE", ts.ALICE_TOKEN)
    migrate(db, tmp_path)
    out = str(tmp_path / "dropped")
    rule = {"match": {"alertname": "Confirmed"}, "runbook": "alert-confirm", "mode": "exec",
            "vars": {"out": out}}
    a, b = [Serve(tmp_path / n, books={"alert-confirm": CONFIRM_BOOK}, more_rules=[rule],
                  conf_extra=store_conf(db, tmp_path, 'replica = "%s"\n' % n +
                                        ts.slack_conf()))
            for n in ("a", "b")]
    try:
        assert a.port and b.port, a.text() + b.text()
        alert = counted(["slkconf1"]).replace("Counted", "Confirmed")
        assert statuses(a.post_alerts(alert)[1])["slkconf1"] == "started"
        msg = slack.wait("/api/chat.postMessage")[0]["json"]
        run, step = ts.blocks_of(msg, "actions")[0]["elements"][0]["value"].split("/")
        wait(lambda: db.scalar("SELECT slack_ts FROM rb_gates WHERE run = '%s'" % run)
             == ts.MSG_TS, 10, "the posted message published")
        for n, word in ((1, None), (2, "checkout")):
            hook = "/hooks/c/%d" % n
            assert ts.deliver(b, ts.click("U0BOB", run, step, hook=hook, word=word))[0] == 200
            told = slack.wait(hook)[0]["json"]["text"]
            assert "bob could not answer (replica a)" in told and "checkout-db" in told, told
        assert not os.path.exists(out)
        assert ts.deliver(b, ts.click("U0BOB", run, step, hook="/hooks/c/3",
                                      word="checkout-db"))[0] == 200
        wait(lambda: os.path.exists(out), 10, "the confirmed action on a")
        a.wait_finished(1)
        ok = [e for e in a.timeline(incident_of("slkconf1")) if e["event"] == "approved"]
        assert ok[0]["detail"]["by"] == "bob" and ok[0]["detail"]["via"] == "slack", ok
        assert db.psql("SELECT coalesce(confirm, '-'), code FROM rb_answers ORDER BY id",
                       db="rb") == ["-|-3", "checkout|-3", "checkout-db|0"]
    finally:
        for s in (a, b):
            assert s.stop() == 0, s.text()
        slack.close()


AM_BIN = "/usr/bin/prometheus-alertmanager"


def am_config(path, replicas):
    hooks = "".join("""      - url: http://127.0.0.1:%d/alerts/alertmanager
        send_resolved: false
        http_config:
          authorization:
            credentials: %s
""" % (s.port, TOKEN) for s in replicas)
    path.write_text("""route:
  receiver: runbook
  group_by: [alertname, n]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: runbook
    webhook_configs:
""" + hooks)


def am_status(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/api/v2/status" % port,
                                    timeout=2) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, ConnectionError, OSError, ValueError):
        return None


def start_am_pair(d, cfg):
    """Two Alertmanagers clustered over loopback gossip; [(proc, web port)]."""
    web = [free_port(), free_port()]
    gossip = [free_port(), free_port()]
    out = []
    for i in range(2):
        log = open(str(d / ("am%d.log" % i)), "w")
        out.append((subprocess.Popen(
            [AM_BIN, "--config.file", str(cfg), "--storage.path", str(d / ("data%d" % i)),
             "--web.listen-address", "127.0.0.1:%d" % web[i],
             "--cluster.listen-address", "127.0.0.1:%d" % gossip[i],
             "--cluster.advertise-address", "127.0.0.1:%d" % gossip[i],
             "--cluster.peer", "127.0.0.1:%d" % gossip[1 - i],
             "--cluster.gossip-interval", "50ms", "--cluster.pushpull-interval", "1s",
             "--cluster.peer-timeout", "2s"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), web[i]))
    return out


@pytest.mark.skipif(not os.access(AM_BIN, os.X_OK), reason="prometheus-alertmanager not installed")
def test_an_alertmanager_ha_pair_sending_to_both_replicas_starts_one_run_per_alert(
        pair, db, counter, tmp_path):
    a, b = pair
    d = tmp_path / "am"
    d.mkdir()
    am_config(d / "am.yml", (a, b))
    ams = start_am_pair(d, d / "am.yml")
    try:
        def ready():
            st = [am_status(port) for _, port in ams]
            return all(s and s["cluster"]["status"] == "ready" and
                       len(s["cluster"]["peers"]) == 2 for s in st)
        wait(ready, 60, "the Alertmanager cluster: " + "".join(
            (d / ("am%d.log" % i)).read_text() for i in range(2)
            if (d / ("am%d.log" % i)).exists()))
        # as Prometheus does: every alert to both members, with its startsAt
        starts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
        alerts = [{"labels": {"alertname": "Counted", "n": "am%02d" % i},
                   "startsAt": starts} for i in range(10)]
        for _, port in ams:
            req = urllib.request.Request("http://127.0.0.1:%d/api/v2/alerts" % port,
                                         data=json.dumps(alerts).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status == 200
        wait(lambda: counter.total() >= 10 and started(a) + started(b) >= 10, 90,
             "10 runs, %d hits" % counter.total())
        time.sleep(5)  # the second member's and the resends' notifications
        ma, mb = a.metrics(), b.metrics()
        posts = sum(m.get('runbook_requests_total{path="/alerts/alertmanager",code="202"}', 0)
                    for m in (ma, mb))
        dups = ma["runbook_alerts_duplicate_total"] + mb["runbook_alerts_duplicate_total"]
        print("Alertmanager pair: %d webhook posts, %d duplicates, runs a=%d b=%d" % (
            posts, dups, started(a), started(b)))
        assert counter.total() == 10, counter.hits
        assert all(v == 1 for v in counter.hits.values()), counter.hits
        assert started(a) + started(b) == 10
        assert db.scalar("SELECT count(*) FROM rb_dedup") == "10"
        assert posts >= 20 and dups >= 10  # every alert reached both replicas
    finally:
        for p, _ in ams:
            p.send_signal(signal.SIGTERM)
        for p, _ in ams:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


STEPS_BOOK = """local http = require "http"
local cmd = require "cmd"
return runbook {
  name = "alert-steps", title = "Three steps (test)", start = "one",
  params = { counter = { required = true }, fp = { required = true },
             slow = { default = "no" } },
  steps = {
    one = action { title = "First", run = function(ctx)
      return http.post(ctx.counter .. "/hit/" .. ctx.fp .. "/one", { body = "x", retries = 0 })
    end, next = "pause" },
    pause = check { title = "Let time pass", run = function(ctx)
      if ctx.slow == "no" then cmd.read({"sleep", "3"}) end
      return true
    end, on = { [true] = "two", [false] = "done" } },
    two = action { title = "Second", run = function(ctx)
      local r = http.post(ctx.counter .. "/hit/" .. ctx.fp .. "/two", { body = "x", retries = 0 })
      if ctx.slow == "yes" then cmd.run({"sleep", "4"}) end
      return r
    end, next = "three" },
    three = action { title = "Third", run = function(ctx)
      return http.post(ctx.counter .. "/hit/" .. ctx.fp .. "/three", { body = "x", retries = 0 })
    end, next = "done" },
    done = resolved { title = "Done" },
  },
}
"""


def test_readers_fail_closed_when_the_store_is_unreachable(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    pw = rbtest.write(str(tmp_path / "pgpass"), PASSWORD + "\n")
    os.chmod(pw, 0o600)
    conf = rbtest.write(str(tmp_path / "s.conf"),
                        '[store]\nurl = "postgresql://rb@127.0.0.1:%d/rb"\n'
                        'password_file = "%s"\nconnect_timeout = "2s"\n' % (port, pw))
    state = str(tmp_path / "st")
    os.makedirs(os.path.join(state, "incidents"))
    rbtest.write(os.path.join(state, "incidents", "INC-1.jsonl"), "")
    for cmd in (["timeline", "INC-1"], ["verify", "INC-1"], ["runs"], ["stats"]):
        res = rbtest.run(["--config", conf] + cmd, state_dir=state)
        assert res.code == 1 and "could not be synced" in res.stderr and \
            "not reading the local copy" in res.stderr and res.stdout == "", res
    # without [store] the same state dir is read as always
    res = rbtest.run(["runs"], state_dir=state)
    assert res.code == 0, res


def steps_replica(tmp, name, pg, counter, notify=""):
    conf = notify + store_conf(pg, tmp, 'replica = "%s"\nreplica_timeout = "2s"\n' % name)
    rule = {"match": {"alertname": "Steps"}, "runbook": "alert-steps", "mode": "exec",
            "vars": {"counter": counter.url, "fp": "{{fingerprint}}",
                     "slow": "{{labels.slow}}"}}
    return Serve(os.path.join(str(tmp), name), conf_extra=conf,
                 books={"alert-steps": STEPS_BOOK}, more_rules=[rule])


def steps_alert(fp, slow=None):
    body = json.loads(counted([fp]).replace("Counted", "Steps"))
    if slow:
        body["alerts"][0]["labels"]["slow"] = slow
    return json.dumps(body)


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def steps_pair(db, tmp_path, counter, hook):
    migrate(db, tmp_path)
    url_file = str(tmp_path / "hook.url")
    with open(os.open(url_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(hook.url + "\n")
    notify = 'notify = "oncall"\n[notify.oncall]\ntype = "webhook"\nurl_file = "%s"\n' % url_file
    a = steps_replica(tmp_path, "a", db, counter, notify)
    b = steps_replica(tmp_path, "b", db, counter, notify)
    assert a.port and b.port, a.text() + b.text()
    yield a, b
    for s in (a, b):
        if s.proc.poll() is None:
            assert s.stop() == 0, s.text()
        else:
            s.logf.close()


def test_kill_9_of_the_replica_mid_run_the_other_continues_it_once(steps_pair, db, counter,
                                                                   tmp_path, hook):
    a, b = steps_pair
    assert statuses(a.post_alerts(steps_alert("ko0001"))[1])["ko0001"] == "started"
    wait(lambda: counter.hits.get("/hit/ko0001/one") == 1, 60, "step one")
    run = wait(lambda: db.scalar("SELECT run FROM rb_runs WHERE replica = 'a' AND "
                                 "state = 'running'"), 10, "the run in rb_runs")
    a.proc.kill()  # kill -9 in the middle of the pause step
    killed = time.time()
    a.proc.wait()
    q = ("SELECT count(*) FROM rb_events WHERE incident = '" + KO_INC + "' AND "
         "line LIKE '%\"kind\":\"run\",\"event\":\"started\"%'")
    wait(lambda: db.scalar(q) == "2", 60, "the run resumed on b:\n" + b.text())
    resumed = time.time() - killed
    wait(lambda: counter.hits.get("/hit/ko0001/three") == 1, 60,
         "the run continued on b:\n" + b.text())
    print("failover: %.2f s from kill -9 to the run resumed on the other replica, %.2f s "
          "to its next action" % (resumed, time.time() - killed))
    # replica_timeout (2 s) + one look (1 s), and room for a loaded machine
    assert resumed < 2 + 1 + 5, resumed
    wait(lambda: db.scalar("SELECT state FROM rb_runs WHERE run = '%s'" % run) == "finished", 30,
         "the run done in the store")
    assert counter.hits == {"/hit/ko0001/one": 1, "/hit/ko0001/two": 1,
                            "/hit/ko0001/three": 1}, counter.hits
    assert db.psql("SELECT replica, taken_from FROM rb_runs", db="rb") == ["b|a"]
    assert "replica a is gone; taking over its run %s (incident %s)" % (run, KO_INC) in b.text()
    assert hook.got == []  # it went on: nobody needs to be told
    # b's copy of the timeline is the store's, and its hash chain holds
    tl = os.path.join(b.state, "incidents", KO_INC + ".jsonl")
    with open(tl) as f:
        local = [line.rstrip("\n") for line in f]
    assert db.psql("SELECT line FROM rb_events WHERE incident = '%s' "
                   "ORDER BY seq" % KO_INC, db="rb") == local
    res = rbtest.run(["verify", KO_INC], state_dir=b.state)
    assert res.code == 0, res
    evs = [json.loads(line) for line in local]
    assert [e["step"] for e in evs if e.get("event") == "started" and e.get("kind") == "action"
            and "op" not in e["detail"]] == ["one", "two", "three"]  # none repeated
    resumed = [e for e in evs if e.get("kind") == "run" and e["event"] == "started"][1]
    assert resumed["detail"]["resumed_at"] == "pause", resumed
    # the store says where the run went
    res = rbtest.run(["--config", a.conf, "store", "runs"], state_dir=a.state)
    assert res.code == 0 and re.match(
        r"%s  %s  finished  replica b, taken over from a  since \S+Z\n$" % (run, re.escape(KO_INC)),
        res.stdout), res
    # on a third machine the whole timeline comes from the store
    other = str(tmp_path / "c")
    res = rbtest.run(["--config", a.conf, "store", "pull", KO_INC], state_dir=other)
    assert res.code == 0 and res.stdout == "%s: %d lines from the store, %d new\n" % (
        KO_INC, len(local), len(local)), res
    with open(os.path.join(other, "incidents", KO_INC + ".jsonl")) as f:
        assert [line.rstrip("\n") for line in f] == local
    assert rbtest.run(["verify", KO_INC], state_dir=other).code == 0
    res = rbtest.run(["timeline", KO_INC], state_dir=other)
    assert res.code == 0 and "Third" in res.stdout, res
    res = rbtest.run(["--config", a.conf, "store", "pull", KO_INC], state_dir=other)
    assert res.stdout.endswith(", 0 new\n"), res
    # the dead replica's own copy forked: its orphaned run wrote the pause's
    # end locally before it found no listener to take it; pull leaves it be
    res = rbtest.run(["--config", a.conf, "store", "pull", KO_INC], state_dir=a.state)
    assert res.code == 1 and "differs from the store's timeline at line 8; left as it is" in \
        res.stderr, res
    res = rbtest.run(["--config", a.conf, "store", "pull", "../x"], state_dir=a.state)
    assert res.code == 2 and "is not an incident id" in res.stderr, res
    # with [store] url the readers sync from the store by themselves
    fresh = str(tmp_path / "d")
    res = rbtest.run(["--config", a.conf, "verify", KO_INC], state_dir=fresh)
    assert res.code == 0 and res.stderr == "", res
    with open(os.path.join(fresh, "incidents", KO_INC + ".jsonl")) as f:
        assert [line.rstrip("\n") for line in f] == local
    fresh = str(tmp_path / "e")
    res = rbtest.run(["--config", a.conf, "timeline", KO_INC], state_dir=fresh)
    assert res.code == 0 and "Third" in res.stdout, res
    # a local copy past the store's end (this machine's run appending now, or
    # an event the store refused) is read, with a warning, and not cut
    tl_e = os.path.join(fresh, "incidents", KO_INC + ".jsonl")
    with open(tl_e, "a") as f:
        f.write(local[-1] + "\n")
    res = rbtest.run(["--config", a.conf, "timeline", KO_INC], state_dir=fresh)
    assert res.code == 0 and "has 1 line past the store's %d" % len(local) in res.stderr, res
    with open(tl_e) as f:
        assert len(f.read().splitlines()) == len(local) + 1
    html = str(tmp_path / "r.html")
    res = rbtest.run(["--config", a.conf, "report", KO_INC, "--html", html],
                     state_dir=str(tmp_path / "f"))
    assert res.code == 0 and os.path.getsize(html) > 0, res
    res = rbtest.run(["--config", a.conf, "runs"], state_dir=str(tmp_path / "g"))
    assert res.code == 0 and run in res.stdout and "outcome=" in res.stdout, res
    res = rbtest.run(["--config", a.conf, "stats"], state_dir=str(tmp_path / "h"))
    assert res.code == 0 and "alert-steps" in res.stdout, res
    # a's forked copy is reported, not overwritten and not shown as the truth
    with open(os.path.join(a.state, "incidents", KO_INC + ".jsonl")) as f:
        forked = f.read()
    for cmd in (["timeline", KO_INC], ["verify", KO_INC], ["runs"], ["stats"]):
        res = rbtest.run(["--config", a.conf] + cmd, state_dir=a.state)
        assert res.code == 1 and "differs from the store's timeline at line 8; left as it is" \
            in res.stderr and "could not be synced" in res.stderr and res.stdout == "", res
    with open(os.path.join(a.state, "incidents", KO_INC + ".jsonl")) as f:
        assert f.read() == forked


def test_kill_9_during_an_action_leaves_it_in_doubt_for_a_human(steps_pair, db, counter,
                                                                 hook):
    a, b = steps_pair
    assert statuses(a.post_alerts(steps_alert("kd0001", "yes"))[1])["kd0001"] == "started"
    wait(lambda: counter.hits.get("/hit/kd0001/two") == 1, 60, "step two started")
    run = db.scalar("SELECT run FROM rb_runs")
    a.proc.kill()  # kill -9 while action two sleeps
    a.proc.wait()
    wait(lambda: "run for alert resume:%s ended" % run in b.text(), 30,
         "b tried to resume:\n" + b.text())
    # as `runbook resume` by hand: the run records why it did not go on
    wait(lambda: db.scalar("SELECT state FROM rb_runs") == "failed", 10,
         "failed: %s" % db.psql("SELECT * FROM rb_runs", db="rb"))
    assert "step 'two' (an action) started and never finished" in b.text(), b.text()
    assert "resume with --in-doubt rerun (run it again) or --in-doubt skip" in b.text()
    last = json.loads(db.scalar("SELECT line FROM rb_events ORDER BY seq DESC LIMIT 1"))
    assert last["event"] == "failed" and "never finished" in last["detail"]["error"], last
    time.sleep(6)  # a's orphaned run can not go on either: the store refuses it
    assert counter.hits == {"/hit/kd0001/one": 1, "/hit/kd0001/two": 1}, counter.hits
    assert db.psql("SELECT replica, taken_from, state FROM rb_runs", db="rb") == [
        "b|a|failed"]
    # the human hears of it on [serve] notify, from the replica that took it
    [(path, headers, posted)] = hook.got
    posted = json.loads(posted)
    assert posted["event"] == "run_needs_human" and posted["run"] == run, posted
    assert posted["runbook"] == "alert-steps" and posted["incident"] == incident_of("kd0001")
    assert "step 'two' (an action) started and never finished" in posted["error"], posted
    assert "--in-doubt rerun" in posted["error"]
    assert ("taken-over run %s (incident %s) stopped for a human; posted to notify.oncall"
            % (run, incident_of("kd0001"))) in b.text(), b.text()
