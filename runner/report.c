/* report.c: the HTML report of an incident. Every byte of text from a runbook
 * or a timeline is escaped, and a Content-Security-Policy forbids scripts and
 * fetches: the page is opened by people during and after an incident. */
#include "runner/report.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/digest.h"
#include "runner/exec.h"
#include "runner/render.h"
#include "runner/base/util.h"

extern char **environ;

static const char *s_of(const json_t *o, const char *k)
{
  return json_string_value(json_object_get(o, k));
}

static int is(const char *a, const char *b)
{
  return a && b && strcmp(a, b) == 0;
}

/* Text as HTML: the five characters that could end an element or attribute. */
static void esc(const char *s, FILE *out)
{
  for (; s && *s; s++) {
    switch (*s) {
    case '&':
      fputs("&amp;", out);
      break;
    case '<':
      fputs("&lt;", out);
      break;
    case '>':
      fputs("&gt;", out);
      break;
    case '"':
      fputs("&quot;", out);
      break;
    case '\'':
      fputs("&#39;", out);
      break;
    default:
      fputc(*s, out);
    }
  }
}

/* A JSON value as compact text, escaped; long values cut so a result with
 * a megabyte of stdout does not swamp the page. */
static void esc_json(const json_t *v, size_t max, FILE *out)
{
  if (v == NULL) {
    fputs("&mdash;", out);
    return;
  }
  char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
  fputs("<span class=\"j\">", out);
  if (s && strlen(s) > max) {
    s[max] = '\0';
    esc(s, out);
    fputs("&hellip;", out);
  } else {
    esc(s, out);
  }
  fputs("</span>", out);
  free(s);
}

static void cell(const char *s, FILE *out)
{
  fputs("<td>", out);
  esc(s, out);
  fputs("</td>", out);
}

/* "16:40:02" of "2026-12-01T16:40:02.105Z". */
static void time_cell(const char *ts, FILE *out)
{
  fputs("<td class=\"ts\">", out);
  if (ts && strlen(ts) >= 19)
    fprintf(out, "%.8s", ts + 11);
  fputs("</td>", out);
}

static const char STYLE[] =
    "body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#1a202c;"
    "background:#fff}h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid "
    "#cbd5e0;padding-bottom:4px;margin-top:28px}table{border-collapse:collapse;"
    "width:100%;font-size:13px}td,th{border:1px solid #e2e8f0;padding:4px 6px;"
    "text-align:left;vertical-align:top}th{background:#f7fafc}td."
    "ts{white-space:"
    "nowrap;font-family:monospace}.graph svg{max-width:100%;height:auto}"
    "pre{background:#f7fafc;padding:8px;overflow:auto;font-size:12px}"
    ".phase{font-weight:bold}.ok{color:#2f855a}.bad{color:#c53030}"
    ".meta{color:#4a5568;font-size:13px}"
    ".j{overflow-wrap:anywhere;font-family:monospace;font-size:12px}";

static void head(const char *incident, FILE *out)
{
  fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n", out);
  /* No script, no fetch: everything the page shows is in it. */
  fputs("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">\n<title>Incident ",
        out);
  esc(incident, out);
  fprintf(out, "</title>\n<style>%s</style></head><body>\n<h1>Incident ", STYLE);
  esc(incident, out);
  fputs("</h1>\n", out);
}

/* -- the graph ------------------------------------------------------------ */

/* Reads the whole of path; NULL on error. */
static char *slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  char chunk[8192];
  size_t n;
  while (m && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
    fwrite(chunk, 1, n, m);
  fclose(f);
  if (m)
    fclose(m);
  return buf;
}

/* The SVG Graphviz makes of dot, from its <svg> on; NULL when `dot` is not
 * on PATH or fails (the caller falls back to the text tree). */
