//! Where a write's time goes: timestamps of each stage of each write on
//! this node, recorded only while a benchmark asks for them (`RAFT.TRACE`).
//!
//! `wclab raft bench-commit` turns them into its breakdown: it switches
//! tracing on on every node, runs its commits, takes the traces back, and
//! matches the leader's and the followers' stages by the write's nonce
//! (every write in the log carries one, see [`crate::types::Write`]). Only
//! durations between marks of one node are reported, never a difference
//! between two nodes' clocks.
//!
//! Off (the normal state), a mark costs one relaxed atomic load. On, it
//! takes a mutex, which is nothing next to the milliseconds being
//! measured. The state is per process, which is per node: a sidecar is one
//! node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A point in a write's life on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Leader: the first byte of the client's request was there to read.
    Received,
    /// Leader: the request was read and parsed.
    Parsed,
    /// Leader: the write was handed to the proposer (the log's front door).
    Submitted,
    /// Leader: the entry holding the write was handed to openraft.
    Proposed,
    /// The log store began to append the entry (leader and followers).
    AppendStart,
    /// The entry is on disk (fsynced).
    AppendDone,
    /// Leader: the entry was first sent to a follower.
    Sent,
    /// Leader: a follower acknowledged it (one mark per follower; see
    /// [`Trace::acks_us`]).
    Acked,
    /// Applying the entry to the local Redis began.
    ApplyStart,
    /// The local Redis answered it.
    ApplyDone,
    /// Leader: openraft (or the proposer) handed the session its result.
    Answered,
    /// Leader: the reply was written to the client's socket.
    Replied,
    /// Follower: an append RPC carrying the entry arrived (parsed).
    RpcReceived,
    /// Follower: the append RPC was answered by openraft.
    RpcAnswered,
}

impl Mark {
    const ALL: [Mark; 14] = [
        Mark::Received,
        Mark::Parsed,
        Mark::Submitted,
        Mark::Proposed,
        Mark::AppendStart,
        Mark::AppendDone,
        Mark::Sent,
        Mark::Acked,
        Mark::ApplyStart,
        Mark::ApplyDone,
        Mark::Answered,
        Mark::Replied,
        Mark::RpcReceived,
        Mark::RpcAnswered,
    ];

    /// The mark's name in `RAFT.TRACE GET`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Received => "received",
            Mark::Parsed => "parsed",
            Mark::Submitted => "submitted",
            Mark::Proposed => "proposed",
            Mark::AppendStart => "append_start",
            Mark::AppendDone => "append_done",
            Mark::Sent => "sent",
            Mark::Acked => "acked",
            Mark::ApplyStart => "apply_start",
            Mark::ApplyDone => "apply_done",
            Mark::Answered => "answered",
            Mark::Replied => "replied",
            Mark::RpcReceived => "rpc_received",
            Mark::RpcAnswered => "rpc_answered",
        }
    }

    /// The mark named `s`.
    pub fn parse(s: &str) -> Option<Mark> {
        Mark::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// The marks of one write (one nonce) on this node.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// What was written: the command's name (and function's, for FCALL).
    pub name: String,
    first: Option<Instant>,
    marks: Vec<(Mark, Instant)>,
    acks: Vec<Instant>,
}

impl Trace {
    fn mark(&mut self, mark: Mark, at: Instant) {
        if mark == Mark::Acked {
            self.acks.push(at);
        } else if !self.marks.iter().any(|(m, _)| *m == mark) {
            self.marks.push((mark, at));
        }
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
    }

    /// Microseconds from the earliest mark to `mark`, if it was made.
    pub fn at_us(&self, mark: Mark) -> Option<u64> {
        let first = self.first?;
        self.marks
            .iter()
            .find(|(m, _)| *m == mark)
            .map(|(_, t)| t.saturating_duration_since(first).as_micros() as u64)
    }

    /// Microseconds from the earliest mark to each follower's
    /// acknowledgement, earliest first.
    pub fn acks_us(&self) -> Vec<u64> {
        let Some(first) = self.first else {
            return Vec::new();
        };
        let mut v: Vec<u64> = self
            .acks
            .iter()
            .map(|t| t.saturating_duration_since(first).as_micros() as u64)
            .collect();
        v.sort_unstable();
        v
    }

    /// `name mark=us mark=us ... acked=us,us`: one line of `RAFT.TRACE GET`.
    pub fn render(&self, nonce: u64) -> String {
        let name = if self.name.is_empty() {
            "-".to_owned()
        } else {
            self.name.replace(char::is_whitespace, "_")
        };
        let mut out = format!("{nonce:x} {name}");
        for m in Mark::ALL {
            if let Some(us) = self.at_us(m) {
                out.push_str(&format!(" {}={us}", m.as_str()));
            }
        }
        let acks = self.acks_us();
        if !acks.is_empty() {
            let acks: Vec<String> = acks.iter().map(u64::to_string).collect();
            out.push_str(&format!(" {}={}", Mark::Acked.as_str(), acks.join(",")));
        }
        out
    }
}

/// At most this many writes are traced at once (a benchmark's worth).
const MAX_TRACES: usize = 200_000;

