#!/usr/bin/env python3
"""Runs the NixOS VM test scripts of nixos-tests/ here, on hosts made of
network namespaces, with the NixOS test driver's method names.

    nixos-tests/local/driver.py [--bin DIR] [--keep] [--allow-pending] [TOPOLOGY...]

Each topology is nixos-tests/topologies/<name>.json (the file that
nixos-tests/lib.nix reads too), and its script is prelude.py followed by
<name>.py, after the same header lib.nix writes (TOPOLOGY and SHARED).

The hosts: a hub namespace holds a Linux bridge; each node is a namespace
`wcht-<node>` joined to it by a veth pair (eth1 inside the node, with the
node's address from the JSON, 192.168.1.0/24), with loopback up, no default
route, and /etc/netns/wcht-<node>/hosts naming every node. Nothing in the
root namespace changes; traffic only goes to loopback and these hosts.

The driver API: the part of the NixOS test driver's that the scripts may
use (issue 6), and nothing more, so that a script that strays from it fails
here too:
  start()        starts the node's services (the JSON's "services"), each a
                 "unit" named like the systemd unit of lib.nix, restarted
                 when it exits (Restart=always, RestartSec=1)
  crash()        SIGKILL of every process in the node's namespace
  block()        the node's link down (the hub end of its veth);
  unblock()      up again
  succeed(), fail():
                 commands run with `set -euo pipefail` in bash, in the node's
                 namespace (and its own UTS namespace: hostname = node name)
  wait_for_unit(unit)
                 until the unit's main process has been running for a second
                 (systemd's "active", without counting a crash loop's brief
                 lives)
  wait_for_open_port(port)
  start_all(), machines, and each node by its name.

A node's state directory (Redis's dir, with dump.rdb) survives crash() and
start(). Namespaces, processes and /etc/netns entries are removed at the end,
also when a test fails or the driver is interrupted; stale ones (prefix
`wcht-`) are removed at the start.
"""

import argparse
import atexit
import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
PREFIX = "wcht-"
HUB = PREFIX + "hub"
LOCK = Path("/run/lock/wclab-hosts-test.lock")
RETRY_EVERY = 0.1  # seconds between tries of wait_for_unit and wait_for_open_port


def log(message: str) -> None:
    print(f"[hosts] {message}", file=sys.stderr, flush=True)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        # As root this must work: fail loudly, never skip.
        raise RuntimeError(
            f"`ip {' '.join(args)}` failed (exit status {r.returncode}): {r.stderr.strip()}"
            " (the hosts tests need network namespaces: root with CAP_SYS_ADMIN and CAP_NET_ADMIN)"
        )
    return r


def netns_pids(ns: str) -> list[int]:
    r = ip("netns", "pids", ns, check=False)
    return [int(p) for p in r.stdout.split()] if r.returncode == 0 else []


