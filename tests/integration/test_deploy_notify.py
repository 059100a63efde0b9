"""deploy, notify and the LaunchDarkly/Flagsmith/generic flag providers
through the real binary against the FAKE API server (exact requests checked,
recorded responses replayed) and a real local git repository."""
import json
import os
import subprocess

import pytest

import httpservers as hs

LD_KEY = "api-ld-secret-0123456789"
FS_KEY = "fs-org-secret-0123456789"
K8S_TOKEN = "k8s-sa-token-0123456789"


@pytest.fixture
def fake():
    f = hs.FakeServer()
    yield f
    f.close()


def ld_flag(on):
    return {"key": "checkout-new-client", "environments": {"production": {"on": on}}}


def test_launchdarkly_semantic_patch(tmp_path, fake):
    path = "/api/v2/flags/shop/checkout-new-client"
    fake.expect("GET", path, json_body=ld_flag(True), want_query={"env": "production"},
                want_headers={"Authorization": LD_KEY})
    fake.expect("PATCH", path, json_body=ld_flag(False), want_headers={
        "Authorization": LD_KEY,
        "Content-Type": "application/json; domain-model=launchdarkly.semanticpatch"},
        want_json={"environmentKey": "production", "instructions": [{"kind": "turnFlagOff"}]})
    fake.expect("GET", path, json_body=ld_flag(False))
    res = hs.run_book(tmp_path, 'flags.set("checkout-new-client", false)', requires=["flags"],
                      config="[flags.ld]\nprovider = launchdarkly\nurl = %s\ntoken_env = LD\n"
                      "project = shop\nenvironment = production\n" % fake.url,
                      env={"LD": LD_KEY})
    assert res.code == 0, res
    fake.check()
    n = hs.events(res, op="flags", event="note")
    assert n[-1]["detail"]["message"] == "checkout-new-client: on -> off, production"
    assert LD_KEY not in json.dumps(res.timeline())


def test_flagsmith_feature_state(tmp_path, fake):
    path = "/api/v1/environments/envkey1/featurestates/"
    state = {"results": [{"id": 42, "enabled": False, "feature": 9, "feature_segment": None}]}
    fake.expect("GET", path, json_body=state, want_query={"feature_name": "beta"},
                want_headers={"Authorization": "Api-Key " + FS_KEY})
    fake.expect("PATCH", path + "42/", json_body={"id": 42, "enabled": True},
                want_json={"enabled": True})
    on = {"results": [{"id": 42, "enabled": True, "feature": 9, "feature_segment": None}]}
    fake.expect("GET", path, json_body=on)
    res = hs.run_book(tmp_path, 'flags.set("beta", true)', requires=["flags"],
                      config="[flags.fs]\nprovider = flagsmith\nurl = %s\ntoken_env = FS\n"
                      "environment = envkey1\n" % fake.url, env={"FS": FS_KEY})
    assert res.code == 0, res
    fake.check()


def test_generic_provider_templates(tmp_path, fake):
    fake.expect("GET", "/flags/beta", json_body={"data": {"state": "off"}})
    fake.expect("PUT", "/flags/beta/prod", json_body={}, want_json={"enabled": True})
    fake.expect("GET", "/flags/beta", json_body={"data": {"state": "on"}})
    res = hs.run_book(tmp_path, 'flags.set("beta", true)', requires=["flags"],
                      config="[flags.gen]\nprovider = generic\nurl = %s\n"
                      "get_url = %s/flags/{name}\nset_url = %s/flags/{name}/{environment}\n"
                      "set_method = PUT\nset_body = {\"enabled\": {on}}\n"
                      "state_path = data.state\nenvironment = prod\n"
                      % (fake.url, fake.url, fake.url))
    assert res.code == 0, res
    fake.check()


SLACK = "/services/T000/B000/slack-secret-path"


