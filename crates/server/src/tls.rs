//! Certificates for a Redis that speaks TLS only.
//!
//! A private redis-server started with TLS needs a certificate that its
//! clients can check: [`generate`] makes a fresh certificate authority and
//! a server certificate signed by it, for the names and addresses the
//! clients will dial (127.0.0.1 and localhost for a private server, the
//! hosts' names for a test network). The CA's private key is never written:
//! it signs the one server certificate and is dropped, so the CA cannot
//! vouch for anything else later, whoever reads the directory.
//!
//! Clients trust the CA file alone (`ca.pem`), not the system's roots: a
//! certificate from a public CA for the same address would be refused.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The three files a TLS server needs: the CA that clients trust, the
/// server's certificate and its private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate authority, the file clients are given (`--tls-ca`).
    pub ca: PathBuf,
    /// The server's certificate, signed by `ca`.
    pub cert: PathBuf,
    /// The server's private key (readable by its owner only).
    pub key: PathBuf,
}

/// Why certificates could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// rcgen refused a name or could not sign.
    #[error("cannot make a certificate for {names:?}: {source}")]
    Generate {
        /// The names asked for.
        names: Vec<String>,
        /// What rcgen said.
        #[source]
        source: rcgen::Error,
    },
    /// A name asked for that would let a certificate pass for something
    /// it is not (a Raft node, or a file outside the directory).
    #[error("{name:?} cannot be used {role}: {why}")]
    ReservedName {
        /// The name.
        name: String,
        /// As what (a host, a client name).
        role: &'static str,
        /// Why, and what to do.
        why: &'static str,
    },
    /// A CA file without a certificate in it, or one that rustls refuses.
    #[error("{} holds no usable CA certificate (PEM, -----BEGIN CERTIFICATE-----): {reason}", path.display())]
    BadCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The names a private server's certificate holds: the loopback address
/// and name that wclab's own URLs use.
pub const LOOPBACK_NAMES: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

/// How long generated certificates are valid: long enough for a course, and
/// short enough that a forgotten copy does not stay good for ever.
const VALIDITY: time::Duration = time::Duration::days(365);

/// Makes a new CA and a server certificate for `names` (IP addresses or DNS
/// names) in `dir`: `ca.pem`, `server.pem`, `server.key` (mode 0600).
pub fn generate(dir: &Path, names: &[String]) -> Result<TlsFiles, TlsError> {
    check_hosts(names)?;
    let ca = Ca::new(names)?;
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    create_dir(dir)?;
    ca.write(&files.ca)?;
    ca.sign(names, &[ExtendedKeyUsagePurpose::ServerAuth])?
        .write(&files.cert, &files.key)?;
    Ok(files)
}

/// The DNS name that a Raft node's certificate holds to say which node it
/// is: the sidecars check it on every peer connection (`wclab raft node
/// --tls-cert`), both ways.
pub fn raft_node_name(id: u64) -> String {
    format!("node-{id}.raft.wclab")
}

/// The node ID a DNS name of [`raft_node_name`]'s form stands for.
pub fn raft_node_id(name: &str) -> Option<u64> {
    let id = name.strip_prefix("node-")?.strip_suffix(".raft.wclab")?;
    // Canonical digits only: "node-01" must not pass for node 1.
    (!id.starts_with('0') && id.bytes().all(|b| b.is_ascii_digit()))
        .then(|| id.parse().ok())
        .flatten()
}

/// The DNS domain of [`raft_node_name`]: no other name in it is ever put in
/// a certificate, since peers compare names without regard to case.
const RAFT_DOMAIN: &str = ".raft.wclab";

/// Refuses host names in the Raft nodes' namespace: with `--host
/// node-2.raft.wclab` every certificate of the set (node 1's too) would
/// pass for node 2 when a peer dials it.
fn check_hosts(hosts: &[String]) -> Result<(), TlsError> {
    for h in hosts {
        let lower = h.trim_end_matches('.').to_ascii_lowercase();
        if lower.ends_with(RAFT_DOMAIN) || lower == RAFT_DOMAIN[1..] {
            return Err(TlsError::ReservedName {
                name: h.clone(),
                role: "as a host",
                why: "names under raft.wclab are the Raft nodes' identities, put in each node's certificate by --raft-nodes; give the hosts' own names or addresses",
            });
        }
    }
    Ok(())
}

