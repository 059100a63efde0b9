"""The http module through the real binary against a FAKE API server on
loopback: exact requests, retries, Retry-After, timeouts, refused
connections, invalid JSON, redirects, TLS, dry-run and secrets."""
import json
import os
import time

import pytest

import httpservers as hs

TOKEN = "s3cr3t-token-for-http-tests"


@pytest.fixture
def fake():
    f = hs.FakeServer()
    yield f
    f.close()


def ok(res):
    assert res.code == 0, res


def test_get_with_query_and_headers_parses_json(tmp_path, fake):
    fake.expect("GET", "/api/items", json_body={"items": [1, 2], "name": "x"},
                want_query={"a": "1", "b": "two words"}, want_headers={"X-Team": "sre"})
    res = hs.run_book(tmp_path, """
        local r = http.get("%s/api/items", { query = { b = "two words", a = 1 },
                                             headers = { ["X-Team"] = "sre" } })
        assert(r.status == 200, r.status)
        assert(r.json.name == "x" and r.json.items[2] == 2)
        assert(r.headers["content-type"] == "application/json")
    """ % fake.url)
    ok(res)
    fake.check()
    fin = hs.events(res, op="http", event="finished")
    assert fin and fin[0]["detail"]["status"] == 200 and fin[0]["detail"]["attempts"] == 1


def test_post_json_body_and_bearer_secret(tmp_path, fake):
    fake.expect("POST", "/hook", status=201, json_body={"id": 7},
                want_json={"on": False, "who": "runbook"},
                want_headers={"Authorization": "Bearer " + TOKEN,
                              "Content-Type": "application/json"})
    res = hs.run_book(tmp_path, """
        local r = http.post("%s/hook", { json = { on = false, who = "runbook" },
          auth = { section = "flags.x", key = "token" } })
        assert(r.status == 201 and r.json.id == 7)
    """ % fake.url, config="[flags.x]\nprovider = generic\ntoken_env = RB_T\n",
        env={"RB_T": TOKEN})
    ok(res)
    fake.check()
    assert TOKEN not in open(os.path.join(res.state_dir, "incidents",
                                          os.listdir(os.path.join(res.state_dir,
                                                                  "incidents"))[0])).read()
    assert TOKEN not in res.stdout + res.stderr


def test_500_then_success_is_retried(tmp_path, fake):
    fake.expect("GET", "/flaky", status=500, body="boom")
    fake.expect("GET", "/flaky", json_body={"ok": True})
    res = hs.run_book(tmp_path, """
        local r = http.get("%s/flaky")
        assert(r.json.ok == true and r.attempts == 2)
    """ % fake.url)
    ok(res)
    fake.check()
    assert hs.events(res, op="http", event="finished")[0]["detail"]["attempts"] == 2


def test_post_is_not_retried_on_500(tmp_path, fake):
    fake.expect("POST", "/once", status=500, body="no")
    res = hs.run_book(tmp_path, 'http.post("%s/once", { body = "x" })' % fake.url)
    assert res.code != 0
    fake.check()
    assert len(fake.requests) == 1
    assert "HTTP 500" in res.stdout + res.stderr


def test_429_honours_retry_after(tmp_path, fake):
    fake.expect("GET", "/limited", status=429, headers={"Retry-After": "1"})
    fake.expect("GET", "/limited", json_body={"ok": True})
    t0 = time.time()
    res = hs.run_book(tmp_path, 'assert(http.get("%s/limited").json.ok)' % fake.url)
    ok(res)
    fake.check()
    assert time.time() - t0 >= 1.0


def test_timeout_fails_with_the_url(tmp_path, fake):
    fake.expect("GET", "/slow", json_body={}, delay=3)
    res = hs.run_book(tmp_path, 'http.get("%s/slow", { timeout = "500ms", retries = 0 })'
                      % fake.url)
    assert res.code != 0
    out = res.stdout + res.stderr
    assert "/slow" in out and "timed out" in out
    failed = hs.events(res, op="http", event="failed")
    assert failed and "timed out" in failed[0]["detail"]["error"]


def test_connection_refused_gives_up_after_bounded_retries(tmp_path):
    port = hs.free_port()
    t0 = time.time()
    res = hs.run_book(tmp_path, 'http.get("http://127.0.0.1:%d/x", { retries = 2 })' % port)
    assert res.code != 0
    assert time.time() - t0 < 30
    assert "gave up after 3 attempts" in res.stdout + res.stderr
    assert hs.events(res, op="http", event="failed")[0]["detail"]["attempts"] == 3


