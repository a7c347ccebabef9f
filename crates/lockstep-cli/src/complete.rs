//! What the shell completions offer beyond the command line's own words: playbook names (the
//! built-in ones and the YAML files here and in `playbooks/`) and the run ids of the state file.
//! The shell asks the binary itself (`COMPLETE=bash lockstep ...`, registered by
//! `lockstep completions SHELL`), so the candidates are those of the moment.

use std::path::{Path, PathBuf};

use clap_complete::engine::CompletionCandidate;
use lockstep_core::StateStore as _;

/// The variable the shells set to ask for completions.
pub const VAR: &str = "COMPLETE";

/// Built-in playbook names, then `*.yml`/`*.yaml` files in the current folder and `playbooks/`.
pub fn playbooks() -> Vec<CompletionCandidate> {
    let mut out: Vec<CompletionCandidate> = lockstep_spec::embedded::PLAYBOOKS
        .iter()
        .filter_map(|p| Path::new(p.path).file_stem()?.to_str().map(str::to_owned))
        .map(|name| CompletionCandidate::new(name).help(Some("built-in playbook".into())))
        .collect();
    for dir in [Path::new("."), Path::new("playbooks")] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension().is_some_and(|x| {
                        x.eq_ignore_ascii_case("yml") || x.eq_ignore_ascii_case("yaml")
                    })
            })
            .map(|p| p.strip_prefix("./").map(Path::to_path_buf).unwrap_or(p))
            .collect();
        files.sort();
        out.extend(
            files
                .into_iter()
                .map(|p| CompletionCandidate::new(p.into_os_string())),
        );
    }
    out
}

/// Every run of the state file (`--state` is not parsed yet: `LOCKSTEP_STATE` or the default),
/// newest first, each with its playbook and status. Nothing when the file does not exist: a
/// completion never creates one. A PostgreSQL state offers none (no connection is opened to
/// complete a word).
pub fn runs() -> Vec<CompletionCandidate> {
    let state = std::env::var_os("LOCKSTEP_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".lockstep/state.db"));
    if lockstep_store::is_postgres_url(&state.to_string_lossy()) || !state.is_file() {
        return Vec::new();
    }
    let Ok(store) = lockstep_store::SqliteStore::open(&state) else {
        return Vec::new();
    };
    store
        .list_runs()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let status = match r.status {
                lockstep_core::RunStatus::Running => "running",
                lockstep_core::RunStatus::Waiting { .. } => "waiting",
                lockstep_core::RunStatus::Halted { .. } => "halted",
                lockstep_core::RunStatus::Finished => "finished",
            };
            let help = format!("{} {status}", r.playbook);
            CompletionCandidate::new(r.id.0).help(Some(help.into()))
        })
        .collect()
}

/// The shell's registration script (`lockstep completions bash`): what `COMPLETE=bash lockstep`
/// prints, calling this binary back for every completion.
pub fn registration(
    shell: clap_complete::Shell,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let name = shell.to_string();
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells
        .completer(&name)
        .ok_or_else(|| std::io::Error::other(format!("no completions for shell `{name}`")))?;
    completer.write_registration(VAR, "lockstep", "lockstep", "lockstep", out)
}
