//! Inventory sources as Ansible finds them on disk: files, directories of inventory files, and
//! the `group_vars/` and `host_vars/` beside each source (and beside the playbook).
//!
//! A directory source stands for every file in it, recursively, in sorted order, skipping what
//! ansible-core skips: hidden names, `group_vars`, `host_vars` and `vars_plugins`, and names
//! ending in `.pyc .pyo .swp .bak ~ .rpm .md .txt .rst .orig .cfg .retry`. Executable files are
//! read as inventory text, never run (Lockstep has no dynamic inventory scripts). Variable files
//! are `group_vars/NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json`, or a directory `NAME/` of such
//! files (hidden and `~` names skipped), read in Ansible's order. Every file goes through
//! [`SourceFile::read`] and its bounds.

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics, SourceFile};
use crate::vault::{decrypt, is_vaulted, VaultSecrets};

/// Extensions a directory source skips (ansible-core's `INVENTORY_IGNORE_EXTS` default).
const IGNORED_EXTS: &[&str] = &[
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry",
];
/// Names a directory source always skips.
const IGNORED_NAMES: &[&str] = &["host_vars", "group_vars", "vars_plugins"];
/// Extensions of variable files (no extension is allowed too).
const VARS_EXTS: &[&str] = &["yml", "yaml", "json"];

/// How many files one load may read (a directory source could hold anything).
const MAX_FILES: usize = 10_000;

/// Reads the inventory `sources` (files or directories, merged in order) and the variable files
/// beside them, then those beside each of `vars_dirs` (the playbook's folder: marked
/// [`SourceFile::beside_playbook`], they rank above the inventory's as in Ansible). Every error
/// is reported.
pub fn read_inventory_sources(
    sources: &[PathBuf],
    vars_dirs: &[PathBuf],
    vault: &VaultSecrets,
) -> Result<Vec<SourceFile>, Diagnostics> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for src in sources {
        let is_dir = std::fs::metadata(src).is_ok_and(|m| m.is_dir());
        let dir = if is_dir {
            let mut paths = Vec::new();
            walk_inventory_dir(src, &mut paths, &mut errors);
            for p in paths {
                push(&p, vault, &mut files, &mut errors);
            }
            src.clone()
        } else {
            push(src, vault, &mut files, &mut errors);
            src.parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."))
        };
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    // The inventories' folders, then the playbook's (a folder that is both is read once, as an
    // inventory's: the values are the same either way).
    let inventory_dirs = dirs.len();
    for d in vars_dirs {
        if !dirs.contains(d) {
            dirs.push(d.clone());
        }
    }
    for (i, d) in dirs.iter().enumerate() {
        for kind in ["group_vars", "host_vars"] {
            let base = d.join(kind);
            if !base.is_dir() {
                continue;
            }
            for p in vars_files(&base, &mut errors) {
                let at = files.len();
                push(&p, vault, &mut files, &mut errors);
                if let Some(f) = files.get_mut(at) {
                    f.beside_playbook = i >= inventory_dirs;
                }
            }
        }
    }
    if files.len() > MAX_FILES {
        errors.push(Diagnostic {
            file: sources
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            line: 1,
            col: 1,
            message: format!("the inventory sources hold more than {MAX_FILES} files"),
        });
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(Diagnostics(errors))
    }
}

/// Reads one file; a vault-encrypted one is decrypted (its text must then be UTF-8).
fn push(p: &Path, vault: &VaultSecrets, files: &mut Vec<SourceFile>, errors: &mut Vec<Diagnostic>) {
    if files.len() > MAX_FILES {
        return;
    }
    match SourceFile::read(p) {
        Ok(f) if is_vaulted(&f.text) => {
            let fail = |m: String| Diagnostic {
                file: f.path.clone(),
                line: 1,
                col: 1,
                message: m,
            };
            match decrypt(&f.text, vault) {
                Ok(plain) => match String::from_utf8(plain) {
                    Ok(text) if !text.contains('\0') => files.push(SourceFile {
                        path: f.path.clone(),
                        text,
                        beside_playbook: false,
                    }),
                    _ => errors.push(fail("the decrypted vault file is not UTF-8 text".into())),
                },
                Err(e) => errors.push(fail(format!("cannot open vault-encrypted file: {e}"))),
            }
        }
        Ok(f) => files.push(f),
        Err(d) => errors.extend(d.0),
    }
}

