//! The functions as a contract, on a real Redis: random sequences of calls,
//! well-formed and malformed, from several consumers, each checked against
//! a small model of docs/protocol.md written here, independently of the Lua.
//!
//! After every call the job's keys are dumped whole (every key's type and
//! content, the consumer group, the pending entries with their delivery
//! times). A call that the model says succeeds must give the model's reply
//! and leave exactly the model's state; a call that the spec says is
//! refused must fail with the expected code and leave the dump as it was.
//! Counts are compared exactly after every call.
//!
//! Calls use given times (`now_ms`), so that leases, steals and delivery
//! times are the model's to predict. What is generated:
//!
//! * well-formed: submissions (all tasks, some, again, IDs above the
//!   stream's last), claims (new tasks; steals of expired leases, lease 0
//!   included; poison tasks dead-lettered after max_deliveries), renewals
//!   and releases by the owner or another consumer, commits of 1-3 tasks
//!   pending or not, owned or not, small or big, with repeated words, with
//!   counts near 2^53 (refused once a count could pass it), folds of some
//!   or all tallies (merged or not, into an empty or a full sorted set,
//!   stale ones), dead letters, speculation, time going back; hand-written
//!   stream entries (dead-lettered unread);
//! * malformed (each refused with WCLABARG, nothing changed): wrong number
//!   of KEYS, another job's key, roles swapped; a bad now_ms, group or
//!   consumer; non-numeric, negative, fractional, zero or too big numbers;
//!   bad stream IDs; missing and extra arguments; n not matching the
//!   arguments; tallies with (word, count) lines, an empty word, a count of
//!   0, a line without its newline; words not the sum; a fold's words not
//!   its tallies'; a task twice; bytes not the task's; IDs not increasing,
//!   start > end, paths with NUL or relative; an empty reason.
//!
//! `WCLAB_CONTRACT_SEEDS` (default 3) and `WCLAB_CONTRACT_STEPS` (default
//! 400) make it longer; `WCLAB_CONTRACT_SEED` replays one seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;
use std::collections::BTreeMap;
use wclab_coord::JobKeys;
use wclab_server::{RedisServer, ServerOptions};

const MAX: u64 = (1 << 53) - 1;
const JOB: &str = "p";
const ROLES: [&str; 10] = [
    "tasks",
    "counts",
    "tallies",
    "done",
    "dead",
    "job",
    "leases",
    "submitted",
    "spec",
    "merging",
];
const CONSUMERS: [&str; 4] = ["c1", "c2", "c3", "thief"];
const POISON: &str = " times without a commit (poison task, or workers dying on it)";
const FOREIGN: &str = "stream entry not written by wclab_submit (added by hand?): never read";

type Id = (u64, u64);
type Fields = Vec<(String, String)>;

fn id_text(id: Id) -> String {
    format!("{}-{}", id.0, id.1)
}

fn parse_id(s: &str) -> Id {
    let (a, b) = s.split_once('-').expect("a stream ID");
    (a.parse().unwrap(), b.parse().unwrap())
}

// ---------------------------------------------------------------------------
// Replies, normalised.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
}

fn bulk(s: impl AsRef<[u8]>) -> Reply {
    Reply::Bulk(s.as_ref().to_vec())
}

fn reply_of(v: &Value) -> Reply {
    match v {
        Value::Nil => Reply::Nil,
        Value::Int(i) => Reply::Int(*i),
        Value::BulkString(b) => Reply::Bulk(b.clone()),
        Value::SimpleString(s) => Reply::Bulk(s.clone().into_bytes()),
        Value::Array(a) => Reply::Array(a.iter().map(reply_of).collect()),
        other => panic!("unexpected reply {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The dump of a job, from Redis or rendered from the model.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Pel {
    owner: String,
    deliveries: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Dump {
    types: BTreeMap<String, String>,
    tasks: Vec<(String, Fields)>,
    tasks_last: Option<String>,
    /// (last-delivered-id, pending)
    group: Option<(String, u64)>,
    pel: BTreeMap<String, Pel>,
    submitted: BTreeMap<Vec<u8>, Vec<u8>>,
    counts: BTreeMap<Vec<u8>, String>,
    tallies: Vec<(String, Fields)>,
    done: Vec<(String, Fields)>,
    dead: Vec<(String, Fields)>,
    job: BTreeMap<String, String>,
    leases: BTreeMap<String, String>,
    spec: BTreeMap<String, String>,
    merging: BTreeMap<Vec<u8>, String>,
}

/// A dump and the delivery time of each pending entry (compared apart: it
/// is read as TIME minus the idle time, see [`DELIVERY_SLACK_MS`]).
type Snapshot = (Dump, BTreeMap<String, u64>);

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Nil => "<nil>".into(),
        other => panic!("not text: {other:?}"),
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        other => text(other).into_bytes(),
    }
}

fn array(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        other => panic!("not an array: {other:?}"),
    }
}

fn entries(v: &Value) -> Vec<(String, Fields)> {
    array(v)
        .iter()
        .map(|e| {
            let e = array(e);
            let kv = array(&e[1]);
            (
                text(&e[0]),
                kv.chunks(2).map(|p| (text(&p[0]), text(&p[1]))).collect(),
            )
        })
        .collect()
}

fn pairs(v: &Value) -> BTreeMap<Vec<u8>, Vec<u8>> {
    array(v)
        .chunks(2)
        .map(|p| (bytes(&p[0]), bytes(&p[1])))
        .collect()
}

fn text_pairs(v: &Value) -> BTreeMap<String, String> {
    pairs(v)
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
        .collect()
}

