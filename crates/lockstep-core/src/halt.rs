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
                "fix the condition named above on the node, then `lockstep resume`"
            }
            HaltClass::InventoryMismatch => {
                "correct the inventory (or the fleet) so they agree, then `lockstep run` again"
            }
            HaltClass::VersionMismatch => {
                "inspect the node's Exchange build (Exchange System Manager or the Setup registry key); nothing further was changed; `lockstep resume` once it is right"
            }
            HaltClass::StepFailed => {
                "read the step's output above (and the setup log on the node), fix the cause, then `lockstep resume`"
            }
            HaltClass::NodeUnreachable => {
                "check that the node is up and WinRM answers, then `lockstep resume`"
            }
            HaltClass::BudgetExceeded => {
                "review the failed hosts; `lockstep resume` continues with the remaining ones"
            }
            HaltClass::OperatorStop => "`lockstep resume` continues where the run stopped",
        }
    }
}

impl fmt::Display for HaltClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
