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

/// An error and its causes as one line for people: `outer: cause: cause`,
/// leaving out a cause whose text the line already holds. Errors of the
/// library crates often name their cause in their own message *and* keep
/// it as their `source()` (so that programs can inspect it); printed as a
/// plain chain, "Connection refused (os error 111)" came out three times.
pub fn one_sentence(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_sentence;

    /// Like the library's errors: its cause in its message and as source.
    #[derive(Debug)]
    struct Unreachable {
        source: std::io::Error,
    }

    impl std::fmt::Display for Unreachable {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "Redis at x is unreachable: {}. Is it running?",
                self.source
            )
        }
    }

    impl std::error::Error for Unreachable {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(111);
        let e = anyhow::Error::new(Unreachable { source: io }).context("cannot submit");
        let line = one_sentence(&e);
        assert_eq!(line.matches("os error 111").count(), 1, "{line}");
        assert!(line.starts_with("cannot submit: Redis at x"), "{line}");
    }

    #[test]
    fn causes_not_in_the_message_are_kept_in_order() {
        let e = anyhow::anyhow!("disk full").context("cannot write out.tsv");
        assert_eq!(one_sentence(&e), "cannot write out.tsv: disk full");
    }
}
