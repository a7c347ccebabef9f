//! Validated names: everything that can reach a remote command line goes through here.
//!
//! A name is checked once, when it enters the program (inventory, playbook, live discovery), and is
//! then carried as a type that cannot hold anything unsafe. Quoting for `cmd.exe` and PowerShell is
//! done by [`Name::cmd_quoted`] and [`Name::ps_quoted`], never by hand.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of object a name denotes; decides which characters it may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameKind {
    /// A Windows computer (NetBIOS/DNS label): letters, digits, `-`; at most 63 characters.
    Host,
    /// An inventory group, site, pool, stage or playbook name: letters, digits, `-`, `_`, `.`.
    Ident,
    /// A cluster, cluster group, resource, EVS or service display name: also spaces and `( )`.
    Object,
    /// A Windows path to an installer: also `\\`, `:`, `$` and spaces (`\\fs01\sp$\update.exe`).
    Path,
    /// Installer switches: letters, digits, spaces and `/ - : = . _ \\`.
    Args,
}

impl NameKind {
    fn allows(self, c: char) -> bool {
        match self {
            NameKind::Host => c.is_ascii_alphanumeric() || c == '-',
            NameKind::Ident => c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'),
            NameKind::Object => {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ' | '(' | ')')
            }
            NameKind::Path => {
                c.is_ascii_alphanumeric()
                    || matches!(c, '-' | '_' | '.' | ' ' | '(' | ')' | '\\' | ':' | '$')
            }
            NameKind::Args => {
                c.is_ascii_alphanumeric()
                    || matches!(c, '-' | '_' | '.' | ' ' | '/' | ':' | '=' | '\\')
            }
        }
    }

    fn max_len(self) -> usize {
        match self {
            NameKind::Host => 63,
            NameKind::Ident | NameKind::Object => 128,
            NameKind::Path | NameKind::Args => 260,
        }
    }

    /// A short word for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            NameKind::Host => "host name",
            NameKind::Ident => "name",
            NameKind::Object => "object name",
            NameKind::Path => "path",
            NameKind::Args => "installer arguments",
        }
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("empty {}", kind.describe())]
    Empty {
        /// The kind of name.
        kind: NameKind,
    },
    /// The name is too long.
    #[error("{} `{name}` is longer than {max} characters", kind.describe())]
    TooLong {
        /// The kind of name.
        kind: NameKind,
        /// The offending name.
        name: String,
        /// The limit.
        max: usize,
    },
    /// The name contains a character that cannot be quoted safely for cmd.exe and PowerShell.
    #[error(
        "{} `{}` contains {:?}, which cannot be safely quoted for cmd.exe or PowerShell",
        kind.describe(), name.escape_debug(), bad
    )]
    BadChar {
        /// The kind of name.
        kind: NameKind,
        /// The offending name.
        name: String,
        /// The first offending character.
        bad: char,
    },
    /// The name starts or ends with a character that would read as a switch or be trimmed.
    #[error("{} `{name}` must start and end with a letter or digit", kind.describe())]
    BadEdge {
        /// The kind of name.
        kind: NameKind,
        /// The offending name.
        name: String,
    },
}

