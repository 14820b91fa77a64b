# Raft (lab 4b): three Redis replicas (2f+1, f = 1), each a `wclab raft
# node` sidecar with its own redis-server (unit wclab-redis-raft), a client
# and a worker node. The client forms the cluster and submits a job with
# the URL of all three replicas; the worker node counts. While the job runs:
#
#   1. the leader is crashed: the other two elect a new leader and the job
#      goes on; the old leader is started again and catches up;
#   2. a follower is cut off (block): the other two still make a majority
#      and keep committing; the follower is let back in;
#   3. the leader is cut off: a minority leader. It must not acknowledge a
#      write (a probe HSET sent to it directly fails); the majority elects
#      another leader and the job goes on; after the heal the probe is
#      nowhere.
#
# All along, a sampler on the client reads files_done (a linearizable read
# through any replica) every ~100 ms and fails if it ever goes down: no
# rollback of a committed task. At the end: counts equal to the oracle, one
# completion record per task (nothing committed twice, nothing recomputed),
# nothing dead-lettered, and the same dataset (RAFT.DIGEST) on all three.
#
# The worker pauses 50 ms per task (WCLAB_TEST_PAUSE in topologies/raft.json)
# so that the job outlasts the three failures on any machine.
RAFT = [NODES[n] for n in RAFT_HOSTS]
assert len(RAFT) == 3, "2f+1 replicas with f = 1"
RAFT_ENV = f"WCLAB_RAFT_PASSWORD={shlex.quote(PASSWORD)}"
MEMBERS = ",".join(f"{TOPOLOGY['nodes'][n]['raft_id']}={n}:{REDIS_PORT}" for n in RAFT_HOSTS)
ID_OF = {n: str(TOPOLOGY["nodes"][n]["raft_id"]) for n in RAFT_HOSTS}
PROBE = "wclab-raft-test-probe"  # the key a minority leader must not commit
STEP = 20  # tasks committed while a replica is down or cut off


def raft_infos(hosts: list) -> dict:
    """host -> its RAFT.INFO fields ({} if it does not answer within 3 s)."""
    script = "; ".join(
        f"echo '# host {h}'; {cli_on(h, 'RAFT.INFO', wait=3)} 2>/dev/null | tr -d '\\r' || true" for h in hosts
    )
    infos: dict[str, dict[str, str]] = {}
    host: str | None = None
    for line in CLIENT.succeed(script).splitlines():
        if line.startswith("# host "):
            host = line.split()[2]
            infos[host] = {}
        elif ":" in line and host:
            key, value = line.split(":", 1)
            infos[host][key] = value.strip()
    return infos


def wait_for_leader(among: list, timeout: int = 60) -> str:
    """Waits until a node of `among` leads and every other one of them that
    answers follows it (same leader_id); returns the leader's name."""
    deadline = time.monotonic() + timeout
    while True:
        infos = raft_infos(among)
        leaders = [h for h, i in infos.items() if i.get("role") == "leader"]
        if len(leaders) == 1:
            lead = leaders[0]
            if all(i.get("leader_id") == ID_OF[lead] for i in infos.values() if i):
                return lead
        assert time.monotonic() < deadline, f"no leader among {among} after {timeout} s: {infos}"
        time.sleep(0.2)


def wait_for_follower(host: str, leader: str, timeout: int = 60) -> None:
    """Waits until `host` is back as a follower of `leader`."""
    deadline = time.monotonic() + timeout
    while True:
        info = raft_infos([host])[host]
        if info.get("role") == "follower" and info.get("leader_id") == ID_OF[leader]:
            return
        assert time.monotonic() < deadline, f"{host} does not follow {leader} after {timeout} s: {info}"
        time.sleep(0.2)


def files_done(hosts: list | None = None) -> int:
    return job_field(CLIENT, "files_done", hosts)


def not_over(done: int) -> None:
    assert done < total, f"the job was over ({done} of {total}) before this step: make it longer"


start_all()
for machine in machines:
    wait_for_services(machine)

with step("form the cluster from the client"):
    CLIENT.succeed(f"{RAFT_ENV} wclab raft init --node {RAFT_HOSTS[0]}:{REDIS_PORT} --member {MEMBERS}")
    leader = wait_for_leader(RAFT_HOSTS)
    print(f"cluster {MEMBERS}: {leader} leads")
    print(CLIENT.succeed(f"{RAFT_ENV} wclab raft status --node {','.join(f'{h}:{REDIS_PORT}' for h in RAFT_HOSTS)}"))

corpus = f"{SHARED}/raft-corpus"
with step("generate a corpus and its expected counts"):
    CLIENT.succeed(f"wclab gen text --out {corpus} --files 600 --size 32KiB --seed 7")
    CLIENT.succeed(f"oracle-coreutils {corpus} > {SHARED}/raft-oracle.tsv")
    total = int(CLIENT.succeed(f"find {corpus} -type f | wc -l"))

