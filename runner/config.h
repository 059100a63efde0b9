/* config.h: the settings file, an INI dialect with comments. Sections hold
 * documented keys; secrets appear only as the names of the environment
 * variables (KEY_env) or files (KEY_file) that hold them. */
#ifndef RB_CONFIG_H
#define RB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

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
/* Typed reads with a default; a malformed value is an error naming file:line. */
int rb_config_get_int(const rb_config *c, const char *section, const char *key, long def,
                      long *out, char *err, size_t errlen);
int rb_config_get_bool(const rb_config *c, const char *section, const char *key, int def,
                       int *out, char *err, size_t errlen);
int rb_config_get_duration(const rb_config *c, const char *section, const char *key,
                           int64_t def_ms, int64_t *out_ms, char *err, size_t errlen);
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

/* Calls fn for each section name that starts with prefix (e.g. "flags."). */
void rb_config_each_section(const rb_config *c, const char *prefix,
                            void (*fn)(const char *section, void *arg), void *arg);

/* The documented keys (docs/config.md). A section ending in ".*" matches
 * user-named sections ("flags.*" matches [flags.checkout]). type is one of
 * string, int, bool, duration, path, secret; a secret key is only accepted
 * as KEY_env or KEY_file. Terminated by an entry whose section is NULL. */
typedef struct {
  const char *section;
  const char *key;
  const char *type;
} rb_config_key;
extern const rb_config_key rb_config_keys[];

#endif
