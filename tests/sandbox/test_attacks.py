"""Sandbox attack battery: each runbook in tests/sandbox/attacks/ tries one
technique to escape, hang, exhaust or crash the executor. Every case checks the
exact refusal or budget message (with file:line where Lua knows it), the exit
code, the timeline record, that the executor process never died from a signal
or tripped a sanitizer, and that a normal runbook run right after in the same
state dir is unaffected."""
import glob
import json
import os
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import rbtest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ATTACKS = os.path.join(HERE, "attacks")
NORMAL = os.path.join(HERE, "normal.lua")

# Small budgets so the battery is fast; "deadline" lifts the instruction
# budget so the step timeout is what stops the runbook.
CONFIGS = {
    "budget": "[sandbox]\nmemory_mb = 16\ninstructions = 50000000\n",
    "deadline": "[sandbox]\ninstructions = 100000000000\n",
    "default": "",
}

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 3
REMOVED = "is not available in runbooks (removed by the sandbox)"
INSTR = "instruction budget exceeded (50000000 instructions)"
MEMORY = "memory budget exceeded (16 MiB): the runbook allocated too much"
WATCHDOG = ("did not stop at its deadline (stuck inside one call); the watchdog "
            "killed the executor 1000 ms after it")
GC_REFUSED = ("__gc finalizers are not allowed in runbooks (Lua runs them where the "
              "sandbox cannot stop them); use a <close> variable")


def case(name, kind, msg, line=None, config="budget", code=None, **extra):
    """kind: step (the step fails), load (the file is refused before any step
    runs), watchdog (the supervisor kills the run), resolved (the attack is
    harmless and the run resolves; `check` inspects the timeline)."""
    if code is None:
        code = {"step": EXIT_FAILED, "load": EXIT_INVALID, "watchdog": EXIT_FAILED,
                "resolved": EXIT_OK}[kind]
    return pytest.param(dict(name=name, kind=kind, msg=msg, line=line, config=config,
                             code=code, **extra), id=name)


def _result_of(events, step):
    return [e for e in events if e["step"] == step and e["event"] == "finished"][0]["detail"]


