/* lint.c: the static pass of `runbook check`: Debian's luacheck (lua-check)
 * over the runbook, with a standard generated from the sandbox's globals. */
#include "runner/lint.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/base/buf.h"
#include "runner/loader.h"
#include "runner/modules.h"
#include "runner/base/util.h"
#include "sandbox/sandbox.h"

extern char **environ;

/* Runs under luacheck's own interpreter, with luacheck's library: its
 * checker reports undeclared globals against our standard, and its parser
 * gives the tree in which writes inside check and wait functions are found.
 * Prints "skip\tWHY" or one "warn\tLINE\tMESSAGE" per finding. */
static const char lint_script[] =
    "local path, spec = arg[1], arg[2]\n"
    "local ok, luacheck = pcall(require, 'luacheck')\n"
    "if not ok then print('skip\\tluacheck\\'s Lua library does not load: ' .. "
    "tostring(luacheck):gsub('\\n.*', '')) return end\n"
    "local parser, decoder = require 'luacheck.parser', require 'luacheck.decoder'\n"
    "local rg = {}\n"
    "for name in spec:gmatch('[^,]+') do\n"
    "  local g, f = name:match('^([^.]+)%.(.+)$')\n"
    "  if f == '*' then rg[g] = { other_fields = true }\n"
    "  elseif g then rg[g] = rg[g] or {}; rg[g].fields = rg[g].fields or {}\n"
    "    rg[g].fields[f] = {}\n"
    "  elseif rg[name] == nil then rg[name] = {} end\n"
    "end\n"
    "local fh = assert(io.open(path, 'rb')); local src = fh:read('*a'); fh:close()\n"
    "local report = luacheck.check_strings({ src }, { std = { read_globals = rg } })[1]\n"
    "if report.fatal then return end -- the loader already said why\n"
    "for _, e in ipairs(report) do\n"
    "  if e.code:match('^11') or e.code:match('^14') then\n"
    "    print(('warn\\t%d\\t%s'):format(e.line, luacheck.get_message(e)))\n"
    "  end\n"
    "end\n"
    "local writes = { ['cmd.run'] = 1, ['ssh.run'] = 1, ['http.post'] = 1, ['http.put'] "
    "= 1,\n"
    "  ['http.patch'] = 1, ['http.delete'] = 1, ['flags.set'] = 1,\n"
    "  ['deploy.rollback'] = 1, ['notify.post'] = 1, ['paging.send'] = 1 }\n"
    "local ast = parser.parse(decoder.decode(src))\n"
    "-- stdlib modules are globals too (json.encode without a require)\n"
    "local alias = { cmd = 'cmd', ssh = 'ssh', http = 'http', flags = 'flags',\n"
    "  deploy = 'deploy', notify = 'notify', paging = 'paging' }\n"
    "local function required(e)\n"
    "  if type(e) == 'table' and e.tag == 'Call' and e[1].tag == 'Id' and e[1][1] == "
    "'require'\n"
    "    and e[2] and e[2].tag == 'String' then return e[2][1] end\n"
    "end\n"
    "local function walk(n, f)\n"
    "  if type(n) ~= 'table' then return end\n"
    "  f(n)\n"
    "  for i = 1, #n do walk(n[i], f) end\n"
    "end\n"
    "walk(ast, function(n)\n"
    "  if (n.tag == 'Local' or n.tag == 'Set') and n[2] then\n"
    "    for i, id in ipairs(n[1]) do\n"
    "      local m = required(n[2][i])\n"
    "      if m and id.tag == 'Id' then alias[id[1]] = m end\n"
    "    end\n"
    "  end\n"
    "end)\n"
    "local function calls_in(fn, kind, step)\n"
    "  walk(fn, function(n)\n"
    "    if n.tag ~= 'Call' then return end\n"
    "    local c = n[1]\n"
    "    if c.tag == 'Index' and c[1].tag == 'Id' and c[2].tag == 'String' then\n"
    "      local m = alias[c[1][1]]\n"
    "      local op = m and (m .. '.' .. c[2][1])\n"
    "      if op and writes[op] then\n"
    "        print(('warn\\t%d\\t%s \\'%s\\' calls %s, a write: a %s must stay "
    "read-only'):format(\n"
    "          n.line, kind, step, op, kind))\n"
    "      end\n"
    "    end\n"
    "  end)\n"
    "end\n"
    "walk(ast, function(n)\n"
    "  if n.tag ~= 'Pair' or n[1].tag ~= 'String' then return end\n"
    "  local v = n[2]\n"
    "  if v.tag ~= 'Call' or v[1].tag ~= 'Id' or not v[2] or v[2].tag ~= 'Table' then "
    "return end\n"
    "  local kind = v[1][1]\n"
    "  if kind ~= 'check' and kind ~= 'wait' then return end\n"
    "  for _, p in ipairs(v[2]) do\n"
    "    if p.tag == 'Pair' and p[1].tag == 'String' and p[2].tag == 'Function' then\n"
    "      calls_in(p[2], kind, n[1][1])\n"
    "    end\n"
    "  end\n"
    "end)\n";

