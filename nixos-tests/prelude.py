# Shared by every topology's test script. Both runners put it before
# <name>.py, after two constants:
#   TOPOLOGY  the topology, parsed from topologies/<name>.json
#   SHARED    a directory that every node sees at the same path
# It uses only the NixOS test driver's API (machines, succeed,
# wait_until_succeeds, ...), so that the very same scripts run in NixOS VMs
# (nixos-tests/lib.nix) and on network-namespace hosts (local/driver.py).
import shlex  # (json is imported by the header that defines TOPOLOGY)

JOB: str = TOPOLOGY["job"]
PASSWORD: str = TOPOLOGY["password"]
REDIS_PORT: int = TOPOLOGY["redis"]["port"]
NODES = {m.name: m for m in machines}
REDIS_HOSTS = sorted(n for n, s in TOPOLOGY["nodes"].items() if "redis" in s["services"])
WORKERS = [NODES[n] for n, s in sorted(TOPOLOGY["nodes"].items()) if "worker" in s["services"]]
CLIENT = NODES[TOPOLOGY["client"]]
# The job's keys: wclab:{JOB}:tasks, :counts, :done, :dead, :job (README).
KEY = "wclab:{" + JOB + "}"


def redis_url(host: str) -> str:
    return f"redis://:{PASSWORD}@{host}:{REDIS_PORT}"


def with_url(command: str, host: str = "") -> str:
    """The command with WCLAB_REDIS_URL set (never the password on a command line)."""
    url = redis_url(host or REDIS_HOSTS[0])
    return f"WCLAB_REDIS_URL={shlex.quote(url)} {command}"


def redis_cli(machine, *args: str, host: str = "") -> str:
    """redis-cli on `machine` against the topology's Redis; returns its output."""
    words = " ".join(shlex.quote(a) for a in args)
    return machine.succeed(
        f"REDISCLI_AUTH={shlex.quote(PASSWORD)} redis-cli --no-auth-warning"
        f" -h {host or REDIS_HOSTS[0]} -p {REDIS_PORT} {words}"
    ).strip()


def redis_json(machine, *args: str, host: str = ""):
    """Like redis_cli, with the reply parsed from redis-cli --json."""
    return json.loads(redis_cli(machine, "--json", *args, host=host))


def done_records(machine) -> list:
    """The job's completion records (task, worker, injected, committed,
    attempts, bytes), one dict per committed task, from the done stream."""
    entries = redis_json(machine, "XRANGE", KEY + ":done", "-", "+")
    return [dict(zip(fields[::2], fields[1::2])) for _id, fields in entries]


def job_field(machine, field: str) -> int:
    """A counter of the job's hash (files_done, total_tasks, ...), 0 if unset."""
    return int(redis_cli(machine, "HGET", KEY + ":job", field) or 0)


def info_field(machine, section: str, field: str) -> str:
    for line in redis_cli(machine, "INFO", section).splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in INFO {section}")


def wait_for_files_done(machine, at_least: int, timeout: int = 300) -> None:
    machine.wait_until_succeeds(
        f"test \"$(REDISCLI_AUTH={shlex.quote(PASSWORD)} redis-cli --no-auth-warning"
        f" -h {REDIS_HOSTS[0]} -p {REDIS_PORT} HGET {shlex.quote(KEY + ':job')} files_done)\" -ge {at_least}",
        timeout=timeout,
    )


def background(machine, name: str, command: str) -> None:
    """Starts `command` in the background on `machine`; its output goes to
    SHARED/<name>.log and its exit status to SHARED/<name>.rc."""
    log, rc = f"{SHARED}/{name}.log", f"{SHARED}/{name}.rc"
    machine.succeed(
        f"rm -f {rc}; ( status=0; {command} || status=$?; echo $status > {rc} ) < /dev/null > {log} 2>&1 &"
    )


def wait_background(machine, name: str, timeout: int = 600) -> str:
    """Waits for a background command; fails with its log unless it exited 0."""
    machine.wait_until_succeeds(f"test -s {SHARED}/{name}.rc", timeout=timeout)
    status = machine.succeed(f"cat {SHARED}/{name}.rc").strip()
    output = machine.succeed(f"cat {SHARED}/{name}.log")
    print(f"--- {name} (exit status {status}) ---\n{output}")
    assert status == "0", f"{name} exited with status {status}"
    return output


def start_and_wait_for_services() -> None:
    start_all()
    for name in REDIS_HOSTS:
        NODES[name].wait_for_unit("wclab-redis.service")
        NODES[name].wait_for_open_port(REDIS_PORT)
    for machine in WORKERS:
        machine.wait_for_unit("wclab-worker.service")


def crash_while_holding(victim, restart: bool, tries: int = 8) -> list:
    """Crashes `victim` (a worker node) at a moment when it holds a task (its
    consumer, named after its host name, has a pending entry), so that the
    task must be stolen after the lease. If it committed in between, the
    node is started again and the next try waits for its next task. Returns
    the IDs of the tasks it held; with restart, the node is started again."""
    tasks = shlex.quote(KEY + ":tasks")
    for attempt in range(1, tries + 1):
        # One redis-cli polling every 5 ms (-r -1: forever; stdbuf: each
        # reply at once, not when a pipe buffer fills) until grep sees the
        # victim's consumer; redis-cli then dies of SIGPIPE, so the status is
        # grep's (pipefail off).
        poll = f"REDISCLI_AUTH={shlex.quote(PASSWORD)} stdbuf -oL redis-cli --no-auth-warning -h {REDIS_HOSTS[0]} -p {REDIS_PORT}"
        CLIENT.succeed(
            f"(set +o pipefail; {poll} -r -1 -i 0.005 XPENDING {tasks} workers - + 100 | grep -q -m1 '^{victim.name}-')",
            timeout=120,
        )
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
            victim.wait_for_unit("wclab-worker.service")
        if held:
            return held
    raise AssertionError(f"{victim.name} never crashed while holding a task ({tries} tries)")
