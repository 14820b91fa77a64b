# Batch (labs 1 and 2): a Redis node and two worker nodes. The job is
# submitted from the Redis node; one worker node is crashed mid-job (its
# task is stolen after the lease) and the job still finishes exactly.
start_and_wait_for_services()

corpus = f"{SHARED}/batch-corpus"
with step("generate a corpus and its expected counts"):
    CLIENT.succeed(f"wclab gen text --out {corpus} --files 16 --size 4MiB --seed 6")
    CLIENT.succeed(f"oracle-coreutils {corpus} > {SHARED}/batch-oracle.tsv")

with step("a worker node crashes mid-job; the counts are exact"):
    background(
        CLIENT,
        "batch-submit",
        with_url(f"wclab submit --job {JOB} --input {corpus} --wait -k 3 -o {SHARED}/batch-counts.tsv"),
    )
    # The workers pause 300 ms per task (WCLAB_TEST_PAUSE in
    # topologies/batch.json) and merge up to 32 tasks per commit, or what
    # they hold after a second: the first commits land about a second in,
    # with most of the job still ahead.
    wait_for_files_done(CLIENT, 1)
    victim = WORKERS[0]
    held = crash_while_holding(victim, restart=False)  # and it stays down
    done_at_crash = job_field(CLIENT, "files_done")
    total = job_field(CLIENT, "total_tasks")
    print(f"crashed {victim.name} with {done_at_crash} of {total} files done")
    assert done_at_crash < total, "the job was over before the crash: make the corpus bigger"
    wait_background(CLIENT, "batch-submit")
    CLIENT.succeed(f"cmp {SHARED}/batch-counts.tsv {SHARED}/batch-oracle.tsv")
    assert job_field(CLIENT, "files_done") == total
    assert redis_cli(CLIENT, "XLEN", KEY + ":done") == str(total), "a task committed twice"
    assert redis_cli(CLIENT, "XLEN", KEY + ":dead") == "0"
    stolen = [r for r in done_records(CLIENT) if r["task"] in held]
    assert stolen and all(int(r["attempts"]) >= 2 for r in stolen), f"not stolen: {stolen}"
    print(f"EXACT: {total} files counted; {victim.name} crashed holding {held}, stolen and counted once")
