# Shared by every topology's test script. Both runners put it before
# <name>.py, after two constants:
#   TOPOLOGY  the topology, parsed from topologies/<name>.json
#   SHARED    a directory that every node sees at the same path
# The scripts use only this part of the NixOS test driver's API: machines
# (and each node by its name), start_all, wait_for_unit, wait_for_open_port,
# succeed, fail, crash, start, block, unblock; the rest is Python and shell,
# so that the very same scripts run in NixOS VMs (nixos-tests/lib.nix) and
# on network-namespace hosts (local/driver.py, which has no more than that).
import contextlib
import shlex  # (json is imported by the header that defines TOPOLOGY)
import time

JOB: str = TOPOLOGY["job"]
PASSWORD: str = TOPOLOGY["password"]
REDIS_PORT: int = TOPOLOGY["redis"]["port"]  # Redis's own, or the Raft sidecar's
# "tls": Redis speaks TLS only, with certificates made by start_and_wait_for_services.
TLS: bool = TOPOLOGY.get("tls", False)
TLS_CA = f"{SHARED}/tls/ca.pem"
# redis-cli's TLS options, trusting that CA alone.
CLI_TLS = f" --tls --cacert {TLS_CA}" if TLS else ""
NODES = {m.name: m for m in machines}


def _nodes_with(service: str) -> list:
    return sorted(n for n, s in TOPOLOGY["nodes"].items() if service in s["services"])


# Every node that answers Redis commands: a plain Redis, or the Raft
# replicas (any of which takes any command: followers proxy to the leader).
RAFT_HOSTS = _nodes_with("redis-raft")
REDIS_HOSTS = _nodes_with("redis") + RAFT_HOSTS
WORKERS = [NODES[n] for n in _nodes_with("worker")]
CLIENT = NODES[TOPOLOGY["client"]]
# The job's keys: wclab:{JOB}:tasks, :counts, :done, :dead, :job (docs/protocol.md).
KEY = "wclab:{" + JOB + "}"


@contextlib.contextmanager
def step(name: str):
    """A named part of the test, timed in the log (like the driver's subtest)."""
    print(f"=== {name}")
    started = time.monotonic()
    try:
        yield
    except BaseException:
        print(f"=== FAILED after {time.monotonic() - started:.1f} s: {name}")
        raise
    print(f"=== done in {time.monotonic() - started:.1f} s: {name}")


def wait_until(machine, condition: str, timeout: int = 300) -> None:
    """Runs the shell `condition` on `machine` every 0.2 s until it succeeds;
    fails after `timeout` seconds."""
    loop = f"until {condition}; do sleep 0.2; done"
    machine.succeed(f"timeout {timeout} bash -c {shlex.quote(loop)}", timeout=timeout + 30)


def redis_url(hosts: list | None = None) -> str:
    """The URL of the store: redis://:PASSWORD@host:port[,host:port...]
    (rediss:// with TLS)."""
    hosts = hosts or REDIS_HOSTS
    return f"{'rediss' if TLS else 'redis'}://:{PASSWORD}@" + ",".join(f"{h}:{REDIS_PORT}" for h in hosts)


def with_url(command: str, hosts: list | None = None) -> str:
    """The command with WCLAB_REDIS_URL set (never the password on a command
    line); with several hosts, wclab fails over between them by itself. With
    TLS, WCLAB_TLS_CA too."""
    ca = f"WCLAB_TLS_CA={TLS_CA} " if TLS else ""
    return f"{ca}WCLAB_REDIS_URL={shlex.quote(redis_url(hosts))} {command}"


def cli_on(host: str, args: str, wait: int = 3) -> str:
    """A shell command: redis-cli ARGS (already quoted) against `host`, giving
    up after `wait` seconds; -e: an error reply is a failure."""
    return (
        f"REDISCLI_AUTH={shlex.quote(PASSWORD)} timeout {wait} redis-cli -e --no-auth-warning{CLI_TLS}"
        f" -h {host} -p {REDIS_PORT} {args}"
    )


def cli_any(args: str, hosts: list | None = None) -> str:
    """A shell command: redis-cli ARGS against each host in turn until one
    answers without an error (a Raft replica that is down, cut off, or
    without a leader yet answers an error or nothing)."""
    tries = " || ".join(f"{cli_on(h, args)} 2>/dev/null" for h in hosts or REDIS_HOSTS)
    return f"{{ {tries}; }}"


def redis_cli(machine, *args: str, hosts: list | None = None, timeout: int = 60) -> str:
    """redis-cli on `machine` against the store, trying each host in turn and
    again for up to `timeout` seconds until one answers; returns its output."""
    command = cli_any(" ".join(shlex.quote(a) for a in args), hosts)
    loop = f'until out=$({command}); do sleep 0.2; done; printf "%s\\n" "$out"'
    return machine.succeed(f"timeout {timeout} bash -c {shlex.quote(loop)}", timeout=timeout + 30).strip()


def redis_json(machine, *args: str, hosts: list | None = None):
    """Like redis_cli, with the reply parsed from redis-cli --json."""
    return json.loads(redis_cli(machine, "--json", *args, hosts=hosts))


