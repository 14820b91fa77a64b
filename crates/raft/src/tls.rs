//! TLS on a node's port: for its clients, and mutual TLS between peers.
//!
//! A node started with a certificate, its key and the cluster's CA
//! (`wclab raft node --tls-cert --tls-key --tls-ca`; `wclab tls-certs
//! --raft-nodes` makes them) speaks TLS only. Every node's certificate
//! names its Raft ID (`node-ID.raft.wclab`, see
//! [`wclab_server::tls::raft_node_name`]), and both ends of a peer
//! connection check it:
//!
//! * the node that dials checks that the server's certificate names the ID
//!   it means to reach (a member's address answered by another node fails
//!   the handshake, as `-WRONGNODE` does in plain text);
//! * the node that accepts asks for a client certificate (optional, since
//!   clients need none) and records which node IDs it names
//!   ([`Identity`]); a peer RPC (`RAFT.RPC`) is served only on a connection
//!   whose certificate names the ID the RPC claims to come from, and a
//!   proxied command (`RAFT.PROXIED`) only on one from a node. A client
//!   certificate, or none, or the cluster password, opens neither.
//!
//! Everything is checked against the one CA given; the system's roots are
//! not trusted. Handshakes that fail are logged with the remote address.

/// A Raft node's id ([`crate::types::NodeId`], the same type): named here
/// so that this module, which `resp` dials peers through, does not import
/// the Raft types, which import `resp` (an import circle).
type NodeId = u64;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use wclab_server::tls::{raft_node_id, raft_node_name};

/// How long a handshake may take before the connection is dropped (a
/// client that opens connections and says nothing holds no task for long).
pub const HANDSHAKE: Duration = Duration::from_secs(10);

/// The files of a node that speaks TLS.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    /// The node's certificate (PEM), naming its Raft ID.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The cluster's CA (PEM): the only one trusted, for peers and clients.
    pub ca: PathBuf,
}

/// Why a node's TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read, or holds nothing usable.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The certificate does not name this node.
    #[error("{} does not name node {id} (it must hold the DNS name {}; make one with `wclab tls-certs --raft-nodes`); it names {names:?}", path.display(), raft_node_name(*id))]
    NotThisNode {
        /// The certificate.
        path: PathBuf,
        /// This node's ID.
        id: NodeId,
        /// The DNS names it holds.
        names: Vec<String>,
    },
    /// rustls refused the combination.
    #[error("cannot use the TLS files: {0}")]
    Config(String),
}

/// Who is at the other end of an accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A plain-text connection (the node does not speak TLS).
    Plain,
    /// TLS, with no client certificate: a client.
    Anonymous,
    /// TLS, with a certificate from the cluster's CA naming these nodes
    /// (none: a client's certificate).
    Certified(Vec<NodeId>),
}

impl Identity {
    /// Whether the certificate names node `id`.
    pub fn is_node(&self, id: NodeId) -> bool {
        matches!(self, Identity::Certified(ids) if ids.contains(&id))
    }

    /// Whether the certificate names any node.
    pub fn is_peer(&self) -> bool {
        matches!(self, Identity::Certified(ids) if !ids.is_empty())
    }
}

/// Refusals of peer commands on this node: counted (`RAFT.INFO`'s
/// `peer_refusals`) and logged, at most [`Refusals::PER_SECOND`] lines a
/// second, so that a client sending refused commands in a loop cannot fill
/// the disk with the log; the next line logged says how many were left out.
#[derive(Debug, Default)]
pub struct Refusals {
    total: std::sync::atomic::AtomicU64,
    /// (second of the window, lines logged in it, refusals not logged).
    window: std::sync::Mutex<(u64, u32, u64)>,
}

impl Refusals {
    /// Lines logged per second at most.
    pub const PER_SECOND: u32 = 10;

    /// Counts one refusal; `Some(n)` when it is to be logged, `n` being
    /// how many before it were not.
    pub fn count(&self) -> Option<u64> {
        self.total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if w.0 != second {
            w.0 = second;
            w.1 = 0;
        }
        if w.1 >= Self::PER_SECOND {
            w.2 += 1;
            return None;
        }
        w.1 += 1;
        Some(std::mem::take(&mut w.2))
    }

