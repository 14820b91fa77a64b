#!/usr/bin/env python3
"""etcd, the anchor for lab 4b's price: what a Raft store people would pick
instead costs on this machine, measured in the same run as wclab's figures.

    bench/etcd.py [--puts N] [--txns N] [--kills N] [--json]

Starts a 3-member etcd cluster on loopback (Debian's etcd-server, each member
in its own temporary directory), talks to it through etcd's HTTP/JSON gateway
(`/v3/kv/put`, `/v3/kv/txn`) over kept-alive connections, and measures:

* a single put, one at a time, on the leader (p50 / p99);
* a transaction of 200 puts (the size of wclab's 200-word benchmark commit;
  `--max-txn-ops` is raised from its default of 128 for it);
* failover: the leader killed with SIGKILL while a client writes; the time
  from the kill to the first acknowledged put, the client rotating to the
  next member whenever one refuses or stays silent for 100 ms. Twice: with
  etcd's default timers (heartbeat 100 ms, election 1000 ms) and tuned ones
  (heartbeat 50 ms, election 250 ms). The killed member is restarted from its
  directory before the next kill.

Only the Python standard library: the gateway speaks JSON, so no gRPC client
is needed, and the client's own overhead (~0.1 ms per request) is small next
to what it measures.
"""

import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))]


class Member:
    def __init__(self, name, root, cport, pport):
        self.name, self.cport, self.pport = name, cport, pport
        self.dir = os.path.join(root, name)
        self.log = os.path.join(root, name + ".log")
        self.proc = None

    def start(self, cluster, heartbeat, election, state):
        args = [
            "etcd", "--name", self.name, "--data-dir", self.dir,
            "--listen-client-urls", f"http://127.0.0.1:{self.cport}",
            "--advertise-client-urls", f"http://127.0.0.1:{self.cport}",
            "--listen-peer-urls", f"http://127.0.0.1:{self.pport}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.pport}",
            "--initial-cluster", cluster, "--initial-cluster-state", state,
            "--heartbeat-interval", str(heartbeat), "--election-timeout", str(election),
            "--max-txn-ops", "1000", "--logger", "zap", "--log-outputs", "stderr",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"), start_new_session=True)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


class Client:
    """One kept-alive HTTP connection per member; JSON in and out."""

    def __init__(self, members, timeout):
        self.members, self.timeout = members, timeout
        self.conns = {}

    def post(self, member, path, body):
        conn = self.conns.get(member.name)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", member.cport, timeout=self.timeout)
            self.conns[member.name] = conn
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            del self.conns[member.name]
            raise
        if resp.status != 200:
            raise OSError(f"{member.name}: HTTP {resp.status}: {data[:200]!r}")
        return json.loads(data or b"{}")


class Cluster:
    def __init__(self, heartbeat, election, size=3):
        self.root = tempfile.mkdtemp(prefix="wclab-etcd-")
        self.heartbeat, self.election = heartbeat, election
        self.members = [Member(f"e{i}", self.root, free_port(), free_port()) for i in range(1, size + 1)]
        self.spec = ",".join(f"{m.name}=http://127.0.0.1:{m.pport}" for m in self.members)
        for m in self.members:
            m.start(self.spec, heartbeat, election, "new")
        self.client = Client(self.members, timeout=2.0)
        self.wait_leader()

    def status(self, m):
        return self.client.post(m, "/v3/maintenance/status", {})

    def leader(self):
        for m in self.members:
            if m.proc.poll() is not None:
                continue
            try:
                st = self.status(m)
            except OSError:
                continue
            if st.get("leader") and st["leader"] == st["header"]["member_id"]:
                return m
        return None

    def wait_leader(self, deadline_s=30):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            for m in self.members:
                if m.proc.poll() is not None and m.proc.returncode not in (-9,):
                    sys.exit(f"etcd member {m.name} exited ({m.proc.returncode}); see {m.log}")
            m = self.leader()
            if m is not None:
                try:
                    self.client.post(m, "/v3/kv/put", {"key": b64("warm"), "value": b64("up")})
                    return m
                except OSError:
                    pass
            time.sleep(0.05)
        sys.exit(f"etcd: no leader within {deadline_s} s; logs in {self.root}")

    def stop(self):
        for m in self.members:
            m.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def timed(f, n):
    out = []
    for i in range(n):
        t = time.perf_counter()
        f(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


def latencies(cluster, puts, txns):
    leader = cluster.wait_leader()
    c = cluster.client
    put = timed(lambda i: c.post(leader, "/v3/kv/put", {"key": b64(f"k{i}"), "value": b64("v" * 16)}), puts)
    ops = [{"requestPut": {"key": b64(f"w{j}"), "value": b64(str(j))}} for j in range(200)]
    txn = timed(lambda i: c.post(leader, "/v3/kv/txn", {"success": ops}), txns)
    return put, txn


def failover(cluster, kills):
    """Kill -> first acknowledged put, as a rotating client sees it (ms)."""
    out = []
    fast = Client(cluster.members, timeout=0.1)
    for k in range(kills):
        leader = cluster.wait_leader()
        live = [m for m in cluster.members if m is not leader]
        # Keep writing until the kill, so that the client is mid-stream.
        for i in range(20):
            fast.post(leader, "/v3/kv/put", {"key": b64("f"), "value": b64(str(i))})
        t0 = time.perf_counter()
        leader.kill()
        i = 0
        while True:
            m = live[i % len(live)]
            try:
                fast.post(m, "/v3/kv/put", {"key": b64("f"), "value": b64(f"after{k}")})
                break
            except OSError:
                i += 1
        out.append((time.perf_counter() - t0) * 1000)
        leader.start(cluster.spec, cluster.heartbeat, cluster.election, "existing")
        time.sleep(0.5)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--puts", type=int, default=1000)
    ap.add_argument("--txns", type=int, default=200)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    a = ap.parse_args()
    if shutil.which("etcd") is None:
        sys.exit("etcd not found: apt-get install etcd-server")

    result = {}
    for label, hb, el in (("default", 100, 1000), ("tuned", 50, 250)):
        cl = Cluster(hb, el)
        try:
            if label == "default":
                put, txn = latencies(cl, a.puts, a.txns)
                result["put_p50_ms"], result["put_p99_ms"] = pct(put, 50), pct(put, 99)
                result["txn200_p50_ms"], result["txn200_p99_ms"] = pct(txn, 50), pct(txn, 99)
            fo = failover(cl, a.kills)
            result[f"failover_{label}_ms"] = {
                "median": statistics.median(fo), "max": max(fo), "min": min(fo), "n": len(fo),
                "heartbeat_ms": hb, "election_ms": el,
            }
        finally:
            cl.stop()
    result["version"] = subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    if a.json:
        print(json.dumps(result))
        return
    print(f"{result['version']}, 3 members on loopback")
    print(f"put:               p50 {result['put_p50_ms']:.2f} ms, p99 {result['put_p99_ms']:.2f} ms ({a.puts} puts)")
    print(f"txn of 200 puts:   p50 {result['txn200_p50_ms']:.2f} ms, p99 {result['txn200_p99_ms']:.2f} ms ({a.txns} txns)")
    for label in ("default", "tuned"):
        f = result[f"failover_{label}_ms"]
        print(f"failover, {label} (heartbeat {f['heartbeat_ms']} ms, election {f['election_ms']} ms): "
              f"median {f['median']:.0f} ms, min {f['min']:.0f}, max {f['max']:.0f} ({f['n']} kills)")


if __name__ == "__main__":
    main()