# The sampler: files_done through whichever replica answers (the last one
# that did first), every ~100 ms, into SHARED/raft-sampler.log; it exits 1
# if the value ever goes down, and 0 when SHARED/raft-sampler.stop appears.
sampler = f"""
hosts=({' '.join(RAFT_HOSTS)}); good=0; last=0; samples=0
while [ ! -e {SHARED}/raft-sampler.stop ]; do
  for i in 0 1 2; do
    k=$(( (good + i) % 3 ))
    if v=$({cli_on('${hosts[$k]}', 'HGET ' + shlex.quote(KEY + ':job') + ' files_done', wait=2)} 2>/dev/null); then
      good=$k; break
    fi
    v=
  done
  if [[ "$v" =~ ^[0-9]+$ ]]; then
    if [ "$v" -lt "$last" ]; then echo "ROLLBACK: files_done went from $last to $v"; exit 1; fi
    last=$v; samples=$((samples + 1)); echo "$(date +%s.%N) ${{hosts[$good]}} $v"
  fi
  sleep 0.1
done
echo "sampler: $samples samples, files_done never went down, last $last"
"""
background(CLIENT, "raft-sampler", f"bash -c {shlex.quote(sampler)}")
background(
    CLIENT,
    "raft-submit",
    with_url(f"wclab submit --job {JOB} --input {corpus} --wait -k 3 -o {SHARED}/raft-counts.tsv"),
)

with step("1. the leader crashes mid-job; the other two elect a new leader; it comes back and catches up"):
    wait_for_files_done(CLIENT, total // 6)
    old = wait_for_leader(RAFT_HOSTS)
    before = files_done()
    not_over(before)
    NODES[old].crash()
    crashed_at = time.monotonic()
    others = [h for h in RAFT_HOSTS if h != old]
    new = wait_for_leader(others)
    print(f"{old} (the leader) crashed at {before} of {total} tasks; {new} leads"
          f" {time.monotonic() - crashed_at:.1f} s later")
    wait_for_files_done(CLIENT, before + STEP)
    print(f"{files_done()} tasks committed without {old}")
    NODES[old].start()
    wait_for_services(NODES[old])
    wait_for_follower(old, new)
    print(f"{old} is back, following {new}")

with step("2. a follower is cut off; the two others keep committing"):
    lead = wait_for_leader(RAFT_HOSTS)
    follower = next(h for h in RAFT_HOSTS if h != lead)
    before = files_done()
    not_over(before)
    NODES[follower].block()
    others = [h for h in RAFT_HOSTS if h != follower]  # (asking the cut-off node would only wait)
    wait_for_files_done(CLIENT, before + STEP, hosts=others)
    still = wait_for_leader(others)
    assert still == lead != follower, f"the leader changed from {lead} to {still} when {follower} was cut off"
    print(f"{follower} cut off at {before} tasks; {files_done(others)} committed meanwhile, {lead} still leads")
    NODES[follower].unblock()
    wait_for_follower(follower, lead)

with step("3. the leader is cut off: a minority leader cannot commit; the majority goes on"):
    old = wait_for_leader(RAFT_HOSTS)
    before = files_done()
    not_over(before)
    NODES[old].block()
    # Sent to the cut-off leader on its own node (the only client that can
    # reach it): not acknowledged, an error (TRYAGAIN) or no reply at all.
    reply = NODES[old].fail(f"{cli_on('localhost', f'HSET {PROBE} k v', wait=15)} 2>&1")
    print(f"a write sent to {old}, cut off: {reply.strip() or '(no reply in 15 s)'}")
    others = [h for h in RAFT_HOSTS if h != old]
    new = wait_for_leader(others)
    wait_for_files_done(CLIENT, before + STEP, hosts=others)
    print(f"{new} leads the majority; {files_done(others)} tasks committed while {old} was cut off")
    NODES[old].unblock()
    wait_for_follower(old, new)
    assert redis_cli(CLIENT, "EXISTS", PROBE) == "0", "a write of the minority leader survived the heal"

with step("the job finishes exactly, nothing twice, no rollback, replicas identical"):
    wait_background(CLIENT, "raft-submit")
    CLIENT.succeed(f"cmp {SHARED}/raft-counts.tsv {SHARED}/raft-oracle.tsv")
    assert job_field(CLIENT, "total_tasks") == total
    assert files_done() == total
    done = int(redis_cli(CLIENT, "XLEN", KEY + ":done"))
    assert done == total, f"{done} completion records for {total} tasks: a task committed twice"
    assert redis_cli(CLIENT, "XLEN", KEY + ":dead") == "0"
    CLIENT.succeed(f"touch {SHARED}/raft-sampler.stop")
    wait_background(CLIENT, "raft-sampler")
    # Nothing writes any more once the worker node is down (an idle worker
    # polls with XREADGROUP, a write): then every replica reaches the same
    # applied index, and must hold the same data there.
    for machine in WORKERS:
        machine.crash()
    digests = f"for h in {' '.join(RAFT_HOSTS)}; do {cli_on('$h', 'RAFT.DIGEST')} | head -2 | tr '\\n' ' '; echo; done"
    wait_until(CLIENT, f'[ "$({digests} | sort -u | wc -l)" = 1 ]', timeout=60)
    digests = CLIENT.succeed(digests)
    print(f"replicas (applied index, digest): {digests}")
    assert redis_cli(CLIENT, "EXISTS", PROBE) == "0"
    print(f"EXACT: {total} tasks, each committed once, through a leader crash, a follower and a leader"
          " cut off; files_done never went down; the three replicas are identical")
