//! Commands, parsed once: which are writes (into the log), reads (answered
//! by the leader after a read-index check), local (the sidecar answers),
//! administration, or refused because a replica could not apply them
//! deterministically.
//!
//! The rule for writes: whatever reaches the log must give the same result
//! on every replica, whenever it is applied. So nothing that reads a
//! replica's clock (expiries, `XADD *`, idle times), draws a random number
//! (`SPOP`), blocks, or runs code we have not vetted (`EVAL`, `SCRIPT`,
//! a foreign function library) is accepted. wclab's own functions are
//! deterministic once they are given the time: the leader fills their
//! `now_ms` argument ([`fill_now`]) before the entry enters the log, and a
//! call without that argument (which would read each replica's `TIME`) is
//! refused. Only wclab's own library, byte for byte the one this sidecar
//! was built with, may be loaded, so every `wclab_*` function that exists
//! in a replica's Redis is ours.
//!
//! Options are parsed where the command's grammar puts them: `SET px v`
//! sets the key `px`, and `SET k EX` sets `k` to "EX".

/// How the sidecar handles a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Changes the dataset: appended to the log, applied on every replica,
    /// answered with the leader's result after the commit.
    Write,
    /// Reads the dataset: answered by the leader after a read-index check.
    Read,
    /// Connection state (AUTH, CLIENT, ...): answered by the sidecar.
    Local,
    /// MULTI, EXEC, DISCARD, WATCH: a transaction cannot be one log entry.
    Transaction,
    /// Cluster administration (`RAFT.*`).
    Admin,
}

/// Why a command is refused (the reply's text; its first word is the code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No command at all.
    #[error("ERR empty command")]
    Empty,
    /// A command the sidecar does not know (or does not support).
    #[error("ERR wclab-raft: unknown or unsupported command '{0}'")]
    Unknown(String),
    /// Too few arguments to find what the decision depends on.
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    /// The effect could differ between replicas.
    #[error("ERR wclab-raft: {what} refused: {why}; every replica must apply the same log to the same result")]
    NotDeterministic {
        /// The command (and the option) refused.
        what: String,
        /// What would differ.
        why: &'static str,
    },
    /// Meaningless or harmful on a replicated store.
    #[error("ERR wclab-raft: {what} is not supported on a Raft cluster ({why})")]
    Unsupported {
        /// The command refused.
        what: String,
        /// Why.
        why: &'static str,
    },
}

fn nondet(what: impl Into<String>, why: &'static str) -> Refusal {
    Refusal::NotDeterministic {
        what: what.into(),
        why,
    }
}

fn unsupported(what: impl Into<String>, why: &'static str) -> Refusal {
    Refusal::Unsupported {
        what: what.into(),
        why,
    }
}

macro_rules! commands {
    ($($variant:ident $text:literal $kind:ident,)*) => {
        /// Every command the sidecar knows, by name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Name { $($variant,)* }

        impl Name {
            /// The command's name as Redis spells it.
            pub fn as_str(self) -> &'static str {
                match self { $(Name::$variant => $text,)* }
            }

            /// `None` for a command that is always refused.
            fn base_kind(self) -> Option<Kind> {
                match self { $(Name::$variant => commands!(@kind $kind),)* }
            }

            fn lookup(upper: &str) -> Option<Name> {
                match upper { $($text => Some(Name::$variant),)* _ => None }
            }
        }
    };
    (@kind Refused) => { None };
    (@kind $kind:ident) => { Some(Kind::$kind) };
}

