"""The binding convention's memory rule through the real binary: a stdlib
call that raises under the sandbox's memory budget while it holds C memory
(cmd's output buffers, http's decoded JSON) frees it. Under the ASan build
(RB_SANITIZE) a leak would end the run with LeakSanitizer's exit code 86."""
import httpservers as hs

BUDGET = "[sandbox]\nmemory_mb = 4\n"


def failed_on_memory(res):
    assert res.code == 1, res  # the run failed; 86 would be a leak report
    assert "LeakSanitizer" not in res.stderr, res
    assert "memory budget exceeded" in res.stdout + res.stderr, res


def test_cmd_output_larger_than_the_budget_raises_without_leaking(tmp_path):
    res = hs.run_book(tmp_path, """
        local r = cmd.read({"head", "-c", "6000000", "/dev/zero"})
        return r.code
    """, config=BUDGET + "[cmd]\noutput_kb = 8192\n", requires=("cmd",))
    failed_on_memory(res)


def test_http_json_larger_than_the_budget_raises_without_leaking(tmp_path):
    fake = hs.FakeServer()
    try:
        fake.expect("GET", "/big", json_body=list(range(400000)))
        res = hs.run_book(tmp_path, """
            local r = http.get("%s/big")
            return #r.json
        """ % fake.url, config=BUDGET)
        failed_on_memory(res)
    finally:
        fake.close()
