#!/usr/bin/env bash
# Lab 4b's price: what replication by Raft costs, on the same job, next to
# the anchors measured in the same run (issue 21).
#
#   bench/raft.sh [WCLAB] [CORPUS]
#
# Stores: one plain Redis (no persistence); the same with a BGSAVE checkpoint
# every second; one Redis whose every commit waits (`WAIT 1`) for a real
# replica (`replicaof`) to have it; Raft clusters of 3 (f = 1) and 5 (f = 2)
# nodes, whose writes are answered once a majority has fsynced them to its
# log.
# Figures: latency of the commit FCALL (wclab_commit of a task of 200
# distinct words, as the client sees it: `wclab raft bench-commit`, COMMITS
# of them, one at a time), and the throughput of `wclab run` with 2 workers
# on a corpus of many small files (so that commits are frequent; the median
# of 3 runs). Ratios are to the plain Redis of this run.
# Anchors: etcd, 3 members (bench/etcd.py: a put, a 200-put transaction,
# failover with default and tuned timers; skipped if etcd is missing) and
# wclab's own failover (`wclab raft failover-bench`, KILLS leader kills).
set -euo pipefail
wclab=${1:-target/release/wclab}
corpus=${2:-out/bench-raft-corpus}
commits=${COMMITS:-1000}
kills=${KILLS:-10}
base=${WCLAB_RAFT_BASE_PORT:-17500}
rdir=out/bench-raft
# shellcheck source=scripts/raft-lib.sh
. "$(dirname "$0")/../scripts/raft-lib.sh"
[ -d "$corpus" ] || "$wclab" gen text --out "$corpus" --files 400 --size 64KiB --seed 4 2> /dev/null

field() { grep -o "\"$1\": *[0-9.]*" | head -1 | sed 's/.*: *//'; }

# `wclab run` 3 times; prints the JSON of the median run (by MB/s).
job3() {
  local i out=()
  for i in 1 2 3; do out+=("$("$wclab" run --input "$corpus" --workers 2 --lease 2s --json -k 0 "$@" 2> /dev/null)"); done
  for i in 0 1 2; do echo "$(echo "${out[$i]}" | field mb_per_s) $i"; done | sort -n | sed -n 2p | {
    read -r _ i
    echo "${out[$i]}"
  }
}

div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a / b }'; }

redis_p50="" redis_mbs=""
row() { # label, commit-bench json, run json (or empty)
  local p50 p99 mbs
  p50=$(echo "$2" | field p50_ms)
  p99=$(echo "$2" | field p99_ms)
  mbs=$(echo "$3" | field mb_per_s || true)
  if [ -z "$redis_p50" ]; then redis_p50=$p50 redis_mbs=$mbs; fi
  if [ -n "$mbs" ]; then
    printf "| %-32s | %8.2f | %8.2f | %6.2fx | %8.1f | %6.2fx |\n" "$1" "$p50" "$p99" \
      "$(div "$p50" "$redis_p50")" "$mbs" "$(div "$mbs" "$redis_mbs")"
  else
    printf "| %-32s | %8.2f | %8.2f | %6.2fx | %8s | %7s |\n" "$1" "$p50" "$p99" \
      "$(div "$p50" "$redis_p50")" "-" "-"
  fi
}

plain() { # label, checkpoint (yes/no)
  local port=$((base + 90)) dir pid saver="" bc job
  dir=$(mktemp -d)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --daemonize no --logfile "$dir/redis.log" &
  pid=$!
  until redis-cli -p "$port" PING > /dev/null 2>&1; do sleep 0.05; done
  if [ "$2" = yes ]; then
    (while true; do redis-cli -p "$port" BGSAVE > /dev/null 2>&1; sleep 1; done) &
    saver=$!
  fi
  bc=$("$wclab" raft bench-commit --redis "redis://127.0.0.1:$port" --commits "$commits")
  if [ -n "$saver" ]; then
    kill "$saver"
    wait "$saver" 2> /dev/null || true
  fi
  local extra=()
  [ "$2" = yes ] && extra=(--checkpoint-every 1s)
  job=$(job3 --redis "redis://127.0.0.1:$port" "${extra[@]}")
  kill "$pid"
  wait "$pid" 2> /dev/null || true
  rm -rf "$dir"
  row "$1" "$bc" "$job"
}