fn dump(con: &mut redis::Connection, k: &JobKeys) -> Snapshot {
    let q = |con: &mut redis::Connection, c: &mut redis::Cmd| -> Value { c.query(con).unwrap() };
    let mut d = Dump::default();
    for role in ROLES {
        let key = k.role(role).unwrap();
        let t: String = redis::cmd("TYPE").arg(key).query(con).unwrap();
        d.types.insert(role.into(), t);
    }
    let mut delivered = BTreeMap::new();
    if d.types["tasks"] == "stream" {
        d.tasks = entries(&q(
            con,
            redis::cmd("XRANGE").arg(&k.tasks).arg("-").arg("+"),
        ));
        let info = q(con, redis::cmd("XINFO").arg("STREAM").arg(&k.tasks));
        let info = array(&info);
        let at = info
            .chunks(2)
            .find(|p| text(&p[0]) == "last-generated-id")
            .unwrap();
        d.tasks_last = Some(text(&at[1]));
        let groups = q(con, redis::cmd("XINFO").arg("GROUPS").arg(&k.tasks));
        for g in array(&groups) {
            let f: BTreeMap<String, String> = array(g)
                .chunks(2)
                .map(|p| (text(&p[0]), text(&p[1])))
                .collect();
            assert_eq!(f["name"], "workers", "only the group workers");
            d.group = Some((
                f["last-delivered-id"].clone(),
                f["pending"].parse().unwrap(),
            ));
        }
        if d.group.is_some() {
            let (now, pending): ((String, String), Value) = redis::pipe()
                .atomic()
                .cmd("TIME")
                .cmd("XPENDING")
                .arg(&k.tasks)
                .arg("workers")
                .arg("-")
                .arg("+")
                .arg(1_000_000)
                .query(con)
                .unwrap();
            let now_ms =
                now.0.parse::<u64>().unwrap() * 1000 + now.1.parse::<u64>().unwrap() / 1000;
            for p in array(&pending) {
                let p = array(p);
                let id = text(&p[0]);
                let idle: u64 = text(&p[2]).parse().unwrap();
                delivered.insert(id.clone(), now_ms - idle);
                d.pel.insert(
                    id,
                    Pel {
                        owner: text(&p[1]),
                        deliveries: text(&p[3]).parse().unwrap(),
                    },
                );
            }
        }
    }
    let zset = |con: &mut redis::Connection, key: &str| -> BTreeMap<Vec<u8>, String> {
        let v: Value = redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query(con)
            .unwrap();
        pairs(&v)
            .into_iter()
            .map(|(m, s)| (m, String::from_utf8(s).unwrap()))
            .collect()
    };
    d.counts = zset(con, &k.counts);
    d.merging = zset(con, &k.merging);
    d.leases = zset(con, &k.leases)
        .into_iter()
        .map(|(m, s)| (String::from_utf8(m).unwrap(), s))
        .collect();
    for (stream, into) in [
        (&k.done, &mut d.done),
        (&k.dead, &mut d.dead),
        (&k.tallies, &mut d.tallies),
    ] {
        let t: String = redis::cmd("TYPE").arg(stream).query(con).unwrap();
        if t == "stream" {
            *into = entries(&q(con, redis::cmd("XRANGE").arg(stream).arg("-").arg("+")));
        }
    }
    d.submitted = pairs(&q(con, redis::cmd("HGETALL").arg(&k.submitted)));
    d.job = text_pairs(&q(con, redis::cmd("HGETALL").arg(&k.job)));
    d.spec = text_pairs(&q(con, redis::cmd("HGETALL").arg(&k.spec)));
    (d, delivered)
}

/// How far a delivery time read as TIME minus the idle time may be off:
/// Redis takes the idle time from the command-time snapshot of the
/// transaction, TIME from the clock, a few ms apart on a busy machine. The
/// given times of a sequence are mostly farther apart than this.
const DELIVERY_SLACK_MS: u64 = 25;

/// Equal dumps and delivery times (within DELIVERY_SLACK_MS).
fn same(a: &Snapshot, b: &Snapshot) -> bool {
    a.0 == b.0
        && a.1.len() == b.1.len()
        && a.1
            .iter()
            .zip(&b.1)
            .all(|((ia, ta), (ib, tb))| ia == ib && ta.abs_diff(*tb) <= DELIVERY_SLACK_MS)
}

// ---------------------------------------------------------------------------
// The model.

#[derive(Debug, Clone)]
struct Pending {
    owner: String,
    deliveries: u64,
    delivered: u64,
}

#[derive(Debug, Clone, Default)]
struct Model {
    tasks: BTreeMap<Id, Fields>,
    tasks_exists: bool,
    tasks_last: Id,
    group: Option<Id>,
    pel: BTreeMap<Id, Pending>,
    submitted: BTreeMap<Vec<u8>, Vec<u8>>,
    counts: BTreeMap<Vec<u8>, u64>,
    tallies: BTreeMap<Id, Fields>,
    /// The tallies stream's last ID (it stays when a fold deletes entries).
    tallies_last: Option<Id>,
    done: BTreeMap<Id, Fields>,
    dead: BTreeMap<Id, Fields>,
    job: BTreeMap<String, String>,
    leases: BTreeMap<String, u64>,
    spec: BTreeMap<String, String>,
}

fn field<'a>(f: &'a Fields, name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn record(path: &str, start: &str, end: &str) -> Vec<u8> {
    format!("{path}\0{start}\0{end}").into_bytes()
}

/// A well-formed call, as the model sees it.
#[derive(Debug, Clone)]
enum Op {
    Submit(Vec<(Id, String, u64, u64)>),
    Claim {
        lease: u64,
        max_deliveries: u64,
    },
    Renew(Id),
    Commit {
        tasks: Vec<(Id, u64)>,
        pairs: Vec<(u64, Vec<u8>)>,
    },
    /// wclab_fold of the tallies from `first` up to `last`, said to be
    /// `n`, with the merged `pairs` (whose sum is the tallies' words).
    Fold {
        first: Id,
        last: Id,
        n: u64,
        pairs: Vec<(u64, Vec<u8>)>,
    },
    Dead(Id, String),
    Release(Id),
    Speculate {
        min_age: u64,
        factor: String,
        sample: u64,
    },
}

/// What the model says of a call: a reply, or a refusal code.
type Outcome = Result<Reply, &'static str>;

impl Model {
    fn hincr(&mut self, field: &str, by: u64) {
        let v = self.job.entry(field.into()).or_insert_with(|| "0".into());
        *v = (v.parse::<u64>().unwrap() + by).to_string();
    }

    fn job_u64(&self, field: &str) -> u64 {
        self.job.get(field).map_or(0, |v| v.parse().unwrap())
    }

    /// XADD `<ms>-*`, or after the last ID when `ms` is behind it.
    fn append(stream: &mut BTreeMap<Id, Fields>, ms: u64, fields: Fields) {
        let id = match stream.keys().next_back() {
            None if ms == 0 => (0, 1),
            None => (ms, 0),
            Some(&(lm, _)) if ms > lm => (ms, 0),
            Some(&(lm, ls)) => (lm, ls + 1),
        };
        stream.insert(id, fields);
    }

    /// XADD `<ms>-*` to `tallies`, whose last ID outlives its entries.
    fn append_tally(&mut self, ms: u64, fields: Fields) {
        let id = match self.tallies_last {
            None if ms == 0 => (0, 1),
            None => (ms, 0),
            Some((lm, _)) if ms > lm => (ms, 0),
            Some((lm, ls)) => (lm, ls + 1),
        };
        self.tallies.insert(id, fields);
        self.tallies_last = Some(id);
    }

    fn bury(
        &mut self,
        now: u64,
        consumer: &str,
        id: Id,
        reason: String,
        deliveries: u64,
        counter: &str,
    ) {
        self.leases.remove(&id_text(id));
        let path = self
            .tasks
            .get(&id)
            .and_then(|f| field(f, "path"))
            .unwrap_or("")
            .to_owned();
        self.pel.remove(&id);
        Self::append(
            &mut self.dead,
            now,
            vec![
                ("task".into(), id_text(id)),
                ("path".into(), path),
                ("reason".into(), reason),
                ("worker".into(), consumer.into()),
                ("attempts".into(), deliveries.to_string()),
            ],
        );
        self.hincr(counter, 1);
    }

