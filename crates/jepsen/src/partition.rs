//! Network partitions, behind one trait so that the way links are cut can
//! change without touching the nemesis: today the sidecars' test switch
//! (`RAFT.PARTITION`, no root needed); later, real links of
//! network-namespace hosts (the hosts tests' `block()`).

use crate::cluster::Cluster;
use anyhow::Result;
use std::collections::BTreeSet;

/// Cuts and heals links between nodes.
pub trait Partitioner: Send {
    /// A short name for reports.
    fn name(&self) -> &'static str;

    /// Cuts every link between nodes of different `groups`, both ways.
    /// Nodes in no group keep all their links.
    fn cut(&mut self, cluster: &Cluster, groups: &[BTreeSet<u64>]) -> Result<()>;

    /// Restores every link.
    fn heal(&mut self, cluster: &Cluster) -> Result<()>;
}

/// Partitions through `RAFT.PARTITION`: each node drops Raft traffic with,
/// and does not proxy clients to, the nodes it is told. A node restarted
/// while cut off comes back with all its links (the switch is not
/// persistent); the nemesis heals after every fault anyway.
#[derive(Debug, Default)]
pub struct RaftSwitch;

impl Partitioner for RaftSwitch {
    fn name(&self) -> &'static str {
        "raft-switch"
    }

    fn cut(&mut self, cluster: &Cluster, groups: &[BTreeSet<u64>]) -> Result<()> {
        let mut errors = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let others: Vec<String> = groups
                .iter()
                .enumerate()
                .filter(|(h, _)| *h != g)
                .flat_map(|(_, o)| o.iter().map(u64::to_string))
                .collect();
            for &id in group {
                let mut args = vec!["RAFT.PARTITION"];
                args.extend(others.iter().map(String::as_str));
                if let Err(e) = cluster.query(id, &args) {
                    errors.push(format!("node {id}: {e:#}"));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("RAFT.PARTITION failed on {}", errors.join("; "))
        }
    }

    fn heal(&mut self, cluster: &Cluster) -> Result<()> {
        let mut errors = Vec::new();
        for id in cluster.member_ids() {
            let n = cluster.node(id);
            if !n.is_running() || n.is_paused() {
                continue;
            }
            if let Err(e) = cluster.query(id, &["RAFT.PARTITION"]) {
                errors.push(format!("node {id}: {e:#}"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("healing failed on {}", errors.join("; "))
        }
    }
}
