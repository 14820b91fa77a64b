#!/usr/bin/env bash
# What TLS costs a Raft commit (issue 17): two 3-node clusters side by side,
# one in plain text, one in TLS (clients over rediss://, peers in mutual
# TLS, certificates from `wclab tls-certs --raft-nodes`), and the commit
# FCALL's latency as a client sees it (`wclab raft bench-commit`, COMMITS
# commits of 200 distinct words, one at a time), on one cluster then the
# other, ROUNDS times: interleaved, so that both see the same machine.
#
#   bench/raft-tls.sh [WCLAB]
#
# Prints each round's p50 and p99 and the median of the rounds' p50s, with
# the ratio TLS / plain.
set -euo pipefail
wclab=${1:-target/release/wclab}
commits=${COMMITS:-300}
rounds=${ROUNDS:-5}
dir=$(mktemp -d)
pids=()

stop() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
  rm -rf "$dir"
}
trap stop EXIT

port_in_use() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
free_base() { # six consecutive free ports from a random start
  local b i busy
  for _ in $(seq 1 50); do
    b=$((20000 + RANDOM % 30000)) busy=0
    for i in 1 2 3 4 5 6; do port_in_use $((b + i)) && busy=1 && break; done
    [ "$busy" = 0 ] && echo "$b" && return 0
  done
  return 1
}
base=$(free_base)
certs="$dir/certs"
"$wclab" tls-certs --out "$certs" --raft-nodes 1,2,3 --host 127.0.0.1 > /dev/null 2>&1

cluster() { # name, first port, tls (yes/no): starts 3 nodes, forms the cluster
  local name=$1 first=$2 tls=$3 i extra members=""
  for i in 1 2 3; do
    extra=()
    [ "$tls" = yes ] && extra=(--tls-cert "$certs/node-$i.pem" --tls-key "$certs/node-$i.key" --tls-ca "$certs/ca.pem")
    "$wclab" raft node --id "$i" --listen "127.0.0.1:$((first + i - 1))" --dir "$dir/$name/n$i" "${extra[@]}" \
      2> "$dir/$name-n$i.log" &
    pids+=($!)
    members="$members${members:+,}$i=127.0.0.1:$((first + i - 1))"
  done
  local ca=""
  [ "$tls" = yes ] && ca=$certs/ca.pem
  for _ in $(seq 1 300); do
    WCLAB_TLS_CA=$ca "$wclab" raft status --node "127.0.0.1:$first" 2> /dev/null | grep -q '^node_id:' && break
    sleep 0.05
  done
  WCLAB_TLS_CA=$ca "$wclab" raft init --node "127.0.0.1:$first" --member "$members" > /dev/null
  for _ in $(seq 1 300); do
    WCLAB_TLS_CA=$ca "$wclab" raft status --node "127.0.0.1:$first" | grep -q '^role:leader' && return 0
    sleep 0.05
  done
  echo "$name: node 1 did not become the leader" >&2
  return 1
}

# Node 1 of each cluster leads (it is the one initialised, and nothing
# fails here), and is the client's first endpoint: no proxy hop.
cluster plain "$((base + 1))" no
cluster tls "$((base + 4))" yes
plain_nodes="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
tls_nodes="127.0.0.1:$((base + 4)),127.0.0.1:$((base + 5)),127.0.0.1:$((base + 6))"

field() { grep -o "\"$1\": *[0-9.]*" | head -1 | sed 's/.*: *//'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "commit p50/p99 (ms) of $commits commits of 200 words, 3-node clusters, $(nproc) cores; interleaved rounds"
plain_p50=() tls_p50=()
for r in $(seq 1 "$rounds"); do
  p=$("$wclab" raft bench-commit --redis "$plain_nodes" --commits "$commits")
  t=$("$wclab" raft bench-commit --redis "$tls_nodes" --commits "$commits" --tls --tls-ca "$certs/ca.pem")
  plain_p50+=("$(echo "$p" | field p50_ms)")
  tls_p50+=("$(echo "$t" | field p50_ms)")
  printf "  round %d: plain p50 %.3f p99 %.3f | TLS p50 %.3f p99 %.3f\n" "$r" \
    "$(echo "$p" | field p50_ms)" "$(echo "$p" | field p99_ms)" "$(echo "$t" | field p50_ms)" "$(echo "$t" | field p99_ms)"
done
pm=$(printf '%s\n' "${plain_p50[@]}" | median)
tm=$(printf '%s\n' "${tls_p50[@]}" | median)
printf "median of the rounds' p50: plain %.3f ms, TLS %.3f ms, TLS / plain %.2f\n" "$pm" "$tm" \
  "$(awk -v a="$tm" -v b="$pm" 'BEGIN { print a / b }')"
