# Streaming (lab 3): the client node runs `wclab stream` against the Redis
# node: it injects files at a fixed rate (both timestamps from the Redis
# clock) with one local worker, while the two worker nodes count too. One
# worker node is crashed mid-stream and started again later. Every injected
# file is committed exactly once, and latency recovers: the files injected at
# the end are as fast as before the crash (no backlog left behind).
start_and_wait_for_services()

corpus = f"{SHARED}/streaming-corpus"
out = f"{SHARED}/streaming-out"
rate, seconds = 4, 20
lease_ms = 2000  # --lease 2s, as the worker nodes (topologies/streaming.json)
# The worker nodes commit each file on its own (--commit-batch 1, as
# `wclab stream`'s own workers do): a file's latency is then its own, not
# that of the batch it waited in. They pause 300 ms per file
# (WCLAB_TEST_PAUSE in topologies/streaming.json): a file counts in ~20 ms,
# too short a time to crash a node while it holds one.
# Files of 2 MiB: each keeps a worker busy long enough to be caught holding it.
with step("generate the files to inject"):
    CLIENT.succeed(f"wclab gen text --out {corpus} --files {rate * seconds} --size 2MiB --seed 3")

with step("inject at a rate; a worker node crashes and comes back; latency recovers"):
    background(
        CLIENT,
        "streaming",
        with_url(
            f"wclab stream --job {JOB} --input {corpus} --format text --rate {rate} --duration {seconds}s"
            f" --workers 1 --lease 2s --out {out}"
        ),
    )
    wait_for_files_done(CLIENT, rate * 2)
    # worker1 crashes while it holds a file: that file waits for the lease
    # to run out and is stolen, the spike that the lab shows.
    victim = WORKERS[0]
    held = crash_while_holding(victim, restart=True)
    wait_background(CLIENT, "streaming", timeout=300)

    records = done_records(CLIENT)
    injected = job_field(CLIENT, "total_tasks")
    tasks = [r["task"] for r in records]
    assert len(tasks) == len(set(tasks)) == injected, f"{injected} injected, {len(tasks)} commits"
    latency = sorted((int(r["injected"]), int(r["committed"]) - int(r["injected"])) for r in records)
    tail = [ms for _, ms in latency[-3 * rate:]]  # the files of the last three seconds
    worst = max(ms for _, ms in latency)
    tail_median = sorted(tail)[len(tail) // 2]
    print(f"{injected} files; worst latency {worst} ms; median of the last {len(tail)}: {tail_median} ms")
    print(CLIENT.succeed(f"cat {out}/summary.json"))
    stolen = [r for r in records if r["task"] in held]
    for r in stolen:
        print(f"file {r['task']}: held by the crashed node, stolen after the lease, latency "
              f"{int(r['committed']) - int(r['injected'])} ms, {r['attempts']} deliveries")
        assert int(r["committed"]) - int(r["injected"]) >= lease_ms and int(r["attempts"]) >= 2
    assert tail_median < lease_ms, "latency did not recover after the crash"
    print("RECOVERED: every file committed once; latency back under the lease after the crash")
