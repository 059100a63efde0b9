/* inventory_int.h: the inventory model's building blocks, shared by the INI
 * reader (inventory.c) and the YAML reader (inventory_yaml.c). */
#ifndef RB_SSH_INVENTORY_INT_H
#define RB_SSH_INVENTORY_INT_H

#include <stddef.h>

#include "stdlib/ssh/inventory.h"

typedef struct {
  char *k, *v;
} rb_ssh_kv;

typedef struct {
  rb_ssh_kv *v;
  size_t n, cap;
} rb_ssh_kvlist;

int rb_ssh_kv_set(rb_ssh_kvlist *l, const char *k, const char *v);
void rb_ssh_kv_free(rb_ssh_kvlist *l);

/* Index of group name, created if new; -1 on out of memory. */
long rb_ssh_inv_group(rb_ssh_inventory *inv, const char *name);
int rb_ssh_inv_add_child(rb_ssh_inventory *inv, long parent, const char *child);
/* Sets a group variable; ansible_group_priority becomes the group's priority
 * (an integer) as in Ansible, not a variable. */
int rb_ssh_inv_group_var(rb_ssh_inventory *inv, long gi, const char *k, const char *v,
                         char *err, size_t errlen);
/* Adds the hosts a pattern names (ranges, host:port, [v6]:port) to group gi
 * (-1: none) with vars applied to each. */
int rb_ssh_inv_add_hosts(rb_ssh_inventory *inv, long gi, const char *pattern,
                         const rb_ssh_kvlist *vars, char *err, size_t errlen);

const char *rb_ssh_inventory_name(const rb_ssh_inventory *inv);

/* Reads a YAML (or JSON) inventory into inv, which holds "all" and
 * "ungrouped" already. Errors name path:line. */
int rb_ssh_inventory_yaml(rb_ssh_inventory *inv, const char *text, size_t len, char *err,
                          size_t errlen);

#endif
