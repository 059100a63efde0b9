/* inventory_list.c: prints an inventory as `ansible-inventory --list` does,
 * or the hosts a target resolves to in order (as `ansible T --list-hosts`),
 * for tests/integration/test_inventory_conformance.py to compare. */
#include <stdio.h>

#include "stdlib/ssh/inventory.h"

int main(int argc, char **argv)
{
  char err[512] = "";
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: inventory_list FILE [TARGET]\n");
    return 2;
  }
  rb_ssh_inventory *inv = rb_ssh_inventory_load(argv[1], err, sizeof err);
  if (inv == NULL) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  if (argc == 3) {
    rb_ssh_host *hosts = NULL;
    size_t n = 0;
    int rc = rb_ssh_inventory_resolve(inv, argv[2], &hosts, &n, err, sizeof err);
    if (rc < 0)
      fprintf(stderr, "%s\n", err);
    for (size_t i = 0; i < n; i++)
      printf("%s\n", hosts[i].name);
    rb_ssh_hosts_free(hosts, n);
    rb_ssh_inventory_free(inv);
    return rc < 0 ? 1 : 0;
  }
  json_t *j = rb_ssh_inventory_list_json(inv);
  int rc =
      j != NULL && json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) == 0 ? 0 : 1;
  json_decref(j);
  rb_ssh_inventory_free(inv);
  return rc;
}