def test_notify_slack_and_webhook(tmp_path, fake):
    fake.expect("POST", SLACK, body="ok", content_type="text/plain")
    fake.expect("POST", "/hook", json_body={"ok": True}, want_json={
        "phase": "Identified", "title": "Checkout errors", "impact": "5% of checkouts fail",
        "actions": ["Rolled back checkout", "Watching error rate"], "next_update": "10:30 UTC",
        "channel": "status"})
    res = hs.run_book(tmp_path, """
        local r = notify.post { phase = "Identified", title = "Checkout errors",
          impact = "5% of checkouts fail",
          actions = { "Rolled back checkout", "Watching error rate" },
          next_update = "10:30 UTC" }
        assert(#r.sent == 2)
    """, requires=["notify"], config="[notify.slack]\ntype = slack\nurl_env = SLACK_URL\n\n"
        "[notify.hook]\ntype = webhook\nurl_env = HOOK_URL\nchannel = status\n",
        env={"SLACK_URL": fake.url + SLACK, "HOOK_URL": fake.url + "/hook"})
    assert res.code == 0, res
    fake.check()
    slack = next(r for r in fake.requests if r["path"] == SLACK)
    text = json.loads(slack["body"])["text"]
    assert text.startswith("*[Identified]* Checkout errors")
    assert "Next update:* 10:30 UTC" in text
    assert "slack-secret-path" not in json.dumps(res.timeline()) + res.stdout + res.stderr


def test_notify_dry_run_and_bad_phase(tmp_path, fake):
    res = hs.run_book(tmp_path, 'notify.post { phase = "Monitoring", impact = "none" }',
                      requires=["notify"], config="[notify.slack]\ntype = slack\n"
                      "url_env = SLACK_URL\n", env={"SLACK_URL": fake.url + SLACK},
                      args=["--dry-run"])
    assert res.code == 0, res
    assert fake.requests == []
    would = hs.events(res, op="http", event="would_run")
    assert would and "slack-secret-path" not in json.dumps(would)
    res = hs.run_book(tmp_path / "2", 'notify.post { phase = "Fixed" }', requires=["notify"],
                      config="[notify.slack]\ntype = slack\nurl_env = SLACK_URL\n",
                      env={"SLACK_URL": fake.url + SLACK})
    assert res.code != 0 and "Investigating" in res.stdout + res.stderr


def git(repo, *args, env=None):
    e = dict(os.environ, GIT_AUTHOR_NAME="Ada", GIT_AUTHOR_EMAIL="ada@example.org",
             GIT_COMMITTER_NAME="Ada", GIT_COMMITTER_EMAIL="ada@example.org")
    e.update(env or {})
    subprocess.run(["git", "-C", repo] + list(args), check=True, capture_output=True, env=e)


def test_deploy_recent_from_git(tmp_path):
    repo = str(tmp_path / "repo")
    os.makedirs(repo)
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "old deploy",
        env={"GIT_COMMITTER_DATE": "2020-01-01T00:00:00Z", "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z"})
    conf = "[deploy.checkout]\nsource = git\nrepo = %s\n" % repo
    res = hs.run_book(tmp_path / "a", 'assert(deploy.recent("checkout", { within = "2h" }) == nil)',
                      requires=["deploy"], config=conf)
    assert res.code == 0, res
    git(repo, "commit", "-q", "--allow-empty", "-m", "checkout v2.3")
    res = hs.run_book(tmp_path / "b", """
        local d = deploy.recent("checkout", { within = "2h" })
        assert(d and d.message == "checkout v2.3" and d.author == "Ada" and #d.id == 40)
    """, requires=["deploy"], config=conf)
    assert res.code == 0, res


def rs(name, rev, created, image, uid="dep-uid"):
    return {"metadata": {"name": name, "creationTimestamp": created,
                         "annotations": {"deployment.kubernetes.io/revision": str(rev)},
                         "ownerReferences": [{"uid": uid}]},
            "spec": {"template": {"metadata": {"labels": {"app": "checkout",
                                                          "pod-template-hash": name[-5:]}},
                                  "spec": {"containers": [{"name": "app", "image": image,
                                                           "resources": {}, "args": [],
                                                           "securityContext": {}}],
                                           "volumes": [{"name": "tmp", "emptyDir": {}}]}}}}


