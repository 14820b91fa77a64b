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
    let generate = |source| TlsError::Generate {
        names: names.to_vec(),
        source,
    };
    let now = time::OffsetDateTime::now_utc();
    // A minute of slack for clocks a little behind ours.
    let not_before = now - time::Duration::minutes(1);

    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    // A name of its own: two wclab CAs with one name would make a client
    // holding the wrong one report a bad signature instead of an unknown
    // issuer.
    let tag: u32 = rand::random();
    ca.distinguished_name
        .push(DnType::CommonName, format!("wclab private CA {tag:08x}"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = now + VALIDITY;
    let ca_key = KeyPair::generate().map_err(generate)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(generate)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut server = CertificateParams::new(names.to_vec()).map_err(generate)?;
    server.distinguished_name.push(
        DnType::CommonName,
        names.first().map(String::as_str).unwrap_or("wclab"),
    );
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    server.not_before = not_before;
    server.not_after = now + VALIDITY;
    let server_key = KeyPair::generate().map_err(generate)?;
    let server_cert = server.signed_by(&server_key, &issuer).map_err(generate)?;

    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    write_file(&files.ca, ca_cert.pem().as_bytes(), 0o644).map_err(io(&files.ca))?;
    write_file(&files.cert, server_cert.pem().as_bytes(), 0o644).map_err(io(&files.cert))?;
    write_file(&files.key, server_key.serialize_pem().as_bytes(), 0o600).map_err(io(&files.key))?;
    Ok(files)
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
}
