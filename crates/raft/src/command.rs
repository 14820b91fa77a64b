//! Which commands go through the Raft log, which are linearizable reads,
//! which the sidecar answers itself, and which are refused because a
//! replica could not apply them deterministically.

/// How the sidecar handles a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Changes the dataset: appended to the log, applied on every replica,
    /// answered with the leader's result after the commit.
    Write,
    /// Reads the dataset: answered by the leader after a read-index check.
    Read,
    /// Connection handshake and the like: answered by the sidecar.
    Local,
    /// Cluster administration (`RAFT.*`).
    Admin,
    /// Refused, with the reason: not deterministic, or not supported.
    Reject(String),
}

fn upper(a: &[u8]) -> String {
    String::from_utf8_lossy(a).to_ascii_uppercase()
}

/// Classifies a command given as its arguments.
pub fn classify(args: &[Vec<u8>]) -> Kind {
    let Some(first) = args.first() else {
        return Kind::Reject("ERR empty command".into());
    };
    let name = upper(first);
    let sub = args.get(1).map(|a| upper(a)).unwrap_or_default();
    let has = |word: &str| args.iter().skip(1).any(|a| upper(a) == word);
    let nondet = |why: &str| {
        Kind::Reject(format!(
            "ERR wclab-raft: {name} {why}: every replica must apply the same log to the same result"
        ))
    };
    match name.as_str() {
        "PING" | "ECHO" | "AUTH" | "HELLO" | "CLIENT" | "SELECT" | "COMMAND" | "QUIT"
        | "RESET" | "READONLY" | "READWRITE" => Kind::Local,
        n if n.starts_with("RAFT.") => Kind::Admin,
        "XADD" => match xadd_id(args) {
            Some(id) if id == b"*" => nondet("with ID * (the ID would be each replica's clock; give an explicit ID)"),
            Some(_) => Kind::Write,
            None => Kind::Reject("ERR wrong number of arguments for 'xadd' command".into()),
        },
        "XREAD" | "XREADGROUP" if has("BLOCK") => nondet("with BLOCK"),
        "XREADGROUP" => Kind::Write,
        "XAUTOCLAIM" => nondet("(its idle times come from each replica's clock; use wclab_claim with the leader's time)"),
        "XCLAIM" if args.get(4).map(|a| a.as_slice()) != Some(b"0") || has("IDLE") => {
            nondet("with a minimum idle time or IDLE (each replica's clock)")
        }
        "SET" if has("EX") || has("PX") || has("EXAT") || has("PXAT") => nondet("with an expiry"),
        "EXPIRE" | "PEXPIRE" | "EXPIREAT" | "PEXPIREAT" | "SETEX" | "PSETEX" | "GETEX" => {
            nondet("(expiries run on each replica's clock)")
        }
        "SPOP" | "SRANDMEMBER" | "RANDOMKEY" => nondet("(random)"),
        "BGSAVE" | "SAVE" | "BGREWRITEAOF" | "SHUTDOWN" | "DEBUG" | "REPLICAOF" | "SLAVEOF"
        | "MULTI" | "EXEC" | "WATCH" | "SUBSCRIBE" | "PSUBSCRIBE" | "MONITOR" | "WAIT" => {
            Kind::Reject(format!(
                "ERR wclab-raft: {name} is not supported on a Raft cluster (durability comes from the replicated log)"
            ))
        }
        "FUNCTION" => match sub.as_str() {
            "LOAD" | "DELETE" | "FLUSH" | "RESTORE" => Kind::Write,
            "LIST" | "DUMP" | "STATS" => Kind::Read,
            _ => Kind::Reject(format!("ERR wclab-raft: FUNCTION {sub} is not supported")),
        },
        "CONFIG" if sub == "GET" => Kind::Read,
        "SET" | "DEL" | "UNLINK" | "HSET" | "HSETNX" | "HMSET" | "HDEL" | "HINCRBY"
        | "HINCRBYFLOAT" | "INCR" | "INCRBY" | "DECR" | "DECRBY" | "APPEND" | "MSET" | "LPUSH"
        | "RPUSH" | "LPOP" | "RPOP" | "SADD" | "SREM" | "ZADD" | "ZINCRBY" | "ZREM"
        | "ZREMRANGEBYSCORE" | "ZREMRANGEBYRANK" | "XACK" | "XDEL" | "XTRIM" | "XGROUP"
        | "XCLAIM" | "XSETID" | "FLUSHALL" | "FLUSHDB" | "FCALL" | "EVAL" | "EVALSHA"
        | "RENAME" | "COPY" | "PERSIST" => Kind::Write,
        "GET" | "MGET" | "EXISTS" | "TYPE" | "KEYS" | "SCAN" | "DBSIZE" | "STRLEN" | "HGET"
        | "HMGET" | "HGETALL" | "HLEN" | "HEXISTS" | "HKEYS" | "HVALS" | "HSCAN" | "LRANGE"
        | "LLEN" | "SMEMBERS" | "SCARD" | "SISMEMBER" | "ZRANGE" | "ZREVRANGE"
        | "ZRANGEBYSCORE" | "ZREVRANGEBYSCORE" | "ZSCORE" | "ZMSCORE" | "ZCARD" | "ZCOUNT"
        | "ZRANK" | "ZREVRANK" | "ZSCAN" | "XLEN" | "XRANGE" | "XREVRANGE" | "XPENDING"
        | "XINFO" | "XREAD" | "FCALL_RO" | "EVAL_RO" | "INFO" | "MEMORY" | "DUMP" | "TIME"
        | "TTL" | "PTTL" | "LASTSAVE" => Kind::Read,
        _ => Kind::Reject(format!(
            "ERR wclab-raft: unknown or unsupported command '{}'",
            String::from_utf8_lossy(first)
        )),
    }
}

