//! Fact probes a playbook declares (`facts:`): how one typed fact is read from a node, without
//! changing it and without reading localised text.
//!
//! `lockstep-actions` holds the command lines and the readers (one home: `facts::read`); this
//! module holds the declaration and the checks of what may reach a node. A probe's text is
//! checked here because a registry key and a hotfix id go into a cmd.exe line or a WQL string.

use serde::{Deserialize, Serialize};

/// How a fact is read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FactProbe {
    /// A registry value (`reg query "KEY" /v VALUE`): REG_SZ as text, REG_DWORD as a decimal
    /// number; missing when the value is absent.
    Registry {
        /// `HKLM\SOFTWARE\...`.
        key: String,
        /// Value name.
        value: String,
    },
    /// The version resource of a file (WQL `CIM_DataFile.Version`); missing when absent.
    FileVersion {
        /// Absolute path, `C:\Windows\System32\ntoskrnl.exe`.
        path: String,
    },
    /// A property of the first object a WQL query returns; missing when none.
    Wql {
        /// The query.
        query: String,
        /// The property read.
        property: String,
        /// Namespace (`root/cimv2` by default).
        namespace: String,
    },
    /// A PowerShell expression whose value is printed with `ConvertTo-Json`; run with
    /// `-EncodedCommand`, so nothing in it is interpreted by cmd.exe.
    Powershell {
        /// The expression.
        expression: String,
    },
    /// Whether a hotfix is installed (WQL `Win32_QuickFixEngineering`): a boolean.
    Hotfix {
        /// `KB5034441`.
        id: String,
    },
    /// The installed Exchange build (the `Exchange\Setup` registry key), for the KB playbooks.
    ExchangeBuild,
}

impl FactProbe {
    /// The kebab-case kind, as playbooks write it.
    pub fn kind(&self) -> &'static str {
        match self {
            FactProbe::Registry { .. } => "registry",
            FactProbe::FileVersion { .. } => "file-version",
            FactProbe::Wql { .. } => "wql",
            FactProbe::Powershell { .. } => "powershell",
            FactProbe::Hotfix { .. } => "hotfix",
            FactProbe::ExchangeBuild => "exchange-build",
        }
    }

    /// Checks every text that reaches a node; the error says which and why.
    pub fn validate(&self) -> Result<(), String> {
        fn plain(what: &str, s: &str, extra: &[char]) -> Result<(), String> {
            if s.trim().is_empty() {
                return Err(format!("{what} is empty"));
            }
            match s
                .chars()
                .find(|c| !(c.is_alphanumeric() || " _-.(){}$".contains(*c) || extra.contains(c)))
            {
                Some(c) => Err(format!("{what} `{s}` contains {c:?}")),
                None => Ok(()),
            }
        }
        match self {
            FactProbe::Registry { key, value } => {
                let hive = key
                    .split('\\')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                if ![
                    "HKLM",
                    "HKEY_LOCAL_MACHINE",
                    "HKU",
                    "HKEY_USERS",
                    "HKCR",
                    "HKCC",
                ]
                .contains(&hive.as_str())
                {
                    return Err(format!(
                        "registry key `{key}` must start with HKLM\\, HKU\\, HKCR\\ or HKCC\\"
                    ));
                }
                plain("registry key", key, &['\\'])?;
                plain("registry value name", value, &[])
            }
            FactProbe::FileVersion { path } => {
                let b = path.as_bytes();
                if b.len() < 4 || !b[0].is_ascii_alphabetic() || &b[1..3] != b":\\" {
                    return Err(format!("file path `{path}` must be absolute (`C:\\...`)"));
                }
                plain("file path", path, &['\\', ':'])
            }
            FactProbe::Wql {
                query,
                property,
                namespace,
            } => {
                if !query
                    .trim_start()
                    .to_ascii_uppercase()
                    .starts_with("SELECT ")
                {
                    return Err(format!("WQL query `{query}` must start with SELECT"));
                }
                if let Some(c) = query.chars().find(|c| c.is_control()) {
                    return Err(format!("WQL query `{query}` contains {c:?}"));
                }
                plain("WQL property", property, &[])?;
                plain("WQL namespace", namespace, &['/', '\\'])
            }
            FactProbe::Powershell { expression } => {
                if expression.trim().is_empty() {
                    return Err("PowerShell expression is empty".into());
                }
                Ok(())
            }
            FactProbe::Hotfix { id } => {
                let ok = id.len() > 2
                    && id[..2].eq_ignore_ascii_case("KB")
                    && id[2..].bytes().all(|b| b.is_ascii_digit());
                if ok {
                    Ok(())
                } else {
                    Err(format!("hotfix id `{id}` must be KB followed by digits"))
                }
            }
            FactProbe::ExchangeBuild => Ok(()),
        }
    }
}

/// A fact a playbook declares: its name (used in conditions) and its probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FactDef {
    /// The name conditions use (`os_build`).
    pub name: String,
    /// How it is read.
    pub probe: FactProbe,
}

/// The name of the built-in fact every playbook may use: the installed Exchange build.
pub const EXCHANGE_BUILD: &str = "exchange_build";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_reaches_a_node_is_checked() {
        let reg = |k: &str, v: &str| FactProbe::Registry {
            key: k.into(),
            value: v.into(),
        };
        assert!(
            reg(r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion", "UBR")
                .validate()
                .is_ok()
        );
        assert!(reg(r#"HKLM\x" & calc"#, "v").validate().is_err());
        assert!(reg(r"C:\x", "v").validate().is_err());
        assert!(reg(r"HKLM\x", "v&").validate().is_err());
        assert!(FactProbe::Hotfix {
            id: "KB5034441".into()
        }
        .validate()
        .is_ok());
        assert!(FactProbe::Hotfix {
            id: "KB50' or 1".into()
        }
        .validate()
        .is_err());
        assert!(FactProbe::FileVersion {
            path: r"C:\Windows\System32\ntoskrnl.exe".into()
        }
        .validate()
        .is_ok());
        assert!(FactProbe::FileVersion {
            path: "ntoskrnl.exe".into()
        }
        .validate()
        .is_err());
        assert!(FactProbe::Wql {
            query: "DELETE x".into(),
            property: "p".into(),
            namespace: "root/cimv2".into()
        }
        .validate()
        .is_err());
    }
}
