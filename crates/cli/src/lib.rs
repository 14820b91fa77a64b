//! The `wclab` command line: the edge where errors become messages and
//! exit statuses.
//!
//! # Layout
//!
//! * [`cli`]: the clap definitions (the `--help` text lives there).
//! * [`commands`]: one module per subcommand.
//! * [`inputs`]: turning PATH arguments (files, directories, globs) into
//!   tasks and input roots.
//! * [`supervisor`]: keeps N `wclab worker` processes alive.
//! * [`backend`]: the Redis of `run` and `stream`: a private one with a user
//!   per role (and TLS), or the user's.
//! * [`chaos`]: the labs' faults (worker and Redis kills, checkpoints).
//! * [`report`]: top words, summary, `--json`, `--output`.
//! * [`progress`]: waiting for a job with a progress bar.

pub mod backend;
pub mod chaos;
pub mod cli;
pub mod commands;
pub mod connect;
pub mod inputs;
pub mod logging;
pub mod progress;
pub mod report;
pub mod supervisor;

/// Environment variable that carries the Redis URL (with its password) to
/// workers, so that the password never shows on a command line.
pub const REDIS_URL_ENV: &str = "WCLAB_REDIS_URL";

/// Environment variable for `--tls` (any of 1, true, yes).
pub const TLS_ENV: &str = "WCLAB_TLS";

/// Environment variable for `--tls-ca`: the CA file a TLS client trusts.
pub const TLS_CA_ENV: &str = "WCLAB_TLS_CA";

/// Environment variable for `--worker-redis`: the URL given to workers.
pub const WORKER_REDIS_URL_ENV: &str = "WCLAB_WORKER_REDIS_URL";
