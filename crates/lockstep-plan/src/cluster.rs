//! A cluster's live state while its steps are expanded: group owners, Cluster service up or
//! down, upgraded nodes and EVSs, and the checks of each step against it (no node stopped or
//! updated while it owns a group, one node out of service, a group online only on an upgraded
//! node; groups stay where they are with `failover: false`).

use std::sync::Arc;

use lockstep_core::{Action, Cluster, Name, Shape, StepIndex, StepSpec};
use minijinja::value::Value;

use crate::error::PlanError;
use crate::order::NodeOrder;
use crate::template::Layer;

/// Live state of one cluster while its steps are expanded.
pub(crate) struct ClusterState<'f> {
    pub(crate) cluster: &'f Cluster,
    /// Host index of each node (parallel to `cluster.nodes`).
    pub(crate) nodes: Vec<usize>,
    pub(crate) order: NodeOrder,
    /// Group names: the cluster group, then each EVS group.
    pub(crate) groups: Vec<&'f Name>,
    /// Owner (node position) of each group.
    pub(crate) owner: Vec<Option<usize>>,
    /// Cluster service up, per node position.
    pub(crate) up: Vec<bool>,
    /// Target installed in this plan, per node position.
    pub(crate) upgraded: Vec<bool>,
    /// EVS upgraded, per group (index 0, the cluster group, never).
    pub(crate) evs_upgraded: Vec<bool>,
    /// The step that stopped a node's Cluster service, per node position.
    pub(crate) stopped_by: Vec<Option<StepIndex>>,
    /// Template values of the cluster, built once.
    pub(crate) layers: ClusterLayers,
}

/// Template values of one cluster: shared by all its steps' contexts.
pub(crate) struct ClusterLayers {
    /// `first_node`, `cluster`, `cluster_group`.
    pub(crate) cluster: Layer,
    /// `peer` of each node position (node-scoped steps).
    pub(crate) peer: Vec<Layer>,
    /// `peer` of the first node (cluster- and EVS-scoped steps).
    pub(crate) wide_peer: Layer,
    /// `evs`, `group` of each EVS.
    pub(crate) evs: Vec<Layer>,
}

impl ClusterLayers {
    pub(crate) fn new(c: &Cluster, order: &NodeOrder) -> ClusterLayers {
        let v = |s: &Name| Value::from(s.as_str());
        let first = order.order.first().copied().unwrap_or(0);
        let peer_of = |pos: usize| {
            let i = order.order.iter().position(|&p| p == pos).unwrap_or(0);
            order.peers.get(i).copied().unwrap_or(pos)
        };
        let one = |k: &'static str, val: Value| -> Layer { Arc::from(vec![(k, val)]) };
        ClusterLayers {
            cluster: Arc::from(vec![
                ("first_node", v(&c.nodes[first])),
                ("cluster", v(&c.name)),
                ("cluster_group", v(&c.cluster_group)),
            ]),
            peer: (0..c.nodes.len())
                .map(|p| one("peer", v(&c.nodes[peer_of(p)])))
                .collect(),
            wide_peer: one("peer", v(&c.nodes[peer_of(first)])),
            evs: c
                .virtual_servers
                .iter()
                .map(|e| Arc::from(vec![("evs", v(&e.name)), ("group", v(&e.group))]))
                .collect(),
        }
    }
}

