"""pgstore.py: a private PostgreSQL 15 cluster for the shared-store tests:
password (SCRAM) authentication on loopback, optional TLS, and stop/start
so a test can take the database away. Run as the postgres user when the
tests run as root (initdb refuses root), like httpservers.Postgres."""
import os
import shutil
import subprocess
import tempfile

from httpservers import _pg_bin, free_port

USER = "rb"
PASSWORD = "rb-store-test-password-7d1e"
DB = "rb"


class StorePostgres:
    def __init__(self, tls=None):
        self.dir = tempfile.mkdtemp(prefix="rb-pgstore-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.as_user = []
        self.running = False
        try:
            if os.geteuid() == 0:
                os.chmod(self.dir, 0o755)
                shutil.chown(self.dir, "postgres", "postgres")
                self.as_user = ["runuser", "-u", "postgres", "--"]
            self._run(_pg_bin("initdb"), "-D", self.data, "-U", "postgres",
                      "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
                      "-E", "UTF8")
            opts = ["listen_addresses='127.0.0.1'", "port=%d" % self.port,
                    "unix_socket_directories='%s'" % self.dir, "fsync=off"]
            if tls:
                for k in ("cert", "key"):
                    dst = os.path.join(self.dir, "server." + k)
                    shutil.copy(tls[k], dst)
                    os.chmod(dst, 0o600)
                    if self.as_user:
                        shutil.chown(dst, "postgres", "postgres")
                opts += ["ssl=on", "ssl_cert_file='%s/server.cert'" % self.dir,
                         "ssl_key_file='%s/server.key'" % self.dir]
            with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
                f.write("\n".join(opts) + "\n")
            self.start()
            self.psql("CREATE USER %s PASSWORD '%s'" % (USER, PASSWORD))
            self.psql("CREATE DATABASE %s OWNER %s" % (DB, USER))
        except Exception:
            self.close()
            raise

    def url(self, host="127.0.0.1"):
        return "postgresql://%s@%s:%d/%s" % (USER, host, self.port, DB)

    def _run(self, *args):
        try:
            return subprocess.run(self.as_user + list(args), check=True,
                                  capture_output=True, cwd=self.dir, text=True).stdout
        except subprocess.CalledProcessError as e:
            raise RuntimeError("%s failed (exit %d): %s%s" % (
                " ".join(e.cmd), e.returncode, e.stdout, e.stderr)) from None

    def psql(self, sql, db="postgres"):
        """Runs sql over the local socket as the superuser; the rows, '|'-joined."""
        out = self._run(_pg_bin("psql"), "-h", self.dir, "-p", str(self.port), "-U",
                        "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql)
        return [line for line in out.splitlines() if line]

    def scalar(self, sql):
        rows = self.psql(sql, db=DB)
        return rows[0] if rows else None

    def start(self):
        self._run(_pg_bin("pg_ctl"), "-D", self.data, "-l",
                  os.path.join(self.dir, "log"), "-w", "start")
        self.running = True

    def stop(self):
        self._run(_pg_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")
        self.running = False

    def close(self):
        if self.running:
            try:
                self.stop()
            except RuntimeError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
