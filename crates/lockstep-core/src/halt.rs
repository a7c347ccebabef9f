//! Why a run stopped before its end.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The class of a halt: decides the message, the exit code and what the operator does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HaltClass {
    /// A precondition did not hold (G5, G6, T2, the Cluster service state...).
    Precondition,
    /// Live discovery disagrees with the inventory; nothing was changed.
    InventoryMismatch,
    /// A build is not the one expected (after install, across a cluster, the EVS, E2-ED edition).
    VersionMismatch,
    /// A step failed (installer exit code, cluster.exe error).
    StepFailed,
    /// A node did not answer (or did not come back from a reboot).
    NodeUnreachable,
    /// More hosts failed than the failure budget allows.
    BudgetExceeded,
    /// The operator stopped the run (Ctrl-C, `lockstep stop`).
    OperatorStop,
}

impl HaltClass {
    /// Every class.
    pub const ALL: [HaltClass; 7] = [
        HaltClass::Precondition,
        HaltClass::InventoryMismatch,
        HaltClass::VersionMismatch,
        HaltClass::StepFailed,
        HaltClass::NodeUnreachable,
        HaltClass::BudgetExceeded,
        HaltClass::OperatorStop,
    ];

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            HaltClass::Precondition => "precondition",
            HaltClass::InventoryMismatch => "inventory-mismatch",
            HaltClass::VersionMismatch => "version-mismatch",
            HaltClass::StepFailed => "step-failed",
            HaltClass::NodeUnreachable => "node-unreachable",
            HaltClass::BudgetExceeded => "budget-exceeded",
            HaltClass::OperatorStop => "operator-stop",
        }
    }

    /// What the operator does next, in one sentence.
    pub fn next_step(self) -> &'static str {
        match self {
            HaltClass::Precondition => {
                "fix the condition the reason names on the node, then `lockstep resume`: it checks again, probes any step left running, and goes on"
            }
            HaltClass::InventoryMismatch => {
                "correct the inventory (or the fleet) so they agree, then `lockstep resume`: it reads the inventory and the fleet again before any change"
            }
            HaltClass::VersionMismatch => {
                "inspect the Exchange build the reason names (Exchange System Manager or the Setup registry key) and bring it to what the rule needs; `lockstep resume` checks again and goes on, it never changes a build itself"
            }
            HaltClass::StepFailed => {
                "read the failed step's output (`lockstep status RUN`) and the setup log on the node, fix the cause, then `lockstep resume`: it probes the failed step and runs it again only if it is not done"
            }
            HaltClass::NodeUnreachable => {
                "check that the node is up and WinRM answers, then `lockstep resume`: it probes the step it could not finish"
            }
            HaltClass::BudgetExceeded => {
                "review the failed hosts; `lockstep resume` probes their failed steps and continues with the remaining ones"
            }
            HaltClass::OperatorStop => {
                "`lockstep resume` probes any step left running and continues where the run stopped"
            }
        }
    }
}

impl fmt::Display for HaltClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a run stands on the fleet after a halt, from its plan and step states: what it changed
/// and what it left out of service. Halt texts, `status` and reports say it the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    /// Hosts on which a change step is done, in plan order.
    pub changed_hosts: Vec<crate::Name>,
    /// Change steps done.
    pub changed_steps: usize,
    /// What is out of service now, one phrase each (`the Cluster service of `SEA-N2` is stopped`).
    pub out_of_service: Vec<String>,
    /// Change steps left running or failed: their effect on the node is unknown until probed.
    pub uncertain: Vec<String>,
}