    fn task_reply(&self, id: Id, deliveries: u64, stamp: bool) -> Reply {
        let f = &self.tasks[&id];
        let get = |n: &str, dflt: &str| bulk(field(f, n).unwrap_or(dflt));
        let mut items = vec![
            bulk("task"),
            bulk(id_text(id)),
            get("path", ""),
            get("start", "0"),
            get("end", "0"),
            get("injected", "0"),
            Reply::Int(deliveries as i64),
        ];
        if stamp {
            items.push(bulk(format!(
                "{}/{}",
                self.job.get("submitted_ms").map_or("", String::as_str),
                self.job.get("submissions").map_or("", String::as_str)
            )));
        }
        Reply::Array(items)
    }

    fn apply(&mut self, now: u64, consumer: &str, op: &Op) -> Outcome {
        match op {
            Op::Submit(tasks) => {
                let mut new = Vec::new();
                for (id, ..) in tasks {
                    let exists = self.tasks.contains_key(id);
                    if !exists && self.tasks_exists && *id <= self.tasks_last {
                        return Err("WCLABSTATE");
                    }
                    new.push(!exists);
                }
                self.tasks_exists = true;
                self.group.get_or_insert((0, 0));
                let mut added = 0;
                for ((id, path, start, end), new) in tasks.iter().zip(new) {
                    let (s, e) = (start.to_string(), end.to_string());
                    self.submitted
                        .insert(id_text(*id).into_bytes(), record(path, &s, &e));
                    if new {
                        self.tasks.insert(
                            *id,
                            vec![
                                ("path".into(), path.clone()),
                                ("start".into(), s),
                                ("end".into(), e),
                                ("injected".into(), now.to_string()),
                            ],
                        );
                        self.tasks_last = self.tasks_last.max(*id);
                        added += 1;
                    }
                }
                self.job.insert("submitted_ms".into(), now.to_string());
                self.hincr("submissions", 1);
                Ok(Reply::Int(added))
            }
            Op::Claim {
                lease,
                max_deliveries,
            } => {
                let Some(last) = self.group else {
                    return Ok(Reply::Nil);
                };
                let fresh = self
                    .tasks
                    .range((last.0, last.1 + 1)..)
                    .next()
                    .map(|(id, _)| *id);
                let (id, deliveries) = if let Some(id) = fresh {
                    self.group = Some(id);
                    self.pel.insert(
                        id,
                        Pending {
                            owner: consumer.into(),
                            deliveries: 1,
                            delivered: now,
                        },
                    );
                    self.leases.insert(id_text(id), now);
                    (id, 1)
                } else {
                    // Expired leases in ZRANGEBYSCORE order (score, then
                    // member bytes), ten at most.
                    let mut expired: Vec<(u64, String)> = self
                        .leases
                        .iter()
                        .filter(|(_, s)| (**s as i128) <= now as i128 - *lease as i128)
                        .map(|(m, s)| (*s, m.clone()))
                        .collect();
                    expired.sort();
                    let mut stolen = None;
                    for (_, member) in expired.into_iter().take(10) {
                        let id = parse_id(&member);
                        if let Some(p) = self.pel.get_mut(&id) {
                            p.owner = consumer.into();
                            p.deliveries += 1;
                            p.delivered = now;
                            self.leases.insert(member, now);
                            stolen = Some((id, p.deliveries));
                            break;
                        }
                        self.leases.remove(&member);
                    }
                    let Some((id, deliveries)) = stolen else {
                        return Ok(Reply::Nil);
                    };
                    if deliveries > *max_deliveries {
                        self.bury(
                            now,
                            consumer,
                            id,
                            format!("delivered {deliveries}{POISON}"),
                            deliveries,
                            "files_dead",
                        );
                        return Ok(Reply::Array(vec![bulk("dead"), bulk(id_text(id))]));
                    }
                    (id, deliveries)
                };
                let f = &self.tasks[&id];
                let want = record(
                    field(f, "path").unwrap_or(""),
                    field(f, "start").unwrap_or(""),
                    field(f, "end").unwrap_or(""),
                );
                if self.submitted.get(id_text(id).as_bytes()) != Some(&want) {
                    self.bury(
                        now,
                        consumer,
                        id,
                        FOREIGN.into(),
                        deliveries,
                        "entries_foreign",
                    );
                    return Ok(Reply::Array(vec![bulk("dead"), bulk(id_text(id))]));
                }
                self.spec
                    .insert(format!("claimed:{}", id_text(id)), now.to_string());
                Ok(self.task_reply(id, deliveries, true))
            }
            Op::Renew(id) => match self.pel.get_mut(id) {
                Some(p) if p.owner == consumer => {
                    p.delivered = now;
                    self.leases.insert(id_text(*id), now);
                    Ok(Reply::Int(1))
                }
                _ => Ok(Reply::Int(0)),
            },
            Op::Release(id) => match self.pel.get(id) {
                Some(p) if p.owner == consumer => {
                    self.leases.insert(id_text(*id), 0);
                    Ok(Reply::Int(1))
                }
                _ => Ok(Reply::Int(0)),
            },
            Op::Dead(id, reason) => match self.pel.get(id) {
                Some(p) => {
                    let d = p.deliveries;
                    self.bury(now, consumer, *id, reason.clone(), d, "files_dead");
                    Ok(Reply::Int(1))
                }
                None => Ok(Reply::Int(0)),
            },
            Op::Commit { tasks, pairs } => {
                let words: u64 = pairs.iter().map(|p| p.0).sum();
                if words > MAX {
                    // Not a tally: its counts add up past 2^53 - 1.
                    return Err("WCLABARG");
                }
                let bytes: u64 = tasks.iter().map(|t| t.1).sum();
                let top = self.counts.values().copied().max().unwrap_or(0);
                let pending_words = self.job_u64("tally_words");
                if words > 0 && top + pending_words + words > MAX {
                    return Err("WCLABSTATE");
                }
                if self.job_u64("files_done") + tasks.len() as u64 > MAX
                    || self.job_u64("bytes_done") + bytes > MAX
                    || self.job_u64("words_done") + words > MAX
                    || pending_words + words > MAX
                {
                    return Err("WCLABSTATE");
                }
                let gone: Vec<Reply> = tasks
                    .iter()
                    .filter(|t| !self.pel.contains_key(&t.0))
                    .map(|t| bulk(id_text(t.0)))
                    .collect();
                if !gone.is_empty() {
                    return Ok(Reply::Array([vec![Reply::Int(0)], gone].concat()));
                }
                if !pairs.is_empty() {
                    self.append_tally(
                        now,
                        vec![
                            ("words".into(), words.to_string()),
                            (
                                "tally".into(),
                                String::from_utf8_lossy(&tally(pairs)).into_owned(),
                            ),
                        ],
                    );
                    self.hincr("tally_words", words);
                }
                for (id, b) in tasks {
                    let p = self.pel.remove(id).unwrap();
                    self.leases.remove(&id_text(*id));
                    let injected = self
                        .tasks
                        .get(id)
                        .and_then(|f| field(f, "injected"))
                        .unwrap_or("")
                        .to_owned();
                    Self::append(
                        &mut self.done,
                        now,
                        vec![
                            ("task".into(), id_text(*id)),
                            ("worker".into(), consumer.into()),
                            ("injected".into(), injected),
                            ("committed".into(), now.to_string()),
                            ("attempts".into(), p.deliveries.to_string()),
                            ("bytes".into(), b.to_string()),
                        ],
                    );
                }
                self.hincr("files_done", tasks.len() as u64);
                self.hincr("bytes_done", bytes);
                self.hincr("words_done", words);
                Ok(Reply::Array(vec![
                    Reply::Int(1),
                    Reply::Int(tasks.len() as i64),
                ]))
            }
            Op::Fold {
                first,
                last,
                n,
                pairs,
            } => {
                let words: u64 = pairs.iter().map(|p| p.0).sum();
                if words > MAX {
                    return Err("WCLABARG");
                }
                let taken: Vec<Id> = self.tallies.range(..=*last).map(|(i, _)| *i).collect();
                if taken.len() as u64 != *n || taken.first() != Some(first) {
                    return Ok(Reply::Array(vec![Reply::Int(0)]));
                }
                let theirs: u64 = taken
                    .iter()
                    .map(|i| {
                        field(&self.tallies[i], "words")
                            .unwrap()
                            .parse::<u64>()
                            .unwrap()
                    })
                    .sum();
                if theirs != words {
                    return Err("WCLABARG");
                }
                let top = self.counts.values().copied().max().unwrap_or(0);
                if self.job_u64("tally_words") < words
                    || top + words > MAX
                    || self.job_u64("word_updates") + pairs.len() as u64 > MAX
                    || self.job_u64("folds") + 1 > MAX
                {
                    return Err("WCLABSTATE");
                }
                for (c, w) in pairs {
                    *self.counts.entry(w.clone()).or_default() += c;
                }
                for i in &taken {
                    self.tallies.remove(i);
                }
                let left = self.job_u64("tally_words") - words;
                self.job.insert("tally_words".into(), left.to_string());
                self.hincr("word_updates", pairs.len() as u64);
                self.hincr("folds", 1);
                Ok(Reply::Array(vec![Reply::Int(1), Reply::Int(*n as i64)]))
            }
            Op::Speculate {
                min_age,
                factor,
                sample,
            } => {
                if self.group.is_none() {
                    return Ok(Reply::Nil);
                }
                let held: Vec<(Id, Pending)> = self
                    .pel
                    .iter()
                    .take(100)
                    .map(|(i, p)| (*i, p.clone()))
                    .collect();
                if held.is_empty() {
                    return Ok(Reply::Nil);
                }
                let mut runs: Vec<f64> = Vec::new();
                for f in self.done.values().rev().take(*sample as usize) {
                    let (Some(task), worker) = (field(f, "task"), field(f, "worker")) else {
                        continue;
                    };
                    let backup = self.spec.get(&format!("backup:{task}"));
                    let started = if worker.is_some() && backup.map(String::as_str) == worker {
                        self.spec.get(&format!("backup_at:{task}"))
                    } else {
                        self.spec.get(&format!("claimed:{task}"))
                    };
                    let committed = field(f, "committed").and_then(|c| c.parse::<f64>().ok());
                    if let (Some(s), Some(c)) =
                        (started.and_then(|s| s.parse::<f64>().ok()), committed)
                    {
                        runs.push(c - s);
                    }
                }
                runs.sort_by(|a, b| a.total_cmp(b));
                let typical = if runs.is_empty() {
                    0.0
                } else {
                    runs[runs.len().div_ceil(2) - 1]
                };
                let threshold = (*min_age as f64).max(factor.parse::<f64>().unwrap() * typical);
                for (id, p) in held {
                    let idt = id_text(id);
                    if p.owner == consumer || self.spec.contains_key(&format!("backup:{idt}")) {
                        continue;
                    }
                    let claimed = self
                        .spec
                        .get(&format!("claimed:{idt}"))
                        .map(|c| c.parse::<f64>().unwrap());
                    if let Some(c) = claimed {
                        if self.tasks.contains_key(&id) && now as f64 - c >= threshold {
                            self.spec.insert(format!("backup:{idt}"), consumer.into());
                            self.spec
                                .insert(format!("backup_at:{idt}"), now.to_string());
                            let b = self
                                .spec
                                .entry("backups".into())
                                .or_insert_with(|| "0".into());
                            *b = (b.parse::<u64>().unwrap() + 1).to_string();
                            return Ok(self.task_reply(id, p.deliveries, false));
                        }
                    }
                }
                Ok(Reply::Nil)
            }
        }
    }

