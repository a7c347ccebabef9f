//! [`discover`]: what the fleet really runs (builds, editions, Cluster service, boot times,
//! group owners), and [`Discovery::differences`] against the inventory.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use futures::stream::{self, StreamExt};

use lockstep_core::{Edition, Fleet, Name, Transport, Version};

use crate::error::ActionError;
use crate::parse::SERVICE_RUNNING;
use crate::remote::{get_ci, Node, ServiceState};
use crate::render::SC_QUERY_CLUSSVC;

type NodeRead<'a> =
    Pin<Box<dyn Future<Output = (&'a Name, Result<NodeFacts, ActionError>)> + Send + 'a>>;

/// Hosts read at once during discovery.
const DISCOVERY_CONCURRENCY: usize = 16;

/// What one node reported.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeFacts {
    /// Installed Exchange build (registry), if it could be read.
    pub build: Option<Version>,
    /// Installed edition (registry), if the key names one.
    pub edition: Option<Edition>,
    /// Whether the Cluster service runs (`sc query clussvc` state 4); `None` for hosts that are
    /// not cluster nodes in the inventory.
    pub cluster_service: Option<bool>,
    /// `LastBootUpTime` (CIM datetime).
    pub boot_time: Option<String>,
}

/// The live state of the discovered hosts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Discovery {
    /// Host name (as in the inventory) -> what it reported.
    pub nodes: BTreeMap<String, NodeFacts>,
    /// `CLUSTER/GROUP` (group name as the cluster reports it) -> owner node. Keyed by cluster:
    /// every cluster has its own `Cluster Group`.
    pub owners: BTreeMap<String, String>,
    /// Hosts (or clusters, when no node could answer for them) that could not be read, with why.
    pub unreachable: Vec<(String, String)>,
}

/// Reads every host of `hosts` (registry build and edition, Cluster service state for cluster
/// nodes, boot time), at most 16 hosts at once, then the group owners of every cluster they
/// belong to, asked of a node whose Cluster service runs. A host that fails is listed in
/// `unreachable` and the rest go on; discovery itself never fails.
pub async fn discover(t: &dyn Transport, fleet: &Fleet, hosts: &[Name]) -> Discovery {
    let mut d = Discovery::default();
    let mut clusters: Vec<Name> = Vec::new();
    for host in hosts {
        if let Some(c) = fleet.host(host.as_str()).and_then(|h| h.cluster.clone()) {
            if !clusters.contains(&c) {
                clusters.push(c);
            }
        }
    }
    // Hosts are read concurrently (bounded), results kept in `hosts` order.
    // Boxed as `Send` futures: the engine may run discovery on a multi-threaded runtime (a
    // closure-built stream would not be provably `Send` across its lifetimes).
    let reads: Vec<NodeRead<'_>> = hosts
        .iter()
        .map(|host| {
            let is_node = fleet
                .host(host.as_str())
                .is_some_and(|h| h.cluster.is_some());
            Box::pin(async move { (host, node_facts(t, host, is_node).await) }) as NodeRead<'_>
        })
        .collect();
    let results: Vec<(&Name, Result<NodeFacts, ActionError>)> = stream::iter(reads)
        .buffered(DISCOVERY_CONCURRENCY)
        .collect()
        .await;
    for (host, r) in results {
        match r {
            Ok(f) => {
                d.nodes.insert(host.to_string(), f);
            }
            Err(e) => {
                tracing::warn!(host = %host, error = %e, "discovery failed");
                d.unreachable.push((host.to_string(), e.message));
            }
        }
    }
    for cname in clusters {
        let Some(cluster) = fleet.cluster(cname.as_str()) else {
            continue;
        };
        // Only a node whose Cluster service runs answers root/MSCluster; prefer the nodes just
        // read as up, then any other node of the cluster.
        let mut candidates: Vec<&Name> = cluster
            .nodes
            .iter()
            .filter(|n| {
                d.nodes
                    .get(n.as_str())
                    .is_some_and(|f| f.cluster_service == Some(true))
            })
            .collect();
        candidates.extend(cluster.nodes.iter().filter(|n| {
            !d.nodes.contains_key(n.as_str()) && !d.unreachable.iter().any(|(h, _)| h == n.as_str())
        }));
        let mut last_err = String::from("no node of the cluster has its Cluster service running");
        let mut found = false;
        for n in candidates {
            match Node::new(t, n).owners().await {
                Ok(o) => {
                    d.owners.extend(
                        o.into_iter()
                            .map(|(g, n)| (format!("{}/{g}", cluster.name), n)),
                    );
                    found = true;
                    break;
                }
                Err(e) => last_err = e.message,
            }
        }
        if !found {
            d.unreachable.push((
                cluster.name.to_string(),
                format!(
                    "the group owners of cluster `{}` could not be read: {last_err}",
                    cluster.name
                ),
            ));
        }
    }
    d
}

