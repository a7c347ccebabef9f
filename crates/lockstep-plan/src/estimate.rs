//! Duration estimates and default timeouts of actions (seconds).

use lockstep_core::{Action, RebootPolicy};

/// Estimated duration of `action` on a cluster of `nodes` nodes, in seconds (for the critical
/// path and ETAs): install of the target 1200, prerequisite hotfix 300, a reboot 300 (added to an
/// install that always restarts), Cluster service stop/start 30, move-group 60, evacuate 90, EVS
/// offline/online 60, EVS upgrade 300, failover test 120 per node visited, services 30,
/// preflight/assert 10, confirm 0.
pub fn estimate_secs(action: &Action) -> u64 {
    match action {
        Action::Install {
            prerequisite,
            reboot,
            ..
        } => {
            let base = if prerequisite.is_some() { 300 } else { 1200 };
            base + if *reboot == RebootPolicy::Always {
                300
            } else {
                0
            }
        }
        Action::Reboot => 300,
        Action::StopClusterService | Action::StartClusterService => 30,
        Action::MoveGroup { .. } => 60,
        Action::EvacuateNode { .. } => 90,
        Action::EvsResourcesOffline { .. } | Action::EvsResourcesOnline { .. } => 60,
        Action::UpgradeVirtualServer { .. } => 300,
        Action::FailoverTest { nodes, .. } => 120 * nodes.len() as u64,
        Action::StopServices { .. } | Action::StartServices { .. } => 30,
        Action::NlbDrain | Action::NlbStart => 30,
        Action::Preflight { .. } | Action::AssertVersion { .. } => 10,
        Action::Confirm { .. } => 0,
    }
}

/// Default timeout of `action` when the step gives none: install 7200, reboot 1800, others 600.
pub fn default_timeout_secs(action: &Action) -> u64 {
    match action {
        Action::Install { .. } => 7200,
        Action::Reboot => 1800,
        _ => 600,
    }
}