impl ClusterState<'_> {
    pub(crate) fn pos_of_host(&self, host: usize) -> Option<usize> {
        self.nodes.iter().position(|&h| h == host)
    }

    pub(crate) fn pos_of_name(&self, name: &str) -> Option<usize> {
        self.cluster
            .nodes
            .iter()
            .position(|n| n.eq_ignore_case(name))
    }

    pub(crate) fn group_of_name(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.eq_ignore_case(name))
    }

    pub(crate) fn first(&self) -> usize {
        self.order.order[0]
    }

    pub(crate) fn first_peer(&self) -> usize {
        self.order.peers[0]
    }

    /// Checks a cluster step against the cluster's state at that point and updates the state.
    /// Returns the errors (none: the step can be planned).
    pub(crate) fn apply(
        &mut self,
        shape: &Shape,
        spec: &StepSpec,
        hi: usize,
        action: &mut Action,
        index: StepIndex,
        label: &dyn Fn() -> String,
    ) -> Vec<PlanError> {
        let cs = self;
        let Some(pos) = cs.pos_of_host(hi) else {
            return Vec::new();
        };
        let mut errors = Vec::new();
        let wide = action.descriptor().needs_cluster_service();
        if wide && !cs.up[pos] {
            errors.push(PlanError::NodeDown {
                step: spec.id.to_string(),
                unit: label(),
                node: cs.cluster.nodes[pos].to_string(),
            });
        }
        if !shape.failover && action.descriptor().moves_groups() {
            errors.push(PlanError::MoveWithoutFailover {
                step: spec.id.to_string(),
                unit: label(),
                action: action.kind(),
            });
        }
        let ck = Checker {
            step: &spec.id,
            label,
        };
        match action {
            Action::MoveGroup { group, to } => {
                let g = ck.group(cs, group, false, &mut errors);
                let t = ck.node(cs, to, &mut errors);
                if let (Some(g), Some(t)) = (g, t) {
                    if cs.evs_upgraded[g] && !cs.upgraded[t] {
                        errors.push(ck.not_upgraded(cs, g, t));
                    }
                    cs.owner[g] = Some(t);
                }
            }
            Action::EvacuateNode { to, .. } => {
                if let Some(t) = ck.node(cs, to, &mut errors) {
                    for g in 0..cs.groups.len() {
                        if cs.owner[g] == Some(pos) {
                            if cs.evs_upgraded[g] && !cs.upgraded[t] {
                                errors.push(ck.not_upgraded(cs, g, t));
                            }
                            cs.owner[g] = Some(t);
                        }
                    }
                }
            }
            Action::EvsResourcesOffline { group } => {
                ck.group(cs, group, true, &mut errors);
            }
            Action::EvsResourcesOnline { group } => {
                if let Some(g) = ck.group(cs, group, true, &mut errors) {
                    if let Some(o) = cs.owner[g] {
                        if cs.evs_upgraded[g] && !cs.upgraded[o] {
                            errors.push(ck.not_upgraded(cs, g, o));
                        }
                    }
                }
            }
            Action::UpgradeVirtualServer { group, .. } => {
                if let Some(g) = ck.group(cs, group, true, &mut errors) {
                    // T2: the EVS on an upgraded node, the upgrade run from an upgraded node.
                    let o = cs.owner[g].unwrap_or(pos);
                    if !cs.upgraded[o] {
                        errors.push(ck.not_upgraded(cs, g, o));
                    } else if !cs.upgraded[pos] {
                        errors.push(ck.not_upgraded(cs, g, pos));
                    }
                    cs.evs_upgraded[g] = true;
                }
            }
            Action::FailoverTest { group, nodes } => {
                if let Some(g) = ck.group(cs, group, false, &mut errors) {
                    for n in nodes.iter_mut() {
                        if let Some(p) = ck.node(cs, n, &mut errors) {
                            if cs.evs_upgraded[g] && !cs.upgraded[p] {
                                errors.push(ck.not_upgraded(cs, g, p));
                            }
                        }
                    }
                }
            }
            Action::StopClusterService | Action::Install { .. } | Action::Reboot => {
                // The groups leave the node before it is stopped or updated (E3-C), unless the
                // shape never fails over.
                if shape.failover {
                    if let Some(g) = (0..cs.groups.len()).find(|&g| cs.owner[g] == Some(pos)) {
                        errors.push(PlanError::NodeStillOwns {
                            step: spec.id.to_string(),
                            unit: label(),
                            action: action.kind(),
                            node: cs.cluster.nodes[pos].to_string(),
                            group: cs.groups[g].to_string(),
                        });
                    }
                }
                match action {
                    Action::StopClusterService => {
                        if cs.up[pos] {
                            cs.stopped_by[pos] = Some(index);
                        }
                        cs.up[pos] = false;
                    }
                    Action::Install {
                        prerequisite: None, ..
                    } => cs.upgraded[pos] = true,
                    _ => {}
                }
            }
            Action::StartClusterService => {
                cs.up[pos] = true;
                cs.stopped_by[pos] = None;
            }
            // Listed, not caught: these change no group owner, Cluster service or build the
            // planner follows. A generic step's effect on availability is declared and marked
            // by the out-of-service windows; a new action must be added here deliberately.
            Action::Stage { .. }
            | Action::StopServices { .. }
            | Action::StartServices { .. }
            | Action::AssertVersion { .. }
            | Action::Preflight { .. }
            | Action::Confirm { .. }
            | Action::NlbDrain
            | Action::NlbStart
            | Action::Command { .. }
            | Action::Powershell { .. }
            | Action::WaitUntil { .. }
            | Action::Assert { .. } => {}
        }
        errors
    }
}

/// Validates names a cluster step refers to, recording errors against the step.
struct Checker<'s> {
    step: &'s Name,
    label: &'s dyn Fn() -> String,
}

impl Checker<'_> {
    /// A node of the cluster whose Cluster service is up; rewritten to the inventory's spelling.
    fn node(
        &self,
        cs: &ClusterState<'_>,
        n: &mut Name,
        errors: &mut Vec<PlanError>,
    ) -> Option<usize> {
        let Some(p) = cs.pos_of_name(n.as_str()) else {
            errors.push(PlanError::NotANode {
                step: self.step.to_string(),
                unit: (self.label)(),
                node: n.to_string(),
                cluster: cs.cluster.name.to_string(),
            });
            return None;
        };
        *n = cs.cluster.nodes[p].clone();
        if !cs.up[p] {
            errors.push(PlanError::NodeDown {
                step: self.step.to_string(),
                unit: (self.label)(),
                node: n.to_string(),
            });
        }
        Some(p)
    }

    /// A group of the cluster (an EVS group when `evs_only`).
    fn group(
        &self,
        cs: &ClusterState<'_>,
        g: &Name,
        evs_only: bool,
        errors: &mut Vec<PlanError>,
    ) -> Option<usize> {
        match cs.group_of_name(g.as_str()) {
            Some(i) if !evs_only || i > 0 => Some(i),
            _ => {
                errors.push(PlanError::NotAGroup {
                    step: self.step.to_string(),
                    unit: (self.label)(),
                    group: g.to_string(),
                    cluster: cs.cluster.name.to_string(),
                });
                None
            }
        }
    }

    fn not_upgraded(&self, cs: &ClusterState<'_>, g: usize, node: usize) -> PlanError {
        PlanError::NotUpgraded {
            step: self.step.to_string(),
            unit: (self.label)(),
            group: cs.groups[g].to_string(),
            node: cs.cluster.nodes[node].to_string(),
        }
    }
}
