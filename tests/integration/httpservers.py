"""httpservers: the servers the HTTP-action tests talk to, all on loopback.

- FakeServer: a FAKE HTTP server (Python, not the real product) standing in
  for LaunchDarkly, Flagsmith, Slack, a generic webhook and the Kubernetes
  API. Each test scripts the exact requests it expects (method, path,
  headers, body) and the recorded responses to replay; anything else is
  answered 599 and reported. Faults: delays, dropped connections.
- make_tls(): a throwaway CA and a server certificate for 127.0.0.1, made
  with the openssl command line.
- Exporter + Prometheus: a /metrics endpoint and the real Debian Prometheus
  scraping it every second.
- Postgres + Unleash: a private PostgreSQL 15 cluster and the real
  unleash-server 6.x (installed by .ci/install-unleash) on top of it.
"""
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

UNLEASH_DIR = os.environ.get("RB_UNLEASH_DIR", "/opt/runbook-test/unleash")
PROMETHEUS_BIN = shutil.which("prometheus") or "/usr/bin/prometheus"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(fn, timeout, what):
    """Polls fn until it returns a truthy value; raises naming what."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - any failure means "not yet"
            last = e
        time.sleep(0.2)
    raise RuntimeError("%s not ready after %ss (last error: %r)" % (what, timeout, last))


# --------------------------------------------------------------------------
# The fake server


class Expect:
    """One scripted exchange: what must arrive and what to answer."""

    def __init__(self, method, path, status=200, json_body=None, body=b"", headers=None,
                 want_headers=None, want_json=None, want_body=None, want_query=None,
                 delay=0.0, drop=False, content_type=None):
        self.method, self.path = method, path
        self.status = status
        self.headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            self.headers.setdefault("Content-Type", content_type or "application/json")
        elif content_type:
            self.headers["Content-Type"] = content_type
        self.body = body.encode() if isinstance(body, str) else body
        self.want_headers = want_headers or {}
        self.want_json = want_json
        self.want_body = want_body
        self.want_query = want_query
        self.delay, self.drop = delay, drop
        self.used = False


class FakeServer:
    """FAKE stand-in for third-party HTTP APIs; see the module docstring."""

    def __init__(self, tls=None):
        self.expects = []
        self.requests = []
        self.problems = []
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                fake._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls["cert"], tls["key"])
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def expect(self, method, path, **kw):
        e = Expect(method, path, **kw)
        with self.lock:
            self.expects.append(e)
        return e

    def _handle(self, h):
        parsed = urllib.parse.urlsplit(h.path)
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else b""
        rec = {"method": h.command, "path": parsed.path,
               "query": urllib.parse.parse_qs(parsed.query),
               "headers": {k.lower(): v for k, v in h.headers.items()}, "body": body}
        with self.lock:
            self.requests.append(rec)
            e = next((x for x in self.expects
                      if not x.used and x.method == h.command and x.path == parsed.path), None)
            if e is not None:
                e.used = True
        if e is None:
            self.problems.append("unexpected %s %s" % (h.command, h.path))
            self._send(h, 599, {"Content-Type": "text/plain"}, b"fake: unexpected request")
            return
        self._check(e, rec)
        if e.delay:
            time.sleep(e.delay)
        if e.drop:
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(h, e.status, e.headers, e.body)

    def _check(self, e, rec):
        where = "%s %s" % (e.method, e.path)
        for k, v in e.want_headers.items():
            got = rec["headers"].get(k.lower())
            if got != v:
                self.problems.append("%s: header %s is %r, want %r" % (where, k, got, v))
        if e.want_query is not None:
            got = {k: v[0] if len(v) == 1 else v for k, v in rec["query"].items()}
            if got != e.want_query:
                self.problems.append("%s: query %r, want %r" % (where, got, e.want_query))
        if e.want_json is not None:
            try:
                got = json.loads(rec["body"] or b"null")
            except ValueError:
                got = rec["body"]
            if got != e.want_json:
                self.problems.append("%s: body %r, want %r" % (where, got, e.want_json))
        if e.want_body is not None and rec["body"] != e.want_body:
            self.problems.append("%s: body %r, want %r" % (where, rec["body"], e.want_body))

    @staticmethod
    def _send(h, status, headers, body):
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def check(self, all_used=True):
        """Fails the test with every difference from the script."""
        problems = list(self.problems)
        if all_used:
            problems += ["never received: %s %s" % (e.method, e.path)
                         for e in self.expects if not e.used]
        assert not problems, "\n".join(problems)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def make_tls(d):
    """A CA and a server certificate for 127.0.0.1/localhost under d."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=d)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
         "ca.pem", "-days", "2", "-subj", "/CN=runbook test CA")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
         "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return {"ca": os.path.join(d, "ca.pem"), "cert": os.path.join(d, "server.pem"),
            "key": os.path.join(d, "server.key")}


