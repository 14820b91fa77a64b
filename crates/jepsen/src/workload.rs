//! Workloads: the operations clients send while the nemesis acts, and how
//! each reply becomes an outcome.
//!
//! Outcomes follow the sidecar's contract: `-TRYAGAIN` means "not
//! applied, retry" and is recorded as a *failure*; `-UNKNOWN`, a timeout,
//! a lost connection or any other error to a write is *unknown* (it may
//! have been applied). A read that does not succeed is a failure: it
//! changed nothing. A connection that cannot be opened sends nothing, so
//! no operation is recorded for it. After an unknown outcome the client
//! continues as a fresh process on a new connection.

use crate::history::{Event, Recorder, Type, Value, F};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the clients do.
#[derive(clap::ValueEnum, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// SET/GET of unique values on 3 registers; checked for linearizability.
    Register,
    /// INCRBY/GET on one counter; reads within bounds, final value exact.
    Counter,
    /// RPUSH of unique elements / LRANGE on 3 lists.
    List,
    /// `wclab run` jobs, one after another; counts against the oracle.
    Wordcount,
}

impl Workload {
    /// Every workload, in the matrix's order.
    pub const ALL: [Workload; 4] = [
        Workload::Register,
        Workload::Counter,
        Workload::List,
        Workload::Wordcount,
    ];

    /// The kebab-case name.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The keys its final reads cover.
    pub fn keys(self) -> Vec<String> {
        match self {
            Workload::Register => (0..3).map(|k| format!("jepsen:r{k}")).collect(),
            Workload::Counter => vec!["jepsen:c".into()],
            Workload::List => (0..3).map(|k| format!("jepsen:l{k}")).collect(),
            Workload::Wordcount => vec![],
        }
    }
}

/// What every client shares.
pub struct Clients {
    /// The workload.
    pub workload: Workload,
    /// `(node, host:port)` the clients may talk to.
    pub endpoints: Vec<(u64, String)>,
    /// The history.
    pub recorder: Recorder,
    /// Set to stop the clients after their current operation.
    pub stop: AtomicBool,
    /// The next unique value (register values, list elements).
    pub next_value: AtomicI64,
    /// An operation not answered within this is unknown (a read: failed).
    pub op_timeout: Duration,
}

/// One operation to send.
struct Planned {
    f: F,
    key: String,
    arg: Option<Value>,
}

fn plan(c: &Clients, rng: &mut ChaCha8Rng) -> Planned {
    let keys = c.workload.keys();
    let key = keys[rng.random_range(0..keys.len())].clone();
    let unique = || c.next_value.fetch_add(1, Ordering::SeqCst);
    let (f, arg) = match c.workload {
        Workload::Register if rng.random_bool(0.5) => (F::Write, Some(Value::Int(unique()))),
        Workload::Counter if rng.random_bool(0.7) => {
            (F::Add, Some(Value::Int(rng.random_range(1..=5))))
        }
        Workload::List if rng.random_bool(0.7) => (F::Append, Some(Value::Int(unique()))),
        _ => (F::Read, None),
    };
    Planned { f, key, arg }
}

fn command(workload: Workload, p: &Planned) -> redis::Cmd {
    let int = |v: &Option<Value>| match v {
        Some(Value::Int(i)) => *i,
        _ => 0,
    };
    match (p.f, workload) {
        (F::Write, _) => redis::cmd("SET").arg(&p.key).arg(int(&p.arg)).clone(),
        (F::Add, _) => redis::cmd("INCRBY").arg(&p.key).arg(int(&p.arg)).clone(),
        (F::Append, _) => redis::cmd("RPUSH").arg(&p.key).arg(int(&p.arg)).clone(),
        (F::Read, Workload::List) => redis::cmd("LRANGE").arg(&p.key).arg(0).arg(-1).clone(),
        _ => redis::cmd("GET").arg(&p.key).clone(),
    }
}

/// A reply as the history records it: the outcome, a read's value, and
/// the error text.
pub fn classify(
    f: F,
    workload: Workload,
    reply: Result<Result<redis::Value, redis::RedisError>, tokio::time::error::Elapsed>,
) -> (Type, Option<Value>, Option<String>) {
    let is_read = f == F::Read;
    let unknown = if is_read { Type::Fail } else { Type::Unknown };
    match reply {
        Err(_) => (unknown, None, Some("timed out".into())),
        Ok(Err(e)) => {
            let kind = match e.code() {
                Some("TRYAGAIN") => Type::Fail,
                _ => unknown,
            };
            (kind, None, Some(e.to_string()))
        }
        Ok(Ok(v)) if is_read => match read_value(workload, &v) {
            Ok(value) => (Type::Ok, value, None),
            Err(why) => (Type::Fail, None, Some(why)),
        },
        Ok(Ok(_)) => (Type::Ok, None, None),
    }
}

fn read_value(workload: Workload, v: &redis::Value) -> Result<Option<Value>, String> {
    let int = |b: &[u8]| -> Result<i64, String> {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an integer: {:?}", String::from_utf8_lossy(b)))
    };
    match (workload, v) {
        (Workload::List, redis::Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                match i {
                    redis::Value::BulkString(b) => out.push(int(b)?),
                    other => return Err(format!("unexpected element {other:?}")),
                }
            }
            Ok(Some(Value::List(out)))
        }
        (Workload::List, redis::Value::Nil) => Ok(Some(Value::List(Vec::new()))),
        (_, redis::Value::Nil) => Ok(None),
        (_, redis::Value::BulkString(b)) => Ok(Some(Value::Int(int(b)?))),
        (_, other) => Err(format!("unexpected reply {other:?}")),
    }
}

