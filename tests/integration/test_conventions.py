"""The stdlib binding convention (docs/design.md, "Stdlib bindings") through
the real binary: one wording for an unknown or mistyped option in every C
module, allow_fail as the one opt-out (http's old check = false refused with
a hint), json.decode's two behaviours, and the Lua stdlib's shared helpers
(stdrb) reading durations with the C parser."""
import httpservers as hs


def out(res):
    return res.stdout + res.stderr


def failed_with(res, msg):
    assert res.code == 1, res
    assert msg in out(res), res


# -- unknown options: one wording, with a suggestion when one is close ------

def test_cmd_refuses_a_misspelt_option_with_a_suggestion(tmp_path):
    res = hs.run_book(tmp_path, """
        cmd.run({"true"}, { timout = "5s" })
    """, requires=("cmd",))
    failed_with(res, "cmd.run: unknown option 'timout' (did you mean 'timeout'?)")


def test_cmd_no_longer_ignores_a_misspelt_opt_out(tmp_path):
    # The fail-open this closes: alow_fail was ignored and the step went on
    # as if the command's failure had been allowed (or not).
    res = hs.run_book(tmp_path, """
        cmd.read({"false"}, { alow_fail = true })
    """, requires=("cmd",))
    failed_with(res, "cmd.read: unknown option 'alow_fail' (did you mean 'allow_fail'?)")


def test_cmd_words_a_wrong_type_one_way(tmp_path):
    res = hs.run_book(tmp_path, """
        cmd.read({"true"}, { cwd = 7 })
    """, requires=("cmd",))
    failed_with(res, "cmd.read: option 'cwd' must be a string, not a number")


def test_cmd_options_must_be_named(tmp_path):
    res = hs.run_book(tmp_path, """
        cmd.read({"true"}, { "timeout" })
    """, requires=("cmd",))
    failed_with(res, "cmd.read: options must be named (got a number key)")


def test_cmd_allow_fail_returns_the_failed_result(tmp_path):
    res = hs.run_book(tmp_path, """
        local r = cmd.read({"false"}, { allow_fail = true })
        error("got code " .. r.code, 0)
    """, requires=("cmd",))
    failed_with(res, "got code 1")


# ssh: refused before any inventory or host is looked at, so a dry-run of a
# write words it as a real run would, with no sshd and no [ssh] section.

def test_ssh_refuses_a_misspelt_option_in_a_dry_run(tmp_path):
    res = hs.run_book(tmp_path, """
        ssh.run("web", "true", { paralel = 2 })
    """, requires=("ssh",), args=("--dry-run",))
    failed_with(res, "ssh.run: unknown option 'paralel' (did you mean 'parallel'?)")


def test_ssh_words_a_wrong_type_one_way(tmp_path):
    res = hs.run_book(tmp_path, """
        ssh.run("web", "true", { parallel = "4" })
    """, requires=("ssh",), args=("--dry-run",))
    failed_with(res, "ssh.run: option 'parallel' must be an integer, not a string")


def test_http_refuses_a_misspelt_option_naming_the_function(tmp_path):
    res = hs.run_book(tmp_path, """
        http.get("http://127.0.0.1:9/x", { timout = "1s" })
    """)
    failed_with(res, "http.get: unknown option 'timout' (did you mean 'timeout'?)")


def test_http_refuses_check_with_the_allow_fail_hint(tmp_path):
    res = hs.run_book(tmp_path, """
        http.request { method = "GET", url = "http://127.0.0.1:9/x", check = false }
    """)
    failed_with(res, "http.request: unknown option 'check' (use allow_fail = true)")


def test_http_words_a_wrong_type_one_way(tmp_path):
    res = hs.run_book(tmp_path, """
        http.get("http://127.0.0.1:9/x", { retries = 1.5 })
    """)
    failed_with(res, "http.get: option 'retries' must be an integer, not a fractional number")


