"""A dry-run preflights every write target it records, against real sshd and
HTTPS servers on loopback: a write that would fail is named with its reason
and the dry-run exits 7; nothing is run or sent to get there."""
import os
import pytest

import httpservers
import rbtest
import sshd

BOOK = """local ssh = require "ssh"
local http = require "http"
local cmd = require "cmd"
return runbook {
  name = "pf", title = "Preflight", start = "act",
  steps = {
    act = action {
      title = "act",
      run = function(ctx)
%s
      end,
      next = "done",
    },
    done = resolved { title = "Done" },
  },
}
"""


@pytest.fixture(scope="module")
def cluster():
    c = sshd.Cluster(2, log_level="VERBOSE")
    yield c
    c.stop()


def dry_run(tmp, body, config, args=("--dry-run",), mode="exec"):
    book = rbtest.write(os.path.join(str(tmp), "book.lua"), BOOK % body)
    conf = rbtest.write(os.path.join(str(tmp), "runbook.conf"), config)
    state = os.path.join(str(tmp), "state-%d" % len(os.listdir(str(tmp))))
    return rbtest.run(["--config", conf, mode, book] + list(args), state_dir=state,
                      timeout=60)


def would_runs(res):
    return [e["detail"] for e in res.timeline() if e["event"] == "would_run"]


def marker_cmd(tmp):
    return 'touch %s/ran-$(echo "$SSH_CONNECTION" | cut -d" " -f4)' % tmp


def ssh_config(cluster):
    with open(cluster.config()) as f:
        return f.read()


def test_unknown_host_key_fails_the_dry_run_and_nothing_runs(cluster, tmp_path):
    app1, app2 = cluster.servers
    cluster.write_known_hosts(servers=[app1])  # app-2 is missing
    try:
        r = dry_run(tmp_path, 'ssh.run("app", "%s")' % marker_cmd(tmp_path).replace('"', '\\"'),
                    ssh_config(cluster))
    finally:
        cluster.write_known_hosts()
    assert r.code == 7, r
    fp = sshd.fingerprint(app2.ed25519 + ".pub")
    assert "would fail on app-2: host key unknown (%s)" % fp in r.stdout, r
    assert "app-1" not in "".join(l for l in r.stdout.splitlines() if "would fail" in l)
    evs = {d["host"]: d["preflight"] for d in would_runs(r)}
    assert evs["app-1"] == {"ok": True, "target": "app-1"}
    assert evs["app-2"] == {"ok": False, "target": "app-2",
                            "reason": "host key unknown (%s)" % fp}
    fin = [e for e in r.timeline() if e["step"] is None and e["event"] == "finished"][-1]
    assert fin["detail"]["would_fail"] == ["app-2: host key unknown (%s)" % fp]
    # server side: app-1 authenticated (preflight) but ran nothing; app-2 was
    # refused before authentication
    assert not [f for f in os.listdir(str(tmp_path)) if f.startswith("ran-")]
    assert "Accepted publickey" in app1.read_log()
    # an exec would log "Starting session: command for root ..."
    assert "Starting session" not in app1.read_log()
    assert "Starting session" not in app2.read_log()
    assert "Accepted publickey" not in app2.read_log()
    # and that log line is what a real command leaves
    assert rbtest.run(["--config", cluster.config(), "ssh", "app-1", "--", "true"]).code == 0
    assert "Starting session" in app1.read_log()


def test_all_good_dry_run_exits_0_with_preflight_ok(cluster, tmp_path):
    cluster.write_known_hosts()
    body = ('ssh.run("app", "%s")\n ssh.run("app-1", "true")\n cmd.run({"true"})'
            % marker_cmd(tmp_path).replace('"', '\\"'))
    before = [s.accepted() for s in cluster.servers]
    r = dry_run(tmp_path, body, ssh_config(cluster))
    assert r.code == 0, r
    wr = would_runs(r)
    assert len(wr) == 4
    assert all(d["preflight"]["ok"] is True for d in wr), wr
    assert "[preflight ok]" in r.stdout
    assert "preflight: all 4 write(s) would reach their targets" in r.stdout
    # each host preflighted once per run: one login each, however many writes
    assert [s.accepted() - b for s, b in zip(cluster.servers, before)] == [1, 1]
    assert not [f for f in os.listdir(str(tmp_path)) if f.startswith("ran-")]


def test_connection_refused(cluster, tmp_path):
    port = sshd.free_port()
    conf = ssh_config(cluster).replace("inventory = ", "#inventory = ")
    r = dry_run(tmp_path, 'ssh.run("127.0.0.1:%d", "true")' % port, conf)
    assert r.code == 7, r
    assert "would fail on 127.0.0.1:%d: connection refused" % port in r.stdout, r


def test_https_target_with_an_unknown_ca_fails_tls_and_gets_no_request(tmp_path):
    tls = httpservers.make_tls(str(tmp_path))
    srv = httpservers.FakeServer(tls=tls)
    try:
        r = dry_run(tmp_path, 'http.post("%s/deploy", {json = {v = 1}})' % srv.url, "")
        assert r.code == 7, r
        origin = "https://127.0.0.1:%d" % srv.port
        pf = would_runs(r)[0]["preflight"]
        assert pf["ok"] is False and pf["target"] == origin
        assert pf["reason"].startswith("TLS: certificate verify failed"), pf
        assert "would fail on %s: TLS: certificate verify failed" % origin in r.stdout
        assert srv.requests == []
        # trusting the CA makes the same target pass, still without a request
        r = dry_run(tmp_path, 'http.post("%s/deploy", {json = {v = 1}})' % srv.url,
                    "[http]\nca_bundle = %s\n" % tls["ca"])
        assert r.code == 0, r
        assert would_runs(r)[0]["preflight"] == {"ok": True, "target": origin}
        assert srv.requests == []
    finally:
        srv.close()


def test_http_connection_refused(tmp_path):
    port = httpservers.free_port()
    r = dry_run(tmp_path, 'http.put("http://127.0.0.1:%d/x", {body = "b"})' % port, "")
    assert r.code == 7, r
    assert "would fail on http://127.0.0.1:%d: connection refused" % port in r.stdout, r


def test_missing_program_fails_preflight(tmp_path):
    r = dry_run(tmp_path, 'cmd.run({"no-such-program-rb", "--now"})\n cmd.run({"ls"})', "")
    assert r.code == 7, r
    assert "would fail on local: 'no-such-program-rb': command not found on PATH" in r.stdout
    pfs = [d["preflight"] for d in would_runs(r)]
    assert pfs[0]["ok"] is False and pfs[1] == {"ok": True, "target": "local"}


def test_drill_never_preflights(tmp_path):
    port = httpservers.free_port()
    body = ('cmd.run({"no-such-program-rb"})\n http.post("http://127.0.0.1:%d/x", {body = ""})\n'
            ' ssh.run("127.0.0.1:%d", "true")' % (port, port))
    scen = rbtest.write(os.path.join(str(tmp_path), "s.json"), '{"steps": {}}')
    r = dry_run(tmp_path, body, "", args=("--scenario", scen), mode="drill")
    assert r.code == 0, r
    wr = would_runs(r)
    assert len(wr) == 3 and all("preflight" not in d for d in wr), wr
