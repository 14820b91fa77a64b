#!/usr/bin/env python3
"""Lab 3's streaming baseline in Spark Structured Streaming (issue 19):
PySpark local[N], the file source on a directory, the same 200-row tweet
CSVs and the same injection as `wclab stream` (R files at the start of each
second), word count of the `text` column with wclab's word definition
(maximal runs of non-whitespace bytes).

Each micro-batch (trigger: as soon as the previous one ends) counts the
words of the files that arrived since the last one and collects them to the
driver, the equivalent of wclab's commit; a file's latency is from the
moment it was moved into the watched directory (an atomic rename, as Spark's
file source requires) to the end of the micro-batch that counted it, both on
this machine's clock (the only one: everything runs here).

Usage: stream.py --threads N --rate R --duration S FILE...
Prints one JSON line: {"files", "p50_ms", "p95_ms", "p99_ms", "max_ms",
"files_per_s", "window_s", "startup_s"}.
"""

import argparse
import json
import os
import shutil
import tempfile
import threading
import time

SPACES = "[\\t\\n\\x0b\\x0c\\r ]+"


def percentile(sorted_values, p):
    if not sorted_values:
        return 0
    # Nearest rank, as wclab-stream's summary computes it.
    rank = -(-p * len(sorted_values) // 100)
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rate", type=int, required=True)
    p.add_argument("--duration", type=int, default=6)
    p.add_argument("--drain", type=float, default=60.0)
    p.add_argument("files", nargs="+")
    a = p.parse_args()
    files = a.files[: a.rate * a.duration]
    if len(files) < a.rate * a.duration:
        raise SystemExit(f"need {a.rate * a.duration} files, got {len(files)}")

    t0 = time.monotonic()
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    spark = (
        SparkSession.builder.master(f"local[{a.threads}]")
        .appName("wclab-stream-baseline")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(a.threads))
        .config("spark.sql.streaming.noDataMicroBatches.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    work = tempfile.mkdtemp(prefix="wclab-spark-")
    watched, staging = os.path.join(work, "in"), os.path.join(work, "staging")
    os.makedirs(watched)
    os.makedirs(staging)
    schema = StructType([StructField("id", StringType()), StructField("text", StringType()),
                         StructField("user", StringType())])
    source = (
        spark.readStream.schema(schema)
        .option("header", "true")
        .option("multiLine", "true")
        .option("escape", '"')
        .csv(watched)
        .withColumn("file", F.input_file_name())
    )
    injected = {}  # file name -> injection time (s, monotonic)
    committed = {}  # file name -> end of its micro-batch
    lock = threading.Lock()

    def commit(batch, _batch_id):
        words = batch.select("file", F.explode(F.split(F.col("text"), SPACES)).alias("w")).where(
            F.col("w") != "")
        counts = words.groupBy("w").count().collect()  # the batch's counts, at the driver
        names = [r["file"] for r in batch.select("file").distinct().collect()]
        done = time.monotonic()
        del counts
        with lock:
            for n in names:
                committed.setdefault(os.path.basename(n), done)

    query = source.writeStream.foreachBatch(commit).trigger(processingTime="0 seconds").start()
    # Warm-up: one file through the whole path before the clock starts.
    warm = os.path.join(staging, "warm-up.csv")
    shutil.copy(files[0], warm)
    os.rename(warm, os.path.join(watched, "warm-up.csv"))
    while "warm-up.csv" not in committed:
        time.sleep(0.05)
    startup = time.monotonic() - t0

    for i, f in enumerate(files):
        shutil.copy(f, os.path.join(staging, f"{i:06d}.csv"))
    start = time.monotonic()
    for second in range(a.duration):
        time.sleep(max(0.0, start + second - time.monotonic()))
        now = time.monotonic()
        for i in range(second * a.rate, (second + 1) * a.rate):
            name = f"{i:06d}.csv"
            os.rename(os.path.join(staging, name), os.path.join(watched, name))
            injected[name] = now
    deadline = time.monotonic() + a.drain
    while time.monotonic() < deadline:
        with lock:
            if all(n in committed for n in injected):
                break
        time.sleep(0.05)
    query.stop()
    spark.stop()
    shutil.rmtree(work, ignore_errors=True)
    with lock:
        lat = sorted(round((committed[n] - t) * 1000) for n, t in injected.items() if n in committed)
        last = max((committed[n] for n in injected if n in committed), default=start)
    window = max(a.duration, last - start)
    print(json.dumps({
        "files": len(lat),
        "p50_ms": percentile(lat, 50),
        "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99),
        "max_ms": lat[-1] if lat else 0,
        "files_per_s": round(len(lat) / window, 1),
        "window_s": round(window, 2),
        "startup_s": round(startup, 1),
    }))


if __name__ == "__main__":
    main()
