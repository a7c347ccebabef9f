//! The Lockstep executor: runs a [`lockstep_core::Plan`] with durable checkpoints, halts, gates
//! and resume.
//!
//! [`Engine`] starts, resumes and approves runs. A drive (the private `Executor`) runs the
//! plan's stages in order behind their gates (approval, soak); within a stage it starts every
//! step whose `after` steps are complete, concurrently, with at most the stage's
//! `max_parallel_sites` sites and the plan's `max_parallel_per_site` units (cluster, pool or host
//! chains) per site active at once. Every step transition is written to the
//! [`lockstep_core::StateStore`] before the next remote action starts, so that [`Engine::resume`]
//! can re-probe what a dead controller left running and never run a finished step again. Halts
//! (a failed step over the failure budget, a live check of the runner before a stage starts, an
//! operator [`StopSignal`]) stop at a safe point: nothing new starts, running steps finish. The
//! engine holds no rule of KB 328839: rules reach it through the plan and the runner.
//!
//! The engine reaches nodes only through the step-runner contract of `lockstep-core`
//! ([`StepRunner`], re-exported in [`runner`]), which the actions crate implements with the
//! same types; it must never depend on WinRM, SQLite, the lab or the actions crate.
#![deny(missing_docs)]

mod engine;
mod error;
mod executor;
mod graph;
mod options;
mod outcome;
pub mod runner;
mod step_task;
mod stop;

pub use engine::{approve, Engine};
pub use error::EngineError;
pub use options::EngineOptions;
pub use outcome::RunOutcome;
pub use runner::{FactOut, Outcome, Probe, StageHalt, StepError, StepRunner};
pub use stop::StopSignal;
