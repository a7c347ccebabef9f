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
}

impl SourceFile {
    /// A source file from a path and a text already in memory.
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    /// Reads a file; a read failure (or text that is not UTF-8) is a diagnostic at `1:1`.
    pub fn read(path: &Path) -> Result<SourceFile, Diagnostics> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(SourceFile { path: shown, text }),
            Err(e) => Err(Diagnostics(vec![Diagnostic {
                file: shown.clone(),
                line: 1,
                col: 1,
                message: format!("cannot read `{shown}`: {e}"),
            }])),
        }
    }
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
        .map(|k| (levenshtein(word, k), *k))
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

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
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
