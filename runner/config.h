/* config.h: the settings file, an INI dialect with comments. Sections hold
 * documented keys; secrets appear only as the names of the environment
 * variables (KEY_env) or files (KEY_file) that hold them. */
#ifndef RB_CONFIG_H
#define RB_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "stdlib/rb_host.h"

typedef struct rb_config rb_config;

/* Loads path, or when path is NULL the first of ./runbook.conf and
 * $XDG_CONFIG_HOME/runbook/runbook.conf (~/.config when unset) that exists;
 * none existing gives an empty config. Errors name file:line: a line that is
 * not "key = value", an unknown section or key, a literal secret. Caller
 * frees with rb_config_free. */
rb_config *rb_config_load(const char *path, char *err, size_t errlen);
/* An empty config, for tests and for running without a file. */
rb_config *rb_config_new_empty(void);
void rb_config_free(rb_config *c);
/* The file it came from, or NULL for an empty config. */
const char *rb_config_file(const rb_config *c);

/* The value of key in section ("" for keys before any section), or NULL. */
const char *rb_config_get(const rb_config *c, const char *section, const char *key);
/* Typed reads. The default and the bounds come from the key table (the
 * row of section/key); there are no defaults at call sites. A malformed or
 * out-of-bounds value is an error naming file:line; a key missing from the
 * table is an error too (a programming mistake, caught by the tests). */
int rb_config_get_int(const rb_config *c, const char *section, const char *key, long *out,
                      char *err, size_t errlen);
int rb_config_get_bool(const rb_config *c, const char *section, const char *key, int *out,
                       char *err, size_t errlen);
int rb_config_get_duration(const rb_config *c, const char *section, const char *key,
                           int64_t *out_ms, char *err, size_t errlen);
/* A string or path key: the value, else the table default (often NULL, when
 * the default is computed by the module, like $USER). */
const char *rb_config_get_string(const rb_config *c, const char *section,
                                 const char *key);
/* Sets a value (used for command-line overrides such as --inventory). */
int rb_config_set(rb_config *c, const char *section, const char *key, const char *value);

/* Resolves secret `key` of section: from the environment variable named by
 * KEY_env, else the file named by KEY_file (trailing newline dropped, file
 * must not be group/world readable). The value is registered with the
 * redactor. Returns a malloc'd string the caller wipes and frees, or NULL
 * with err (which names the section and key, never the value); *absent is
 * set to 1 when neither KEY_env nor KEY_file is configured. */
char *rb_config_secret(const rb_config *c, const char *section, const char *key,
                       int *absent, char *err, size_t errlen);

/* Resolves every configured secret once, so the redactor knows them all
 * (a recording scrubs what the run read before it needed a secret). */
void rb_config_register_secrets(const rb_config *c);

/* 1 when the secret of some section is read from environment variable var
 * (`token_env = VAR`), with where naming it ("[serve] token_env"); else 0. */
int rb_config_secret_env(const rb_config *c, const char *var, char *where, size_t len);

/* The line of section/key in the file, 0 when it is not set there. */
int rb_config_line(const rb_config *c, const char *section, const char *key);

/* Calls fn with each key of section as the file set it, in file order. */
void rb_config_each_key(const rb_config *c, const char *section,
                        void (*fn)(const char *key, const char *value, int line,
                                   void *arg),
                        void *arg);

/* Calls fn for each section name that starts with prefix (e.g. "flags."). */
void rb_config_each_section(const rb_config *c, const char *prefix,
                            void (*fn)(const char *section, void *arg), void *arg);

/* ---- the key table ----
 * Every key the file accepts, with its type, default, bounds and one-line
 * doc; the reference section of docs/config.md is generated from it
 * (rb_config_reference) and a unit test holds the two together. Each module
 * contributes the sections it owns; runner/config_keys.c lists them. */
/* The key table's types (rb_config_key, rb_config_section) are part of the
 * host interface: each module contributes its sections (stdlib/rb_host.h). */

/* The registry, NULL-terminated, in the order the docs show them. */
extern const rb_config_section *const rb_config_sections[];

/* The sections each module contributes (defined next to the module). */
extern const rb_config_section rb_config_core, rb_config_sandbox, rb_config_approvals;
extern const rb_config_section rb_config_plan; /* runner/plan_file.c */
extern const rb_config_section rb_config_approval_sev, rb_config_group,
    rb_config_approver;
extern const rb_config_section rb_config_cmd, rb_config_ssh, rb_config_http;
extern const rb_config_section rb_config_prom, rb_config_flags, rb_config_deploy,
    rb_config_notify, rb_config_serve, rb_config_serve_json, rb_config_slack;
extern const rb_config_section rb_config_escalation;
extern const rb_config_section rb_config_store;

/* The table row of section/key, or NULL. */
const rb_config_key *rb_config_key_find(const char *section, const char *key);
/* Writes the "## Keys" reference of docs/config.md (markdown) to f. */
void rb_config_reference(FILE *f);

#endif