replicated() { # label: a primary whose commits wait for a replica (WAIT 1)
  local port=$((base + 91)) rport=$((base + 92)) dir pid rpid bc
  dir=$(mktemp -d)
  mkdir -p "$dir/p" "$dir/r"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir/p" \
    --daemonize no --logfile "$dir/p.log" &
  pid=$!
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir/r" \
    --replicaof 127.0.0.1 "$port" --daemonize no --logfile "$dir/r.log" &
  rpid=$!
  until redis-cli -p "$rport" INFO replication 2> /dev/null | grep -q 'master_link_status:up'; do sleep 0.05; done
  bc=$("$wclab" raft bench-commit --redis "redis://127.0.0.1:$port" --commits "$commits" --wait-replicas 1)
  kill "$pid" "$rpid"
  wait "$pid" "$rpid" 2> /dev/null || true
  rm -rf "$dir"
  row "$1" "$bc" ""
}

raft() { # label, f
  N=$((2 * $2 + 1))
  start_cluster
  # The leader first: the client's first endpoint (a follower would add a proxy hop).
  local l nodes bc job
  l=$(leader_id)
  nodes="$(node_addr "$l"),$(cluster_nodes)"
  bc=$("$wclab" raft bench-commit --redis "$nodes" --commits "$commits")
  job=$(job3 --redis-cluster "$nodes")
  stop_cluster
  last_bc=$bc
  row "$1" "$bc" "$job"
}

trap 'stop_cluster 2> /dev/null || true' EXIT
cat "$corpus"/* > /dev/null # warm the page cache
echo "corpus: $(find "$corpus" -type f | wc -l) files, $(du -sh "$corpus" | cut -f1); $(nproc) cores; $(redis-server --version | cut -d' ' -f3); $commits commits of 200 words each"
echo
echo "| store                            | commit p50 ms | commit p99 ms | p50 / Redis | job MB/s | MB/s / Redis |"
echo "|----------------------------------|---------:|---------:|--------:|---------:|--------:|"
plain "one Redis, no persistence" no
plain "one Redis, BGSAVE every 1s" yes
replicated "one Redis, WAIT 1 (a replica)"
raft "Raft, 3 nodes (f = 1)" 1
raft_p50=$(echo "$last_bc" | field p50_ms)
raft "Raft, 5 nodes (f = 2)" 2
echo
if command -v etcd > /dev/null; then
  e=$(python3 "$(dirname "$0")/etcd.py" --json --kills "$((kills / 2 > 0 ? kills / 2 : 1))")
  ef() { echo "$e" | python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
  echo "etcd ($(ef "d['version']"), 3 members on loopback):"
  printf "  put:             p50 %.2f ms, p99 %.2f ms; wclab Raft f = 1 commit p50 / etcd put p50: %.2fx\n" \
    "$(ef "d['put_p50_ms']")" "$(ef "d['put_p99_ms']")" "$(div "$raft_p50" "$(ef "d['put_p50_ms']")")"
  printf "  200-put txn:     p50 %.2f ms, p99 %.2f ms\n" "$(ef "d['txn200_p50_ms']")" "$(ef "d['txn200_p99_ms']")"
  for t in default tuned; do
    printf "  failover, %-7s (heartbeat %s ms, election %s ms): median %.0f ms, max %.0f ms (%s kills)\n" "$t" \
      "$(ef "d['failover_${t}_ms']['heartbeat_ms']")" "$(ef "d['failover_${t}_ms']['election_ms']")" \
      "$(ef "d['failover_${t}_ms']['median']")" "$(ef "d['failover_${t}_ms']['max']")" "$(ef "d['failover_${t}_ms']['n']")"
  done
else
  echo "etcd: not installed, no anchor (apt-get install etcd-server)"
fi
echo
echo "wclab raft failover-bench (3 nodes, heartbeat 50 ms, lease 200 ms, $kills kills):"
"$wclab" raft failover-bench --kills "$kills" --dir "$rdir-failover" | sed 's/^/  /'
