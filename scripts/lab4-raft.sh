#!/usr/bin/env bash
# Lab 4b: 2f+1 Redis replicas kept consistent by Raft. Runs a job against
# the cluster, kills f nodes with SIGKILL (the leader among them) twice
# while it runs and restarts them, then shows that the job finished with
# exact counts, that no committed task was lost or recomputed, and that
# every replica holds the same data.
#
#   scripts/lab4-raft.sh F [WCLAB] [CORPUS]
#
# TLS=1 runs the cluster in TLS: certificates made at start, peers in
# mutual TLS proving their Raft IDs, every client (the job, redis-cli) in
# TLS (`just lab4-raft 1 tls`).
set -euo pipefail
F=${1:-1}
F=${F#F=} # `just lab4-raft F=2` passes "F=2"
tls=${TLS:-}
wclab=${2:-target/release/wclab}
# 900 files of 128 KiB: a job of ~15 s here, long enough for two rounds of
# kills and restarts on a loaded machine (300 files took 4.5 s, and the job
# outran the second fault while a restart was slow).
files=900
corpus=${3:-out/lab4-raft-corpus-$files}
N=$((2 * F + 1))
rdir=out/lab4-raft
# shellcheck source=scripts/raft-lib.sh
. "$(dirname "$0")/raft-lib.sh"
command -v redis-cli > /dev/null || { echo "redis-cli is needed (apt-get install redis-tools)" >&2; exit 2; }
# Node i listens on base+i: free ports picked now, unless fixed by the user.
base=${WCLAB_RAFT_BASE_PORT:-$(pick_base_port "$N")}

[ -d "$corpus" ] || "$wclab" gen text --out "$corpus" --files "$files" --size 128KiB --seed 5 2> /dev/null
tasks=$(find "$corpus" -type f | wc -l)
trap stop_cluster EXIT
start_cluster
nodes=$(cluster_nodes)
echo "== lab 4b: $N nodes (f = $F): $nodes; leader: node $(leader_id)${tls:+; TLS, peers in mutual TLS (certificates in $rdir/certs)}"
job=lab4raft-$$
key="wclab:{$job}:job"
# One commit per file: every commit goes through the Raft log, and the
# progress sampled below moves file by file.
# Its summary is printed after the faults' lines, once it is done.
"$wclab" run --input "$corpus" --workers 2 --lease 2s --commit-batch 1 --redis-cluster "$nodes" --job "$job" \
  -k 5 -o out/lab4-raft.tsv > "$rdir/run.txt" &
run=$!

# Committed tasks, sampled through the cluster (linearizable reads): a
# decrease is committed work lost, to be recomputed. Measured, not assumed.
done_now() { rcli $((base + $(leader_id || echo 1))) HGET "$key" files_done 2> /dev/null | grep -E '^[0-9]+$' || true; }
last=0
lost=0
samples=0
sample() {
  local v
  v=$(done_now)
  [ -z "$v" ] && return 0
  samples=$((samples + 1))
  if [ "$v" -lt "$last" ]; then
    echo "LOST: committed tasks went back from $last to $v" >&2
    lost=$((lost + last - v))
  fi
  last=$v
}
wait_for_done() { # at least N committed
  while kill -0 "$run" 2> /dev/null; do
    sample
    [ "$last" -ge "$1" ] && return 0
    sleep 0.05
  done
}

for round in 1 2; do
  # A third of the job, then half of what is left after the first round's
  # restarts (however long they took).
  wait_for_done $((last + (tasks - last) / (4 - round)))
  if ! kill -0 "$run" 2> /dev/null || [ "$last" -ge "$tasks" ]; then
    echo "the job finished before fault $round: make the corpus bigger" >&2
    exit 1
  fi
  leader=$(leader_id)
  victims="$leader"
  for i in $(seq 1 "$N"); do
    [ "$(echo "$victims" | wc -w)" -ge "$F" ] && break
    [ "$i" != "$leader" ] && victims="$victims $i"
  done
  echo "chaos: kill -9 nodes [$victims] (leader: $leader) at $last of $tasks tasks committed"
  t0=$(date +%s%N)
  for v in $victims; do crash_node "$v"; done
  new=$(wait_leader "$leader")
  echo "chaos: node $new leads after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  sleep 1
  sample
  for v in $victims; do start_node "$v"; done
  echo "chaos: nodes [$victims] restarted (they replay their logs); $last tasks committed"
done
wait "$run"
sample
cat "$rdir/run.txt"
echo "== checks"
[ -f out/lab1-oracle.tsv ] && [ "$corpus" = out/corpus ] || scripts/oracle-coreutils "$corpus" > out/lab4-raft-oracle.tsv
cmp out/lab4-raft.tsv out/lab4-raft-oracle.tsv
echo "EXACT: counts equal the oracle ($(wc -l < out/lab4-raft.tsv) distinct words)"
records=$(rcli $((base + $(leader_id))) XLEN "wclab:{$job}:done")
committed=$(rcli $((base + $(leader_id))) HGET "$key" files_done)
echo "committed tasks: $committed of $tasks, completion records: $records"
echo "recomputed tasks (committed, then lost and redone): $lost, from $samples samples of the committed count during the job"
[ "$records" = "$tasks" ] && [ "$committed" = "$tasks" ] || { echo "a task was committed twice or lost" >&2; exit 1; }
[ "$lost" = 0 ] || { echo "committed tasks were lost" >&2; exit 1; }
# A node restarted last may still be catching up: compare once every node
# has applied the same index (30 s at most; then the lab fails with them).
for t in $(seq 1 150); do
  [ "$(digests | awk '{print $1}' | sort -u | wc -l)" = 1 ] && break
  sleep 0.2
done
echo "replica digests (applied index, digest):"
digests | sed 's/^/  /'
if [ "$(digests | awk '{print $2}' | sort -u | wc -l)" = 1 ]; then
  echo "IDENTICAL: every replica holds the same data"
else
  echo "the replicas differ (digests above)" >&2
  exit 1
fi
