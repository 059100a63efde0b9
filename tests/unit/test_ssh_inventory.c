/* test_ssh_inventory.c: unit tests of the Ansible INI inventory subset, target
 * resolution, known_hosts matching and the helpers of stdlib/ssh/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stdlib/ssh/fanout.h"
#include "stdlib/ssh/inventory.h"
#include "stdlib/ssh/knownhosts.h"

static const char inv_text[] =
    "# production\n"
    "bastion ansible_host=10.0.0.1 ansible_port=2222\n"
    "\n"
    "[app]\n"
    "app-1 ansible_host=10.0.1.1\n"
    "app-2 ansible_host=10.0.1.2 ansible_user=deploy  # inline comment\n"
    "app-3:2200 ansible_host=10.0.1.3\n"
    "\n"
    "[db]\n"
    "db[01:03] ansible_ssh_private_key_file=\"/keys/db key\"\n"
    "\n"
    "[backend:children]\n"
    "app\n"
    "db\n"
    "\n"
    "[app:vars]\n"
    "ansible_user = app\n"
    "\n"
    "[backend:vars]\n"
    "ansible_user=backend\n"
    "ansible_port=2022\n"
    "\n"
    "[all:vars]\n"
    "ansible_user=root\n";

static rb_ssh_inventory *load(void)
{
  char err[256] = "";
  rb_ssh_inventory *inv = rb_ssh_inventory_parse(inv_text, "inv.ini", err, sizeof err);
  if (inv == NULL)
    fail_msg("%s", err);
  return inv;
}

static void resolve_ok(const rb_ssh_inventory *inv, const char *target, rb_ssh_host **h,
                       size_t *n)
{
  char err[256] = "";
  if (rb_ssh_inventory_resolve(inv, target, h, n, err, sizeof err) < 0)
    fail_msg("%s", err);
}

static void test_groups_hosts_and_ranges_are_parsed(void **state)
{
  (void)state;
  rb_ssh_inventory *inv = load();
  assert_int_equal(rb_ssh_inventory_host_count(inv), 7);
  rb_ssh_host *h;
  size_t n;
  resolve_ok(inv, "db", &h, &n);
  assert_int_equal(n, 3);
  assert_string_equal(h[0].name, "db01");
  assert_string_equal(h[2].name, "db03");
  assert_string_equal(h[1].address, "db02");
  assert_string_equal(h[1].identity, "/keys/db key");
  rb_ssh_hosts_free(h, n);
  rb_ssh_inventory_free(inv);
}

static void test_children_groups_resolve_in_inventory_order(void **state)
{
  (void)state;
  rb_ssh_inventory *inv = load();
  rb_ssh_host *h;
  size_t n;
  resolve_ok(inv, "backend", &h, &n);
  assert_int_equal(n, 6);
  const char *want[] = {"app-1", "app-2", "app-3", "db01", "db02", "db03"};
  for (size_t i = 0; i < n; i++)
    assert_string_equal(h[i].name, want[i]);
  rb_ssh_hosts_free(h, n);
  resolve_ok(inv, "all", &h, &n);
  assert_int_equal(n, 7);
  assert_string_equal(h[0].name, "bastion");
  rb_ssh_hosts_free(h, n);
  resolve_ok(inv, "ungrouped", &h, &n);
  assert_int_equal(n, 1);
  assert_string_equal(h[0].name, "bastion");
  rb_ssh_hosts_free(h, n);
  rb_ssh_inventory_free(inv);
}

static void test_vars_precedence_host_then_child_then_parent_then_all(void **state)
{
  (void)state;
  rb_ssh_inventory *inv = load();
  rb_ssh_host *h;
  size_t n;
  resolve_ok(inv, "app-1,app-2,app-3,db01,bastion", &h, &n);
  assert_int_equal(n, 5);
  assert_string_equal(h[0].user, "app");     /* [app:vars] beats [backend:vars] */
  assert_string_equal(h[1].user, "deploy");  /* host line beats groups */
  assert_int_equal(h[0].port, 2022);         /* from [backend:vars] */
  assert_int_equal(h[2].port, 2200);         /* host:port shorthand */
  assert_string_equal(h[3].user, "backend"); /* db only inherits backend */
  assert_string_equal(h[4].user, "root");    /* all:vars */
  assert_int_equal(h[4].port, 2222);
  assert_string_equal(h[4].address, "10.0.0.1");
  rb_ssh_hosts_free(h, n);
  rb_ssh_inventory_free(inv);
}

static void test_comma_list_drops_duplicates(void **state)
{
  (void)state;
  rb_ssh_inventory *inv = load();
  rb_ssh_host *h;
  size_t n;
  resolve_ok(inv, "app-2, app, app-2", &h, &n);
  assert_int_equal(n, 3);
  assert_string_equal(h[0].name, "app-2");
  assert_string_equal(h[1].name, "app-1");
  assert_string_equal(h[2].name, "app-3");
  rb_ssh_hosts_free(h, n);
  rb_ssh_inventory_free(inv);
}

