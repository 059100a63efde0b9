"""What the readers of a timeline make of the incident's paging and of the
alert clearing: a real escalate step pages a recording PagerDuty stand-in,
then a real `runbook serve` takes Alertmanager's resolved notification for
the incident's alert and appends `alert_resolved`; the postmortem, the brief
and text timelines and the HTML report show both, with the times they came
from, and the postmortem's Resolved follows the documented rule."""
import json
import os

import httpservers as hs
import rbtest
import test_escalation as esc
import test_report
from test_serve import FIXTURE, FIXTURE_INCIDENT, Serve

FP = "a3d9a4bfa0d26a05"
INC = FIXTURE_INCIDENT  # the incident serve gives the fixture's group and firing
PD_CONF = "[escalation.dba-team]\nkind = pagerduty\nrouting_key_env = PD_KEY\nurl = %s/v2/enqueue\n"
OK = {"status": "success", "message": "Event processed", "dedup_key": "runbook-" + INC}


def resolve_alert(tmp_path):
    """Alertmanager's resolved notification through a real serve on the state dir."""
    with open(FIXTURE) as f:
        am = json.load(f)
    am["status"] = "resolved"
    # the incident's alert alone (its firing is the group's earliest, so the
    # incident is the same; the fixture's other alert would add a second row)
    am["alerts"] = [a for a in am["alerts"] if a["fingerprint"] == FP]
    for a in am["alerts"]:
        a["status"] = "resolved"
    s = Serve(tmp_path)
    assert s.port, s.text()
    try:
        code, out = s.post_alerts(json.dumps(am))
        assert code == 202, out
        got = {r["fingerprint"]: r for r in json.loads(out)}
        assert got[FP]["status"] == "resolved" and got[FP]["incident"] == INC, out
    finally:
        assert s.stop() == 0, s.text()
    return s.state


