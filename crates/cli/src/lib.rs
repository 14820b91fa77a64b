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
//! * [`chaos`]: the labs' faults (worker and Redis kills, checkpoints).
//! * [`report`]: top words, summary, `--json`, `--output`.
//! * [`progress`]: waiting for a job with a progress bar.

pub mod chaos;
pub mod cli;
pub mod commands;
pub mod inputs;
pub mod logging;
pub mod progress;
pub mod report;
pub mod supervisor;

/// Environment variable that carries the Redis URL (with its password) to
/// workers, so that the password never shows on a command line.
pub const REDIS_URL_ENV: &str = "WCLAB_REDIS_URL";
