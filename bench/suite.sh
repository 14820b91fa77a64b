#!/usr/bin/env bash
# The speed benchmark: wclab against baselines measured in the same run.
#
#   bench/suite.sh [CORPUS_DIR]     (just bench)
#
# Generates (or reuses) a corpus of 64 English files, ~300 MB, warms the
# page cache, then measures, each as MB/s of input:
#   cat > /dev/null                    the ceiling: reading the bytes
#   the kernel, 1 and 2 threads        counting only (no Redis), mmap'ed files
#   wclab run, 1 and 2 workers         end to end: Redis, processes, commits
#   tr | sort | uniq -c                coreutils (on a quarter of the corpus)
#   the seed's design in Python        bench/seed/wordcount.py, 1/2/4 workers (a quarter)
# and prints a markdown table with ratios to the Python seed (2 workers),
# plus Redis's own CPU seconds and ZINCRBYs per input MB for wclab.
# Results are also written to bench/results/. Timings are figures for
# people to read; nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-out/bench-corpus}
wclab=target/release/wclab
cargo build --release -q --bin wclab
cargo build --release -q -p wclab-count --example files_throughput
kernel=target/release/examples/files_throughput
[ -d "$corpus" ] || $wclab gen text --out "$corpus" --files 64 --size 4700KiB --seed 2 2>/dev/null
mapfile -t files < <(find "$corpus" -type f | sort)
mapfile -t quarter < <(printf '%s\n' "${files[@]}" | head -n 16)
bytes=$(cat "${files[@]}" | wc -c)
qbytes=$(cat "${quarter[@]}" | wc -c)

now() { date +%s.%N; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
field() { grep -o "\"$1\": *[0-9.e+-]*" | head -1 | sed 's/.*: *//'; }
rows=()
row() { rows+=("$1"$'\t'"$2"$'\t'"$3"); }

# Warm the page cache, and measure the ceiling.
cat "${files[@]}" > /dev/null
t0=$(now); cat "${files[@]}" > /dev/null; t1=$(now)
row "cat > /dev/null" "$(mbps "$bytes" "$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')")" "reading page-cached bytes"

for t in 1 2; do
  t0=$(now); out=$($kernel "$t" "${files[@]}"); t1=$(now)
  row "kernel, $t thread(s)" "$(echo "$out" | field mb_per_s)" "counting phase; whole process $(mbps "$bytes" "$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')") MB/s"
done

for w in 1 2; do
  t0=$(now); out=$($wclab run --input "$corpus" --workers "$w" --json -k 0 2>/dev/null); t1=$(now)
  rcpu=$(echo "$out" | field redis_cpu_seconds); zin=$(echo "$out" | field redis_zincrby_calls)
  row "wclab run, $w worker(s)" "$(mbps "$bytes" "$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')")" \
      "incl. Redis and process start; Redis CPU ${rcpu}s, $(awk -v z="$zin" -v b="$bytes" 'BEGIN{printf "%.0f", z/(b/1e6)}') ZINCRBY/MB"
done

t0=$(now)
for f in "${quarter[@]}"; do cat "$f"; printf '\n'; done | LC_ALL=C tr -s '[:space:]' '\n' | LC_ALL=C sort | uniq -c > /dev/null
t1=$(now)
row "tr | sort | uniq -c" "$(mbps "$qbytes" "$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')")" "LC_ALL=C, quarter of the corpus"

pydeps=out/pydeps
[ -d "$pydeps/redis" ] || pip install -q --target "$pydeps" redis >/dev/null 2>&1 || pip3 install -q --target "$pydeps" redis >/dev/null
rdir=$(mktemp -d); port=$((20000 + RANDOM % 20000)); pw=bench$RANDOM
redis-server --port "$port" --requirepass "$pw" --save '' --appendonly no --dir "$rdir" --daemonize yes --logfile "$rdir/log" >/dev/null
trap 'redis-cli -p "$port" -a "$pw" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$rdir"' EXIT
until redis-cli -p "$port" -a "$pw" ping >/dev/null 2>&1; do sleep 0.05; done
seed2=""
for w in 1 2 4; do
  out=$(PYTHONPATH=$pydeps python3 bench/seed/wordcount.py --redis-port "$port" --password "$pw" --workers "$w" "${quarter[@]}")
  v=$(echo "$out" | field mb_per_s); [ "$w" = 2 ] && seed2=$v
  row "seed design in Python, $w worker(s)" "$(printf '%.1f' "$v")" "redis-py, XREADGROUP, one FCALL per file; quarter of the corpus"
done

host="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(redis-server --version | awk '{print $3}')"
{
  echo "corpus: ${#files[@]} files, $(mbps "$bytes" 1) MB ($corpus); machine: $host; $(date -u +%Y-%m-%d)"
  echo
  echo "| what | MB/s | x seed (Python, 2 workers) | notes |"
  echo "|---|---:|---:|---|"
  for r in "${rows[@]}"; do
    IFS=$'\t' read -r what v note <<<"$r"
    echo "| $what | $v | $(awk -v a="$v" -v b="$seed2" 'BEGIN{printf "%.1f", a/b}') | $note |"
  done
} | tee "bench/results/$(date -u +%Y-%m-%d)-$(hostname).md"
