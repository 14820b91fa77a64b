//! What a commit costs Redis, per function library: the `usec_per_call` of
//! FCALL in `INFO commandstats` over fixed commits, for one or more
//! versions of `lua/wclab.lua`, interleaved round by round on one private
//! redis-server so that a busy machine slows them alike.
//!
//! ```text
//! cargo run --release -p wclab-coord --example commit_cost -- [--rounds N] [--only S] A.lua [B.lua ...]
//! ```
//!
//! Three commits, each with a `counts` set that already holds the whole
//! vocabulary (83 000 words, like the bench corpus's), each one tally
//! (docs/protocol.md, "Tallies"):
//!
//! * one word: 1 task, 1 word (what every call costs besides its words);
//! * small: 1 task, 100 words (lab 3's commits);
//! * big: 1 task, 83 000 words (a batch's merged commits).
//!
//! Prints the median over the rounds of each library's microseconds per
//! call, and each library's ratio to the first. The libraries must take
//! the same `wclab_commit` (this protocol's).

use std::time::Duration;
use wclab_coord::JobKeys;
use wclab_server::{RedisServer, ServerOptions};

const VOCABULARY: usize = 83_000;
const SMALL_WORDS: usize = 100;
const SMALL_COMMITS: usize = 300;
const BIG_COMMITS: usize = 5;

fn main() -> redis::RedisResult<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = 5;
    let mut only: Option<usize> = None;
    loop {
        match args.first().map(String::as_str) {
            Some("--rounds") => rounds = args[1].parse().expect("--rounds N"),
            Some("--only") => only = Some(args[1].parse().expect("--only SCENARIO (0-2)")),
            _ => break,
        }
        args.drain(..2);
    }
    if args.is_empty() {
        eprintln!(
            "usage: commit_cost [--rounds N] [--only SCENARIO] LIBRARY.lua [LIBRARY.lua ...]"
        );
        std::process::exit(2);
    }
    let libraries: Vec<(String, String)> = args
        .iter()
        .map(|p| {
            (
                p.clone(),
                std::fs::read_to_string(p).expect("read a library"),
            )
        })
        .collect();
    let server = RedisServer::start(ServerOptions::default()).expect("start redis-server");
    let mut con = redis::Client::open(server.url())?.get_connection()?;
    con.set_read_timeout(Some(Duration::from_secs(120)))?;

    let scenarios = ["one word", "small", "big"];
    // usec[library][scenario] = one figure per round
    let mut usec = vec![vec![Vec::new(); scenarios.len()]; libraries.len()];
    for round in 0..rounds {
        for (s, scenario) in scenarios.iter().enumerate() {
            if only.is_some_and(|o| o != s) {
                continue;
            }
            // Every other round in the reverse order: whatever the previous
            // run leaves behind (freed memory, a busy neighbour) falls on
            // each library alike.
            let mut order: Vec<usize> = (0..libraries.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for l in order {
                let (name, code) = &libraries[l];
                let v = measure(&mut con, code, s)?;
                eprintln!("round {round}: {name}: {scenario}: {v:.1} us per FCALL");
                usec[l][s].push(v);
            }
        }
    }
    println!(
        "median of {rounds} rounds, microseconds per FCALL (INFO commandstats), ratio to {}:",
        libraries[0].0
    );
    for (s, scenario) in scenarios.iter().enumerate() {
        if only.is_some_and(|o| o != s) {
            continue;
        }
        let base = median(&usec[0][s]);
        for (l, (name, _)) in libraries.iter().enumerate() {
            let m = median(&usec[l][s]);
            println!("{scenario:<16} {name:<40} {m:>10.1} us  x{:.3}", m / base);
        }
    }
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn words(n: usize, count: u64) -> Vec<(String, u64)> {
    (0..n).map(|i| (format!("w{i:05}x"), count)).collect()
}

/// One scenario on a fresh job; returns FCALL's usec_per_call.
fn measure(con: &mut redis::Connection, library: &str, scenario: usize) -> redis::RedisResult<f64> {
    let k = JobKeys::new("cost");
    redis::cmd("FLUSHALL").exec(con)?;
    redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(library)
        .exec(con)?;
    let commits = if scenario < 2 {
        SMALL_COMMITS
    } else {
        BIG_COMMITS
    };
    let mut submit = redis::cmd("FCALL");
    submit
        .arg("wclab_submit")
        .arg(3)
        .arg(&k.tasks)
        .arg(&k.job)
        .arg(&k.submitted)
        .arg("")
        .arg("workers");
    for i in 0..commits {
        submit
            .arg(format!("0-{}", i + 1))
            .arg(format!("/in/{i}"))
            .arg(0)
            .arg(100);
    }
    submit.exec(con)?;
    let mut ids = Vec::new();
    for _ in 0..commits {
        let mut claim = redis::cmd("FCALL");
        claim
            .arg("wclab_claim")
            .arg(6)
            .arg(&k.tasks)
            .arg(&k.dead)
            .arg(&k.job)
            .arg(&k.leases)
            .arg(&k.submitted)
            .arg(&k.spec)
            .arg("")
            .arg("workers")
            .arg("w")
            .arg(60_000)
            .arg(5);
        let reply: Vec<redis::Value> = claim.query(con)?;
        ids.push(redis::from_redis_value::<String>(reply[1].clone())?);
    }
    // The whole vocabulary is there already.
    let mut fill = redis::cmd("ZADD");
    fill.arg(&k.counts);
    for (w, n) in words(VOCABULARY, 1) {
        fill.arg(n).arg(w);
    }
    fill.exec(con)?;
    let batch = match scenario {
        0 => words(1, 3),
        1 => words(SMALL_WORDS, 3),
        _ => words(VOCABULARY, 2),
    };
    let total: u64 = batch.iter().map(|w| w.1).sum();
    redis::cmd("CONFIG").arg("RESETSTAT").exec(con)?;
    let (tally, _) = wclab_coord::commit::tally(batch.iter().map(|(w, n)| (w.as_bytes(), *n)));
    for id in &ids {
        let mut call = redis::cmd("FCALL");
        call.arg("wclab_commit")
            .arg(6)
            .arg(&k.commit_keys()[..])
            .arg("")
            .arg("workers")
            .arg("w")
            .arg(1)
            .arg(id)
            .arg(100)
            .arg(total)
            .arg(&tally);
        check(&call.query(con)?);
    }
    let stats: String = redis::cmd("INFO").arg("commandstats").query(con)?;
    Ok(stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_fcall:"))
        .and_then(|l| {
            l.split(',')
                .find_map(|kv| kv.strip_prefix("usec_per_call="))
        })
        .and_then(|v| v.parse().ok())
        .expect("cmdstat_fcall in INFO commandstats"))
}

fn check(reply: &redis::Value) {
    assert!(
        matches!(reply, redis::Value::Array(v) if v.first() == Some(&redis::Value::Int(1))),
        "the commit was not applied: {reply:?}"
    );
}