CASES = [
    # binary chunks and string.dump
    case("binary_chunk_file", "load", "binary (precompiled) chunks are not allowed", 1),
    case("binary_load_dump", "step", "string.dump " + REMOVED, 9),
    case("binary_method_dump", "step", "string.dump " + REMOVED, 8),
    case("binary_load_string", "step", "attempt to load a binary chunk (mode is 't')"),
    case("binary_load_reader", "step", "attempt to load a binary chunk (mode is 't')"),
    # load with a smuggled environment
    case("load_smuggled_env", "step", "smuggle:1: io " + REMOVED),
    case("load_env_upvalue", "step", "attempt to index a nil value (field 'os')", 10),
    # the string metatable
    case("string_metatable_get", "step", "attempt to index a boolean value (local 'mt')", 9),
    case("string_metatable_set", "step",
         "bad argument #1 to 'setmetatable' (table expected, got string)", 8),
    case("string_lib_poison", "resolved", None,
         check=lambda ev: _result_of(ev, "a")["result"] == "abab"),
    # removed libraries and functions
    case("removed_io", "step", "io " + REMOVED, 8),
    case("removed_os_execute", "step", "os.execute " + REMOVED, 8),
    case("removed_os_getenv", "step", "os.getenv " + REMOVED, 8),
    case("removed_os_exit", "step", "os.exit " + REMOVED, 8),
    case("removed_os_remove", "step", "os.remove " + REMOVED, 8),
    case("removed_package", "step", "package " + REMOVED, 8),
    case("removed_debug", "step", "debug " + REMOVED, 8),
    case("removed_loadfile", "step", "loadfile " + REMOVED, 8),
    case("removed_dofile", "step", "dofile " + REMOVED, 8),
    case("require_c_module", "step",
         "module 'socket.core' not found: runbooks can require only cmd, config, http, json",
         8),
    case("require_io", "step", "module 'io' not found: runbooks can require only", 8),
    case("gc_stop", "step",
         "collectgarbage('stop') is not allowed in runbooks (only 'count')", 8),
    case("gc_generational", "step",
         "collectgarbage('generational') is not allowed in runbooks (only 'count')", 8),
    # infinite loops
    case("loop_plain", "step", INSTR, 8),
    case("loop_pcall", "step", INSTR, 8),
    case("loop_coroutine", "step", INSTR, 8),
    case("loop_xpcall_handler", "step", INSTR, 9),
    case("loop_deadline", "step", "step 'a' exceeded its timeout (1.00 s)", 9,
         config="deadline", max_s=1.0 + 2.5),
    case("load_time_loop", "load", INSTR, 2),
    # CPU inside one C call: the watchdog, within deadline + 1 s
    case("cbomb_pattern", "watchdog", "step 'a' " + WATCHDOG, config="deadline",
         max_s=1.0 + 2.5),
    case("cbomb_rep_empty", "watchdog", "step 'a' " + WATCHDOG, config="deadline",
         max_s=1.0 + 2.5),
    case("cbomb_table_move", "watchdog", "step 'a' " + WATCHDOG, config="deadline",
         max_s=1.0 + 2.5),
    # step ids that would break the child's one-line reports to the watchdog
    case("step_id_newline", "watchdog", "step 'a?E' " + WATCHDOG, config="deadline",
         max_s=1.0 + 2.5, step="a?E"),
    case("step_id_long", "watchdog", WATCHDOG, config="deadline", max_s=1.0 + 2.5,
         step="x*"),
    case("load_time_cbomb", "watchdog", "step '(load)' " + WATCHDOG, config="deadline",
         max_s=10.0 + 2.5, timeline=False),
    # memory bombs (the collector cannot be stopped: gc_stop above)
    case("mem_table", "step", MEMORY),
    case("mem_concat", "step", MEMORY),
    case("mem_rep", "step", MEMORY),
    case("mem_concat_table", "step", MEMORY),
    case("mem_pcall_swallow", "step", MEMORY),
    case("err_huge", "step", MEMORY),
    case("mem_caught_return", "step", MEMORY),
    # within budget to the last bytes: the host's reserve keeps it out of
    # the panic handler, and the run goes on
    case("mem_fill_exact", "resolved", None,
         check=lambda ev: _result_of(ev, "a")["result"] == "ran"),
    case("err_invalid_utf8", "step", "chunk?:1: bad ?? ??? bytes"),
    # Lua and C stack overflow
    case("stack_lua", "step", "stack overflow", 8, config="default"),
    case("stack_c_pcall", "step", "C stack overflow"),
    case("stack_c_gsub", "step", "C stack overflow"),
    case("stack_c_metamethod", "step", "C stack overflow", 9),
    case("stack_c_coroutine", "step", "C stack overflow", 8),
    case("index_chain_loop", "step", "'__index' chain too long; possible loop", 10),
    # __gc: refused, since Lua runs finalizers with hooks off
    case("gc_loop_in_step", "step", GC_REFUSED, 8),
    case("gc_error", "step", GC_REFUSED, 8),
    case("gc_resurrect", "step", GC_REFUSED, 11),
    case("gc_at_close", "load", GC_REFUSED, 4),
    # __close
    case("close_loop", "step", INSTR, 8),
    case("close_error", "step", "boom in __close"),
    case("close_error_chain", "step", "(error object is a table value)"),
    case("close_at_load", "load", INSTR, 2),
    case("coroutine_close_loop", "step", INSTR, 11),
    case("coroutine_close_later", "resolved", None, config="deadline",
         check=lambda ev: (
             "step 'a' exceeded its timeout" in [e for e in ev if e["step"] == "a"
                                                 and e["event"] == "failed"][0]["detail"]["error"]
             and _result_of(ev, "b")["result"] == [
                 False, "the coroutine was stopped by the sandbox; its <close> variables "
                 "are not run"])),
    # hostile error objects and return values
    case("err_tostring_loop", "step", "(error object is a table value)"),
    case("err_index_raise", "step", "(error object is a table value)"),
    case("err_table", "step", '(error object is a table: message = "table error")'),
    case("err_nil", "step", "(error object is a nil value)"),
    case("result_hostile", "resolved", None,
         check=lambda ev: _result_of(ev, "a")["result"] == [1, 2]),
    # deep and cyclic tables through the stdlib and as step results
    case("json_deep", "step", "json.encode: cannot convert to JSON: nested deeper than 64", 11),
    case("json_cycle", "step", "json.encode: cannot convert to JSON: table contains a cycle",
         11),
    case("json_bad_key", "step", "json.encode: cannot convert to JSON: a key is not valid UTF-8",
         9),
    case("json_decode_bomb", "step",
         "json.decode: the text needs more than the memory budget (64 MiB) to parse", 9,
         config="default"),
    case("json_decode_deep", "step", "JSON nested deeper than 64", 9),
    case("result_deep", "step",
         "the result is not JSON-serialisable: cannot convert to JSON: nested deeper than 64"),
    case("result_cycle", "step",
         "the result is not JSON-serialisable: cannot convert to JSON: table contains a cycle"),
    # a ctx the journal cannot hold fails the step by key (a resume needs it)
    case("ctx_cycle", "step",
         "ctx.loop: cannot convert to JSON: table contains a cycle (ctx must be journaled "
         "for a resume)"),
    # strict globals
    case("global_read", "step", "undeclared global 'undefined_thing' (a typo? declare it with local)", 8),
    case("global_write", "step", "assignment to undeclared global 'counter' (use local)", 8),
    case("global_unlock", "step", "cannot change a protected metatable", 8),
    case("load_time_global", "load", "undeclared global 'windwo_minutes'", 3),
    # the host's own reading of runbook values
    case("loader_many_steps", "load", "more than 20000 steps", 10, config="default"),
    case("loader_many_branches", "load", "step 'c': more than 256 branches", 7,
         config="default"),
    case("loader_hostile_tables", "resolved", None,
         check=lambda ev: _result_of(ev, "a")["result"] == 1),
    case("wait_hostile", "step", INSTR, 7, step="w"),
    case("check_hostile_value", "step",
         "check returned a table: return true/false, a string or an integer", step="c"),
    case("yield_from_step", "step", "attempt to yield from outside a coroutine"),
    # load time vs step
    case("load_deep_syntax", "load", "tests/sandbox/attacks/load_deep_syntax.lua: C stack overflow"),
    case("load_syntax_error", "load", "'}' expected (to close '{' at line 2) near 'steps'", 4),
    case("load_time_error", "load", "boom at load time", 4),
    case("step_error", "step", "boom in step", 8),
    case("os_date_format", "step",
         "bad argument #1 to 'date' (invalid conversion specifier '%Ez')", 8),
    # output flood
    case("print_flood", "resolved", None, log_max=(1 << 20) + 64 * 1024),
]


