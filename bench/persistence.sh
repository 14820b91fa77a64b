#!/usr/bin/env bash
# Lab 4a's comparison: what each Redis persistence mode costs in throughput,
# and how much work is redone after kill -9 of Redis.
#
#   bench/persistence.sh [WCLAB] [CORPUS]
#
# For each mode it runs the same job twice with 2 workers: once untouched
# (throughput), once with Redis killed 3 times at seeded moments and
# restarted from what the mode persisted (tasks recomputed). The corpus has
# many small files, so that commits (and hence Redis writes) are frequent.
set -euo pipefail
wclab=${1:-target/release/wclab}
corpus=${2:-out/bench-persistence-corpus}
[ -d "$corpus" ] || "$wclab" gen text --out "$corpus" --files 400 --size 64KiB --seed 4 2>/dev/null

field() { grep -o "\"$1\": *[0-9.]*" | head -1 | sed 's/.*: *//'; }

run() { # label, extra args...
  local label=$1; shift
  local clean crash
  clean=$("$wclab" run --input "$corpus" --workers 2 --lease 1s --json -k 0 "$@" 2>/dev/null)
  crash=$("$wclab" run --input "$corpus" --workers 2 --lease 1s --json -k 0 "$@" \
            --chaos-redis-kills 3 --chaos-seed 7 2>/dev/null)
  printf "| %-34s | %8.1f | %7.2f | %7s | %10s |\n" "$label" \
    "$(echo "$clean" | field mb_per_s)" "$(echo "$clean" | field wall_seconds)" \
    "$(echo "$crash" | field redis_crashes)" "$(echo "$crash" | field tasks_recomputed)"
}

echo "corpus: $(find "$corpus" -type f | wc -l) files, $(du -sh "$corpus" | cut -f1); $(nproc) cores; $(redis-server --version | cut -d' ' -f3)"
echo
echo "| persistence                        |     MB/s |  wall s | crashes | recomputed |"
echo "|------------------------------------|---------:|--------:|--------:|-----------:|"
run "none (crash loses everything)"
run "BGSAVE every 1s" --checkpoint-every 1s
run "BGSAVE every 250ms" --checkpoint-every 250ms
run "AOF appendfsync everysec" --redis-config "appendonly yes" --redis-config "appendfsync everysec"
run "AOF appendfsync always" --redis-config "appendonly yes" --redis-config "appendfsync always"