commands! {
    // Connection state, answered by the sidecar.
    Ping "PING" Local, Echo "ECHO" Local, Auth "AUTH" Local, Hello "HELLO" Local,
    Client "CLIENT" Local, Select "SELECT" Local, CommandDocs "COMMAND" Local,
    Quit "QUIT" Local, Reset "RESET" Local, ReadOnly "READONLY" Local,
    ReadWrite "READWRITE" Local,
    // Transactions.
    Multi "MULTI" Transaction, Exec "EXEC" Transaction, Discard "DISCARD" Transaction,
    Watch "WATCH" Transaction, Unwatch "UNWATCH" Transaction,
    // Administration.
    RaftRpc "RAFT.RPC" Admin, RaftProxied "RAFT.PROXIED" Admin, RaftInfo "RAFT.INFO" Admin,
    RaftInit "RAFT.INIT" Admin, RaftJoin "RAFT.JOIN" Admin, RaftRemove "RAFT.REMOVE" Admin,
    RaftPartition "RAFT.PARTITION" Admin, RaftDigest "RAFT.DIGEST" Admin,
    RaftSnapshot "RAFT.SNAPSHOT" Admin, RaftLeader "RAFT.LEADER" Admin,
    RaftFault "RAFT.FAULT" Admin, RaftTrace "RAFT.TRACE" Admin,
    // Writes.
    Set "SET" Write, Del "DEL" Write, Unlink "UNLINK" Write, Hset "HSET" Write,
    Hsetnx "HSETNX" Write, Hmset "HMSET" Write, Hdel "HDEL" Write, Hincrby "HINCRBY" Write,
    Hincrbyfloat "HINCRBYFLOAT" Write, Incr "INCR" Write, Incrby "INCRBY" Write,
    Decr "DECR" Write, Decrby "DECRBY" Write, Append "APPEND" Write, Mset "MSET" Write,
    Lpush "LPUSH" Write, Rpush "RPUSH" Write, Lpop "LPOP" Write, Rpop "RPOP" Write,
    Sadd "SADD" Write, Srem "SREM" Write, Zadd "ZADD" Write, Zincrby "ZINCRBY" Write,
    Zrem "ZREM" Write, Zremrangebyscore "ZREMRANGEBYSCORE" Write,
    Zremrangebyrank "ZREMRANGEBYRANK" Write, Xadd "XADD" Write, Xack "XACK" Write,
    Xdel "XDEL" Write, Xtrim "XTRIM" Write, Xgroup "XGROUP" Write, Xclaim "XCLAIM" Write,
    Xsetid "XSETID" Write, Xreadgroup "XREADGROUP" Write, Flushall "FLUSHALL" Write,
    Flushdb "FLUSHDB" Write, Fcall "FCALL" Write, Function "FUNCTION" Write,
    Rename "RENAME" Write, Copy "COPY" Write, Persist "PERSIST" Write,
    // Reads.
    Get "GET" Read, Mget "MGET" Read, Exists "EXISTS" Read, Type "TYPE" Read, Keys "KEYS" Read,
    Scan "SCAN" Read, Dbsize "DBSIZE" Read, Strlen "STRLEN" Read, Hget "HGET" Read,
    Hmget "HMGET" Read, Hgetall "HGETALL" Read, Hlen "HLEN" Read, Hexists "HEXISTS" Read,
    Hkeys "HKEYS" Read, Hvals "HVALS" Read, Hscan "HSCAN" Read, Lrange "LRANGE" Read,
    Llen "LLEN" Read, Smembers "SMEMBERS" Read, Scard "SCARD" Read,
    Sismember "SISMEMBER" Read, Zrange "ZRANGE" Read, Zrevrange "ZREVRANGE" Read,
    Zrangebyscore "ZRANGEBYSCORE" Read, Zrevrangebyscore "ZREVRANGEBYSCORE" Read,
    Zscore "ZSCORE" Read, Zmscore "ZMSCORE" Read, Zcard "ZCARD" Read, Zcount "ZCOUNT" Read,
    Zrank "ZRANK" Read, Zrevrank "ZREVRANK" Read, Zscan "ZSCAN" Read, Xlen "XLEN" Read,
    Xrange "XRANGE" Read, Xrevrange "XREVRANGE" Read, Xpending "XPENDING" Read,
    Xinfo "XINFO" Read, Xread "XREAD" Read, FcallRo "FCALL_RO" Read, Info "INFO" Read,
    Memory "MEMORY" Read, Dump "DUMP" Read, Time "TIME" Read, Ttl "TTL" Read,
    Pttl "PTTL" Read, Lastsave "LASTSAVE" Read, Config "CONFIG" Read,
    // Always refused, with a reason.
    Eval "EVAL" Refused, Evalsha "EVALSHA" Refused, EvalRo "EVAL_RO" Refused,
    EvalshaRo "EVALSHA_RO" Refused, Script "SCRIPT" Refused,
    Spop "SPOP" Refused, Srandmember "SRANDMEMBER" Refused, Randomkey "RANDOMKEY" Refused,
    Zrandmember "ZRANDMEMBER" Refused, Hrandfield "HRANDFIELD" Refused,
    Expire "EXPIRE" Refused, Pexpire "PEXPIRE" Refused, Expireat "EXPIREAT" Refused,
    Pexpireat "PEXPIREAT" Refused, Setex "SETEX" Refused, Psetex "PSETEX" Refused,
    Getex "GETEX" Refused, Restore "RESTORE" Refused, Xautoclaim "XAUTOCLAIM" Refused,
    Bgsave "BGSAVE" Refused, Save "SAVE" Refused, Bgrewriteaof "BGREWRITEAOF" Refused,
    Shutdown "SHUTDOWN" Refused, Debug "DEBUG" Refused, Replicaof "REPLICAOF" Refused,
    Slaveof "SLAVEOF" Refused, Subscribe "SUBSCRIBE" Refused, Psubscribe "PSUBSCRIBE" Refused,
    Monitor "MONITOR" Refused, Wait "WAIT" Refused,
}

