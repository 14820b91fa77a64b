#!/usr/bin/env bash
# Lab 4b's price: what replication by Raft costs, on the same job.
#
#   bench/raft.sh [WCLAB] [CORPUS]
#
# Stores: one plain Redis (no persistence); the same with a BGSAVE checkpoint
# every second; Raft clusters of 3 (f = 1) and 5 (f = 2) nodes, whose writes
# are answered once a majority has fsynced them to its log.
# Figures: latency of the commit FCALL (wclab_commit of a task of 200
# distinct words, as the client sees it: `wclab raft bench-commit`, COMMITS
# of them, one at a time), and the throughput of `wclab run` with 2 workers
# on a corpus of many small files (so that commits are frequent; the median
# of 3 runs).
set -euo pipefail
wclab=${1:-target/release/wclab}
corpus=${2:-out/bench-raft-corpus}
commits=${COMMITS:-1000}
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

row() { # label, commit-bench json, run json
  printf "| %-30s | %13.2f | %13.2f | %8.1f |\n" "$1" \
    "$(echo "$2" | field p50_ms)" "$(echo "$2" | field p99_ms)" "$(echo "$3" | field mb_per_s)"
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
  [ -n "$saver" ] && kill "$saver"
  local extra=()
  [ "$2" = yes ] && extra=(--checkpoint-every 1s)
  job=$(job3 --redis "redis://127.0.0.1:$port" "${extra[@]}")
  kill "$pid"
  wait "$pid" 2> /dev/null || true
  rm -rf "$dir"
  row "$1" "$bc" "$job"
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
  row "$1" "$bc" "$job"
}

trap 'stop_cluster 2> /dev/null || true' EXIT
cat "$corpus"/* > /dev/null # warm the page cache
echo "corpus: $(find "$corpus" -type f | wc -l) files, $(du -sh "$corpus" | cut -f1); $(nproc) cores; $(redis-server --version | cut -d' ' -f3); $commits commits of 200 words each"
echo
echo "| store                          | commit p50 ms | commit p99 ms | job MB/s |"
echo "|--------------------------------|--------------:|--------------:|---------:|"
plain "one Redis, no persistence" no
plain "one Redis, BGSAVE every 1s" yes
raft "Raft, 3 nodes (f = 1)" 1
raft "Raft, 5 nodes (f = 2)" 2
