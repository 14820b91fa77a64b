use crate::CoordError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A Redis server to talk to: a `redis://[user:password@]host:port[/db]`
/// URL, or `rediss://` for TLS.
///
/// With TLS, the server's certificate is checked against the CA given with
/// [`RedisTarget::with_ca`], else against the system's roots; there is no
/// way to skip the check.
///
/// Or several endpoints of one replicated store (the nodes of a Raft
/// cluster, lab 4b): `redis://[:password@]host:port,host:port,...`, each
/// element after the first either a full `redis://` URL or a `host:port`
/// that shares the first one's password. Clients rotate to the next
/// endpoint when one fails.
///
/// The password never appears in `Display` or `Debug` output, so that a
/// target can be logged and put into error messages safely.
#[derive(Clone)]
pub struct RedisTarget(std::sync::Arc<Inner>);

struct Inner {
    url: String,
    infos: Vec<redis::ConnectionInfo>,
    ca: Option<Ca>,
}

/// The certificate authority a TLS client trusts.
struct Ca {
    path: PathBuf,
    pem: Arc<Vec<u8>>,
}

impl RedisTarget {
    /// Parses and checks a URL (nothing is contacted yet).
    pub fn parse(url: &str) -> Result<Self, CoordError> {
        use redis::IntoConnectionInfo;
        let bad = |reason: String| CoordError::BadUrl {
            url: mask(url),
            reason,
        };
        if !url.starts_with("redis://") && !url.starts_with("rediss://") {
            return Err(bad("it must start with redis:// (rediss:// for TLS)".into()));
        }
        let mut parts = url.split(',');
        let first = parts.next().unwrap_or_default();
        // `redis://user:pw@` of the first endpoint, shared by bare host:port ones.
        let prefix = match first.rfind('@') {
            Some(at) => &first[..=at],
            None => &first[..first.find("://").map_or(0, |i| i + 3)],
        };
        let mut infos = vec![first
            .into_connection_info()
            .map_err(|e| bad(e.to_string()))?];
        for p in parts {
            let p = p.trim();
            let full = if p.starts_with("redis://") || p.starts_with("rediss://") {
                p.to_owned()
            } else {
                format!("{prefix}{p}")
            };
            infos.push(
                full.into_connection_info()
                    .map_err(|e| bad(e.to_string()))?,
            );
        }
        let insecure = (infos.iter()).any(|i| {
            matches!(
                i.addr(),
                redis::ConnectionAddr::TcpTls { insecure: true, .. }
            )
        });
        if insecure {
            return Err(bad(
                "#insecure would skip the check of the server's certificate, which wclab always makes: give the CA with --tls-ca instead".into(),
            ));
        }
        Ok(RedisTarget(Arc::new(Inner {
            url: url.to_owned(),
            infos,
            ca: None,
        })))
    }

    /// Trusts the CA certificates of the PEM file `path` (read and checked
    /// now), and no others, for the `rediss://` endpoints.
    pub fn with_ca(self, path: &Path) -> Result<Self, CoordError> {
        let bad = |reason: String| CoordError::BadCa {
            path: path.to_owned(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let found = {
            use rustls::pki_types::{pem::PemObject, CertificateDer};
            let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
            certs.map_err(|e| bad(e.to_string()))?.len()
        };
        if found == 0 {
            return Err(bad(
                "no certificate in it (PEM, -----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        if !self.is_tls() {
            return Err(CoordError::BadUrl {
                url: self.to_string(),
                reason: format!(
                    "a CA ({}) is given, but the URL is not a TLS one",
                    path.display()
                ),
            });
        }
        Ok(RedisTarget(Arc::new(Inner {
            url: self.0.url.clone(),
            infos: self.0.infos.clone(),
            ca: Some(Ca {
                path: path.to_owned(),
                pem: Arc::new(pem),
            }),
        })))
    }

    /// Whether the endpoints speak TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        (self.0.infos.iter()).any(|i| matches!(i.addr(), redis::ConnectionAddr::TcpTls { .. }))
    }

    /// The CA file trusted, if one was given.
    pub fn ca_path(&self) -> Option<&Path> {
        self.0.ca.as_ref().map(|c| c.path.as_path())
    }

    /// The user in the URL (`default` when it names none).
    pub fn user(&self) -> &str {
        (self.0.infos[0].redis_settings().username()).unwrap_or("default")
    }

    /// A client for endpoint `i`, trusting the CA if one was given.
    pub(crate) fn client(&self, i: usize) -> redis::RedisResult<redis::Client> {
        let info = self.0.infos[i].clone();
        match (&self.0.ca, info.addr()) {
            (Some(ca), redis::ConnectionAddr::TcpTls { .. }) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.pem.as_ref().clone()),
                },
            ),
            _ => redis::Client::open(info),
        }
    }

