"""rbtest: shared helpers for the integration tests that drive the real
runbook binary. Each test gets its own state dir; nothing here fakes the
executor."""
import json
import os
import subprocess
import tempfile

SOURCE_DIR = os.environ.get(
    "RB_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("RB_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
RUNBOOK_BIN = os.environ.get("RUNBOOK_BIN", os.path.join(BUILD_DIR, "runbook"))
FIXTURES = os.path.join(SOURCE_DIR, "tests", "fixtures")


class Result:
    def __init__(self, proc, state_dir):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.state_dir = state_dir

    def timeline(self, incident=None):
        """Events of the incident's timeline (the only one when not named),
        without the hash chain's header line (docs/timeline.md)."""
        d = self.state_dir
        if incident is None:
            files = [f for f in os.listdir(os.path.join(d, "incidents")) if f.endswith(".jsonl")]
            assert len(files) == 1, files
            incident = files[0][:-len(".jsonl")]
        path = os.path.join(d, "incidents", incident + ".jsonl")
        with open(path) as f:
            events = [json.loads(line) for line in f if line.strip()]
        return [e for e in events if e.get("event") != "timeline_header"]

    def __repr__(self):
        return "exit %d\n--stdout--\n%s\n--stderr--\n%s" % (self.code, self.stdout, self.stderr)


def run(args, state_dir=None, env=None, cwd=None, timeout=120, stdin=None):
    """Runs the binary with --state-dir and returns a Result."""
    if state_dir is None:
        state_dir = tempfile.mkdtemp(prefix="rb-state-")
    full_env = dict(os.environ)
    full_env.pop("XDG_CONFIG_HOME", None)
    full_env["NO_COLOR"] = "1"
    if env:
        full_env.update(env)
    cmd = [RUNBOOK_BIN, "--state-dir", state_dir] + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env,
                          cwd=cwd or SOURCE_DIR, timeout=timeout, input=stdin)
    return Result(proc, state_dir)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path
