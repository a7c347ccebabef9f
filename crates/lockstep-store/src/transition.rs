//! One line of a run's timeline.

use lockstep_core::StepState;
use serde::{Deserialize, Serialize};

/// A step transition as kept in the append-only timeline (for reports and `lockstep status`).
/// Records of steps dropped by a re-plan disappear; their transitions stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Position in the run's timeline, from 1, in write order.
    pub seq: u64,
    /// Step id.
    pub step: String,
    /// State entered.
    pub state: StepState,
    /// When it was written, ms since the Unix epoch.
    pub at_ms: u64,
    /// Message of the record written.
    pub message: String,
}
