"""Ansible inventories as Ansible reads them: each fixture under
tests/fixtures/ansible/ is listed by `ansible-inventory -i FILE --list` and by
runbook (build/tests/inventory_list, the same JSON shape), and the groups,
their members and every host's merged variables must agree. Files Ansible
refuses, runbook refuses too, with a message saying what is unsupported."""
import json
import os
import subprocess

import pytest

import rbtest

ANSIBLE_DIR = os.path.join(rbtest.FIXTURES, "ansible")
LISTER = os.path.join(rbtest.BUILD_DIR, "tests", "inventory_list")
FIXTURES = sorted(f for f in os.listdir(ANSIBLE_DIR)
                  if f.endswith((".ini", ".yml")) and "int_hostname" not in f)


def ansible_list(path):
    r = subprocess.run(["ansible-inventory", "-i", path, "--list"], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    return r.returncode, r.stdout, r.stderr


def runbook_list(path):
    r = subprocess.run([LISTER, path], capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def as_text(v):
    """runbook keeps variables as text: Ansible's typed scalars compared as
    Python prints them (True, 8080), None as empty."""
    if v is None:
        return ""
    assert isinstance(v, (str, int, float, bool)), v
    return str(v)


@pytest.mark.parametrize("name", FIXTURES)
def test_groups_members_and_hostvars_match_ansible(name):
    path = os.path.join(ANSIBLE_DIR, name)
    code, out, err = ansible_list(path)
    assert code == 0 and "Unable to parse" not in err, err
    want = json.loads(out)
    code, out, err = runbook_list(path)
    assert code == 0, err
    got = json.loads(out)
    want_hv = want.pop("_meta")["hostvars"]
    got_hv = got.pop("_meta")["hostvars"]
    assert sorted(got_hv) == sorted(set(want_hv) | set(got_hv))
    for host in got_hv:
        assert got_hv[host] == {k: as_text(v) for k, v in want_hv.get(host, {}).items()}, host
    # Ansible leaves out groups with neither hosts nor children
    got = {g: v for g, v in got.items() if v}
    assert got == want


def test_yaml_integer_host_name_is_refused_as_ansible_does():
    path = os.path.join(ANSIBLE_DIR, "targets_inventory_yaml_int_hostname.yml")
    code, out, err = ansible_list(path)
    assert "must be a string" in err
    code, out, err = runbook_list(path)
    assert code == 1
    assert "host pattern must be a string (quote it): 1234" in err


def refused(tmp_path, name, text, mode=0o644):
    p = tmp_path / name
    p.write_text(text)
    p.chmod(mode)
    code, out, err = runbook_list(str(p))
    assert code == 1, out
    return err.strip()


def test_vault_script_toml_and_plugin_inventories_are_refused_by_name(tmp_path):
    vault = "$ANSIBLE_VAULT;1.1;AES256\n62313365396662343061393464336163\n"
    err = refused(tmp_path, "hosts", vault)
    assert err.endswith("vault-encrypted inventories are not supported: "
                        "decrypt with ansible-vault view")
    # Ansible cannot read it without the vault secret either
    code, _, aerr = ansible_list(str(tmp_path / "hosts"))
    assert "vault" in aerr.lower()
    script = "#!/bin/sh\necho '{}'\n"
    assert "unsupported inventory format: script" in refused(tmp_path, "inv.sh", script,
                                                             0o755)
    assert "unsupported inventory format: script" in refused(tmp_path, "inv2", script)
    toml = "[all.vars]\nhas_java = false\n[web]\nhosts = { host1 = {} }\n"
    assert "unsupported inventory format: TOML" in refused(tmp_path, "inv.toml", toml)
    assert "unsupported inventory format: TOML" in refused(tmp_path, "inv3", toml)
    plugin = "plugin: constructed\nstrict: true\n"
    assert "unsupported inventory format: inventory plugin" in refused(
        tmp_path, "inv.yml", plugin)


def test_semicolon_after_a_section_header_is_refused_as_ansible_does(tmp_path):
    p = tmp_path / "semi.ini"
    p.write_text("[web] ; front ends\nw1\n")
    code, out, err = ansible_list(str(p))
    assert "Unable to parse" in err
    assert refused(tmp_path, "semi2.ini", "[web] ; front ends\nw1\n").endswith(
        "semi2.ini:1: unexpected text '; front ends' after section header "
        "(only a # comment may follow)")


def test_yaml_mistakes_name_file_and_line(tmp_path):
    err = refused(tmp_path, "a.yml", "all:\n  children:\n    web:\n      host:\n        w1:\n")
    assert err == (str(tmp_path / "a.yml") +
                   ":4: unexpected key 'host' in group web (want hosts, vars or children)")
    err = refused(tmp_path, "b.yml", "all:\n  hosts: [w1, w2]\n")
    assert ":2: 'hosts' of group all must be a mapping" in err
    err = refused(tmp_path, "c.yml", "all:\n  hosts:\n    w1: {a: 1\n")
    assert "c.yml:" in err and "YAML:" in err


def groups_of(path):
    code, out, err = runbook_list(path)
    assert code == 0, err
    names = [g for g, v in json.loads(out).items() if g != "_meta" and v]
    return names + ["all"] + ([",".join(reversed(names[:3]))] if len(names) > 1 else [])


@pytest.mark.parametrize("name", FIXTURES)
def test_hosts_come_in_the_order_ansible_walks_them(name):
    """`ansible PATTERN --list-hosts` is the order `serial` batches from."""
    path = os.path.join(ANSIBLE_DIR, name)
    for target in groups_of(path):
        r = subprocess.run(["ansible", target, "-i", path, "--list-hosts"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        want = [line.strip() for line in r.stdout.splitlines()[1:] if line.strip()]
        rr = subprocess.run([LISTER, path, target], capture_output=True, text=True,
                            timeout=60)
        if not want:  # Ansible warns and runs nothing; runbook refuses the target
            assert rr.returncode == 1 and "names no hosts" in rr.stderr, target
            continue
        assert rr.returncode == 0, rr.stderr
        assert rr.stdout.split() == want, target