static char *dot_svg(const char *dot)
{
  const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char dir[4096], in[4200], outp[4200];
  snprintf(dir, sizeof dir, "%s/runbook-report-XXXXXX", tmp);
  if (mkdtemp(dir) == NULL)
    return NULL;
  snprintf(in, sizeof in, "%s/graph.dot", dir);
  snprintf(outp, sizeof outp, "%s/graph.svg", dir);
  char *svg = NULL, *text = NULL;
  FILE *f = fopen(in, "w");
  if (f == NULL || fputs(dot, f) < 0 || fclose(f) != 0)
    goto out;
  char *argv[] = {"dot", "-Tsvg", "-o", outp, in, NULL};
  pid_t pid;
  int st = 0;
  if (posix_spawnp(&pid, "dot", NULL, NULL, argv, environ) != 0)
    goto out;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || (text = slurp(outp)) == NULL)
    goto out;
  char *start = strstr(text, "<svg");
  if (start)
    svg = strdup(start);
out:
  free(text);
  unlink(in);
  unlink(outp);
  rmdir(dir);
  return svg;
}

/* One picture of run's runbook (file) in format f, or NULL. */
static char *picture(const char *file, const rb_config *cfg, const char *state_dir,
                     const char *run, rb_show_format f, int report_fd)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (m == NULL)
    return NULL;
  int rc = rb_run_show(file, cfg, f, state_dir, run, m, report_fd);
  fclose(m);
  if (rc != RB_EXIT_OK) {
    free(buf);
    return NULL;
  }
  return buf;
}

static void graph(const json_t *start, const rb_config *cfg, const char *state_dir,
                  int report_fd, FILE *out)
{
  const char *run = s_of(start, "run"),
             *file = s_of(json_object_get(start, "detail"), "file");
  fputs("<h2>Run ", out);
  esc(run, out);
  fputs(": ", out);
  esc(s_of(json_object_get(start, "detail"), "title"), out);
  fputs("</h2>\n<p class=\"meta\">runbook ", out);
  esc(s_of(start, "runbook"), out);
  fputs(" (", out);
  esc(file, out);
  fputs("), mode ", out);
  esc(s_of(start, "mode"), out);
  fputs(", started by ", out);
  esc(s_of(start, "actor"), out);
  fputs("</p>\n", out);
  char *dot = file ? picture(file, cfg, state_dir, run, RB_SHOW_DOT, report_fd) : NULL;
  char *svg = dot ? dot_svg(dot) : NULL;
  if (svg) {
    fprintf(out, "<div class=\"graph\">%s</div>\n", svg);
  } else {
    char *text =
        file ? picture(file, cfg, state_dir, run, RB_SHOW_TEXT, report_fd) : NULL;
    fputs("<pre class=\"graph-text\">", out);
    esc(text ? text : "(the runbook file could not be loaded: no picture)", out);
    fputs("</pre>\n", out);
    free(text);
  }
  free(dot);
  free(svg);
}

/* -- the tables ----------------------------------------------------------- */

static void table_open(const char *title, const char *cols, FILE *out)
{
  fprintf(out, "<h2>%s</h2>\n<table><tr>", title);
  for (const char *c = cols; *c; c += strlen(c) + 1)
    fprintf(out, "<th>%s</th>", c);
  fputs("</tr>\n", out);
}

static void timeline(const json_t *brief, FILE *out)
{
  table_open("Timeline (UTC)", "Time\0Run\0Event\0", out);
  size_t i;
  json_t *r;
  json_array_foreach(brief, i, r)
  {
    fputs("<tr>", out);
    time_cell(s_of(r, "ts"), out);
    cell(s_of(r, "run"), out);
    cell(s_of(r, "text"), out);
    fputs("</tr>\n", out);
  }
  fputs("</table>\n", out);
}

