#!/usr/bin/env bash
# Lab 3's latency against the seed's streaming design (issue 19), and
# where Redis's time goes: at each injection rate, two workers, 200-row
# tweet files, the seed's design in Python (bench/seed/stream.py) and
# `wclab stream`, one after the other on one redis-server whose SLOWLOG
# records every command (slowlog-log-slower-than 0), so that the Redis time
# of each function (wclab_commit, wclab_claim, wclab_fold...) is read per
# call, not guessed.
#
#   bench/stream.sh [DURATION_S] [RATE...]        (just bench-stream-stages)
#
# BEFORE=path/to/older/wclab adds that binary's run after this one's at each
# rate (same files, same server), to measure a change.
#
# Prints markdown tables; nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-6}; shift || true
rates=("${@:-10 100}"); rates=(${rates[@]})
wclab=${WCLAB:-target/release/wclab}
[ -n "${WCLAB:-}" ] || cargo build --release -q --bin wclab
before=${BEFORE:-}
d=out/bench-stream; mkdir -p "$d"
max=0; for r in "${rates[@]}"; do [ "$r" -gt "$max" ] && max=$r; done
need=$((max * duration))
if [ ! -d "$d/tweets" ] || [ "$(ls "$d/tweets" | wc -l)" -lt "$need" ]; then
  rm -rf "$d/tweets"
  $wclab gen tweets --out "$d/tweets" --files "$need" --rows 200 --seed 19 > /dev/null
fi
mapfile -t files < <(find "$(realpath "$d/tweets")" -type f -name '*.csv' | sort)

port=$((20000 + RANDOM % 30000)); pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
rdir=$(mktemp -d)
redis-server --bind 127.0.0.1 --port "$port" --requirepass "$pw" --save '' --appendonly no --dir "$rdir" \
  --daemonize yes --pidfile "$rdir/pid" --logfile "$rdir/log" \
  --slowlog-log-slower-than 0 --slowlog-max-len 1000000 > /dev/null
trap 'kill "$(cat "$rdir/pid")" 2> /dev/null || true; rm -rf "$rdir"' EXIT
cli() { redis-cli -p "$port" --no-auth-warning -a "$pw" "$@"; }
until cli ping > /dev/null 2>&1; do sleep 0.05; done

# Redis time per call of each function and command, from the slow log
# (microseconds of execution, the server's own measure).
redis_time() { python3 bench/redis_time.py "$port" "$pw"; }
reset() { cli slowlog reset > /dev/null; cli config resetstat > /dev/null; }
cpu_now() { cli info cpu | awk -F: '/used_cpu_(user|sys):/ {s += $2} END {print s}'; }

echo "| rate (files/s) | design | p50 / p95 / p99 ms | files/s done | Redis CPU s | commit's Redis time, mean µs | other functions: calls, mean µs (max) |"
echo "|---:|---|---|---:|---:|---:|---|"
for rate in "${rates[@]}"; do
  n=$((rate * duration))
  # The seed's design.
  reset; c0=$(cpu_now)
  s=$(python3 bench/seed/stream.py --redis-port "$port" --password "$pw" --workers 2 \
        --rate "$rate" --duration "$duration" "${files[@]:0:$n}")
  c1=$(cpu_now); t=$(redis_time)
  echo "$s" > "$d/seed-$rate.json"; echo "$t" > "$d/seed-$rate-redis.json"
  python3 - "$rate" "$s" "$t" "$c0" "$c1" <<'PY'
import json, sys
rate, s, t, c0, c1 = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
c = t.get("seedstream_commit", {})
other = ", ".join(f"{k} {v['calls']}, {v['mean_us']}" for k, v in sorted(t.items()) if k in ("XREADGROUP", "XADD"))
print(f"| {rate} | seed design in Python | {s['p50_ms']} / {s['p95_ms']} / {s['p99_ms']} | {s['files_per_s']} | {c1 - c0:.2f} | {c.get('mean_us', '-')} | {other} |")
PY
  # wclab (and the binary before a change, if given).
  for which in wclab ${before:+before}; do
  bin=$wclab; [ "$which" = before ] && bin=$before
  reset; c0=$(cpu_now)
  $bin stream --redis "redis://:$pw@127.0.0.1:$port" --input "$d/tweets" --rate "$rate" \
    --duration "${duration}s" --workers 2 --out "$d/$which-$rate" > "$d/$which-$rate.log" 2>&1 \
    || { echo "$which stream failed at $rate files/s, see $d/$which-$rate.log" >&2; }
  c1=$(cpu_now); t=$(redis_time)
  echo "$t" > "$d/$which-$rate-redis.json"
  python3 - "$rate" "$d/$which-$rate/summary.json" "$t" "$c0" "$c1" "$which" <<'PY'
import json, sys
rate, path, t, c0, c1, which = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
name = "wclab" if which == "wclab" else "wclab before the change"
s = json.load(open(path))
c = t.get("wclab_commit", {})
# The functions only (the commands they run are in the slow log too).
other = ", ".join(f"{k} {v['calls']}, {v['mean_us']} (max {v['max_us']})" for k, v in sorted(t.items()) if k.startswith("wclab_") and k != "wclab_commit")
print(f"| {rate} | {name} | {s['p50_ms']} / {s['p95_ms']} / {s['p99_ms']} | {s['throughput_files_per_s']:.1f} | {c1 - c0:.2f} | {c.get('mean_us', '-')} ({c.get('calls', 0)} commits) | {other} |")
stages = s.get("stages_ms")
if stages:
    for k, v in stages.items():
        if not isinstance(v, dict):
            continue
        print(f"|  | stage {k} | {v['p50']} / {v['p95']} / {v['p99']} | | | | |")
PY
  done
done
echo
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2), $duration s per rate, two workers, 200-row tweet files; $(date -u +%F)"