def _config(tmp, name):
    path = os.path.join(tmp, name + ".conf")
    with open(path, "w") as f:
        f.write(CONFIGS[name])
    return path


def _assert_host_survived(res):
    for needle in ("AddressSanitizer", "runtime error:", "LeakSanitizer",
                   "died from signal", "internal error", "unprotected Lua error"):
        assert needle not in res.stderr, res


def _where(c):
    rel = os.path.relpath(os.path.join(ATTACKS, c["name"] + ".lua"), rbtest.SOURCE_DIR)
    return "%s:%d: " % (rel, c["line"]) if c["line"] else ""


@pytest.mark.parametrize("c", CASES)
def test_attack_is_contained(c):
    state = tempfile.mkdtemp(prefix="rb-attack-")
    conf = _config(state, c["config"])
    rel = os.path.relpath(os.path.join(ATTACKS, c["name"] + ".lua"), rbtest.SOURCE_DIR)
    t0 = time.monotonic()
    res = rbtest.run(["--config", conf, "exec", rel, "--incident", "attack"],
                     state_dir=state, timeout=60)
    elapsed = time.monotonic() - t0
    assert res.code == c["code"], res
    _assert_host_survived(res)
    if "max_s" in c:
        assert elapsed < c["max_s"], "took %.1f s" % elapsed
    msg = (_where(c) + c["msg"]) if c["msg"] else None

    if c["kind"] == "load":
        assert msg in res.stderr, res
        # Nothing ran: no step of the runbook is on any timeline.
        assert not glob.glob(os.path.join(state, "incidents", "*.jsonl")), res
    elif c["kind"] == "step":
        assert msg in res.stderr, res
        ev = res.timeline("attack")
        failed = [e for e in ev if e["event"] == "failed" and e["step"] == c.get("step", "a")]
        assert failed and msg in failed[0]["detail"]["error"], ev
        run = [e for e in ev if e["step"] is None and e["event"] in ("failed", "finished")][-1]
        assert run["event"] == "failed" and run["detail"]["outcome"] == "failed", ev
        assert msg in run["detail"]["error"], ev
    elif c["kind"] == "watchdog":
        assert msg in res.stderr, res
        if c.get("timeline", True):
            ev = res.timeline("attack")
            want = c.get("step", "a")
            step = [e for e in ev if e["event"] == "failed" and e["step"] is not None
                    and (e["step"] == want or (want == "x*" and e["step"].startswith("xxx")))]
            assert step and step[0]["detail"].get("watchdog") is True, ev
            assert msg in step[0]["detail"]["error"], ev
            assert ev[-1]["event"] == "failed" and ev[-1]["step"] is None, ev
    else:
        ev = res.timeline("attack")
        assert ev[-1]["event"] == "finished" and ev[-1]["detail"]["outcome"] == "resolved", ev
        if "check" in c:
            assert c["check"](ev), ev
        if "log_max" in c:
            logs = glob.glob(os.path.join(state, "logs", "*.log"))
            assert len(logs) == 1
            size = os.path.getsize(logs[0])
            assert size < c["log_max"], size
            with open(logs[0]) as f:
                assert "[print output truncated: budget reached]" in f.read()

    # The host carries on: a normal runbook in the same state dir is unaffected.
    after = rbtest.run(["--config", conf, "exec", os.path.relpath(NORMAL, rbtest.SOURCE_DIR),
                        "--incident", "after"], state_dir=state, timeout=60)
    assert after.code == EXIT_OK, after
    _assert_host_survived(after)
    ev = after.timeline("after")
    result = _result_of(ev, "a")["result"]
    assert result == {"ok": True, "enc": "[1,2]", "rep": "abab", "n": 2}, ev
    assert ev[-1]["detail"]["outcome"] == "resolved"


