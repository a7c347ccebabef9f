//! The seam between the engine and the actions: the step-runner contract lives in
//! `lockstep-core` ([`lockstep_core::step`]), re-exported here for the engine's users. The
//! engine never depends on the actions crate.

pub use lockstep_core::step::{FactOut, Outcome, Probe, StageHalt, StepError, StepRunner};
