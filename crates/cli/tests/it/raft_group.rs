//! Lab 4b: group commit. Concurrent writes to the leader share log entries
//! (one fsync and one replication round per batch), and each still gets
//! its own reply, exactly once, in its client's order.

use crate::raft::Cluster;
use wclab_testkit::redis::{Client, Reply};

#[test]
fn concurrent_writes_share_log_entries_and_each_gets_its_own_reply_once() {
    const CLIENTS: usize = 12;
    const WRITES: i64 = 40;
    let cluster = Cluster::start(3);
    let leader = &cluster.nodes[cluster.wait_leader()];
    let before: u64 = leader.info()["last_log_index"].parse().unwrap();
    let port = leader.port;
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            s.spawn(move || {
                let mut client = Client::connect(port, "").unwrap();
                let key = format!("list:{c}");
                for i in 0..WRITES {
                    // RPUSH answers the list's new length: this write's
                    // own reply, not a neighbour's in the batch.
                    let r = client.cmd(&["RPUSH", &key, &i.to_string()]);
                    assert_eq!(r, Reply::Int(i + 1), "client {c}, write {i}");
                    assert!(matches!(client.cmd(&["INCR", "total"]), Reply::Int(_)));
                }
            });
        }
    });
    let writes = (CLIENTS as u64) * (WRITES as u64) * 2;
    assert_eq!(
        leader.cmd(&["GET", "total"]),
        Reply::Bulk(Some((writes / 2).to_string().into_bytes()))
    );
    for c in 0..CLIENTS {
        let items = leader.cmd(&["LRANGE", &format!("list:{c}"), "0", "-1"]);
        let want: Vec<Reply> = (0..WRITES)
            .map(|i| Reply::Bulk(Some(i.to_string().into_bytes())))
            .collect();
        assert_eq!(items, Reply::Array(Some(want)), "client {c}'s list");
    }
    let after: u64 = leader.info()["last_log_index"].parse().unwrap();
    assert!(
        after - before < writes,
        "{writes} concurrent writes took {} log entries: none were grouped",
        after - before
    );
    cluster.assert_identical();
}
