/* cli_test.c: `runbook test`: runs each scenario that states an `expect` as
 * a drill in its own process, reports one line each, JUnit XML, coverage. */
#define _XOPEN_SOURCE 700
#include "runner/cli_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/exec.h"
#include "runner/base/util.h"

typedef struct {
  char runbook[256]; /* the runbook's file name without .lua */
  char scenario[256];
  double ms;
  int ok;
  char msg[2048]; /* why it failed */
} test_case;

typedef struct {
  const rb_test_opts *o;
  char tmp[4096]; /* state dir of the drills, removed at the end */
  test_case *cases;
  size_t ncases, cap;
  json_t *taken;   /* runbook -> step -> raw answer key -> true */
  json_t *reached; /* runbook -> step -> true */
} test_run;

/* The name of a file without its directory and extension. */
static void base_name(const char *path, const char *ext, char *out, size_t len)
{
  const char *b = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  size_t n = strlen(b), e = strlen(ext);
  if (n > e && strcmp(b + n - e, ext) == 0)
    n -= e;
  snprintf(out, len, "%.*s", (int)n, b);
}

static int is_json(const struct dirent *d)
{
  size_t n = strlen(d->d_name);
  return n > 5 && d->d_name[0] != '.' && strcmp(d->d_name + n - 5, ".json") == 0;
}

/* -- one drill ------------------------------------------------------------ */

/* Runs `runbook drill` on one scenario with stdout (its --json events) and
 * stderr in files under the temp dir. Returns the exit code, or -1. */
static int run_drill(test_run *t, const char *rb, const char *scn, size_t idx, double *ms)
{
  char out[4200], err[4200], inc[64];
  snprintf(out, sizeof out, "%s/%zu.out", t->tmp, idx);
  snprintf(err, sizeof err, "%s/%zu.err", t->tmp, idx);
  snprintf(inc, sizeof inc, "test-%zu", idx);
  const char *argv[16];
  int n = 0;
  argv[n++] = t->o->self;
  if (t->o->config_path) {
    argv[n++] = "--config";
    argv[n++] = t->o->config_path;
  }
  const char *tail[] = {"--state-dir", t->tmp, "--no-color", "drill", rb,
                        "--scenario",  scn,    "--incident", inc,     "--json",
                        NULL};
  for (int i = 0; tail[i]; i++)
    argv[n++] = tail[i];
  argv[n] = NULL;
  fflush(stdout);
  int64_t t0 = rb_now_mono_us();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int fi = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fo < 0 || fe < 0 || fi < 0 || dup2(fi, 0) < 0 || dup2(fo, 1) < 0 ||
        dup2(fe, 2) < 0)
      _exit(127);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR)
      return -1;
  *ms = (double)(rb_now_mono_us() - t0) / 1000.0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void mark(json_t *sets, const char *runbook, const char *step, const char *key)
{
  json_t *r = json_object_get(sets, runbook);
  if (r == NULL)
    json_object_set_new(sets, runbook, r = json_object());
  if (key == NULL) {
    json_object_set_new(r, step, json_true());
    return;
  }
  json_t *s = json_object_get(r, step);
  if (s == NULL)
    json_object_set_new(r, step, s = json_object());
  json_object_set_new(s, key, json_true());
}

/* Records which answer each step took, from one event of the drill. */
static void note_event(test_run *t, const char *runbook, const json_t *ev)
{
  const char *step = json_string_value(json_object_get(ev, "step"));
  const char *name = json_string_value(json_object_get(ev, "event"));
  const json_t *d = json_object_get(ev, "detail");
  if (step == NULL || name == NULL)
    return;
  mark(t->reached, runbook, step, NULL);
  const json_t *v = json_object_get(d, "value");
  char key[256] = "";
  if (strcmp(name, "decision") == 0 && json_is_boolean(v))
    snprintf(key, sizeof key, "%s", json_is_true(v) ? "true" : "false");
  else if (strcmp(name, "decision") == 0 && json_is_string(v))
    snprintf(key, sizeof key, "%s", json_string_value(v));
  else if (strcmp(name, "decision") == 0 && json_is_integer(v))
    snprintf(key, sizeof key, "%lld", (long long)json_integer_value(v));
  else if (strcmp(name, "approved") == 0 || strcmp(name, "denied") == 0)
    snprintf(key, sizeof key, "%s", name);
  else if (strcmp(name, "failed") == 0 && json_object_get(d, "on_error"))
    snprintf(key, sizeof key, "error");
  if (key[0])
    mark(t->taken, runbook, step, key);
}