impl Name {
    /// Administration that changes the cluster or a node's behaviour, as
    /// opposed to reading its state: served to the administrator only
    /// (docs/security.md).
    pub fn changes_the_cluster(self) -> bool {
        matches!(
            self,
            Name::RaftInit
                | Name::RaftJoin
                | Name::RaftRemove
                | Name::RaftPartition
                | Name::RaftSnapshot
                | Name::RaftFault
                | Name::RaftTrace
        )
    }
}

/// A parsed command: its name, and its arguments as sent (`args[0]` is the
/// name as the client spelled it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Which command.
    pub name: Name,
    /// How the sidecar handles it.
    pub kind: Kind,
    /// The arguments, the name first.
    pub args: Vec<Vec<u8>>,
}

fn upper(a: &[u8]) -> String {
    String::from_utf8_lossy(a).to_ascii_uppercase()
}

/// Which command `args` is and how the sidecar handles it, or why it is
/// refused. The state machine asks again at apply ([`crate::sm`]): an entry
/// is applied only if it is a write the client path would have accepted.
pub fn classify(args: &[Vec<u8>]) -> Result<(Name, Kind), Refusal> {
    let first = args.first().ok_or(Refusal::Empty)?;
    let name = Name::lookup(&upper(first))
        .ok_or_else(|| Refusal::Unknown(String::from_utf8_lossy(first).into_owned()))?;
    let kind = match name.base_kind() {
        Some(k) => k,
        None => return Err(always_refused(name)),
    };
    Ok((name, check(name, kind, args)?))
}

/// The prefix of wclab's functions, the only ones FCALL may call.
pub const FUNCTION_PREFIX: &[u8] = b"wclab_";

/// wclab's function library, the only code `FUNCTION LOAD` accepts.
pub fn library() -> &'static [u8] {
    wclab_coord::FUNCTION_LIBRARY.as_bytes()
}

impl Command {
    /// Parses a command given as its arguments, or says why it is refused.
    pub fn parse(args: Vec<Vec<u8>>) -> Result<Command, Refusal> {
        let (name, kind) = classify(&args)?;
        Ok(Command { name, kind, args })
    }

    /// The subcommand (`CLIENT ID`, `FUNCTION LOAD`), upper-cased.
    pub fn sub(&self) -> String {
        self.args.get(1).map(|a| upper(a)).unwrap_or_default()
    }

    /// Argument `i` as text (lossy), empty if absent.
    pub fn text(&self, i: usize) -> String {
        self.args
            .get(i)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .unwrap_or_default()
    }
}

fn always_refused(name: Name) -> Refusal {
    use Name::*;
    let n = name.as_str();
    match name {
        Eval | Evalsha | EvalRo | EvalshaRo | Script => nondet(
            n,
            "a script is code the sidecar cannot vet (its time, randomness and commands are its own); use wclab's functions",
        ),
        Spop | Srandmember | Randomkey | Zrandmember | Hrandfield => nondet(n, "it is random"),
        Expire | Pexpire | Expireat | Pexpireat | Setex | Psetex | Getex | Restore => {
            nondet(n, "expiries run on each replica's clock")
        }
        Xautoclaim => nondet(
            n,
            "its idle times are each replica's clock; wclab_claim steals with the leader's time",
        ),
        Subscribe | Psubscribe | Monitor => {
            unsupported(n, "the sidecar relays one reply per command")
        }
        _ => unsupported(n, "durability and replication come from the replicated log"),
    }
}

