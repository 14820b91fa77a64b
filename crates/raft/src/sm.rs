//! The state machine of a node: its own redis-server, openraft's
//! [`RaftStateMachine`].
//!
//! Applying an entry runs its command on the local Redis; the reply is the
//! entry's result (on the leader, the client's answer). Redis runs with
//! persistence off: what survives a crash is the Raft log and the last
//! snapshot, so a (re)started node flushes its Redis, restores the
//! snapshot, and openraft replays the log after it. Each log index is thus
//! applied exactly once to the dataset Redis holds.
//!
//! A snapshot is the whole dataset (`DUMP` of every key, `FUNCTION DUMP`)
//! with the last applied log ID and membership; restoring it is `FLUSHALL`,
//! `RESTORE` of every key, `FUNCTION RESTORE`.

use crate::command::{self, Kind};
use crate::fatal::{self, Exit};
use crate::log::write_atomic;
use crate::resp::{Conn, Frame};
use crate::types::{Node, NodeId, TypeConfig};
use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend,
    RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Mutex;

/// The dataset of a snapshot.
#[derive(Serialize, Deserialize, Default)]
struct Dataset {
    /// Every key with its `DUMP` payload.
    keys: Vec<(Vec<u8>, Vec<u8>)>,
    /// `FUNCTION DUMP` (empty when no library is loaded).
    functions: Vec<u8>,
}

#[derive(Clone)]
struct Stored {
    meta: SnapshotMeta<NodeId, Node>,
    data: Vec<u8>,
}

struct Inner {
    redis: Conn,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    current: Option<Stored>,
    built: u64,
}

/// Facts about the state machine that the rest of the node reads.
#[derive(Default)]
pub struct Shared {
    /// The largest `now_ms` applied (the leader fills new ones above it).
    pub max_now_ms: AtomicU64,
    /// Index of the last applied entry.
    pub applied: AtomicU64,
    /// Snapshots received from a leader and installed since this node started.
    pub installed: AtomicU64,
}

/// The state machine; clones share it.
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<Inner>>,
    dir: PathBuf,
    /// Serialises writes of the snapshot file and remembers the last log ID
    /// written: a snapshot built while one from the leader is installed
    /// used to race it on one temporary file (the loser's rename failed and
    /// stopped the node), and an older one must not replace a newer one.
    saved: Arc<Mutex<Option<LogId<NodeId>>>>,
    /// Read by the node (status, time filling).
    pub shared: Arc<Shared>,
}

const SNAPSHOT: &str = "snapshot.bin";

fn sm_err(verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::new(ErrorSubject::StateMachine, verb, AnyError::new(&e)).into()
}

/// A broken connection to our own Redis leaves its dataset unknown: the
/// node stops, and rebuilds from its log when restarted.
fn redis_lost(e: io::Error) -> ! {
    fatal::die(
        Exit::RedisLost,
        &format!("lost the local redis-server while applying the log: {e}"),
    )
}

async fn must(redis: &mut Conn, args: &[&[u8]]) -> io::Result<Frame> {
    match redis.call(args).await? {
        Frame::Error(e) => Err(io::Error::other(format!(
            "{} failed on the local Redis: {e}",
            String::from_utf8_lossy(args[0])
        ))),
        f => Ok(f),
    }
}

impl Inner {
    async fn dump(&mut self) -> io::Result<Dataset> {
        let mut ds = Dataset::default();
        for k in all_keys(&mut self.redis).await? {
            if let Frame::Bulk(Some(payload)) = must(&mut self.redis, &[b"DUMP", &k]).await? {
                ds.keys.push((k, payload));
            }
        }
        if let Frame::Bulk(Some(f)) = must(&mut self.redis, &[b"FUNCTION", b"DUMP"]).await? {
            ds.functions = f;
        }
        Ok(ds)
    }

    async fn restore(&mut self, ds: &Dataset) -> io::Result<()> {
        must(&mut self.redis, &[b"FLUSHALL"]).await?;
        must(&mut self.redis, &[b"FUNCTION", b"FLUSH"]).await?;
        for (k, payload) in &ds.keys {
            must(&mut self.redis, &[b"RESTORE", k, b"0", payload, b"REPLACE"]).await?;
        }
        if !ds.functions.is_empty() {
            must(
                &mut self.redis,
                &[b"FUNCTION", b"RESTORE", &ds.functions, b"REPLACE"],
            )
            .await?;
        }
        Ok(())
    }
}

