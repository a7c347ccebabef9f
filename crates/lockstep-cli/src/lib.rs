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
pub mod complete;
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
    // A shell asking for completions (`COMPLETE=bash lockstep ...`) is answered and exits here.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(complete::VAR)
        .complete();
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

/// The man page's own sections (roff), between the subcommands and the version. The exit codes
/// are [`ExitStatus::code`]'s.
const MAN_SECTIONS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Everything asked for was done (a run finished).
.TP
\fB1\fR
An unexpected failure (I/O, the state file, a bug).
.TP
\fB2\fR
Bad input: an invalid inventory, playbook, argument, credential source or run id; nothing ran.
.TP
\fB3\fR
The run halted in a safe state; \fBlockstep resume\fR continues it (the halt says what was changed and what is out of service).
.TP
\fB4\fR
The run waits for an operator: \fBlockstep approve\fR RUN [STEP], then \fBlockstep resume\fR.
.SH ENVIRONMENT
.TP
\fBLOCKSTEP_STATE\fR
The state file (default \fI.lockstep/state.db\fR).
.TP
\fBLOCKSTEP_MAX_CONNECTIONS\fR
The WinRM commands running at once across the fleet.
.TP
\fBANSIBLE_VAULT_PASSWORD_FILE\fR
The file holding the password of vault\-encrypted inventory values.
.TP
\fBLOCKSTEP_PASSWORD\fR (or the variable an inventory names in \fBlockstep_password_env\fR)
A node user's password; never printed, logged or stored.
.TP
\fBNO_COLOR\fR
Any non\-empty value turns colours off.
.TP
\fBRUST_LOG\fR
Overrides the log filter (e.g. \fIlockstep_engine=debug\fR).
.TP
\fBUSER\fR, \fBUSERNAME\fR
Recorded as who started a run.
.SH FILES
.TP
\fI.lockstep/state.db\fR
Runs, checkpoints, approvals and facts (SQLite, WAL); one OS lock per run being driven.
.TP
\fI.lockstep/logs/RUN.log\fR
The log of each run, beside the state file.
"#;

fn dispatch(cli: Cli) -> anyhow::Result<ExitStatus> {
    let global = &cli.global;
    inputs::init_vault(&global.vault)?;
    match &cli.command {
        Command::Check(a) => commands::check::run(a),
        Command::Inventory(a) => commands::inventory::run(a),
        Command::Plan(a) => commands::plan::run(a, global),
        Command::Status(a) => commands::status::status(a, global),
        Command::Approve(a) => commands::approve::approve(a, global),
        Command::Report(a) => commands::report::report(a, global),
        Command::Run(a) => runtime()?.block_on(commands::run::run(a, global)),
        Command::Resume(a) => runtime()?.block_on(commands::run::resume(a, global)),
        Command::Controller(a) => runtime()?.block_on(commands::controller::run(a, global)),
        Command::Demo(a) => runtime()?.block_on(commands::demo::run(a, global)),
        Command::Lab(a) => runtime()?.block_on(commands::lab::run(a, global)),
        Command::Facts(a) => runtime()?.block_on(commands::facts::run(a, global)),
        Command::Exec(a) => runtime()?.block_on(commands::exec::run(a, global)),
        Command::Completions { shell } => {
            complete::registration(*shell, &mut std::io::stdout().lock())?;
            Ok(ExitStatus::Success)
        }
        Command::Man => {
            let man = clap_mangen::Man::new(Cli::command());
            let mut out = std::io::stdout().lock();
            man.render_title(&mut out)?;
            man.render_name_section(&mut out)?;
            man.render_synopsis_section(&mut out)?;
            man.render_description_section(&mut out)?;
            man.render_options_section(&mut out)?;
            man.render_subcommands_section(&mut out)?;
            out.write_all(MAN_SECTIONS.as_bytes())?;
            man.render_version_section(&mut out)?;
            Ok(ExitStatus::Success)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
