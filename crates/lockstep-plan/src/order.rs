//! Node order of a cluster (the shape's `node_order`): which node goes first, which follow, and
//! where each node's groups go (`peer`).

use lockstep_core::{Cluster, NodeOrderKind};

/// The order in which a cluster's nodes are upgraded, by index in [`Cluster::nodes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOrder {
    /// Node indices in the declared order; the first is `first_node`.
    pub order: Vec<usize>,
    /// `peer` of each node, parallel to `order`: where its groups are moved.
    pub peers: Vec<usize>,
}

/// The node owning the most of the given groups; ties go to inventory order.
fn busiest(counts: &[usize], exclude: Option<usize>) -> Option<usize> {
    (0..counts.len())
        .filter(|&i| Some(i) != exclude)
        .min_by_key(|&i| (std::cmp::Reverse(counts[i]), i))
}

impl NodeOrder {
    /// Orders `cluster`'s nodes as the playbook's shape declares (`node_order`, passive-first
    /// when absent). `owner_of_group(g)` is the index of the node that owns group `g` now (live
    /// override or inventory), or `None` if unknown.
    ///
    /// - `passive-first`: first = a node owning no group (passive) if any, else the node owning
    ///   the fewest; its peer = the node owning the most groups among the others (the current
    ///   owner); the others follow in inventory order with the first node as peer.
    /// - `active-last`: the passive node(s) first, the active node (owner of the virtual-server
    ///   groups) last, the first node's groups going to it.
    /// - `owners-first`: node A = owner of the first virtual server, then node B (owner of
    ///   another one), its peer; then the rest.
    /// - `active-first`: the active node first, then the passive ones.
    /// - `by-name` and `fewest-groups-first` order every node so; the first node's peer is the
    ///   node owning the most groups among the others.
    pub fn declared(
        declared: Option<NodeOrderKind>,
        cluster: &Cluster,
        owner_of_group: impl Fn(&str) -> Option<usize>,
    ) -> NodeOrder {
        let n = cluster.nodes.len();
        let mut all = vec![0usize; n];
        let mut evs = vec![0usize; n];
        if let Some(o) = owner_of_group(cluster.cluster_group.as_str()) {
            all[o] += 1;
        }
        for v in &cluster.virtual_servers {
            if let Some(o) = owner_of_group(v.group.as_str()) {
                all[o] += 1;
                evs[o] += 1;
            }
        }
        // Other roles (file servers, SQL Server instances) count like any group a node owns.
        for g in &cluster.groups {
            if let Some(o) = owner_of_group(g.name.as_str()) {
                all[o] += 1;
            }
        }
        let active = || {
            if evs.iter().any(|&c| c > 0) {
                busiest(&evs, None).unwrap_or(0)
            } else {
                busiest(&all, None).unwrap_or(0)
            }
        };
        let rest =
            |skip: &[usize]| -> Vec<usize> { (0..n).filter(|i| !skip.contains(i)).collect() };
        let sorted = |order: Vec<usize>| {
            let first = order.first().copied().unwrap_or(0);
            let peer = busiest(&all, Some(first)).unwrap_or(first);
            (first, peer, order)
        };
        let kind = declared.unwrap_or(NodeOrderKind::PassiveFirst);
        match kind {
            NodeOrderKind::ByName => {
                let mut v: Vec<usize> = (0..n).collect();
                v.sort_by(|&a, &b| {
                    cluster.nodes[a]
                        .as_str()
                        .to_ascii_lowercase()
                        .cmp(&cluster.nodes[b].as_str().to_ascii_lowercase())
                });
                let (first, first_peer, order) = sorted(v);
                return Self::with_peers(order, first, first_peer);
            }
            NodeOrderKind::FewestGroupsFirst => {
                let mut v: Vec<usize> = (0..n).collect();
                v.sort_by_key(|&i| (all[i], i));
                let (first, first_peer, order) = sorted(v);
                return Self::with_peers(order, first, first_peer);
            }
            _ => {}
        }
        let (first, first_peer, order) = match kind {
            NodeOrderKind::ActiveLast => {
                let a = active();
                let mut order: Vec<usize> = rest(&[a]);
                order.push(a);
                (order[0], a, order)
            }
            NodeOrderKind::OwnersFirst => {
                let a = cluster
                    .virtual_servers
                    .first()
                    .and_then(|v| owner_of_group(v.group.as_str()))
                    .unwrap_or_else(active);
                let b = cluster
                    .virtual_servers
                    .iter()
                    .filter_map(|v| owner_of_group(v.group.as_str()))
                    .find(|&o| o != a)
                    .or_else(|| rest(&[a]).first().copied())
                    .unwrap_or(a);
                let mut order = vec![a];
                if b != a {
                    order.push(b);
                }
                order.extend(rest(&[a, b]));
                (a, b, order)
            }
            NodeOrderKind::ActiveFirst => {
                let a = active();
                let mut order = vec![a];
                order.extend(rest(&[a]));
                (a, order.get(1).copied().unwrap_or(a), order)
            }
            _ => {
                let first = (0..n).min_by_key(|&i| (all[i], i)).unwrap_or(0);
                let peer = busiest(&all, Some(first)).unwrap_or(first);
                let mut order = vec![first];
                order.extend(rest(&[first]));
                (first, peer, order)
            }
        };
        Self::with_peers(order, first, first_peer)
    }

    fn with_peers(order: Vec<usize>, first: usize, first_peer: usize) -> NodeOrder {
        let peers = order
            .iter()
            .map(|&i| if i == first { first_peer } else { first })
            .collect();
        NodeOrder { order, peers }
    }
}
