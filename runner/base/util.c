/* util.c: clocks, timestamps, durations, ids, checked formatting and the
 * "did you mean" suggestion shared by the runner and the stdlib. */
#include "runner/base/util.h"

#include <ctype.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;

void rb_stop_request(void)
{
  g_stop = 1;
}

int rb_stop_requested(void)
{
  return g_stop;
}

int64_t rb_now_mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rb_now_mono_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t rb_now_wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rb_format_ts(int64_t wall_ms, char *buf, size_t len)
{
  time_t secs = (time_t)(wall_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)(wall_ms % 1000));
}

int rb_parse_duration(const char *s, int64_t *out_ms, char *err, size_t errlen)
{
  if (s == NULL || *s == '\0')
    return rb_err(err, errlen, "empty duration");
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno != 0 || v < 0)
    return rb_err(err, errlen, "bad duration '%s' (want e.g. 500ms, 15s, 5m, 2h)", s);
  double mult;
  if (*end == '\0' || strcmp(end, "s") == 0)
    mult = 1000;
  else if (strcmp(end, "ms") == 0)
    mult = 1;
  else if (strcmp(end, "m") == 0)
    mult = 60 * 1000;
  else if (strcmp(end, "h") == 0)
    mult = 3600 * 1000;
  else if (strcmp(end, "d") == 0)
    mult = 86400 * 1000;
  else
    return rb_err(err, errlen,
                  "bad duration '%s': unknown unit '%s' (use ms, s, m, h, d)", s, end);
  double ms = v * mult;
  if (ms > 365.0 * 86400 * 1000)
    return rb_err(err, errlen, "duration '%s' is longer than a year", s);
  *out_ms = (int64_t)(ms + 0.5);
  return 0;
}

void rb_format_elapsed(int64_t us, char *buf, size_t len)
{
  if (us < 1000)
    snprintf(buf, len, "%lld us", (long long)us);
  else if (us < 1000000)
    snprintf(buf, len, "%.1f ms", us / 1000.0);
  else if (us < 60 * 1000000LL)
    snprintf(buf, len, "%.2f s", us / 1e6);
  else
    snprintf(buf, len, "%lldm%02llds", (long long)(us / 60000000),
             (long long)((us / 1000000) % 60));
}

int rb_fmt(char *out, size_t len, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, len, fmt, ap);
  va_end(ap);
  return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

int rb_err(char *err, size_t len, const char *fmt, ...)
{
  if (err != NULL && len > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
  }
  return -1;
}

void rb_new_id(char *buf, size_t len)
{
  unsigned char rnd[3] = {0};
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
    int64_t t = rb_now_mono_us() ^ (int64_t)getpid();
    memcpy(rnd, &t, sizeof rnd);
  }
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  snprintf(buf, len, "%04d%02d%02d-%02d%02d%02d-%02x%02x%02x", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rnd[0], rnd[1],
           rnd[2]);
}

char *rb_trim(char *s)
{
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1]))
    s[--n] = '\0';
  return s;
}

int rb_mkdirs(const char *path)
{
  char tmp[4096];
  if (rb_fmt(tmp, sizeof tmp, "%s", path) != 0)
    return -ENAMETOOLONG;
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
    return -errno;
  return 0;
}

/* Optimal string alignment distance (a swap of neighbours counts as one),
 * capped: names longer than 63 bytes are never suggested. */
static int edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63)
    return 99;
  int d[64][64];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best)
        best = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + (a[i - 1] != b[j - 1]) < best)
        best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[la][lb];
}

const char *rb_suggest(const char *word, const char *const *cands)
{
  const char *best = NULL;
  int dist = 3;
  for (; cands && *cands; cands++) {
    int d = edit_distance(word, *cands);
    /* Two edits of a three-letter word is another word, not a typo. */
    if (d < dist && d * 2 < (int)strlen(*cands)) {
      dist = d;
      best = *cands;
    }
  }
  return best;
}
