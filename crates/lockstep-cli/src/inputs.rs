//! Loading the inventory and playbooks the user named (or the built-in ones), turning every
//! diagnostic into one [`BadInput`] error that lists them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use lockstep_core::{Fleet, Playbook};
use lockstep_spec::{Diagnostics, SourceFile, VaultSecrets};

use crate::exit::BadInput;
use crate::settings::VaultSource;

/// The name under which the built-in inventory is recorded in run metadata.
pub const EMBEDDED_INVENTORY: &str = "builtin:inventory/lab.yml";

/// Every diagnostic as one bad-input error (exit 2).
pub fn bad(d: Diagnostics) -> anyhow::Error {
    anyhow::Error::new(BadInput(d.to_string()))
}

/// Reads the inventories (all of them, errors of all reported together), or the built-in lab
/// inventory when none is given.
pub fn load_fleet(paths: &[PathBuf]) -> Result<(Fleet, Vec<String>)> {
    load_fleet_for(paths, None)
}

/// [`load_fleet`] for a playbook: as `ansible-playbook` does, the `group_vars/` and `host_vars/`
/// beside a playbook file are read too, above the inventories' (not with the built-in
/// inventory, which has no folder of its own).
pub fn load_fleet_for(paths: &[PathBuf], playbook: Option<&str>) -> Result<(Fleet, Vec<String>)> {
    if paths.is_empty() {
        let file = lockstep_spec::embedded::lab_inventory();
        let fleet = lockstep_spec::load_inventory(&[file]).map_err(bad)?;
        return Ok((fleet, vec![EMBEDDED_INVENTORY.to_owned()]));
    }
    let dirs: Vec<PathBuf> = playbook.and_then(playbook_vars_dir).into_iter().collect();
    let files = inventory_files(paths, &dirs)?;
    let fleet = lockstep_spec::load_inventory(&files).map_err(bad)?;
    Ok((fleet, paths.iter().map(|p| absolute(p)).collect()))
}

/// Every file the inventory sources stand for (directories walked, `group_vars/` and
/// `host_vars/` beside each source and beside `vars_dirs`), vaulted files decrypted.
pub fn inventory_files(paths: &[PathBuf], vars_dirs: &[PathBuf]) -> Result<Vec<SourceFile>> {
    lockstep_spec::read_inventory_sources(paths, vars_dirs, vault_secrets()).map_err(bad)
}

/// The operator's vault passwords, read once at start (`--vault-password-file`,
/// `ANSIBLE_VAULT_PASSWORD_FILE`, `--vault-id`, `--ask-vault-pass`).
static VAULT: std::sync::OnceLock<VaultSecrets> = std::sync::OnceLock::new();

/// The vault passwords given (none if [`init_vault`] was not called).
pub fn vault_secrets() -> &'static VaultSecrets {
    VAULT.get_or_init(VaultSecrets::new)
}

/// Reads the vault passwords the options name. A password file is read as text (never run);
/// its trailing line end is dropped. Nothing read is ever printed.
pub(crate) fn init_vault(sources: &[(String, VaultSource)]) -> Result<()> {
    let mut secrets = VaultSecrets::new();
    let mut errors = Vec::new();
    for (label, source) in sources {
        let path = match source {
            VaultSource::File(path) => path,
            VaultSource::Prompt => {
                if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    errors.push(format!(
                        "error: the vault password for `{label}` must be typed on a terminal; use \
                         `--vault-password-file`"
                    ));
                    continue;
                }
                match rpassword::prompt_password(format!("Vault password ({label}): ")) {
                    Ok(p) => secrets.add(label, p.as_bytes()),
                    Err(e) => errors.push(format!("error: cannot read the vault password: {e}")),
                }
                continue;
            }
        };
        let src = path.display();
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() && m.len() <= 64 * 1024 => match std::fs::read(path) {
                Ok(bytes) => {
                    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
                    secrets.add(label, first);
                }
                Err(e) => errors.push(format!(
                    "error: cannot read vault password file `{src}`: {e}"
                )),
            },
            Ok(_) => errors.push(format!(
                "error: vault password file `{src}` is not a regular file of at most 64 KiB"
            )),
            Err(e) => errors.push(format!(
                "error: cannot read vault password file `{src}`: {e}"
            )),
        }
    }
    if !errors.is_empty() {
        return Err(anyhow::Error::new(BadInput(errors.join("\n"))));
    }
    let _ = VAULT.set(secrets);
    Ok(())
}

