//! Test support for wclab.
//!
//! * [`oracle`]: an independent, deliberately simple word counter — split on
//!   the six ASCII whitespace bytes, a plain `HashMap`. Every exactness test
//!   compares against it, never against the kernel it checks.
//! * [`corpus`]: corpora with the cases that break word counters.
//! * [`procs`]: finding and killing real processes (`kill -9`).
//! * [`ports`]: ports for servers that are killed and restarted on them.
//! * [`redis`]: a real `redis-server` per test (re-exported from
//!   `wclab-server`) and a tiny synchronous RESP client for checks.

pub mod corpus;
pub mod oracle;
pub mod ports;
pub mod procs;
pub mod redis;

pub use wclab_server::{RedisServer, ServerOptions};