static void test_unknown_target_is_an_error(void **state)
{
  (void)state;
  rb_ssh_inventory *inv = load();
  rb_ssh_host *h;
  size_t n;
  char err[256];
  assert_int_equal(rb_ssh_inventory_resolve(inv, "app,ap", &h, &n, err, sizeof err), -1);
  assert_non_null(strstr(err, "'ap'"));
  assert_null(h);
  assert_int_equal(rb_ssh_inventory_resolve(inv, " , ", &h, &n, err, sizeof err), -1);
  rb_ssh_inventory_free(inv);
}

static void test_bad_lines_name_file_and_line(void **state)
{
  (void)state;
  char err[256];
  assert_null(
      rb_ssh_inventory_parse("[app]\nweb-1 ansible_port\n", "x.ini", err, sizeof err));
  assert_non_null(strstr(err, "x.ini:2:"));
  assert_null(rb_ssh_inventory_parse("[app:stuff]\n", "x.ini", err, sizeof err));
  assert_non_null(strstr(err, "x.ini:1:"));
  assert_null(rb_ssh_inventory_parse("[a:children]\nb\n[b:children]\na\n", "c.ini", err,
                                     sizeof err));
  assert_non_null(strstr(err, "cycle"));
  rb_ssh_inventory *inv =
      rb_ssh_inventory_parse("[app]\nweb ansible_port=99999\n", "p.ini", err, sizeof err);
  rb_ssh_host *h;
  size_t n;
  assert_int_equal(rb_ssh_inventory_resolve(inv, "app", &h, &n, err, sizeof err), -1);
  assert_non_null(strstr(err, "web"));
  rb_ssh_inventory_free(inv);
}

static void test_literal_targets_without_inventory(void **state)
{
  (void)state;
  rb_ssh_host *h;
  size_t n;
  resolve_ok(NULL, "deploy@10.0.0.5:2202,[::1]:22,web", &h, &n);
  assert_int_equal(n, 3);
  assert_string_equal(h[0].user, "deploy");
  assert_string_equal(h[0].address, "10.0.0.5");
  assert_int_equal(h[0].port, 2202);
  assert_string_equal(h[1].address, "::1");
  assert_int_equal(h[1].port, 22);
  assert_null(h[2].user);
  assert_int_equal(h[2].port, 0);
  rb_ssh_hosts_free(h, n);
}

/* ---- known_hosts ---- */

static const char ed_key[] =
    "AAAAC3NzaC1lZDI1NTE5AAAAIHC5UqR3IC0x/eD34UB5oN4fIQtcSdAVSA6lSlOY9S4K";
static const char ed_key2[] =
    "AAAAC3NzaC1lZDI1NTE5AAAAIHV7tPY/TxntTfH6Xk95YlYXGj5x5XO1j3m93CJ9MldO";

static size_t blob_of(const char *b64, unsigned char *out)
{
  long n = rb_ssh_base64_decode(b64, strlen(b64), out, 512);
  assert_true(n > 0);
  return (size_t)n;
}

static void test_yaml_inventory_resolves_as_ini(void **state)
{
  (void)state;
  static const char yaml[] =
      "all:\n"
      "  vars: {ansible_user: root}\n"
      "  children:\n"
      "    web:\n"
      "      hosts:\n"
      "        web[1:2]: {ansible_port: 2201}\n"
      "        \"[2001:db8::1]:2222\":\n"
      "      vars:\n"
      "        ansible_user: deploy\n"
      "    edge:\n"
      "      hosts: web1\n"
      "      vars: {ansible_user: edge, ansible_group_priority: 0}\n";
  char err[256] = "";
  rb_ssh_inventory *inv = rb_ssh_inventory_parse(yaml, "inv.yml", err, sizeof err);
  if (inv == NULL)
    fail_msg("%s", err);
  rb_ssh_host *h;
  size_t n;
  resolve_ok(inv, "web", &h, &n);
  assert_int_equal(n, 3);
  assert_string_equal(h[0].name, "web1");
  assert_int_equal(h[0].port, 2201);
  /* same depth: edge has the lower priority, so web's value wins */
  assert_string_equal(h[0].user, "deploy");
  assert_string_equal(h[2].address, "2001:db8::1");
  assert_int_equal(h[2].port, 2222);
  rb_ssh_hosts_free(h, n);
  rb_ssh_inventory_free(inv);
  assert_null(rb_ssh_inventory_parse("all:\n  hots: {}\n", "x.yml", err, sizeof err));
  assert_string_equal(err, "x.yml:2: unexpected key 'hots' in group all (want hosts, "
                           "vars or children)");
}

