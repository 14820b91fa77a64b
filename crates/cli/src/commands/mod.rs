//! One module per subcommand.

mod acl;
mod gen;
mod plot;
mod raft;
mod run;
mod stream;
mod submit;
mod tls_certs;
mod top;
mod worker;

use crate::cli::{Cli, Command};
use anyhow::Result;
use std::process::ExitCode;

// The subcommands' way to Redis (`super::connect_with` and the like).
pub(crate) use crate::connect::{connect_with, target, warn_if_password_on_command_line, with_tls};

/// How a command ended, when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was done.
    Success,
    /// The job finished but some files could not be counted.
    SomeFailed,
    /// Interrupted by the user.
    Interrupted,
}

impl Outcome {
    /// The process exit status.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::SomeFailed => ExitCode::from(1),
            Outcome::Interrupted => ExitCode::from(130),
        }
    }
}

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> Result<Outcome> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Worker(args) => worker::worker(args).await,
            Command::Submit(args) => submit::submit(args).await,
            Command::Top(args) => top::top(args).await,
            Command::Gen(what) => gen::gen(what),
            Command::Stream(args) => stream::stream(args).await,
            Command::Plot(args) => plot::plot(args),
            Command::Raft(what) => raft::raft(what).await,
            Command::Acl(args) => acl::acl(args).await,
            Command::TlsCerts(args) => tls_certs::tls_certs(args),
        }
    });
    // Do not wait for blocking threads still busy (a worker told to stop
    // while counting a big file): what they would produce is not wanted.
    rt.shutdown_background();
    outcome
}

/// Resolves when the process is asked to stop: SIGINT (Ctrl-C), SIGTERM
/// (`kill`, systemd) or SIGHUP (the terminal went away).
pub(crate) async fn stop_requested() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}
