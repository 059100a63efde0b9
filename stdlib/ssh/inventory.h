/* inventory.h: the hosts and groups SSH targets name, read from the subset of
 * Ansible's INI and YAML inventory formats documented in docs/ssh.md. */
#ifndef RB_SSH_INVENTORY_H
#define RB_SSH_INVENTORY_H

#include <jansson.h>
#include <stddef.h>

/* One resolved host: what a connection needs. Strings are owned by the
 * array they sit in (see rb_ssh_hosts_free). */
typedef struct {
  char *name;     /* inventory name ("app-2") */
  char *address;  /* ansible_host, else the name */
  int port;       /* ansible_port, 0 = the configured default (22) */
  char *user;     /* ansible_user, NULL = the configured default */
  char *identity; /* ansible_ssh_private_key_file, NULL = the defaults */
} rb_ssh_host;

typedef struct rb_ssh_inventory rb_ssh_inventory;

/* Parses an inventory file. Errors name path:line. Caller frees with
 * rb_ssh_inventory_free. */
rb_ssh_inventory *rb_ssh_inventory_load(const char *path, char *err, size_t errlen);
/* Parses inventory text; name is used in error messages. */
rb_ssh_inventory *rb_ssh_inventory_parse(const char *text, const char *name, char *err,
                                         size_t errlen);
void rb_ssh_inventory_free(rb_ssh_inventory *inv);

/* Resolves a target: a host name, a group name ("all" included) or a comma
 * list of them, into hosts in inventory order per item, duplicates dropped.
 * An item that names nothing is an error (a typo must not shrink a rollout).
 * With inv NULL each item is a literal "[user@]address[:port]". On success
 * *out is a malloc'd array the caller frees with rb_ssh_hosts_free. */
int rb_ssh_inventory_resolve(const rb_ssh_inventory *inv, const char *target,
                             rb_ssh_host **out, size_t *n, char *err, size_t errlen);
void rb_ssh_hosts_free(rb_ssh_host *hosts, size_t n);
/* Deep copy of one host into dst; returns 0 or -1 (out of memory). */
int rb_ssh_host_copy(rb_ssh_host *dst, const rb_ssh_host *src);
void rb_ssh_host_clear(rb_ssh_host *h);

/* The inventory as `ansible-inventory --list` prints it: "_meta.hostvars"
 * (each host's variables merged in Ansible's order, as strings) and each
 * group's direct "hosts" and "children". NULL on out of memory. */
json_t *rb_ssh_inventory_list_json(const rb_ssh_inventory *inv);

/* Number of hosts and groups, for tests and `runbook check`. */
size_t rb_ssh_inventory_host_count(const rb_ssh_inventory *inv);
size_t rb_ssh_inventory_group_count(const rb_ssh_inventory *inv);

#endif
