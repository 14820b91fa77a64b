#!/usr/bin/env bash
# The scale curve of the batch (issue 22): `wclab run --workers 2` on the
# bench corpus (1x) and ten times it (10x), against the counting kernel's
# 2-thread whole-process figure, with Redis's CPU seconds per GB, in one
# run. With --before BIN, that wclab binary (say, the previous commit path)
# runs too, interleaved run by run with this one (alternating which goes
# first), so that a busy machine slows both alike.
#
#   bench/scale.sh [--before BIN] [REPEAT]        (just bench-scale)
#
# Each wclab's --output is checked once per corpus against an independent
# oracle (Python's bytes.split and a Counter, which shares no code with
# wclab: the coreutils oracle needs more disk than a 3 GB corpus leaves).
# Redis's own time per commit and per fold comes from one more run per
# corpus and binary, against a redis-server of this script's whose slow log
# records every call (bench/redis_time.py): not a timed run, since logging
# every call costs Redis a little.
# Prints markdown tables; nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
before=""
if [ "${1:-}" = "--before" ]; then before=$2; shift 2; fi
repeat=${1:-3}
wclab=target/release/wclab
cargo build --release -q --bin wclab
cargo build --release -q -p wclab-count --example files_throughput
kernel=target/release/examples/files_throughput
one=${SCALE_ONE:-out/bench-corpus} ten=${SCALE_TEN:-out/bench-corpus-10x}   # (the variables: a quick try on other corpora)
[ -d "$one" ] || $wclab gen text --out "$one" --files 64 --size 4700KiB --seed 2 --vocab 18500 2> /dev/null
[ -d "$ten" ] || $wclab gen text --out "$ten" --files 640 --size 4700KiB --seed 2 --vocab 18500 2> /dev/null
mkdir -p out/bench
# redis-py for bench/redis_time.py, installed once under out/ (as bench/suite.sh does).
export PYTHONPATH=out/pydeps${PYTHONPATH:+:$PYTHONPATH}
python3 -c 'import redis' 2> /dev/null || python3 -m pip install -q --target out/pydeps redis 2>&1 | grep -v WARNING >&2 || true

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { print a - b }'; }
field() { grep -o "\"$1\": *[0-9.e+-]*" | head -1 | sed 's/.*: *//'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

oracle() {
  python3 - "$1" <<'PY'
import collections, os, sys
c = collections.Counter()
root = sys.argv[1]
for name in sorted(os.listdir(root)):
    with open(os.path.join(root, name), "rb") as f:
        c.update(f.read().split())
out = sys.stdout.buffer
for w, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])):
    out.write(w + b"\t" + str(n).encode() + b"\n")
PY
}

# The instrumented Redis for the per-call times.
port=$((20000 + RANDOM % 30000)); pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
rdir=$(mktemp -d)
redis-server --port "$port" --requirepass "$pw" --save '' --appendonly no --dir "$rdir" \
  --daemonize yes --pidfile "$rdir/pid" --logfile "$rdir/log" \
  --slowlog-log-slower-than 0 --slowlog-max-len 1000000 > /dev/null
trap 'kill "$(cat "$rdir/pid")" 2> /dev/null || true; rm -rf "$rdir"' EXIT
cli() { redis-cli -p "$port" --no-auth-warning -a "$pw" "$@"; }
until cli ping > /dev/null 2>&1; do sleep 0.05; done
percall=()