fn listing(dir: &Path, errors: &mut Vec<Diagnostic>) -> Vec<(String, PathBuf)> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<(String, PathBuf)> = rd
                .filter_map(Result::ok)
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .collect();
            v.sort();
            v
        }
        Err(e) => {
            errors.push(Diagnostic {
                file: dir.display().to_string(),
                line: 1,
                col: 1,
                message: format!("cannot list `{}`: {e}", dir.display()),
            });
            Vec::new()
        }
    }
}

fn walk_inventory_dir(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<Diagnostic>) {
    for (name, path) in listing(dir, errors) {
        if out.len() > MAX_FILES
            || name.starts_with('.')
            || IGNORED_NAMES.contains(&name.as_str())
            || IGNORED_EXTS.iter().any(|e| name.ends_with(e))
        {
            continue;
        }
        if path.is_dir() {
            walk_inventory_dir(&path, out, errors);
        } else {
            out.push(path);
        }
    }
}

/// The files of `group_vars/` (or `host_vars/`), per name in Ansible's order: the directory
/// `NAME/` (or extension-less file), then `NAME.yml`, `NAME.yaml`, `NAME.json`.
fn vars_files(base: &Path, errors: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut entries: Vec<(String, usize, PathBuf)> = Vec::new();
    for (name, path) in listing(base, errors) {
        if name.starts_with('.') {
            continue;
        }
        let (stem, rank) = match name.rsplit_once('.') {
            Some((stem, ext)) if VARS_EXTS.contains(&ext) => (
                stem.to_owned(),
                1 + VARS_EXTS.iter().position(|e| *e == ext).unwrap_or(0),
            ),
            _ => (name.clone(), 0),
        };
        entries.push((stem, rank, path));
    }
    entries.sort();
    let mut out = Vec::new();
    for (_, rank, path) in entries {
        if path.is_dir() {
            if rank == 0 {
                vars_dir_files(&path, &mut out, errors);
            }
        } else {
            out.push(path);
        }
    }
    out
}

fn vars_dir_files(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<Diagnostic>) {
    for (name, path) in listing(dir, errors) {
        if out.len() > MAX_FILES || name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let ext = Path::new(&name)
            .extension()
            .map(|e| e.to_string_lossy().into_owned());
        match ext {
            None if path.is_dir() => vars_dir_files(&path, out, errors),
            None => out.push(path),
            Some(e) if VARS_EXTS.contains(&e.as_str()) && !path.is_dir() => out.push(path),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_sources_follow_ansibles_rules() {
        let d = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| {
            let path = d.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, t).unwrap();
        };
        w("inv/01-hosts.yml", "web:\n  hosts:\n    w1:\n");
        w("inv/02-more.ini", "[db]\nd1\n");
        w("inv/sub/03.yaml", "x:\n  hosts:\n    h3:\n");
        w("inv/.hidden.yml", "bad: [\n");
        w("inv/notes.txt", "bad: [\n");
        w("inv/old.bak", "bad: [\n");
        w("inv/group_vars/web.yml", "a: 1\n");
        w("inv/group_vars/all/10.yml", "b: 1\n");
        w("inv/group_vars/all/readme.md", "bad: [\n");
        w("inv/host_vars/w1", "c: 1\n");
        let files =
            read_inventory_sources(&[d.path().join("inv")], &[], &VaultSecrets::new()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| {
                Path::new(&f.path)
                    .strip_prefix(d.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "inv/01-hosts.yml",
                "inv/02-more.ini",
                "inv/sub/03.yaml",
                "inv/group_vars/all/10.yml",
                "inv/group_vars/web.yml",
                "inv/host_vars/w1"
            ]
        );
    }
}
