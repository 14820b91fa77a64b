use crate::CoordError;
use std::fmt;

/// A Redis server to talk to: a `redis://[:password@]host:port[/db]` URL.
///
/// The password never appears in `Display` or `Debug` output, so that a
/// target can be logged and put into error messages safely.
#[derive(Clone)]
pub struct RedisTarget(std::sync::Arc<Inner>);

struct Inner {
    url: String,
    info: redis::ConnectionInfo,
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
        let info = url.into_connection_info().map_err(|e| bad(e.to_string()))?;
        Ok(RedisTarget(std::sync::Arc::new(Inner {
            url: url.to_owned(),
            info,
        })))
    }

    /// The URL with its password, for handing to a child process through
    /// its environment (never its command line).
    pub fn secret_url(&self) -> &str {
        &self.0.url
    }

    /// Connection parameters for the redis crate.
    pub fn connection_info(&self) -> &redis::ConnectionInfo {
        &self.0.info
    }

    /// `host:port` of the server.
    pub fn address(&self) -> String {
        self.0.info.addr().to_string()
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

/// Replaces the password of a URL by `***`.
pub(crate) fn mask(url: &str) -> String {
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
    fn bad_urls_are_explained_without_the_password() {
        let e = RedisTarget::parse("http://:pw@host:1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("redis://"), "{e}");
        assert!(!e.contains("pw@"), "{e}");
        assert!(RedisTarget::parse("redis://:pw@host:notaport").is_err());
    }
}
