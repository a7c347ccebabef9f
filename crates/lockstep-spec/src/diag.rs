//! Source files and positioned diagnostics.

use std::fmt;
use std::path::Path;
use std::rc::Rc;

/// A YAML text and the path shown in its diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as shown in errors (`inventory/lab.yml`).
    pub path: String,
    /// The whole text.
    pub text: String,
    /// A `group_vars/` or `host_vars/` file found beside the playbook rather than beside an
    /// inventory source: Ansible ranks those above the inventory's.
    pub beside_playbook: bool,
}

impl SourceFile {
    /// A source file from a path and a text already in memory.
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            path: path.into(),
            text: text.into(),
            beside_playbook: false,
        }
    }

    /// Reads a file; a read failure (or text that is not UTF-8) is a diagnostic at `1:1`.
    ///
    /// Hostile input is refused before it costs anything: only regular files are opened (a FIFO
    /// would block, `/dev/zero` never ends), at most [`MAX_FILE_BYTES`] are read, and a NUL byte
    /// (which YAML parsers treat as the end of the text) is an error at its line and column.
    pub fn read(path: &Path) -> Result<SourceFile, Diagnostics> {
        use std::io::Read as _;
        let shown = path.display().to_string();
        let fail = |line: usize, col: usize, message: String| {
            Diagnostics(vec![Diagnostic {
                file: shown.clone(),
                line,
                col,
                message,
            }])
        };
        let meta = std::fs::metadata(path)
            .map_err(|e| fail(1, 1, format!("cannot read `{shown}`: {e}")))?;
        if !meta.is_file() {
            let what = if meta.is_dir() {
                "a directory"
            } else {
                "not a regular file (a FIFO, socket or device)"
            };
            return Err(fail(1, 1, format!("cannot read `{shown}`: it is {what}")));
        }
        let too_big = |n: u64| {
            fail(
                1,
                1,
                format!(
                    "`{shown}` is {n} bytes or more; inventory, playbook and variable files are \
                     limited to {} MiB",
                    MAX_FILE_BYTES >> 20
                ),
            )
        };
        if meta.len() > MAX_FILE_BYTES {
            return Err(too_big(meta.len()));
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| fail(1, 1, format!("cannot read `{shown}`: {e}")))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(too_big(bytes.len() as u64));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let (line, col) = line_col(&e.as_bytes()[..e.utf8_error().valid_up_to()]);
            fail(line, col, format!("`{shown}` is not UTF-8 text"))
        })?;
        if let Some(i) = text.find('\0') {
            let (line, col) = line_col(&text.as_bytes()[..i]);
            return Err(fail(
                line,
                col,
                "a NUL byte is not allowed in the text".into(),
            ));
        }
        Ok(SourceFile {
            path: shown,
            text,
            beside_playbook: false,
        })
    }
}

/// The largest file [`SourceFile::read`] accepts (a 40,000-host inventory is about 4 MiB).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// The 1-based line and column just after `before`.
fn line_col(before: &[u8]) -> (usize, usize) {
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, col)
}

/// One error, at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Diagnostic {
    /// The file, as [`SourceFile::path`] gives it.
    pub file: String,
    /// Line, 1-based.
    pub line: usize,
    /// Column in characters, 1-based.
    pub col: usize,
    /// What is wrong; names the offending value in backticks.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

/// Every error found in one load, in file/line/column order.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Whether no error was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many errors were found.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The errors.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A position in a source file (shared file name, 1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Pos {
    pub file: Rc<str>,
    pub line: usize,
    pub col: usize,
}

/// Collects diagnostics during one load.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    diags: Vec<Diagnostic>,
}

impl Sink {
    pub fn error(&mut self, pos: &Pos, message: impl Into<String>) {
        let d = Diagnostic {
            file: pos.file.to_string(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
        };
        tracing::debug!(%d, "spec diagnostic");
        self.diags.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.diags.extend(other.0);
    }

    pub fn has_errors(&self) -> bool {
        !self.diags.is_empty()
    }

    /// `Ok(value)` if nothing was reported, else every diagnostic, sorted and deduplicated.
    pub fn finish<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.diags.is_empty() {
            Ok(value)
        } else {
            Err(self.into_diagnostics())
        }
    }

    /// Every diagnostic, sorted by position and deduplicated.
    pub fn into_diagnostics(self) -> Diagnostics {
        let mut d = self.diags;
        // Stable: keeps the order of errors found at the same position.
        d.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
        d.dedup();
        Diagnostics(d)
    }
}

/// The known word closest to `word` (edit distance at most a third of its length, at least 2).
pub(crate) fn did_you_mean<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    if word.len() >= 4 {
        if let Some(k) = known.iter().find(|k| k.starts_with(word)) {
            return Some(k);
        }
    }
    known
        .iter()
        .map(|k| (strsim::levenshtein(word, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// ` (did you mean `x`?)` or nothing.
pub(crate) fn hint(word: &str, known: &[&str]) -> String {
    did_you_mean(word, known)
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// Quotes a value for a message: backticks, with control characters escaped.
pub(crate) fn q(s: &str) -> String {
    format!("`{}`", s.escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words() {
        assert_eq!(
            did_you_mean("hostz", &["hosts", "vars", "children"]),
            Some("hosts")
        );
        assert_eq!(did_you_mean("zzzzzz", &["hosts", "vars"]), None);
    }
}
