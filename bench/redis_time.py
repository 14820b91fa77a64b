#!/usr/bin/env python3
"""Redis's own time per call of each function and command, from its slow log.

The server must run with `slowlog-log-slower-than 0` and a `slowlog-max-len`
larger than the calls of interest, so that every call is logged with its
execution time in microseconds (Redis's own measure, without the network or
the client). Prints one JSON object: for each FCALL'd function (by name) and
each other command, calls, total_ms, mean_us, p50_us, p99_us, max_us; and
`_cpu_s`, the server's user + system CPU seconds so far.

    bench/redis_time.py PORT PASSWORD
"""
import collections
import json
import sys

import redis

r = redis.Redis(port=int(sys.argv[1]), password=sys.argv[2])
by = collections.defaultdict(list)
for entry in r.slowlog_get(-1):
    words = entry["command"].split()
    if not words or words[0].upper() in (b"SLOWLOG", b"CONFIG", b"INFO"):
        continue
    name = words[0].decode().upper()
    if name in ("FCALL", "FCALL_RO") and len(words) > 1:
        name = words[1].decode()
    by[name].append(entry["duration"])
out = {}
for name, us in sorted(by.items()):
    us.sort()
    out[name] = {
        "calls": len(us),
        "total_ms": round(sum(us) / 1000, 1),
        "mean_us": round(sum(us) / len(us)),
        "p50_us": us[len(us) // 2],
        "p99_us": us[min(len(us) - 1, int(len(us) * 0.99))],
        "max_us": us[-1],
    }
cpu = r.info("cpu")
out["_cpu_s"] = round(cpu["used_cpu_user"] + cpu["used_cpu_sys"], 2)
print(json.dumps(out))
