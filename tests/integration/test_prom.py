"""prom through the real binary against the real Prometheus (Debian's)
scraping an exporter the harness runs on loopback."""
import pytest

import httpservers as hs


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    exp = hs.Exporter()
    p = hs.Prometheus(exp, str(tmp_path_factory.mktemp("prom")))
    yield p
    p.close()
    exp.close()


def conf(p):
    return "[prom]\nurl = %s\n" % p.url


def test_value_of_a_gauge(tmp_path, prom):
    res = hs.run_book(tmp_path, """
        local v = prom.value("checkout_error_ratio")
        assert(math.abs(v - 0.003) < 1e-9, v)
        return v < 0.01
    """, config=conf(prom), requires=["prom"], kind="check")
    assert res.code == 0, res
    fin = hs.events(res, op="http", event="finished")
    assert fin and "/api/v1/query" in fin[0]["detail"]["url"]


def test_query_returns_labelled_series(tmp_path, prom):
    res = hs.run_book(tmp_path, """
        local s = prom.query("checkout_requests_total")
        assert(#s == 2, #s)
        local by = {}
        for _, x in ipairs(s) do by[x.labels.code] = x.value end
        assert(by["200"] == 1000 and by["500"] == 3)
        assert(prom.query("scalar(checkout_error_ratio) * 2") == 0.006)
    """, config=conf(prom), requires=["prom"])
    assert res.code == 0, res


def test_range_query(tmp_path, prom):
    res = hs.run_book(tmp_path, """
        local s = prom.range("checkout_error_ratio", { start = "2m", step = "1s" })
        assert(#s == 1 and #s[1].values >= 1)
        assert(s[1].values[1].value == 0.003)
    """, config=conf(prom), requires=["prom"])
    assert res.code == 0, res


def test_bad_query_surfaces_error_type(tmp_path, prom):
    res = hs.run_book(tmp_path, 'prom.query("rate(checkout_requests_total[5m")',
                      config=conf(prom), requires=["prom"])
    assert res.code != 0
    assert "bad_data" in res.stdout + res.stderr


def test_value_of_many_series_is_an_error(tmp_path, prom):
    res = hs.run_book(tmp_path, 'prom.value("checkout_requests_total")',
                      config=conf(prom), requires=["prom"])
    assert res.code != 0
    assert "returned 2 series" in res.stdout + res.stderr


def test_prometheus_version(prom):
    assert prom.version().startswith("2.")


@pytest.fixture(scope="module")
def prom_partial(tmp_path_factory):
    """A Prometheus whose remote_read endpoint is down: it answers with
    status success, the local data, and a warning that the result may be
    partial."""
    exp = hs.Exporter()
    dead = hs.free_port()  # nothing listens there
    p = hs.Prometheus(exp, str(tmp_path_factory.mktemp("prom-partial")),
                      "remote_read:\n  - url: http://127.0.0.1:%d/api/v1/read\n"
                      "    read_recent: true\n" % dead)
    yield p
    p.close()
    exp.close()


def test_warnings_are_returned_and_noted_on_the_timeline(tmp_path, prom_partial):
    res = hs.run_book(tmp_path, """
        local v, w = prom.value("checkout_error_ratio")
        assert(math.abs(v - 0.003) < 1e-9, v)
        assert(type(w) == "table" and #w == 1, w)
        assert(w[1]:find("remote_read", 1, true), w[1])
        local s, w2 = prom.query("checkout_requests_total")
        assert(#s == 2 and #w2 == 1)
        local r, w3 = prom.range("checkout_error_ratio", { start = "1m", step = "1s" })
        assert(#r == 1 and #w3 == 1)
        local n, none = prom.value("scalar(vector(1))")
        assert(n == 1 and none == nil)  -- no selector, no remote read, no warning
        return true
    """, config=conf(prom_partial), requires=["prom"], kind="check")
    assert res.code == 0, res
    notes = hs.events(res, op="prom", event="note")
    assert len(notes) == 3, notes
    assert notes[0]["step"] == "step"
    assert notes[0]["detail"]["query"] == "checkout_error_ratio"
    assert notes[0]["detail"]["api"] == "/api/v1/query"
    assert "remote_read" in notes[0]["detail"]["warnings"][0]
    assert notes[2]["detail"]["api"] == "/api/v1/query_range"


def test_one_sample_vector_is_a_bare_number_unless_series(tmp_path, prom):
    res = hs.run_book(tmp_path, """
        local v = prom.value('checkout_requests_total{code="500"}')
        assert(v == 3, v)
        assert(prom.query('checkout_requests_total{code="500"}') == 3)
        local s = prom.query('checkout_requests_total{code="500"}', { series = true })
        assert(#s == 1 and s[1].value == 3 and s[1].labels.code == "500")
    """, config=conf(prom), requires=["prom"])
    assert res.code == 0, res
