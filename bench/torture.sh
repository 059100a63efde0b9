#!/usr/bin/env bash
# bench/torture.sh: exactly-once under kill -9. A five-action runbook whose
# actions POST to a local counting HTTP server and append through cmd.run is
# killed (the whole process group, or only the executor child) at random
# points, then resumed as an operator would: when resume says an action is in
# doubt, look at the server's count for it, then --in-doubt rerun or skip.
# The server's counts decide: every action exactly once.
# Usage: bench/torture.sh [ITERATIONS] [BUILD_DIR]   (default 200, build)
# Exits 1 when any action ran twice or never.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-200}
bin=$(realpath "${2:-build}/runbook")
[ -x "$bin" ] || { echo "build first: cmake -S . -B build && cmake --build build" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/rb-torture-XXXXXX")
trap 'rm -rf "$work"' EXIT
exec /usr/bin/python3 - "$bin" "$work" "$iterations" <<'PY'
import http.server, json, os, random, re, signal, subprocess, sys, threading, time

BIN, WORK, N = sys.argv[1], sys.argv[2], int(sys.argv[3])
ACTIONS = ["a1", "a2", "a3", "a4", "a5"]
counts, lock = {}, threading.Lock()

active, last = [0], [time.time()]  # connections being served, last activity

class Counter(http.server.BaseHTTPRequestHandler):
    def handle(self):
        with lock:
            active[0] += 1
            last[0] = time.time()
        try:
            super().handle()
        finally:
            with lock:
                active[0] -= 1
                last[0] = time.time()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = self.path.strip("/")
        with lock:
            counts[key] = counts.get(key, 0) + 1
        try:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass  # the client was killed: the count stands, it was received
    def log_message(self, *a):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counter)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = "http://127.0.0.1:%d" % srv.server_address[1]

steps = []
for i, a in enumerate(ACTIONS):
    nxt = ACTIONS[i + 1] if i + 1 < len(ACTIONS) else "done"
    steps.append('''    %s = action { title = "Action %s", run = function(ctx)
      http.post(ctx.url .. "/" .. ctx.tag .. "/%s", { body = "%s of " .. ctx.tag })
      cmd.run({"sh", "-c", "echo %s >> " .. ctx.log})
      cmd.read({"sleep", "0.05"})
    end, next = "%s" },''' % (a, a, a, a, a, nxt))
book = os.path.join(WORK, "torture.lua")
with open(book, "w") as f:
    f.write('local http = require "http"\nlocal cmd = require "cmd"\n'
            'return runbook {\n  name = "torture", title = "Torture", start = "a1",\n'
            '  params = { url = { required = true }, tag = { required = true },\n'
            '             log = { required = true } },\n  steps = {\n'
            + "\n".join(steps) + '\n    done = resolved { title = "Done" },\n  },\n}\n')

state = os.path.join(WORK, "state")
env = dict(os.environ, NO_COLOR="1")
stats = dict(kills_group=0, kills_child=0, before_start=0, resumes=0, refused_busy=0,
             in_doubt=0, rerun=0, skip=0, nothing_sent=0, before_step1=0, unfinished=0)

def kill_at_random(p):
    # Some kills come early (start-up, before the first step), the rest anywhere.
    time.sleep(random.uniform(0.0, 0.08) if random.random() < 0.4 else random.uniform(0.0, 0.7))
    if p.poll() is not None:
        return
    if random.random() < 0.5:
        try:
            os.killpg(p.pid, signal.SIGKILL)
            stats["kills_group"] += 1
        except ProcessLookupError:
            pass
    else:
        kids = subprocess.run(["pgrep", "-P", str(p.pid), "-x", "runbook"],
                              capture_output=True, text=True).stdout.split()
        if not kids:
            return
        try:
            os.kill(int(kids[0]), signal.SIGKILL)
            stats["kills_child"] += 1
        except ProcessLookupError:
            pass

def start(args):
    return subprocess.Popen([BIN, "--state-dir", state] + args, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)

