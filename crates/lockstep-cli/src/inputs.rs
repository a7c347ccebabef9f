//! Loading the inventory and playbooks the user named (or the built-in ones), turning every
//! diagnostic into one [`BadInput`] error that lists them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use lockstep_core::{Fleet, Playbook};
use lockstep_spec::{Diagnostics, SourceFile};

use crate::exit::BadInput;

/// The name under which the built-in inventory is recorded in run metadata.
pub const EMBEDDED_INVENTORY: &str = "builtin:inventory/lab.yml";

/// Every diagnostic as one bad-input error (exit 2).
pub fn bad(d: Diagnostics) -> anyhow::Error {
    anyhow::Error::new(BadInput(d.to_string()))
}

/// Reads the inventories (all of them, errors of all reported together), or the built-in lab
/// inventory when none is given.
pub fn load_fleet(paths: &[PathBuf]) -> Result<(Fleet, Vec<String>)> {
    if paths.is_empty() {
        let file = lockstep_spec::embedded::lab_inventory();
        let fleet = lockstep_spec::load_inventory(&[file]).map_err(bad)?;
        return Ok((fleet, vec![EMBEDDED_INVENTORY.to_owned()]));
    }
    let files = inventory_files(paths, &[], &crate::args::VaultArgs::default())?;
    let fleet = lockstep_spec::load_inventory(&files).map_err(bad)?;
    Ok((fleet, paths.iter().map(|p| absolute(p)).collect()))
}

/// Every file the inventory sources stand for (directories walked, `group_vars/` and
/// `host_vars/` beside each source and beside `vars_dirs`), vaulted files decrypted.
pub fn inventory_files(
    paths: &[PathBuf],
    vars_dirs: &[PathBuf],
    _vault: &crate::args::VaultArgs,
) -> Result<Vec<SourceFile>> {
    lockstep_spec::read_inventory_sources(paths, vars_dirs).map_err(bad)
}

/// The path as recorded in a run: absolute, so `resume` works from any folder.
fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// Re-reads inventories recorded in a run's metadata.
pub fn reload_fleet(recorded: &[String]) -> Result<Fleet> {
    if recorded.iter().any(|r| r == EMBEDDED_INVENTORY) {
        return Ok(load_fleet(&[])?.0);
    }
    let paths: Vec<PathBuf> = recorded.iter().map(PathBuf::from).collect();
    Ok(load_fleet(&paths)?.0)
}

/// A playbook argument: an existing file, or the name of a built-in playbook (`e3-cluster`,
/// also written `builtin:e3-cluster` as runs record it).
pub fn playbook_source(arg: &str) -> Result<SourceFile> {
    let path = Path::new(arg);
    if !arg.starts_with(BUILTIN) && path.exists() {
        return SourceFile::read(path).map_err(bad);
    }
    let builtin = lockstep_spec::embedded::playbooks();
    let name = arg.strip_prefix(BUILTIN).unwrap_or(arg);
    let stem = name.trim_end_matches(".yml");
    if let Some(f) = builtin.into_iter().find(|f| {
        Path::new(&f.path)
            .file_stem()
            .is_some_and(|s| s.eq_ignore_ascii_case(stem))
    }) {
        return Ok(f);
    }
    let names: Vec<String> = lockstep_spec::embedded::playbooks()
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

/// Splits a `--limit` value into patterns.
pub fn limit_patterns(limit: &Option<String>) -> Vec<String> {
    limit
        .as_deref()
        .map(|l| {
            l.split([',', ':'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Parses `-e NAME=VALUE` arguments; every malformed one is reported.
pub fn extra_vars(args: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v))
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                out.insert(k.to_owned(), v.to_owned());
            }
            _ => errors.push(format!(
                "error: extra variable `{a}` is not NAME=VALUE (NAME: letters, digits, `_`)"
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
        limit: limit_patterns(&spec.limit),
        extra_vars: extra_vars(&spec.extra_vars)?,
        ..Default::default()
    })
}
