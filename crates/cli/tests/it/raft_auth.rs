//! Who may administer a Raft cluster and speak for a peer, in plain text
//! (issue 17's review of the sidecar): a remote crash through nested
//! `RAFT.PROXIED`, forwarded administration forwarded again, and cluster
//! administration that needed no more than a client's credentials.

use crate::common::*;
use crate::raft::Cluster;
use std::time::Duration;
use wclab_testkit::procs;
use wclab_testkit::redis::{Client, Reply};

fn error_code(r: &Reply) -> Option<&str> {
    match r {
        Reply::Error(e) => e.split_whitespace().next(),
        _ => None,
    }
}

#[test]
fn nested_proxied_commands_are_refused_and_the_node_lives_on() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    let mut c = cluster.nodes[follower].client().unwrap();
    // 5000 levels in 90 KB: this overflowed the node's stack (abort).
    let mut nested: Vec<&str> = Vec::new();
    for _ in 0..5000 {
        nested.extend(["RAFT.PROXIED", "1000"]);
    }
    nested.push("PING");
    let r = c.cmd(&nested);
    assert!(
        matches!(&r, Reply::Error(e) if e.contains("inside RAFT.PROXIED")),
        "{r:?}"
    );
    // A proxied RPC, and a forwarded administration command sent to a
    // follower, are not forwarded again.
    let r = c.cmd(&[
        "RAFT.PROXIED",
        "1000",
        "RAFT.RPC",
        "vote",
        "1",
        "x",
        "0",
        "0",
        "1",
    ]);
    assert!(
        matches!(&r, Reply::Error(e) if e.contains("inside RAFT.PROXIED")),
        "{r:?}"
    );
    let victim = cluster.nodes[(leader + 2) % 3].id.to_string();
    let r = c.cmd(&["RAFT.PROXIED", "1000", "RAFT.REMOVE", &victim]);
    assert_eq!(error_code(&r), Some("TRYAGAIN"), "{r:?}");
    assert!(
        cluster.nodes[leader].info()["voters"].contains(&victim),
        "a re-forwarded RAFT.REMOVE ran"
    );
    // The node that got it all is alive and the cluster commits.
    assert_eq!(c.cmd(&["PING"]), Reply::Status("PONG".into()));
    assert_eq!(c.cmd(&["HSET", "h", "after", "1"]), Reply::Int(1));
}

#[test]
fn with_an_administrator_password_only_the_administrator_changes_the_cluster() {
    let admin = "adm-7f3c";
    let cluster = Cluster::start_administered(3, &[], Some(admin));
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    let port = cluster.nodes[follower].port;
    // A client: writes (forwarded by the follower, whose peer connection
    // authenticates as the administrator) and reads, no administration.
    let mut client = Client::connect(port, "").unwrap();
    assert_eq!(client.cmd(&["HSET", "h", "k", "v"]), Reply::Int(1));
    assert!(matches!(client.cmd(&["RAFT.INFO"]), Reply::Bulk(Some(_))));
    let victim = cluster.nodes[(leader + 2) % 3].id.to_string();
    let here = cluster.nodes[follower].addr();
    let before = cluster.nodes[follower].info()["peer_refusals"]
        .parse::<u64>()
        .unwrap();
    let attempts: [&[&str]; 7] = [
        &["RAFT.REMOVE", &victim],
        &["RAFT.JOIN", "9", "127.0.0.1:1"],
        &["RAFT.INIT", "9=127.0.0.1:1"],
        &["RAFT.PARTITION", "1"],
        &["RAFT.SNAPSHOT"],
        &["RAFT.FAULT", "panic-apply"],
        &["RAFT.TRACE", "START"],
    ];
    for a in attempts {
        let r = client.cmd(a);
        assert_eq!(error_code(&r), Some("NOADMIN"), "{a:?}: {r:?}");
    }
    for a in [
        &["RAFT.RPC", "vote", "1", "x", "0", "0", "1"][..],
        &["RAFT.PROXIED", "1000", "HSET", "h", "k", "w"],
    ] {
        let r = client.cmd(a);
        assert_eq!(error_code(&r), Some("NOTPEER"), "{a:?}: {r:?}");
    }
    let r = client.cmd(&["AUTH", "admin", "wrong"]);
    assert_eq!(error_code(&r), Some("WRONGPASS"), "{r:?}");
    let r = client.cmd(&["RAFT.REMOVE", &victim]);
    assert_eq!(
        error_code(&r),
        Some("NOADMIN"),
        "after a wrong password: {r:?}"
    );
    let after = cluster.nodes[follower].info()["peer_refusals"]
        .parse::<u64>()
        .unwrap();
    assert_eq!(after - before, 10, "each refusal counted");
    assert!(cluster.nodes[leader].info()["voters"].contains(&victim));

    // The CLI without the administrator's password is refused with the
    // code; with it, the removal (forwarded by a follower) happens.
    let o = output(wclab().args(["raft", "remove", "--cluster", &here, "--id", &victim]));
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("NOADMIN"), "{}", stderr(&o));
    let o = output(
        wclab()
            .args(["raft", "remove", "--cluster", &here, "--id", &victim])
            .env("WCLAB_RAFT_ADMIN_PASSWORD", admin),
    );
    assert_status(&o, 0);
    procs::wait_for("the removal", Duration::from_secs(20), || {
        (!cluster.nodes[leader].info()["voters"].contains(&victim)).then_some(())
    });
    // Still a cluster that commits, through the follower.
    assert_eq!(client.cmd(&["HSET", "h", "k2", "v"]), Reply::Int(1));
}
