//! Logs go to stderr through `tracing`; `WCLAB_LOG` (or `RUST_LOG`) sets
//! the filter, e.g. `WCLAB_LOG=debug` or `WCLAB_LOG=wclab_worker=debug`.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber; `default` applies when no variable is set.
pub fn init(default: &str) {
    let filter = std::env::var("WCLAB_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .map(EnvFilter::new)
        .unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for people; plain text for log files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