static void test_ini_header_comment_v6_port_and_refusals(void **state)
{
  (void)state;
  char err[256] = "";
  rb_ssh_inventory *inv = rb_ssh_inventory_parse(
      "[web] # front\n[2001:db8::1]:2222\n[web:vars]\nansible_group_priority=x\n",
      "a.ini", err, sizeof err);
  assert_null(inv);
  assert_string_equal(err,
                      "a.ini:4: group web: ansible_group_priority 'x' is not an integer");
  inv = rb_ssh_inventory_parse("[web] # front\n[2001:db8::1]:2222\n", "a.ini", err,
                               sizeof err);
  assert_non_null(inv);
  rb_ssh_host *h;
  size_t n;
  resolve_ok(inv, "web", &h, &n);
  assert_int_equal(n, 1);
  assert_string_equal(h[0].address, "2001:db8::1");
  assert_int_equal(h[0].port, 2222);
  rb_ssh_hosts_free(h, n);
  rb_ssh_inventory_free(inv);
  assert_null(
      rb_ssh_inventory_parse("$ANSIBLE_VAULT;1.1;AES256\n6162\n", "v", err, sizeof err));
  assert_string_equal(err, "v: vault-encrypted inventories are not supported: decrypt "
                           "with ansible-vault view");
  assert_null(rb_ssh_inventory_parse("[a]\nx\n", "i.toml", err, sizeof err));
  assert_non_null(strstr(err, "unsupported inventory format: TOML"));
}

static void test_known_host_key_matches_plain_and_port_entries(void **state)
{
  (void)state;
  char text[1024], err[128], known[128], prefs0[200];
  snprintf(
      text, sizeof text,
      "# comment\n@cert-authority *.example ssh-ed25519 %s\nweb,10.0.0.9 ssh-ed25519 "
      "%s\n[127.0.0.1]:2202 ssh-ed25519 %s\n",
      ed_key2, ed_key, ed_key2);
  rb_ssh_knownhosts *kh = rb_ssh_knownhosts_parse(text, "kh", err, sizeof err);
  assert_non_null(kh);
  unsigned char b1[512], b2[512];
  size_t l1 = blob_of(ed_key, b1), l2 = blob_of(ed_key2, b2);
  assert_int_equal(
      rb_ssh_knownhosts_check(kh, "10.0.0.9", 22, b1, l1, known, sizeof known), RB_KH_OK);
  assert_int_equal(rb_ssh_knownhosts_check(kh, "127.0.0.1", 2202, b2, l2, NULL, 0),
                   RB_KH_OK);
  assert_int_equal(
      rb_ssh_knownhosts_check(kh, "127.0.0.1", 2202, b1, l1, known, sizeof known),
      RB_KH_CHANGED);
  assert_string_equal(known, "ssh-ed25519");
  assert_int_equal(rb_ssh_knownhosts_check(kh, "127.0.0.1", 22, b2, l2, NULL, 0),
                   RB_KH_UNKNOWN);
  /* a certificate authority line is not a host key: the hosts it covers are
   * refused as unsupported host certificates, not as unknown */
  assert_int_equal(rb_ssh_knownhosts_check(kh, "a.example", 22, b2, l2, NULL, 0),
                   RB_KH_CERT);
  assert_int_equal(rb_ssh_knownhosts_methods(kh, "a.example", 22, prefs0, sizeof prefs0),
                   0);
  char prefs[200];
  assert_int_equal(rb_ssh_knownhosts_methods(kh, "web", 22, prefs, sizeof prefs), 1);
  assert_string_equal(prefs, "ssh-ed25519");
  assert_int_equal(rb_ssh_knownhosts_methods(kh, "nothere", 22, prefs, sizeof prefs), 0);
  rb_ssh_knownhosts_free(kh);
}

static void test_hashed_entries_match_by_hmac_sha1(void **state)
{
  (void)state;
  /* |1|salt|HMAC-SHA1(salt, "[127.0.0.1]:2202"), computed with this code and
   * cross-checked against ssh-keygen -H in the integration tests */
  unsigned char salt[20], mac[20];
  for (int i = 0; i < 20; i++)
    salt[i] = (unsigned char)(i * 7 + 1);
  const char *name = "[127.0.0.1]:2202";
  rb_ssh_hmac_sha1(salt, 20, (const unsigned char *)name, strlen(name), mac);
  char s64[64], m64[64], text[512], err[128];
  rb_ssh_base64_encode(salt, 20, s64, sizeof s64, 0);
  rb_ssh_base64_encode(mac, 20, m64, sizeof m64, 0);
  snprintf(text, sizeof text, "|1|%s|%s ssh-ed25519 %s\n", s64, m64, ed_key);
  rb_ssh_knownhosts *kh = rb_ssh_knownhosts_parse(text, "kh", err, sizeof err);
  unsigned char b1[512];
  size_t l1 = blob_of(ed_key, b1);
  assert_int_equal(rb_ssh_knownhosts_check(kh, "127.0.0.1", 2202, b1, l1, NULL, 0),
                   RB_KH_OK);
  assert_int_equal(rb_ssh_knownhosts_check(kh, "127.0.0.1", 2203, b1, l1, NULL, 0),
                   RB_KH_UNKNOWN);
  rb_ssh_knownhosts_free(kh);
}

