"""sshd: real OpenSSH servers on loopback for the SSH tests and benchmark.

Each Server is its own sshd on a high 127.0.0.1 port with its own generated
ed25519 and ECDSA host keys, so several of them act as separate hosts. A
Cluster also generates one client ed25519 key and writes a known_hosts that
lists only the servers' ed25519 keys (libssh2 1.10 would otherwise negotiate
ECDSA and fail verification, which the tests must catch)."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def keygen(path, kind="ed25519", extra=()):
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", os.path.basename(path), "-f", path]
    subprocess.run(args + list(extra), check=True, stdin=subprocess.DEVNULL)
    return path


def fingerprint(pub_path):
    """The SHA256:... fingerprint exactly as ssh-keygen -lf prints it."""
    out = subprocess.run(["ssh-keygen", "-lf", pub_path], check=True, capture_output=True,
                         text=True).stdout
    return out.split()[1]


class Server:
    def __init__(self, base, name, authorized_keys, extra_config="", log_level="INFO"):
        self.name = name
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.ed25519 = keygen(os.path.join(self.dir, "host_ed25519"), "ed25519")
        self.ecdsa = keygen(os.path.join(self.dir, "host_ecdsa"), "ecdsa")
        self.log = os.path.join(self.dir, "sshd.log")
        self.pidfile = os.path.join(self.dir, "sshd.pid")
        self.config = os.path.join(self.dir, "sshd_config")
        self.authorized_keys = authorized_keys
        self.extra_config = extra_config
        self.log_level = log_level  # VERBOSE logs each session's command
        self.proc = None
        self.write_config()

    def write_config(self):
        with open(self.config, "w") as f:
            f.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.ed25519}
HostKey {self.ecdsa}
PidFile {self.pidfile}
AuthorizedKeysFile {self.authorized_keys}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
MaxStartups 200:30:300
MaxSessions 100
LogLevel {self.log_level}
# bash sources ~/.bashrc for commands sshd starts unless it is a nested
# shell; root's .bashrc on the build machines runs `pyenv rehash`, whose lock
# file a killed session leaves behind, stalling every later command by 60 s.
SetEnv SHLVL=1
{self.extra_config}
""")

    def start(self):
        os.makedirs("/run/sshd", exist_ok=True)
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.config, "-E", self.log],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("sshd %s exited: %s" % (self.name, self.read_log()))
            time.sleep(0.05)
        raise RuntimeError("sshd %s did not come up: %s" % (self.name, self.read_log()))

    def descendants(self):
        """Pids of the per-connection sshd processes under the listener."""
        if self.proc is None:
            return []
        kids, frontier = [], [self.proc.pid]
        while frontier:
            parent = frontier.pop()
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open("/proc/%s/stat" % entry) as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == parent:
                    kids.append(int(entry))
                    frontier.append(int(entry))
        return kids

    def kill(self):
        """Kills the listener and every connection it serves: the host is gone.

        Freezes before it kills: a connection accepted (or a session forked)
        while the tree is walked would otherwise survive as an orphan and keep
        its socket open, so the host would not really be gone."""
        if self.proc is None:
            return
        frozen = [self.proc.pid]
        os.kill(self.proc.pid, signal.SIGSTOP)
        while True:
            new = [p for p in self.descendants() if p not in frozen]
            if not new:
                break
            for pid in new:
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    pass
            frozen += new
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self):
        self.kill()

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def accepted(self):
        """Number of successful logins so far (one per SSH connection)."""
        return self.read_log().count("Accepted publickey")

    def host_line(self, key="ed25519"):
        path = (self.ed25519 if key == "ed25519" else self.ecdsa) + ".pub"
        with open(path) as f:
            kind, blob = f.read().split()[:2]
        return "[127.0.0.1]:%d %s %s" % (self.port, kind, blob)

    def regenerate_host_keys(self):
        """Gives the host new keys, as a rebuilt (or impostor) host would have."""
        was_running = self.proc is not None
        self.kill()
        for p in (self.ed25519, self.ecdsa):
            for suffix in ("", ".pub"):
                os.unlink(p + suffix)
        keygen(self.ed25519, "ed25519")
        keygen(self.ecdsa, "ecdsa")
        if was_running:
            self.start()


class Cluster:
    """N sshd instances, a client key authorized on all, and a known_hosts."""

    def __init__(self, n, extra_config="", log_level="INFO"):
        self.base = tempfile.mkdtemp(prefix="rb-sshd-")
        os.chmod(self.base, 0o755)
        self.client_key = keygen(os.path.join(self.base, "id_ed25519"), "ed25519")
        self.authorized_keys = os.path.join(self.base, "authorized_keys")
        with open(self.client_key + ".pub") as f, open(self.authorized_keys, "w") as out:
            out.write(f.read())
        self.servers = [Server(self.base, "app-%d" % (i + 1), self.authorized_keys,
                               extra_config, log_level) for i in range(n)]
        self.known_hosts = os.path.join(self.base, "known_hosts")
        self.write_known_hosts()
        for s in self.servers:
            s.start()

    def write_known_hosts(self, servers=None, key="ed25519", hashed=False):
        servers = self.servers if servers is None else servers
        with open(self.known_hosts, "w") as f:
            for s in servers:
                f.write(s.host_line(key) + "\n")
        if hashed:
            subprocess.run(["ssh-keygen", "-H", "-f", self.known_hosts], check=True,
                           capture_output=True)
            os.unlink(self.known_hosts + ".old")
        return self.known_hosts

    def inventory(self, path=None, extra="", names=None):
        """An Ansible INI inventory: group [app] with every server."""
        path = path or os.path.join(self.base, "inventory.ini")
        lines = ["[app]"]
        for s in self.servers:
            lines.append("%s ansible_host=127.0.0.1 ansible_port=%d" % (s.name, s.port))
        lines += ["", "[all:vars]", "ansible_user=root",
                  "ansible_ssh_private_key_file=%s" % self.client_key, extra]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def config(self, extra=""):
        """A runbook.conf whose [ssh] section points at this cluster."""
        path = os.path.join(self.base, "runbook.conf")
        with open(path, "w") as f:
            f.write("[ssh]\ninventory = %s\nknown_hosts = %s\nidentity_file = %s\n"
                    "user = root\nuse_agent = false\nconnect_timeout = 5s\n%s" %
                    (self.inventory(), self.known_hosts, self.client_key, extra))
        return path

    def stop(self):
        for s in self.servers:
            s.stop()
        shutil.rmtree(self.base, ignore_errors=True)
