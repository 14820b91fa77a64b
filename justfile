# wclab: distributed word count on Redis. `just` lists the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

wclab := "target/release/wclab"
corpus := "out/corpus"

# List the recipes
[private]
default:
    @just --list --unsorted

# Lab 1 (batch): count the corpus with 1 and 2 workers (one thread each), check it is exact, show the speed-up
[group('labs')]
lab1: corpus
    #!/usr/bin/env bash
    set -euo pipefail
    mbps() { sed -n 's/.* \([0-9.]*\) MB\/s.*/\1/p' "$1" | tail -1; }
    for n in 1 2; do
      echo "== lab 1: $n worker(s), one counting thread each"
      {{wclab}} run --input {{corpus}} --workers $n --threads 1 -k 5 -o out/lab1-w$n.tsv | tee out/lab1-w$n.txt
    done
    echo "== checking against an independent oracle (coreutils)"
    scripts/oracle-coreutils {{corpus}} > out/lab1-oracle.tsv
    cmp out/lab1-w1.tsv out/lab1-oracle.tsv && cmp out/lab1-w2.tsv out/lab1-oracle.tsv
    echo "EXACT: both runs equal the oracle, word for word ($(wc -l < out/lab1-oracle.tsv) distinct words)"
    awk -v a="$(mbps out/lab1-w1.txt)" -v b="$(mbps out/lab1-w2.txt)" \
      'BEGIN { printf "speed-up with 2 workers: %.2fx (%s -> %s MB/s; %d cores here)\n", b / a, a, b, '"$(nproc)"' }'

# Lab 2 (worker fault tolerance): kill -9 workers holding tasks at seeded points of the job; counts stay exact
[group('labs')]
lab2 KILLS="20" SEED="1": corpus
    #!/usr/bin/env bash
    set -euo pipefail
    echo "== lab 2: {{KILLS}} workers killed with SIGKILL while they hold a task (seed {{SEED}})"
    echo "   the corpus is split into 1 MiB byte-range tasks, so that there is plenty to kill"
    {{wclab}} run --input {{corpus}} --workers 3 --threads 1 --lease 1s --split-size 1MiB \
      --chaos-kills {{KILLS}} --chaos-seed {{SEED}} -k 5 -o out/lab2.tsv | tee out/lab2.txt
    [ -f out/lab1-oracle.tsv ] || scripts/oracle-coreutils {{corpus}} > out/lab1-oracle.tsv
    cmp out/lab2.tsv out/lab1-oracle.tsv
    grep -q "^{{KILLS}} worker(s) killed" out/lab2.txt || { echo "fewer kills than asked for (see above)" >&2; exit 1; }
    echo "EXACT: counts equal the oracle despite {{KILLS}} kills ($(wc -l < out/lab2.tsv) distinct words)"

# Lab 3 (streaming): 3 scenarios x 2 injection rates (+ speculation); all timelines side by side in out/lab3/lab3.png
[group('labs')]
lab3 DURATION="20s": build
    #!/usr/bin/env bash
    set -euo pipefail
    w={{wclab}}; d=out/lab3; mkdir -p $d
    [ -d $d/tweets ] || $w gen tweets --out $d/tweets --files 500 --rows 1000 --seed 3
    # Runs 2.3 ms in 230 ms: less than a task needs, so each task it takes
    # waits a stop; 230 ms does not divide the 1 s of a micro-batch, so its
    # runs do not lock onto the injections.
    slow="--stragglers 1 --straggler-cpu 1 --straggler-period 230ms"
    for rate in 10 20; do
      echo "== rate $rate files/s: no failures, crashing workers, stragglers, stragglers + speculation"
      $w stream --input $d/tweets --rate $rate --duration {{DURATION}} --workers 3 --out $d/none-$rate
      $w stream --input $d/tweets --rate $rate --duration {{DURATION}} --workers 2 --crashing 1 --out $d/crash-$rate
      $w stream --input $d/tweets --rate $rate --duration {{DURATION}} --workers 2 $slow --out $d/straggle-$rate
      $w stream --input $d/tweets --rate $rate --duration {{DURATION}} --workers 2 $slow --speculate --label "$rate files/s, speculation" --out $d/straggle-spec-$rate
    done
    $w plot $d/none-10 $d/none-20 --title "no failures: 3 workers" -o $d/none.png
    $w plot $d/crash-10 $d/crash-20 --title "crashing workers: 2 + 1 killed with SIGKILL" -o $d/crash.png
    $w plot $d/straggle-10 $d/straggle-20 --title "stragglers: 2 + 1 held to 1% of a CPU" -o $d/straggle.png
    $w plot $d/straggle-20 $d/straggle-spec-20 --title "stragglers at 20 files/s, without and with speculation" -o $d/speculation.png
    # The four figures as panels of one image, side by side.
    $w plot --panels 4 --columns 2 --width 900 --height 450 \
      --title "lab 3: latency of each file against its injection time ({{DURATION}} of injection per run)" \
      --panel-title "no failures: 3 workers" --panel-title "crashing workers: 2 + 1 killed with SIGKILL" \
      --panel-title "stragglers: 2 + 1 held to 1% of a CPU" --panel-title "stragglers at 20 files/s, without and with speculation" \
      $d/none-10 $d/none-20 $d/crash-10 $d/crash-20 $d/straggle-10 $d/straggle-20 $d/straggle-20 $d/straggle-spec-20 \
      --label "10 files/s" --label "20 files/s" --label "10 files/s" --label "20 files/s" \
      --label "10 files/s" --label "20 files/s" --label "without speculation" --label "with speculation" \
      -o $d/lab3.png
    echo "side by side: $d/lab3.png; each: $d/none.png $d/crash.png $d/straggle.png $d/speculation.png; per run: $d/*/summary.json"