/* The interpreter luacheck runs under, from its #! line ("lua5.1"). */
static int lint_interpreter(char *out, size_t len)
{
  const char *path = getenv("PATH");
  char dirs[4096], exe[4200], line[256];
  snprintf(dirs, sizeof dirs, "%s", path ? path : "/usr/bin:/bin");
  char *save = NULL;
  FILE *f = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d && !f; d = strtok_r(NULL, ":", &save)) {
    snprintf(exe, sizeof exe, "%s/luacheck", d);
    if (access(exe, X_OK) == 0)
      f = fopen(exe, "re");
  }
  if (f == NULL)
    return -1;
  int ok = fgets(line, sizeof line, f) != NULL && strncmp(line, "#!", 2) == 0;
  fclose(f);
  if (!ok)
    return -1;
  line[strcspn(line, "\r\n")] = '\0';
  char *interp = line + 2;
  if (strncmp(interp, "/usr/bin/env ", 13) == 0)
    interp += 13;
  interp[strcspn(interp, " ")] = '\0';
  return rb_fmt(out, len, "%s", interp);
}

static void lint_add(rb_buf *b, int *oom, const char *a, const char *c)
{
  if (rb_buf_addf(b, "%s%s%s,", a, c ? "." : "", c ? c : "") != RB_BUF_OK)
    *oom = 1;
}

/* "print,string.format,..." : every global of a fresh sandbox with the DSL,
 * and the fields of those that are tables (string.fromat is a typo too). */
static char *lint_globals(void)
{
  sb_limits lim;
  memset(&lim, 0, sizeof lim);
  lim.memory_bytes = 16u << 20;
  char err[256];
  sb_state *sb = sb_new(&lim, err, sizeof err);
  if (sb == NULL)
    return NULL;
  rb_loader_install_dsl(sb);
  lua_State *L = sb_lua(sb);
  rb_buf b;
  int oom = 0;
  rb_buf_init(&b, SIZE_MAX);
  lua_pushglobaltable(L);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *g = lua_tostring(L, -2);
      lint_add(&b, &oom, g, NULL);
      if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
          if (lua_type(L, -2) == LUA_TSTRING)
            lint_add(&b, &oom, g, lua_tostring(L, -2));
          lua_pop(L, 1);
        }
      }
    }
    lua_pop(L, 1);
  }
  sb_free(sb);
  /* require's modules, which the sandbox also resolves as globals */
  for (const sb_module *const *t = rb_stdlib_modules; *t; t++)
    for (const sb_module *m = *t; m->name; m++)
      lint_add(&b, &oom, m->name, "*");
  if (oom) {
    rb_buf_free(&b);
    return NULL;
  }
  return rb_buf_take(&b);
}

/* Starts interp with the script on stdin; *out_fd reads its stdout. */
static pid_t lint_spawn(const char *interp, const char *path, const char *globals,
                        int *out_fd)
{
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0)
    return -1;
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, out[1], 2);
  char *argv[] = {(char *)interp, "-", (char *)path, (char *)globals, NULL};
  pid_t pid = -1;
  if (posix_spawnp(&pid, interp, &fa, NULL, argv, environ) != 0)
    pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  if (pid > 0) {
    /* The script is far smaller than a pipe buffer: this write cannot block. */
    ssize_t n = write(in[1], lint_script, sizeof lint_script - 1);
    (void)n;
  }
  close(in[1]);
  if (pid < 0) {
    close(out[0]);
    return -1;
  }
  *out_fd = out[0];
  return pid;
}

/* Reads the script's answer; prints warnings. Returns the count, or -1
 * when the pass was skipped (the reason printed). */
static int lint_read(int fd, const char *path, FILE *out)
{
  FILE *f = fdopen(fd, "r");
  if (f == NULL) {
    close(fd);
    return -1;
  }
  char line[2048], other[512] = "";
  int warnings = 0, skipped = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "skip\t", 5) == 0) {
      fprintf(out, "%s: static pass skipped: %s\n", path, line + 5);
      skipped = 1;
    } else if (strncmp(line, "warn\t", 5) == 0) {
      char *msg = strchr(line + 5, '\t');
      if (msg == NULL)
        continue;
      *msg++ = '\0';
      fprintf(out, "%s:%s: warning: %s\n", path, line + 5, msg);
      warnings++;
    } else if (other[0] == '\0') {
      snprintf(other, sizeof other, "%.400s", line); /* the interpreter says why */
    }
  }
  fclose(f);
  if (other[0] && !skipped) {
    fprintf(out, "%s: static pass skipped: luacheck failed: %s\n", path, other);
    skipped = 1;
  }
  return skipped ? -1 : warnings;
}

int rb_lint_runbook(const char *path, FILE *out)
{
  char interp[256];
  if (lint_interpreter(interp, sizeof interp) != 0) {
    fprintf(out,
            "%s: static pass skipped: luacheck is not installed (Debian package "
            "lua-check); undeclared globals and writes in checks were not looked for\n",
            path);
    return -1;
  }
  char *globals = lint_globals();
  if (globals == NULL) {
    fprintf(out, "%s: static pass skipped: out of memory\n", path);
    return -1;
  }
  int fd = -1;
  pid_t pid = lint_spawn(interp, path, globals, &fd);
  free(globals);
  if (pid < 0) {
    fprintf(out, "%s: static pass skipped: cannot start %s: %s\n", path, interp,
            strerror(errno));
    return -1;
  }
  int n = lint_read(fd, path, out);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (n >= 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    /* the script prints its findings and exits 0; anything else is a crash */
    fprintf(out, "%s: static pass skipped: luacheck failed (%s exited %d)\n", path,
            interp, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return -1;
  }
  return n;
}
