//! Planner tests: exact step order per procedure, errors, and property tests of the KB 328839
//! rules over generated fleets.

#[path = "../fixtures/mod.rs"]
mod fixtures;

mod broken;
mod errors;
mod procedures;
mod props;
mod stages;
