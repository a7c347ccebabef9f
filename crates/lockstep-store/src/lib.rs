//! Durable run state for Lockstep: the SQLite implementation of [`lockstep_core::StateStore`].
//!
//! [`SqliteStore`] keeps every run of a state file in one SQLite database in WAL mode: the plan
//! and its hash, the latest record of every step, an append-only timeline of step
//! [`Transition`]s, facts learnt on nodes and approvals; and, outside any run, the facts
//! `lockstep facts` read from the fleet, each with its time (`fleet_facts`). Every write is one
//! transaction and is durable when the call returns: it survives a crash of the controller process
//! (`synchronous=NORMAL` in WAL mode by default; `FULL` also survives a power loss, see
//! [`Durability`] for the figures behind the choice). The schema
//! evolves through add-only migrations keyed by `PRAGMA user_version`. A controller takes a run
//! with [`StateStore::lock_run`](lockstep_core::StateStore::lock_run): an exclusive OS file lock
//! ([`RunGuard`]) next to the state file, released by the OS if the controller dies.
//!
//! Run ids ([`new_run_id`]) are `r` + UTC `YYYYMMDD-HHMMSS` + `-` + 4 random hex digits.
//!
//! This crate depends on `lockstep-core` only among the workspace crates: it must never name the
//! engine, WinRM or the lab, and it never stores credentials (none reach it).
#![deny(missing_docs)]

mod batch;
mod lease;
mod lock;
mod migrations;
mod pg;
mod pg_migrations;
mod run_id;
mod sqlite;
mod transition;

pub use lease::{holder_name, DEFAULT_LEASE_TTL};
pub use lock::{os_user, RunGuard};
pub use migrations::MIGRATIONS;
pub use pg::{is_postgres_url, redact_url, PgStore};
pub use pg_migrations::PG_MIGRATIONS;
pub use run_id::{new_run_id, run_id_at};
pub use sqlite::{Durability, SqliteStore};
pub use transition::Transition;
