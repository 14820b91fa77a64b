#!/usr/bin/env python3
"""The course seed's design, written faithfully in Python: the baseline that
`just bench` measures wclab against.

A client puts file paths on a Redis stream; N worker processes read them
through a consumer group (XREADGROUP, one at a time), count the words with
`collections.Counter(data.split())` (the same word definition as wclab:
Python's bytes.split()), and commit each file with one FCALL of a Redis
Function that XACKs the file and, only if the XACK returned 1, ZINCRBYs every
word. No batching, no byte ranges: one commit per file, as in the seed.

Usage: wordcount.py --redis-port P --password PW --workers N [--output FILE] FILE...
Prints one JSON line: {"files", "bytes", "seconds", "mb_per_s", "distinct"}.
"""

import argparse
import collections
import json
import multiprocessing
import sys
import time

import redis

STREAM, GROUP, COUNTS = "seed:files", "seed:workers", "seed:counts"

LIBRARY = """#!lua name=seed
redis.register_function('seed_commit', function(keys, args)
  if redis.call('XACK', keys[1], args[1], args[2]) == 1 then
    for i = 3, #args, 2 do
      redis.call('ZINCRBY', keys[2], args[i + 1], args[i])
    end
    return 1
  end
  return 0
end)
"""


def worker(port, password, name):
    r = redis.Redis(port=port, password=password)
    while True:
        got = r.xreadgroup(GROUP, name, {STREAM: ">"}, count=1, block=200)
        if not got:
            if r.xinfo_groups(STREAM)[0]["pending"] == 0:
                return
            continue
        entry_id, fields = got[0][1][0]
        if fields.get(b"path") == b"":
            return
        with open(fields[b"path"], "rb") as f:
            counts = collections.Counter(f.read().split())
        args = [GROUP, entry_id]
        for word, n in counts.items():
            args += [word, n]
        r.fcall("seed_commit", 2, STREAM, COUNTS, *args)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--output")
    p.add_argument("files", nargs="+")
    a = p.parse_args()
    r = redis.Redis(port=a.redis_port, password=a.password)
    r.function_load(LIBRARY, replace=True)
    r.delete(STREAM, COUNTS)
    total = 0
    start = time.monotonic()
    r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    for path in a.files:
        with open(path, "rb") as f:
            f.seek(0, 2)
            total += f.tell()
        r.xadd(STREAM, {"path": path})
    procs = [multiprocessing.Process(target=worker, args=(a.redis_port, a.password, f"w{i}")) for i in range(a.workers)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join()
        if pr.exitcode != 0:
            sys.exit(f"worker failed with {pr.exitcode}")
    seconds = time.monotonic() - start
    distinct = r.zcard(COUNTS)
    if a.output:
        rows = r.zrange(COUNTS, 0, -1, withscores=True)
        rows.sort(key=lambda wc: (-wc[1], wc[0]))
        with open(a.output, "wb") as out:
            for word, n in rows:
                out.write(word + b"\t" + str(int(n)).encode() + b"\n")
    print(json.dumps({"files": len(a.files), "bytes": total, "seconds": seconds,
                      "mb_per_s": total / 1e6 / seconds, "distinct": distinct}))


if __name__ == "__main__":
    main()