/// Client names become part of file names and of a DNS name: letters,
/// digits, `-` and `_` only.
fn check_client(name: &str) -> Result<(), TlsError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(TlsError::ReservedName {
            name: name.to_owned(),
            role: "as a client name",
            why:
                "use 1 to 63 letters, digits, '-' or '_' (it names the files client-NAME.pem/.key)",
        })
    }
}

/// The files of a Raft cluster that speaks mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFiles {
    /// The cluster's CA: every node and client trusts it (`--tls-ca`).
    pub ca: PathBuf,
    /// Per node ID: its certificate and key (`--tls-cert`, `--tls-key`).
    pub nodes: Vec<(u64, TlsFiles)>,
    /// Per client name: a client certificate and key, which names no node
    /// and so opens no peer RPC.
    pub clients: Vec<(String, TlsFiles)>,
}

/// Makes a cluster CA in `dir` and, signed by it, one certificate per node
/// ID (`node-ID.pem`, `node-ID.key`): valid as a server for `hosts` (what
/// clients dial) and as a client and a server for the node's own name
/// ([`raft_node_name`], what peers check); and one client certificate per
/// name in `clients` (`client-NAME.pem`, `.key`). As with [`generate`], the
/// CA's key is not kept: a node added later needs a new set.
pub fn generate_cluster(
    dir: &Path,
    ids: &[u64],
    hosts: &[String],
    clients: &[String],
) -> Result<ClusterFiles, TlsError> {
    check_hosts(hosts)?;
    for c in clients {
        check_client(c)?;
    }
    let ca = Ca::new(hosts)?;
    create_dir(dir)?;
    let ca_file = dir.join("ca.pem");
    ca.write(&ca_file)?;
    let both = [
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let mut files = ClusterFiles {
        ca: ca_file.clone(),
        nodes: Vec::new(),
        clients: Vec::new(),
    };
    for &id in ids {
        let mut names = vec![raft_node_name(id)];
        names.extend(hosts.iter().cloned());
        let f = TlsFiles {
            ca: ca_file.clone(),
            cert: dir.join(format!("node-{id}.pem")),
            key: dir.join(format!("node-{id}.key")),
        };
        ca.sign(&names, &both)?.write(&f.cert, &f.key)?;
        files.nodes.push((id, f));
    }
    for name in clients {
        let f = TlsFiles {
            ca: ca_file.clone(),
            cert: dir.join(format!("client-{name}.pem")),
            key: dir.join(format!("client-{name}.key")),
        };
        ca.sign(
            &[format!("{name}.client.wclab")],
            &[ExtendedKeyUsagePurpose::ClientAuth],
        )?
        .write(&f.cert, &f.key)?;
        files.clients.push((name.clone(), f));
    }
    Ok(files)
}

/// A certificate authority made for one set of certificates; its key is
/// dropped with it.
struct Ca {
    cert: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
}

/// A signed certificate and its key.
struct Signed {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn rcgen_error(names: &[String]) -> impl Fn(rcgen::Error) -> TlsError + '_ {
    move |source| TlsError::Generate {
        names: names.to_vec(),
        source,
    }
}

impl Ca {
    fn new(names: &[String]) -> Result<Ca, TlsError> {
        let generate = rcgen_error(names);
        let now = time::OffsetDateTime::now_utc();
        // A minute of slack for clocks a little behind ours.
        let not_before = now - time::Duration::minutes(1);
        let not_after = now + VALIDITY;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(&generate)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        // A name of its own: two wclab CAs with one name would make a client
        // holding the wrong one report a bad signature instead of an unknown
        // issuer.
        let tag: u32 = rand::random();
        ca.distinguished_name
            .push(DnType::CommonName, format!("wclab private CA {tag:08x}"));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = not_before;
        ca.not_after = not_after;
        let ca_key = KeyPair::generate().map_err(&generate)?;
        let cert = ca.self_signed(&ca_key).map_err(&generate)?;
        Ok(Ca {
            cert,
            issuer: Issuer::new(ca, ca_key),
            not_before,
            not_after,
        })
    }

    fn write(&self, path: &Path) -> Result<(), TlsError> {
        write_file(path, self.cert.pem().as_bytes(), 0o644).map_err(io_error(path))
    }

    /// A certificate for `names` with these uses, signed by this CA.
    fn sign(&self, names: &[String], uses: &[ExtendedKeyUsagePurpose]) -> Result<Signed, TlsError> {
        let generate = rcgen_error(names);
        let mut params = CertificateParams::new(names.to_vec()).map_err(&generate)?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().map(String::as_str).unwrap_or("wclab"),
        );
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = uses.to_vec();
        params.use_authority_key_identifier_extension = true;
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        let key = KeyPair::generate().map_err(&generate)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(&generate)?;
        Ok(Signed { cert, key })
    }
}

