#!/usr/bin/env python3
"""Word count in PySpark, the baseline of `just bench` for a data-parallel
engine: local[N], the DataFrame API, the same word definition as wclab
(maximal runs of bytes that are not ASCII whitespace, as Python's
bytes.split()).

The job runs twice in one Spark session: the first run includes the JVM's
start and warm-up, the second is "warm" (what a long-lived cluster would
see). Prints one JSON line with both timings, the words and distinct words.

Usage: wordcount.py --threads N FILE...
"""

import argparse
import json
import os
import time

start = time.monotonic()

from pyspark.sql import SparkSession  # noqa: E402  (timed from the start)
from pyspark.sql import functions as F  # noqa: E402

# ASCII whitespace, 0x09-0x0D and 0x20: the line breaks are already gone.
SPACES = "[\\t\\n\\x0b\\x0c\\r ]+"


def count(spark, files):
    words = (
        spark.read.text(files)
        .select(F.explode(F.split(F.col("value"), SPACES)).alias("w"))
        .where(F.col("w") != "")
    )
    per_word = words.groupBy("w").count()
    row = per_word.agg(F.sum("count").alias("words"), F.count("w").alias("distinct")).collect()[0]
    return int(row["words"]), int(row["distinct"])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("files", nargs="+")
    a = p.parse_args()
    spark = (
        SparkSession.builder.master(f"local[{a.threads}]")
        .appName("wclab-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(max(2, a.threads * 2)))
        .config("spark.driver.memory", "4g")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    files = [os.path.abspath(f) for f in a.files]
    total = sum(os.path.getsize(f) for f in files)
    words, distinct = count(spark, files)
    cold = time.monotonic() - start
    t = time.monotonic()
    count(spark, files)
    warm = time.monotonic() - t
    spark.stop()
    print(json.dumps({
        "bytes": total, "words": words, "distinct": distinct,
        "cold_seconds": cold, "warm_seconds": warm,
        "cold_mb_per_s": total / 1e6 / cold, "warm_mb_per_s": total / 1e6 / warm,
    }))


if __name__ == "__main__":
    main()