    fn render(&self) -> Snapshot {
        let mut d = Dump::default();
        let nonempty = |b: bool, t: &str| if b { t.to_owned() } else { "none".to_owned() };
        let types = [
            ("tasks", nonempty(self.tasks_exists, "stream")),
            ("counts", nonempty(!self.counts.is_empty(), "zset")),
            ("tallies", nonempty(self.tallies_last.is_some(), "stream")),
            ("done", nonempty(!self.done.is_empty(), "stream")),
            ("dead", nonempty(!self.dead.is_empty(), "stream")),
            ("job", nonempty(!self.job.is_empty(), "hash")),
            ("leases", nonempty(!self.leases.is_empty(), "zset")),
            ("submitted", nonempty(!self.submitted.is_empty(), "hash")),
            ("spec", nonempty(!self.spec.is_empty(), "hash")),
            ("merging", "none".to_owned()),
        ];
        d.types = types.into_iter().map(|(r, t)| (r.to_owned(), t)).collect();
        let stream =
            |s: &BTreeMap<Id, Fields>| s.iter().map(|(i, f)| (id_text(*i), f.clone())).collect();
        if self.tasks_exists {
            d.tasks = stream(&self.tasks);
            d.tasks_last = Some(id_text(self.tasks_last));
            d.group = self.group.map(|g| (id_text(g), self.pel.len() as u64));
        }
        d.pel = self
            .pel
            .iter()
            .map(|(i, p)| {
                (
                    id_text(*i),
                    Pel {
                        owner: p.owner.clone(),
                        deliveries: p.deliveries,
                    },
                )
            })
            .collect();
        d.submitted = self.submitted.clone();
        d.counts = self
            .counts
            .iter()
            .map(|(w, n)| (w.clone(), n.to_string()))
            .collect();
        d.tallies = stream(&self.tallies);
        d.done = stream(&self.done);
        d.dead = stream(&self.dead);
        d.job = self.job.clone();
        d.leases = self
            .leases
            .iter()
            .map(|(m, s)| (m.clone(), s.to_string()))
            .collect();
        d.spec = self.spec.clone();
        let delivered = self
            .pel
            .iter()
            .map(|(i, p)| (id_text(*i), p.delivered))
            .collect();
        (d, delivered)
    }
}

// ---------------------------------------------------------------------------
// Calls.

#[derive(Debug, Clone)]
struct Call {
    function: &'static str,
    keys: Vec<String>,
    argv: Vec<Vec<u8>>,
}

