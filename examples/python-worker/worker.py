#!/usr/bin/env python3
"""A wclab worker in Python, written from docs/protocol.md alone.

    WCLAB_REDIS_URL=redis://:password@host:port python3 worker.py --job NAME

Claims tasks of job NAME, counts the words of each file or byte range, and
commits them through the wclab Redis Functions, exactly like `wclab worker`
(it can work beside it on one job). Plain-text jobs only: a CSV job is
refused (exit status 2). Needs redis-py (pip install redis, or Debian's
python3-redis).
"""

import argparse
import collections
import os
import random
import re
import signal
import socket
import stat
import sys
import time

import redis

GROUP = "workers"
WHITESPACE = b" \t\n\r\x0b\x0c"  # the six bytes that end a word
SPACE = re.compile(rb"[ \t\n\r\x0b\x0c]")
CHUNK = 8 << 20  # bytes read at a time
DEFAULT_LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lua", "wclab.lua")


class Refused(Exception):
    """A function refused our call (WCLABARG, WCLABSTATE): a bug, or keys edited by hand."""


class Stop(Exception):
    """SIGTERM or SIGINT arrived."""


def code_of(e):
    """The error code of a Redis error: its first word. redis-py strips Redis's
    generic ERR from the message (a message that does not start with a code is
    ERR), and puts its own words before the error of a command in a pipeline."""
    message = str(e).split(" of pipeline caused error: ", 1)[-1]
    word = message.split(" ", 1)[0]
    return word if word.isupper() else "ERR"


