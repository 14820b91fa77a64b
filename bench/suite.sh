#!/usr/bin/env bash
# The speed benchmark: wclab against baselines measured in the same run.
#
#   bench/suite.sh [CORPUS_DIR] [REPEAT]     (just bench)
#
# Generates (or reuses) a corpus like the one issue 7 was measured on: 64
# files of English, ~300 MB, ~87 k distinct words (`wclab gen text --vocab`),
# warms the page cache, then measures, each as MB/s of input (the median of
# REPEAT runs, default 3, for everything that takes under a minute):
#
#   cat > /dev/null                     the ceiling: reading the bytes
#   the kernel, 1 and N threads         counting only (no Redis), mmap'ed files;
#                                       the counting phase and the whole process
#   wclab run, 1 and 2 workers          end to end, the whole process: Redis,
#                                       workers, commits; its --output checked
#                                       against coreutils in a run of its own;
#                                       and with --tls, runs interleaved
#   tr | sort | uniq -c                 coreutils, LC_ALL=C (the oracle, run once)
#   the seed's design in Python         bench/seed/wordcount.py, 1/2/4 workers,
#                                       on the whole corpus
#   PySpark local[N], DataFrame API     bench/pyspark/wordcount.py, warm and cold
#
# and prints a markdown table with ratios to the Python seed (2 workers),
# plus, for wclab and the seed, Redis's own CPU seconds and sorted-set word
# updates per input MB. PySpark runs on a quarter of the corpus, which the
# table says. Then the scale curve (bench/scale.sh: wclab at 1x and 10x the
# corpus against the kernel, Redis CPU per GB, Redis time per commit).
# Results also go to bench/results/.
# Timings are figures for people to read: nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-out/bench-corpus}
repeat=${2:-3}
wclab=target/release/wclab
cargo build --release -q --bin wclab
cargo build --release -q -p wclab-count --example files_throughput
kernel=target/release/examples/files_throughput
[ -d "$corpus" ] || $wclab gen text --out "$corpus" --files 64 --size 4700KiB --seed 2 --vocab 18500 2> /dev/null
mapfile -t files < <(find "$corpus" -type f | sort)
mapfile -t quarter < <(printf '%s\n' "${files[@]}" | head -n 16)
bytes=$(cat "${files[@]}" | wc -c)
mkdir -p out/bench
threads=$(nproc)

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { print a - b }'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
field() { grep -o "\"$1\": *[0-9.e+-]*" | head -1 | sed 's/.*: *//'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rows=()
row() { rows+=("$1"$'\t'"$2"$'\t'"$3"); }
echo "bench: corpus $corpus (${#files[@]} files, $(mbps "$bytes" 1) MB), median of $repeat" >&2

# Python dependencies of the baselines, installed once under out/.
pydeps=out/pydeps
if ! PYTHONPATH=$pydeps python3 -c 'import redis, pyspark' 2> /dev/null; then
  echo "bench: installing redis-py and pyspark into $pydeps (pip)" >&2
  python3 -m pip install -q --target "$pydeps" redis pyspark 2>&1 | grep -v WARNING >&2 || true
fi
command -v java > /dev/null || echo "bench: no java: PySpark is left out (apt-get install default-jre-headless)" >&2

# The ceiling; this also warms the page cache.
cat "${files[@]}" > /dev/null
v=$(for i in $(seq "$repeat"); do t0=$(now); cat "${files[@]}" > /dev/null; mbps "$bytes" "$(since "$t0")"; echo; done | median)
row "cat > /dev/null" "$v" "reading page-cached bytes"

for t in 1 "$threads"; do
  runs="" walls=()
  for i in $(seq "$repeat"); do
    t0=$(now)
    runs+="$($kernel "$t" "${files[@]}")"$'\n'
    walls+=("$(since "$t0")")
  done
  isa=$(echo "$runs" | grep -o '"isa": *"[a-z0-9]*"' | head -1 | sed 's/.*"\([a-z0-9]*\)"$/\1/')
  row "kernel, $t thread(s)" "$(echo "$runs" | field mb_per_s | median)" "counting phase, files mmap'ed${isa:+, $isa}"
  row "kernel, $t thread(s), whole process" "$(mbps "$bytes" "$(printf '%s\n' "${walls[@]}" | median)")" "from the process's start to its exit (threads started, files opened and mapped, tables freed)"
done

echo "bench: coreutils oracle (also the tr | sort | uniq baseline)" >&2
t0=$(now)
scripts/oracle-coreutils "$corpus" > out/bench/oracle.tsv
row "tr | sort | uniq -c" "$(mbps "$bytes" "$(since "$t0")")" "LC_ALL=C, whole corpus, once (scripts/oracle-coreutils)"

for w in 1 2; do
  # Once with --output, to check that the figures below are of exact counts
  # (writing 87 k lines is not what is timed); with TLS too.
  for tls in "" --tls; do
    $wclab run --input "$corpus" --workers "$w" -k 0 $tls -o out/bench/wclab.tsv > /dev/null 2>&1
    cmp -s out/bench/wclab.tsv out/bench/oracle.tsv || { echo "bench: wclab's output${tls:+ with $tls} differs from the oracle" >&2; exit 1; }
  done
  # Plain and TLS runs interleaved, so that both see the same machine.
  walls=() rcpu=() upd=() twalls=() trcpu=()
  for i in $(seq "$repeat"); do
    t0=$(now)
    out=$($wclab run --input "$corpus" --workers "$w" --json -k 0 2> /dev/null)
    walls+=("$(since "$t0")")
    rcpu+=("$(echo "$out" | field redis_cpu_seconds)")
    upd+=("$(echo "$out" | field word_updates)")
    t0=$(now)
    out=$($wclab run --input "$corpus" --workers "$w" --json -k 0 --tls 2> /dev/null)
    twalls+=("$(since "$t0")")
    trcpu+=("$(echo "$out" | field redis_cpu_seconds)")
  done
  wall=$(printf '%s\n' "${walls[@]}" | median)
  twall=$(printf '%s\n' "${twalls[@]}" | median)
  row "wclab run, $w worker(s)" "$(mbps "$bytes" "$wall")" \
    "whole process, from its start to its exit (Redis and workers started, top words printed); output = oracle; Redis CPU $(printf '%.2f' "$(printf '%s\n' "${rcpu[@]}" | median)") s, $(awk -v z="$(printf '%s\n' "${upd[@]}" | median)" -v b="$bytes" 'BEGIN { printf "%.0f", z / (b / 1e6) }') word updates/MB"
  row "wclab run, $w worker(s), --tls" "$(mbps "$bytes" "$twall")" \
    "the same, TLS only (certificates made at start), runs interleaved with the row above; wall time $(awk -v a="$twall" -v b="$wall" 'BEGIN { printf "%.3f", a / b }')x of plain text; Redis CPU $(printf '%.2f' "$(printf '%s\n' "${trcpu[@]}" | median)") s"
done

rdir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
pw=bench$RANDOM
redis-server --port "$port" --requirepass "$pw" --save '' --appendonly no --dir "$rdir" --daemonize yes --logfile "$rdir/log" > /dev/null
trap 'redis-cli -p "$port" -a "$pw" shutdown nosave > /dev/null 2>&1 || true; rm -rf "$rdir"' EXIT
until redis-cli -p "$port" -a "$pw" --no-auth-warning ping > /dev/null 2>&1; do sleep 0.05; done
seed2=""
for w in 1 2 4; do
  redis-cli -p "$port" -a "$pw" --no-auth-warning config resetstat > /dev/null
  cpu0=$(redis-cli -p "$port" -a "$pw" --no-auth-warning info cpu | awk -F: '/used_cpu_(user|sys):/ { s += $2 } END { print s }')
  out=$(PYTHONPATH=$pydeps python3 bench/seed/wordcount.py --redis-port "$port" --password "$pw" --workers "$w" "${files[@]}")
  cpu1=$(redis-cli -p "$port" -a "$pw" --no-auth-warning info cpu | awk -F: '/used_cpu_(user|sys):/ { s += $2 } END { print s }')
  zincr=$(redis-cli -p "$port" -a "$pw" --no-auth-warning info commandstats | grep -o 'cmdstat_zincrby:calls=[0-9]*' | cut -d= -f2)
  v=$(echo "$out" | field mb_per_s)
  [ "$w" = 2 ] && seed2=$v
  row "seed design in Python, $w worker(s)" "$(printf '%.1f' "$v")" \
    "redis-py, XREADGROUP, one FCALL per file, the whole corpus; Redis CPU $(awk -v a="$cpu1" -v b="$cpu0" 'BEGIN { printf "%.2f", a - b }') s, $(awk -v z="${zincr:-0}" -v b="$bytes" 'BEGIN { printf "%.0f", z / (b / 1e6) }') word updates/MB"
done

if command -v java > /dev/null && PYTHONPATH=$pydeps python3 -c 'import pyspark' 2> /dev/null; then
  echo "bench: PySpark local[$threads] (about a minute)" >&2
  out=$(PYTHONPATH=$pydeps python3 bench/pyspark/wordcount.py --threads "$threads" "${quarter[@]}" 2> /dev/null)
  row "PySpark local[$threads], warm" "$(printf '%.1f' "$(echo "$out" | field warm_mb_per_s)")" "DataFrame API, second run in one session, quarter of the corpus"
  row "PySpark local[$threads], with JVM start" "$(printf '%.1f' "$(echo "$out" | field cold_mb_per_s)")" "first run, from process start"
fi

host="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2), $(rustc -V | cut -d' ' -f1-2), Linux $(uname -r), wclab $(git rev-parse --short HEAD 2> /dev/null || echo '?')"
{
  echo "corpus: ${#files[@]} files, $(mbps "$bytes" 1) MB, $(wc -l < out/bench/oracle.tsv) distinct words ($corpus); machine: $host; $(date -u +%Y-%m-%d); median of $repeat"
  echo
  echo "| what | MB/s | × seed (Python, 2 workers) | notes |"
  echo "|---|---:|---:|---|"
  for r in "${rows[@]}"; do
    IFS=$'\t' read -r what v note <<< "$r"
    echo "| ${what//|/\\|} | $v | $(awk -v a="$v" -v b="$seed2" 'BEGIN { printf "%.1f", a / b }') | $note |"
  done
} | tee "bench/results/$(date -u +%Y-%m-%d)-$(hostname).md"

echo "bench: the scale curve (bench/scale.sh, 1x and 10x)" >&2
{
  echo
  echo "Scale curve:"
  echo
  bench/scale.sh "$repeat"
} | tee -a "bench/results/$(date -u +%Y-%m-%d)-$(hostname).md"
