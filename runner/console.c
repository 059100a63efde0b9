/* console.c: what a run prints on the terminal: progress lines, colours, the
 * start banner and the closing summary, all redacted. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>

#include "runner/exec.h"
#include "runner/base/redact.h"
#include "runner/base/util.h"

const char *rb_console_col(const rb_exec *ex, const char *code)
{
  return ex->o->color ? code : "";
}

void rb_console_say(rb_exec *ex, const char *fmt, ...)
{
  if (ex->o->quiet || ex->o->json_stream)
    return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  char *clean = rb_redact_str(buf);
  rb_console_poll_end(ex); /* keep the last poll on screen, under this line */
  fputs(clean ? clean : "[output withheld]", ex->out);
  fputc('\n', ex->out);
  fflush(ex->out);
  free(clean);
}

static void elapsed(int64_t start_us, char *buf, size_t len)
{
  rb_format_elapsed(rb_now_mono_us() - start_us, buf, len);
}

/* Rewrites the updating line (a wait's poll, a fan-out's state) with text. */
static void console_rewrite(rb_exec *ex, char *buf)
{
  /* Cut to fit one line: a wrapped line cannot be rewritten with \r. */
  buf[strcspn(buf, "\n")] = '\0';
  if (strlen(buf) > 100)
    memcpy(buf + 97, "...", 4);
  char *clean = rb_redact_str(buf);
  fprintf(ex->out, "\r\033[K      %s%s%s", rb_console_col(ex, C_DIM),
          clean ? clean : "[output withheld]", rb_console_col(ex, C_RESET));
  fflush(ex->out);
  free(clean);
  ex->poll_line = 1;
}

void rb_console_poll(rb_exec *ex, int n, int64_t waited_ms, int64_t timeout_ms,
                     const char *last)
{
  if (ex->o->quiet || ex->o->json_stream)
    return;
  char el[32], to[32], buf[160];
  rb_format_elapsed(waited_ms * 1000, el, sizeof el);
  rb_format_elapsed(timeout_ms * 1000, to, sizeof to);
  if (!isatty(fileno(ex->out))) {
    rb_console_say(ex, "      poll %d, %s of %s: %s", n, el, to, last);
    return;
  }
  snprintf(buf, sizeof buf, "poll %d, %s of %s: %s", n, el, to, last);
  console_rewrite(ex, buf);
}

void rb_console_status(rb_host *h, const char *line, int heartbeat)
{
  rb_exec *ex = h->priv;
  if (ex->o->quiet || ex->o->json_stream)
    return;
  if (!isatty(fileno(ex->out))) {
    /* a log gets every change, and a sign of life every 30 s in a long wait */
    int64_t now = rb_now_mono_ms();
    if (heartbeat && now - ex->status_plain_ms < 30000)
      return;
    ex->status_plain_ms = now;
    rb_console_say(ex, "      %s", line);
    return;
  }
  char buf[160];
  snprintf(buf, sizeof buf, "%s", line);
  console_rewrite(ex, buf);
}

void rb_console_poll_end(rb_exec *ex)
{
  if (ex->poll_line) {
    fputc('\n', ex->out);
    ex->poll_line = 0;
  }
}

void rb_console_op(rb_exec *ex, const char *event, const json_t *d)
{
  if (ex->o->quiet || ex->o->json_stream)
    return;
  /* A read failing in a wait is what the poll line reports, once. */
  if (ex->polling && strcmp(event, "failed") == 0)
    return;
  if (strcmp(event, "would_run") != 0 && strcmp(event, "failed") != 0)
    return;
  json_t *copy = json_pack("{s:s, s:s, s:O}", "event", event, "step",
                           ex->cur ? ex->cur->id : "", "detail", d);
  char *s = rb_timeline_describe(copy);
  json_decref(copy);
  const char *text = s ? s : event;
  /* describe() starts with "step: "; the step is already on screen. */
  const char *colon = strstr(text, ": ");
  rb_console_say(ex, "      %s%s%s", rb_console_col(ex, C_DIM), colon ? colon + 2 : text,
                 rb_console_col(ex, C_RESET));
  free(s);
}

void rb_console_progress(rb_host *h, const char *line)
{
  rb_exec *ex = h->priv;
  rb_console_say(ex, "      %s%s%s", rb_console_col(ex, C_DIM), line,
                 rb_console_col(ex, C_RESET));
}

void rb_console_sandbox_print(void *arg, const char *text, int is_warning)
{
  rb_exec *ex = arg;
  const char *step = ex->cur ? ex->cur->id : "(load)";
  char *clean = rb_redact_str(text);
  if (ex->log) {
    char ts[32];
    rb_format_ts(rb_now_wall_ms(), ts, sizeof ts);
    fprintf(ex->log, "%s %s %s%s\n", ts, step, is_warning ? "warning: " : "",
            clean ? clean : "");
    fflush(ex->log);
  }
  if (!ex->o->json_stream && !ex->o->quiet)
    fprintf(ex->out, "      %s%s%s%s\n", rb_console_col(ex, C_DIM),
            is_warning ? "warning: " : "", clean ? clean : "",
            rb_console_col(ex, C_RESET));
  free(clean);
}