impl Standing {
    /// The standing of `plan` with `states[i]` the state of step `i` (missing: pending).
    pub fn of(plan: &crate::Plan, states: &[crate::StepState]) -> Standing {
        use crate::{Action, StepState};
        let mut s = Standing::default();
        // Open "taken down" items: (key, phrase); a later done step that restores them closes them.
        let mut open: Vec<(String, String)> = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            let state = states.get(i).copied().unwrap_or(StepState::Pending);
            if !step.action.is_change() {
                continue;
            }
            let h = &step.host;
            match state {
                StepState::Done => {}
                StepState::Running | StepState::Failed => {
                    s.uncertain.push(format!(
                        "step `{}` on `{h}` {} (its effect is probed on resume)",
                        step.id,
                        if state == StepState::Running {
                            "was left running"
                        } else {
                            "failed"
                        }
                    ));
                    if !s.changed_hosts.contains(h) {
                        s.changed_hosts.push(h.clone());
                    }
                    continue;
                }
                _ => continue,
            }
            s.changed_steps += 1;
            if !s.changed_hosts.contains(h) {
                s.changed_hosts.push(h.clone());
            }
            let key_host = h.as_str().to_ascii_lowercase();
            let group_key = |g: &crate::Name| format!("group/{}", g.as_str().to_ascii_lowercase());
            // (key, Some(phrase)) opens an item, (key, None) closes it.
            let item: Option<(String, Option<String>)> = match &step.action {
                Action::StopClusterService => Some((
                    format!("clussvc/{key_host}"),
                    Some(format!("the Cluster service of `{h}` is stopped")),
                )),
                Action::StartClusterService => Some((format!("clussvc/{key_host}"), None)),
                Action::StopServices { services } => Some((
                    format!("services/{key_host}"),
                    Some(format!(
                        "services {} of `{h}` are stopped",
                        services
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                )),
                Action::StartServices { .. } => Some((format!("services/{key_host}"), None)),
                Action::EvsResourcesOffline { group } => Some((
                    group_key(group),
                    Some(format!("the Exchange resources of `{group}` are offline")),
                )),
                Action::EvsResourcesOnline { group } => Some((group_key(group), None)),
                Action::NlbDrain => Some((
                    format!("nlb/{key_host}"),
                    Some(format!("`{h}` is drained from its NLB cluster")),
                )),
                Action::NlbStart => Some((format!("nlb/{key_host}"), None)),
                _ => None,
            };
            match item {
                Some((key, Some(phrase))) => {
                    open.retain(|(k, _)| *k != key);
                    open.push((key, phrase));
                }
                Some((key, None)) => open.retain(|(k, _)| *k != key),
                None => {}
            }
        }
        s.out_of_service = open.into_iter().map(|(_, p)| p).collect();
        s
    }

    /// Whether the run changed nothing at all.
    pub fn nothing_changed(&self) -> bool {
        self.changed_steps == 0 && self.uncertain.is_empty()
    }

    /// One paragraph: what changed, what is out of service, what is uncertain.
    pub fn describe(&self) -> String {
        if self.nothing_changed() {
            return "nothing was changed".to_owned();
        }
        let mut parts = vec![format!(
            "changed so far: {} step(s) on {}",
            self.changed_steps,
            self.changed_hosts
                .iter()
                .map(|h| format!("`{h}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )];
        if self.out_of_service.is_empty() {
            parts.push("nothing is left out of service".to_owned());
        } else {
            parts.push(format!(
                "out of service now: {}",
                self.out_of_service.join("; ")
            ));
        }
        parts.extend(self.uncertain.iter().cloned());
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::Standing;
    use crate::{Action, Name, Plan, PlannedStep, Role, StepState};

    fn step(id: &str, host: &str, action: Action) -> PlannedStep {
        PlannedStep {
            id: id.to_owned(),
            spec: Name::ident("s").unwrap(),
            name: id.to_owned(),
            rule: "G5".to_owned(),
            stage: 0,
            site: Name::ident("site").unwrap(),
            cluster: None,
            pool: None,
            host: Name::host(host).unwrap(),
            role: Role::Standalone,
            out_of_service: false,
            action,
            after: Vec::new(),
            timeout_secs: 60,
            estimate_secs: 1,
        }
    }

    #[test]
    fn standing_names_what_is_down_until_it_is_restored() {
        let plan = Plan {
            steps: vec![
                step("N1/stop-clussvc", "N1", Action::StopClusterService),
                step("N1/install", "N1", Action::Reboot),
                step("N1/start-clussvc", "N1", Action::StartClusterService),
            ],
            playbook: Name::ident("pb").unwrap(),
            procedure: "rolling".into(),
            shape: Default::default(),
            invariants: Default::default(),
            target: Some(crate::Version::new(6, 5, 7638, 2)),
            stages: Vec::new(),
            max_parallel_per_site: 0,
            failure_budget: Default::default(),
            hash: crate::PlanHash(String::new()),
        };
        use StepState::*;
        assert!(Standing::of(&plan, &[]).nothing_changed());
        assert_eq!(Standing::of(&plan, &[]).describe(), "nothing was changed");
        let s = Standing::of(&plan, &[Done, Failed, Pending]);
        assert_eq!(s.changed_steps, 1);
        assert_eq!(s.out_of_service, ["the Cluster service of `N1` is stopped"]);
        assert_eq!(s.uncertain.len(), 1);
        let s = Standing::of(&plan, &[Done, Done, Done]);
        assert!(s.out_of_service.is_empty() && s.uncertain.is_empty());
        assert!(s.describe().contains("nothing is left out of service"));
    }
}