def test_http_allow_fail_returns_an_error_status(tmp_path):
    fake = hs.FakeServer()
    try:
        fake.expect("GET", "/gone", status=404, body=b"no such thing")
        res = hs.run_book(tmp_path, """
            local r = http.get("%s/gone", { allow_fail = true })
            error("got status " .. r.status, 0)
        """ % fake.url)
        failed_with(res, "got status 404")
    finally:
        fake.close()


def test_json_decode_refuses_a_misspelt_option(tmp_path):
    res = hs.run_book(tmp_path, """
        json.decode("{}", { allowfail = true })
    """, requires=("json",))
    failed_with(res, "json.decode: unknown option 'allowfail' (did you mean 'allow_fail'?)")


# -- json.decode: raises on bad text, or returns nil, message when allowed ---

def test_json_decode_raises_on_bad_text(tmp_path):
    res = hs.run_book(tmp_path, """
        json.decode("{nope")
    """, requires=("json",))
    failed_with(res, "json.decode: invalid JSON at line 1")


def test_json_decode_allow_fail_returns_nil_and_why(tmp_path):
    res = hs.run_book(tmp_path, """
        local v, msg = json.decode("{nope", { allow_fail = true })
        local ok = json.decode('{"a": 1}', { allow_fail = true })
        error(string.format("got %s / %s / %d", tostring(v), msg, ok.a), 0)
    """, requires=("json",))
    failed_with(res, "got nil / invalid JSON at line 1")
    assert "/ 1" in out(res), res


# -- the Lua stdlib's helpers ------------------------------------------------

def test_durations_read_the_same_in_c_and_lua(tmp_path):
    res = hs.run_book(tmp_path, """
        local rb = require "stdrb"
        local got = {}
        for _, d in ipairs { "90s", "500ms", "1.5h", "1d", "45", "2m" } do
          got[#got + 1] = string.format("%s=%s/%s", d, config.duration(d), rb.seconds(d, "t", "d"))
        end
        got[#got + 1] = "n=" .. rb.seconds(12, "t", "d")
        error("got " .. table.concat(got, " "), 0)
    """, requires=("config",))
    want = "got 90s=90000/90.0 500ms=500/0.5 1.5h=5400000/5400.0 1d=86400000/86400.0 " \
           "45=45000/45.0 2m=120000/120.0 n=12"
    failed_with(res, want)


def test_a_bad_duration_is_refused_in_c_and_lua(tmp_path):
    res = hs.run_book(tmp_path, """
        local rb = require "stdrb"
        local ok, c = pcall(config.duration, "5 fortnights")
        local ok2, l = pcall(rb.seconds, "5 fortnights", "prom", "step")
        error(string.format("got %s %s | %s %s", ok, c, ok2, l), 0)
    """, requires=("config",))
    failed_with(res, "got false config.duration: bad duration '5 fortnights'")
    assert "| false prom: bad step \"5 fortnights\" (want e.g. 15s, 5m, 2h)" in out(res), res


def test_section_picking_names_what_there_is(tmp_path):
    conf = "[flags.one]\nurl = \"http://127.0.0.1:9\"\n[flags.two]\nurl = \"http://127.0.0.1:9\"\n"
    res = hs.run_book(tmp_path, """
        local rb = require "stdrb"
        local a = rb.section("flags", "two")
        local b = rb.section("flags", "flags.one")
        local ok, several = pcall(rb.section, "flags", nil, { option = "provider", noun = "providers" })
        local ok2, missing = pcall(rb.section, "flags", "three")
        local c = rb.section("flags", nil, { default = "two" })
        error(string.format("got %s %s %s | %s | %s", a, b, c, several, missing), 0)
    """, config=conf)
    failed_with(res, "got flags.two flags.one flags.two | flags: several providers configured "
                     "(flags.one, flags.two): say which with { provider = ... } | "
                     "flags: no [flags.three] section in the config (have: flags.one, flags.two)")