/// A validated name of a given [`NameKind`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Validates `s` as a name of `kind`.
    pub fn new(kind: NameKind, s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty { kind });
        }
        if s.chars().count() > kind.max_len() {
            return Err(NameError::TooLong {
                kind,
                name: s.to_owned(),
                max: kind.max_len(),
            });
        }
        if let Some(bad) = s.chars().find(|c| !kind.allows(*c)) {
            return Err(NameError::BadChar {
                kind,
                name: s.to_owned(),
                bad,
            });
        }
        let first_ok = match kind {
            NameKind::Path => {
                s.starts_with("\\\\") || s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            }
            NameKind::Args => {
                s.starts_with('/')
                    || s.starts_with('-')
                    || s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            }
            _ => s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()),
        };
        let last_ok = s
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == ')')
            || (kind == NameKind::Args && !s.ends_with(' '));
        if !first_ok || !last_ok {
            return Err(NameError::BadEdge {
                kind,
                name: s.to_owned(),
            });
        }
        Ok(Name(s.to_owned()))
    }

    /// A host name (validated as [`NameKind::Host`]).
    pub fn host(s: &str) -> Result<Self, NameError> {
        Self::new(NameKind::Host, s)
    }

    /// An identifier (validated as [`NameKind::Ident`]).
    pub fn ident(s: &str) -> Result<Self, NameError> {
        Self::new(NameKind::Ident, s)
    }

    /// An object name (validated as [`NameKind::Object`]).
    pub fn object(s: &str) -> Result<Self, NameError> {
        Self::new(NameKind::Object, s)
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name in double quotes for a cmd.exe command line (`"EVS 1"`). Safe because a
    /// validated name holds no `"`, `%`, `^`, `&`, `|`, `<`, `>`, `!` or control character.
    pub fn cmd_quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// The name in single quotes for PowerShell (`'EVS 1'`). Safe because a validated name
    /// holds no quote of any kind.
    pub fn ps_quoted(&self) -> String {
        format!("'{}'", self.0)
    }

    /// A path (validated as [`NameKind::Path`]).
    pub fn path(s: &str) -> Result<Self, NameError> {
        Self::new(NameKind::Path, s)
    }

    /// Installer arguments (validated as [`NameKind::Args`]); may be empty.
    pub fn args(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Ok(Name(String::new()));
        }
        Self::new(NameKind::Args, s)
    }

    /// The kind-independent check: is `s` a valid name of `kind`?
    pub fn is_valid(kind: NameKind, s: &str) -> bool {
        Self::new(kind, s).is_ok()
    }

    /// Case-insensitive comparison, as Windows compares computer and object names.
    pub fn eq_ignore_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Name {
    /// Accepts what some kind accepts (an object name, a path, installer switches, or the empty
    /// switch list), so a stored plan reads back; loaders that need a particular kind validate
    /// again with [`Name::new`]. Nothing a kind refuses (quotes, `%`, `&`, `|`...) gets through.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(Name(s));
        }
        Name::object(&s)
            .or_else(|_| Name::path(&s))
            .or_else(|_| Name::args(&s))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        assert!(Name::host("PRG-EX01").is_ok());
        assert!(Name::object("EVS 1").is_ok());
        assert!(Name::object("Exchange Virtual Server (EVS1)").is_ok());
        assert!(Name::ident("wave_1.prague").is_ok());
        assert!(Name::path("\\\\fs01\\sp2$\\setup\\i386\\update.exe").is_ok());
        assert!(Name::path("C:\\install\\E2K3SP2\\update.exe").is_ok());
        assert!(Name::args("/q /z").is_ok());
        assert!(Name::args("").is_ok());
        assert!(Name::path("C:\\x.exe & calc").is_err());
        assert!(Name::args("/q | calc").is_err());
    }

    #[test]
    fn refuses_injection() {
        for bad in [
            "EVS1\" & del c:\\*",
            "a|b",
            "a&b",
            "x%PATH%",
            "a^b",
            "it's",
            "a\nb",
            "a>b",
            "a!b",
        ] {
            assert!(Name::object(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(matches!(
            Name::host("node 1"),
            Err(NameError::BadChar { bad: ' ', .. })
        ));
        assert!(matches!(
            Name::object("-moveto"),
            Err(NameError::BadEdge { .. })
        ));
        assert!(matches!(Name::host(""), Err(NameError::Empty { .. })));
    }

    #[test]
    fn every_kind_reads_back_and_nothing_unsafe_does() {
        for n in [
            Name::path("\\\\fs01\\sp$\\update.exe").unwrap(),
            Name::args("/q /z").unwrap(),
            Name::args("").unwrap(),
            Name::object("EVS 1 Group").unwrap(),
        ] {
            let json = serde_json::to_string(&n).unwrap();
            assert_eq!(serde_json::from_str::<Name>(&json).unwrap(), n);
        }
        for bad in ["\"a&b\"", "\"x|y\"", "\"50%\""] {
            assert!(serde_json::from_str::<Name>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quotes() {
        let n = Name::object("EVS 1").unwrap();
        assert_eq!(n.cmd_quoted(), "\"EVS 1\"");
        assert_eq!(n.ps_quoted(), "'EVS 1'");
    }
}
