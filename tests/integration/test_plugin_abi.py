"""The plugin loader checks each plugin's descriptor (stdlib/rb_host.h)
before using it: a plugin built against another host ABI, or one that names
another plugin, is refused with a message that says so, and none of its code
runs. The real binary is copied next to a bad runbook-serve.so, the layout
the loader searches first."""
import os
import re
import shutil
import tempfile

import rbtest

ABI = int(re.search(r"#define RB_HOST_ABI_VERSION (\d+)",
                    open(os.path.join(rbtest.SOURCE_DIR, "stdlib", "rb_host.h")).read()).group(1))


def run_with_plugin(kind):
    d = tempfile.mkdtemp(prefix="rb-plugin-")
    binary = os.path.join(d, "runbook")
    shutil.copy2(rbtest.RUNBOOK_BIN, binary)
    shutil.copy2(os.path.join(rbtest.BUILD_DIR, "tests", "bad" + kind, "runbook-serve.so"),
                 os.path.join(d, "runbook-serve.so"))
    old = rbtest.RUNBOOK_BIN
    rbtest.RUNBOOK_BIN = binary
    try:
        return rbtest.run(["serve", "--listen", "127.0.0.1:0"])
    finally:
        rbtest.RUNBOOK_BIN = old
        shutil.rmtree(d)


def test_plugin_built_for_another_abi_is_refused():
    r = run_with_plugin("abi")
    assert r.code == 1, r
    assert "runbook-serve.so was built for host ABI %d, but this runbook binary provides " \
           "ABI %d; install the plugins that came with this binary" % (ABI + 1000, ABI) \
           in r.stderr, r


def test_plugin_that_names_another_plugin_is_refused():
    r = run_with_plugin("name")
    assert r.code == 1, r
    assert "runbook-serve.so describes itself as plugin 'http', not 'serve'" in r.stderr, r
