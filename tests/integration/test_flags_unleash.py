"""flags through the real binary against a real unleash-server 6.x on a
private PostgreSQL 15 cluster, both on loopback."""
import os

import pytest

import httpservers as hs

FLAG = "checkout-new-client"


@pytest.fixture(scope="module")
def unleash(tmp_path_factory):
    w = str(tmp_path_factory.mktemp("unleash"))
    pg = hs.Postgres(w)
    try:
        u = hs.Unleash(pg, w)
    except Exception:
        pg.close()
        raise
    u.api("POST", "/api/admin/projects/default/features", {"name": FLAG})
    yield u
    u.close()
    pg.close()


def conf(u):
    return ("[flags.unleash]\nprovider = unleash\nurl = %s\ntoken_env = UNLEASH_TOKEN\n"
            "project = default\nenvironment = development\n" % u.url)


def enabled(u, env="development"):
    f = u.api("GET", "/api/admin/projects/default/features/" + FLAG)
    return next(e["enabled"] for e in f["environments"] if e["name"] == env)


def flip(tmp_path, u, on, args=()):
    return hs.run_book(tmp_path, 'return flags.set("%s", %s, { provider = "unleash" })'
                       % (FLAG, "true" if on else "false"), config=conf(u),
                       env={"UNLEASH_TOKEN": u.TOKEN}, requires=["flags"], args=args)


def notes(res):
    return [e["detail"] for e in hs.events(res, op="flags", event="note")]


def test_turn_off_and_on_through_a_runbook(tmp_path, unleash):
    unleash.api("POST", "/api/admin/projects/default/features/%s/environments/development/on"
                % FLAG)
    res = flip(tmp_path / "off", unleash, False)
    assert res.code == 0, res
    assert enabled(unleash) is False
    n = notes(res)
    assert n and n[-1]["message"] == "checkout-new-client: on -> off, development"
    assert unleash.TOKEN not in str(res.timeline()) + res.stdout + res.stderr

    res = flip(tmp_path / "on", unleash, True)
    assert res.code == 0, res
    assert enabled(unleash) is True
    assert notes(res)[-1]["message"] == "checkout-new-client: off -> on, development"


def test_get_reads_the_state(tmp_path, unleash):
    unleash.api("POST", "/api/admin/projects/default/features/%s/environments/development/off"
                % FLAG)
    res = hs.run_book(tmp_path, 'assert(flags.get("%s") == false); return true' % FLAG,
                      config=conf(unleash), env={"UNLEASH_TOKEN": unleash.TOKEN},
                      requires=["flags"], kind="check")
    assert res.code == 0, res


def test_dry_run_does_not_change_the_flag(tmp_path, unleash):
    unleash.api("POST", "/api/admin/projects/default/features/%s/environments/development/on"
                % FLAG)
    res = flip(tmp_path, unleash, False, args=["--dry-run"])
    assert res.code == 0, res
    assert enabled(unleash) is True
    would = hs.events(res, op="http", event="would_run")
    assert len(would) == 1
    assert would[0]["detail"]["url"].endswith("/environments/development/off")
    assert "on -> off" in notes(res)[-1]["message"]


def test_missing_token_is_a_clear_error(tmp_path, unleash):
    res = hs.run_book(tmp_path, 'flags.set("%s", false)' % FLAG, config=conf(unleash),
                      requires=["flags"], env={"UNLEASH_TOKEN": ""})
    assert res.code != 0
    assert "flags.unleash" in res.stdout + res.stderr


def test_unleash_stopped_fails_after_bounded_retries(tmp_path, unleash):
    """Runs last in this module: it stops the server."""
    unleash.stop()
    res = flip(tmp_path, unleash, False)
    assert res.code != 0
    out = res.stdout + res.stderr
    assert "gave up after 3 attempts" in out and "/environments/development/off" in out
    failed = hs.events(res, op="http", event="failed")
    assert failed and all(f["detail"]["attempts"] == 3 for f in failed)
