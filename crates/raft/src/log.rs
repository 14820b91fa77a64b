//! The durable Raft log and vote of a node: openraft's [`RaftLogStorage`].
//!
//! The log is one append-only file of checksummed records (entries
//! appended, a suffix truncated, a prefix purged), fsynced before openraft
//! is told an append is done; it is replayed into memory on start. A torn
//! last record (a crash in the middle of a write) fails its checksum and is
//! dropped, which is safe because it was never acknowledged. The vote is a
//! small file replaced atomically (write, fsync, rename, fsync directory).
//!
//! The whole log is also kept in memory: a job's log is small, and
//! snapshots let openraft purge what is applied everywhere.
//!
//! Two tripwires stop the node rather than let a broken cluster go on
//! quietly: a truncation of an entry this node knows to be committed (Raft
//! never does that; only a cluster that lost acknowledged data would), and
//! a read of an inverted range (what openraft asks for when its committed
//! index went back, the same cause; it used to panic inside the Raft core).

use crate::fatal::{self, Exit};
use crate::types::{NodeId, TypeConfig};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, LogState, OptionalSend,
    RaftLogReader, StorageError, StorageIOError, Vote,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One record of the log file.
#[derive(Serialize, Deserialize)]
enum Record {
    Append(Vec<Entry<TypeConfig>>),
    /// Delete entries from this index on (a follower's conflicting suffix).
    Truncate(u64),
    /// Entries up to this one are in a snapshot: forget them.
    Purge(LogId<NodeId>),
}

struct Inner {
    dir: PathBuf,
    file: File,
    file_len: u64,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    /// The committed file, open once written (see [`committed_record`]).
    committed_file: Option<File>,
    /// Nonces of the entries appended since this process started, newest
    /// last (bounded): see [`LogStore::appended`].
    nonces: HashSet<u64>,
    nonce_order: VecDeque<u64>,
}

/// How many recent nonces are remembered: far more writes than can be
/// waiting for their commit at once.
const NONCES: usize = 1 << 16;

/// The log store; clones share it (openraft wants a separate reader).
#[derive(Clone)]
pub struct LogStore(Arc<Mutex<Inner>>);

const LOG: &str = "raft.log";
const VOTE: &str = "vote.bin";
/// The last committed log ID this node knows, one fixed-size record
/// rewritten in place (see [`committed_record`]).
const COMMITTED: &str = "committed.idx";

/// Size of the committed file's record: a length, a checksum, the log ID.
const COMMITTED_LEN: usize = 64;

/// The committed file's record: rewritten in place with one `pwrite`,
/// because replacing the file (truncate, write, close) cost ~0.5 ms on
/// ext4 (its `auto_da_alloc` flushes a file truncated and rewritten) on
/// every commit, before openraft applies it. A torn or stale record fails
/// its checksum and reads as "nothing known", which is what a fresh node
/// starts from.
fn committed_record(c: &Option<LogId<NodeId>>) -> [u8; COMMITTED_LEN] {
    let body = bincode::serialize(c).expect("log id serialises");
    let mut out = [0u8; COMMITTED_LEN];
    if body.len() <= COMMITTED_LEN - 8 {
        out[..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
        out[4..8].copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out[8..8 + body.len()].copy_from_slice(&body);
    }
    out
}

/// Reads back a [`committed_record`]; `None` for anything else.
fn parse_committed(b: &[u8]) -> Option<LogId<NodeId>> {
    let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?);
    let body = b.get(8..8 + len)?;
    if len == 0 || crc32fast::hash(body) != crc {
        return None;
    }
    bincode::deserialize::<Option<LogId<NodeId>>>(body)
        .ok()
        .flatten()
}