/// The checks that depend on a command's arguments; returns its kind.
fn check(name: Name, kind: Kind, args: &[Vec<u8>]) -> Result<Kind, Refusal> {
    use Name::*;
    let arity = || Refusal::Arity(name.as_str().to_ascii_lowercase());
    match name {
        Set => {
            if args.len() < 3 {
                return Err(arity());
            }
            // SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]
            for opt in &args[3..] {
                let opt = upper(opt);
                if matches!(opt.as_str(), "EX" | "PX" | "EXAT" | "PXAT" | "KEEPTTL") {
                    return Err(nondet(
                        format!("SET with {opt}"),
                        "expiries run on each replica's clock",
                    ));
                }
            }
        }
        Xadd => {
            let (at, trim) = xadd_id(args).ok_or_else(arity)?;
            approximate(name, args, trim)?;
            if args[at] == b"*" {
                return Err(nondet(
                    "XADD with ID *",
                    "the ID would be each replica's clock; give an explicit ID (ms-* is fine)",
                ));
            }
        }
        Xtrim => {
            // XTRIM key MAXLEN|MINID [= | ~] threshold [LIMIT count]
            if args.len() < 4 {
                return Err(arity());
            }
            approximate(name, args, Some(3))?;
        }
        Xreadgroup | Xread => {
            // XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS ...
            // XREAD [COUNT n] [BLOCK ms] STREAMS ...
            let mut i = if name == Xreadgroup { 4 } else { 1 };
            while let Some(opt) = args.get(i) {
                match upper(opt).as_str() {
                    "COUNT" => i += 2,
                    "NOACK" => i += 1,
                    "BLOCK" => {
                        return Err(unsupported(
                            format!("{} with BLOCK", name.as_str()),
                            "a blocked command would hold the log",
                        ))
                    }
                    _ => break, // STREAMS, or an error Redis reports the same everywhere
                }
            }
        }
        Xclaim => {
            // XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms]
            //        [TIME ms] [RETRYCOUNT n] [FORCE] [JUSTID] [LASTID id]
            if args.len() < 6 {
                return Err(arity());
            }
            if args[4] != b"0" {
                return Err(nondet(
                    "XCLAIM with a minimum idle time",
                    "idle times are each replica's clock",
                ));
            }
            let mut i = 5;
            while let Some(a) = args.get(i) {
                match upper(a).as_str() {
                    "IDLE" => {
                        return Err(nondet(
                            "XCLAIM with IDLE",
                            "idle times are each replica's clock; use TIME",
                        ))
                    }
                    "TIME" | "RETRYCOUNT" | "LASTID" => i += 2,
                    _ => i += 1, // an ID, FORCE, JUSTID
                }
            }
        }
        Fcall => {
            // FCALL function numkeys key ... arg ...
            let function = args.get(1).ok_or_else(arity)?;
            if !function.starts_with(FUNCTION_PREFIX) {
                return Err(nondet(
                    format!("FCALL {}", String::from_utf8_lossy(function)),
                    "only wclab's own functions (wclab_*) are known to be deterministic",
                ));
            }
            if now_index(args).is_none() {
                return Err(nondet(
                    format!("FCALL {} without now_ms", String::from_utf8_lossy(function)),
                    "without its first argument it reads each replica's clock",
                ));
            }
        }
        Function => {
            return match upper(args.get(1).ok_or_else(arity)?).as_str() {
                "LOAD" => {
                    let code = args.last().filter(|_| args.len() >= 3).ok_or_else(arity)?;
                    if code.as_slice() != library() {
                        return Err(nondet(
                            "FUNCTION LOAD of a library other than wclab's own",
                            "only the wclab library this sidecar was built with is vetted",
                        ));
                    }
                    Ok(Kind::Write)
                }
                "DELETE" | "FLUSH" => Ok(Kind::Write),
                "LIST" | "DUMP" | "STATS" => Ok(Kind::Read),
                "RESTORE" => Err(nondet(
                    "FUNCTION RESTORE",
                    "it would load code that was not vetted",
                )),
                sub => Err(unsupported(
                    format!("FUNCTION {sub}"),
                    "not needed by wclab",
                )),
            };
        }
        Config => {
            let sub = upper(args.get(1).ok_or_else(arity)?);
            if sub != "GET" {
                return Err(unsupported(
                    format!("CONFIG {sub}"),
                    "every replica's Redis is configured by its sidecar",
                ));
            }
        }
        _ => {}
    }
    Ok(kind)
}