bins=("$wclab")
[ -n "$before" ] && bins+=("$before")
echo "| corpus | GB | wclab | MB/s end to end | kernel 2 threads, whole process MB/s | end to end / kernel | Redis CPU s | Redis CPU s per GB | FCALLs | exact |"
echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"
for corpus in "$one" "$ten"; do
  mapfile -t files < <(find "$corpus" -type f | sort)
  bytes=$(cat "${files[@]}" | wc -c)
  want=out/bench/scale-oracle-$(basename "$corpus").tsv
  if [ ! -s "$want" ] || [ -n "$(find "$corpus" -newer "$want" | head -1)" ]; then
    echo "scale: $corpus: oracle" >&2
    oracle "$corpus" > "$want.tmp" && mv "$want.tmp" "$want"
  fi
  exact=()
  for b in "${bins[@]}"; do
    $b run --input "$corpus" --workers 2 -k 0 -o out/bench/scale.tsv > /dev/null 2>&1
    if cmp -s out/bench/scale.tsv "$want"; then exact+=(yes); else exact+=(NO); fi
  done
  declare -A wall=() cpu=() calls=()
  kwalls=()
  for i in $(seq "$repeat"); do
    t0=$(now); $kernel 2 "${files[@]}" > /dev/null; kwalls+=("$(since "$t0")")
    order=("${!bins[@]}")
    [ $((i % 2)) = 0 ] && order=($(printf '%s\n' "${order[@]}" | tac))
    for j in "${order[@]}"; do
      t0=$(now)
      out=$(${bins[$j]} run --input "$corpus" --workers 2 --json -k 0 2> /dev/null)
      wall[$j]+="$(since "$t0") "
      cpu[$j]+="$(echo "$out" | field redis_cpu_seconds) "
      calls[$j]+="$(echo "$out" | field redis_fcall_calls) "
      echo "scale: $corpus run $i ${bins[$j]}: $(echo "${wall[$j]}" | awk '{print $NF}') s" >&2
    done
  done
  kmbps=$(awk -v b="$bytes" -v s="$(printf '%s\n' "${kwalls[@]}" | median)" 'BEGIN { printf "%.1f", b / 1e6 / s }')
  for j in "${!bins[@]}"; do
    w=$(printf '%s\n' ${wall[$j]} | median)
    c=$(printf '%s\n' ${cpu[$j]} | median)
    f=$(printf '%s\n' ${calls[$j]} | median)
    mb=$(awk -v b="$bytes" -v s="$w" 'BEGIN { printf "%.1f", b / 1e6 / s }')
    echo "| $(basename "$corpus") | $(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1e9 }') | ${bins[$j]} | $mb | $kmbps | $(awk -v a="$mb" -v k="$kmbps" 'BEGIN { printf "%.2f", a / k }') | $(printf '%.2f' "$c") | $(awk -v c="$c" -v b="$bytes" 'BEGIN { printf "%.2f", c / (b / 1e9) }') | $f | ${exact[$j]} |"
  done
  unset wall cpu calls
  for b in "${bins[@]}"; do
    cli flushall > /dev/null; cli slowlog reset > /dev/null
    WCLAB_REDIS_URL="redis://:$pw@127.0.0.1:$port" $b run --input "$corpus" --workers 2 -k 0 > /dev/null 2>&1
    percall+=("$(basename "$corpus")"$'\t'"$b"$'\t'"$(python3 bench/redis_time.py "$port" "$pw")")
  done
done
echo
echo "Redis's own time per call (one more run each, every call in the slow log):"
echo
echo "| corpus | wclab | commits | Redis ms per commit: mean / p50 / max | folds | Redis ms per fold: mean / max | claims | Redis µs per claim: mean |"
echo "|---|---|---:|---|---:|---|---:|---:|"
for r in "${percall[@]}"; do
  IFS=$'\t' read -r c b t <<< "$r"
  python3 - "$c" "$b" "$t" <<'PY'
import json, sys
c, b, t = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
z = {"calls": 0, "mean_us": 0, "p50_us": 0, "max_us": 0}
cm, fo, cl = t.get("wclab_commit", z), t.get("wclab_fold", z), t.get("wclab_claim", z)
ms = lambda us: f"{us / 1000:.2f}"
print(f"| {c} | {b} | {cm['calls']} | {ms(cm['mean_us'])} / {ms(cm['p50_us'])} / {ms(cm['max_us'])} | {fo['calls']} | {ms(fo['mean_us'])} / {ms(fo['max_us'])} | {cl['calls']} | {cl['mean_us']} |")
PY
done
echo
echo "median of $repeat; $(nproc) cores, Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2), $(date -u +%Y-%m-%d)"
