//! Test switches: faults that cannot be caused from outside a process.
//!
//! Only when the node was started with `WCLAB_RAFT_TEST_FAULTS=1`, the
//! admin command `RAFT.FAULT <fault> [arg]` arms one fault, which fires
//! once:
//!
//! * `panic-apply`: the next command applied to the state machine panics;
//! * `panic-append`: the next append to the Raft log panics (inside the
//!   Raft core);
//! * `unknown-reply NAME`: the leader answers the next committed write
//!   whose command (or, for FCALL, whose function) is NAME with `-UNKNOWN`
//!   instead of its result — a write applied whose client cannot know it.
//!
//! Without the variable, `RAFT.FAULT` is refused and nothing here fires;
//! so is `RAFT.PARTITION` (the tests' and the Jepsen harness's partitions),
//! which any authenticated client could otherwise send to cut a node off.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The environment variable that turns the switches on.
pub const ENV: &str = "WCLAB_RAFT_TEST_FAULTS";

/// A fault that can be armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Panic in the next apply.
    PanicApply,
    /// Panic in the next log append.
    PanicAppend,
}

static PANIC_APPLY: AtomicBool = AtomicBool::new(false);
static PANIC_APPEND: AtomicBool = AtomicBool::new(false);
static UNKNOWN_REPLY: Mutex<Option<Vec<u8>>> = Mutex::new(None);
static FIRED: AtomicU64 = AtomicU64::new(0);

/// Whether the switches are on (read once).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var(ENV).is_ok_and(|v| v == "1"))
}

/// Arms a fault given as `RAFT.FAULT`'s arguments; `Err` with the reason
/// when the switches are off or the fault is unknown.
pub fn arm(args: &[Vec<u8>]) -> Result<(), String> {
    if !enabled() {
        return Err(format!("test faults are off (start the node with {ENV}=1)"));
    }
    let what = args.first().map(|a| a.to_ascii_lowercase());
    match (what.as_deref(), args.get(1)) {
        (Some(b"panic-apply"), None) => PANIC_APPLY.store(true, Ordering::SeqCst),
        (Some(b"panic-append"), None) => PANIC_APPEND.store(true, Ordering::SeqCst),
        (Some(b"unknown-reply"), Some(name)) => {
            *UNKNOWN_REPLY.lock().unwrap_or_else(|p| p.into_inner()) = Some(name.clone())
        }
        _ => return Err("RAFT.FAULT panic-apply | panic-append | unknown-reply NAME".into()),
    }
    Ok(())
}

/// Panics here if `fault` is armed (and disarms it).
pub fn maybe_panic(fault: Fault) {
    let flag = match fault {
        Fault::PanicApply => &PANIC_APPLY,
        Fault::PanicAppend => &PANIC_APPEND,
    };
    if enabled() && flag.swap(false, Ordering::SeqCst) {
        FIRED.fetch_add(1, Ordering::SeqCst);
        panic!("test fault {fault:?}");
    }
}

/// Whether the reply to this committed write must be replaced by
/// `-UNKNOWN` (and disarms the fault if so).
pub fn unknown_reply(args: &[Vec<u8>]) -> bool {
    if !enabled() {
        return false;
    }
    let mut armed = UNKNOWN_REPLY.lock().unwrap_or_else(|p| p.into_inner());
    let Some(name) = armed.as_ref() else {
        return false;
    };
    let fcall = args
        .first()
        .is_some_and(|a| a.eq_ignore_ascii_case(b"FCALL"));
    let this = if fcall { args.get(1) } else { args.first() };
    if this.is_some_and(|t| t.eq_ignore_ascii_case(name)) {
        *armed = None;
        FIRED.fetch_add(1, Ordering::SeqCst);
        return true;
    }
    false
}

/// How many armed faults fired in this process.
pub fn fired() -> u64 {
    FIRED.load(Ordering::SeqCst)
}

/// The payload of a `RAFT.RPC vote` in which `candidate` asks for votes in
/// `term`, as a peer would send it: for tests that a node checks who may
/// send one (the sender's certificate, removed nodes), which need a
/// payload that gets past decoding.
pub fn vote_request_payload(term: u64, candidate: crate::types::NodeId) -> Vec<u8> {
    let req = openraft::raft::VoteRequest::<crate::types::NodeId> {
        vote: openraft::Vote::new(term, candidate),
        last_log_id: None,
    };
    bincode::serialize(&req).expect("a vote request serialises")
}