static ON: AtomicBool = AtomicBool::new(false);
static TRACES: Mutex<Option<HashMap<u64, Trace>>> = Mutex::new(None);

/// Whether tracing is on.
#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Starts tracing, forgetting earlier traces.
pub fn start() {
    *TRACES.lock().unwrap_or_else(|p| p.into_inner()) = Some(HashMap::new());
    ON.store(true, Ordering::SeqCst);
}

/// Stops tracing and returns what was recorded.
pub fn stop() -> HashMap<u64, Trace> {
    ON.store(false, Ordering::SeqCst);
    TRACES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_default()
}

/// Records `mark` for the write `nonce`, now.
#[inline]
pub fn mark(nonce: u64, mark: Mark) {
    if on() {
        mark_at(nonce, mark, Instant::now());
    }
}

/// Records `mark` for the write `nonce`, at `at` (a time taken earlier,
/// before the nonce was known).
pub fn mark_at(nonce: u64, mark: Mark, at: Instant) {
    if !on() {
        return;
    }
    let mut g = TRACES.lock().unwrap_or_else(|p| p.into_inner());
    let Some(traces) = g.as_mut() else {
        return;
    };
    if traces.len() >= MAX_TRACES && !traces.contains_key(&nonce) {
        return;
    }
    traces.entry(nonce).or_default().mark(mark, at);
}

/// Records `mark`, now, for every write among `entries`.
pub fn mark_entries(entries: &[openraft::Entry<crate::types::TypeConfig>], mark: Mark) {
    if on() {
        mark_all(&nonces(entries), mark);
    }
}

/// The nonces of the writes among `entries` (none while tracing is off).
pub fn nonces(entries: &[openraft::Entry<crate::types::TypeConfig>]) -> Vec<u64> {
    if !on() {
        return Vec::new();
    }
    entries
        .iter()
        .flat_map(|e| match &e.payload {
            openraft::EntryPayload::Normal(req) => req.writes.as_slice(),
            _ => &[],
        })
        .map(|w| w.nonce)
        .collect()
}

/// Records `mark`, now, for each of `nonces`.
pub fn mark_all(nonces: &[u64], mark: Mark) {
    let now = Instant::now();
    for &n in nonces {
        mark_at(n, mark, now);
    }
}

/// Names the write `nonce` (the command, and the function of an FCALL).
pub fn name(nonce: u64, args: &[Vec<u8>]) {
    if !on() {
        return;
    }
    let fcall = args
        .first()
        .is_some_and(|a| a.eq_ignore_ascii_case(b"FCALL"));
    let name = if fcall { args.get(1) } else { args.first() };
    let name = String::from_utf8_lossy(name.map(Vec::as_slice).unwrap_or_default()).into_owned();
    let mut g = TRACES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(traces) = g.as_mut() {
        traces.entry(nonce).or_default().name = name;
    }
}

/// One traced write as `RAFT.TRACE GET` reports it, parsed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The write's nonce.
    pub nonce: u64,
    /// The command's (or function's) name.
    pub name: String,
    /// Microseconds from the first mark to each mark made.
    pub marks: HashMap<String, u64>,
    /// Microseconds from the first mark to each follower's acknowledgement.
    pub acks: Vec<u64>,
}

impl Line {
    /// Parses one line of `RAFT.TRACE GET`.
    pub fn parse(s: &str) -> Option<Line> {
        let mut parts = s.split_whitespace();
        let nonce = u64::from_str_radix(parts.next()?, 16).ok()?;
        let name = parts.next()?.to_owned();
        let mut marks = HashMap::new();
        let mut acks = Vec::new();
        for p in parts {
            let (k, v) = p.split_once('=')?;
            if k == Mark::Acked.as_str() {
                acks = v.split(',').filter_map(|a| a.parse().ok()).collect();
            } else {
                marks.insert(k.to_owned(), v.parse().ok()?);
            }
        }
        Some(Line {
            nonce,
            name,
            marks,
            acks,
        })
    }

    /// Microseconds from `a` to `b`, both marks of this line.
    pub fn span(&self, a: Mark, b: Mark) -> Option<u64> {
        let (a, b) = (self.marks.get(a.as_str())?, self.marks.get(b.as_str())?);
        b.checked_sub(*a)
    }
}

/// One stage of the breakdown: its name and its duration over the traced
/// writes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stage {
    /// What happens in it.
    pub stage: &'static str,
    /// Mean, in milliseconds.
    pub mean_ms: f64,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// How many writes it was measured on.
    pub n: usize,
}