    /// Refusals so far.
    pub fn total(&self) -> u64 {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A node's TLS: what it presents, and what it trusts.
pub struct NodeTls {
    acceptor: tokio_rustls::TlsAcceptor,
    /// For peers: presents this node's certificate.
    peer: tokio_rustls::TlsConnector,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |reason: String| TlsError::File {
        path: path.to_owned(),
        reason,
    };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(
            "no certificate in it (PEM, -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

fn roots(ca: &Path) -> Result<Arc<rustls::RootCertStore>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in read_certs(ca)? {
        roots.add(c).map_err(|e| TlsError::File {
            path: ca.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(Arc::new(roots))
}

/// The node IDs a certificate names (from its DNS names).
pub fn named_nodes(cert: &CertificateDer<'_>) -> Vec<NodeId> {
    dns_names(cert)
        .iter()
        .filter_map(|n| raft_node_id(n))
        .collect()
}

fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    match webpki::EndEntityCert::try_from(cert) {
        Ok(c) => c.valid_dns_names().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    }
}

impl NodeTls {
    /// Loads node `id`'s files, and checks that its certificate names it.
    pub fn load(paths: &TlsPaths, id: NodeId) -> Result<NodeTls, TlsError> {
        let chain = read_certs(&paths.cert)?;
        let names = dns_names(&chain[0]);
        if !names.iter().any(|n| raft_node_id(n) == Some(id)) {
            return Err(TlsError::NotThisNode {
                path: paths.cert.clone(),
                id,
                names,
            });
        }
        let key = PrivateKeyDer::from_pem_file(&paths.key).map_err(|e| TlsError::File {
            path: paths.key.clone(),
            reason: e.to_string(),
        })?;
        let roots = roots(&paths.ca)?;
        let config = |e: rustls::Error| TlsError::Config(e.to_string());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config)?;
        // No session tickets: nothing arrives on an idle connection that
        // nobody asked for, which is how a connection is known to be alive
        // before a request is sent on it (`resp::Conn::is_dead`).
        server.send_tls13_tickets = 0;
        let peer = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(config)?;
        Ok(NodeTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            peer: tokio_rustls::TlsConnector::from(Arc::new(peer)),
        })
    }

    /// The server side of a handshake, within [`HANDSHAKE`].
    pub async fn accept(
        &self,
        tcp: TcpStream,
    ) -> io::Result<(tokio_rustls::server::TlsStream<TcpStream>, Identity)> {
        let stream = tokio::time::timeout(HANDSHAKE, self.acceptor.accept(tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no TLS handshake in time"))??;
        let identity = match stream.get_ref().1.peer_certificates() {
            Some([cert, ..]) => Identity::Certified(named_nodes(cert)),
            _ => Identity::Anonymous,
        };
        Ok((stream, identity))
    }

    /// Dials peer `target`, whose certificate must name it.
    pub async fn connect_peer(
        &self,
        tcp: TcpStream,
        target: NodeId,
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = ServerName::try_from(raft_node_name(target))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        tokio::time::timeout(HANDSHAKE, self.peer.connect(name, tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no TLS handshake in time"))?
    }
}

/// A client's TLS to a node (the CLI, tests): trusts `ca` only, presents
/// the certificate and key of `cert`, if given.
pub fn client_connector(
    ca: &Path,
    cert: Option<(&Path, &Path)>,
) -> Result<tokio_rustls::TlsConnector, TlsError> {
    let config = |e: rustls::Error| TlsError::Config(e.to_string());
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config)?
        .with_root_certificates(roots(ca)?);
    let client = match cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File {
                path: key.to_owned(),
                reason: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(read_certs(cert)?, key)
                .map_err(config)?
        }
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(client)))
}

/// The name to check a node's certificate against when dialling `addr`
/// (`host:port`) as a client: its host, an IP address or a DNS name.
pub fn server_name(addr: &str) -> io::Result<ServerName<'static>> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}
