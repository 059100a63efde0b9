#!/usr/bin/env bash
# ssh_fanout.sh: `true` on 50 inventory hosts (aliases of one loopback sshd),
# runbook vs parallel-ssh vs ansible, same key, same known_hosts, same sshd;
# prints median wall times and ratios, then checks that ten commands to one
# host cost one handshake. Usage: bench/ssh_fanout.sh [RUNS] (default 7).
# RUNBOOK_BIN overrides the binary (default build/runbook); the commands run
# as BENCH_USER (default rbbench, created with /bin/sh). Needs root (sshd),
# openssh-server, pssh and ansible (apt-get install -y pssh ansible).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export RB_SOURCE_DIR=$here
export RUNBOOK_BIN=${RUNBOOK_BIN:-$here/build/runbook}
export RUNS=${1:-7}
for tool in parallel-ssh ansible sshd; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
    echo "ssh_fanout: $tool not found (apt-get install -y pssh ansible openssh-server)" >&2
    exit 2
  }
done
exec /usr/bin/env python3 - <<'PY'
import os, statistics, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.environ["RB_SOURCE_DIR"], "tests", "integration"))
import sshd

N, RUNS, RB = 50, int(os.environ["RUNS"]), os.environ["RUNBOOK_BIN"]
# A plain account with /bin/sh, so the figures measure the tools and not the
# login shell's start-up files (root's .bashrc on a developer machine can
# cost 100 ms a command). The test sshd's AuthorizedKeysFile is not per user.
USER = os.environ.get("BENCH_USER", "rbbench")
if subprocess.run(["id", USER], capture_output=True).returncode != 0:
    # "*" rather than a locked "!": sshd without PAM refuses locked accounts.
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", "-p", "*", USER], check=True)
cluster = sshd.Cluster(1)
srv = cluster.servers[0]
try:
    base, port = cluster.base, srv.port
    inv = os.path.join(base, "bench.ini")
    with open(inv, "w") as f:
        f.write("[app]\n")
        for i in range(1, N + 1):
            f.write("app%02d ansible_host=127.0.0.1 ansible_port=%d\n" % (i, port))
        f.write("[all:vars]\nansible_user=" + USER + "\nansible_ssh_private_key_file=%s\n"
                "ansible_ssh_common_args='-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes'\n"
                "ansible_python_interpreter=/usr/bin/python3\n" % (cluster.client_key, cluster.known_hosts))
    conf = os.path.join(base, "runbook.conf")
    with open(conf, "w") as f:
        f.write("[ssh]\ninventory = %s\nknown_hosts = %s\nidentity_file = %s\nuse_agent = false\n"
                "user = %s\n" % (inv, cluster.known_hosts, cluster.client_key, USER))
    hosts = os.path.join(base, "pssh.hosts")
    with open(hosts, "w") as f:
        f.write(("%s@127.0.0.1:%d\n" % (USER, port)) * N)
    state = tempfile.mkdtemp(prefix="rb-bench-")
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_NOCOLOR="1")
    env.pop("SSH_AUTH_SOCK", None)
    tools = {
        "runbook": [RB, "--state-dir", state, "--config", conf, "ssh", "all", "--parallel",
                    str(N), "--", "true"],
        "pssh": ["parallel-ssh", "-h", hosts, "-p", str(N), "-t", "60",
                 "-x", "-i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes"
                 % (cluster.client_key, cluster.known_hosts), "true"],
        "ansible": ["ansible", "all", "-i", inv, "-m", "command", "-a", "true", "-f", str(N)],
    }
    times = {k: [] for k in tools}
    for r in range(RUNS):
        for name, argv in tools.items():  # interleaved so drift hits all alike
            t0 = time.monotonic()
            p = subprocess.run(argv, capture_output=True, text=True, env=env)
            dt = time.monotonic() - t0
            if p.returncode != 0:
                sys.exit("%s failed (exit %d):\n%s\n%s" % (name, p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
            times[name].append(dt)
    med = {k: statistics.median(v) for k, v in times.items()}
    print("ssh fan-out: `true` on %d hosts (aliases of one sshd), median of %d runs" % (N, RUNS))
    for k in tools:
        print("  %-8s %7.3f s   (runs: %s)" % (k, med[k], " ".join("%.2f" % t for t in times[k])))
    print("  runbook/pssh    = %.2fx (goal <= 0.8x)" % (med["runbook"] / med["pssh"]))
    print("  runbook/ansible = %.3fx (goal <= 0.1x)" % (med["runbook"] / med["ansible"]))

    rb = os.path.join(base, "ten.lua")
    with open(rb, "w") as f:
        f.write('local ssh = require "ssh"\nreturn runbook { name = "ten", title = "Ten reads",\n'
                ' start = "look", steps = {\n'
                '  look = check { title = "ten commands", run = function(ctx)\n'
                '    for i = 1, 10 do assert(ssh.read("app01", "true").ok) end return true end,\n'
                '    on = { [true] = "done", [false] = "done" } },\n'
                '  done = resolved { title = "Done" } } }\n')
    before = srv.accepted()
    p = subprocess.run([RB, "--state-dir", state, "--config", conf, "exec", rb], capture_output=True, text=True, env=env)
    logins = srv.accepted() - before
    print("ten commands to one host: exit %d, %d SSH login(s) on the server (want 1)"
          % (p.returncode, logins))
    if p.returncode != 0 or logins != 1:
        print(p.stdout[-1500:], p.stderr[-1500:])
        sys.exit(1)
finally:
    cluster.stop()
PY