void rb_console_step_start(rb_exec *ex, const rb_step *s)
{
  rb_console_say(ex, "  %s>%s %-20s %s%s%s", rb_console_col(ex, C_CYAN),
                 rb_console_col(ex, C_RESET), s->id, rb_console_col(ex, C_BOLD),
                 s->title ? s->title : "", rb_console_col(ex, C_RESET));
}

void rb_console_step_end(rb_exec *ex, const rb_step *s, int64_t t0, const rb_step_out *o,
                         const json_t *detail, int ok)
{
  char el[32], what[512], waited[96] = "";
  elapsed(t0, el, sizeof el);
  if (json_is_true(json_object_get(detail, "simulated"))) /* a drill's wait */
    rb_timeline_waited(detail, waited, sizeof waited);
  const json_t *v = json_object_get(detail, "value");
  if (!ok) {
    rb_console_say(ex, "  %sx %-20s failed: %s%s (%s)", rb_console_col(ex, C_RED), s->id,
                   o->error, rb_console_col(ex, C_RESET), el);
    return;
  }
  if (v && o->next) {
    char *vs = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(what, sizeof what, "%s -> %s%s%s", vs ? vs : "?", o->next,
             waited[0] ? " " : "", waited);
    free(vs);
  } else if (o->next) {
    snprintf(what, sizeof what, "done -> %s", o->next);
  } else {
    snprintf(what, sizeof what, "%s", o->outcome ? rb_outcome_name(o->outcome) : "done");
  }
  rb_console_say(ex, "  %s+%s %-20s %s %s(%s)%s", rb_console_col(ex, C_GREEN),
                 rb_console_col(ex, C_RESET), s->id, what, rb_console_col(ex, C_DIM), el,
                 rb_console_col(ex, C_RESET));
}

void rb_console_terminal(rb_exec *ex, const rb_step *s)
{
  rb_console_say(ex, "  %s=%s %-20s %s%s%s", rb_console_col(ex, C_BOLD),
                 rb_console_col(ex, C_RESET), s->id, rb_console_col(ex, C_BOLD), s->title,
                 rb_console_col(ex, C_RESET));
}

void rb_console_banner(rb_exec *ex)
{
  const rb_run_opts *o = ex->o;
  rb_console_say(ex, "%s%s%s of %s%s%s: %s", rb_console_col(ex, C_BOLD),
                 rb_mode_name(o->mode), rb_console_col(ex, C_RESET),
                 rb_console_col(ex, C_BOLD), ex->m->name, rb_console_col(ex, C_RESET),
                 ex->m->title);
  rb_console_say(ex, "  incident %s, run %s%s%s", o->incident, o->run_id,
                 o->scenario_name ? ", scenario " : "",
                 o->scenario_name ? o->scenario_name : "");
}

/* "a -> b -> c", cut at the buffer's end. */
static void format_path(const json_t *path, char *buf, size_t len)
{
  size_t used = 0;
  size_t i;
  json_t *id;
  buf[0] = '\0';
  json_array_foreach(path, i, id)
  {
    int n =
        snprintf(buf + used, len - used, "%s%s", i ? " -> " : "", json_string_value(id));
    if (n < 0 || (size_t)n >= len - used)
      break;
    used += (size_t)n;
  }
}

/* A dry-run's plan: which writes would fail, or that all were checked. */
static void console_preflight(rb_exec *ex)
{
  size_t i;
  json_t *v;
  json_array_foreach(ex->would_fail, i, v)
  {
    rb_console_say(ex, "%swould fail on %s%s", rb_console_col(ex, C_RED),
                   json_string_value(v), rb_console_col(ex, C_RESET));
  }
  if (ex->would_fail == NULL && ex->preflights > 0)
    rb_console_say(ex, "preflight: all %d write(s) would reach their targets",
                   ex->preflights);
}

void rb_console_summary(rb_exec *ex, rb_outcome outcome, const char *error,
                        const char *tlpath)
{
  char el[32];
  rb_format_elapsed(rb_now_mono_us() - ex->run_start_us, el, sizeof el);
  const char *c = outcome == RB_OUTCOME_RESOLVED    ? C_GREEN
                  : outcome == RB_OUTCOME_ESCALATED ? C_YELLOW
                                                    : C_RED;
  char pathbuf[1024];
  format_path(ex->path, pathbuf, sizeof pathbuf);
  rb_console_say(ex, "%s%s%s%s in %s via %s", rb_console_col(ex, C_BOLD),
                 rb_console_col(ex, c), rb_outcome_name(outcome),
                 rb_console_col(ex, C_RESET), el, pathbuf);
  if (error[0])
    fprintf(stderr, "runbook: %s: %s\n", ex->o->runbook_path, error);
  console_preflight(ex);
  rb_console_say(ex, "timeline: %s", tlpath);
}
