#!/usr/bin/env bash
# The sustainable streaming rate (issue 19): a sweep of injection rates,
# each for SECONDS, two workers, 200-row tweet files, with three designs
# side by side on one machine: `wclab stream` (its own redis-server), the
# seed's design in Python (bench/seed/stream.py, on a redis-server of its
# own), and Spark Structured Streaming (bench/pyspark/stream.py, local[2],
# file source) when pyspark and a JRE are installed.
#
#   bench/stream-sweep.sh [SECONDS] [RATE...]          (just bench-stream)
#
# For each rate and design: p50 / p99 latency, files/s committed over the
# run's window, and whether the backlog stayed bounded (every injected file
# committed, at >= 95 % of the injection rate over the window). The
# sustainable rate of a design is the highest rate whose backlog stayed
# bounded and whose p99 stayed under 1 s. After the last injection a design
# gets DRAIN seconds (env, default 30) for the rest; a design that never
# caught up shows what it committed by then. Prints markdown; asserts no
# time.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-20}; shift || true
rates=("${@:-50 100 200 400 800 1600}"); rates=(${rates[@]})
drain=${DRAIN:-30}
wclab=${WCLAB:-target/release/wclab}
[ -n "${WCLAB:-}" ] || cargo build --release -q --bin wclab
d=out/bench-sweep; mkdir -p "$d"
max=0; for r in "${rates[@]}"; do [ "$r" -gt "$max" ] && max=$r; done
need=$((max * duration))
if [ ! -d "$d/tweets" ] || [ "$(ls "$d/tweets" | wc -l)" -lt "$need" ]; then
  rm -rf "$d/tweets"
  $wclab gen tweets --out "$d/tweets" --files "$need" --rows 200 --seed 19 > /dev/null
fi
mapfile -t files < <(find "$(realpath "$d/tweets")" -type f -name '*.csv' | sort)

spark=yes
if ! python3 -c 'import pyspark' 2> /dev/null; then
  spark="pyspark is not installed (pip install pyspark)"
elif ! command -v java > /dev/null; then
  spark="no Java runtime (apt-get install default-jre-headless)"
fi

port=$((20000 + RANDOM % 30000)); pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
rdir=$(mktemp -d)
redis-server --bind 127.0.0.1 --port "$port" --requirepass "$pw" --save '' --appendonly no --dir "$rdir" \
  --daemonize yes --pidfile "$rdir/pid" --logfile "$rdir/log" > /dev/null
trap 'kill "$(cat "$rdir/pid")" 2> /dev/null || true; rm -rf "$rdir"' EXIT
until redis-cli -p "$port" --no-auth-warning -a "$pw" ping > /dev/null 2>&1; do sleep 0.05; done

: > "$d/results.jsonl"
row() { # design rate json-file
  python3 - "$1" "$2" "$3" "$d/results.jsonl" <<'PY'
import json, sys
design, rate, path, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
try:
    s = json.load(open(path))
except Exception as e:
    print(f"| {rate} | {design} | failed: {e} | | | |"); sys.exit()
if "throughput_files_per_s" in s:  # wclab's summary.json
    s = {"files": s["files_committed"], "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"],
         "files_per_s": round(s["throughput_files_per_s"], 1), "injected": s["settings"]["files_injected"]}
injected = s.get("injected", s.get("expected", 0))
bounded = s["files"] >= injected and s["files_per_s"] >= 0.95 * rate
r = {"design": design, "rate": rate, "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"],
     "files_per_s": s["files_per_s"], "files": s["files"], "injected": injected, "bounded": bounded}
open(out, "a").write(json.dumps(r) + "\n")
lat = f"{s['p50_ms']} / {s['p99_ms']}" if s["files"] else "none committed"
print(f"| {rate} | {design} | {lat} | {s['files_per_s']} | {s['files']} of {injected} | {'yes' if bounded else 'no'} |")
PY
}

echo "| rate (files/s) | design | p50 / p99 ms | files/s done | files committed | backlog bounded |"
echo "|---:|---|---|---:|---:|---|"
for rate in "${rates[@]}"; do
  n=$((rate * duration))
  $wclab stream --input "$d/tweets" --rate "$rate" --duration "${duration}s" --workers 2 \
    --drain-timeout "${drain}s" --out "$d/wclab-$rate" > "$d/wclab-$rate.log" 2>&1 || true
  row wclab "$rate" "$d/wclab-$rate/summary.json"
  python3 bench/seed/stream.py --redis-port "$port" --password "$pw" --workers 2 \
    --rate "$rate" --duration "$duration" --drain "$drain" "${files[@]:0:$n}" \
    | python3 -c "import json,sys; s=json.load(sys.stdin); s['injected']=$n; print(json.dumps(s))" \
    > "$d/seed-$rate.json" 2> "$d/seed-$rate.log" || true
  row "seed design in Python" "$rate" "$d/seed-$rate.json"
  if [ "$spark" = yes ]; then
    python3 bench/pyspark/stream.py --threads 2 --rate "$rate" --duration "$duration" \
      --drain "$drain" "${files[@]:0:$n}" 2> "$d/spark-$rate.log" \
      | python3 -c "import json,sys; s=json.load(sys.stdin); s['injected']=$n; print(json.dumps(s))" \
      > "$d/spark-$rate.json" || true
    row "Spark Structured Streaming" "$rate" "$d/spark-$rate.json"
  fi
done
[ "$spark" = yes ] || echo "Spark Structured Streaming not run: $spark"
echo
python3 - "$d/results.jsonl" <<'PY'
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = collections.defaultdict(list)
for r in rows:
    by[r["design"]].append(r)
print("| design | sustainable rate (files/s): backlog bounded, p99 < 1 s |")
print("|---|---:|")
for design, rs in by.items():
    ok = [r["rate"] for r in rs if r["bounded"] and r["p99_ms"] < 1000]
    print(f"| {design} | {max(ok) if ok else 'none of the rates swept'} |")
seed = {r["rate"]: r for r in by.get("seed design in Python", [])}
print()
print("| rate | wclab p50 / seed p50 | wclab files/s / seed files/s |")
print("|---:|---:|---:|")
for r in by.get("wclab", []):
    s = seed.get(r["rate"])
    if s and s["p50_ms"] and s["files_per_s"]:
        print(f"| {r['rate']} | {r['p50_ms'] / s['p50_ms']:.2f} | {r['files_per_s'] / s['files_per_s']:.2f} |")
PY
echo
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2), $duration s per rate, drain $drain s, two workers, 200-row tweet files; $(date -u +%F)"
