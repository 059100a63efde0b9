/* netplugin.c: finds and loads the network plugins once per process. */
#include "runner/netplugin.h"

#include <dlfcn.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runner/base/util.h"

/* Process-wide on purpose: a plugin is loaded at most once and never
 * unloaded, like any shared library the binary links. */
static void *net_handles[3];
static const char *const net_names[3] = {"http", "ssh", "serve"};

static void *load(const char *plugin, char *err, size_t errlen)
{
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    rb_err(err, errlen, "cannot find the runbook binary (/proc/self/exe)");
    return NULL;
  }
  exe[n] = '\0';
  char *dir = dirname(exe);
  const char *const where[] = {"", "/../lib/runbook"};
  char first_err[512] = "";
  for (size_t i = 0; i < sizeof where / sizeof *where; i++) {
    char path[4200];
    if (snprintf(path, sizeof path, "%s%s/runbook-%s.so", dir, where[i], plugin) >=
        (int)sizeof path)
      continue;
    if (access(path, R_OK) != 0)
      continue;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h != NULL)
      return h;
    if (first_err[0] == '\0')
      snprintf(first_err, sizeof first_err, "%s", dlerror());
  }
  rb_err(err, errlen,
         "cannot load the plugin runbook-%s.so (looked in %s and "
         "%s/../lib/runbook)%s%s",
         plugin, dir, dir, first_err[0] ? ": " : "", first_err);
  return NULL;
}

void *rb_net_symbol(const char *plugin, const char *name, char *err, size_t errlen)
{
  size_t i = 0;
  while (i < 3 && strcmp(net_names[i], plugin) != 0)
    i++;
  if (i == 3) {
    rb_err(err, errlen, "no plugin named '%s'", plugin);
    return NULL;
  }
  if (net_handles[i] == NULL && (net_handles[i] = load(plugin, err, errlen)) == NULL)
    return NULL;
  void *sym = dlsym(net_handles[i], name);
  if (sym == NULL)
    rb_err(err, errlen, "runbook-%s.so has no %s", plugin, name);
  return sym;
}
