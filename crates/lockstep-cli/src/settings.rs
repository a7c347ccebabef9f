//! The second stage of the command line, as ripgrep has it: clap parses the "low" arguments
//! ([`crate::args`], types only), then [`Settings::new`] checks what clap cannot and derives what
//! the commands use: where the state lives (SQLite file or PostgreSQL URL, decided once), how
//! progress is shown, the time factors, the vault password sources. Every refusal is collected
//! and returned at once as one [`BadInput`] (exit 2), before anything is read, asked or run.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::args::{Cli, Command, LabAction, LogFormat, Output, VaultArgs};
use crate::exit::BadInput;

/// Where runs and checkpoints are kept (`--state`, `LOCKSTEP_STATE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StateLocation {
    /// A SQLite file (created with its folder if needed).
    Sqlite(PathBuf),
    /// A PostgreSQL database shared by several controllers (`postgres://...`).
    Postgres(String),
}

impl StateLocation {
    fn new(state: &std::path::Path) -> Self {
        let text = state.to_string_lossy();
        if lockstep_store::is_postgres_url(&text) {
            StateLocation::Postgres(text.into_owned())
        } else {
            StateLocation::Sqlite(state.to_path_buf())
        }
    }

    /// As it may be shown: the SQLite path, or the URL without its password.
    pub(crate) fn shown(&self) -> PathBuf {
        match self {
            StateLocation::Sqlite(p) => p.clone(),
            StateLocation::Postgres(url) => PathBuf::from(lockstep_store::redact_url(url)),
        }
    }

    /// Where run logs go (`<this>/../logs/`): beside a SQLite state file, or `.lockstep/logs`
    /// when the state is in PostgreSQL.
    pub(crate) fn log_anchor(&self) -> PathBuf {
        match self {
            StateLocation::Sqlite(p) => p.clone(),
            StateLocation::Postgres(_) => PathBuf::from(".lockstep/postgres"),
        }
    }
}

/// How a run's progress reaches the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Live bars on a terminal.
    Bars,
    /// One line per event on standard error (`quiet`: failures only).
    Lines {
        /// `--quiet`.
        quiet: bool,
    },
    /// Newline-delimited JSON events on standard output (`--output json`).
    Json,
}

/// How much the log says, and in which form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogSettings {
    /// `-q`.
    pub(crate) quiet: bool,
    /// `-v` count.
    pub(crate) verbose: u8,
    /// `--log-format`.
    pub(crate) format: LogFormat,
}

/// Where one vault password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VaultSource {
    /// A file holding it (read as text, never run).
    File(PathBuf),
    /// Typed on the terminal.
    Prompt,
}

/// The checked settings every command reads instead of the raw arguments.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The state store.
    pub(crate) state: StateLocation,
    /// How long a controller's lease on a run lasts unless renewed.
    pub(crate) lease: Duration,
    /// WinRM commands running at once across the fleet.
    pub(crate) max_connections: u32,
    /// Ask once for the inventory users' password.
    pub(crate) ask_pass: bool,
    /// How run progress is shown.
    pub(crate) progress: Progress,
    /// The log's level and form.
    pub(crate) log: LogSettings,
    /// The vault passwords' sources, each with its label (`default` when none is given).
    pub(crate) vault: Vec<(String, VaultSource)>,
    /// The factor soak times are multiplied by (`--soak-scale`: finite, at least 0).
    pub(crate) soak_scale: f64,
    /// The factor the lab's durations are multiplied by (`--time-scale`: finite, above 0).
    pub(crate) time_scale: Option<f64>,
}

impl Settings {
    /// Checks `cli` and derives the settings, or refuses with every problem at once.
    pub(crate) fn new(cli: &Cli) -> Result<Settings> {
        let g = &cli.global;
        let mut errors = Vec::new();
        let soak_scale = match &cli.command {
            Command::Run(a) => Some(a.soak_scale),
            Command::Resume(a) => Some(a.soak_scale),
            Command::Controller(a) => Some(a.soak_scale),
            _ => None,
        };
        if let Some(s) = soak_scale.filter(|s| !(s.is_finite() && *s >= 0.0)) {
            errors.push(format!(
                "error: `--soak-scale {s}` is not a factor of 0 or more (0 skips soaks, 1 keeps them)"
            ));
        }
        let time_scale = match &cli.command {
            Command::Demo(a) => Some(a.time_scale),
            Command::Lab(a) if !matches!(a.action, Some(LabAction::Verify { .. })) => a.time_scale,
            _ => None,
        };
        if let Some(t) = time_scale.filter(|t| !(t.is_finite() && *t > 0.0)) {
            errors.push(format!(
                "error: `--time-scale {t}` is not a factor above 0 (1 is real time)"
            ));
        }
        let vault = vault_sources(&g.vault, &mut errors);
        if !errors.is_empty() {
            return Err(anyhow::Error::new(BadInput(errors.join("\n"))));
        }
        let progress = match g.output {
            Output::Json => Progress::Json,
            Output::Human
                if !g.no_progress
                    && !g.quiet
                    && std::io::IsTerminal::is_terminal(&std::io::stderr()) =>
            {
                Progress::Bars
            }
            Output::Human => Progress::Lines { quiet: g.quiet },
        };
        Ok(Settings {
            state: StateLocation::new(&g.state),
            lease: Duration::from_secs(g.lease_secs),
            max_connections: g.max_connections,
            ask_pass: g.ask_pass,
            progress,
            log: LogSettings {
                quiet: g.quiet,
                verbose: g.verbose,
                format: g.log_format,
            },
            vault,
            soak_scale: soak_scale.unwrap_or(1.0),
            time_scale,
        })
    }
}