static void decisions(const json_t *full, FILE *out)
{
  table_open("Decisions", "Time\0Step\0Question\0Value read\0Branch\0", out);
  size_t i;
  json_t *r;
  json_array_foreach(full, i, r)
  {
    const json_t *ev = json_object_get(r, "event"), *d = json_object_get(ev, "detail");
    if (!is(s_of(ev, "event"), "decision"))
      continue;
    fputs("<tr>", out);
    time_cell(s_of(r, "ts"), out);
    cell(s_of(ev, "step"), out);
    cell(s_of(d, "question"), out);
    fputs("<td>", out);
    esc_json(json_object_get(d, "value"), 200, out);
    if (json_object_get(d, "polls"))
      fprintf(out, " (%lld polls)",
              (long long)json_integer_value(json_object_get(d, "polls")));
    fputs("</td>", out);
    cell(s_of(d, "branch"), out);
    fputs("</tr>\n", out);
  }
  fputs("</table>\n", out);
}

/* The request an approval answered: the last one of its run and step. */
static const json_t *request_of(const json_t *full, size_t upto, const json_t *ev)
{
  for (size_t i = upto; i-- > 0;) {
    const json_t *q = json_object_get(json_array_get(full, i), "event");
    if (is(s_of(q, "event"), "approval_requested") &&
        is(s_of(q, "run"), s_of(ev, "run")) && is(s_of(q, "step"), s_of(ev, "step")))
      return json_object_get(q, "detail");
  }
  return NULL;
}

static void approvals(const json_t *full, FILE *out)
{
  table_open("Approvals", "Time\0Step\0Decision\0Who\0Comment\0What they saw\0", out);
  size_t i;
  json_t *r;
  json_array_foreach(full, i, r)
  {
    const json_t *ev = json_object_get(r, "event"), *d = json_object_get(ev, "detail");
    const char *e = s_of(ev, "event");
    if (!is(e, "approved") && !is(e, "denied"))
      continue;
    const json_t *req = request_of(full, i, ev);
    fputs("<tr>", out);
    time_cell(s_of(r, "ts"), out);
    cell(s_of(ev, "step"), out);
    fprintf(out, "<td class=\"%s\">%s</td><td>", is(e, "approved") ? "ok" : "bad", e);
    esc(s_of(d, "by"), out);
    fputs(" (", out);
    esc(s_of(d, "via"), out);
    fputs(")</td>", out);
    cell(s_of(d, "comment"), out);
    fputs("<td>", out);
    esc(s_of(req, "question"), out);
    if (json_object_get(req, "would_run")) {
      fputs("<br>would run: ", out);
      esc_json(json_object_get(req, "would_run"), 600, out);
    }
    fputs("</td></tr>\n", out);
  }
  fputs("</table>\n", out);
}

static void writes(const json_t *full, FILE *out)
{
  table_open("Writes", "Time\0Step\0What\0Result\0", out);
  size_t i;
  json_t *r;
  json_array_foreach(full, i, r)
  {
    const json_t *ev = json_object_get(r, "event"), *d = json_object_get(ev, "detail");
    const char *e = s_of(ev, "event");
    int planned = is(e, "would_run");
    if (!planned &&
        !(is(s_of(ev, "kind"), "action") && (is(e, "finished") || is(e, "failed"))))
      continue;
    fputs("<tr>", out);
    time_cell(s_of(r, "ts"), out);
    cell(s_of(ev, "step"), out);
    cell(planned ? "would run" : e, out);
    fprintf(out, "<td class=\"%s\">", is(e, "failed") ? "bad" : planned ? "" : "ok");
    if (planned)
      esc_json(d, 600, out);
    else if (json_object_get(d, "result"))
      esc_json(json_object_get(d, "result"), 600, out);
    else
      esc(s_of(d, "error") ? s_of(d, "error") : s_of(r, "text"), out);
    fputs("</td></tr>\n", out);
  }
  fputs("</table>\n", out);
}

static void statuses(const json_t *full, FILE *out)
{
  table_open("Status updates", "Time\0Phase\0Message\0Impact\0", out);
  size_t i;
  json_t *r;
  json_array_foreach(full, i, r)
  {
    const json_t *ev = json_object_get(r, "event"), *d = json_object_get(ev, "detail");
    if (!s_of(d, "phase") ||
        !(is(s_of(ev, "event"), "finished") || is(s_of(ev, "event"), "note")))
      continue;
    fputs("<tr>", out);
    time_cell(s_of(r, "ts"), out);
    fputs("<td class=\"phase\">", out);
    esc(s_of(d, "phase"), out);
    fputs("</td>", out);
    cell(s_of(d, "message"), out);
    cell(s_of(d, "impact"), out);
    fputs("</tr>\n", out);
  }
  fputs("</table>\n", out);
}

