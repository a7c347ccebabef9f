//! [`RunOutcome`]: how a drive of a run ended.

use lockstep_core::{HaltClass, RunId};

/// How `start`/`resume` ended (the same as the run's stored status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every step is complete.
    Finished {
        /// Run.
        run: RunId,
    },
    /// The run halted at a safe point; `resume` continues it.
    Halted {
        /// Run.
        run: RunId,
        /// The class.
        class: HaltClass,
        /// Why.
        reason: String,
    },
    /// The run waits for `approve` (a gate or operator steps), then `resume`.
    Waiting {
        /// Run.
        run: RunId,
        /// What it waits for.
        reason: String,
    },
}

impl RunOutcome {
    /// The run.
    pub fn run(&self) -> &RunId {
        match self {
            RunOutcome::Finished { run }
            | RunOutcome::Halted { run, .. }
            | RunOutcome::Waiting { run, .. } => run,
        }
    }
}