def timeline(state):
    with open(os.path.join(state, "incidents", INC + ".jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def utc(ev):
    return "%s %s UTC" % (ev["ts"][:10], ev["ts"][11:19])


def hms(ev):
    return ev["ts"][11:19]


def run_and_resolve(tmp_path, fake, nxt):
    res = esc.run(tmp_path, PD_CONF % fake.url, incident=INC, nxt=nxt)
    fake.check()
    state = resolve_alert(tmp_path)
    tl = timeline(state)
    assert tl[-1]["event"] == "alert_resolved", tl[-1]
    v = rbtest.run(["verify", INC], state_dir=state)
    assert v.code == 0, v
    return res, state, tl


def lines_of(r):
    assert r.code == 0, r
    return r.stdout.splitlines()


def starting(lines, prefix):
    hit = [ln for ln in lines if ln.startswith(prefix)]
    assert len(hit) == 1, (prefix, lines)
    return hit[0]


def test_page_sent_and_resolved_then_the_alert_clears(tmp_path):
    fake = hs.FakeServer()
    try:
        fake.expect("POST", "/v2/enqueue", status=202, json_body=OK)
        fake.expect("POST", "/v2/enqueue", status=202, json_body=OK)
        res, state, tl = run_and_resolve(tmp_path, fake, "done")
    finally:
        fake.close()
    assert res.code == 0, res
    paged = [e for e in tl if e.get("step") == "page" and e["event"] == "finished"
             and "page" in e.get("detail", {})][0]
    unpaged = [e for e in tl if e["event"] == "note" and e["detail"].get("op") == "page"][0]
    fin = [e for e in tl if e.get("kind") == "run" and e["event"] == "finished"][0]
    alert = tl[-1]

    pm = lines_of(rbtest.run(["postmortem", INC], state_dir=state))
    assert starting(pm, "- **Paged**: ") == \
        "- **Paged**: dba-team (pagerduty) at %s: sent (HTTP 202)" % utc(paged)
    assert starting(pm, "- **Page resolved**: ") == \
        "- **Page resolved**: dba-team (pagerduty) at %s: sent (HTTP 202)" % utc(unpaged)
    # the run resolved before the alert's notification came: Resolved is the run's
    assert starting(pm, "- **Resolved**: ").startswith("- **Resolved**: %s, " % utc(fin))
    assert starting(pm, "- **Resolved**: ").endswith(" after detection (the run resolved)")
    line = starting(pm, "- **Alert resolved**: ")
    assert line.startswith("- **Alert resolved**: %s, " % utc(alert))
    assert line.endswith(" after detection (via alertmanager)")
    assert not [ln for ln in pm if ln.startswith("- **Run resolved**")]
    # the brief table inside it
    assert "| %s | alert resolved (via alertmanager): CheckoutHighErrorRate |" % hms(alert) in pm
    assert "| %s | done: resolved the page to dba-team (pagerduty, HTTP 202) |" % hms(unpaged) \
        in pm
    row = starting(pm, "| %s | page: escalated to dba-team" % hms(paged))
    assert row.endswith("; paged dba-team (pagerduty, HTTP 202) |"), row
    # the page is not a mitigation: there is none on this timeline
    assert "- **First mitigation**: none on the timeline" in pm

    md = lines_of(rbtest.run(["timeline", INC, "--format", "markdown"], state_dir=state))
    assert "| %s | alert resolved (via alertmanager): CheckoutHighErrorRate |" % hms(alert) in md
    txt = lines_of(rbtest.run(["timeline", INC, "--format", "text"], state_dir=state))
    assert txt[-1].startswith(alert["ts"][11:23] + "  alert  alert_resolved  "), txt[-1]
    assert txt[-1].endswith("  (via alertmanager): CheckoutHighErrorRate"), txt[-1]

    out = str(tmp_path / "r.html")
    rep = rbtest.run(["report", INC, "--html", out], state_dir=state)
    assert rep.code == 0, rep
    with open(out) as f:
        html = f.read()
    pages = html[html.index("<h2>Pages and alerts</h2>"):]
    pages = pages[:pages.index("</table>")]
    assert ('<td class="ts">%s</td><td></td><td class="ok">alert resolved (via alertmanager): '
            'CheckoutHighErrorRate</td>' % hms(alert)) in pages, pages
    assert ('<td class="ok">done: resolved the page to dba-team (pagerduty, HTTP 202)</td>'
            in pages), pages
    assert pages.count("<tr>") == 3 + 1, pages  # header, page, resolve, alert
    test_report.assert_self_contained(html)
    if os.path.exists(test_report.CHROMIUM):
        assert test_report.console_lines(tmp_path, out) == []


def test_failed_page_escalated_run_resolved_by_the_alert(tmp_path):
    fake = hs.FakeServer()
    try:
        fake.expect("POST", "/v2/enqueue", status=400, json_body={"status": "invalid event"})
        res, state, tl = run_and_resolve(tmp_path, fake, "gave_up")
    finally:
        fake.close()
    assert res.code == 5, res
    paged = [e for e in tl if e.get("step") == "page" and e["event"] == "finished"
             and "page" in e.get("detail", {})][0]
    err = paged["detail"]["page"]["error"]
    assert "HTTP 400" in err
    alert = tl[-1]

    pm = lines_of(rbtest.run(["postmortem", INC], state_dir=state))
    assert starting(pm, "- **Paged**: ") == \
        "- **Paged**: dba-team (pagerduty) at %s: FAILED: %s" % (utc(paged), err)
    assert not [ln for ln in pm if ln.startswith("- **Page resolved**")]
    # escalated: the alert clearing is the resolution there is
    line = starting(pm, "- **Resolved**: ")
    assert line.startswith("- **Resolved**: %s, " % utc(alert)), line
    assert line.endswith(" (the alert's resolved notification, via alertmanager)"), line
    assert ("- The run did not resolve (it ended escalated): the alert clearing is the only "
            "resolution on the timeline") in pm
    # Impact runs to the alert's clearing, not to the last row
    assert starting(pm, "- **Duration**: ").startswith(
        "- **Duration**: %s to %s UTC (" % (tl[0]["ts"][11:16], alert["ts"][11:16]))
    assert starting(pm, "| %s | run finished: escalated" % hms(tl[-2])).find(
        "page dba-team FAILED: HTTP 400") > 0

    out = str(tmp_path / "r.html")
    assert rbtest.run(["report", INC, "--html", out], state_dir=state).code == 0
    with open(out) as f:
        html = f.read()
    pages = html[html.index("<h2>Pages and alerts</h2>"):]
    pages = pages[:pages.index("</table>")]
    assert '<td class="bad">page: escalated to dba-team' in pages, pages
    assert "page to dba-team FAILED: HTTP 400" in pages, pages


def test_dry_run_page_is_neither_sent_nor_a_mitigation(tmp_path):
    fake = hs.FakeServer()
    try:
        res = esc.run(tmp_path, PD_CONF % fake.url, args=["--dry-run"], incident=INC)
        assert res.code == 0, res
        assert fake.requests == []
    finally:
        fake.close()
    tl = res.timeline()
    paged = [e for e in tl if e.get("step") == "page" and e["event"] == "finished"][0]
    pm = lines_of(rbtest.run(["postmortem", INC], state_dir=res.state_dir))
    assert starting(pm, "- **Paged**: ") == ("- **Paged**: dba-team (pagerduty) at %s: would "
                                             "be sent (dry-run: nothing was sent)" % utc(paged))
    assert starting(pm, "- **Page resolved**: ").endswith(": would be sent (dry-run: nothing "
                                                          "was sent)")
    # the page's would-be POSTs stay on the brief timeline but mitigate nothing
    assert "- **First mitigation**: none on the timeline" in pm
    assert [ln for ln in pm if ln.startswith("| ") and "page: would run POST " + fake.url in ln]
    assert [ln for ln in pm if ln.startswith("| ") and "done: would run POST " + fake.url in ln]
