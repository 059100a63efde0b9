"""runbook serve over HTTPS (issue 13): a test CA and a server certificate
made with openssl, a real TLS client that verifies against the CA, one that
does not know it, plain HTTP to the TLS port, and the start-up refusals
(fail closed, naming the file)."""
import http.client
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from test_serve import TOKEN, Serve, fixture_body, parse_metrics


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """ca.pem, server.pem/server.key signed by it for 127.0.0.1 and
    localhost, and other.key that belongs to no certificate."""
    d = str(tmp_path_factory.mktemp("pki"))
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=runbook test CA", cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName = IP:127.0.0.1, DNS:localhost\n"
                "extendedKeyUsage = serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
            cwd=d)
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", "other.key", cwd=d)
    for k in ("server.key", "other.key", "ca.key"):
        os.chmod(os.path.join(d, k), 0o600)
    return d


def tls_conf(cert, key):
    return 'tls_cert_file = "%s"\ntls_key_file = "%s"\n' % (cert, key)


def https_post(port, body, ctx):
    req = urllib.request.Request(
        "https://127.0.0.1:%d/alerts/alertmanager" % port, data=body.encode(), method="POST",
        headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20, context=ctx) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_finished_https(port, ctx, timeout=60):
    deadline = time.time() + timeout
    while True:
        with urllib.request.urlopen("https://127.0.0.1:%d/metrics" % port, timeout=20,
                                    context=ctx) as r:
            m = parse_metrics(r.read().decode())
        if m.get('runbook_runs_finished_total{exit_code="0"}', 0) >= 1 or \
                time.time() > deadline:
            return m
        time.sleep(0.1)


def test_alert_over_https_verified_against_the_test_ca(tmp_path, pki):
    s = Serve(tmp_path, conf_extra=tls_conf(os.path.join(pki, "server.pem"),
                                            os.path.join(pki, "server.key")))
    assert s.port, s.text()
    try:
        assert "(https," in s.text()
        ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
        code, out = https_post(s.port, fixture_body(), ctx)
        assert code == 202, out
        res = {r["fingerprint"]: r["status"] for r in json.loads(out)}
        assert res["a3d9a4bfa0d26a05"] == "started"
        # curl, another TLS stack, verifying against the same CA
        p = subprocess.run(["curl", "-sS", "--cacert", os.path.join(pki, "ca.pem"),
                            "https://localhost:%d/healthz" % s.port],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and p.stdout == "ok\n", p.stderr

        # a client that does not trust the test CA refuses the server
        with pytest.raises(urllib.error.URLError) as e:
            https_post(s.port, fixture_body(), ssl.create_default_context())
        assert isinstance(e.value.reason, ssl.SSLCertVerificationError), e.value
        p = subprocess.run(["curl", "-sS", "https://127.0.0.1:%d/healthz" % s.port],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 60, (p.returncode, p.stderr)  # peer certificate not verified

        # plain HTTP to the TLS port gets no HTTP answer
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        with pytest.raises((http.client.HTTPException, OSError)):
            c.request("POST", "/alerts/alertmanager", fixture_body(),
                      {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
            c.getresponse()
        c.close()
        m = wait_finished_https(s.port, ctx)
        assert m["runbook_runs_started_total"] == 1
        assert m["runbook_alerts_received_total"] == 2  # only the HTTPS post was read
    finally:
        assert s.stop() == 0, s.text()


@pytest.mark.parametrize("cert,key,error", [
    ("server.pem", "other.key",
     "[serve] tls_key_file: {d}/other.key: not the key of the certificate in "
     "tls_cert_file {d}/server.pem"),
    ("missing.pem", "server.key",
     "[serve] tls_cert_file: {d}/missing.pem: No such file or directory"),
    ("server.pem", "missing.key",
     "[serve] tls_key_file: {d}/missing.key: No such file or directory"),
    ("server.key", "server.key", "[serve] tls_cert_file: {d}/server.key: not a PEM certificate"),
    ("server.pem", "server.pem",
     "[serve] tls_key_file: {d}/server.pem: not a PEM private key"),
    ("server.pem", None, "[serve] tls_cert_file is set without tls_key_file"),
    (None, "server.key", "[serve] tls_key_file is set without tls_cert_file"),
])
def test_bad_certificate_or_key_refuses_start_naming_the_file(tmp_path, pki, cert, key,
                                                              error):
    conf = ""
    if cert:
        conf += 'tls_cert_file = "%s"\n' % os.path.join(pki, cert)
    if key:
        conf += 'tls_key_file = "%s"\n' % os.path.join(pki, key)
    s = Serve(tmp_path, conf_extra=conf)
    assert s.proc.wait(timeout=30) == 2, s.text()
    s.logf.close()
    assert error.format(d=pki) in s.text(), s.text()
    assert "listening" not in s.text()


def test_unreadable_key_refuses_start(tmp_path, pki):
    if os.geteuid() == 0:
        # root reads any file: make it a directory instead
        key = str(tmp_path / "key-dir")
        os.mkdir(key)
        want = "[serve] tls_key_file: %s: " % key
    else:
        key = str(tmp_path / "nope.key")
        with open(os.path.join(pki, "server.key")) as src, open(key, "w") as dst:
            dst.write(src.read())
        os.chmod(key, 0)
        want = "[serve] tls_key_file: %s: Permission denied" % key
    s = Serve(tmp_path, conf_extra=tls_conf(os.path.join(pki, "server.pem"), key))
    assert s.proc.wait(timeout=30) == 2, s.text()
    s.logf.close()
    assert want in s.text(), s.text()


def test_only_tls_1_2_and_1_3_are_offered(tmp_path, pki):
    s = Serve(tmp_path, conf_extra=tls_conf(os.path.join(pki, "server.pem"),
                                            os.path.join(pki, "server.key")))
    assert s.port, s.text()
    try:
        def hello(version):
            # SECLEVEL=0 lets the client itself offer TLS 1.0/1.1
            return subprocess.run(
                ["openssl", "s_client", "-connect", "127.0.0.1:%d" % s.port, "-" + version,
                 "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", os.path.join(pki, "ca.pem"),
                 "-verify_return_error"],
                input="", capture_output=True, text=True, timeout=30)
        for v, name in (("tls1_2", "TLSv1.2"), ("tls1_3", "TLSv1.3")):
            p = hello(v)
            assert p.returncode == 0 and "Verify return code: 0 (ok)" in p.stdout, p.stdout
            assert name in p.stdout, p.stdout
        for v in ("tls1", "tls1_1"):
            p = hello(v)
            assert p.returncode != 0 and "Cipher is (NONE)" in p.stdout, (v, p.stdout)
    finally:
        assert s.stop() == 0, s.text()
