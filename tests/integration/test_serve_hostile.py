"""runbook serve under hostile clients: a bounded slowloris while /healthz is
probed, deadlines that count from a connection's start, 415 (issue 13)."""
import json
import socket
import threading
import time
import urllib.request

from test_serve import TOKEN, Serve, fixture_body


def slowloris(port, n, seconds, every, stats, stop):
    """n connections that each send a request line, then one header line
    every `every` seconds, never finishing the headers."""
    socks = []
    for _ in range(n):
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(b"POST /alerts/alertmanager HTTP/1.1\r\nHost: x\r\n")
            socks.append(c)
            stats["opened"] += 1
        except OSError:
            stats["refused"] += 1
    end = time.time() + seconds
    i = 0
    while time.time() < end and not stop.is_set():
        time.sleep(every)
        for c in list(socks):
            try:
                c.sendall(b"X-Slow-%d: a\r\n" % i)
            except OSError:
                socks.remove(c)
                stats["closed_by_server"] += 1
                # a real attacker comes back at once
                try:
                    c2 = socket.create_connection(("127.0.0.1", port), timeout=5)
                    c2.sendall(b"POST /alerts/alertmanager HTTP/1.1\r\n")
                    socks.append(c2)
                    stats["reopened"] += 1
                except OSError:
                    stats["refused"] += 1
        i += 1
    for c in socks:
        c.close()


def probe(port):
    t0 = time.time()
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=3) as r:
            return r.status == 200 and r.read() == b"ok\n", time.time() - t0
    except OSError:
        return False, time.time() - t0


def test_healthz_answers_every_probe_during_a_slowloris(tmp_path):
    s = Serve(tmp_path, conf_extra="header_timeout = \"3s\"\n")
    assert s.port, s.text()
    try:
        stats = dict(opened=0, refused=0, closed_by_server=0, reopened=0)
        stop = threading.Event()
        t = threading.Thread(target=slowloris, args=(s.port, 150, 10, 2, stats, stop))
        t.start()
        time.sleep(1)  # the attack is in place
        results = []
        while t.is_alive():
            results.append(probe(s.port))
            time.sleep(0.5)
        t.join()
        print("slowloris", stats, "probes", len(results), "max %.3fs" % max(d for _, d in results))
        ok = [r for r in results if r[0]]
        assert len(results) >= 12
        assert len(ok) == len(results), (results, stats, s.text()[-2000:])
        assert max(d for _, d in results) < 2.0, results
        # the attack's connections were cut, by the deadline or to make room
        m = s.metrics()
        closed = (m['runbook_connections_closed_total{why="deadline"}'] +
                  m['runbook_connections_closed_total{why="evicted"}'])
        assert closed >= 100 and stats["closed_by_server"] > 0, (m, stats)
        # and an alert sender is still served
        code, body = s.post_alerts(fixture_body())
        assert code == 202, body
        s.wait_finished(1)
    finally:
        assert s.stop() == 0, s.text()


def test_header_deadline_counts_from_the_connection_start(tmp_path):
    s = Serve(tmp_path, conf_extra="header_timeout = \"2s\"\n")
    assert s.port, s.text()
    try:
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        c.sendall(b"GET /healthz HTTP/1.1\r\n")
        t0 = time.time()
        closed_after = None
        for i in range(10):  # busy, never idle: the idle timeout would never fire
            time.sleep(0.5)
            try:
                c.sendall(b"X-Slow-%d: a\r\n" % i)
                c.settimeout(0.01)
                if c.recv(1) == b"":
                    closed_after = time.time() - t0
                    break
            except socket.timeout:
                continue
            except OSError:
                closed_after = time.time() - t0
                break
            finally:
                c.settimeout(10)
        c.close()
        assert closed_after is not None and 1.5 <= closed_after <= 4, closed_after
    finally:
        assert s.stop() == 0, s.text()


def test_post_that_is_not_json_is_415_and_starts_nothing(tmp_path):
    s = Serve(tmp_path)
    assert s.port, s.text()
    try:
        for ct in ("text/plain", "application/x-www-form-urlencoded", None,
                   "application/jsonp"):
            h = {"Authorization": "Bearer " + TOKEN}
            if ct:
                h["Content-Type"] = ct
            code, body = s.request("POST", "/alerts/alertmanager", fixture_body(), h)
            assert code == 415, (ct, code, body)
            assert json.loads(body)["error"] == "Content-Type: expected application/json"
        code, body = s.post_alerts(fixture_body(),
                                   headers={"Content-Type": "application/json; charset=utf-8"})
        assert code == 202, body
        m = s.wait_finished(1)
        assert m["runbook_runs_started_total"] == 1
        assert m['runbook_requests_total{path="/alerts/alertmanager",code="415"}'] == 4
    finally:
        assert s.stop() == 0, s.text()