def done_records(machine) -> list:
    """The job's completion records (task, worker, injected, committed,
    attempts, bytes), one dict per committed task, from the done stream."""
    entries = redis_json(machine, "XRANGE", KEY + ":done", "-", "+")
    return [dict(zip(fields[::2], fields[1::2])) for _id, fields in entries]


def job_field(machine, field: str, hosts: list | None = None) -> int:
    """A counter of the job's hash (files_done, total_tasks, ...), 0 if unset."""
    return int(redis_cli(machine, "HGET", KEY + ":job", field, hosts=hosts) or 0)


def info_field(machine, section: str, field: str, host: str = "") -> str:
    """A field of a plain Redis's INFO (of `host`, default the first)."""
    for line in redis_cli(machine, "INFO", section, hosts=[host or REDIS_HOSTS[0]]).splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in INFO {section}")


def files_done_is_at_least(at_least: int, hosts: list | None = None) -> str:
    """A shell condition: the job has committed at least `at_least` tasks."""
    files_done = cli_any(f"HGET {shlex.quote(KEY + ':job')} files_done", hosts)
    return f'[ "$({files_done})" -ge {at_least} ] 2>/dev/null'


def wait_for_files_done(machine, at_least: int, timeout: int = 300, hosts: list | None = None) -> None:
    """Waits until the job has committed `at_least` tasks (asking `hosts`,
    default every node that serves Redis)."""
    wait_until(machine, files_done_is_at_least(at_least, hosts), timeout)


def background(machine, name: str, command: str) -> None:
    """Starts `command` in the background on `machine`; its output goes to
    SHARED/<name>.log and its exit status to SHARED/<name>.rc."""
    log, rc = f"{SHARED}/{name}.log", f"{SHARED}/{name}.rc"
    machine.succeed(
        f"rm -f {rc}; ( status=0; {command} || status=$?; echo $status > {rc} ) < /dev/null > {log} 2>&1 &"
    )


def wait_background(machine, name: str, timeout: int = 600) -> str:
    """Waits for a background command; fails with its log unless it exited 0."""
    wait_until(machine, f"test -s {SHARED}/{name}.rc", timeout)
    status = machine.succeed(f"cat {SHARED}/{name}.rc").strip()
    output = machine.succeed(f"cat {SHARED}/{name}.log")
    print(f"--- {name} (exit status {status}) ---\n{output}")
    assert status == "0", f"{name} exited with status {status}"
    return output


def wait_for_services(machine) -> None:
    """Waits for the units of `machine`'s services, and for its port."""
    services = TOPOLOGY["nodes"][machine.name]["services"]
    for service in services:
        machine.wait_for_unit(f"wclab-{service}.service")
    if "redis" in services or "redis-raft" in services:
        machine.wait_for_open_port(REDIS_PORT)


def start_and_wait_for_services() -> None:
    start_all()
    if TLS:
        # The certificates Redis's config names: for every name and address
        # it is dialled by. Until they exist, Redis exits and is restarted
        # (Restart=always), and so are the workers, which need the CA.
        names = ",".join(REDIS_HOSTS + [TOPOLOGY["nodes"][h]["address"] for h in REDIS_HOSTS])
        CLIENT.succeed(f"wclab tls-certs --out {SHARED}/tls --host {names}")
    for machine in machines:
        wait_for_services(machine)


def crash_while_holding(victim, restart: bool, tries: int = 8) -> list:
    """Crashes `victim` (a worker node) at a moment when it holds a task (its
    consumer, named after its host name, has a pending entry), so that the
    task must be stolen after the lease. If it committed in between, the
    node is started again and the next try waits for its next task. Returns
    the IDs of the tasks it held; with restart, the node is started again."""
    tasks = shlex.quote(KEY + ":tasks")
    for attempt in range(1, tries + 1):
        # One redis-cli per host polling every 5 ms (-r -1: forever; -e: it
        # stops at an error reply; stdbuf: each reply at once, not when a
        # pipe buffer fills) until grep sees the victim's consumer; redis-cli
        # then dies of SIGPIPE, so the status is grep's (pipefail off).
        polls = " || ".join(
            f"(set +o pipefail; REDISCLI_AUTH={shlex.quote(PASSWORD)} stdbuf -oL redis-cli -e --no-auth-warning{CLI_TLS}"
            f" -h {h} -p {REDIS_PORT} -r -1 -i 0.005 XPENDING {tasks} workers - + 100 2>/dev/null"
            f" | grep -q -m1 '^{victim.name}-')"
            for h in REDIS_HOSTS
        )
        wait_until(CLIENT, f"{{ {polls}; }}", timeout=120)
        victim.crash()
        # A commit the victim sent just before it died may still sit in
        # Redis's socket buffer and run after the crash: let it, so that
        # what XPENDING lists next is what the victim really left behind.
        CLIENT.succeed("sleep 0.5")
        pending = redis_json(CLIENT, "XPENDING", KEY + ":tasks", "workers", "-", "+", "100")
        held = [task for task, consumer, _idle, _n in pending if consumer.startswith(victim.name + "-")]
        print(f"try {attempt}: crashed {victim.name} holding {held}")
        if restart or not held:
            CLIENT.succeed("sleep 1")  # the crashed node stays down a while
            victim.start()
            wait_for_services(victim)
        if held:
            return held
    raise AssertionError(f"{victim.name} never crashed while holding a task ({tries} tries)")