/// The tally of (count, word) pairs, in their order.
fn tally(pairs: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut t = Vec::new();
    for (n, w) in pairs {
        t.extend_from_slice(n.to_string().as_bytes());
        t.push(b' ');
        t.extend_from_slice(w);
        t.push(b'\n');
    }
    t
}

fn keys_of(k: &JobKeys, roles: &[&str]) -> Vec<String> {
    roles
        .iter()
        .map(|r| k.role(r).unwrap().to_owned())
        .collect()
}

fn roles(function: &str) -> &'static [&'static str] {
    match function {
        "wclab_submit" => &["tasks", "job", "submitted"],
        "wclab_claim" => &["tasks", "dead", "job", "leases", "submitted", "spec"],
        "wclab_renew" | "wclab_release" => &["tasks", "leases"],
        "wclab_commit" => &["tasks", "counts", "tallies", "done", "job", "leases"],
        "wclab_fold" => &["counts", "tallies", "job", "merging"],
        "wclab_dead" => &["tasks", "dead", "job", "leases"],
        "wclab_speculate" => &["tasks", "done", "spec"],
        other => panic!("{other}"),
    }
}

fn build(k: &JobKeys, now: &str, consumer: &str, op: &Op) -> Call {
    let s = |v: &str| v.as_bytes().to_vec();
    let mut argv: Vec<Vec<u8>> = vec![s(now), s("workers")];
    let function = match op {
        Op::Submit(tasks) => {
            for (id, path, start, end) in tasks {
                argv.extend([
                    s(&id_text(*id)),
                    s(path),
                    s(&start.to_string()),
                    s(&end.to_string()),
                ]);
            }
            "wclab_submit"
        }
        Op::Claim {
            lease,
            max_deliveries,
        } => {
            argv.extend([
                s(consumer),
                s(&lease.to_string()),
                s(&max_deliveries.to_string()),
            ]);
            "wclab_claim"
        }
        Op::Renew(id) => {
            argv.extend([s(consumer), s(&id_text(*id))]);
            "wclab_renew"
        }
        Op::Release(id) => {
            argv.extend([s(consumer), s("1000"), s(&id_text(*id))]);
            "wclab_release"
        }
        Op::Dead(id, reason) => {
            argv.extend([s(consumer), s(&id_text(*id)), s(reason)]);
            "wclab_dead"
        }
        Op::Commit { tasks, pairs } => {
            argv.extend([s(consumer), s(&tasks.len().to_string())]);
            for (id, b) in tasks {
                argv.extend([s(&id_text(*id)), s(&b.to_string())]);
            }
            argv.push(s(&pairs.iter().map(|p| p.0).sum::<u64>().to_string()));
            argv.push(tally(pairs));
            "wclab_commit"
        }
        Op::Fold {
            first,
            last,
            n,
            pairs,
        } => {
            argv.extend([s(&id_text(*first)), s(&id_text(*last)), s(&n.to_string())]);
            argv.push(s(&pairs.iter().map(|p| p.0).sum::<u64>().to_string()));
            argv.push(tally(pairs));
            "wclab_fold"
        }
        Op::Speculate {
            min_age,
            factor,
            sample,
        } => {
            argv.extend([
                s(consumer),
                s(&min_age.to_string()),
                s(factor),
                s(&sample.to_string()),
            ]);
            "wclab_speculate"
        }
    };
    Call {
        function,
        keys: keys_of(k, roles(function)),
        argv,
    }
}

/// Runs a call: its reply, or its error code.
fn run(con: &mut redis::Connection, c: &Call) -> Result<Reply, String> {
    let mut fcall = redis::cmd("FCALL");
    fcall
        .arg(c.function)
        .arg(c.keys.len())
        .arg(&c.keys)
        .arg(&c.argv);
    fcall
        .query::<Value>(con)
        .map(|v| reply_of(&v))
        .map_err(|e| e.code().unwrap_or("?").to_owned())
}

// ---------------------------------------------------------------------------
// Generating calls.

/// A task of the job: its path and range follow from its ID.
fn task(id: Id) -> (Id, String, u64, u64) {
    let size = 10 * (id.1 % 7 + 1);
    if id.1.is_multiple_of(5) {
        // A range of a bigger file.
        (id, format!("/data/big{}", id.1 / 5), size, 2 * size)
    } else {
        (id, format!("/data/f{}", id.1), 0, size)
    }
}

const VOCABULARY: [&[u8]; 8] = [
    b"the",
    b"a",
    b"word",
    b"Word",
    b"caf\xc3\xa9",
    b"\xff\xfe",
    b"x",
    b"tail",
];

struct Gen {
    rng: StdRng,
    now: u64,
    /// In the last fifth of the sequence.
    late: bool,
    big_vocabulary: Vec<Vec<u8>>,
}

