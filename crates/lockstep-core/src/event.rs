//! Events the engine emits while it runs; the CLI renders them (progress, JSON lines, logs).

use serde::{Deserialize, Serialize};

use crate::halt::HaltClass;
use crate::name::Name;
use crate::plan::PlanHash;
use crate::store::{RunId, StepState};

/// Something that happened in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "event")]
pub enum Event {
    /// A run started or resumed.
    RunStarted {
        /// Run.
        run: RunId,
        /// Plan hash.
        plan: PlanHash,
        /// Number of steps.
        steps: usize,
        /// Steps already complete (resume).
        complete: usize,
        /// Whether this is a resume.
        resumed: bool,
    },
    /// A stage started.
    StageStarted {
        /// Stage index.
        stage: usize,
        /// Stage name.
        name: String,
    },
    /// A gate is waiting (approval or soak).
    GateWaiting {
        /// Stage index.
        stage: usize,
        /// What it waits for.
        reason: String,
    },
    /// A step changed state.
    Step {
        /// Step index.
        index: usize,
        /// Step id.
        id: String,
        /// Host.
        host: Name,
        /// New state.
        state: StepState,
        /// Rule id.
        rule: String,
        /// Message (failure reason, skip reason, instructions).
        message: String,
        /// Milliseconds since the run (this controller) started.
        t_ms: u64,
    },
    /// A fact was learnt.
    Fact {
        /// Host.
        host: Name,
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// The run halted.
    Halted {
        /// Class.
        class: HaltClass,
        /// Why.
        reason: String,
        /// What to do next (and what `lockstep resume` will do, or that it cannot help).
        next: String,
        /// What the run changed and what it left out of service ([`crate::Standing`]), or
        /// "nothing was changed".
        standing: String,
    },
    /// The run ended (finished, halted or waiting).
    RunFinished {
        /// Run.
        run: RunId,
        /// Final status word (`finished`, `halted`, `waiting`).
        status: String,
        /// Steps complete / all.
        complete: usize,
        /// All steps.
        total: usize,
    },
}

/// Receives events. Implementations must be cheap: they are called on the engine's path.
pub trait EventSink: Send + Sync {
    /// Handles one event.
    fn emit(&self, event: &Event);
}

/// A sink that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: &Event) {}
}