/// The path as recorded in a run: absolute, so `resume` works from any folder.
fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// The folder of a playbook file when it holds `group_vars/` or `host_vars/` (a built-in
/// playbook has none).
pub fn playbook_vars_dir(arg: &str) -> Option<PathBuf> {
    let path = Path::new(arg);
    if arg.starts_with(BUILTIN) || !path.is_file() {
        return None;
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    (dir.join("group_vars").is_dir() || dir.join("host_vars").is_dir()).then(|| dir.to_path_buf())
}

/// Re-reads inventories recorded in a run's metadata, with the variables beside the run's
/// playbook (as the run read them).
pub fn reload_fleet(recorded: &[String], playbook: &str) -> Result<Fleet> {
    if recorded.iter().any(|r| r == EMBEDDED_INVENTORY) {
        return Ok(load_fleet(&[])?.0);
    }
    let paths: Vec<PathBuf> = recorded.iter().map(PathBuf::from).collect();
    Ok(load_fleet_for(&paths, Some(playbook))?.0)
}

/// A playbook argument: an existing file, or the name of a built-in playbook (`e3-cluster`,
/// also written `builtin:e3-cluster` as runs record it).
pub fn playbook_source(arg: &str) -> Result<SourceFile> {
    let path = Path::new(arg);
    if !arg.starts_with(BUILTIN) && path.exists() {
        return SourceFile::read(path).map_err(bad);
    }
    let builtin = lockstep_spec::embedded::all_playbooks();
    let name = arg.strip_prefix(BUILTIN).unwrap_or(arg);
    let stem = name.trim_end_matches(".yml");
    if let Some(f) = builtin.into_iter().find(|f| {
        Path::new(&f.path)
            .file_stem()
            .is_some_and(|s| s.eq_ignore_ascii_case(stem))
    }) {
        return Ok(f);
    }
    let names: Vec<String> = lockstep_spec::embedded::all_playbooks()
        .iter()
        .filter_map(|f| {
            Path::new(&f.path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .collect();
    let closest = names
        .iter()
        .map(|n| (strsim::jaro_winkler(&stem.to_ascii_lowercase(), n), n))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| format!("; did you mean `{n}`?"))
        .unwrap_or_default();
    Err(anyhow::Error::new(BadInput(format!(
        "error: playbook `{arg}` is neither a file nor a built-in playbook{closest} (built-in: {})",
        names.join(", ")
    ))))
}

const BUILTIN: &str = "builtin:";

/// Loads and validates one playbook against the fleet; also returns how a run records it
/// (`builtin:NAME`, or the file's absolute path).
pub fn load_playbook(arg: &str, fleet: &Fleet) -> Result<(Playbook, String)> {
    let src = playbook_source(arg)?;
    let path = Path::new(arg);
    let recorded = if !arg.starts_with(BUILTIN) && path.exists() {
        absolute(path)
    } else {
        let stem = Path::new(&src.path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{BUILTIN}{stem}")
    };
    let pb = lockstep_spec::load_playbook(&src, fleet).map_err(bad)?;
    Ok((pb, recorded))
}

/// Splits a `--limit` value into patterns, as Ansible does: comma-separated (or `:` outside a
/// `~REGEX` term), `@FILE` reads a file of patterns one per line (a retry file). Every unreadable
/// file and invalid regular expression is reported.
pub fn limit_patterns(limit: &Option<String>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let Some(l) = limit.as_deref() else {
        return Ok(out);
    };
    for piece in l.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(file) = piece.strip_prefix('@') {
            match SourceFile::read(Path::new(file)) {
                Ok(f) => out.extend(
                    f.text
                        .lines()
                        .map(str::trim)
                        .filter(|s| !s.is_empty() && !s.starts_with('#'))
                        .map(str::to_owned),
                ),
                Err(d) => errors.push(format!("error: `--limit @{file}`: {d}")),
            }
        } else if piece.trim_start_matches(['!', '&']).starts_with('~') {
            out.push(piece.to_owned());
        } else {
            out.extend(
                piece
                    .split(':')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    for p in &out {
        if let Some(re) = p.trim_start_matches(['!', '&']).strip_prefix('~') {
            if let Err(e) = regex::Regex::new(re) {
                errors.push(format!(
                    "error: `--limit` pattern `{p}` is not a regular expression: {e}"
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(anyhow::Error::new(BadInput(errors.join("\n"))))
    }
}

/// Parses `-e` arguments as `ansible-playbook -e` takes them: `NAME=VALUE`, a JSON or YAML
/// mapping (`'{"sp_args": "/q"}'`), or `@FILE` (YAML or JSON). Later arguments win. Scalars
/// become their text; lists and mappings their JSON text. Every malformed one is reported.
pub fn extra_vars(args: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    fn valid_name(k: &str) -> bool {
        !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }
    fn mapping(
        what: &str,
        text: &str,
        out: &mut BTreeMap<String, String>,
        errors: &mut Vec<String>,
    ) {
        match serde_yaml::from_str::<serde_yaml::Value>(text) {
            Ok(serde_yaml::Value::Mapping(m)) => {
                for (k, v) in m {
                    let Some(k) = k.as_str().filter(|k| valid_name(k)) else {
                        errors.push(format!(
                            "error: extra variables {what}: a name must be letters, digits and `_`"
                        ));
                        continue;
                    };
                    let text = match v {
                        serde_yaml::Value::String(s) => s,
                        serde_yaml::Value::Bool(b) => b.to_string(),
                        serde_yaml::Value::Number(n) => n.to_string(),
                        serde_yaml::Value::Null => String::new(),
                        other => serde_json::to_string(&other).unwrap_or_default(),
                    };
                    out.insert(k.to_owned(), text);
                }
            }
            Ok(serde_yaml::Value::Null) => {}
            Ok(_) => errors.push(format!("error: extra variables {what} are not a mapping")),
            Err(e) => errors.push(format!("error: extra variables {what}: {e}")),
        }
    }
    for a in args {
        if let Some(file) = a.strip_prefix('@') {
            match SourceFile::read(Path::new(file)) {
                Ok(f) => mapping(&format!("from `{file}`"), &f.text, &mut out, &mut errors),
                Err(d) => errors.push(format!("error: `-e @{file}`: {d}")),
            }
            continue;
        }
        if a.trim_start().starts_with('{') {
            if a.len() > lockstep_spec::MAX_FILE_BYTES as usize {
                errors.push("error: `-e` mapping too long".into());
                continue;
            }
            mapping("given inline", a, &mut out, &mut errors);
            continue;
        }
        match a.split_once('=') {
            Some((k, v)) if valid_name(k) => {
                out.insert(k.to_owned(), v.to_owned());
            }
            _ => errors.push(format!(
                "error: extra variable `{a}` is not NAME=VALUE (NAME: letters, digits, `_`), \
                 a JSON/YAML mapping or @FILE"
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(anyhow::Error::new(BadInput(errors.join("\n"))))
    }
}

/// The planning options of a spec: `--limit` and `-e`.
pub fn plan_options(spec: &crate::args::SpecArgs) -> Result<lockstep_plan::PlanOptions> {
    Ok(lockstep_plan::PlanOptions {
        limit: limit_patterns(&spec.limit)?,
        extra_vars: extra_vars(&spec.extra_vars)?,
        ..Default::default()
    })
}
