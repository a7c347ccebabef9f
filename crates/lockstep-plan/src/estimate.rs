//! Duration estimates and default timeouts of actions (seconds), from the action descriptors
//! (`lockstep_core::descriptor`) refined where the parameters matter.

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
        Action::FailoverTest { nodes, .. } => {
            action.descriptor().estimate_secs * nodes.len() as u64
        }
        // A generic step that restarts the node on some exit codes: count the restart.
        Action::Command { judge, .. } | Action::Powershell { judge, .. }
            if !judge.restart_exit_codes.is_empty() =>
        {
            action.descriptor().estimate_secs + 300
        }
        // Every other action: its descriptor's figure.
        _ => action.descriptor().estimate_secs,
    }
}

/// Default timeout of `action` when the step gives none (its descriptor's: install 7200,
/// reboot and wait-until 1800, others 600).
pub fn default_timeout_secs(action: &Action) -> u64 {
    action.descriptor().default_timeout_secs
}