/// The vault password sources the options name, in the order given: `--vault-password-file`
/// (or `ANSIBLE_VAULT_PASSWORD_FILE`), `--ask-vault-pass`, then each `--vault-id`
/// (`LABEL@FILE`, `LABEL@prompt` or `FILE`).
fn vault_sources(args: &VaultArgs, errors: &mut Vec<String>) -> Vec<(String, VaultSource)> {
    let source = |src: &str| match src {
        "prompt" => VaultSource::Prompt,
        file => VaultSource::File(PathBuf::from(file)),
    };
    let mut out = Vec::new();
    if let Some(f) = &args.vault_password_file {
        out.push(("default".to_owned(), VaultSource::File(f.clone())));
    }
    if args.ask_vault_pass {
        out.push(("default".to_owned(), VaultSource::Prompt));
    }
    for id in &args.vault_ids {
        match id.split_once('@') {
            Some((label, src)) if !label.is_empty() && !src.is_empty() => {
                out.push((label.to_owned(), source(src)))
            }
            None if !id.is_empty() => out.push(("default".to_owned(), source(id))),
            _ => errors.push(format!(
                "error: `--vault-id {id}` is not LABEL@FILE, LABEL@prompt or FILE"
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn settings(args: &[&str]) -> Result<Settings> {
        let mut argv = vec!["lockstep"];
        argv.extend_from_slice(args);
        Settings::new(&Cli::try_parse_from(argv).unwrap())
    }

    #[test]
    fn bad_factors_and_vault_ids_are_refused_together() {
        let err = settings(&[
            "--vault-id",
            "@nothing",
            "run",
            "e3-cluster",
            "--soak-scale=-1",
        ])
        .unwrap_err();
        assert!(err.is::<BadInput>());
        let text = err.to_string();
        assert!(text.contains("`--soak-scale -1`"), "{text}");
        assert!(text.contains("`--vault-id @nothing`"), "{text}");
        for bad in ["NaN", "inf", "-0.5"] {
            let e = settings(&["resume", &format!("--soak-scale={bad}")]).unwrap_err();
            assert!(e.to_string().contains("--soak-scale"), "{bad}: {e}");
        }
        for bad in ["0", "-5", "inf"] {
            let e = settings(&["demo", &format!("--time-scale={bad}")]).unwrap_err();
            assert!(e.to_string().contains("--time-scale"), "{bad}: {e}");
            let e = settings(&["lab", &format!("--time-scale={bad}")]).unwrap_err();
            assert!(e.to_string().contains("--time-scale"), "{bad}: {e}");
        }
    }

    #[test]
    fn good_settings_are_derived_once() {
        let s = settings(&[
            "--state",
            "postgres://lockstep:secret@db.example/lockstep",
            "--vault-id",
            "prod@prompt",
            "--vault-id",
            "pw.txt",
            "--output",
            "json",
            "run",
            "e3-cluster",
            "--soak-scale",
            "0",
        ])
        .unwrap();
        assert!(matches!(s.state, StateLocation::Postgres(_)));
        assert!(!s.state.shown().to_string_lossy().contains("secret"));
        assert_eq!(s.state.log_anchor(), PathBuf::from(".lockstep/postgres"));
        assert_eq!(s.soak_scale, 0.0);
        assert_eq!(s.progress, Progress::Json);
        assert_eq!(
            s.vault,
            [
                ("prod".to_owned(), VaultSource::Prompt),
                ("default".to_owned(), VaultSource::File("pw.txt".into()))
            ]
        );
        let s = settings(&["-q", "status"]).unwrap();
        assert_eq!(s.state, StateLocation::Sqlite(".lockstep/state.db".into()));
        assert_eq!(s.progress, Progress::Lines { quiet: true });
        assert_eq!(s.soak_scale, 1.0);
        assert_eq!(settings(&["demo"]).unwrap().time_scale, Some(0.002));
    }
}
