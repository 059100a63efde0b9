/* netplugin.c: finds and loads the network plugins once per process and
 * checks each one's descriptor before anything of it is used. */
#include "runner/netplugin.h"

#include <dlfcn.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runner/base/util.h"

/* Process-wide on purpose: a plugin is loaded at most once and never
 * unloaded, like any shared library the binary links. */
static const rb_plugin *net_plugins[3];
static const char *const net_names[3] = {"http", "ssh", "serve"};

int rb_net_check(const rb_plugin *d, const char *plugin, const char *file, char *err,
                 size_t errlen)
{
  /* abi_version is read first and alone: it is the one field every ABI
   * keeps in place, the rest of another version's layout is unknown. */
  if (d->abi_version != RB_HOST_ABI_VERSION)
    return rb_err(err, errlen,
                  "%s was built for host ABI %d, but this runbook binary provides "
                  "ABI %d; install the plugins that came with this binary",
                  file, d->abi_version, RB_HOST_ABI_VERSION);
  if (d->name == NULL || strcmp(d->name, plugin) != 0)
    return rb_err(err, errlen, "%s describes itself as plugin '%s', not '%s'", file,
                  d->name ? d->name : "(none)", plugin);
  return 0;
}

/* Opens path and returns its checked descriptor, or NULL with err. */
static const rb_plugin *open_plugin(const char *path, const char *plugin, char *err,
                                    size_t errlen)
{
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    rb_err(err, errlen, "%s", dlerror());
    return NULL;
  }
  const rb_plugin *d = dlsym(h, RB_PLUGIN_SYMBOL);
  if (d == NULL)
    rb_err(err, errlen, "%s exports no %s (not a runbook plugin)", path,
           RB_PLUGIN_SYMBOL);
  else if (rb_net_check(d, plugin, path, err, errlen) == 0)
    return d;
  dlclose(h);
  return NULL;
}

static const rb_plugin *load(const char *plugin, char *err, size_t errlen)
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
    char why[512];
    const rb_plugin *d = open_plugin(path, plugin, why, sizeof why);
    if (d != NULL)
      return d;
    if (first_err[0] == '\0')
      snprintf(first_err, sizeof first_err, "%s", why);
  }
  rb_err(err, errlen,
         "cannot load the plugin runbook-%s.so (looked in %s and "
         "%s/../lib/runbook)%s%s",
         plugin, dir, dir, first_err[0] ? ": " : "", first_err);
  return NULL;
}

const rb_plugin *rb_net_plugin(const char *plugin, char *err, size_t errlen)
{
  size_t i = 0;
  while (i < 3 && strcmp(net_names[i], plugin) != 0)
    i++;
  if (i == 3) {
    rb_err(err, errlen, "no plugin named '%s'", plugin);
    return NULL;
  }
  if (net_plugins[i] == NULL)
    net_plugins[i] = load(plugin, err, errlen);
  return net_plugins[i];
}