/// Refuses approximate trimming (a `~` at `at`): where it cuts depends on
/// how a replica's stream is laid out in memory, not only on its contents.
fn approximate(name: Name, args: &[Vec<u8>], at: Option<usize>) -> Result<(), Refusal> {
    match at.and_then(|i| args.get(i)) {
        Some(m) if m.as_slice() == b"~" => Err(nondet(
            format!("{} with ~", name.as_str()),
            "approximate trimming cuts where each replica's memory layout allows; use =",
        )),
        _ => Ok(()),
    }
}

/// The position of the entry ID in an XADD, and of its trim strategy's
/// `=`/`~` marker if it trims.
fn xadd_id(args: &[Vec<u8>]) -> Option<(usize, Option<usize>)> {
    let mut i = 2; // XADD key ...
    let mut trim = None;
    loop {
        let a = args.get(i)?;
        match upper(a).as_str() {
            "NOMKSTREAM" => i += 1,
            "MAXLEN" | "MINID" => {
                i += 1;
                trim = Some(i);
                if matches!(args.get(i).map(|a| a.as_slice()), Some(b"=" | b"~")) {
                    i += 1;
                }
                i += 1; // threshold
                if args.get(i).map(|a| upper(a)).as_deref() == Some("LIMIT") {
                    i += 2;
                }
            }
            _ => return Some((i, trim)),
        }
    }
}

/// If `args` is an FCALL of one of wclab's functions whose `now_ms`
/// argument (ARGV\[1\]) is empty, fills it with `now_ms` and returns true.
/// This is how the leader's clock becomes part of the log entry, so that
/// every replica applies the same time.
pub fn fill_now(args: &mut [Vec<u8>], now_ms: u64) -> bool {
    match now_index(args) {
        Some(i) if args[i].is_empty() => {
            args[i] = now_ms.to_string().into_bytes();
            true
        }
        _ => false,
    }
}

/// The `now_ms` given to a wclab function in a replicated command, if any.
pub fn now_of(args: &[Vec<u8>]) -> Option<u64> {
    let i = now_index(args)?;
    std::str::from_utf8(&args[i]).ok()?.parse().ok()
}

