/* inventory_list.c: prints an inventory as `ansible-inventory --list` does,
 * for tests/integration/test_inventory_conformance.py to compare. */
#include <stdio.h>

#include "stdlib/ssh/inventory.h"

int main(int argc, char **argv)
{
  char err[512] = "";
  if (argc != 2) {
    fprintf(stderr, "usage: inventory_list FILE\n");
    return 2;
  }
  rb_ssh_inventory *inv = rb_ssh_inventory_load(argv[1], err, sizeof err);
  if (inv == NULL) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  json_t *j = rb_ssh_inventory_list_json(inv);
  int rc =
      j != NULL && json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) == 0 ? 0 : 1;
  json_decref(j);
  rb_ssh_inventory_free(inv);
  return rc;
}