impl Gen {
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.rng.random_range(0..v.len())]
    }

    fn tick(&mut self) -> u64 {
        // Mostly forward; now and then the same instant, or back in time
        // (a new Raft leader with a slower clock).
        match self.rng.random_range(0..20) {
            0 => {}
            1 => self.now = self.now.saturating_sub(self.rng.random_range(1..3000)),
            _ => self.now += self.rng.random_range(1..2500),
        }
        self.now
    }

    /// A task ID: a pending one most often, else one in the stream, else
    /// one that is not.
    fn some_id(&mut self, m: &Model, pending_odds: f64) -> Id {
        let pending: Vec<Id> = m.pel.keys().copied().collect();
        if !pending.is_empty() && self.rng.random_bool(pending_odds) {
            return *self.pick(&pending);
        }
        let known: Vec<Id> = m.tasks.keys().copied().collect();
        if !known.is_empty() && self.rng.random_bool(0.8) {
            return *self.pick(&known);
        }
        (0, self.rng.random_range(1..50))
    }

    fn words(&mut self, m: &Model) -> Vec<(u64, Vec<u8>)> {
        // Counts near 2^53 only late in a sequence: once a count is there,
        // every commit with words is refused.
        let huge = self.late && self.rng.random_bool(0.1);
        if self.rng.random_bool(0.05) {
            // Big: a thousand words and more.
            let n = self.rng.random_range(1000..1400);
            let from = self.rng.random_range(0..600);
            return (from..from + n)
                .map(|i| (self.rng.random_range(1..4), self.big_vocabulary[i].clone()))
                .collect();
        }
        let n = self.rng.random_range(0..6);
        let top = m.counts.values().copied().max().unwrap_or(0);
        (0..n)
            .map(|_| {
                let count = if huge {
                    // Near 2^53: some fit, the next ones cannot.
                    *self.pick(&[MAX - top.min(MAX - 1), MAX / 2, 1 << 52, MAX])
                } else {
                    self.rng.random_range(1..20)
                };
                (count, self.pick(&VOCABULARY).to_vec())
            })
            .collect()
    }

    /// A fold of the oldest tallies: merged (each word once, in an order of
    /// its own) or just concatenated; now and then stale (`n` not the
    /// number of tallies up to `last`).
    fn fold(&mut self, m: &Model) -> Op {
        let ids: Vec<Id> = m.tallies.keys().copied().collect();
        if ids.is_empty() {
            let last = (0, self.rng.random_range(1..50));
            return Op::Fold {
                first: last,
                last,
                n: 1,
                pairs: vec![(1, b"x".to_vec())],
            };
        }
        let k = self.rng.random_range(1..=ids.len());
        let mut pairs: Vec<(u64, Vec<u8>)> = Vec::new();
        for id in &ids[..k] {
            let text = field(&m.tallies[id], "tally").unwrap();
            for line in text.lines() {
                let (n, w) = line.split_once(' ').unwrap();
                pairs.push((n.parse().unwrap(), w.as_bytes().to_vec()));
            }
        }
        if self.rng.random_bool(0.7) {
            let mut merged: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
            for (n, w) in pairs {
                *merged.entry(w).or_default() += n;
            }
            pairs = merged.into_iter().map(|(w, n)| (n, w)).collect();
            if self.rng.random_bool(0.5) {
                pairs.reverse();
            }
        }
        let n = match self.rng.random_range(0..10) {
            0 => k as u64 + 1,
            1 if k > 1 => k as u64 - 1,
            _ => k as u64,
        };
        // Now and then the first is not the oldest tally (as after a
        // restore that brought older ones back): stale too.
        let first = match self.rng.random_range(0..10) {
            0 if k > 1 => ids[1],
            _ => ids[0],
        };
        Op::Fold {
            first,
            last: ids[k - 1],
            n,
            pairs,
        }
    }

    fn op(&mut self, m: &Model) -> Op {
        match self.rng.random_range(0..100) {
            0..=11 => {
                let last = m.tasks_last;
                let mut tasks: Vec<(Id, String, u64, u64)> = Vec::new();
                match self.rng.random_range(0..20) {
                    // Some of the tasks already there (skipped), maybe more.
                    0..=4 => {
                        for id in m.tasks.keys() {
                            if self.rng.random_bool(0.5) {
                                tasks.push(task(*id));
                            }
                        }
                    }
                    // An ID the stream cannot take any more (below its last).
                    5 if last.1 > 1 => {
                        let id = (last.0, self.rng.random_range(1..last.1));
                        if !m.tasks.contains_key(&id) {
                            tasks.push(task(id));
                        }
                    }
                    // A task again, with another range: its record changes,
                    // the entry stays, and is then taken for a foreign one.
                    6 if !m.tasks.is_empty() => {
                        let id = *self.pick(&m.tasks.keys().copied().collect::<Vec<_>>());
                        let mut t = task(id);
                        t.3 += 1;
                        tasks.push(t);
                    }
                    // A new millisecond part.
                    7 => tasks.push(task((last.0 + 1, 1))),
                    _ => {}
                }
                for k in 1..=self.rng.random_range(0..4) {
                    tasks.push(task((last.0, last.1 + k)));
                }
                Op::Submit(tasks)
            }
            12..=34 => Op::Claim {
                lease: *self.pick(&[0, 0, 1500, 5000]),
                max_deliveries: *self.pick(&[1, 2, 3, 10, 10, 10]),
            },
            35..=44 => Op::Renew(self.some_id(m, 0.8)),
            45..=49 => Op::Release(self.some_id(m, 0.8)),
            50..=53 => Op::Dead(
                self.some_id(m, 0.7),
                (*self.pick(&["missing", "not a regular file", "x"])).into(),
            ),
            54..=89 => {
                let n = self.rng.random_range(1..=3);
                let mut tasks: Vec<(Id, u64)> = Vec::new();
                for _ in 0..n {
                    let id = self.some_id(m, 0.9);
                    if tasks.iter().all(|t| t.0 != id) {
                        tasks.push((id, bytes_of(m, id)));
                    }
                }
                let pairs = self.words(m);
                Op::Commit { tasks, pairs }
            }
            90..=94 => self.fold(m),
            _ => Op::Speculate {
                min_age: *self.pick(&[0, 100, 3000]),
                factor: (*self.pick(&["0", "1", "2.5", "3"])).into(),
                sample: *self.pick(&[1, 5, 20]),
            },
        }
    }
}

/// The bytes a commit must give for task `id`: end - start when the
/// stream has it (otherwise the function cannot check, any value goes).
fn bytes_of(m: &Model, id: Id) -> u64 {
    m.tasks.get(&id).map_or(10, |f| {
        field(f, "end").unwrap().parse::<u64>().unwrap()
            - field(f, "start").unwrap().parse::<u64>().unwrap()
    })
}