DEP = {"metadata": {"name": "checkout", "uid": "dep-uid", "generation": 3},
       "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "checkout"}}},
       "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2,
                  "readyReplicas": 2, "availableReplicas": 2}}
DPATH = "/apis/apps/v1/namespaces/shop/deployments/checkout"
RPATH = "/apis/apps/v1/namespaces/shop/replicasets"


def k8s_conf(fake):
    return ("[deploy.checkout]\nsource = kubernetes\napi_url = %s\ntoken_env = K8S\n"
            "namespace = shop\n" % fake.url)


def test_deploy_kubernetes_recent_status_rollback(tmp_path, fake):
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    recent = (now - datetime.timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    items = {"items": [rs("checkout-aaaaa", 1, "2020-01-01T00:00:00Z", "shop/checkout:1.0"),
                       rs("checkout-bbbbb", 2, recent, "shop/checkout:1.1"),
                       rs("other-ccccc", 9, recent, "x", uid="other")]}
    auth = {"Authorization": "Bearer " + K8S_TOKEN}
    for _ in range(2):
        fake.expect("GET", DPATH, json_body=DEP, want_headers=auth)
        fake.expect("GET", RPATH, json_body=items, want_query={"labelSelector": "app=checkout"})
    fake.expect("GET", DPATH, json_body=DEP)
    prev = items["items"][0]["spec"]["template"]
    # sent as the API gave it ({} stays {}), the hash label removed by its own op
    fake.expect("PATCH", DPATH, json_body=DEP,
                want_headers={"Content-Type": "application/json-patch+json"},
                want_json=[{"op": "replace", "path": "/spec/template", "value": prev},
                           {"op": "remove",
                            "path": "/spec/template/metadata/labels/pod-template-hash"}])
    res = hs.run_book(tmp_path, """
        local d = deploy.recent("checkout", { within = "1h" })
        assert(d and d.revision == 2 and d.image == "shop/checkout:1.1", d and d.id)
        local s = deploy.status("checkout")
        assert(s.done == true and s.replicas == 2, s.message)
        local r = deploy.rollback("checkout")
        assert(r.from == 2 and r.to == 1)
    """, requires=["deploy"], config=k8s_conf(fake), env={"K8S": K8S_TOKEN})
    assert res.code == 0, res
    fake.check()
    n = hs.events(res, op="deploy", event="note")
    assert n and "revision 2 -> 1" in n[0]["detail"]["message"]


def test_deploy_rollback_from_git_runs_the_rollback_command(tmp_path):
    repo = str(tmp_path / "repo")
    os.makedirs(repo)
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "v1")
    git(repo, "commit", "-q", "--allow-empty", "-m", "v2")
    revs = subprocess.run(["git", "-C", repo, "log", "--format=%H"], check=True,
                          capture_output=True, text=True).stdout.split()
    log = str(tmp_path / "deployed")
    conf = ("[deploy.checkout]\nsource = git\nrepo = %s\n"
            "rollback_command = echo \"$1 $2 $(pwd)\" >> %s\n" % (repo, log))
    res = hs.run_book(tmp_path / "a", """
        local r = deploy.rollback("checkout")
        assert(r.from == "%s" and r.to == "%s" and r.simulated == false)
    """ % (revs[0], revs[1]), requires=["deploy"], config=conf)
    assert res.code == 0, res
    with open(log) as f:
        assert f.read().split() == [revs[1], revs[0], repo]
    n = hs.events(res, op="deploy", event="note")
    assert n and n[0]["detail"]["to"] == revs[1]
    ran = hs.events(res, op="cmd", event="started")
    assert ran and ran[0]["detail"]["command"][:2] == ["sh", "-c"]
    # without the key: refused, saying which key and what it gets
    res = hs.run_book(tmp_path / "b", 'deploy.rollback("checkout")', requires=["deploy"],
                      config="[deploy.checkout]\nsource = git\nrepo = %s\n" % repo)
    assert res.code != 0
    assert "git source without rollback_command" in res.stdout + res.stderr