/* Reads the drill's events: its path and outcome (new reference, or NULL
 * when the run never ended), and the answers taken for coverage. */
static json_t *read_events(test_run *t, const char *runbook, size_t idx)
{
  char path[4200], line[1 << 16];
  snprintf(path, sizeof path, "%s/%zu.out", t->tmp, idx);
  FILE *f = fopen(path, "r");
  json_t *end = NULL;
  while (f && fgets(line, sizeof line, f)) {
    json_t *ev = json_loads(line, 0, NULL);
    const char *kind = json_string_value(json_object_get(ev, "kind"));
    const char *name = json_string_value(json_object_get(ev, "event"));
    if (kind && strcmp(kind, "run") == 0 && name &&
        (strcmp(name, "finished") == 0 || strcmp(name, "failed") == 0)) {
      json_decref(end);
      end = json_incref(json_object_get(ev, "detail"));
    } else if (ev) {
      note_event(t, runbook, ev);
    }
    json_decref(ev);
  }
  if (f)
    fclose(f);
  return end;
}

/* The first line the drill wrote to stderr, for a failure that is not a
 * mismatch (an invalid scenario, a crash). */
static void first_error(test_run *t, size_t idx, char *out, size_t len)
{
  char path[4200];
  snprintf(path, sizeof path, "%s/%zu.err", t->tmp, idx);
  FILE *f = fopen(path, "r");
  out[0] = '\0';
  if (f && fgets(out, (int)len, f))
    out[strcspn(out, "\n")] = '\0';
  if (f)
    fclose(f);
  const char *p = strncmp(out, "runbook: ", 9) == 0 ? out + 9 : out;
  memmove(out, p, strlen(p) + 1);
}

/* What the walk did that the scenario did not expect. */
static void mismatch(const json_t *expect, const json_t *end, char *out, size_t len)
{
  const char *want = json_string_value(json_object_get(expect, "outcome"));
  const char *got = json_string_value(json_object_get(end, "outcome"));
  const json_t *wp = json_object_get(expect, "path"), *gp = json_object_get(end, "path");
  size_t used = 0;
  out[0] = '\0';
  if (want && (got == NULL || strcmp(want, got) != 0))
    used = (size_t)snprintf(out, len, "expected outcome %s, got %s", want,
                            got ? got : "none");
  if (wp && used < len && !json_equal(wp, gp)) {
    char *w = json_dumps(wp, JSON_COMPACT), *g = gp ? json_dumps(gp, JSON_COMPACT) : NULL;
    snprintf(out + used, len - used, "%sexpected path %s, got %s", used ? "; " : "",
             w ? w : "?", g ? g : "none");
    free(w);
    free(g);
  }
  if (out[0] == '\0')
    snprintf(out, len, "the drill did not meet its expect");
}

static test_case *add_case(test_run *t)
{
  if (t->ncases == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    test_case *c = realloc(t->cases, cap * sizeof *c);
    if (c == NULL)
      return NULL;
    t->cases = c;
    t->cap = cap;
  }
  test_case *c = &t->cases[t->ncases++];
  memset(c, 0, sizeof *c);
  return c;
}

/* Runs one scenario file when it states an expect; prints its line. */
static void test_scenario(test_run *t, const char *rb, const char *runbook,
                          const char *scn)
{
  json_t *s = json_load_file(scn, 0, NULL);
  const json_t *expect = json_object_get(s, "expect");
  if (s && expect == NULL) { /* an exercise, not a test */
    json_decref(s);
    return;
  }
  test_case *c = add_case(t);
  if (c == NULL) {
    json_decref(s);
    return;
  }
  size_t idx = t->ncases;
  snprintf(c->runbook, sizeof c->runbook, "%s", runbook);
  base_name(scn, ".json", c->scenario, sizeof c->scenario);
  int code = run_drill(t, rb, scn, idx, &c->ms);
  json_t *end = read_events(t, runbook, idx);
  size_t steps = json_array_size(json_object_get(end, "path"));
  c->ok = code == RB_EXIT_OK;
  if (code == RB_EXIT_MISMATCH)
    mismatch(expect, end, c->msg, sizeof c->msg);
  else if (code != RB_EXIT_OK) {
    char e[1500];
    first_error(t, idx, e, sizeof e);
    snprintf(c->msg, sizeof c->msg, "exit %d: %s", code, e[0] ? e : "no message");
  }
  if (c->ok)
    printf("ok %s/%s (%zu step%s, %.1f ms)\n", runbook, c->scenario, steps,
           steps == 1 ? "" : "s", c->ms);
  else
    printf("FAIL %s/%s: %s\n", runbook, c->scenario, c->msg);
  json_decref(end);
  json_decref(s);
}