impl StateMachine {
    /// Takes over the Redis at `redis_addr`: flushes it, then restores the
    /// snapshot kept in `dir`, if any.
    pub async fn open(dir: &Path, redis_addr: &str, password: &str) -> io::Result<StateMachine> {
        let redis = Conn::connect(redis_addr, Some(password)).await?;
        let mut inner = Inner {
            redis,
            last_applied: None,
            membership: StoredMembership::default(),
            current: None,
            built: 0,
        };
        must(&mut inner.redis, &[b"FLUSHALL"]).await?;
        must(&mut inner.redis, &[b"FUNCTION", b"FLUSH"]).await?;
        let shared = Arc::new(Shared::default());
        if let Ok(bytes) = std::fs::read(dir.join(SNAPSHOT)) {
            let (meta, data): (SnapshotMeta<NodeId, Node>, Vec<u8>) = bincode::deserialize(&bytes)
                .map_err(|e| io::Error::other(format!("corrupt {SNAPSHOT}: {e}")))?;
            let ds: Dataset = bincode::deserialize(&data).map_err(io::Error::other)?;
            inner.restore(&ds).await?;
            inner.last_applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
            shared
                .applied
                .store(meta.last_log_id.map_or(0, |l| l.index), Ordering::SeqCst);
            tracing::info!(applied = ?meta.last_log_id, keys = ds.keys.len(), "restored the snapshot into the local Redis");
            inner.current = Some(Stored { meta, data });
        }
        Ok(StateMachine {
            inner: Arc::new(Mutex::new(inner)),
            dir: dir.to_owned(),
            saved: Arc::default(),
            shared,
        })
    }

    /// A digest of the logical dataset, with the applied index it belongs
    /// to and the number of keys: two replicas that applied the same log
    /// prefix have equal digests.
    ///
    /// Logical, not byte-wise: it covers every key's contents, stream
    /// entries, consumer groups (last delivered ID, entries read), pending
    /// entries (ID, owner, delivery count) and the function library, but
    /// not the wall-clock bookkeeping Redis keeps for itself (a consumer's
    /// seen-time, an entry's idle time), which no command of ours decides on.
    pub async fn digest(&self) -> io::Result<(u64, String, usize)> {
        let (applied, keys, canon) = self.canonical().await?;
        Ok((
            applied,
            format!("{:08x}{:08x}", crc32fast::hash(&canon), canon.len()),
            keys,
        ))
    }

    /// The canonical form the digest is made of, with the applied index
    /// and the number of keys (`RAFT.DIGEST FULL`, to see what differs).
    pub async fn canonical(&self) -> io::Result<(u64, usize, Vec<u8>)> {
        let mut g = self.inner.lock().await;
        let applied = g.last_applied.map_or(0, |l| l.index);
        let (keys, canon) = canonical(&mut g.redis).await?;
        Ok((applied, keys, canon))
    }

