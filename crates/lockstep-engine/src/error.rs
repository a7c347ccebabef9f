//! [`EngineError`]: why the engine could not drive a run at all (halts are not errors: they are
//! a [`crate::RunOutcome`]).

use lockstep_core::{PlanHash, RunId, StoreError};

/// A failure of the engine itself.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state store failed; the run stays resumable from its last checkpoint.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `resume` was given a plan whose hash differs from the stored one, without `replan`.
    #[error(
        "the plan of run `{run}` changed (stored `{}`, now `{}`): pass `--replan` to resume with the new plan",
        stored.short(),
        new.short()
    )]
    PlanChanged {
        /// Run.
        run: RunId,
        /// Hash of the stored plan.
        stored: PlanHash,
        /// Hash of the plan given.
        new: PlanHash,
    },
    /// `approve` found nothing waiting.
    #[error("run `{run}` has no gate or step waiting for approval")]
    NothingToApprove {
        /// Run.
        run: RunId,
    },
    /// `approve` was given an id that is neither a step nor an approval gate of the run.
    #[error("run `{run}` has no step or approval gate `{what}`")]
    UnknownApproval {
        /// Run.
        run: RunId,
        /// What was to be approved.
        what: String,
    },
    /// `approve` named a step that is not waiting for the operator now.
    #[error("step `{step}` of run `{run}` is not waiting for the operator (it is {state}); only a waiting step can be approved")]
    NotWaiting {
        /// Run.
        run: RunId,
        /// The step.
        step: String,
        /// Its state.
        state: String,
    },
    /// A step's task panicked (a bug in a runner).
    #[error("step `{step}` of run `{run}` panicked: {detail}")]
    StepPanicked {
        /// Run.
        run: RunId,
        /// Step id.
        step: String,
        /// Panic message, as far as known.
        detail: String,
    },
}