static void test_hmac_sha1_matches_rfc2202(void **state)
{
  (void)state;
  unsigned char key[20], mac[20];
  memset(key, 0x0b, sizeof key);
  rb_ssh_hmac_sha1(key, 20, (const unsigned char *)"Hi There", 8, mac);
  static const unsigned char want[20] = {0xb6, 0x17, 0x31, 0x86, 0x55, 0x05, 0x72,
                                         0x64, 0xe2, 0x8b, 0xc0, 0xb6, 0xfb, 0x37,
                                         0x8c, 0x8e, 0xf1, 0x46, 0xbe, 0x00};
  assert_memory_equal(mac, want, 20);
}

static void test_revoked_key_is_refused(void **state)
{
  (void)state;
  char text[512], err[128];
  snprintf(text, sizeof text, "web ssh-ed25519 %s\n@revoked * ssh-ed25519 %s\n", ed_key,
           ed_key);
  rb_ssh_knownhosts *kh = rb_ssh_knownhosts_parse(text, "kh", err, sizeof err);
  unsigned char b1[512];
  size_t l1 = blob_of(ed_key, b1);
  assert_int_equal(rb_ssh_knownhosts_check(kh, "web", 22, b1, l1, NULL, 0),
                   RB_KH_REVOKED);
  rb_ssh_knownhosts_free(kh);
}

static void test_fingerprint_and_line_format(void **state)
{
  (void)state;
  unsigned char digest[32];
  for (int i = 0; i < 32; i++)
    digest[i] = (unsigned char)i;
  char fp[80];
  rb_ssh_fingerprint(digest, fp, sizeof fp);
  assert_string_equal(fp, "SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
  unsigned char b1[512];
  size_t l1 = blob_of(ed_key, b1);
  char *line = rb_ssh_knownhosts_line("127.0.0.1", 2202, b1, l1);
  char want[256];
  snprintf(want, sizeof want, "[127.0.0.1]:2202 ssh-ed25519 %s", ed_key);
  assert_string_equal(line, want);
  free(line);
}

static void test_counts_and_percentages(void **state)
{
  (void)state;
  rb_ssh_count c;
  char err[128];
  assert_int_equal(rb_ssh_parse_count("25%", "batch", &c, err, sizeof err), 0);
  assert_int_equal(rb_ssh_batch_size(c, 50), 13);
  assert_int_equal(rb_ssh_batch_size(c, 2), 1);
  assert_int_equal(rb_ssh_parse_count("10%", "max_fail", &c, err, sizeof err), 0);
  assert_int_equal(rb_ssh_fail_limit(c, 50), 5);
  assert_int_equal(rb_ssh_fail_limit(c, 5), 0);
  assert_int_equal(rb_ssh_parse_count("3", "batch", &c, err, sizeof err), 0);
  assert_int_equal(rb_ssh_batch_size(c, 2), 2);
  assert_int_equal(rb_ssh_parse_count("120%", "batch", &c, err, sizeof err), -1);
  assert_int_equal(rb_ssh_parse_count("x", "batch", &c, err, sizeof err), -1);
  assert_non_null(strstr(err, "batch"));
  rb_ssh_count unset = {-1, 0};
  assert_int_equal(rb_ssh_fail_limit(unset, 5), SIZE_MAX);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_groups_hosts_and_ranges_are_parsed),
      cmocka_unit_test(test_children_groups_resolve_in_inventory_order),
      cmocka_unit_test(test_vars_precedence_host_then_child_then_parent_then_all),
      cmocka_unit_test(test_comma_list_drops_duplicates),
      cmocka_unit_test(test_unknown_target_is_an_error),
      cmocka_unit_test(test_bad_lines_name_file_and_line),
      cmocka_unit_test(test_literal_targets_without_inventory),
      cmocka_unit_test(test_yaml_inventory_resolves_as_ini),
      cmocka_unit_test(test_ini_header_comment_v6_port_and_refusals),
      cmocka_unit_test(test_known_host_key_matches_plain_and_port_entries),
      cmocka_unit_test(test_hashed_entries_match_by_hmac_sha1),
      cmocka_unit_test(test_hmac_sha1_matches_rfc2202),
      cmocka_unit_test(test_revoked_key_is_refused),
      cmocka_unit_test(test_fingerprint_and_line_format),
      cmocka_unit_test(test_counts_and_percentages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
