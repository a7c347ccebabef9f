//! The shipped inventory and playbooks, compiled into the binary (`include_str!`), so the CLI and
//! the lab work from any directory and tests always check the files that ship.

use crate::diag::SourceFile;

/// A file compiled into the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedFile {
    /// Path relative to the repository root, as shown in diagnostics.
    pub path: &'static str,
    /// The file's text.
    pub text: &'static str,
}

impl EmbeddedFile {
    /// As a [`SourceFile`] for the loaders.
    pub fn source(&self) -> SourceFile {
        SourceFile::new(self.path, self.text)
    }
}

impl From<EmbeddedFile> for SourceFile {
    fn from(f: EmbeddedFile) -> SourceFile {
        f.source()
    }
}

impl From<&EmbeddedFile> for SourceFile {
    fn from(f: &EmbeddedFile) -> SourceFile {
        f.source()
    }
}

/// [`LAB_INVENTORY`] as a [`SourceFile`].
pub fn lab_inventory() -> SourceFile {
    LAB_INVENTORY.source()
}

/// `inventory/lab.yml`: the simulated organisation (five sites, every KB 328839 topology).
pub const LAB_INVENTORY: EmbeddedFile = EmbeddedFile {
    path: "inventory/lab.yml",
    text: include_str!("../../../inventory/lab.yml"),
};

macro_rules! playbook {
    ($name:literal) => {
        EmbeddedFile {
            path: concat!("playbooks/", $name, ".yml"),
            text: include_str!(concat!("../../../playbooks/", $name, ".yml")),
        }
    };
}

/// Every shipped playbook, one per KB 328839 procedure.
pub const PLAYBOOKS: &[EmbeddedFile] = &[
    playbook!("e3-cluster"),
    playbook!("e3-fb"),
    playbook!("e3-nc"),
    playbook!("e2-active-passive"),
    playbook!("e2-active-active"),
    playbook!("e2-fb"),
    playbook!("e2-nc"),
    playbook!("e5-cluster"),
    playbook!("e5-nc"),
];

/// The shipped playbooks for plain Windows fleets (no Exchange; `inventory/windows-lab.yml`),
/// written with the generic steps only. Found by name like the KB ones; `lockstep check` without
/// a playbook checks the KB ones only, since these select nothing in an Exchange organisation.
pub const WINDOWS_PLAYBOOKS: &[EmbeddedFile] =
    &[playbook!("cau-cluster"), playbook!("hotfix-waves")];

/// Every shipped playbook as [`SourceFile`]s.
pub fn playbooks() -> Vec<SourceFile> {
    PLAYBOOKS.iter().map(EmbeddedFile::source).collect()
}

/// Every shipped playbook, the KB ones and [`WINDOWS_PLAYBOOKS`], as [`SourceFile`]s.
pub fn all_playbooks() -> Vec<SourceFile> {
    PLAYBOOKS
        .iter()
        .chain(WINDOWS_PLAYBOOKS)
        .map(EmbeddedFile::source)
        .collect()
}

/// The shipped playbook called `name` (file stem, `e3-cluster`).
pub fn playbook(name: &str) -> Option<SourceFile> {
    PLAYBOOKS
        .iter()
        .chain(WINDOWS_PLAYBOOKS)
        .find(|p| {
            p.path
                .trim_start_matches("playbooks/")
                .trim_end_matches(".yml")
                == name
        })
        .map(EmbeddedFile::source)
}
