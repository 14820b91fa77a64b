//! `wclab tls-certs`: certificates for a Redis that speaks TLS.

use super::Outcome;
use crate::cli::TlsCertsArgs;
use anyhow::Result;
use wclab_server::tls;

pub fn tls_certs(args: TlsCertsArgs) -> Result<Outcome> {
    let hosts = if args.host.is_empty() {
        tls::LOOPBACK_NAMES.map(str::to_owned).to_vec()
    } else {
        args.host
    };
    let files = tls::generate(&args.out, &hosts)?;
    println!("tls-cert-file {}", files.cert.display());
    println!("tls-key-file {}", files.key.display());
    println!("tls-ca-cert-file {}", files.ca.display());
    eprintln!(
        "certificate for {} signed by a new CA (its key was not kept); the lines above go into redis.conf \
         (with tls-port PORT, port 0, tls-auth-clients no); clients trust {} with --tls-ca",
        hosts.join(", "),
        files.ca.display()
    );
    Ok(Outcome::Success)
}
