//! The `lockstep` command line: the only crate that prints and the only glue between the others.
//!
//! clap parses ([`args`]), [`settings`] checks what clap cannot (all problems at once, exit 2), then the command wires the spec loader, the
//! planner, the engine, the SQLite store, the WinRM transport and (for `demo` and `lab`) the lab
//! together. Data goes to standard output, everything else to standard error; exit codes come
//! from [`exit::ExitStatus`] only. Library crates below it never print. It may depend on every
//! workspace crate; no crate depends on it. Its own adapter [`runner::BuiltinRunner`] is where
//! the engine meets the built-in actions.
#![deny(missing_docs)]

pub(crate) mod args;
pub(crate) mod commands;
pub(crate) mod complete;
pub(crate) mod exit;
pub(crate) mod inputs;
pub(crate) mod live;
pub(crate) mod logging;
pub(crate) mod progress;
pub(crate) mod runner;
pub(crate) mod secrets;
pub(crate) mod settings;
pub(crate) mod wiring;

pub use exit::ExitStatus;

/// What the end-to-end tests (`tests/it`) start the in-process lab with, as `lockstep lab` and
/// `lockstep demo` do: everything else in this crate is private to the command line.
pub mod lab_support {
    pub use crate::commands::demo::DEMO_ORDER;
    pub use crate::commands::lab::{lab_server_config, lab_user, overlay};
    pub use crate::inputs::load_fleet;
}

use std::io::Write as _;

use clap::{CommandFactory, Parser};

use crate::args::{Cli, Command};

/// Runs the command line and returns the exit status.
pub fn run_cli() -> ExitStatus {
    // A shell asking for completions (`COMPLETE=bash lockstep ...`) is answered and exits here.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(complete::VAR)
        .complete();
    let cli = Cli::parse();
    let settings = match settings::Settings::new(&cli) {
        Ok(s) => s,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "{}", exit::render(&err));
            return exit::status_of(&err);
        }
    };
    logging::init(&settings.log);
    match dispatch(&cli, &settings) {
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

fn dispatch(cli: &Cli, settings: &settings::Settings) -> anyhow::Result<ExitStatus> {
    inputs::init_vault(&settings.vault)?;
    match &cli.command {
        Command::Check(a) => commands::check::run(a),
        Command::Inventory(a) => commands::inventory::run(a),
        Command::Plan(a) => commands::plan::run(a, settings),
        Command::Status(a) => commands::status::status(a, settings),
        Command::Approve(a) => commands::approve::approve(a, settings),
        Command::Report(a) => commands::report::report(a, settings),
        Command::Run(a) => runtime()?.block_on(commands::run::run(a, settings)),
        Command::Resume(a) => runtime()?.block_on(commands::run::resume(a, settings)),
        Command::Controller(a) => runtime()?.block_on(commands::controller::run(a, settings)),
        Command::Demo(a) => runtime()?.block_on(commands::demo::run(a, settings)),
        Command::Lab(a) => runtime()?.block_on(commands::lab::run(a, settings)),
        Command::Facts(a) => runtime()?.block_on(commands::facts::run(a, settings)),
        Command::Exec(a) => runtime()?.block_on(commands::exec::run(a, settings)),
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