# Build the release binary
[group('setup')]
build:
    cargo build --release --bin wclab

# Generate the lab corpus (32 files x 4 MiB of English) unless it exists
[group('setup')]
corpus: build
    @[ -d {{corpus}} ] || {{wclab}} gen text --out {{corpus}} --files 32 --size 4MiB --seed 1

# The whole test suite: Rust tests and lints, offline Nix checks, multi-host tests (root)
[group('tests')]
test: cargo-test check-nix hosts-test test-aarch64

# Formatting, lints, unit and integration tests (no root needed)
[group('tests')]
cargo-test:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test --workspace

# Remove generated corpora and results
[group('setup')]
clean:
    rm -rf out

# Lab 4a (checkpoints): BGSAVE every 500ms, Redis killed and restored from dump.rdb; counts stay exact
[group('labs')]
lab4-checkpoint KILLS="4" SEED="1": corpus
    #!/usr/bin/env bash
    set -euo pipefail
    echo "== lab 4a: BGSAVE every 500ms; redis-server killed with SIGKILL {{KILLS}} times and restarted"
    echo "   on the same port, with the same password, from its dump.rdb"
    rm -rf out/lab4-redis
    {{wclab}} run --input {{corpus}} --workers 2 --lease 1s --threads 1 --split-size 1MiB \
      --checkpoint-every 500ms --chaos-redis-kills {{KILLS}} --chaos-seed {{SEED}} \
      --redis-dir out/lab4-redis -k 5 -o out/lab4.tsv | tee out/lab4.txt
    [ -f out/lab1-oracle.tsv ] || scripts/oracle-coreutils {{corpus}} > out/lab1-oracle.tsv
    cmp out/lab4.tsv out/lab1-oracle.tsv
    grep -q "Redis killed and restored {{KILLS}} time(s)" out/lab4.txt || { echo "fewer Redis kills than asked for (see above)" >&2; exit 1; }
    ls -l out/lab4-redis/dump.rdb
    echo "EXACT: counts equal the oracle after every restore"

# Compare persistence modes (none, BGSAVE, AOF everysec/always): throughput and work redone after crashes
[group('benchmarks')]
bench-persistence: build
    bench/persistence.sh {{wclab}}

# Speed benchmark: kernel, end to end, baselines (cat, coreutils, the seed in Python on the whole corpus, PySpark), then the scale curve (1x and 10x), in one run
[group('benchmarks')]
bench:
    bench/suite.sh

# Lab 3's latency by stage and Redis time per function (issue 19): the seed's streaming design and wclab stream, side by side
[group('benchmarks')]
bench-stream-stages SECONDS="6" *RATES="10 100":
    bench/stream.sh {{SECONDS}} {{RATES}}

# Sustainable streaming rate (issue 19): a sweep of rates, wclab stream beside the seed's design in Python and Spark Structured Streaming
[group('benchmarks')]
bench-stream SECONDS="20" *RATES="50 100 200 400 800 1600":
    bench/stream-sweep.sh {{SECONDS}} {{RATES}}

# Scale curve (issue 22): wclab run at 1x and 10x the bench corpus against the kernel, Redis CPU per GB; BEFORE=path/to/older/wclab runs it interleaved
bench-scale REPEAT="3" BEFORE="":
    bench/scale.sh {{ if BEFORE != "" { "--before " + BEFORE } else { "" } }} {{REPEAT}}

# Offline checks of the Nix side: .nix parse and format, flake.lock, test scripts, stub evaluation
[group('tests')]
check-nix:
    scripts/check-nix

# The counting kernel's tests on aarch64 (NEON) under qemu-user, cross-compiled (installs the toolchain with apt)
[group('tests')]
test-aarch64:
    scripts/test-aarch64

# The NixOS VM test scripts on network-namespace hosts (root); binary from $WCLAB_BIN_DIR or target/release
[group('tests')]
hosts-test *TOPOLOGIES:
    [ -n "${WCLAB_BIN_DIR:-}" ] || cargo build --release --bin wclab
    python3 nixos-tests/local/driver.py {{TOPOLOGIES}}

# Lab 4b (Raft): 2f+1 replicas; f of them (the leader among them) killed and restarted twice mid-job; exact, nothing lost ("just lab4-raft 1 tls": in TLS, peers in mutual TLS)
[group('labs')]
lab4-raft F="1" TLS="": build
    TLS={{ if TLS != "" { "1" } else { "" } }} scripts/lab4-raft.sh {{F}} {{wclab}}

# Price of Raft: commit FCALL p50/p99 and job MB/s for plain Redis, Redis + BGSAVE, Raft f=1 and f=2
[group('benchmarks')]
bench-raft: build
    bench/raft.sh {{wclab}}

# What TLS costs a Raft commit: commit p50 on a plain and a TLS (mutual TLS between peers) 3-node cluster, interleaved
[group('benchmarks')]
bench-raft-tls: build
    bench/raft-tls.sh {{wclab}}

# Jepsen-style matrix (issue 21): every workload x nemesis on 3 and 5 nodes, DURATION each; report in out/jepsen/report.md
[group('tests')]
jepsen DURATION="20s" SEED="1":
    cargo build --release --bin wclab --bin wclab-jepsen
    target/release/wclab-jepsen matrix --wclab target/release/wclab --duration {{DURATION}} --seed {{SEED}} --out out/jepsen
