# Checkpoints (lab 4a): the Redis node snapshots every second ("save 1 1"
# in topologies/checkpoint.json). Mid-job, after a snapshot that holds some
# progress, the Redis node is crashed, then started again: Redis reloads
# dump.rdb from its state directory, the submitter re-submits what the
# snapshot lacks, the workers recount what it forgot. The counts are exact.
# The workers pause 20 ms per task (WCLAB_TEST_PAUSE in
# topologies/checkpoint.json): with commits of up to 32 merged tasks the
# job would otherwise be over in about a second, before any snapshot.
start_and_wait_for_services()
redis_node = NODES[REDIS_HOSTS[0]]

corpus = f"{SHARED}/checkpoint-corpus"
with step("generate a corpus and its expected counts"):
    CLIENT.succeed(f"wclab gen text --out {corpus} --files 1200 --size 32KiB --seed 4")
    CLIENT.succeed(f"oracle-coreutils {corpus} > {SHARED}/checkpoint-oracle.tsv")

with step("Redis crashes after a checkpoint, mid-job, and restarts from dump.rdb"):
    background(
        CLIENT,
        "checkpoint-submit",
        with_url(f"wclab submit --job {JOB} --input {corpus} --wait -k 3 -o {SHARED}/checkpoint-counts.tsv"),
    )
    wait_for_files_done(CLIENT, 1)
    saves = int(info_field(CLIENT, "persistence", "rdb_saves"))
    # The next snapshot is taken after files were committed.
    persistence = cli_on(redis_node.name, "INFO persistence")
    wait_until(CLIENT, f"[ \"$({persistence} | tr -d '\\r' | sed -n 's/^rdb_saves://p')\" -gt {saves} ]", timeout=60)
    done_at_crash = job_field(CLIENT, "files_done")
    total = job_field(CLIENT, "total_tasks")
    redis_node.crash()
    print(f"crashed {redis_node.name} with {done_at_crash} of {total} files done")
    assert done_at_crash < total, "the job was over before the crash: make the corpus bigger"

    redis_node.start()
    wait_for_services(redis_node)
    # The port opens before dump.rdb is loaded: wait for the load to end.
    wait_until(CLIENT, f"{persistence} | tr -d '\\r' | grep -qx loading:0", timeout=60)
    loaded = int(info_field(CLIENT, "persistence", "rdb_last_load_keys_loaded"))
    print(f"{redis_node.name} restarted and loaded {loaded} keys from dump.rdb")
    assert loaded > 0, "Redis did not restart from its dump.rdb"

    wait_background(CLIENT, "checkpoint-submit")
    CLIENT.succeed(f"cmp {SHARED}/checkpoint-counts.tsv {SHARED}/checkpoint-oracle.tsv")
    assert job_field(CLIENT, "files_done") == total
    assert redis_cli(CLIENT, "XLEN", KEY + ":done") == str(total), "a task committed twice"
    print(f"EXACT: {total} files counted across a Redis crash and restore")