def run_id(inc):
    tl = os.path.join(state, "incidents", inc + ".jsonl")
    if not os.path.exists(tl):
        return None
    with open(tl) as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                return None
            if "run" in ev:  # the chain's header line belongs to no run
                return ev["run"]
    return None

def resume_until_done(inc, tag, rid):
    decision = None
    for attempt in range(12):
        args = ["resume", rid] + (["--in-doubt", decision] if decision else [])
        decision = None
        p = start(args)
        stats["resumes"] += 1
        if random.random() < 0.25 and attempt < 3:
            kill_at_random(p)
        _, err = p.communicate()
        if "nothing was sent" in err:
            stats["nothing_sent"] += 1
        if p.returncode == 0:
            return True
        if p.returncode == 8:
            stats["refused_busy"] += 1
            time.sleep(0.1)
            continue
        m = re.search(r"step '(a\d)' \(an action\) started and never finished", err)
        if p.returncode == 2 and m:
            # The operator checks the system the action touches.
            stats["in_doubt"] += 1
            # A request the killed run had already written may still be in
            # the server's queue: like an operator, look once the system has
            # settled (nothing being served for 300 ms).
            settle_deadline = time.time() + 10
            while time.time() < settle_deadline:
                with lock:
                    if active[0] == 0 and time.time() - last[0] > 0.3:
                        break
                time.sleep(0.05)
            with lock:
                seen = counts.get(tag + "/" + m.group(1), 0)
            decision = "skip" if seen else "rerun"
            stats[decision] += 1
        elif "already ended" in err:
            return True
    return False

for i in range(N):
    inc, tag = "t%d" % i, "i%d" % i
    log = os.path.join(WORK, tag + ".log")
    rid = None
    while rid is None:
        p = start(["exec", book, "--incident", inc, "--var", "url=" + url,
                   "--var", "tag=" + tag, "--var", "log=" + log])
        kill_at_random(p)
        p.communicate()
        rid = run_id(inc)
        if rid is None:
            stats["before_start"] += 1  # killed before its started event: exec again
    tl = open(os.path.join(state, "incidents", inc + ".jsonl")).read()
    if '"kind":"action"' not in tl:
        stats["before_step1"] += 1  # killed between started and its first step
    if '"kind":"run","event":"finished"' not in tl.replace(" ", ""):
        if not resume_until_done(inc, tag, rid):
            stats["unfinished"] += 1

once = twice = never = 0
log_once = log_dup = log_missing = 0
for i in range(N):
    tag = "i%d" % i
    try:
        lines = open(os.path.join(WORK, tag + ".log")).read().split()
    except FileNotFoundError:
        lines = []
    for a in ACTIONS:
        c = counts.get(tag + "/" + a, 0)
        once += c == 1
        twice += c > 1
        never += c == 0
        n = lines.count(a)
        log_once += n == 1
        log_dup += n > 1
        log_missing += n == 0
total = N * len(ACTIONS)
print("torture: %d iterations, %d actions" % (N, total))
print("  kills: %d of the whole group, %d of the executor child; %d before the run's "
      "started event, %d between it and the first step"
      % (stats["kills_group"], stats["kills_child"], stats["before_start"],
         stats["before_step1"]))
print("  resumes: %d (%d refused while the old owner was finishing); in doubt: %d "
      "(rerun %d, skip %d); nothing was sent: %d; unfinished runs: %d"
      % (stats["resumes"], stats["refused_busy"], stats["in_doubt"], stats["rerun"],
         stats["skip"], stats["nothing_sent"], stats["unfinished"]))
print("  server counts: exactly once %d, more than once %d, never %d"
      % (once, twice, never))
print("  cmd.run appends: exactly once %d, more than once %d, missing %d "
      "(missing = an in-doubt action skipped after its POST, before its append)"
      % (log_once, log_dup, log_missing))
srv.shutdown()
sys.exit(0 if once == total and stats["unfinished"] == 0 else 1)
PY