    async fn save(&self, stored: &Stored) -> io::Result<()> {
        let mut saved = self.saved.lock().await;
        if stored.meta.last_log_id < *saved {
            return Ok(());
        }
        let bytes = bincode::serialize(&(&stored.meta, &stored.data)).map_err(io::Error::other)?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || write_atomic(&dir, SNAPSHOT, &bytes))
            .await
            .map_err(io::Error::other)??;
        *saved = stored.meta.last_log_id;
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let stored = {
            let mut g = self.inner.lock().await;
            let ds = g.dump().await.map_err(|e| sm_err(ErrorVerb::Read, e))?;
            g.built += 1;
            let meta = SnapshotMeta {
                last_log_id: g.last_applied,
                last_membership: g.membership.clone(),
                snapshot_id: format!("{}-{}", g.last_applied.map_or(0, |l| l.index), g.built),
            };
            let data = bincode::serialize(&ds).expect("dataset serialises");
            let stored = Stored { meta, data };
            g.current = Some(stored.clone());
            stored
        };
        self.save(&stored)
            .await
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        tracing::info!(last = ?stored.meta.last_log_id, bytes = stored.data.len(), "snapshot built");
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(stored.data),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>), StorageError<NodeId>> {
        let g = self.inner.lock().await;
        Ok((g.last_applied, g.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Frame>>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut g = self.inner.lock().await;
        let mut replies = Vec::new();
        for e in entries {
            let reply = match &e.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(req) => {
                    crate::testing::maybe_panic(crate::testing::Fault::PanicApply);
                    let mut commands = Vec::with_capacity(req.writes.len());
                    // Entries are checked again here, as the client path
                    // checks them: an entry that got into the log another
                    // way (a forged append) is answered with the refusal on
                    // every replica alike, and never reaches Redis.
                    let mut refused = Vec::new();
                    for (i, w) in req.writes.iter().enumerate() {
                        match command::classify(&w.args) {
                            Ok((_, Kind::Write)) => {}
                            Ok((name, _)) => {
                                refused.push((
                                    i,
                                    Frame::err(format!(
                                        "ERR wclab-raft: {} is not a write; entry not applied",
                                        name.as_str()
                                    )),
                                ));
                                continue;
                            }
                            Err(why) => {
                                refused.push((i, Frame::err(format!("{why} (entry not applied)"))));
                                continue;
                            }
                        }
                        if let Some(ms) = command::now_of(&w.args) {
                            self.shared.max_now_ms.fetch_max(ms, Ordering::SeqCst);
                        }
                        crate::trace::mark(w.nonce, crate::trace::Mark::ApplyStart);
                        commands.push(w.args.as_slice());
                    }
                    if !refused.is_empty() {
                        tracing::warn!(
                            index = e.log_id.index,
                            refused = refused.len(),
                            "log entry holds writes the client path refuses; not applied"
                        );
                    }
                    // A batch's writes in one round trip to Redis.
                    let mut reply = match g.redis.pipeline(&commands).await {
                        Ok(f) => f,
                        Err(err) => redis_lost(err),
                    };
                    for (i, refusal) in refused {
                        reply.insert(i.min(reply.len()), refusal);
                    }
                    for w in &req.writes {
                        crate::trace::mark(w.nonce, crate::trace::Mark::ApplyDone);
                    }
                    reply
                }
                EntryPayload::Membership(m) => {
                    g.membership = StoredMembership::new(Some(e.log_id), m.clone());
                    Vec::new()
                }
            };
            g.last_applied = Some(e.log_id);
            self.shared.applied.store(e.log_id.index, Ordering::SeqCst);
            replies.push(reply);
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Vec<u8>>, StorageError<NodeId>> {
        Ok(Box::default())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Vec<u8>>,
    ) -> Result<(), StorageError<NodeId>> {
        let stored = Stored {
            meta: meta.clone(),
            data: *snapshot,
        };
        {
            let mut g = self.inner.lock().await;
            let ds: Dataset =
                bincode::deserialize(&stored.data).map_err(|e| sm_err(ErrorVerb::Read, *e))?;
            if let Err(e) = g.restore(&ds).await {
                redis_lost(e)
            }
            g.last_applied = meta.last_log_id;
            g.membership = meta.last_membership.clone();
            self.shared
                .applied
                .store(meta.last_log_id.map_or(0, |l| l.index), Ordering::SeqCst);
            g.current = Some(stored.clone());
        }
        self.save(&stored)
            .await
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        self.shared.installed.fetch_add(1, Ordering::SeqCst);
        tracing::info!(last = ?meta.last_log_id, "installed a snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let g = self.inner.lock().await;
        Ok(g.current.clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(s.data),
        }))
    }
}

fn push(out: &mut Vec<u8>, f: &Frame) {
    f.encode(out);
}

/// Every key of the dataset, sorted (SCAN may return a key twice).
async fn all_keys(redis: &mut Conn) -> io::Result<Vec<Vec<u8>>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut cursor = b"0".to_vec();
    loop {
        let Frame::Array(Some(parts)) = must(redis, &[b"SCAN", &cursor, b"COUNT", b"1000"]).await?
        else {
            return Err(io::Error::other("bad SCAN reply"));
        };
        cursor = parts
            .first()
            .and_then(Frame::as_bytes)
            .unwrap_or(b"0")
            .to_vec();
        if let Some(Frame::Array(Some(ks))) = parts.get(1) {
            keys.extend(ks.iter().filter_map(|k| k.as_bytes().map(<[u8]>::to_vec)));
        }
        if cursor == b"0" {
            break;
        }
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// The canonical logical form of the whole dataset: (number of keys, bytes).
pub(crate) async fn canonical(redis: &mut Conn) -> io::Result<(usize, Vec<u8>)> {
    let keys = all_keys(redis).await?;
    let mut out = Vec::new();
    for k in &keys {
        out.extend_from_slice(k);
        let t = must(redis, &[b"TYPE", k]).await?;
        push(&mut out, &t);
        match t.as_bytes().unwrap_or_default() {
            b"string" => push(&mut out, &must(redis, &[b"GET", k]).await?),
            b"list" => push(&mut out, &must(redis, &[b"LRANGE", k, b"0", b"-1"]).await?),
            b"zset" => push(
                &mut out,
                &must(redis, &[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"]).await?,
            ),
            b"hash" | b"set" => {
                let cmd: &[u8] = if t.as_bytes() == Some(b"hash") {
                    b"HGETALL"
                } else {
                    b"SMEMBERS"
                };
                let mut items = match must(redis, &[cmd, k]).await? {
                    Frame::Array(Some(v)) => v,
                    _ => Vec::new(),
                };
                if cmd == b"HGETALL" {
                    let mut pairs: Vec<(Frame, Frame)> = items
                        .chunks(2)
                        .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or(Frame::Bulk(None))))
                        .collect();
                    pairs.sort_by(|a, b| a.0.as_bytes().cmp(&b.0.as_bytes()));
                    items = pairs.into_iter().flat_map(|(a, b)| [a, b]).collect();
                } else {
                    items.sort_by(|a, b| a.as_bytes().cmp(&b.as_bytes()));
                }
                push(&mut out, &Frame::Array(Some(items)));
            }
            b"stream" => stream_canonical(redis, k, &mut out).await?,
            _ => {}
        }
    }
    // Libraries by name with their code (which defines their functions;
    // FUNCTION LIST orders functions by hash, differently on each server).
    if let Frame::Array(Some(libs)) = must(redis, &[b"FUNCTION", b"LIST", b"WITHCODE"]).await? {
        let mut libs: Vec<Vec<Frame>> = libs
            .iter()
            .map(|l| fields(l, &[b"library_name", b"library_code"]))
            .collect();
        libs.sort_by(|a, b| {
            a.get(1)
                .and_then(Frame::as_bytes)
                .cmp(&b.get(1).and_then(Frame::as_bytes))
        });
        for l in libs {
            push(&mut out, &Frame::Array(Some(l)));
        }
    }
    Ok((keys.len(), out))
}

/// Picks `names` out of a flat field/value array reply.
fn fields(f: &Frame, names: &[&[u8]]) -> Vec<Frame> {
    let Frame::Array(Some(kv)) = f else {
        return Vec::new();
    };
    kv.chunks(2)
        .filter(|p| p[0].as_bytes().is_some_and(|n| names.contains(&n)))
        .flat_map(|p| p.iter().cloned())
        .collect()
}

async fn stream_canonical(redis: &mut Conn, k: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    push(out, &must(redis, &[b"XRANGE", k, b"-", b"+"]).await?);
    let info = must(redis, &[b"XINFO", b"STREAM", k]).await?;
    push(
        out,
        &Frame::Array(Some(fields(
            &info,
            &[
                b"length",
                b"last-generated-id",
                b"max-deleted-entry-id",
                b"entries-added",
            ],
        ))),
    );
    let Frame::Array(Some(groups)) = must(redis, &[b"XINFO", b"GROUPS", k]).await? else {
        return Ok(());
    };
    for g in &groups {
        push(
            out,
            &Frame::Array(Some(fields(
                g,
                &[
                    b"name",
                    b"consumers",
                    b"pending",
                    b"last-delivered-id",
                    b"entries-read",
                ],
            ))),
        );
        let Some(name) = fields(g, &[b"name"])
            .get(1)
            .and_then(|n| n.as_bytes().map(<[u8]>::to_vec))
        else {
            continue;
        };
        // Pending entries: ID, owner, deliveries; not the idle time.
        if let Frame::Array(Some(pel)) =
            must(redis, &[b"XPENDING", k, &name, b"-", b"+", b"1000000"]).await?
        {
            for p in pel {
                if let Frame::Array(Some(e)) = p {
                    let keep: Vec<Frame> = [0usize, 1, 3]
                        .iter()
                        .filter_map(|&i| e.get(i).cloned())
                        .collect();
                    push(out, &Frame::Array(Some(keep)));
                }
            }
        }
        if let Frame::Array(Some(cs)) = must(redis, &[b"XINFO", b"CONSUMERS", k, &name]).await? {
            for c in &cs {
                push(out, &Frame::Array(Some(fields(c, &[b"name", b"pending"]))));
            }
        }
    }
    Ok(())
}