# --------------------------------------------------------------------------
# Prometheus


class Exporter:
    """Serves /metrics in the Prometheus text format; values set by tests."""

    def __init__(self):
        self.values = {
            'checkout_requests_total{code="200"}': 1000,
            'checkout_requests_total{code="500"}': 3,
            "checkout_error_ratio": 0.003,
        }
        exp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                lines = ["# TYPE checkout_requests_total counter",
                         "# TYPE checkout_error_ratio gauge"]
                lines += ["%s %s" % (k, v) for k, v in sorted(exp.values.items())]
                body = ("\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Prometheus:
    """The real Prometheus, scraping an Exporter every second."""

    def __init__(self, exporter, workdir, extra_config=""):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        cfg = os.path.join(workdir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: checkout\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n%s" % (exporter.port, extra_config))
        self.log = open(os.path.join(workdir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS_BIN, "--config.file=" + cfg,
             "--storage.tsdb.path=" + os.path.join(workdir, "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=self.log, stderr=subprocess.STDOUT)
        # Three scrapes, so the oldest sample is 2s old: a range query ending
        # at a whole second (os.time() in the runbook) then always has data.
        wait_for(lambda: self.query('count_over_time(checkout_error_ratio[1m]) >= 3'), 60,
                 "prometheus scrapes")

    def query(self, expr):
        u = "%s/api/v1/query?%s" % (self.url, urllib.parse.urlencode({"query": expr}))
        with urllib.request.urlopen(u, timeout=5) as r:
            return json.load(r)["data"]["result"]

    def version(self):
        with urllib.request.urlopen(self.url + "/api/v1/status/buildinfo", timeout=5) as r:
            return json.load(r)["data"]["version"]

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# --------------------------------------------------------------------------
# PostgreSQL and Unleash


def _pg_bin(name):
    base = "/usr/lib/postgresql"
    for v in sorted(os.listdir(base), reverse=True) if os.path.isdir(base) else []:
        p = os.path.join(base, v, "bin", name)
        if os.path.exists(p):
            return p
    return shutil.which(name) or name


class Postgres:
    """A private PostgreSQL cluster on a free loopback port, run as the
    postgres user when the tests run as root (initdb refuses root). Its
    files live in a private directory under the system temp dir, not in
    pytest's tmp_path, whose parents are root-only (0700) and unreachable for
    the postgres user; close() removes it."""

    def __init__(self, workdir):
        self.dir = tempfile.mkdtemp(prefix="rb-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.as_user = []
        self.started = False
        try:
            if os.geteuid() == 0:
                os.chmod(self.dir, 0o755)
                shutil.chown(self.dir, "postgres", "postgres")
                self.as_user = ["runuser", "-u", "postgres", "--"]
            self._run(_pg_bin("initdb"), "-D", self.data, "-U", "postgres", "-A", "trust",
                      "--no-sync", "-E", "UTF8")
            self._run(_pg_bin("pg_ctl"), "-D", self.data, "-l",
                      os.path.join(self.dir, "log"), "-w", "-o",
                      "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off"
                      % (self.port, self.dir), "start")
            self.started = True
            self.psql("CREATE USER unleash PASSWORD 'unleash'")
            self.psql("CREATE DATABASE unleash OWNER unleash")
        except Exception:
            self.close()
            raise

    def _run(self, *args):
        try:
            subprocess.run(self.as_user + list(args), check=True, capture_output=True,
                           cwd=self.dir)
        except subprocess.CalledProcessError as e:
            raise RuntimeError("%s failed (exit %d): %s%s" % (
                " ".join(e.cmd), e.returncode, e.stdout.decode(errors="replace"),
                e.stderr.decode(errors="replace"))) from None

    def psql(self, sql):
        self._run(_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-v", "ON_ERROR_STOP=1", "-c", sql)

    def close(self):
        if self.started:
            self.started = False
            try:
                self._run(_pg_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")
            except RuntimeError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


UNLEASH_LAUNCHER = r"""
// Starts unleash-server for the runbook tests: loopback only, no telemetry,
// no version check, an admin token from INIT_ADMIN_API_TOKENS.
const unleash = require('unleash-server');
unleash.start({
  db: { user: 'unleash', password: 'unleash', host: '127.0.0.1',
        port: Number(process.env.RB_PG_PORT), database: 'unleash', ssl: false },
  server: { host: '127.0.0.1', port: Number(process.env.RB_UNLEASH_PORT) },
  versionCheck: { enable: false },
  telemetry: false,
  getLogger: undefined,
}).catch((e) => { console.error(e); process.exit(1); });
"""


class Unleash:
    """The real unleash-server 6.x with an admin API token."""

    TOKEN = "*:*.runbook-test-admin-token-0123456789"

    def __init__(self, pg, workdir):
        if not os.path.exists(os.path.join(UNLEASH_DIR, "node_modules", "unleash-server")):
            raise RuntimeError("unleash-server is not installed in %s: run .ci/install-unleash"
                               % UNLEASH_DIR)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        launcher = os.path.join(UNLEASH_DIR, "rb-launch.js")
        with open(launcher + ".tmp", "w") as f:
            f.write(UNLEASH_LAUNCHER)
        os.replace(launcher + ".tmp", launcher)
        env = dict(os.environ, RB_PG_PORT=str(pg.port), RB_UNLEASH_PORT=str(self.port),
                   INIT_ADMIN_API_TOKENS=self.TOKEN, CHECK_VERSION="false",
                   SEND_TELEMETRY="false", LOG_LEVEL="warn", NODE_ENV="production")
        self.log = open(os.path.join(workdir, "unleash.log"), "w")
        self.proc = subprocess.Popen(["node", launcher], cwd=UNLEASH_DIR, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for(self._ready, 180, "unleash")

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError("unleash exited with %s" % self.proc.returncode)
        self.api("GET", "/api/admin/projects/default/features")
        return True

    def api(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": self.TOKEN, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def version(self):
        return self.api("GET", "/api/admin/ui-config").get("version")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def close(self):
        self.stop()
        self.log.close()


def workdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    return d


# --------------------------------------------------------------------------
# Running runbooks


BOOK = """local http = require "http"
%(requires)s
return runbook {
  name = "http-test", title = "HTTP test", start = "step",
  steps = {
    step = %(kind)s {
      title = "Step under test",
      run = function(ctx)
%(body)s
      end,
      %(next)s
    },
    done = resolved { title = "Done" },
  },
}
"""


def run_book(tmp, body, config="", env=None, args=(), kind="action", requires=(),
             timeout=120):
    """Writes a one-step runbook whose step runs body (Lua) and execs it with
    config; returns the rbtest Result."""
    import rbtest
    nxt = 'on = { [true] = "done", [false] = "done" },' if kind == "check" else 'next = "done",'
    src = BOOK % {"requires": "\n".join('local %s = require "%s"' % (m, m) for m in requires),
                  "kind": kind, "body": body, "next": nxt}
    book = rbtest.write(os.path.join(str(tmp), "book.lua"), src)
    conf = rbtest.write(os.path.join(str(tmp), "runbook.conf"), config)
    return rbtest.run(["--config", conf, "exec", book] + list(args),
                      state_dir=os.path.join(str(tmp), "state"), env=env, timeout=timeout)


def events(res, op=None, event=None):
    """Timeline events, filtered by detail.op and event name."""
    out = []
    for ev in res.timeline():
        d = ev.get("detail") or {}
        if op is not None and (not isinstance(d, dict) or d.get("op") != op):
            continue
        if event is not None and ev.get("event") != event:
            continue
        out.append(ev)
    return out
