//! The `lockstep` command line: the only crate that prints and the only glue between the others.
//!
//! clap parses ([`args`]), settings are validated, then the command wires the spec loader, the
//! planner, the engine, the SQLite store, the WinRM transport and (for `demo` and `lab`) the lab
//! together. Data goes to standard output, everything else to standard error; exit codes come
//! from [`exit::ExitStatus`] only. Library crates below it never print. It may depend on every
//! workspace crate; no crate depends on it. Its own adapter [`runner::BuiltinRunner`] is where
//! the engine meets the built-in actions.
#![deny(missing_docs)]

pub mod args;
pub mod commands;
pub mod exit;
pub mod inputs;
pub mod live;
pub mod logging;
pub mod progress;
pub mod runner;
pub mod secrets;
pub mod wiring;

use std::io::Write as _;

use clap::{CommandFactory, Parser};

use crate::args::{Cli, Command};
use crate::exit::ExitStatus;

/// Runs the command line and returns the exit status.
pub fn run_cli() -> ExitStatus {
    let cli = Cli::parse();
    logging::init(&cli.global);
    match dispatch(cli) {
        Ok(status) => status,
        Err(err) if exit::is_broken_pipe(&err) => {
            // `lockstep report | head`: the reader left; nothing to say about it.
            ExitStatus::Success
        }
        Err(err) => {
            let status = exit::status_of(&err);
            let _ = writeln!(std::io::stderr(), "{}", exit::render(&err));
            status
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitStatus> {
    let global = &cli.global;
    match &cli.command {
        Command::Check(a) => commands::check::run(a),
        Command::Inventory(a) => commands::inventory::run(a),
        Command::Plan(a) => commands::plan::run(a, global),
        Command::Status(a) => commands::status::status(a, global),
        Command::Approve(a) => commands::status::approve(a, global),
        Command::Report(a) => commands::status::report(a, global),
        Command::Run(a) => runtime()?.block_on(commands::run::run(a, global)),
        Command::Resume(a) => runtime()?.block_on(commands::run::resume(a, global)),
        Command::Demo(a) => runtime()?.block_on(commands::demo::run(a, global)),
        Command::Lab(a) => runtime()?.block_on(commands::lab::run(a, global)),
        Command::Facts(a) => runtime()?.block_on(commands::facts::run(a, global)),
        Command::Exec(a) => runtime()?.block_on(commands::exec::run(a, global)),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "lockstep", &mut std::io::stdout());
            Ok(ExitStatus::Success)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(ExitStatus::Success)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