/// A malformed variant of a well-formed call, or None when this kind of
/// damage does not apply to it. Every one must be refused with WCLABARG.
fn malform(g: &mut Gen, m: &Model, k: &JobKeys, call: &Call, op: &Op) -> Option<(String, Call)> {
    let mut c = call.clone();
    let s = |v: &str| v.as_bytes().to_vec();
    let kind = g.rng.random_range(0..24);
    let what: String = match kind {
        0 => {
            c.keys.pop();
            "a KEY missing".into()
        }
        1 => {
            c.keys.push(k.spec.clone());
            "a KEY too many".into()
        }
        2 => {
            let i = g.rng.random_range(0..c.keys.len());
            c.keys[i] = JobKeys::new("other")
                .role(roles(c.function)[i])
                .unwrap()
                .to_owned();
            format!("KEYS[{}] of another job", i + 1)
        }
        3 => {
            if c.keys.len() < 2 {
                return None;
            }
            c.keys.swap(0, 1);
            "KEYS[1] and KEYS[2] swapped".into()
        }
        4 => {
            c.argv[0] = s(g.pick::<&str>(&["abc", "-5", "1.5", "01", "9007199254740992", " 5"]));
            "a bad now_ms".into()
        }
        5 => {
            c.argv[1] = s(g.pick::<&str>(&["other", ""]));
            "a bad group".into()
        }
        6 => {
            if c.function == "wclab_submit" {
                return None;
            }
            c.argv[2] = Vec::new();
            "an empty consumer".into()
        }
        7 => {
            c.argv.pop();
            if c.argv.len() < 2 || c.function == "wclab_submit" && c.argv.len() == 2 {
                return None;
            }
            "the last argument missing".into()
        }
        8 => {
            if c.function == "wclab_submit" {
                c.argv.push(s("0-99"));
            } else {
                c.argv.push(s("7"));
            }
            "an argument too many".into()
        }
        9 => {
            // A number or ID made bad, wherever the function has one.
            let bad: &[&str] = &[
                "x",
                "-1",
                "1.5",
                "",
                "9007199254740992",
                "+3",
                "0x10",
                "1e3",
                " 1",
            ];
            let at = match op {
                Op::Claim { .. } => *g.pick(&[3, 4]),
                Op::Release(_) => 3,
                Op::Speculate { .. } => *g.pick(&[3, 5]),
                Op::Commit { tasks, .. } if !tasks.is_empty() => {
                    *g.pick(&[3, 5, 4 + 2 * tasks.len()])
                }
                Op::Submit(t) if !t.is_empty() => *g.pick(&[4, 5]),
                Op::Fold { .. } => *g.pick(&[4, 5]),
                _ => return None,
            };
            c.argv[at] = s(g.pick::<&str>(bad));
            format!("ARGV[{}] not a number", at + 1)
        }
        10 => {
            let bad: &[&str] = &[
                "0-0",
                "x",
                "1",
                "01-1",
                "1-01",
                "18446744073709551616-0",
                "-1-1",
                "1-2-3",
            ];
            let at = match op {
                Op::Renew(_) | Op::Dead(..) => 3,
                Op::Release(_) => 4,
                Op::Commit { tasks, .. } if !tasks.is_empty() => 4,
                Op::Submit(t) if !t.is_empty() => 2,
                Op::Fold { .. } => *g.pick(&[2, 3]),
                _ => return None,
            };
            c.argv[at] = s(g.pick::<&str>(bad));
            format!("ARGV[{}] not a stream ID", at + 1)
        }
        11 => match op {
            Op::Commit { tasks, .. } if !tasks.is_empty() => {
                let n = tasks.len() + *g.pick(&[1, 2]);
                c.argv[3] = s(&n.to_string());
                "n above the tasks given".into()
            }
            _ => return None,
        },
        12 => match op {
            Op::Commit { tasks, .. } if tasks.len() > 1 => {
                c.argv[3] = s(&(tasks.len() - 1).to_string());
                "n below the tasks given".into()
            }
            _ => return None,
        },
        13 => match op {
            // The bug: (word, count) instead of (count, word).
            Op::Commit { pairs, .. } | Op::Fold { pairs, .. } if !pairs.is_empty() => {
                let swapped: Vec<(u64, Vec<u8>)> = pairs.clone();
                let mut t = Vec::new();
                for (n, w) in &swapped {
                    t.extend_from_slice(w);
                    t.push(b' ');
                    t.extend_from_slice(n.to_string().as_bytes());
                    t.push(b'\n');
                }
                *c.argv.last_mut().unwrap() = t;
                "tally lines as (word, count)".into()
            }
            _ => return None,
        },
        14 => match op {
            Op::Commit { pairs, .. } | Op::Fold { pairs, .. } => {
                let total: u64 = pairs.iter().map(|p| p.0).sum();
                let wrong = if total > 0 && g.rng.random_bool(0.5) {
                    total - 1
                } else {
                    total + 1
                };
                let at = c.argv.len() - 2;
                c.argv[at] = s(&wrong.to_string());
                "words not the sum of the counts".into()
            }
            _ => return None,
        },
        15 => match op {
            Op::Commit { tasks, .. } if !tasks.is_empty() => {
                let (id, b) = tasks[0];
                c.argv.splice(4..4, [s(&id_text(id)), s(&b.to_string())]);
                c.argv[3] = s(&(tasks.len() + 1).to_string());
                "a task twice".into()
            }
            _ => return None,
        },
        16 => match op {
            Op::Commit { tasks, .. } if !tasks.is_empty() && m.tasks.contains_key(&tasks[0].0) => {
                c.argv[5] = s(&(tasks[0].1 + 1).to_string());
                "bytes not end - start".into()
            }
            _ => return None,
        },
        17 => match op {
            Op::Commit { .. } | Op::Fold { .. } => {
                let t = c.argv.last_mut().unwrap();
                let (bad, what): (&[u8], &str) = *g.pick(&[
                    (b"1 \n".as_slice(), "an empty word"),
                    (b"0 zero\n", "a count of 0"),
                    (b"01 w\n", "a leading zero"),
                    (b"1 w", "a line without its newline"),
                    (b"1 a b\n", "a word with a space"),
                    (b"1 a\x0bb\n", "a word with a vertical tab"),
                    (b"x w\n", "a count not a number"),
                    (b"\n", "an empty line"),
                ]);
                t.extend_from_slice(bad);
                format!("a tally with {what}")
            }
            _ => return None,
        },
        18 => match op {
            // A count more than the tallies hold (moving counts from one
            // word to another keeps the total and is the caller's part).
            // A stale fold is not read that far: not refused.
            Op::Fold {
                pairs,
                first,
                last,
                n,
            } if !pairs.is_empty()
                && m.tallies.range(..=*last).count() as u64 == *n
                && m.tallies.keys().next() == Some(first) =>
            {
                let mut more = pairs.clone();
                more[0].0 += 1;
                *c.argv.last_mut().unwrap() = tally(&more);
                let at = c.argv.len() - 2;
                c.argv[at] = s(&more.iter().map(|p| p.0).sum::<u64>().to_string());
                "a fold whose words are not its tallies'".into()
            }
            _ => return None,
        },
        19 => match op {
            Op::Submit(t) if t.len() > 1 => {
                // Swap two tasks' IDs: not increasing any more.
                let (a, b) = (2, 6);
                let (ia, ib) = (c.argv[a].clone(), c.argv[b].clone());
                c.argv[a] = ib;
                c.argv[b] = ia;
                "submitted IDs not increasing".into()
            }
            Op::Submit(t) if t.len() == 1 => {
                let dup = c.argv[2..6].to_vec();
                c.argv.extend(dup);
                "a task submitted twice in one call".into()
            }
            _ => return None,
        },
        20 => match op {
            Op::Submit(t) if !t.is_empty() => {
                c.argv[4] = s("1000000");
                "start after end".into()
            }
            _ => return None,
        },
        21 => match op {
            Op::Submit(t) if !t.is_empty() => {
                c.argv[3] = g
                    .pick(&[b"/data/a\0b".to_vec(), b"data/rel".to_vec(), Vec::new()])
                    .clone();
                "a path with NUL, relative, or empty".into()
            }
            _ => return None,
        },
        22 => match op {
            Op::Dead(..) => {
                c.argv[4] = Vec::new();
                "an empty reason".into()
            }
            Op::Claim { .. } => {
                c.argv[4] = s("0");
                "max_deliveries 0".into()
            }
            Op::Speculate { .. } => {
                c.argv[4] = s(g.pick::<&str>(&["x", "-1", "1000001", "nan", "inf"]));
                "a bad factor".into()
            }
            _ => return None,
        },
        _ => match op {
            Op::Speculate { .. } => {
                c.argv[5] = s(g.pick::<&str>(&["0", "10001"]));
                "sample out of range".into()
            }
            _ => return None,
        },
    };
    Some((what, c))
}

// ---------------------------------------------------------------------------

fn connect(server: &RedisServer) -> redis::Connection {
    let mut con = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(wclab_coord::FUNCTION_LIBRARY)
        .exec(&mut con)
        .unwrap();
    con
}

fn describe(con: &mut redis::Connection, k: &JobKeys, m: &mut Model) {
    let desc = [
        ("roots", "/data"),
        ("total_tasks", "10"),
        ("total_bytes", "610"),
        ("format", "text"),
        ("column", ""),
    ];
    let mut c = redis::cmd("HSET");
    c.arg(&k.job);
    for (f, v) in desc {
        c.arg(f).arg(v);
        m.job.insert(f.into(), v.into());
    }
    c.exec(con).unwrap();
}