fn io_err(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError<NodeId> {
    StorageIOError::new(subject, verb, AnyError::new(&e)).into()
}

/// Writes `bytes` to `dir/name` atomically and durably.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

fn frame(rec: &Record) -> Vec<u8> {
    let body = bincode::serialize(rec).expect("log records serialise");
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

impl Inner {
    fn apply(&mut self, rec: Record) {
        match rec {
            Record::Append(es) => {
                for e in es {
                    self.entries.insert(e.log_id.index, e);
                }
            }
            Record::Truncate(from) => {
                self.entries.split_off(&from);
            }
            Record::Purge(upto) => {
                let keep = self.entries.split_off(&(upto.index + 1));
                self.entries = keep;
                self.last_purged = Some(upto);
            }
        }
    }

    fn write(&mut self, rec: &Record) -> io::Result<()> {
        let bytes = frame(rec);
        let started = std::time::Instant::now();
        self.file.write_all(&bytes)?;
        self.file.sync_data()?;
        let took = started.elapsed();
        if took > std::time::Duration::from_millis(100) {
            // The Raft core waits for it: no heartbeat, no vote meanwhile.
            tracing::warn!(?took, bytes = bytes.len(), "slow log write");
        }
        self.file_len += bytes.len() as u64;
        Ok(())
    }

    fn remember(&mut self, nonce: u64) {
        if self.nonces.insert(nonce) {
            self.nonce_order.push_back(nonce);
            if self.nonce_order.len() > NONCES {
                if let Some(old) = self.nonce_order.pop_front() {
                    self.nonces.remove(&old);
                }
            }
        }
    }

    /// Rewrites the file with only what is left, once purges made it mostly garbage.
    fn compact(&mut self) -> io::Result<()> {
        let mut out = Vec::new();
        if let Some(p) = self.last_purged {
            out.extend(frame(&Record::Purge(p)));
        }
        let live: Vec<_> = self.entries.values().cloned().collect();
        if !live.is_empty() {
            out.extend(frame(&Record::Append(live)));
        }
        write_atomic(&self.dir, LOG, &out)?;
        self.file = OpenOptions::new().append(true).open(self.dir.join(LOG))?;
        self.file_len = out.len() as u64;
        Ok(())
    }
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, replaying what is there.
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LOG);
        let mut raw = Vec::new();
        if path.exists() {
            File::open(&path)?.read_to_end(&mut raw)?;
        }
        let mut records = Vec::new();
        let mut pos = 0usize;
        while pos + 8 <= raw.len() {
            let len = u32::from_le_bytes(raw[pos..pos + 4].try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(raw[pos + 4..pos + 8].try_into().unwrap());
            let Some(body) = raw.get(pos + 8..pos + 8 + len) else {
                break;
            };
            if crc32fast::hash(body) != crc {
                break;
            }
            match bincode::deserialize::<Record>(body) {
                Ok(r) => records.push(r),
                // Whole and checksummed, so not torn: written by a build
                // with another record format. Dropping it (and what
                // follows) would be a node that lost acknowledged entries
                // under its old incarnation: refuse to start instead.
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: record at byte {pos} is whole but unreadable ({e}): \
                             a log written by another wclab version? Start this node \
                             with the version that wrote it, or as a new member",
                            path.display()
                        ),
                    ))
                }
            }
            pos += 8 + len;
        }
        if pos < raw.len() {
            tracing::warn!(
                dropped = raw.len() - pos,
                "raft log: torn tail record dropped (crash during a write)"
            );
            let f = OpenOptions::new().write(true).open(&path)?;
            f.set_len(pos as u64)?;
            f.sync_all()?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let read_small = |name: &str| -> io::Result<Option<Vec<u8>>> {
            match std::fs::read(dir.join(name)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        };
        let vote = read_small(VOTE)?.and_then(|b| bincode::deserialize::<Vote<NodeId>>(&b).ok());
        let committed = read_small(COMMITTED)?.and_then(|b| parse_committed(&b));
        let mut inner = Inner {
            dir: dir.to_owned(),
            file,
            file_len: pos as u64,
            entries: BTreeMap::new(),
            last_purged: None,
            vote,
            committed,
            committed_file: None,
            nonces: HashSet::new(),
            nonce_order: VecDeque::new(),
        };
        for r in records {
            inner.apply(r);
        }
        Ok(LogStore(Arc::new(Mutex::new(inner))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an entry with this nonce was appended to this log since the
    /// process started. A leader's write that openraft answers with "not
    /// the leader" was never appended if this is false (no other node can
    /// have it either: entries are replicated from this log), and may
    /// commit or not if it is true.
    pub fn appended(&self, nonce: u64) -> bool {
        self.lock().nonces.contains(&nonce)
    }

    /// A node restarted does not resume a leadership it held: a stored
    /// vote that says "`me` won the election of this term" is handed to
    /// openraft as a plain vote for `me` in that term (which it still is:
    /// this node votes for nobody else in it), so openraft starts it as a
    /// follower, and leading again takes an election in a later term.
    ///
    /// Why: openraft (0.9) restarts a node whose stored vote is its own
    /// committed one as the leader of that term, and that leader's read
    /// index is the greater of its term's first entry and the commit index
    /// read back from [`COMMITTED`]. That file is best effort (not written
    /// atomically, not fsynced): a kill -9 while it is rewritten leaves it
    /// empty, the commit index falls back to the snapshot's, and reads
    /// confirmed by followers still in that term were served from the
    /// snapshot, behind writes already acknowledged. A new leader's read
    /// index is its own first entry, after everything committed before it.
    /// Returns whether the vote was changed.
    pub fn forget_leadership(&self, me: NodeId) -> bool {
        let mut g = self.lock();
        match g.vote.as_mut() {
            Some(v) if v.committed && v.leader_id.node_id == me => {
                v.committed = false;
                true
            }
            _ => false,
        }
    }

    /// The ID of the last entry in the log (or of the last purged one).
    pub fn last_log_id(&self) -> Option<LogId<NodeId>> {
        let g = self.lock();
        g.entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(g.last_purged)
    }

    /// Index of the last entry in the log (for status output).
    pub fn last_index(&self) -> Option<u64> {
        let g = self.lock();
        g.entries
            .keys()
            .next_back()
            .copied()
            .or(g.last_purged.map(|l| l.index))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.checked_add(1),
            Bound::Excluded(&e) => Some(e),
            Bound::Unbounded => None,
        };
        if end.is_some_and(|end| start > end) {
            // BTreeMap::range would panic inside the Raft core.
            fatal::die(
                Exit::SafetyViolation,
                &format!(
                    "asked for log entries {range:?}: the committed index went back, \
                     so the cluster lost entries this node had applied"
                ),
            );
        }
        Ok(self
            .lock()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let g = self.lock();
        let last = g
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(g.last_purged);
        Ok(LogState {
            last_purged_log_id: g.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut g = self.lock();
        let bytes = bincode::serialize(vote).expect("vote serialises");
        tokio::task::block_in_place(|| write_atomic(&g.dir, VOTE, &bytes))
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        g.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // Not needed for safety (a restarted node learns the commit index
        // from the leader: it never resumes a leadership, see
        // `forget_leadership`); kept so that a node restarted alone replays its
        // committed entries at once. Not fsynced for the same reason.
        use std::os::unix::fs::FileExt;
        let mut g = self.lock();
        g.committed = committed;
        if g.committed_file.is_none() {
            let path = g.dir.join(COMMITTED);
            g.committed_file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .ok();
        }
        let rec = committed_record(&committed);
        if let Some(f) = &g.committed_file {
            if f.write_all_at(&rec, 0).is_err() {
                g.committed_file = None;
            }
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        crate::testing::maybe_panic(crate::testing::Fault::PanicAppend);
        let mut g = self.lock();
        for e in &entries {
            if let EntryPayload::Normal(req) = &e.payload {
                for w in &req.writes {
                    g.remember(w.nonce);
                    crate::trace::mark(w.nonce, crate::trace::Mark::AppendStart);
                }
            }
        }
        let rec = Record::Append(entries);
        let res = tokio::task::block_in_place(|| g.write(&rec));
        if crate::trace::on() {
            if let Record::Append(es) = &rec {
                crate::trace::mark_entries(es, crate::trace::Mark::AppendDone);
            }
        }
        match res {
            Ok(()) => {
                g.apply(rec);
                drop(g);
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let err = io_err(
                    ErrorSubject::Logs,
                    ErrorVerb::Write,
                    io::Error::new(e.kind(), e.to_string()),
                );
                callback.log_io_completed(Err(e));
                Err(err)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut g = self.lock();
        if let Some(c) = g.committed.filter(|c| c.index >= log_id.index) {
            fatal::die(
                Exit::SafetyViolation,
                &format!(
                    "told to truncate the log from {log_id}, at or below the committed {c}: \
                     the cluster lost entries it had committed"
                ),
            );
        }
        let rec = Record::Truncate(log_id.index);
        tokio::task::block_in_place(|| g.write(&rec))
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        g.apply(rec);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut g = self.lock();
        let rec = Record::Purge(log_id);
        tokio::task::block_in_place(|| g.write(&rec))
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        g.apply(rec);
        // Rewrite once the file is mostly purged entries.
        let live: usize = g.entries.len();
        if g.file_len > 32 << 20 && live < 1000 {
            tokio::task::block_in_place(|| g.compact())
                .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Request;
    use openraft::CommittedLeaderId;

    fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(Request {
                writes: vec![crate::types::Write {
                    nonce: index,
                    args: vec![
                        b"SET".to_vec(),
                        b"k".to_vec(),
                        index.to_string().into_bytes(),
                    ],
                }],
            }),
        }
    }

    #[test]
    fn a_whole_record_of_another_format_stops_the_open_instead_of_being_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let body = b"not a record of this format";
        let mut raw = Vec::new();
        raw.extend_from_slice(&(body.len() as u32).to_le_bytes());
        raw.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        raw.extend_from_slice(body);
        std::fs::write(dir.path().join(LOG), &raw).unwrap();
        let err = LogStore::open(dir.path()).err().expect("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // Nothing was truncated.
        assert_eq!(std::fs::read(dir.path().join(LOG)).unwrap(), raw);
    }

    #[tokio::test]
    async fn the_committed_id_is_rewritten_in_place_and_a_bad_record_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let id = |i| LogId::new(CommittedLeaderId::new(3, 2), i);
        {
            let mut s = LogStore::open(dir.path()).unwrap();
            s.save_committed(Some(id(7))).await.unwrap();
            s.save_committed(Some(id(300))).await.unwrap();
        }
        let path = dir.path().join(COMMITTED);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            COMMITTED_LEN as u64
        );
        let mut s = LogStore::open(dir.path()).unwrap();
        assert_eq!(s.read_committed().await.unwrap(), Some(id(300)));
        s.save_committed(None).await.unwrap();
        drop(s);
        let mut s = LogStore::open(dir.path()).unwrap();
        assert_eq!(s.read_committed().await.unwrap(), None);
        // A flipped bit (or a torn write) is caught by the checksum.
        let mut rec = committed_record(&Some(id(9)));
        rec[10] ^= 1;
        std::fs::write(&path, rec).unwrap();
        let mut s = LogStore::open(dir.path()).unwrap();
        assert_eq!(s.read_committed().await.unwrap(), None);
        assert_eq!(
            parse_committed(&committed_record(&Some(id(9)))),
            Some(id(9))
        );
        assert_eq!(parse_committed(&[0; COMMITTED_LEN]), None);
        assert_eq!(parse_committed(b"junk"), None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_log_survives_a_reopen_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = LogStore::open(dir.path()).unwrap();
            let mut g = s.lock();
            for i in 1..=5 {
                let r = Record::Append(vec![entry(1, i)]);
                g.write(&r).unwrap();
                g.apply(r);
            }
            let r = Record::Truncate(4);
            g.write(&r).unwrap();
            g.apply(r);
            let r = Record::Purge(LogId::new(CommittedLeaderId::new(1, 1), 1));
            g.write(&r).unwrap();
        }
        // A torn record at the end, as a crash in the middle of a write leaves.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(LOG))
            .unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let mut s = LogStore::open(dir.path()).unwrap();
        let got: Vec<u64> = s
            .try_get_log_entries(0..)
            .await
            .unwrap()
            .iter()
            .map(|e| e.log_id.index)
            .collect();
        assert_eq!(got, vec![2, 3]);
        let st = s.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id.unwrap().index, 1);
        assert_eq!(st.last_log_id.unwrap().index, 3);
    }

    #[test]
    fn the_store_remembers_recent_nonces_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(dir.path()).unwrap();
        for n in 0..NONCES as u64 + 10 {
            s.lock().remember(n);
        }
        assert!(s.appended(NONCES as u64 + 9));
        assert!(!s.appended(0), "the oldest were forgotten");
        assert!(!s.appended(u64::MAX), "never appended");
    }
}