impl Signed {
    fn write(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        write_file(cert, self.cert.pem().as_bytes(), 0o644).map_err(io_error(cert))?;
        write_file(key, self.key.serialize_pem().as_bytes(), 0o600).map_err(io_error(key))
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError {
    let path = path.to_owned();
    move |source| TlsError::Io { path, source }
}

fn create_dir(dir: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    // A key left by an earlier run may be readable by others: start afresh.
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(bytes)
}

/// Reads the CA certificates of a PEM file, refusing a file with none.
pub fn read_ca(path: &Path) -> Result<Vec<u8>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })?;
    root_store(&pem).map_err(|reason| TlsError::BadCa {
        path: path.to_owned(),
        reason,
    })?;
    Ok(pem)
}

/// The certificates of `pem` as rustls trust anchors.
fn root_store(pem: &[u8]) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| e.to_string())?;
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    if roots.is_empty() {
        return Err("no certificate found".into());
    }
    Ok(roots)
}

/// A rustls client configuration that trusts the CA in `pem` only.
pub(crate) fn client_config(pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = root_store(pem)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raft_node_name_stands_for_one_id_only() {
        assert_eq!(raft_node_id(&raft_node_name(7)), Some(7));
        for not in [
            "node-07.raft.wclab",
            "node-.raft.wclab",
            "node-7.raft.wclab.evil",
            "xnode-7.raft.wclab",
            "node-7x.raft.wclab",
            "worker.client.wclab",
            "node-99999999999999999999.raft.wclab",
        ] {
            assert_eq!(raft_node_id(not), None, "{not}");
        }
    }

    #[test]
    fn the_key_is_private_and_the_ca_key_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = LOOPBACK_NAMES.iter().map(|s| s.to_string()).collect();
        let files = generate(dir.path(), &names).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the server key must not be readable by others"
        );
        let mut listed: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        listed.sort();
        assert_eq!(listed, ["ca.pem", "server.key", "server.pem"]);
        assert!(read_ca(&files.ca).is_ok());
        let e = read_ca(&files.key).unwrap_err().to_string();
        assert!(e.contains("no usable CA certificate"), "{e}");
    }

    #[test]
    fn names_in_the_raft_namespace_and_odd_client_names_are_refused_before_any_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs");
        for host in [
            "node-2.raft.wclab",
            "NODE-2.Raft.Wclab.",
            "raft.wclab",
            "x.raft.wclab",
        ] {
            let e = generate_cluster(&out, &[1, 2], &[host.to_owned()], &[]).unwrap_err();
            assert!(matches!(e, TlsError::ReservedName { .. }), "{host}: {e}");
            let e = generate(&out, &[host.to_owned()]).unwrap_err();
            assert!(matches!(e, TlsError::ReservedName { .. }), "{host}: {e}");
        }
        for client in ["../x", "a.b", "", "a b"] {
            let e = generate_cluster(&out, &[1], &["127.0.0.1".into()], &[client.to_owned()])
                .unwrap_err();
            assert!(
                matches!(e, TlsError::ReservedName { .. }),
                "{client:?}: {e}"
            );
        }
        assert!(!out.exists(), "nothing written for a refused name");
        generate_cluster(
            &out,
            &[1],
            &["raftwclab.example".into()],
            &["worker-1".into()],
        )
        .unwrap();
    }
}