/* A link to another scenario of the same dir (default.json ->
 * bad-deploy.json) is a second name, not a second test. */
static int is_alias(const char *sdir, const char *scn)
{
  struct stat st;
  char a[PATH_MAX], b[PATH_MAX];
  if (lstat(scn, &st) != 0 || !S_ISLNK(st.st_mode) || realpath(scn, a) == NULL ||
      realpath(sdir, b) == NULL)
    return 0;
  char *slash = strrchr(a, '/');
  return slash && (size_t)(slash - a) == strlen(b) && strncmp(a, b, strlen(b)) == 0;
}

/* Every scenarios/<runbook>/<S>.json next to the runbook file, by name. */
static void test_runbook(test_run *t, const char *rb)
{
  char runbook[256], dir[4096], sdir[4500];
  base_name(rb, ".lua", runbook, sizeof runbook);
  snprintf(dir, sizeof dir, "%s", rb);
  snprintf(sdir, sizeof sdir, "%s/scenarios/%s", dirname(dir), runbook);
  struct dirent **names = NULL;
  int n = scandir(sdir, &names, is_json, alphasort);
  for (int i = 0; i < n; i++) {
    char scn[4800];
    snprintf(scn, sizeof scn, "%s/%s", sdir, names[i]->d_name);
    if (!is_alias(sdir, scn))
      test_scenario(t, rb, runbook, scn);
    free(names[i]);
  }
  free(names);
}

/* -- coverage ------------------------------------------------------------- */

static int null_emit(rb_host *h, const char *event, json_t *detail)
{
  (void)h;
  (void)event;
  json_decref(detail);
  return 0;
}

static void print_problem(void *arg, const char *text, int is_warning)
{
  (void)arg;
  fprintf(stderr, "%s%s\n", is_warning ? "warning: " : "", text);
}

/* Did a drill take key at s? A decision whose value has no branch of its
 * own went to "default". */
static int took(const rb_step *s, const json_t *keys, const char *key)
{
  if (json_object_get(keys, key))
    return 1;
  if (strcmp(key, "default") != 0)
    return 0;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)keys, k, v)
  {
    (void)v;
    int own = strcmp(k, "error") == 0;
    for (size_t i = 0; i < s->nbranches && !own; i++)
      own = strcmp(s->branches[i].key, k) == 0;
    if (!own)
      return 1;
  }
  return 0;
}

/* Prints the (step, answer) branches and the steps no scenario took;
 * returns how many lines it printed. */
static int cover_runbook(test_run *t, const char *rb, int rfd)
{
  char runbook[256], err[4096];
  base_name(rb, ".lua", runbook, sizeof runbook);
  rb_host host;
  memset(&host, 0, sizeof host);
  host.config = t->o->cfg;
  host.emit = null_emit;
  sb_state *sb = NULL;
  rb_model *m = NULL;
  if (rb_runbook_open(rb, t->o->cfg, &host, print_problem, NULL, rfd, &sb, &m, err,
                      sizeof err) != RB_EXIT_OK) {
    printf("coverage %s: cannot load: %.*s\n", runbook, (int)strcspn(err, "\n"), err);
    return 1;
  }
  const json_t *reached = json_object_get(t->reached, runbook);
  const json_t *taken = json_object_get(t->taken, runbook);
  int lines = 0;
  for (size_t i = 0; i < m->nsteps; i++) {
    const rb_step *s = &m->steps[i];
    if (json_object_get(reached, s->id) == NULL) {
      printf("coverage %s: step %s is reached by no scenario\n", runbook, s->id);
      lines++;
      continue;
    }
    const json_t *keys = json_object_get(taken, s->id);
    for (size_t b = 0; b < s->nbranches; b++) {
      if (took(s, keys, s->branches[b].key))
        continue;
      printf("coverage %s: (%s, %s) is taken by no scenario (-> %s)\n", runbook, s->id,
             s->branches[b].key, s->branches[b].target);
      lines++;
    }
    if (s->on_error && !took(s, keys, "error")) {
      printf("coverage %s: (%s, error) is taken by no scenario (-> %s)\n", runbook, s->id,
             s->on_error);
      lines++;
    }
  }
  rb_model_free(m);
  sb_free(sb);
  return lines;
}

/* -- JUnit and the run ---------------------------------------------------- */

