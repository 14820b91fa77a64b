# Shell helpers for lab 4b (sourced by scripts/lab4-raft.sh and bench/raft.sh):
# start 2f+1 `wclab raft node`s on loopback, form the cluster, crash nodes.
#
# Needs: $wclab (the binary), $rdir (a directory for the nodes), $base
# (base port: node i listens on base+i; pick_base_port finds a free one),
# $N (number of nodes). With $tls non-empty the cluster runs in TLS:
# start_cluster makes a cluster CA and a certificate per node naming its
# Raft ID (wclab tls-certs --raft-nodes), nodes speak TLS only and prove
# their IDs to each other, and every client here (rcli, and wclab through
# WCLAB_TLS/WCLAB_TLS_CA) talks TLS, trusting that CA only. Either way
# start_cluster sets a fresh administrator's password
# (WCLAB_RAFT_ADMIN_PASSWORD, on every node and for `wclab raft init`):
# workers and the driver, clients without it, cannot change the cluster.

# redis-cli to node port $1, in TLS when the cluster is, given 2 s at most
# (RCLI_TIMEOUT seconds if set): a node that accepts and never answers
# must not hang the lab.
rcli() { # port args...
  local port=$1
  shift
  if [ -n "${tls:-}" ]; then
    timeout "${RCLI_TIMEOUT:-2}" redis-cli -p "$port" --tls --cacert "$rdir/certs/ca.pem" "$@"
  else
    timeout "${RCLI_TIMEOUT:-2}" redis-cli -p "$port" "$@"
  fi
}

node_addr() { echo "127.0.0.1:$((base + $1))"; }

cluster_nodes() { # host:port,host:port,...
  local out="" i
  for i in $(seq 1 "$N"); do out="$out${out:+,}$(node_addr "$i")"; done
  echo "$out"
}

# A free base port: N consecutive ports nothing listens on, from a random
# start below the kernel's ephemeral range (where outgoing connections take
# their local ports, which a listener then cannot bind: a node failed so
# with "Address already in use" on a port nothing listened on), unless the
# user fixed one with WCLAB_RAFT_BASE_PORT.
port_in_use() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
pick_base_port() { # N
  local try b i busy low
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2> /dev/null || echo 32768)
  for try in $(seq 1 50); do
    b=$((10000 + RANDOM % (low - 10000 - 2 * $1)))
    busy=0
    for i in $(seq 1 "$1"); do port_in_use $((b + i)) && busy=1 && break; done
    [ "$busy" = 0 ] && echo "$b" && return 0
  done
  echo "no $1 consecutive free ports found; set WCLAB_RAFT_BASE_PORT" >&2
  return 1
}

# Starts node `id` and waits until it answers as itself (RAFT.INFO names
# its id), with a deadline. A node that exits at start, or a port on which
# another process answers, fails at once with the cause from its log.
start_node() { # id
  local port=$((base + $1)) pid t
  if port_in_use "$port"; then
    echo "node $1: port $port is taken by another process; move the nodes with WCLAB_RAFT_BASE_PORT (node i listens on base+i)" >&2
    return 1
  fi
  local certs=()
  [ -n "${tls:-}" ] && certs=(--tls-cert "$rdir/certs/node-$1.pem" --tls-key "$rdir/certs/node-$1.key" --tls-ca "$rdir/certs/ca.pem")
  "$wclab" raft node --id "$1" --listen "$(node_addr "$1")" --dir "$rdir/n$1" "${certs[@]}" >> "$rdir/n$1.log" 2>&1 &
  pid=$!
  echo "$pid" > "$rdir/n$1.pid"
  disown
  for t in $(seq 1 300); do
    if ! kill -0 "$pid" 2> /dev/null; then
      echo "node $1 exited at start (port $port; WCLAB_RAFT_BASE_PORT moves the nodes); the end of $rdir/n$1.log:" >&2
      tail -n 5 "$rdir/n$1.log" | sed 's/^/  /' >&2
      return 1
    fi
    RCLI_TIMEOUT=1 rcli "$port" RAFT.INFO 2> /dev/null | tr -d '\r' | grep -qx "node_id:$1" && return 0
    sleep 0.05
  done
  echo "node $1 did not answer as itself on port $port within 15 s; see $rdir/n$1.log" >&2
  return 1
}

# kill -9 of a node: its sidecar and its redis-server.
crash_node() { # id
  kill -9 "$(cat "$rdir/n$1.pid")" 2> /dev/null || true
  [ -f "$rdir/n$1/redis-server.pid" ] && kill -9 "$(cat "$rdir/n$1/redis-server.pid")" 2> /dev/null || true
}

stop_cluster() { # SIGTERM: each node stops its redis-server too
  local i t pid
  for i in $(seq 1 "$N"); do
    [ -f "$rdir/n$i.pid" ] && kill "$(cat "$rdir/n$i.pid")" 2> /dev/null || true
  done
  for i in $(seq 1 "$N"); do
    [ -f "$rdir/n$i.pid" ] || continue
    pid=$(cat "$rdir/n$i.pid")
    for t in $(seq 1 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.05; done
    crash_node "$i" # whatever is left
  done
}

leader_id() { # prints the id of the node that says it leads (empty if none)
  local i
  for i in $(seq 1 "$N"); do
    if rcli $((base + i)) RAFT.INFO 2> /dev/null | tr -d '\r' | grep -qx 'role:leader'; then
      echo "$i"
      return 0
    fi
  done
}

wait_leader() { # [except-id]; prints the new leader's id
  local t l
  for t in $(seq 1 600); do
    l=$(leader_id)
    if [ -n "$l" ] && [ "$l" != "${1:-}" ]; then
      echo "$l"
      return 0
    fi
    sleep 0.02
  done
  echo "no leader elected" >&2
  return 1
}

start_cluster() {
  rm -rf "$rdir"
  mkdir -p "$rdir"
  local i members=""
  WCLAB_RAFT_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  export WCLAB_RAFT_ADMIN_PASSWORD
  if [ -n "${tls:-}" ]; then
    "$wclab" tls-certs --out "$rdir/certs" --raft-nodes "$(seq -s, 1 "$N")" --host 127.0.0.1 > /dev/null
    export WCLAB_TLS=1 WCLAB_TLS_CA="$rdir/certs/ca.pem"
  fi
  for i in $(seq 1 "$N"); do
    start_node "$i"
    members="$members${members:+,}$i=$(node_addr "$i")"
  done
  "$wclab" raft init --node "$(node_addr 1)" --member "$members" > /dev/null
  wait_leader > /dev/null
}

# Digest of every node's dataset once all have applied the same index.
digests() {
  local i
  for i in $(seq 1 "$N"); do
    rcli $((base + i)) RAFT.DIGEST 2> /dev/null | head -2 | tr '\n' ' '
    echo
  done
}
