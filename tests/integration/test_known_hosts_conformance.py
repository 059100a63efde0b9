"""known_hosts as OpenSSH reads it: for each form of entry, `ssh -o
StrictHostKeyChecking=yes` against a real loopback sshd decides whether the
host is trusted, and `runbook ssh` must decide the same."""
import os
import subprocess

import pytest

import rbtest
import sshd


@pytest.fixture(scope="module")
def cluster():
    c = sshd.Cluster(1)
    yield c
    c.stop()


def key_of(pub):
    with open(pub) as f:
        return " ".join(f.read().split()[:2])


def openssh_trusts(cluster, server):
    r = subprocess.run(
        ["ssh", "-i", cluster.client_key, "-o", "UserKnownHostsFile=" + cluster.known_hosts,
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
         "-o", "BatchMode=yes", "-o", "HostKeyAlgorithms=ssh-ed25519",
         "-p", str(server.port), "root@127.0.0.1", "true"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return r.returncode == 0


def runbook_trusts(cluster, server):
    r = rbtest.run(["--config", cluster.config(), "ssh", "app-1", "--", "true"], timeout=60)
    return r.code == 0, r


def forms(server, right, wrong):
    port = server.port
    return {
        "bracketed": "[127.0.0.1]:%d %s" % (port, right),
        "bare address": "127.0.0.1 %s" % right,
        "wildcard": "127.0.0.* %s" % right,
        "star": "* %s" % right,
        "negated port, star": "*,![127.0.0.1]:%d %s" % (port, right),
        "negated address": "*,!127.0.0.1 %s" % right,
        "bracketed wrong, bare right": "[127.0.0.1]:%d %s\n127.0.0.1 %s" % (port, wrong, right),
        "bare right, bracketed wrong": "127.0.0.1 %s\n[127.0.0.1]:%d %s" % (right, port, wrong),
        "bare wrong": "127.0.0.1 %s" % wrong,
        "other port only": "[127.0.0.1]:%d %s" % (port + 1, right),
    }


FORMS = ["bracketed", "bare address", "wildcard", "star", "negated port, star",
         "negated address", "bracketed wrong, bare right", "bare right, bracketed wrong",
         "bare wrong", "other port only"]
# ssh-keygen -H hashes plain names only; patterns stay as written
HASHABLE = ["bracketed", "bare address", "bracketed wrong, bare right",
            "bare right, bracketed wrong", "bare wrong", "other port only"]
CASES = [(f, False) for f in FORMS] + [(f, True) for f in HASHABLE]


@pytest.mark.parametrize("form,hashed", CASES)
def test_runbook_decides_as_openssh(cluster, tmp_path, form, hashed):
    server = cluster.servers[0]
    right = key_of(server.ed25519 + ".pub")
    wrong = key_of(sshd.keygen(str(tmp_path / "impostor"), "ed25519") + ".pub")
    text = forms(server, right, wrong)[form]
    with open(cluster.known_hosts, "w") as f:
        f.write(text + "\n")
    if hashed:
        subprocess.run(["ssh-keygen", "-H", "-f", cluster.known_hosts], check=True,
                       capture_output=True)
        os.unlink(cluster.known_hosts + ".old")
    expected = openssh_trusts(cluster, server)
    got, r = runbook_trusts(cluster, server)
    assert got == expected, "%s: ssh says %s, runbook says %s\n%r" % (form, expected, got, r)
    if not got:
        assert "host key" in (r.stdout + r.stderr).lower()