    /// Every endpoint, in the order given (one for a plain Redis).
    pub fn endpoints(&self) -> &[redis::ConnectionInfo] {
        &self.0.infos
    }

    /// True for several endpoints of one replicated store.
    pub fn is_cluster(&self) -> bool {
        self.0.infos.len() > 1
    }

    /// The URL with its password, for handing to a child process through
    /// its environment (never its command line).
    pub fn secret_url(&self) -> &str {
        &self.0.url
    }

    /// Connection parameters for the redis crate (of the first endpoint).
    pub fn connection_info(&self) -> &redis::ConnectionInfo {
        &self.0.infos[0]
    }

    /// `host:port` of the server (of every endpoint, comma-separated).
    pub fn address(&self) -> String {
        let addrs: Vec<String> = self.0.infos.iter().map(|i| i.addr().to_string()).collect();
        addrs.join(",")
    }
}

impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask(&self.0.url))
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisTarget({self})")
    }
}

/// Replaces the password of a URL (or of each URL in a list) by `***`.
pub(crate) fn mask(url: &str) -> String {
    let parts: Vec<String> = url.split(',').map(mask_one).collect();
    parts.join(",")
}

fn mask_one(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    match rest.rfind('@') {
        Some(at) => {
            let (userinfo, host) = rest.split_at(at);
            let user = userinfo.split(':').next().unwrap_or("");
            let scheme = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            format!("{scheme}{user}:***{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_displayed() {
        let t = RedisTarget::parse("redis://:s3cret@127.0.0.1:6379/0").unwrap();
        assert_eq!(t.to_string(), "redis://:***@127.0.0.1:6379/0");
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(t.secret_url(), "redis://:s3cret@127.0.0.1:6379/0");
    }

    #[test]
    fn a_url_without_password_is_shown_as_is() {
        let t = RedisTarget::parse("redis://localhost:6380").unwrap();
        assert_eq!(t.to_string(), "redis://localhost:6380");
        assert_eq!(t.address(), "localhost:6380");
    }

    #[test]
    fn a_cluster_lists_endpoints_that_share_the_password() {
        let t =
            RedisTarget::parse("redis://:pw@127.0.0.1:7001,127.0.0.1:7002,redis://h:7003").unwrap();
        assert!(t.is_cluster());
        assert_eq!(t.endpoints().len(), 3);
        assert_eq!(t.address(), "127.0.0.1:7001,127.0.0.1:7002,h:7003");
        assert_eq!(
            t.to_string(),
            "redis://:***@127.0.0.1:7001,127.0.0.1:7002,redis://h:7003"
        );
        let plain = RedisTarget::parse("redis://127.0.0.1:1,127.0.0.1:2").unwrap();
        assert_eq!(plain.endpoints().len(), 2);
    }

    #[test]
    fn tls_urls_are_parsed_and_share_their_scheme() {
        let t = RedisTarget::parse("rediss://worker:pw@127.0.0.1:7001,127.0.0.1:7002").unwrap();
        assert!(t.is_tls());
        assert_eq!(t.user(), "worker");
        assert!(matches!(
            t.endpoints()[1].addr(),
            redis::ConnectionAddr::TcpTls { .. }
        ));
        assert_eq!(
            t.to_string(),
            "rediss://worker:***@127.0.0.1:7001,127.0.0.1:7002"
        );
        let plain = RedisTarget::parse("redis://127.0.0.1:1,127.0.0.1:2").unwrap();
        assert!(!plain.is_tls());
        assert_eq!(plain.user(), "default");
        // redis-rs's #insecure (no certificate check) is refused.
        let e = RedisTarget::parse("rediss://127.0.0.1:1/#insecure").unwrap_err();
        assert!(e.to_string().contains("--tls-ca"), "{e}");
    }

    #[test]
    fn a_ca_must_hold_a_certificate_and_go_with_a_tls_url() {
        let dir = tempfile_dir();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let t = RedisTarget::parse("rediss://127.0.0.1:1").unwrap();
        let e = t.clone().with_ca(&empty).unwrap_err().to_string();
        assert!(
            e.contains("empty.pem") && e.contains("no certificate"),
            "{e}"
        );
        let e = t.with_ca(&dir.join("missing.pem")).unwrap_err().to_string();
        assert!(e.contains("missing.pem"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("wclab-target-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn bad_urls_are_explained_without_the_password() {
        let e = RedisTarget::parse("http://:pw@host:1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("redis://"), "{e}");
        assert!(!e.contains("pw@"), "{e}");
        assert!(RedisTarget::parse("redis://:pw@host:notaport").is_err());
    }
}