static void xml_text(FILE *f, const char *s)
{
  for (; *s; s++) {
    switch (*s) {
    case '<':
      fputs("&lt;", f);
      break;
    case '>':
      fputs("&gt;", f);
      break;
    case '&':
      fputs("&amp;", f);
      break;
    case '"':
      fputs("&quot;", f);
      break;
    default:
      if ((unsigned char)*s >= 0x20 || *s == '\t')
        fputc(*s, f);
    }
  }
}

static int write_junit(const test_run *t, const char *path, size_t failed)
{
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  rb_mkdirs(dirname(dir));
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    fprintf(stderr, "runbook: --junit %s: %s\n", path, strerror(errno));
    return -1;
  }
  double total = 0;
  for (size_t i = 0; i < t->ncases; i++)
    total += t->cases[i].ms;
  fprintf(f,
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
          "  <testsuite name=\"runbook test\" tests=\"%zu\" failures=\"%zu\" "
          "errors=\"0\" time=\"%.4f\">\n",
          t->ncases, failed, total / 1000.0);
  for (size_t i = 0; i < t->ncases; i++) {
    const test_case *c = &t->cases[i];
    fputs("    <testcase classname=\"", f);
    xml_text(f, c->runbook);
    fputs("\" name=\"", f);
    xml_text(f, c->scenario);
    fprintf(f, "\" time=\"%.4f\"", c->ms / 1000.0);
    if (c->ok) {
      fputs("/>\n", f);
      continue;
    }
    fputs(">\n      <failure message=\"", f);
    xml_text(f, c->msg);
    fputs("\"/>\n    </testcase>\n", f);
  }
  fputs("  </testsuite>\n</testsuites>\n", f);
  return fclose(f) == 0 ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* One line per scenario in <state_dir>/tests.jsonl, each in one write()
 * on an O_APPEND descriptor so concurrent test runs never interleave. A
 * failure to record is a warning: the tests themselves ran. */
static void record_results(const test_run *t)
{
  char path[4200], ts[32];
  if (t->o->state_dir == NULL || rb_mkdirs(t->o->state_dir) != 0 ||
      rb_fmt(path, sizeof path, "%s/tests.jsonl", t->o->state_dir) != 0)
    return;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    fprintf(stderr, "runbook: test: cannot record results in %s: %s\n", path,
            strerror(errno));
    return;
  }
  rb_format_ts(rb_now_wall_ms(), ts, sizeof ts);
  for (size_t i = 0; i < t->ncases; i++) {
    const test_case *c = &t->cases[i];
    json_t *line = json_pack("{s:s, s:s, s:s, s:b, s:f}", "ts", ts, "runbook", c->runbook,
                             "scenario", c->scenario, "ok", c->ok, "ms", c->ms);
    char *text = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (text == NULL)
      break;
    size_t n = strlen(text);
    text[n] = '\n'; /* replaces the NUL: written by length */
    ssize_t w = write(fd, text, n + 1);
    free(text);
    if (w != (ssize_t)(n + 1)) {
      fprintf(stderr, "runbook: test: cannot record results in %s\n", path);
      break;
    }
  }
  close(fd);
}

int rb_cli_test_run(const rb_test_opts *o, int report_fd)
{
  test_run t;
  memset(&t, 0, sizeof t);
  t.o = o;
  const char *tmpdir = getenv("TMPDIR");
  snprintf(t.tmp, sizeof t.tmp, "%s/runbook-test-XXXXXX",
           tmpdir && *tmpdir ? tmpdir : "/tmp");
  if (mkdtemp(t.tmp) == NULL) {
    fprintf(stderr, "runbook: test: cannot create %s: %s\n", t.tmp, strerror(errno));
    return RB_EXIT_FAILED;
  }
  t.taken = json_object();
  t.reached = json_object();
  for (size_t i = 0; i < o->nrunbooks; i++)
    test_runbook(&t, o->runbooks[i]);
  size_t failed = 0;
  for (size_t i = 0; i < t.ncases; i++)
    failed += !t.cases[i].ok;
  int code = failed ? RB_EXIT_FAILED : RB_EXIT_OK;
  if (t.ncases == 0) {
    fprintf(stderr, "runbook: test: no scenario with an \"expect\" found\n");
    code = RB_EXIT_FAILED;
  }
  if (o->coverage)
    for (size_t i = 0; i < o->nrunbooks; i++)
      cover_runbook(&t, o->runbooks[i], report_fd);
  printf("%zu passed, %zu failed\n", t.ncases - failed, failed);
  record_results(&t);
  fflush(stdout);
  if (o->junit && write_junit(&t, o->junit, failed) != 0)
    code = RB_EXIT_FAILED;
  nftw(t.tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  json_decref(t.taken);
  json_decref(t.reached);
  free(t.cases);
  return code;
}
