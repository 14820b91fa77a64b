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

/// A `--redis` URL with a password that did not come from the environment
/// is on this process's command line, which `ps` shows to every user.
pub(crate) fn warn_if_password_on_command_line(url: &str) {
    let from_env = std::env::var(crate::REDIS_URL_ENV).ok().as_deref() == Some(url);
    let has_password = url.split(',').any(|u| {
        u.split_once("://")
            .is_some_and(|(_, rest)| rest.contains('@'))
    });
    if !from_env && has_password {
        tracing::warn!("the Redis password is on this process's command line, visible to every user in `ps`; pass the URL in {} instead", crate::REDIS_URL_ENV);
    }
}

/// The server of `url` with the TLS options: `--tls` makes a `redis://`
/// URL a `rediss://` one, `--tls-ca` is the CA to trust.
pub(crate) fn target(url: &str, tls: &crate::cli::TlsArgs) -> Result<wclab_coord::RedisTarget> {
    let url = if tls.tls {
        with_tls(url)
    } else {
        url.to_owned()
    };
    let target = wclab_coord::RedisTarget::parse(&url)?;
    Ok(match &tls.tls_ca {
        Some(ca) => target.with_ca(ca)?,
        None => target,
    })
}

/// `url` with `redis://` replaced by `rediss://` (in each endpoint of a list).
pub(crate) fn with_tls(url: &str) -> String {
    let parts: Vec<String> = (url.split(','))
        .map(|p| match p.trim_start().strip_prefix("redis://") {
            Some(rest) => format!("rediss://{rest}"),
            None => p.to_owned(),
        })
        .collect();
    parts.join(",")
}

/// Connects for a first contact, with the TLS options: fail fast with a
/// clear message.
pub(crate) async fn connect_with(
    url: &str,
    tls: &crate::cli::TlsArgs,
) -> Result<wclab_coord::Store> {
    connect_to(target(url, tls)?).await
}

pub(crate) async fn connect_to(target: wclab_coord::RedisTarget) -> Result<wclab_coord::Store> {
    // Fail fast, but give every endpoint of a cluster its chance.
    let first_contact = wclab_coord::RetryPolicy::FAIL_FAST
        .give_up_after
        .map(|d| d * target.endpoints().len() as u32);
    let mut store = wclab_coord::Store::connect(
        target,
        wclab_coord::RetryPolicy {
            give_up_after: first_contact,
        },
    )
    .await?;
    // Once connected, ride out short outages (a Redis restart) quietly.
    store.set_policy(wclab_coord::RetryPolicy::for_duration(
        std::time::Duration::from_secs(120),
    ));
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_turns_every_endpoint_to_rediss() {
        assert_eq!(with_tls("redis://:pw@h:1"), "rediss://:pw@h:1");
        assert_eq!(with_tls("rediss://h:1"), "rediss://h:1");
        assert_eq!(
            with_tls("redis://:pw@a:1,b:2,redis://c:3"),
            "rediss://:pw@a:1,b:2,rediss://c:3"
        );
    }
}
