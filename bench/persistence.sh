#!/usr/bin/env bash
# Lab 4a's comparison: what each Redis persistence mode costs in throughput,
# and how much work is redone after kill -9 of Redis.
#
#   bench/persistence.sh [WCLAB] [CORPUS] [REPEAT]
#
# For each mode it runs the same job REPEAT times (default 3) untouched
# (throughput: the median is shown), and REPEAT times with Redis killed 3
# times at seeded points of the job and restarted from what the mode
# persisted (tasks recomputed: the median). Workers commit every task on its
# own (--commit-batch 1) and the corpus has many small files, so that
# commits, i.e. Redis writes, are as frequent as in the seed's design: the
# cost of persisting them is what is measured.
set -euo pipefail
wclab=${1:-target/release/wclab}
corpus=${2:-out/bench-persistence-corpus}
repeat=${3:-3}
[ -d "$corpus" ] || "$wclab" gen text --out "$corpus" --files 400 --size 64KiB --seed 4 2> /dev/null

field() { grep -o "\"$1\": *[0-9.]*" | head -1 | sed 's/.*: *//'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

run() { # label, extra args...
  local label=$1 i mbps=() wall=() recomputed=() out
  shift
  for i in $(seq 1 "$repeat"); do
    out=$("$wclab" run --input "$corpus" --workers 2 --lease 1s --commit-batch 1 --json -k 0 "$@" 2> /dev/null)
    mbps+=("$(echo "$out" | field mb_per_s)")
    wall+=("$(echo "$out" | field wall_seconds)")
    out=$("$wclab" run --input "$corpus" --workers 2 --lease 1s --commit-batch 1 --json -k 0 "$@" \
      --chaos-redis-kills 3 --chaos-seed "$i" 2> /dev/null)
    [ "$(echo "$out" | field redis_crashes)" = 3 ] || { echo "a crash run did not see 3 crashes" >&2; exit 1; }
    recomputed+=("$(echo "$out" | field tasks_recomputed)")
  done
  printf "| %-26s | %8.1f | %7.2f | %16s | %s |\n" "$label" \
    "$(printf '%s\n' "${mbps[@]}" | median)" "$(printf '%s\n' "${wall[@]}" | median)" \
    "$(printf '%s\n' "${recomputed[@]}" | median)" "$(printf '%s\n' "${recomputed[@]}" | tr '\n' ' ')"
}

echo "corpus: $(find "$corpus" -type f | wc -l) files, $(du -sh "$corpus" | cut -f1); $(nproc) cores; $(redis-server --version | cut -d' ' -f3); median of $repeat runs"
echo
echo "| persistence                |     MB/s |  wall s | tasks recomputed | (each run, 3 crashes) |"
echo "|----------------------------|---------:|--------:|-----------------:|---|"
run "none"
run "BGSAVE every 1s" --checkpoint-every 1s
run "BGSAVE every 250ms" --checkpoint-every 250ms
run "AOF appendfsync everysec" --redis-config "appendonly yes" --redis-config "appendfsync everysec"
run "AOF appendfsync always" --redis-config "appendonly yes" --redis-config "appendfsync always"