class Worker:
    def __init__(self, args):
        self.args = args
        self.r = redis.Redis.from_url(args.redis)
        j = "wclab:{%s}:" % args.job
        self.keys = {k: j + k for k in ("tasks", "counts", "tallies", "done", "dead", "job", "leases", "submitted", "spec", "merging")}
        self.consumer = args.consumer or "py-%s-%d-%04x" % (socket.gethostname(), os.getpid(), random.getrandbits(16))
        self.lease_ms = args.lease_ms
        with open(args.library, "rb") as f:
            self.library = f.read()
        self.stamp = None  # the job stamp the description was read under
        self.roots = []
        self.batch = []  # counted, uncommitted tasks: (id, start, end)
        self.merged = collections.Counter()
        self.oldest = None  # when the oldest of them was counted
        self.stop = False
        self.pause = parse_pause(os.environ.get("WCLAB_TEST_PAUSE", ""))

    # -- Redis ------------------------------------------------------------

    def ensure_library(self):
        """Loads lua/wclab.lua unless Redis has exactly that code."""
        libs = self.r.execute_command("FUNCTION", "LIST", "LIBRARYNAME", "wclab", "WITHCODE")
        for lib in libs:
            # (redis-py may have made the reply a dict, with text keys.)
            fields = lib if isinstance(lib, dict) else dict(zip(lib[::2], lib[1::2]))
            code = fields.get(b"library_code", fields.get("library_code"))
            if code in (self.library, self.library.decode()):
                return
        self.r.execute_command("FUNCTION", "LOAD", "REPLACE", self.library)

    def call(self, fn, roles, *argv):
        """FCALL fn with the job's keys of `roles`, now_ms empty, group workers.
        Retries what the spec says to retry; raises Refused on a refusal."""
        keys = [self.keys[r] for r in roles]
        args = [""] + [GROUP] + list(argv)
        wait = 0.02
        while True:
            try:
                return self.r.fcall(fn, len(keys), *keys, *args)
            except redis.exceptions.ResponseError as e:
                code = code_of(e)
                if code in ("WCLABARG", "WCLABSTATE"):
                    raise Refused("%s refused: %s" % (fn, e))
                if code == "ERR" and not self.r.execute_command("FUNCTION", "LIST", "LIBRARYNAME", "wclab"):
                    print("worker: Redis lost the wclab library; loading it again", file=sys.stderr)
                    self.ensure_library()
                    continue
                if code not in ("BUSY", "LOADING", "TRYAGAIN"):
                    raise
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError):
                pass
            time.sleep(wait)
            wait = min(wait * 2, 1.0)

    # -- the loop ---------------------------------------------------------

    def run(self):
        self.ensure_library()
        idle = 0.001
        while not self.stop:
            reply = self.call("wclab_claim", ("tasks", "dead", "job", "leases", "submitted", "spec"),
                              self.consumer, self.lease_ms, self.args.max_deliveries)
            if reply is None:
                self.flush()
                if self.args.exit_when_done and self.finished():
                    break
                time.sleep(idle)
                idle = min(idle * 2, self.args.idle_poll)
                continue
            if reply[0] == b"dead":
                print("worker: task %s dead-lettered by the claim" % reply[1].decode(), file=sys.stderr)
                continue
            idle = 0.001
            _, tid, path, start, end, _, deliveries, stamp = reply
            tid = tid.decode()
            if any(t[0] == tid for t in self.batch):
                # Handed to us again (a restored Redis forgot the delivery):
                # its counts are in the batch already.
                continue
            if deliveries > 1:
                self.flush()  # a suspect task is committed alone
            try:
                self.handle(tid, path, int(start), int(end), stamp)
            except Stop:
                self.release_all(tid)
                return 0
            if deliveries > 1 or self.batch_full():
                self.flush()
        if self.stop:
            self.release_all(None)
            return 0
        self.flush()
        return 0

    def finished(self):
        h = self.r.hmget(self.keys["job"], "total_tasks", "files_done", "files_dead")
        total, done, dead = (int(v or 0) for v in h)
        return total > 0 and done + dead >= total

    def describe(self, stamp):
        """The job's description, read again whenever the job stamp changes."""
        if stamp == self.stamp:
            return
        job = self.r.hgetall(self.keys["job"])
        if job.get(b"format", b"text") != b"text":
            print("worker: job %s counts CSV, which this worker does not; use wclab worker" % self.args.job,
                  file=sys.stderr)
            raise SystemExit(2)
        self.roots = [r for r in job.get(b"roots", b"").split(b"\n") if r]
        self.stamp = stamp

    def handle(self, tid, path, start, end, stamp):
        try:
            self.describe(stamp)
        except SystemExit:
            self.call("wclab_release", ("tasks", "leases"), self.consumer, self.lease_ms, tid)
            raise
        reason = self.refuse_path(path)
        if reason:
            return self.bury(tid, reason)
        if self.pause:
            self.sleep(self.pause / 1000)
        try:
            counted = count_range(path, start, end, self.renewing(tid))
        except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
            return self.bury(tid, "%s: %s" % (path.decode(errors="replace"), e.strerror))
        except OSError as e:
            print("worker: %s: %s; left for another try after its lease" % (path, e), file=sys.stderr)
            return
        self.merged.update(counted)
        self.batch.append((tid, start, end))
        self.oldest = self.oldest or time.monotonic()

    def refuse_path(self, path):
        """Why a path may not be opened, or None: absolute, canonical, under a root, a regular file."""
        if not path.startswith(b"/"):
            return "%s: not an absolute path" % path.decode(errors="replace")
        if not any(path == r or path.startswith(r.rstrip(b"/") + b"/") for r in self.roots):
            return "%s: outside the job's input roots" % path.decode(errors="replace")
        try:
            if os.path.realpath(path) != path:
                return "%s: not a canonical path" % path.decode(errors="replace")
            if not stat.S_ISREG(os.stat(path).st_mode):
                return "%s: not a regular file" % path.decode(errors="replace")
        except OSError as e:
            return "%s: %s" % (path.decode(errors="replace"), e.strerror)
        return None

    def bury(self, tid, reason):
        print("worker: dead-lettering %s: %s" % (tid, reason), file=sys.stderr)
        self.call("wclab_dead", ("tasks", "dead", "job", "leases"), self.consumer, tid, reason)

    def renewing(self, tid):
        """A callback for the counter: renews this task and the batch every third of a lease."""
        last = [time.monotonic()]

        def tick():
            if self.stop:
                raise Stop()
            if time.monotonic() - last[0] >= self.lease_ms / 3000:
                for t in [tid] + [b[0] for b in self.batch]:
                    self.call("wclab_renew", ("tasks", "leases"), self.consumer, t)
                last[0] = time.monotonic()
        return tick

    def sleep(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.stop:
                raise Stop()
            time.sleep(min(0.01, end - time.monotonic()))

    def batch_full(self):
        age = self.oldest and time.monotonic() - self.oldest
        return len(self.batch) >= self.args.commit_batch or (age and age * 2000 >= self.lease_ms)

    def flush(self):
        """Commits the batch; tasks someone else committed are dropped, the rest counted again."""
        while self.batch:
            n = str(len(self.batch))
            tasks = []
            for tid, start, end in self.batch:
                tasks += [tid, end - start]
            words = sum(self.merged.values())
            # The tally: a line `count word` per word (docs/protocol.md, "Tallies").
            tally = b"".join(b"%d %s\n" % (count, word) for word, count in self.merged.items())
            reply = self.call("wclab_commit", COMMIT_KEYS, self.consumer, n, *tasks, words, tally)
            if reply[0] == 1:
                break
            gone = {g.decode() for g in reply[1:]}
            print("worker: %s committed elsewhere; counting the rest again" % sorted(gone), file=sys.stderr)
            rest = [b for b in self.batch if b[0] not in gone]
            self.batch, self.merged, self.oldest = [], collections.Counter(), None
            for tid, start, end in rest:
                try:
                    self.merged.update(count_range(self.stamped_path(tid), start, end, lambda: None))
                    self.batch.append((tid, start, end))
                except OSError:
                    pass  # left pending: stolen and counted after its lease
        self.batch, self.merged, self.oldest = [], collections.Counter(), None

    def stamped_path(self, tid):
        entry = self.r.xrange(self.keys["tasks"], tid, tid)
        return entry[0][1][b"path"]

    def release_all(self, current):
        """Gives back the task being counted and the uncommitted ones."""
        for tid in ([current] if current else []) + [b[0] for b in self.batch]:
            given = self.call("wclab_release", ("tasks", "leases"), self.consumer, self.lease_ms, tid)
            print("worker: stopping; task %s given back (%s)" % (tid, bool(given)), file=sys.stderr)
        self.batch, self.merged = [], collections.Counter()


COMMIT_KEYS = ("tasks", "counts", "tallies", "done", "job", "leases")


def count_range(path, start, end, tick):
    """The words that start in [start, end) of the file: a word running past end is
    read to its end; a word that began before start belongs to the range before."""
    counts = collections.Counter()
    with open(path, "rb") as f:
        if start > 0:
            f.seek(start - 1)
            before = f.read(1)
        else:
            before = b" "
        pos = start
        carry = b""
        skip = before and before not in WHITESPACE  # inside a word of the range before
        while pos < end:
            tick()
            data = f.read(min(CHUNK, end - pos))
            if not data:
                break
            pos += len(data)
            if skip:
                space = SPACE.search(data)
                if space is None:
                    continue
                data, skip = data[space.start():], False
            data = carry + data
            # The last word may go on in the next chunk (or past end).
            last = max(data.rfind(c) for c in WHITESPACE)
            carry, data = data[last + 1:], data[:last + 1]
            counts.update(data.split())
        while carry:  # the last word runs past end: read it to its end
            more = f.read(4096)
            if not more:
                break
            space = SPACE.search(more)
            carry += more if space is None else more[:space.start()]
            if space is not None:
                break
        if carry:
            counts[carry] += 1
    return counts


def parse_pause(spec):
    """WCLAB_TEST_PAUSE=while_counting:MS (a test's window to kill us)."""
    point, _, ms = spec.partition(":")
    return int(ms) if point == "while_counting" and ms.isdigit() else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis", default=os.environ.get("WCLAB_REDIS_URL", "redis://127.0.0.1:6379"),
                   help="redis://[:password@]host:port (default: $WCLAB_REDIS_URL)")
    p.add_argument("--job", default="wclab")
    p.add_argument("--consumer", help="consumer name, unique per process (default: py-<host>-<pid>-<random>)")
    p.add_argument("--lease-ms", type=int, default=5000, help="a silent worker's task is stolen after this")
    p.add_argument("--max-deliveries", type=int, default=5)
    p.add_argument("--commit-batch", type=int, default=32, help="tasks per commit at most")
    p.add_argument("--idle-poll", type=float, default=0.02, help="longest sleep when idle (s)")
    p.add_argument("--exit-when-done", action="store_true")
    p.add_argument("--library", default=DEFAULT_LIBRARY, help="lua/wclab.lua")
    w = Worker(p.parse_args())

    def stop(signum, frame):
        w.stop = True
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return w.run()
    except Refused as e:
        print("worker: %s (nothing was changed; see docs/protocol.md, Errors)" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