def kill_namespace(ns: str, sig: int = signal.SIGKILL) -> None:
    """Sends `sig` to every process in the namespace; with SIGKILL, until none is left."""
    for _ in range(100):
        pids = netns_pids(ns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if sig != signal.SIGKILL:
            return
        time.sleep(0.05)
    raise RuntimeError(f"processes left in {ns}: {netns_pids(ns)}")


def process_age(pid: int) -> float:
    """Seconds since process `pid` started; raises OSError if it is gone,
    ValueError if it is a zombie."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        raise ValueError(f"process {pid} is a zombie")
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
    return float(Path("/proc/uptime").read_text().split()[0]) - started


def remove_stale() -> None:
    listed = ip("netns", "list", check=False).stdout.split("\n")
    for ns in [line.split()[0] for line in listed if line.strip()]:
        if ns.startswith(PREFIX):
            log(f"removing stale namespace {ns}")
            kill_namespace(ns)
            ip("netns", "delete", ns, check=False)
    for d in Path("/etc/netns").glob(PREFIX + "*"):
        shutil.rmtree(d, ignore_errors=True)


def redis_conf(topology: dict, directory: Path, shared: str = "/tmp/shared") -> str:
    """The same lines as redisConf in lib.nix, with this node's directory
    and the run's SHARED for @SHARED@."""
    lines = [
        f"port {topology['redis']['port']}",
        f"requirepass {topology['password']}",
        f"dir {directory}",
        'logfile ""',
        *(line.replace("@SHARED@", shared) for line in topology["redis"].get("config", [])),
    ]
    return "\n".join(lines) + "\n"


def redis_url(topology: dict) -> str:
    """The same URL as redisUrl in lib.nix: the first node with service
    "redis", else every node with service "redis-raft"."""
    port, password = topology["redis"]["port"], topology["password"]
    scheme = "rediss" if topology.get("tls") else "redis"
    def having(service: str) -> list[str]:
        return sorted(n for n, s in topology["nodes"].items() if service in s["services"])
    if having("redis"):
        return f"{scheme}://:{password}@{having('redis')[0]}:{port}"
    return f"{scheme}://:{password}@" + ",".join(f"{n}:{port}" for n in having("redis-raft"))


def raft_argv(topology: dict, node: str, directory: Path) -> list[str]:
    """The same command as raftService in lib.nix, with this node's directory."""
    return [
        "wclab", "raft", "node",
        "--id", str(topology["nodes"][node]["raft_id"]),
        "--listen", f"0.0.0.0:{topology['redis']['port']}",
        "--dir", str(directory),
        *topology.get("raft", {}).get("args", []),
    ]  # fmt: skip


def worker_argv(topology: dict) -> list[str]:
    """The same command as workerService in lib.nix."""
    return ["wclab", "worker", "--job", topology["job"], *topology["worker"]["args"]]


def unit_environment(topology: dict, service: str, shared: str = "/tmp/shared") -> dict[str, str]:
    """The environment lib.nix gives the unit of `service`."""
    if service == "redis-raft":
        return {"WCLAB_RAFT_PASSWORD": topology["password"], "WCLAB_LOG": "info"}
    if service == "worker":
        tls = {"WCLAB_TLS_CA": f"{shared}/tls/ca.pem"} if topology.get("tls") else {}
        return {"WCLAB_REDIS_URL": redis_url(topology), "WCLAB_LOG": "info", **tls, **topology["worker"].get("env", {})}
    return {}


def test_script(name: str, shared: str) -> str:
    """The test script, built exactly as nixos-tests/lib.nix builds testScript
    (scripts/check-nix compares the two)."""
    topology_text = (TESTS / "topologies" / f"{name}.json").read_text()
    script = json.loads(topology_text).get("script", name)
    return "\n".join([
        "import json",
        f"TOPOLOGY = json.loads({json.dumps(topology_text)})",
        f"SHARED = {json.dumps(shared)}",
        (TESTS / "prelude.py").read_text(),
        (TESTS / f"{script}.py").read_text(),
    ])  # fmt: skip


UNIT_OF_SERVICE = {
    "redis": "wclab-redis.service",
    "redis-raft": "wclab-redis-raft.service",
    "worker": "wclab-worker.service",
}


class Machine:
    """One node: a network namespace with its services."""

    def __init__(self, net: "Network", name: str, index: int, spec: dict) -> None:
        self.net = net
        self.name = name
        self.ns = PREFIX + name
        self.link = f"n{index}"  # the hub end of the node's veth pair
        self.address = spec["address"]
        self.services = spec["services"]
        self.state = net.run_dir / "nodes" / name
        self.units: dict[str, subprocess.Popen] = {}
        self.booted = False

    def __repr__(self) -> str:
        return f"<Machine '{self.name}'>"

    # --- services ------------------------------------------------------
    def unit_commands(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        """unit name -> (argv, extra environment), as lib.nix defines them."""
        topo = self.net.topology
        units: dict[str, tuple[list[str], dict[str, str]]] = {}
        for service in self.services:
            if service == "redis":
                directory = self.state / "wclab-redis"  # StateDirectory=wclab-redis
                directory.mkdir(parents=True, exist_ok=True)
                conf = self.state / "redis.conf"
                conf.write_text(redis_conf(topo, directory, str(self.net.shared)))
                conf.chmod(0o600)
                units[UNIT_OF_SERVICE[service]] = (["redis-server", str(conf)], {})
            elif service == "redis-raft":
                directory = self.state / "wclab-raft"  # StateDirectory=wclab-raft
                directory.mkdir(parents=True, exist_ok=True)
                units[UNIT_OF_SERVICE[service]] = (raft_argv(topo, self.name, directory), unit_environment(topo, service))
            elif service == "worker":
                units[UNIT_OF_SERVICE[service]] = (worker_argv(topo), unit_environment(topo, service, str(self.net.shared)))
            else:
                raise RuntimeError(f"{self.name}: no local unit for service {service!r}")
        return units

    def wrap(self, argv: list[str]) -> list[str]:
        """argv run in the node: its network namespace, its own hostname."""
        return [
            "ip", "netns", "exec", self.ns,
            "unshare", "--uts", "--",
            "sh", "-c", 'hostname "$0" && exec "$@"', self.name,
            *argv,
        ]  # fmt: skip

    def start(self, allow_reboot: bool = False) -> None:
        if self.booted:
            return
        log(f"{self.name}: start")
        self.state.mkdir(parents=True, exist_ok=True)
        for unit, (argv, env) in self.unit_commands().items():
            # Restart=always, RestartSec=1. Each run writes its main
            # process's PID (the shell that execs the service) for
            # wait_for_unit.
            pidfile = self.pidfile(unit)
            pidfile.unlink(missing_ok=True)
            run = shlex.join(["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(pidfile), *argv])
            loop = f"while :; do {run}; echo \"{unit} exited with status $?\" >&2; sleep 1; done"
            logfile = open(self.state / f"{unit}.log", "ab")
            self.units[unit] = subprocess.Popen(
                self.wrap(["bash", "-c", loop]),
                env={**self.net.env, **env},
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            logfile.close()
        self.booted = True

    def pidfile(self, unit: str) -> Path:
        return self.state / f"{unit}.pid"

    def crash(self) -> None:
        # The units' process groups first (no scan of /proc: a crash is
        # sudden), then whatever else runs in the namespace.
        for p in self.units.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
        kill_namespace(self.ns)
        log(f"{self.name}: crashed (SIGKILL of every process in {self.ns})")
        self.reap()

    def reap(self) -> None:
        for unit, p in self.units.items():
            p.wait()
            self.pidfile(unit).unlink(missing_ok=True)
        self.units.clear()
        self.booted = False

    def block(self) -> None:
        log(f"{self.name}: block (link down)")
        ip("-n", HUB, "link", "set", self.link, "down")

    def unblock(self) -> None:
        log(f"{self.name}: unblock (link up)")
        ip("-n", HUB, "link", "set", self.link, "up")

    # --- commands ------------------------------------------------------
    def _execute(
        self,
        command: str,
        check_return: bool = True,
        check_output: bool = True,
        timeout: int | None = 900,
    ) -> tuple[int, str]:
        if not self.booted:
            self.start()  # like the NixOS driver, which boots a machine to run a command
        p = subprocess.Popen(
            self.wrap(["bash", "-c", f"set -euo pipefail; {command}"]),
            env=self.net.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            return (124, out.decode(errors="replace"))
        return (p.returncode, out.decode(errors="replace"))

    def succeed(self, *commands: str, timeout: int | None = None) -> str:
        output = ""
        for command in commands:
            log(f"{self.name}: must succeed: {command}")
            status, out = self._execute(command, timeout=timeout)
            if status != 0:
                log(f"{self.name}: output: {out}")
                raise Exception(f"command `{command}` failed (exit code {status})")
            output += out
        return output

    def fail(self, *commands: str, timeout: int | None = None) -> str:
        output = ""
        for command in commands:
            log(f"{self.name}: must fail: {command}")
            status, out = self._execute(command, timeout=timeout)
            if status == 0:
                raise Exception(f"command `{command}` unexpectedly succeeded")
            output += out
        return output

    def _retry(self, what: str, attempt, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if attempt():
                return
            if time.monotonic() > deadline:
                raise Exception(f"{self.name}: timed out after {timeout} s waiting for {what}")
            time.sleep(RETRY_EVERY)

    def wait_for_unit(self, unit: str, user: str | None = None, timeout: int = 900) -> None:
        if not self.booted:
            self.start()
        known = self.unit_commands().keys()
        if unit not in known:
            raise Exception(f"{self.name}: no unit {unit!r} (this node has {sorted(known)})")
        log(f"{self.name}: waiting for unit {unit}")

        def active() -> bool:
            # The restart loop alive is not enough: its service must be,
            # and for a second, so that a service that dies at once (bad
            # arguments, no redis-server) is not taken for a running one.
            loop = self.units.get(unit)
            if loop is None or loop.poll() is not None:
                return False
            try:
                pid = int(self.pidfile(unit).read_text())
                return process_age(pid) >= 1.0
            except (OSError, ValueError):
                return False

        self._retry(f"unit {unit}", active, timeout)

    def wait_for_open_port(self, port: int, addr: str = "localhost", timeout: int = 900) -> None:
        log(f"{self.name}: waiting for TCP port {port} on {addr}")
        probe = f"exec 3<>/dev/tcp/{addr}/{port}"
        self._retry(f"port {port} on {addr}", lambda: self._execute(probe, timeout=5)[0] == 0, timeout)



class Network:
    """The hub, the nodes, and the run directory of one topology."""

    def __init__(self, name: str, topology: dict, bin_dir: Path, run_dir: Path) -> None:
        self.name = name
        self.topology = topology
        self.run_dir = run_dir
        self.shared = run_dir / "shared"
        self.env = {
            "PATH": f"{bin_dir}:{REPO / 'scripts'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "USER": "root",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
        }
        self.machines = [
            Machine(self, node, i + 1, spec)
            for i, (node, spec) in enumerate(sorted(topology["nodes"].items()))
        ]
        self.up = False

    def setup(self) -> None:
        self.shared.mkdir(parents=True)
        self.up = True
        ip("netns", "add", HUB)
        ip("-n", HUB, "link", "add", "br0", "type", "bridge")
        ip("-n", HUB, "link", "set", "br0", "up")
        hosts = "127.0.0.1 localhost\n::1 localhost\n" + "".join(
            f"{m.address} {m.name}\n" for m in self.machines
        )
        for m in self.machines:
            ip("netns", "add", m.ns)
            ip("-n", HUB, "link", "add", m.link, "type", "veth", "peer", "name", "eth1", "netns", m.ns)
            ip("-n", HUB, "link", "set", m.link, "master", "br0", "up")
            ip("-n", m.ns, "addr", "add", f"{m.address}/24", "dev", "eth1")
            ip("-n", m.ns, "link", "set", "eth1", "up")
            ip("-n", m.ns, "link", "set", "lo", "up")
            etc = Path("/etc/netns") / m.ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts)
        log(f"{self.name}: hosts " + ", ".join(f"{m.name} {m.address}" for m in self.machines))

    def teardown(self) -> None:
        if not self.up:
            return
        for m in self.machines:
            with contextlib.suppress(Exception):
                kill_namespace(m.ns)
                m.reap()
            ip("netns", "delete", m.ns, check=False)
            shutil.rmtree(Path("/etc/netns") / m.ns, ignore_errors=True)
        ip("netns", "delete", HUB, check=False)
        self.up = False

    def run_script(self) -> None:
        def start_all() -> None:
            for m in self.machines:
                m.start()

        symbols = {"__name__": "__main__", "start_all": start_all, "machines": self.machines}
        symbols.update({m.name: m for m in self.machines})
        code = compile(test_script(self.name, str(self.shared)), f"nixos-tests/{self.name}.py (after prelude.py)", "exec")
        exec(code, symbols)


def run_topology(name: str, bin_dir: Path, keep: bool, allow_pending: bool) -> tuple[str, str]:
    topology = json.loads((TESTS / "topologies" / f"{name}.json").read_text())
    if "pending" in topology:
        # A test that does not run is not a test that passed.
        return ("SKIPPED" if allow_pending else "FAILED", f"pending: {topology['pending']}")
    run_dir = Path(tempfile.mkdtemp(prefix=f"wclab-hosts-{name}-"))
    net = Network(name, topology, bin_dir, run_dir)
    atexit.register(net.teardown)
    ok = False
    try:
        net.setup()
        net.run_script()
        ok = True
        return ("PASSED", "")
    except Exception as e:  # a failed test: report it, clean up, go on
        traceback.print_exc()
        for m in net.machines:
            for unit in m.unit_commands() if m.state.exists() else []:
                logfile = m.state / f"{unit}.log"
                if logfile.exists():
                    tail = logfile.read_text(errors="replace").splitlines()[-15:]
                    log(f"{m.name} {unit}, last lines:\n  " + "\n  ".join(tail))
        return ("FAILED", f"{type(e).__name__}: {e}")
    finally:
        net.teardown()
        if ok and not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            log(f"{name}: logs and data kept in {run_dir}")


def main() -> int:
    names = sorted(p.stem for p in (TESTS / "topologies").glob("*.json"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("topologies", nargs="*", metavar="TOPOLOGY", help=f"default: all ({', '.join(names)})")
    parser.add_argument(
        "--bin",
        default=os.environ.get("WCLAB_BIN_DIR", str(REPO / "target" / "release")),
        help="directory of the wclab binary (default: $WCLAB_BIN_DIR, else <repo>/target/release)",
    )
    parser.add_argument("--keep", action="store_true", help="keep each run's directory (data, logs)")
    parser.add_argument(
        "--allow-pending",
        action="store_true",
        help='report a topology marked "pending" as SKIPPED instead of FAILED (never in CI)',
    )
    args = parser.parse_args()
    chosen = args.topologies or names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        parser.error(f"unknown topology {unknown}; known: {names}")

    bin_dir = Path(args.bin).resolve()
    if os.geteuid() != 0:
        # The one case that is not a failure: CI runs as root, so there the
        # tests always run, and a namespace that cannot be made fails them.
        print(
            "hosts-test: SKIPPED: not root. The hosts tests make network namespaces, veth pairs and a\n"
            "hosts-test: bridge (ip netns), which needs root; run them as root (CI does): sudo just hosts-test"
        )
        return 0
    problems = []
    if not (bin_dir / "wclab").is_file():
        problems.append(f"no wclab in {bin_dir} (cargo build --release --bin wclab, or --bin DIR)")
    for tool in ("ip", "unshare", "hostname", "timeout", "stdbuf", "redis-server", "redis-cli"):
        if not shutil.which(tool):
            problems.append(f"{tool} not found")
    if problems:
        for p in problems:
            log(f"cannot run: {p}")
        return 2

    # SIGTERM (CI timeouts) unwinds like Ctrl-C, through every `finally`.
    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)

    LOCK.parent.mkdir(parents=True, exist_ok=True)
    lock = open(LOCK, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"another hosts test holds {LOCK}; waiting for it")
        fcntl.flock(lock, fcntl.LOCK_EX)
    remove_stale()

    results = []
    for name in chosen:
        log(f"===== {name} =====")
        started = time.monotonic()
        status, reason = run_topology(name, bin_dir, args.keep, args.allow_pending)
        results.append((name, status, time.monotonic() - started, reason))
    remove_stale()

    print()
    for name, status, seconds, reason in results:
        detail = f" ({reason})" if reason else ""
        print(f"hosts-test: {name:<11} {status:<7} {seconds:6.1f} s{detail}")
    count = {s: sum(1 for r in results if r[1] == s) for s in ("PASSED", "FAILED", "SKIPPED")}
    print(f"hosts-test: {count['PASSED']} passed, {count['FAILED']} failed, {count['SKIPPED']} skipped")
    return 1 if count["FAILED"] else 0


if __name__ == "__main__":
    sys.exit(main())