/// Runs one seeded sequence; panics with the seed and the step on the first
/// difference.
fn sequence(server: &RedisServer, seed: u64, steps: usize) -> Tally {
    let mut con = connect(server);
    redis::cmd("FLUSHALL").exec(&mut con).unwrap();
    redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(wclab_coord::FUNCTION_LIBRARY)
        .exec(&mut con)
        .unwrap();
    let k = JobKeys::new(JOB);
    let mut m = Model::default();
    describe(&mut con, &k, &mut m);
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        now: 1_000_000,
        late: false,
        big_vocabulary: (0..2000).map(|i| format!("v{i}").into_bytes()).collect(),
    };
    let (mut applied, mut refused, mut malformed) = (0, 0, 0);
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    for step in 0..steps {
        g.late = step >= steps * 4 / 5;
        let now = g.tick();
        let consumer = *g.pick(&CONSUMERS);
        let before = dump(&mut con, &k);
        assert!(same(&before, &m.render()), "seed {seed} step {step}: the model and Redis differ before the call:\nredis {:#?}\nmodel {:#?}", before, m.render());
        if g.rng.random_range(0..40) == 0 {
            // A stream entry written by hand, above the last ID.
            let id = (m.tasks_last.0, m.tasks_last.1 + 1);
            let f: Fields = vec![
                ("path".into(), "/data/f1".into()),
                ("start".into(), "0".into()),
                ("end".into(), "10".into()),
                ("injected".into(), "0".into()),
            ];
            let mut x = redis::cmd("XADD");
            x.arg(&k.tasks).arg(id_text(id));
            for (a, b) in &f {
                x.arg(a).arg(b);
            }
            x.exec(&mut con).unwrap();
            m.tasks.insert(id, f);
            m.tasks_exists = true;
            m.tasks_last = id;
            continue;
        }
        let mut op = g.op(&m);
        if let Op::Submit(tasks) = &mut op {
            // IDs increasing, as a well-formed submission has them.
            tasks.sort_by_key(|t| t.0);
            tasks.dedup_by_key(|t| t.0);
        }
        let call = build(&k, &now.to_string(), consumer, &op);
        if g.rng.random_bool(0.35) {
            if let Some((what, bad)) = malform(&mut g, &m, &k, &call, &op) {
                malformed += 1;
                let got = run(&mut con, &bad);
                let after = dump(&mut con, &k);
                let expected = before.clone();
                assert_eq!(
                    got.as_ref().err().map(String::as_str),
                    Some("WCLABARG"),
                    "seed {seed} step {step}: {what} was not refused: {bad:?}"
                );
                assert!(
                    same(&expected, &after),
                    "seed {seed} step {step}: the refused call ({what}) changed something: {bad:?}\nbefore {expected:#?}\nafter {after:#?}"
                );
                continue;
            }
        }
        let mut next = m.clone();
        let want = next.apply(now, consumer, &op);
        let got = run(&mut con, &call);
        let after = dump(&mut con, &k);
        match (&want, &got) {
            (Ok(w), Ok(r)) => {
                assert_eq!(r, w, "seed {seed} step {step}: reply of {op:?} by {consumer} at {now}");
                applied += 1;
                *seen.entry(kind_of(&op, r)).or_default() += 1;
                m = next;
                assert!(
                    same(&after, &m.render()),
                    "seed {seed} step {step}: {op:?} by {consumer} at {now}: Redis is not what the model says\nredis {after:#?}\nmodel {:#?}",
                    m.render()
                );
            }
            (Err(code), Err(e)) => {
                assert_eq!(code, e, "seed {seed} step {step}: {op:?}");
                refused += 1;
                assert!(same(&before, &after), "seed {seed} step {step}: refused {op:?} changed something");
            }
            _ => panic!("seed {seed} step {step}: {op:?} by {consumer} at {now}: the model says {want:?}, Redis {got:?}"),
        }
        for (w, n) in &m.counts {
            assert!(*n <= MAX, "count of {w:?} past 2^53-1");
        }
    }
    Tally {
        applied,
        refused,
        malformed,
        seen,
    }
}

/// What the sequences did.
#[derive(Default)]
struct Tally {
    applied: usize,
    refused: usize,
    malformed: usize,
    seen: BTreeMap<&'static str, usize>,
}

/// What a call that was applied did, to show the sequences are not idle.
fn kind_of(op: &Op, r: &Reply) -> &'static str {
    let first = |r: &Reply| match r {
        Reply::Array(v) => v.first().cloned(),
        _ => None,
    };
    match (op, first(r)) {
        (Op::Claim { .. }, Some(Reply::Bulk(b))) if b == b"dead" => "claim: dead-lettered",
        (Op::Claim { .. }, Some(_)) => match r {
            Reply::Array(v) if v[6] == Reply::Int(1) => "claim: a new task",
            _ => "claim: a stolen task",
        },
        (Op::Commit { pairs, .. }, Some(Reply::Int(1))) if pairs.len() >= 1000 => {
            "commit: applied, big"
        }
        (Op::Commit { .. }, Some(Reply::Int(0))) => "commit: not pending",
        (Op::Fold { n, .. }, Some(Reply::Int(1))) if *n > 1 => "fold: several tallies",
        (Op::Fold { .. }, Some(Reply::Int(1))) => "fold: one tally",
        (Op::Fold { .. }, Some(Reply::Int(0))) => "fold: stale",
        (Op::Speculate { .. }, Some(_)) => "speculate: a backup",
        (Op::Renew(_), None) if *r == Reply::Int(0) => "renew: refused to a non-owner",
        _ => "other",
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_calls_change_the_job_exactly_as_the_spec_says_or_not_at_all() {
    let server = RedisServer::start(ServerOptions::default()).unwrap();
    let steps = env("WCLAB_CONTRACT_STEPS", 400) as usize;
    let seeds: Vec<u64> = match std::env::var("WCLAB_CONTRACT_SEED") {
        Ok(s) => vec![s.parse().expect("WCLAB_CONTRACT_SEED is a number")],
        Err(_) => (1..=env("WCLAB_CONTRACT_SEEDS", 3)).collect(),
    };
    let mut total = Tally::default();
    for seed in seeds {
        let t = sequence(&server, seed, steps);
        total.applied += t.applied;
        total.refused += t.refused;
        total.malformed += t.malformed;
        for (k, n) in t.seen {
            *total.seen.entry(k).or_default() += n;
        }
    }
    eprintln!(
        "contract: {} calls applied as modelled, {} refused as modelled (WCLABSTATE), {} malformed calls refused (WCLABARG); {:?}",
        total.applied, total.refused, total.malformed, total.seen
    );
    // The sequences did what they are for.
    for kind in [
        "claim: a new task",
        "claim: a stolen task",
        "claim: dead-lettered",
        "commit: applied, big",
        "commit: not pending",
        "fold: several tallies",
        "fold: one tally",
        "fold: stale",
        "speculate: a backup",
        "renew: refused to a non-owner",
    ] {
        assert!(
            total.seen.contains_key(kind),
            "no `{kind}`: {:?}",
            total.seen
        );
    }
    assert!(total.refused > 0 && total.malformed > 0);
}
