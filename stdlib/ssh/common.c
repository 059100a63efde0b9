/* common.c: the [ssh] config read into engine settings, and the per-host
 * timeline detail, shared by the Lua binding and the CLI. */
#include "stdlib/ssh/common.h"

#include <stdlib.h>
#include <string.h>

#include "runner/base/util.h"

int rb_ssh_config_read(const rb_config *cfg, rb_ssh_config *out, char *err, size_t errlen)
{
  long port, parallel, output_kb;
  int use_agent, tofu;
  int64_t connect_ms, command_ms;
  memset(out, 0, sizeof *out);
  /* defaults and bounds: the [ssh] table in keys.c */
  if (rb_host_config_int(cfg, "ssh", "port", &port, err, errlen) < 0 ||
      rb_host_config_int(cfg, "ssh", "parallel", &parallel, err, errlen) < 0 ||
      rb_host_config_int(cfg, "ssh", "output_kb", &output_kb, err, errlen) < 0 ||
      rb_host_config_bool(cfg, "ssh", "use_agent", &use_agent, err, errlen) < 0 ||
      rb_host_config_bool(cfg, "ssh", "trust_on_first_use", &tofu, err, errlen) < 0 ||
      rb_host_config_duration(cfg, "ssh", "connect_timeout", &connect_ms, err, errlen) <
          0 ||
      rb_host_config_duration(cfg, "ssh", "command_timeout", &command_ms, err, errlen) <
          0)
    return -1;
  out->settings.known_hosts = rb_host_config_string(cfg, "ssh", "known_hosts");
  out->settings.identity = rb_host_config_string(cfg, "ssh", "identity_file");
  out->settings.user = rb_host_config_string(cfg, "ssh", "user");
  out->settings.port = (int)port;
  out->settings.use_agent = use_agent;
  out->settings.trust_on_first_use = tofu;
  out->settings.connect_timeout_ms = connect_ms;
  out->inventory = rb_host_config_string(cfg, "ssh", "inventory");
  out->parallel = (int)parallel;
  out->command_ms = command_ms;
  out->output_max = (size_t)output_kb * 1024;
  return 0;
}

rb_ssh_inventory *rb_ssh_config_inventory(const rb_ssh_config *c, int *none, char *err,
                                          size_t errlen)
{
  *none = c->inventory == NULL || c->inventory[0] == '\0';
  if (*none)
    return NULL;
  return rb_ssh_inventory_load(c->inventory, err, errlen);
}

/* The last RB_SSH_TAIL bytes, cut at a UTF-8 boundary. */
static json_t *tail(const char *s, size_t len)
{
  size_t off = len > RB_SSH_TAIL ? len - RB_SSH_TAIL : 0;
  while (off < len && ((unsigned char)s[off] & 0xC0) == 0x80)
    off++;
  json_t *j = json_stringn(s ? s + off : "", len - off);
  return j ? j : json_string("(output is not UTF-8)");
}

json_t *rb_ssh_result_json(const rb_ssh_result *r, const char *command)
{
  json_t *d = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I}", "op", "ssh", "host", r->host,
                        "address", r->address, "port", r->port, "command", command,
                        "duration_ms", (json_int_t)r->duration_ms);
  if (d == NULL)
    return NULL;
  if (!r->skipped)
    json_object_set_new(d, "exit_code",
                        r->exit_code >= 0 ? json_integer(r->exit_code) : json_null());
  if (r->signal != NULL)
    json_object_set_new(d, "signal", json_string(r->signal));
  if (r->error != NULL)
    json_object_set_new(d, "error", json_string(r->error));
  else if (!r->ok)
    json_object_set_new(
        d, "error",
        json_sprintf("ssh %s: command exited with code %d", r->host, r->exit_code));
  if (r->timed_out)
    json_object_set_new(d, "timed_out", json_true());
  if (r->truncated)
    json_object_set_new(d, "truncated", json_true());
  if (r->skipped)
    json_object_set_new(d, "skipped", json_true());
  if (r->reused)
    json_object_set_new(d, "reused_connection", json_true());
  if (!r->skipped) {
    json_object_set_new(d, "stdout_tail", tail(r->out, r->out_len));
    json_object_set_new(d, "stderr_tail", tail(r->errout, r->err_len));
  }
  return d;
}

const char *rb_ssh_result_event(const rb_ssh_result *r)
{
  return r->skipped ? "skipped" : r->ok ? "finished" : "failed";
}
