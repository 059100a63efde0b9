/* preflight.c: the dry-run check of a local command: is argv[0] an
 * executable file where execvp would look for it. */
#include "stdlib/preflight.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 0 when path is a regular file we may execute. */
static int runnable(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0 ? 0 : -1;
}

const char *rb_preflight_command(const char *prog, const char *cwd, char *buf, size_t len)
{
  char path[4096];
  if (prog[0] == '\0') {
    snprintf(buf, len, "empty command name");
    return buf;
  }
  if (strchr(prog, '/') != NULL) {
    if (prog[0] != '/' && cwd != NULL)
      snprintf(path, sizeof path, "%s/%s", cwd, prog);
    else
      snprintf(path, sizeof path, "%s", prog);
    if (runnable(path) == 0)
      return NULL;
    snprintf(buf, len, "'%s': %s", prog,
             access(path, F_OK) == 0 ? "not an executable file" : "no such file");
    return buf;
  }
  const char *env = getenv("PATH");
  /* execvp's default when PATH is unset */
  const char *p = env != NULL ? env : "/bin:/usr/bin";
  for (;;) {
    size_t n = strcspn(p, ":");
    /* an empty entry is the current directory */
    snprintf(path, sizeof path, "%.*s%s%s", (int)n, n ? p : ".", "/", prog);
    if (runnable(path) == 0)
      return NULL;
    if (p[n] == '\0')
      break;
    p += n + 1;
  }
  snprintf(buf, len, "'%s': command not found on PATH", prog);
  return buf;
}