async fn node_facts(
    t: &dyn Transport,
    host: &Name,
    is_node: bool,
) -> Result<NodeFacts, ActionError> {
    let node = Node::new(t, host);
    let b = node.build().await?;
    let cluster_service = if is_node {
        match node.service_state(SC_QUERY_CLUSSVC).await? {
            ServiceState::Missing => Some(false),
            ServiceState::State(s) => Some(s == SERVICE_RUNNING),
        }
    } else {
        None
    };
    let boot_time = node.boot_time().await.ok();
    Ok(NodeFacts {
        build: Some(b.build),
        edition: b.edition,
        cluster_service,
        boot_time,
    })
}

impl Discovery {
    /// Where the live fleet disagrees with the inventory, one sentence each, for the hosts in
    /// `hosts` and their clusters: product line, edition, an installed build OLDER than the
    /// inventory gives (newer is progress), every cluster group and EVS group the inventory lists
    /// existing, and an active/passive cluster keeping a passive node. Live owners are planning
    /// input, not differences. Hosts that could not be read are not differences (they are in
    /// `unreachable`). Empty = agree.
    pub fn differences(&self, fleet: &Fleet, hosts: &[Name]) -> Vec<String> {
        let mut out = Vec::new();
        let mut clusters: Vec<&Name> = Vec::new();
        for host in hosts {
            let Some(inv) = fleet.host(host.as_str()) else {
                out.push(format!("host `{host}` is not in the inventory"));
                continue;
            };
            if let Some(c) = &inv.cluster {
                if !clusters.contains(&c) {
                    clusters.push(c);
                }
            }
            let Some(live) = self.nodes.get(host.as_str()) else {
                continue;
            };
            let Some(x) = &inv.exchange else {
                continue;
            };
            if let Some(b) = live.build {
                if !x.product.owns(b) {
                    out.push(format!(
                        "host `{host}`: the inventory says {}, the node runs build {b}",
                        x.product
                    ));
                } else if let Some(ib) = x.build {
                    // Newer than the inventory says is progress (an earlier run, a manual
                    // install): the probes skip what is done. Older means the inventory is wrong.
                    if b < ib {
                        out.push(format!(
                            "host `{host}`: the inventory says build {ib}, the node runs the older {b} ({})",
                            x.product.describe(b)
                        ));
                    }
                }
            }
            if let Some(e) = live.edition {
                if e != x.edition {
                    out.push(format!(
                        "host `{host}`: the inventory says edition {}, the node runs {e}",
                        x.edition
                    ));
                }
            }
        }
        for cname in clusters {
            let Some(c) = fleet.cluster(cname.as_str()) else {
                continue;
            };
            if self
                .unreachable
                .iter()
                .any(|(h, _)| c.name.eq_ignore_case(h))
            {
                continue; // owners unknown: already reported as unreachable
            }
            // Owners themselves are a planning input taken live (groups fail over); what must
            // agree is that every group exists and, on an active/passive cluster (N+1 included:
            // at least one passive node), that some node hosts no Exchange virtual server.
            let live_owner =
                |group: &Name| get_ci(&self.owners, &format!("{}/{}", c.name, group)).cloned();
            let groups =
                std::iter::once(&c.cluster_group).chain(c.virtual_servers.iter().map(|v| &v.group));
            for group in groups {
                if live_owner(group).is_none() {
                    out.push(format!(
                        "cluster `{}`: group `{group}` was not found on the cluster",
                        c.name
                    ));
                }
            }
            if c.mode == lockstep_core::ClusterMode::ActivePassive {
                let mut evs_nodes: Vec<String> = c
                    .virtual_servers
                    .iter()
                    .filter_map(|v| live_owner(&v.group))
                    .map(|n| n.to_ascii_uppercase())
                    .collect();
                evs_nodes.sort();
                evs_nodes.dedup();
                if !c.nodes.is_empty() && evs_nodes.len() >= c.nodes.len() {
                    out.push(format!(
                        "cluster `{}`: the inventory says active/passive, but every node hosts an Exchange virtual server ({}): no node is passive",
                        c.name,
                        evs_nodes.join(", ")
                    ));
                }
            }
        }
        out
    }
}