async fn connect(addr: &str) -> Option<MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(None);
    tokio::time::timeout(
        Duration::from_secs(2),
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    .ok()?
    .ok()
}

/// One logical client: operations one at a time until told to stop.
pub async fn client(c: Arc<Clients>, slot: usize, seed: u64) {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (slot as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut process = c.recorder.fresh_process();
    let mut endpoint = slot % c.endpoints.len();
    let mut conn: Option<MultiplexedConnection> = None;
    while !c.stop.load(Ordering::SeqCst) {
        let (node, addr) = c.endpoints[endpoint].clone();
        let con = match conn.as_mut() {
            Some(con) => con,
            None => match connect(&addr).await {
                Some(con) => conn.insert(con),
                None => {
                    endpoint = (endpoint + 1) % c.endpoints.len();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let p = plan(&c, &mut rng);
        let cmd = command(c.workload, &p);
        c.recorder.record(Event {
            kind: Type::Invoke,
            process,
            time: 0,
            f: p.f,
            key: p.key.clone(),
            value: p.arg.clone(),
            node: Some(node),
            error: None,
        });
        let reply = tokio::time::timeout(c.op_timeout, cmd.query_async::<redis::Value>(con)).await;
        let (kind, value, error) = classify(p.f, c.workload, reply);
        c.recorder.record(Event {
            kind,
            process,
            time: 0,
            f: p.f,
            key: p.key,
            value: if kind == Type::Ok && p.f == F::Read {
                value
            } else {
                p.arg
            },
            node: Some(node),
            error,
        });
        match kind {
            Type::Ok => {
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..10))).await;
            }
            _ => {
                if kind == Type::Unknown {
                    process = c.recorder.fresh_process();
                }
                // Like wclab's own clients: another node, after a pause.
                conn = None;
                endpoint = rng.random_range(0..c.endpoints.len());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// After the run: one successful read of every key, through any node,
/// each attempt recorded (fresh process each time).
pub async fn final_reads(c: Arc<Clients>, limit: Duration) -> Result<(), String> {
    let started = std::time::Instant::now();
    for key in c.workload.keys() {
        let mut i = 0;
        loop {
            if started.elapsed() > limit {
                return Err(format!("no final read of {key} succeeded within {limit:?}"));
            }
            let (node, addr) = c.endpoints[i % c.endpoints.len()].clone();
            i += 1;
            let Some(mut con) = connect(&addr).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let process = c.recorder.fresh_process();
            let p = Planned {
                f: F::Read,
                key: key.clone(),
                arg: None,
            };
            c.recorder.record(Event {
                kind: Type::Invoke,
                process,
                time: 0,
                f: F::Read,
                key: key.clone(),
                value: None,
                node: Some(node),
                error: None,
            });
            let reply = tokio::time::timeout(
                c.op_timeout,
                command(c.workload, &p).query_async::<redis::Value>(&mut con),
            )
            .await;
            let (kind, value, error) = classify(F::Read, c.workload, reply);
            c.recorder.record(Event {
                kind,
                process,
                time: 0,
                f: F::Read,
                key: key.clone(),
                value,
                node: Some(node),
                error,
            });
            if kind == Type::Ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(text: &str) -> redis::RedisError {
        // Parse a real RESP error reply, as the client would receive it.
        let mut parser = redis::Parser::new();
        match parser.parse_value(format!("-{text}\r\n").as_bytes()) {
            Ok(redis::Value::ServerError(e)) => e.into(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tryagain_fails_unknown_and_lost_connections_are_unknown_and_reads_only_fail() {
        let t = |f, r| classify(f, Workload::Register, r).0;
        let tryagain = || {
            Ok(Err(server_error(
                "TRYAGAIN wclab-raft: no leader elected yet",
            )))
        };
        let unknown = || {
            Ok(Err(server_error(
                "UNKNOWN wclab-raft: the outcome is not known",
            )))
        };
        let io = || {
            Ok(Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            ))))
        };
        assert_eq!(t(F::Write, tryagain()), Type::Fail);
        assert_eq!(t(F::Write, unknown()), Type::Unknown);
        assert_eq!(t(F::Write, io()), Type::Unknown);
        assert_eq!(
            t(F::Write, Ok(Err(server_error("ERR something else")))),
            Type::Unknown
        );
        assert_eq!(t(F::Read, unknown()), Type::Fail);
        assert_eq!(t(F::Read, io()), Type::Fail);
        assert_eq!(t(F::Write, Ok(Ok(redis::Value::Okay))), Type::Ok);
        assert_eq!(
            classify(
                F::Read,
                Workload::Register,
                Ok(Ok(redis::Value::BulkString(b"17".to_vec())))
            ),
            (Type::Ok, Some(Value::Int(17)), None)
        );
        assert_eq!(
            classify(
                F::Read,
                Workload::List,
                Ok(Ok(redis::Value::Array(vec![
                    redis::Value::BulkString(b"3".to_vec()),
                    redis::Value::BulkString(b"1".to_vec()),
                ])))
            ),
            (Type::Ok, Some(Value::List(vec![3, 1])), None)
        );
    }
}
