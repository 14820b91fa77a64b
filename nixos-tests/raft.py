# Raft (lab 4b): three Redis replicas (2f+1, f = 1) kept consistent by the
# Raft component, and a worker node. The leader is crashed mid-job; later a
# follower is cut off with block(). The job finishes with exact counts, and
# progress never goes back (no rollback of a committed task).
#
# PENDING: the Raft component is not in the repository yet, so this topology
# is marked "pending" in topologies/raft.json: the flake leaves it out of
# `checks` and the local runner reports it as SKIPPED. What is left to fill
# in is marked PENDING(raft) below; the rest is the test's final shape.
raft_nodes = [NODES[n] for n, s in sorted(TOPOLOGY["nodes"].items()) if "redis-raft" in s["services"]]
assert len(raft_nodes) == 3, "2f+1 replicas with f = 1"


def raft_url() -> str:
    # PENDING(raft): how a client names the replica set (every replica in the
    # URL, or redirection by followers to the leader).
    raise NotImplementedError("PENDING(raft): the replica set's URL")


def raft_leader():
    # PENDING(raft): ask the replicas who leads (e.g. an INFO section of the
    # component) and return that node.
    raise NotImplementedError("PENDING(raft): find the leader")


start_all()
for node in raft_nodes:
    node.wait_for_unit("wclab-redis-raft.service")  # PENDING(raft): the unit of lib.nix's "redis-raft"
    node.wait_for_open_port(REDIS_PORT)
for machine in WORKERS:
    machine.wait_for_unit("wclab-worker.service")

corpus = f"{SHARED}/raft-corpus"
CLIENT.succeed(f"wclab gen text --out {corpus} --files 400 --size 32KiB --seed 7")
CLIENT.succeed(f"oracle-coreutils {corpus} > {SHARED}/raft-oracle.tsv")
background(
    CLIENT,
    "raft-submit",
    f"WCLAB_REDIS_URL={shlex.quote(raft_url())} wclab submit --job {JOB} --input {corpus} --wait -o {SHARED}/raft-counts.tsv",
)
progress = []  # files_done seen over time: must never decrease (no rollback)

with subtest("the leader crashes mid-job"):
    wait_for_files_done(CLIENT, 1)
    leader = raft_leader()
    progress.append(job_field(CLIENT, "files_done"))
    leader.crash()
    # PENDING(raft): wait for a new leader among the two others.
    progress.append(job_field(CLIENT, "files_done"))
    leader.start()

with subtest("a follower is cut off"):
    follower = next(n for n in raft_nodes if n is not raft_leader())
    follower.block()
    progress.append(job_field(CLIENT, "files_done"))
    follower.unblock()

with subtest("the job finishes exactly, with no rollback"):
    wait_background(CLIENT, "raft-submit")
    CLIENT.succeed(f"cmp {SHARED}/raft-counts.tsv {SHARED}/raft-oracle.tsv")
    progress.append(job_field(CLIENT, "files_done"))
    assert progress == sorted(progress), f"progress went back: {progress}"
