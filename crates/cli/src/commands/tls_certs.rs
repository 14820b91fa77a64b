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
    if !args.raft_nodes.is_empty() {
        let files = tls::generate_cluster(&args.out, &args.raft_nodes, &hosts, &args.client)?;
        println!("ca {}", files.ca.display());
        for (id, f) in &files.nodes {
            println!(
                "node {id} --tls-cert {} --tls-key {}",
                f.cert.display(),
                f.key.display()
            );
        }
        for (name, f) in &files.clients {
            println!("client {name} {} {}", f.cert.display(), f.key.display());
        }
        eprintln!(
            "a cluster CA (its key was not kept) and a certificate per node naming its Raft ID and {}; \
             start each node with --tls-cert, --tls-key and --tls-ca {}; clients trust {} with --tls-ca",
            hosts.join(", "),
            files.ca.display(),
            files.ca.display()
        );
        return Ok(Outcome::Success);
    }
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
