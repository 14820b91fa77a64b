//! Lab 4b in TLS (issue 17): nodes that speak TLS only, peers that prove
//! who they are by certificate (mutual TLS, each node's certificate naming
//! its Raft ID), clients — workers, the driver, the CLI — over rediss://.
//! Whatever a client holds (no certificate, a client's certificate, a
//! node's certificate for another ID, plain text), it cannot speak Raft to
//! a node.

use crate::common::*;
use crate::raft::{finish_run, spawn_run_with, wait_progress, Cluster};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wclab_testkit::redis::{Client, Reply};
use wclab_testkit::{corpus, procs};

/// The CA among a node's `wclab raft node` options, if it speaks TLS.
pub(crate) fn ca_in(args: &[String]) -> Option<PathBuf> {
    option_in(args, "--tls-ca")
}

/// The value of `option` among a node's `wclab raft node` options.
pub(crate) fn option_in(args: &[String], option: &str) -> Option<PathBuf> {
    let at = args.iter().position(|a| a == option)?;
    args.get(at + 1).map(PathBuf::from)
}

/// A TLS connection to the node on `port` that trusts `ca`, presenting the
/// certificate and key `cert` if given.
pub(crate) fn connect(
    port: u16,
    ca: &Path,
    cert: Option<(&Path, &Path)>,
) -> std::io::Result<Client> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(std::io::Error::other)? {
        roots
            .add(c.map_err(std::io::Error::other)?)
            .map_err(std::io::Error::other)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots);
    let config = match cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
                .map_err(std::io::Error::other)?
                .collect::<Result<_, _>>()
                .map_err(std::io::Error::other)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(std::io::Error::other)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(std::io::Error::other)?
        }
    };
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Client::over(tls, None)
}

/// A cluster CA, certificates for nodes 1 to `n`, one for node 9 and one
/// for a client named `worker`, in `dir`.
fn certificates(dir: &Path, n: u64) -> PathBuf {
    let mut ids: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    ids.push("9".into());
    let o = output(
        wclab()
            .args(["tls-certs", "--out"])
            .arg(dir)
            .args(["--host", "127.0.0.1", "--raft-nodes", &ids.join(",")])
            .args(["--client", "worker"]),
    );
    assert_status(&o, 0);
    dir.to_owned()
}

/// `wclab raft node` options for node `{id}` with the certificates in `dir`.
fn tls_args(dir: &Path) -> Vec<String> {
    let d = dir.display();
    vec![
        "--tls-cert".into(),
        format!("{d}/node-{{id}}.pem"),
        "--tls-key".into(),
        format!("{d}/node-{{id}}.key"),
        "--tls-ca".into(),
        format!("{d}/ca.pem"),
    ]
}

fn start_cluster(n: usize, certs: &Path) -> Cluster {
    let args = tls_args(certs);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Cluster::start_with(n, &args)
}

/// How many times the node's log says `what`.
fn logged(cluster: &Cluster, node: usize, what: &str) -> usize {
    std::fs::read_to_string(cluster.nodes[node].dir.with_extension("log"))
        .unwrap_or_default()
        .matches(what)
        .count()
}

#[test]
fn a_cluster_in_mutual_tls_finishes_a_job_exactly_over_tls_while_its_leader_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certificates(&dir.path().join("certs"), 3);
    let mut cluster = start_cluster(3, &certs);
    let root = corpus::english(&dir.path().join("in"), 40, 8_000, 17);
    let out = dir.path().join("counts.tsv");
    let ca = certs.join("ca.pem");
    // Workers and driver over rediss:// to the nodes, trusting the
    // cluster's CA alone.
    let run = spawn_run_with(
        &cluster,
        &root,
        &out,
        "tls",
        &["--tls", "--tls-ca", ca.to_str().unwrap()],
    );
    let mut seen = Vec::new();
    wait_progress(&cluster, "tls", &mut seen, 10, 40);
    let l = cluster.wait_leader();
    cluster.nodes[l].kill();
    let new_leader = cluster.wait_leader();
    eprintln!(
        "leader {} killed; node {} leads",
        cluster.nodes[l].id, cluster.nodes[new_leader].id
    );
    cluster.nodes[l].start();
    finish_run(&cluster, run, &root, &out, "tls", 40);
    cluster.assert_identical();
    // The CLI's administration commands speak TLS too, with the CA.
    let o = output(
        wclab()
            .args(["raft", "status", "--node", &cluster.nodes[0].addr()])
            .env("WCLAB_TLS_CA", &ca),
    );
    assert_status(&o, 0);
    let status = String::from_utf8_lossy(&o.stdout);
    assert!(status.contains("role:"), "{status}");
}

/// A `RAFT.RPC` as a peer sends it, claiming to come from node `from`
/// (its payload need not be valid: who sends it is checked first).
fn rpc_from(c: &mut Client, from: u64) -> Reply {
    c.cmd(&["RAFT.RPC", "vote", &from.to_string(), "x", "0", "0", "1"])
}