/* The page's detail of a brief row: an escalate step's page or a resolve. */
static const json_t *page_of(const json_t *r)
{
  const json_t *d = json_object_get(json_object_get(r, "event"), "detail");
  if (is(s_of(r, "what"), "escalation"))
    return json_object_get(d, "page");
  return is(s_of(r, "what"), "page") ? d : NULL;
}

/* Who was paged and when the alert cleared, apart from the long timeline: a
 * failed page is the row people must not miss. */
static void paging(const json_t *brief, FILE *out)
{
  table_open("Pages and alerts", "Time\0Run\0What\0", out);
  size_t i;
  json_t *r;
  json_array_foreach(brief, i, r)
  {
    const json_t *p = page_of(r);
    if (p == NULL && !is(s_of(r, "what"), "alert"))
      continue;
    int bad = p && !json_is_true(json_object_get(p, "ok"));
    fputs("<tr>", out);
    time_cell(s_of(r, "ts"), out);
    cell(s_of(r, "run"), out);
    fprintf(out, "<td class=\"%s\">", bad ? "bad" : "ok");
    esc(s_of(r, "text"), out);
    fputs("</td></tr>\n", out);
  }
  fputs("</table>\n", out);
}

/* -- the page ------------------------------------------------------------- */

static void page(const char *incident, const json_t *full, const json_t *brief,
                 const rb_config *cfg, const char *state_dir, int report_fd, FILE *out)
{
  head(incident, out);
  size_t i;
  json_t *r;
  json_array_foreach(full, i, r)
  {
    const json_t *ev = json_object_get(r, "event");
    if (is(s_of(ev, "kind"), "run") && is(s_of(ev, "event"), "started"))
      graph(ev, cfg, state_dir, report_fd, out);
    if (is(s_of(ev, "kind"), "run") && is(s_of(ev, "event"), "finished")) {
      fputs("<p class=\"meta\">run ", out);
      esc(s_of(ev, "run"), out);
      fputs(" ended: <b>", out);
      esc(s_of(json_object_get(ev, "detail"), "outcome"), out);
      fputs("</b></p>\n", out);
    }
  }
  timeline(brief, out);
  paging(brief, out);
  decisions(full, out);
  approvals(full, out);
  writes(full, out);
  statuses(full, out);
  fputs("</body></html>\n", out);
}

int rb_report_html(const char *tl_path, const char *incident, const rb_config *cfg,
                   const char *state_dir, const char *html_path, int report_fd)
{
  char err[1024], tmp[4200];
  int code = RB_EXIT_FAILED;
  FILE *out = NULL;
  json_t *full = rb_digest_load(tl_path, NULL, 1, err, sizeof err);
  json_t *brief = full ? rb_digest_load(tl_path, NULL, 0, err, sizeof err) : NULL;
  if (brief == NULL) {
    fprintf(stderr, "runbook: %s\n", err);
    goto out;
  }
  snprintf(tmp, sizeof tmp, "%s.tmp", html_path);
  if ((out = fopen(tmp, "w")) == NULL) {
    fprintf(stderr, "runbook: %s: %s\n", tmp, strerror(errno));
    goto out;
  }
  page(incident, full, brief, cfg, state_dir, report_fd, out);
  int bad = ferror(out);
  if (fclose(out) != 0 || bad || rename(tmp, html_path) != 0) {
    fprintf(stderr, "runbook: cannot write %s: %s\n", html_path, strerror(errno));
    unlink(tmp);
  } else {
    code = RB_EXIT_OK;
  }
out:
  json_decref(full);
  json_decref(brief);
  return code;
}
