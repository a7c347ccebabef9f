//! The `lockstep` binary: see the crate `lockstep` (crates/lockstep-cli) for everything.

use std::process::ExitCode;

fn main() -> ExitCode {
    lockstep::run_cli().into()
}
