//! The Redis a job runs on: a private one, started by `run` and `stream`,
//! or the user's (`--redis`).
//!
//! A private Redis gets the ACL users of wclab's roles (in its config file,
//! so that a restart after a crash keeps them) and, with `--tls`, speaks TLS
//! only. Each process then holds its role's credentials only: this process,
//! the driver, the submitter's; the workers the worker's (through their
//! environment, with the CA file to trust). The administrator (the private
//! server's `default` user) loads the function library and does what the
//! labs do to the server itself (checkpoints, crashes, `CLIENT LIST`),
//! never the job's own traffic.
//!
//! With `--redis`, the given URL serves the driver and the labs' server
//! operations, and the workers get `--worker-redis` if given (a `worker`
//! user made by `wclab acl --apply`), else the same URL.

use crate::cli::{ServerTlsArgs, TlsArgs};
use anyhow::Result;
use std::path::PathBuf;
use wclab_coord::acl::{KeyScope, Role};
use wclab_coord::{RedisTarget, Store};
use wclab_server::{AclUser, RedisServer, ServerOptions, ServerTls};

/// The Redis of one job, and the credentials of each role on it.
pub struct Backend {
    server: Option<RedisServer>,
    /// For set-up and the labs' server operations.
    admin: RedisTarget,
    /// For submitting, waiting, reading results.
    driver: RedisTarget,
    /// Handed to the workers (with its password: environment only).
    worker_url: String,
    /// The CA file the workers trust, if TLS.
    ca: Option<PathBuf>,
}

impl Backend {
    /// Starts a private Redis with `opts` (users and TLS added here), or
    /// takes the one of `given`.
    pub async fn start(
        given: Option<&str>,
        opts: ServerOptions,
        tls: &TlsArgs,
        server_tls: &ServerTlsArgs,
    ) -> Result<Backend> {
        if let Some(url) = given {
            let worker_url = server_tls.worker_redis.as_deref().unwrap_or(url);
            let worker_url = if tls.tls {
                crate::connect::with_tls(worker_url)
            } else {
                worker_url.to_owned()
            };
            // Checked now: a worker would only fail on it later.
            crate::connect::target(&worker_url, tls)?;
            return Ok(Backend {
                server: None,
                admin: crate::connect::target(url, tls)?,
                driver: crate::connect::target(url, tls)?,
                worker_url,
                ca: tls.tls_ca.clone(),
            });
        }
        let mut opts = opts;
        opts.users = Role::ALL
            .iter()
            .map(|r| AclUser {
                name: r.name().to_owned(),
                rules: r.rules(&KeyScope::AllJobs),
            })
            .collect();
        opts.tls = match (&server_tls.tls_cert, &server_tls.tls_key, &tls.tls_ca) {
            (Some(cert), Some(key), Some(ca)) => {
                Some(ServerTls::Files(wclab_server::tls::TlsFiles {
                    ca: ca.clone(),
                    cert: cert.clone(),
                    key: key.clone(),
                }))
            }
            _ if tls.tls => Some(ServerTls::Generate),
            _ => None,
        };
        let server = tokio::task::spawn_blocking(move || RedisServer::start(opts)).await??;
        tracing::info!(port = server.port(), dir = %server.dir().display(), tls = server.tls().is_some(), "started a private redis-server");
        let ca = server.tls().map(|t| t.ca.clone());
        let with_ca = |url: String| -> Result<RedisTarget> {
            let target = RedisTarget::parse(&url)?;
            Ok(match &ca {
                Some(ca) => target.with_ca(ca)?,
                None => target,
            })
        };
        let user_url = |role: Role| {
            server
                .url_as(role.name())
                .expect("the private server has every role's user")
        };
        Ok(Backend {
            admin: with_ca(server.url())?,
            driver: with_ca(user_url(Role::Submitter))?,
            worker_url: user_url(Role::Worker),
            ca: ca.clone(),
            server: Some(server),
        })
    }

    /// The private server, if there is one.
    pub fn server_mut(&mut self) -> Option<&mut RedisServer> {
        self.server.as_mut()
    }

    /// Connects as the driver (the submitter), after the administrator has
    /// loaded the function library into a private server.
    pub async fn driver(&self) -> Result<Store> {
        if self.server.is_some() {
            // The library goes in as the administrator: the submitter may
            // not load it.
            drop(self.admin().await?);
        }
        crate::connect::connect_to(self.driver.clone()).await
    }

    /// Connects as the administrator.
    pub async fn admin(&self) -> Result<Store> {
        crate::connect::connect_to(self.admin.clone()).await
    }

    /// The environment of a worker process: its URL and CA (never on a
    /// command line), and quiet logs unless the user asked for more.
    pub fn worker_env(&self) -> Vec<(String, String)> {
        let mut env = vec![(crate::REDIS_URL_ENV.to_owned(), self.worker_url.clone())];
        if let Some(ca) = &self.ca {
            env.push((crate::TLS_CA_ENV.to_owned(), ca.display().to_string()));
        }
        if std::env::var_os("WCLAB_LOG").is_none() && std::env::var_os("RUST_LOG").is_none() {
            env.push(("WCLAB_LOG".into(), "warn".into()));
        }
        env
    }
}