def test_invalid_json_names_the_url(tmp_path, fake):
    fake.expect("GET", "/bad", body="{not json", content_type="application/json")
    res = hs.run_book(tmp_path, 'http.get("%s/bad")' % fake.url)
    assert res.code != 0
    out = res.stdout + res.stderr
    assert "invalid JSON" in out and "/bad" in out


def test_redirect_is_not_followed(tmp_path, fake):
    fake.expect("GET", "/old", status=302, headers={"Location": fake.url + "/new"})
    res = hs.run_book(tmp_path, """
        local r = http.get("%s/old")
        assert(r.status == 302 and r.headers.location == "%s/new")
    """ % (fake.url, fake.url))
    ok(res)
    fake.check()
    assert [r["path"] for r in fake.requests] == ["/old"]


def test_404_raises_unless_check_is_off(tmp_path, fake):
    fake.expect("GET", "/missing", status=404, body="nope")
    fake.expect("GET", "/missing", status=404, body="nope")
    res = hs.run_book(tmp_path, """
        local ok, err = pcall(http.get, "%s/missing")
        assert(not ok and err:find("HTTP 404", 1, true), err)
        local r = http.get("%s/missing", { allow_fail = true })
        assert(r.status == 404 and r.body == "nope")
    """ % (fake.url, fake.url))
    ok(res)


def test_dry_run_records_write_without_sending(tmp_path, fake):
    res = hs.run_book(tmp_path, """
        local r = http.post("%s/kill", { json = { on = false },
          auth = { section = "flags.x", key = "token" } })
        assert(r.simulated == true and r.status == 0)
    """ % fake.url, config="[flags.x]\nprovider = generic\ntoken_env = RB_T\n",
        env={"RB_T": TOKEN}, args=["--dry-run"])
    ok(res)
    assert fake.requests == []
    would = hs.events(res, op="http", event="would_run")
    assert len(would) == 1
    d = would[0]["detail"]
    assert d["method"] == "POST" and d["url"] == fake.url + "/kill"
    assert d["body"] == {"on": False}
    assert TOKEN not in json.dumps(d)


def test_write_from_a_check_step_is_refused(tmp_path, fake):
    res = hs.run_book(tmp_path, 'http.post("%s/x", { body = "" }); return true' % fake.url,
                      kind="check")
    assert res.code != 0
    assert "read-only" in res.stdout + res.stderr
    assert fake.requests == []


def test_secret_in_url_query_is_redacted(tmp_path, fake):
    fake.expect("GET", "/q", json_body={})
    res = hs.run_book(tmp_path, 'http.get("%s/q", { query = { token = "%s" } })'
                      % (fake.url, TOKEN))
    ok(res)
    assert TOKEN not in json.dumps(res.timeline())


def test_unknown_option_is_an_error(tmp_path, fake):
    res = hs.run_book(tmp_path, 'http.get("%s/x", { retry = 3 })' % fake.url)
    assert res.code != 0
    assert "unknown option 'retry'" in res.stdout + res.stderr


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tls"))
    certs = hs.make_tls(d)
    srv = hs.FakeServer(tls=certs)
    yield srv, certs
    srv.close()


def test_tls_is_verified_by_default(tmp_path, tls):
    srv, _ = tls
    res = hs.run_book(tmp_path, 'http.get("%s/x", { retries = 0 })' % srv.url)
    assert res.code != 0
    assert "certificate" in (res.stdout + res.stderr).lower()


def test_tls_with_ca_bundle_works(tmp_path, tls):
    srv, certs = tls
    srv.expect("GET", "/tls", json_body={"secure": True})
    res = hs.run_book(tmp_path, 'assert(http.get("%s/tls", { ca_bundle = "%s" }).json.secure)'
                      % (srv.url, certs["ca"]))
    ok(res)


def test_insecure_is_explicit_and_noted(tmp_path, tls):
    srv, _ = tls
    srv.expect("GET", "/insecure", json_body={})
    res = hs.run_book(tmp_path, 'http.get("%s/insecure", { insecure = true })' % srv.url)
    ok(res)
    notes = hs.events(res, op="http", event="note")
    assert notes and "TLS verification disabled" in notes[0]["detail"]["message"]
