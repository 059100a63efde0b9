"""`runbook report INCIDENT --html FILE`: the page is opened in headless
Chromium (Debian package chromium): it renders (a screenshot that is not one
colour), carries the Graphviz SVG with the run's path lit, logs no console
errors, fetches nothing, and shows hostile runbook text as text."""
import json
import os
import re
import shutil
import struct
import subprocess
import zlib

import pytest

import rbtest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium not installed")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium(tmp_path, page, *args):
    prof = tmp_path / ("profile-%d" % len(os.listdir(tmp_path)))
    cmd = [CHROMIUM] + FLAGS + ["--user-data-dir=%s" % prof] + list(args) + ["file://" + page]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p


def console_lines(tmp_path, page):
    p = chromium(tmp_path, page, "--enable-logging=stderr", "--v=0", "--dump-dom")
    return [ln for ln in p.stderr.splitlines() if ":CONSOLE" in ln]


def png_pixels(path):
    """The decompressed scanlines of a PNG (filter bytes included) and its size."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    return zlib.decompress(idat), size


def report(r, incident, tmp_path, env=None):
    out = str(tmp_path / (incident + ".html"))
    rep = rbtest.run(["report", incident, "--html", out], state_dir=r.state_dir, env=env)
    assert rep.code == 0, rep
    with open(out) as f:
        return out, f.read()


def assert_self_contained(html):
    # A namespace URI is not a fetch; anything that loads is.
    # Escaped text has no '<', so these only match real markup.
    for pat in (r"<script", r"<link", r"<img", r"<iframe", r"<object", r"<[^>]*\bsrc\s*=",
                r"<[^>]*href\s*=\s*\"(?!#)", r"@import", r"url\("):
        assert not re.search(pat, html, re.I), pat
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_report_renders_in_chromium_with_the_path_lit(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("graphviz not installed")
    r = rbtest.run(["drill", "checkout-errors", "--scenario", "bad-deploy",
                    "--incident", "INC-7"])
    assert r.code == 0, r
    page, html = report(r, "INC-7", tmp_path)
    assert_self_contained(html)
    png = str(tmp_path / "shot.png")
    chromium(tmp_path, page, "--screenshot=" + png, "--window-size=1200,900")
    pixels, size = png_pixels(png)
    assert size == (1200, 900)
    assert len(set(pixels)) > 16, "screenshot is blank"
    print("screenshot %d bytes, %d distinct byte values" % (os.path.getsize(png),
                                                            len(set(pixels))))
    dom = chromium(tmp_path, page, "--dump-dom").stdout
    assert "<svg" in dom
    fin = [e for e in r.timeline("INC-7") if e["kind"] == "run" and e["event"] == "finished"]
    path = fin[0]["detail"]["path"]
    lit = set(re.findall(r'<g id="step_(\w+)" class="node taken"', dom))
    assert lit == set(path[:-1]), lit
    assert re.search(r'<g id="step_%s" class="node stopped"' % path[-1], dom)
    assert dom.count('class="edge taken"') == len(path) - 1
    assert console_lines(tmp_path, page) == []


def test_report_sections_carry_values_people_and_results(tmp_path):
    r = rbtest.run(["drill", "checkout-errors", "--scenario", "bad-deploy",
                    "--incident", "INC-8"])
    assert r.code == 0, r
    _, html = report(r, "INC-8", tmp_path)
    for h in ("Timeline (UTC)", "Decisions", "Approvals", "Writes", "Status updates"):
        assert "<h2>%s</h2>" % h in html
    assert re.search(r"<td>recent_deploy</td><td>Deploy in the last 2 hours\?</td>"
                     r'<td><span class="j">true</span></td><td>rollback</td>', html)
    assert re.search(r'<td>rollback</td><td class="ok">approved</td><td>alice \(scenario\)'
                     r"</td><td></td><td>Roll back checkout", html)
    assert "deploy rollback checkout" in html
    for phase in ("Investigating", "Identified", "Monitoring", "Resolved"):
        assert '<td class="phase">%s</td>' % phase in html
    assert "ended: <b>resolved</b>" in html


HOSTILE = """
local ssh = require "ssh"
return runbook {
  name = "hostile",
  title = "<script>document.title='pwned'</script> errors > 1%",
  start = "q",
  steps = {
    q = check {
      title = "<img src=x onerror=alert(1)> broken?",
      run = function(ctx) return true end,
      on = { [true] = "act", [false] = "ok" },
    },
    act = action {
      title = "Fix </td></tr></table><script>alert(2)</script>",
      approval = true,
      run = function(ctx) return ssh.run("app", "echo '<script>alert(3)</script>'") end,
      next = "say",
    },
    say = notify {
      title = "Tell",
      phase = "Identified",
      message = "<b onmouseover=alert(4)>bold</b> & \\"quoted\\"",
      next = "ok",
    },
    ok = resolved { title = "Done" },
  },
}
"""


@pytest.mark.parametrize("with_dot", [True, False])
def test_report_shows_hostile_text_as_text(tmp_path, with_dot):
    if with_dot and shutil.which("dot") is None:
        pytest.skip("graphviz not installed")
    book = rbtest.write(str(tmp_path / "hostile.lua"), HOSTILE)
    scen = rbtest.write(str(tmp_path / "s.json"), json.dumps(
        {"steps": {"q": True, "act": {"approved": True, "by": "<i>mallory</i>"}}}))
    r = rbtest.run(["drill", book, "--scenario", scen, "--incident", "HOST-1"])
    assert r.code == 0, r
    # Without dot on PATH the page falls back to the text tree.
    env = None if with_dot else {"PATH": str(tmp_path)}
    page, html = report(r, "HOST-1", tmp_path, env=env)
    assert_self_contained(html)
    assert ("<svg" in html) == with_dot
    assert ('<pre class="graph-text">' in html) != with_dot
    dom = chromium(tmp_path, page, "--dump-dom").stdout
    assert "<title>Incident HOST-1</title>" in dom
    for tag in ("<script", "<img", "<b ", "<i>"):
        assert tag not in dom, tag
    assert "&lt;script&gt;document.title=" in dom
    assert "&lt;i&gt;mallory&lt;/i&gt;" in dom
    assert "echo '&lt;script&gt;alert(3)&lt;/script&gt;'" in dom.replace("&#39;", "'")
    assert console_lines(tmp_path, page) == []


def test_console_check_sees_errors(tmp_path):
    """The console check is not vacuous: a page that throws is caught."""
    bad = rbtest.write(str(tmp_path / "bad.html"),
                       "<html><body><script>nosuch();</script></body></html>")
    assert any("nosuch" in ln for ln in console_lines(tmp_path, bad))


def test_report_refuses_bad_arguments(tmp_path):
    assert rbtest.run(["report", "INC-none", "--html", str(tmp_path / "x.html")]).code == 1
    assert rbtest.run(["report", "INC-1"]).code == 2
    assert rbtest.run(["report", "--html"]).code == 2
