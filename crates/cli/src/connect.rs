//! Connecting to Redis as the command line asks: a `--redis` URL (or a
//! list of a Raft cluster's endpoints) with the TLS options, failing fast
//! at first contact with a clear message, riding out short outages after.
//! Shared by the subcommands and by [`crate::backend`], below both.

use anyhow::Result;

/// A `--redis` URL with a password that did not come from the environment
/// is on this process's command line, which `ps` shows to every user.
pub fn warn_if_password_on_command_line(url: &str) {
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
pub fn target(url: &str, tls: &crate::cli::TlsArgs) -> Result<wclab_coord::RedisTarget> {
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
pub fn with_tls(url: &str) -> String {
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
pub async fn connect_with(url: &str, tls: &crate::cli::TlsArgs) -> Result<wclab_coord::Store> {
    connect_to(target(url, tls)?).await
}

/// Connects to `target`: fail fast at first contact (every endpoint of a
/// cluster gets its chance), then ride out short outages quietly.
pub async fn connect_to(target: wclab_coord::RedisTarget) -> Result<wclab_coord::Store> {
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