def test_operator_interrupt_stops_a_loop_that_catches_everything():
    """Ctrl-C reaches the whole process group; the run's child turns it into
    a fatal kill that the runbook's pcall loop and on_error cannot ignore."""
    import signal
    import subprocess
    state = tempfile.mkdtemp(prefix="rb-attack-")
    conf = _config(state, "deadline")
    cmd = [rbtest.RUNBOOK_BIN, "--state-dir", state, "--config", conf, "exec",
           "tests/sandbox/attacks/interrupt_loop.lua", "--incident", "attack"]
    env = dict(os.environ, NO_COLOR="1")
    p = subprocess.Popen(cmd, cwd=rbtest.SOURCE_DIR, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    log_dir = os.path.join(state, "logs")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        logs = glob.glob(os.path.join(log_dir, "*.log"))
        if logs and "looping" in open(logs[0]).read():
            break
        time.sleep(0.05)
    time.sleep(0.3)
    t0 = time.monotonic()
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert time.monotonic() - t0 < 3
    assert p.returncode == EXIT_FAILED, (out, err)
    msg = "tests/sandbox/attacks/interrupt_loop.lua:10: interrupted by the operator"
    assert msg in err
    for needle in ("AddressSanitizer", "runtime error:", "died from signal"):
        assert needle not in err
    with open(os.path.join(state, "incidents", "attack.jsonl")) as f:
        ev = [json.loads(line) for line in f if line.strip()]
    ev = [e for e in ev if e.get("event") != "timeline_header"]
    step = [e for e in ev if e["step"] == "a" and e["event"] == "failed"]
    assert step and msg in step[0]["detail"]["error"], ev
    # on_error = "done" was not taken: an interrupt ends the run.
    assert not [e for e in ev if e["step"] == "done"], ev
    assert ev[-1]["event"] == "failed" and ev[-1]["step"] is None, ev


def test_every_attack_file_has_a_case():
    names = {os.path.basename(p)[:-4] for p in glob.glob(os.path.join(ATTACKS, "*.lua"))}
    covered = {p.values[0]["name"] for p in CASES} | {"interrupt_loop"}
    assert names == covered, names ^ covered
    assert len(names) >= 30


def test_output_budget_follows_config():
    state = tempfile.mkdtemp(prefix="rb-attack-")
    conf = os.path.join(state, "out.conf")
    with open(conf, "w") as f:
        f.write("[sandbox]\noutput_kb = 64\n")
    res = rbtest.run(["--config", conf, "exec", "tests/sandbox/attacks/print_flood.lua",
                      "--incident", "flood"], state_dir=state, timeout=60)
    assert res.code == EXIT_OK, res
    _assert_host_survived(res)
    logs = glob.glob(os.path.join(state, "logs", "*.log"))
    assert len(logs) == 1
    # 64 KiB of text plus the timestamp and step of each line.
    assert os.path.getsize(logs[0]) < 64 * 1024 + 8 * 1024, os.path.getsize(logs[0])
    with open(logs[0]) as f:
        assert "[print output truncated: budget reached]" in f.read()


@pytest.mark.parametrize("c", [p for p in CASES if p.values[0]["kind"] == "load"])
def test_check_refuses_load_time_attacks_the_same_way(c):
    """`runbook check` loads the file in the same sandbox: same message, exit 3."""
    state = tempfile.mkdtemp(prefix="rb-attack-")
    conf = _config(state, c["config"])
    rel = os.path.relpath(os.path.join(ATTACKS, c["name"] + ".lua"), rbtest.SOURCE_DIR)
    res = rbtest.run(["--config", conf, "check", rel], state_dir=state, timeout=60)
    assert res.code == EXIT_INVALID, res
    _assert_host_survived(res)
    assert _where(c) + c["msg"] in res.stdout + res.stderr, res
