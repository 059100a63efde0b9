"""known_hosts entries this build cannot verify, against a real loopback sshd:
`ssh -o StrictHostKeyChecking=yes` decides whether the entry trusts the host;
runbook never trusts more than ssh, and where it refuses what ssh accepts, it
says what is unsupported and prints the line that fixes it."""
import os
import subprocess

import pytest

import rbtest
import sshd


def key_of(pub):
    with open(pub) as f:
        return " ".join(f.read().split()[:2])


def openssh_trusts(cluster, server):
    """ssh's own verdict, letting it negotiate host key types as it likes."""
    r = subprocess.run(
        ["ssh", "-i", cluster.client_key, "-o", "UserKnownHostsFile=" + cluster.known_hosts,
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
         "-o", "BatchMode=yes", "-p", str(server.port), "root@127.0.0.1", "true"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return r.returncode == 0


def runbook(cluster):
    r = rbtest.run(["--config", cluster.config(), "ssh", "app-1", "--", "true"], timeout=60)
    return r.code == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def rsa_cluster(tmp_path_factory):
    rsa = sshd.keygen(str(tmp_path_factory.mktemp("rsa") / "host_rsa"), "rsa", ["-b", "2048"])
    c = sshd.Cluster(1, extra_config="HostKey %s\n" % rsa)
    c.rsa = rsa
    yield c
    c.stop()


def test_rsa_only_entry_names_the_unsupported_type_and_prints_the_fix(rsa_cluster):
    c = rsa_cluster
    server = c.servers[0]
    with open(c.known_hosts, "w") as f:
        f.write("[127.0.0.1]:%d %s\n" % (server.port, key_of(c.rsa + ".pub")))
    assert openssh_trusts(c, server)
    ok, out = runbook(c)
    print(out)
    assert not ok, out
    assert "known_hosts lists only an RSA key for [127.0.0.1]:%d" % server.port in out
    assert "cannot verify RSA host keys signed with SHA-2" in out
    assert "does not mean it changed" in out
    assert "may have changed" not in out and "man-in-the-middle" not in out
    # the printed line is the server's real ed25519 key, with its fingerprint
    assert server.host_line("ed25519") in out
    assert sshd.fingerprint(server.ed25519 + ".pub") in out
    # adding it is the fix, for ssh and runbook alike
    with open(c.known_hosts, "a") as f:
        f.write(server.host_line("ed25519") + "\n")
    assert openssh_trusts(c, server)
    ok, out = runbook(c)
    assert ok, out


@pytest.fixture(scope="module")
def ca_cluster(tmp_path_factory):
    c = sshd.Cluster(1)
    server = c.servers[0]
    ca = sshd.keygen(str(tmp_path_factory.mktemp("ca") / "host_ca"), "ed25519")
    subprocess.run(["ssh-keygen", "-q", "-s", ca, "-I", "app-1", "-h", "-n", "127.0.0.1",
                    server.ed25519 + ".pub"], check=True, capture_output=True)
    server.extra_config = "HostCertificate %s-cert.pub\n" % server.ed25519
    server.write_config()
    server.kill()
    server.start()
    c.ca = ca
    yield c
    c.stop()


@pytest.mark.parametrize("pattern", ["*", "127.0.0.1", "[127.0.0.1]:{port}"])
def test_cert_authority_is_refused_by_name_never_as_unknown(ca_cluster, pattern):
    c = ca_cluster
    server = c.servers[0]
    with open(c.known_hosts, "w") as f:
        f.write("@cert-authority %s %s\n" % (pattern.format(port=server.port),
                                             key_of(c.ca + ".pub")))
    assert openssh_trusts(c, server)  # the host's certificate is signed by that CA
    ok, out = runbook(c)
    print(out)
    assert not ok, out
    assert "host certificates (@cert-authority) are not supported" in out
    assert "unknown" not in out
    assert server.host_line("ed25519") in out
    assert sshd.fingerprint(server.ed25519 + ".pub") in out


def test_cert_authority_for_other_hosts_does_not_hide_a_plain_entry(ca_cluster):
    c = ca_cluster
    server = c.servers[0]
    with open(c.known_hosts, "w") as f:
        f.write("@cert-authority *.example.com %s\n%s\n" % (key_of(c.ca + ".pub"),
                                                         server.host_line("ed25519")))
    assert openssh_trusts(c, server)
    ok, out = runbook(c)
    assert ok, out
    with open(c.known_hosts, "w") as f:
        f.write("@cert-authority *.example.com %s\n" % key_of(c.ca + ".pub"))
    assert not openssh_trusts(c, server)
    ok, out = runbook(c)
    assert not ok and "host key is unknown" in out, out
