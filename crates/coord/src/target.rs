use crate::CoordError;
use std::fmt;

/// A Redis server to talk to: a `redis://[:password@]host:port[/db]` URL.
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
}

impl RedisTarget {
    /// Parses and checks a URL (nothing is contacted yet).
    pub fn parse(url: &str) -> Result<Self, CoordError> {
        use redis::IntoConnectionInfo;
        let bad = |reason: String| CoordError::BadUrl {
            url: mask(url),
            reason,
        };
        if !url.starts_with("redis://") {
            return Err(bad("it must start with redis://".into()));
        }
        let mut parts = url.split(',');
        let first = parts.next().unwrap_or_default();
        // `redis://user:pw@` of the first endpoint, shared by bare host:port ones.
        let prefix = match first.rfind('@') {
            Some(at) => &first[..=at],
            None => "redis://",
        };
        let mut infos = vec![first
            .into_connection_info()
            .map_err(|e| bad(e.to_string()))?];
        for p in parts {
            let p = p.trim();
            let full = if p.starts_with("redis://") {
                p.to_owned()
            } else {
                format!("{prefix}{p}")
            };
            infos.push(
                full.into_connection_info()
                    .map_err(|e| bad(e.to_string()))?,
            );
        }
        Ok(RedisTarget(std::sync::Arc::new(Inner {
            url: url.to_owned(),
            infos,
        })))
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
    fn bad_urls_are_explained_without_the_password() {
        let e = RedisTarget::parse("http://:pw@host:1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("redis://"), "{e}");
        assert!(!e.contains("pw@"), "{e}");
        assert!(RedisTarget::parse("redis://:pw@host:notaport").is_err());
    }
}