/// The entry ID argument of an XADD.
fn xadd_id(args: &[Vec<u8>]) -> Option<&[u8]> {
    let mut i = 2; // XADD key ...
    loop {
        let a = args.get(i)?;
        match upper(a).as_str() {
            "NOMKSTREAM" => i += 1,
            "MAXLEN" | "MINID" => {
                i += 1;
                if matches!(args.get(i).map(|a| a.as_slice()), Some(b"=" | b"~")) {
                    i += 1;
                }
                i += 1; // threshold
                if args.get(i).map(|a| upper(a)) == Some("LIMIT".into()) {
                    i += 2;
                }
            }
            _ => return Some(a),
        }
    }
}

/// If `args` is an FCALL of one of wclab's functions (`wclab_*`) whose
/// `now_ms` argument (ARGV\[1\]) is empty, fills it with `now_ms` and returns
/// true. This is how the leader's clock becomes part of the log entry, so
/// that every replica applies the same time.
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
    if upper(args.first()?) != "FCALL" || !args.get(1)?.starts_with(b"wclab_") {
        return None;
    }
    let numkeys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
    let i = 3 + numkeys;
    (i < args.len()).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Vec<Vec<u8>> {
        s.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn writes_reads_and_refusals() {
        assert_eq!(classify(&a("FCALL wclab_commit 1 k")), Kind::Write);
        assert_eq!(classify(&a("hgetall k")), Kind::Read);
        assert_eq!(classify(&a("FUNCTION LOAD x")), Kind::Write);
        assert_eq!(classify(&a("FUNCTION LIST")), Kind::Read);
        assert_eq!(classify(&a("XADD s 1-1 f v")), Kind::Write);
        assert_eq!(classify(&a("XADD s MAXLEN ~ 10 5-* f v")), Kind::Write);
        assert!(matches!(classify(&a("XADD s * f v")), Kind::Reject(_)));
        assert!(matches!(
            classify(&a("XADD s NOMKSTREAM MAXLEN 5 LIMIT 2 * f v")),
            Kind::Reject(_)
        ));
        assert!(matches!(
            classify(&a("XREADGROUP GROUP g c BLOCK 0 STREAMS s >")),
            Kind::Reject(_)
        ));
        assert!(matches!(
            classify(&a("XAUTOCLAIM s g c 10 0")),
            Kind::Reject(_)
        ));
        assert_eq!(classify(&a("XCLAIM s g c 0 1-1 TIME 5")), Kind::Write);
        assert!(matches!(
            classify(&a("XCLAIM s g c 100 1-1")),
            Kind::Reject(_)
        ));
        assert_eq!(classify(&a("RAFT.INFO")), Kind::Admin);
        assert!(matches!(classify(&a("NOSUCH")), Kind::Reject(_)));
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
    }
}
