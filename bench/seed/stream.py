#!/usr/bin/env python3
"""The course seed's streaming design, written faithfully in Python: the
baseline of lab 3's latency (issue 19).

An injector puts R file paths on a Redis stream each second (the seed's
micro-batches: R at once, then a pause); N worker processes read them through
a consumer group (XREADGROUP COUNT 1 BLOCK 50), count the `text` column of
each CSV file with `collections.Counter` (Python's bytes.split(), wclab's word
definition), and commit each file with one FCALL that XACKs it and, only if
the XACK returned 1, ZINCRBYs every word and appends a completion record.
Both ends of a latency are the server's clock: the entry ID of the injection
(XADD *) and TIME inside the commit.

Usage: stream.py --redis-port P [--password PW] --workers N --rate R
                 --duration S FILE...
Prints one JSON line: {"files", "p50_ms", "p95_ms", "p99_ms", "max_ms",
"files_per_s", "window_s"}.
"""

import argparse
import collections
import csv
import io
import json
import multiprocessing
import sys
import time

import redis

STREAM, GROUP, COUNTS, DONE = "seeds:files", "seeds:workers", "seeds:counts", "seeds:done"

LIBRARY = """#!lua name=seedstream
redis.register_function('seedstream_commit', function(keys, args)
  if redis.call('XACK', keys[1], args[1], args[2]) == 1 then
    for i = 3, #args, 2 do
      redis.call('ZINCRBY', keys[2], args[i + 1], args[i])
    end
    local t = redis.call('TIME')
    local now = t[1] * 1000 + math.floor(t[2] / 1000)
    local injected = string.match(args[2], '^(%d+)')
    redis.call('XADD', keys[3], '*', 'injected', injected, 'committed', now)
    return 1
  end
  return 0
end)
"""


def count_text_column(data):
    counts = collections.Counter()
    rows = csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape"), newline=""))
    header = next(rows, [])
    col = header.index("text")
    for row in rows:
        if col < len(row):
            counts.update(row[col].encode("utf-8", "surrogateescape").split())
    return counts


def worker(port, password, name):
    r = redis.Redis(port=port, password=password)
    while True:
        got = r.xreadgroup(GROUP, name, {STREAM: ">"}, count=1, block=50)
        if not got:
            continue
        entry_id, fields = got[0][1][0]
        if fields.get(b"path") == b"":
            return
        with open(fields[b"path"], "rb") as f:
            counts = count_text_column(f.read())
        args = [GROUP, entry_id]
        for word, n in counts.items():
            args += [word, n]
        r.fcall("seedstream_commit", 3, STREAM, COUNTS, DONE, *args)


def percentile(sorted_values, p):
    if not sorted_values:
        return 0
    # Nearest rank, as wclab-stream's summary computes it.
    rank = -(-p * len(sorted_values) // 100)
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--password")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rate", type=int, required=True)
    p.add_argument("--duration", type=int, default=6)
    p.add_argument("--drain", type=float, default=60.0,
                   help="after the last injection, wait this long (s) at most for the rest")
    p.add_argument("files", nargs="+")
    a = p.parse_args()
    r = redis.Redis(port=a.redis_port, password=a.password)
    r.delete(STREAM, COUNTS, DONE)
    r.function_load(LIBRARY, replace=True)
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    files = a.files[: a.rate * a.duration]
    if len(files) < a.rate * a.duration:
        sys.exit(f"need {a.rate * a.duration} files, got {len(files)}")
    procs = [
        multiprocessing.Process(target=worker, args=(a.redis_port, a.password, f"w{i}"))
        for i in range(a.workers)
    ]
    for pr in procs:
        pr.start()
    time.sleep(0.5)  # the workers are blocked in XREADGROUP
    start = time.monotonic()
    for second in range(a.duration):
        time.sleep(max(0.0, start + second - time.monotonic()))
        pipe = r.pipeline(transaction=False)
        for path in files[second * a.rate : (second + 1) * a.rate]:
            pipe.xadd(STREAM, {"path": path})
        pipe.execute()
    deadline = time.monotonic() + a.drain
    while r.xlen(DONE) < len(files) and time.monotonic() < deadline:
        time.sleep(0.05)
    for _ in procs:
        r.xadd(STREAM, {"path": ""})
    for pr in procs:
        pr.join()
    done = [(int(f[b"injected"]), int(f[b"committed"])) for _, f in r.xrange(DONE)]
    lat = sorted(c - i for i, c in done)
    first = min(i for i, _ in done)
    last = max(c for _, c in done)
    window = max(a.duration, (last - first) / 1000)
    print(json.dumps({
        "files": len(done),
        "p50_ms": percentile(lat, 50),
        "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99),
        "max_ms": lat[-1],
        "files_per_s": round(len(done) / window, 1),
        "window_s": window,
    }))
    r.delete(STREAM, COUNTS, DONE)


if __name__ == "__main__":
    main()