/// Where one client's writes spent their time, stage by stage, from the
/// client's own latencies and the traces of every node (`RAFT.TRACE`).
///
/// `client_ms` are the latencies the client measured; `leader` the
/// leader's lines; `followers` each follower's lines; `quorum` the number
/// of nodes whose fsync a commit needs (the leader included); only the
/// lines named `name` count. The means add up to the client's mean; the
/// medians of the stages need not add up to anything. The replication
/// stage is split with the follower whose acknowledgement completed the
/// quorum taken to be the one with the (quorum - 1)-th shortest handling
/// of the RPC: an approximation, as the leader does not know which one
/// answered first.
pub fn breakdown(
    client_ms: &[f64],
    leader: &[Line],
    followers: &[Vec<Line>],
    quorum: usize,
    name: &str,
) -> Vec<Stage> {
    use Mark::*;
    let by_nonce: Vec<HashMap<u64, &Line>> = followers
        .iter()
        .map(|ls| ls.iter().map(|l| (l.nonce, l)).collect())
        .collect();
    let lines: Vec<&Line> = leader.iter().filter(|l| l.name == name).collect();
    let ms = |us: u64| us as f64 / 1000.0;
    let mut stages: Vec<(&'static str, Vec<f64>)> = Vec::new();
    let mut add = |stage: &'static str, v: Option<f64>| {
        let Some(v) = v else { return };
        match stages.iter_mut().find(|(s, _)| *s == stage) {
            Some((_, vs)) => vs.push(v),
            None => stages.push((stage, vec![v])),
        }
    };
    let sidecar_ms: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.span(Received, Replied).map(ms))
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    add(
        "client <-> sidecar (client library, network, both ways)",
        (!client_ms.is_empty() && !sidecar_ms.is_empty())
            .then(|| mean(client_ms) - mean(&sidecar_ms)),
    );
    for l in &lines {
        add("read + parse the request", l.span(Received, Parsed).map(ms));
        add(
            "session: check, fill the time, hand over",
            l.span(Parsed, Submitted).map(ms),
        );
        add(
            "proposer: wait for a batch",
            l.span(Submitted, Proposed).map(ms),
        );
        add(
            "openraft: to the log store",
            l.span(Proposed, AppendStart).map(ms),
        );
        add(
            "leader: append + fsync",
            l.span(AppendStart, AppendDone).map(ms),
        );
        add("openraft: to replication", l.span(AppendDone, Sent).map(ms));
        let ack = l.acks.get(quorum.saturating_sub(2)).copied();
        let sent = l.marks.get(Sent.as_str()).copied();
        let rtt = sent.zip(ack).and_then(|(s, a)| a.checked_sub(s));
        // The followers' own handling of this write's RPC.
        let mut handled: Vec<(u64, u64, u64)> = by_nonce
            .iter()
            .filter_map(|f| f.get(&l.nonce))
            .filter_map(|f| {
                Some((
                    f.span(RpcReceived, RpcAnswered)?,
                    f.span(AppendStart, AppendDone)?,
                    f.span(RpcReceived, AppendStart)?,
                ))
            })
            .collect();
        handled.sort_unstable();
        let follower = handled.get(quorum.saturating_sub(2)).copied();
        match (rtt, follower) {
            (Some(rtt), Some((rpc, fsync, before))) => {
                add(
                    "replication: network + (de)serialisation, both ways",
                    Some(ms(rtt.saturating_sub(rpc))),
                );
                add("follower: openraft to its log store", Some(ms(before)));
                add("follower: append + fsync", Some(ms(fsync)));
                add(
                    "follower: openraft to the answer",
                    Some(ms(rpc.saturating_sub(fsync + before))),
                );
            }
            (Some(rtt), None) => add("replication round trip (quorum)", Some(ms(rtt))),
            _ => {}
        }
        let acked = ack.zip(l.marks.get(ApplyStart.as_str()).copied());
        add(
            "openraft: commit, to the state machine",
            acked.and_then(|(a, s)| s.checked_sub(a)).map(ms),
        );
        add(
            "apply to the local Redis",
            l.span(ApplyStart, ApplyDone).map(ms),
        );
        add(
            "openraft: result to the session",
            l.span(ApplyDone, Answered).map(ms),
        );
        add("reply written", l.span(Answered, Replied).map(ms));
    }
    stages
        .into_iter()
        .map(|(stage, mut v)| {
            v.sort_by(f64::total_cmp);
            Stage {
                stage,
                mean_ms: mean(&v),
                p50_ms: v[v.len() / 2],
                n: v.len(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_trace_renders_and_parses_back() {
        let t0 = Instant::now();
        let mut t = Trace {
            name: "wclab_commit".into(),
            ..Default::default()
        };
        t.mark(Mark::Received, t0);
        t.mark(Mark::AppendStart, t0 + Duration::from_micros(40));
        t.mark(Mark::AppendDone, t0 + Duration::from_micros(240));
        t.mark(Mark::AppendDone, t0 + Duration::from_micros(999)); // first wins
        t.mark(Mark::Acked, t0 + Duration::from_micros(700));
        t.mark(Mark::Acked, t0 + Duration::from_micros(500));
        let line = Line::parse(&t.render(0xabc)).unwrap();
        assert_eq!(line.nonce, 0xabc);
        assert_eq!(line.name, "wclab_commit");
        assert_eq!(line.span(Mark::AppendStart, Mark::AppendDone), Some(200));
        assert_eq!(line.marks["received"], 0);
        assert_eq!(line.acks, vec![500, 700]);
        assert_eq!(line.span(Mark::Received, Mark::Replied), None);
    }
}
