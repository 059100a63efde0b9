#!/usr/bin/env bash
# bench/core.sh: the executor's own costs.
#  1. cold start of `runbook drill checkout-errors` (whole process, median of
#     many runs; a drill makes its timeline durable once, at the end);
#  2. per-step overhead on a generated 1000-step runbook, timeline fsync'd,
#     with the state dir on disk and on tmpfs (/dev/shm).
# Usage: bench/core.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build}/runbook
[ -x "$bin" ] || { echo "build first: cmake -S . -B build && cmake --build build" >&2; exit 2; }
command -v hyperfine >/dev/null || apt-get install -y -q hyperfine >/dev/null
work=$(mktemp -d /var/tmp/rb-bench-XXXXXX)
shm=$(mktemp -d /dev/shm/rb-bench-XXXXXX)
trap 'rm -rf "$work" "$shm"' EXIT

median_ms() { # hyperfine json -> median in ms
  python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$1"
}

echo "== cold drill of checkout-errors (state dir on disk; a drill fsyncs its timeline once, at the end)"
hyperfine -N --warmup 5 --runs 200 --export-json "$work/cold.json" \
  "$bin --state-dir $work/state drill checkout-errors --quiet" >/dev/null
cold=$(median_ms "$work/cold.json")
echo "median ${cold} ms over 200 runs"

gen() { # gen N FILE: a runbook of N chained actions and a terminal step
  local n=$1 f=$2
  {
    echo 'return runbook { name = "steps", title = "Generated", start = "s1", steps = {'
    for ((i = 1; i <= n; i++)); do
      echo "  s$i = action { title = \"Step $i\", run = function(ctx) return $i end, next = \"s$((i + 1))\" },"
    done
    echo "  s$((n + 1)) = resolved { title = \"Done\" },"
    echo '} }'
  } >"$f"
}
gen 1000 "$work/steps1000.lua"
gen 1 "$work/steps1.lua"

for where in disk tmpfs; do
  dir=$work/state-$where
  [ $where = tmpfs ] && dir=$shm/state
  echo "== 1000-step runbook, state dir on $where ($dir)"
  hyperfine -N --warmup 2 --runs 15 --export-json "$work/s1000-$where.json" \
    "$bin --state-dir $dir exec $work/steps1000.lua --quiet" >/dev/null
  hyperfine -N --warmup 2 --runs 15 --export-json "$work/s1-$where.json" \
    "$bin --state-dir $dir exec $work/steps1.lua --quiet" >/dev/null
  big=$(median_ms "$work/s1000-$where.json")
  small=$(median_ms "$work/s1-$where.json")
  per=$(python3 -c "print('%.1f' % (($big - $small) * 1000 / 999))")
  echo "1000 steps: ${big} ms, 1 step: ${small} ms -> ${per} us per step"
done