fn is_notpeer(r: &Reply) -> bool {
    matches!(r, Reply::Error(e) if e.starts_with("NOTPEER"))
}

#[test]
fn only_a_peer_proving_the_id_it_claims_may_speak_raft_to_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certificates(&dir.path().join("certs"), 3);
    let cluster = start_cluster(3, &certs);
    let node1 = &cluster.nodes[0];
    let ca = certs.join("ca.pem");
    let pem = |name: &str| {
        (
            certs.join(format!("{name}.pem")),
            certs.join(format!("{name}.key")),
        )
    };
    let refused_before = logged(&cluster, 0, "peer command refused");

    // A node's certificate for another ID than the one claimed.
    let (c2, k2) = pem("node-2");
    let mut as_node2 = connect(node1.port, &ca, Some((&c2, &k2))).unwrap();
    let r = rpc_from(&mut as_node2, 3);
    assert!(
        is_notpeer(&r),
        "node 2's certificate passed for node 3: {r:?}"
    );
    // The same certificate, claiming its own ID, gets past the check (and
    // on to the RPC's own, which this made-up one fails).
    let r = rpc_from(&mut as_node2, 2);
    assert!(!is_notpeer(&r), "node 2 refused as itself: {r:?}");

    // A valid client certificate, which names no node: a client, served
    // as one, but no peer.
    let (cw, kw) = pem("client-worker");
    let mut worker = connect(node1.port, &ca, Some((&cw, &kw))).unwrap();
    assert!(matches!(
        worker.cmd(&["HSET", "h", "k", "v"]),
        Reply::Int(_)
    ));
    for from in [1, 2, 3] {
        let r = rpc_from(&mut worker, from);
        assert!(
            is_notpeer(&r),
            "a client's certificate passed for node {from}: {r:?}"
        );
    }
    let r = worker.cmd(&["RAFT.PROXIED", "1000", "HSET", "h", "k", "w"]);
    assert!(is_notpeer(&r), "a client sent a proxied command: {r:?}");

    // No certificate at all.
    let mut anonymous = connect(node1.port, &ca, None).unwrap();
    let r = rpc_from(&mut anonymous, 2);
    assert!(is_notpeer(&r), "an RPC without a certificate: {r:?}");
    assert_eq!(
        logged(&cluster, 0, "peer command refused") - refused_before,
        6,
        "each refusal is logged"
    );

    // A peer in plain text: no handshake, no reply in RESP, and a line in
    // the node's log.
    let handshakes_before = logged(&cluster, 0, "no TLS handshake");
    let mut plain = TcpStream::connect(("127.0.0.1", node1.port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = plain.write_all(b"*7\r\n$8\r\nRAFT.RPC\r\n$4\r\nvote\r\n$1\r\n2\r\n$1\r\nx\r\n$1\r\n0\r\n$1\r\n0\r\n$1\r\n1\r\n");
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    assert!(
        !reply.first().is_some_and(|b| b"+-:$*".contains(b)),
        "a plain-text peer got a RESP reply: {:?}",
        String::from_utf8_lossy(&reply)
    );
    procs::wait_for("the refusal in the log", Duration::from_secs(10), || {
        (logged(&cluster, 0, "no TLS handshake") > handshakes_before).then_some(())
    });

    // A certificate from another CA, even for the right ID, gets no
    // connection.
    let other = certificates(&dir.path().join("other"), 3);
    let (oc, ok) = (other.join("node-2.pem"), other.join("node-2.key"));
    let foreign = connect(node1.port, &ca, Some((&oc, &ok)))
        .map(|mut c| rpc_from(&mut c, 2))
        .map_err(|e| e.to_string());
    // (In TLS 1.3 the client finishes its handshake before the server has
    // checked its certificate: the refusal may come as a lost connection.)
    let accepted =
        matches!(&foreign, Ok(r) if !matches!(r, Reply::Error(e) if e.starts_with("IOERR")));
    assert!(
        !accepted,
        "a certificate from another CA was accepted: {foreign:?}"
    );

    // A member whose address is answered by another node: the handshake
    // fails on the name, so the join is refused.
    let r = node1.cmd(&["RAFT.JOIN", "9", &cluster.nodes[1].addr()]);
    assert!(
        matches!(&r, Reply::Error(_)),
        "node 2 was taken for node 9: {r:?}"
    );

    // A node started with another node's certificate does not start.
    let o = output(
        wclab()
            .args(["raft", "node", "--id", "4", "--listen", "127.0.0.1:1"])
            .arg("--dir")
            .arg(dir.path().join("n4"))
            .arg("--tls-cert")
            .arg(certs.join("node-2.pem"))
            .arg("--tls-key")
            .arg(certs.join("node-2.key"))
            .arg("--tls-ca")
            .arg(&ca)
            .stdin(Stdio::null()),
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("does not name node 4"),
        "{}",
        stderr(&o)
    );

    // Through all of it the cluster kept its leader and commits.
    let started = Instant::now();
    let leader = cluster.wait_leader();
    let mut c = cluster.nodes[leader].client().unwrap();
    assert!(matches!(c.cmd(&["HSET", "h", "after", "1"]), Reply::Int(_)));
    eprintln!("committed {:?} after the checks", started.elapsed());
}

/// A `RAFT.RPC vote` on `c` to the node of `cluster` whose ID is `to`,
/// sent as from node `from` (with the incarnations the configuration
/// holds), whose payload asks votes for `candidate` in `term`: a valid
/// RPC, so that what refuses it is the check of who may send it.
fn vote_from(
    cluster: &Cluster,
    c: &mut Client,
    (from, to): (u64, u64),
    term: u64,
    candidate: u64,
) -> Reply {
    let info = cluster.nodes.iter().find(|n| n.id == to).unwrap().info();
    let incarnation_of = |id: u64| {
        info["incarnations"]
            .split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{id}=")).map(str::to_owned))
            .unwrap_or_else(|| "0".into())
    };
    let payload = wclab_raft::testing::vote_request_payload(term, candidate);
    let (from_inc, to_inc) = (incarnation_of(from), info["incarnation"].clone());
    let (from, to) = (from.to_string(), to.to_string());
    c.cmd(&[
        b"RAFT.RPC".as_slice(),
        b"vote",
        from.as_bytes(),
        &payload,
        to_inc.as_bytes(),
        from_inc.as_bytes(),
        to.as_bytes(),
    ])
}

fn code(r: &Reply) -> Option<&str> {
    match r {
        Reply::Error(e) => e.split_whitespace().next(),
        _ => None,
    }
}

#[test]
fn a_node_certificate_speaks_for_its_node_only_and_not_once_the_node_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certificates(&dir.path().join("certs"), 3);
    let cluster = start_cluster(3, &certs);
    let ca = certs.join("ca.pem");
    let pem = |name: &str| {
        (
            certs.join(format!("{name}.pem")),
            certs.join(format!("{name}.key")),
        )
    };
    let leader = cluster.wait_leader();
    let term: u64 = cluster.nodes[leader].info()["term"].parse().unwrap();
    let target = cluster.nodes[leader].id;
    let (other, third) = {
        let mut ids = cluster.nodes.iter().map(|n| n.id).filter(|&i| i != target);
        (ids.next().unwrap(), ids.next().unwrap())
    };

    // Node `other`'s certificate, proving its ID, asks votes for `third`.
    let (c, k) = pem(&format!("node-{other}"));
    let mut as_other = connect(cluster.nodes[leader].port, &ca, Some((&c, &k))).unwrap();
    let r = vote_from(&cluster, &mut as_other, (other, target), term + 10, third);
    assert_eq!(code(&r), Some("WRONGSENDER"), "{r:?}");

    // Administration: no certificate, or a client's, is not enough.
    let mut anonymous = connect(cluster.nodes[leader].port, &ca, None).unwrap();
    let (cw, kw) = pem("client-worker");
    let mut worker = connect(cluster.nodes[leader].port, &ca, Some((&cw, &kw))).unwrap();
    let remove = ["RAFT.REMOVE".to_owned(), third.to_string()];
    for c in [&mut anonymous, &mut worker] {
        let r = c.cmd(&remove);
        assert_eq!(code(&r), Some("NOADMIN"), "{r:?}");
    }

    // `third` removed (by a node's certificate): its certificate, still
    // valid, no longer speaks for a member.
    let third_id = third.to_string();
    assert_eq!(
        cluster.nodes[leader].cmd(&["RAFT.REMOVE", &third_id]),
        Reply::Status("OK".into())
    );
    let third_index = cluster.nodes.iter().position(|n| n.id == third).unwrap();
    for n in (0..3).filter(|&i| i != third_index) {
        procs::wait_for("the removal seen", Duration::from_secs(20), || {
            (!cluster.nodes[n].info()["members"].contains(&format!("{third}="))).then_some(())
        });
    }
    let (c3, k3) = pem(&format!("node-{third}"));
    for n in (0..3).filter(|&i| i != third_index) {
        let to = cluster.nodes[n].id;
        let mut as_third = connect(cluster.nodes[n].port, &ca, Some((&c3, &k3))).unwrap();
        let r = procs::wait_for("the refusal", Duration::from_secs(10), || {
            let r = vote_from(&cluster, &mut as_third, (third, to), term + 10, third);
            (code(&r) == Some("REMOVED")).then_some(r)
        });
        assert_eq!(code(&r), Some("REMOVED"));
    }
    // The two left keep their leader and commit.
    let leader = cluster.wait_leader();
    let mut c = cluster.nodes[leader].client().unwrap();
    assert!(matches!(c.cmd(&["HSET", "h", "after", "1"]), Reply::Int(_)));
}