fn now_index(args: &[Vec<u8>]) -> Option<usize> {
    if upper(args.first()?) != "FCALL" || !args.get(1)?.starts_with(FUNCTION_PREFIX) {
        return None;
    }
    let numkeys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
    let i = 3usize.checked_add(numkeys)?;
    (i < args.len()).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Vec<Vec<u8>> {
        s.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    fn kind(s: &str) -> Result<Kind, Refusal> {
        Command::parse(a(s)).map(|c| c.kind)
    }

    fn refused(s: &str) -> bool {
        kind(s).is_err()
    }

    #[test]
    fn writes_reads_and_refusals() {
        assert_eq!(kind("FCALL wclab_commit 1 k now"), Ok(Kind::Write));
        assert_eq!(kind("hgetall k"), Ok(Kind::Read));
        assert_eq!(kind("FUNCTION LIST"), Ok(Kind::Read));
        assert_eq!(kind("FUNCTION DELETE wclab"), Ok(Kind::Write));
        assert_eq!(kind("XADD s 1-1 f v"), Ok(Kind::Write));
        assert_eq!(kind("XADD s MAXLEN = 10 5-* f v"), Ok(Kind::Write));
        assert_eq!(kind("RAFT.INFO"), Ok(Kind::Admin));
        assert_eq!(kind("multi"), Ok(Kind::Transaction));
        assert_eq!(kind("CLIENT ID"), Ok(Kind::Local));
        assert!(refused("XADD s * f v"));
        assert!(refused("XADD s NOMKSTREAM MAXLEN 5 LIMIT 2 * f v"));
        assert!(refused("XADD s MAXLEN ~ 10 5-* f v"));
        assert!(refused("XTRIM s MINID ~ 5-0"));
        assert!(refused("XREADGROUP GROUP g c BLOCK 0 STREAMS s >"));
        assert!(refused("XAUTOCLAIM s g c 10 0"));
        assert_eq!(kind("XCLAIM s g c 0 1-1 TIME 5"), Ok(Kind::Write));
        assert!(refused("XCLAIM s g c 100 1-1"));
        assert!(refused("XCLAIM s g c 0 1-1 2-2 IDLE 5"));
        assert!(refused("NOSUCH"));
        assert!(refused("CONFIG SET save x"));
        assert_eq!(Command::parse(Vec::new()), Err(Refusal::Empty));
    }

    #[test]
    fn options_are_options_only_where_the_grammar_puts_them() {
        assert_eq!(kind("SET px v"), Ok(Kind::Write));
        assert_eq!(kind("SET k EX"), Ok(Kind::Write));
        assert_eq!(kind("SET ex px NX GET"), Ok(Kind::Write));
        assert!(refused("SET k v PX 100"));
        assert!(refused("SET k v nx ex 1"));
        assert!(refused("SET k v KEEPTTL"));
        assert!(refused("SET k v PXAT 1"));
        // A consumer, a key or a stream named like an option.
        assert_eq!(
            kind("XREADGROUP GROUP block BLOCK COUNT 1 STREAMS block >"),
            Ok(Kind::Write)
        );
        assert_eq!(kind("XREAD COUNT 2 STREAMS block 0"), Ok(Kind::Read));
        assert_eq!(kind("XCLAIM idle g idle 0 1-1 JUSTID"), Ok(Kind::Write));
        assert_eq!(kind("XADD maxlen 1-1 f v"), Ok(Kind::Write));
    }

    #[test]
    fn scripts_and_foreign_code_are_refused() {
        for s in [
            "EVAL x 0",
            "EVALSHA abc 0",
            "EVAL_RO x 0",
            "EVALSHA_RO abc 0",
            "SCRIPT LOAD x",
            "SCRIPT FLUSH",
            "FCALL other 0 now",
            "FCALL wclab_commit 0",
            "FCALL wclab_commit 2 a b",
            "FCALL wclab_commit x",
            "FUNCTION RESTORE payload",
            "FUNCTION LOAD #!lua",
            "FUNCTION LOAD REPLACE #!lua",
        ] {
            assert!(refused(s), "{s}");
        }
        let mut load = a("FUNCTION LOAD REPLACE");
        load.push(library().to_vec());
        assert_eq!(Command::parse(load).map(|c| c.kind), Ok(Kind::Write));
        let mut load = a("FUNCTION LOAD");
        load.push(library().to_vec());
        assert_eq!(Command::parse(load).map(|c| c.kind), Ok(Kind::Write));
    }

    #[test]
    fn refusals_say_why_with_an_error_code() {
        let e = Command::parse(a("EVAL x 0")).unwrap_err().to_string();
        assert!(e.starts_with("ERR wclab-raft: EVAL refused"), "{e}");
        let e = Command::parse(a("SET k v PX 5")).unwrap_err().to_string();
        assert!(e.contains("SET with PX") && e.contains("clock"), "{e}");
        let e = Command::parse(a("set")).unwrap_err().to_string();
        assert_eq!(e, "ERR wrong number of arguments for 'set' command");
    }

    #[test]
    fn the_leader_fills_an_empty_now_of_wclab_functions_only() {
        let mut args = a("FCALL wclab_claim 3 t d j _ workers c");
        args[6] = Vec::new();
        assert!(fill_now(&mut args, 1234));
        assert_eq!(now_of(&args), Some(1234));
        assert!(!fill_now(&mut args, 99), "already filled");
        let mut other = a("FCALL other 0 _");
        other[3] = Vec::new();
        assert!(!fill_now(&mut other, 5));
        let mut huge = a("FCALL wclab_x 18446744073709551615 _");
        assert!(!fill_now(&mut huge, 5));
    }
}
