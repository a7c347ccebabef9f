//! Splitting a cmd.exe command line into words, as the C runtime of Windows programs does:
//! whitespace separates words, double quotes group (and are removed), nothing escapes.

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdLine {
    /// The words, quotes removed.
    pub words: Vec<String>,
    /// The text after the first word, untouched (what `echo` prints).
    pub rest: String,
}

impl CmdLine {
    /// Parses `line`.
    pub fn parse(line: &str) -> CmdLine {
        let line = line.trim_start();
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        let mut quoted = false;
        let mut first_end = None;
        for (i, c) in line.char_indices() {
            match c {
                '"' => {
                    quoted = !quoted;
                    in_word = true;
                }
                c if c.is_whitespace() && !quoted => {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                        if first_end.is_none() {
                            first_end = Some(i);
                        }
                    }
                }
                c => {
                    cur.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            words.push(cur);
        }
        let rest = match first_end {
            Some(i) => line[i..].strip_prefix([' ', '\t']).unwrap_or(&line[i..]),
            None => "",
        };
        CmdLine {
            words,
            rest: rest.trim_end_matches(['\r', '\n']).to_owned(),
        }
    }

    /// The command's name: the first word's file name, lower-cased, `.exe` removed.
    pub fn command(&self) -> String {
        let first = self.words.first().map(String::as_str).unwrap_or("");
        let base = first.rsplit(['\\', '/']).next().unwrap_or(first);
        let lower = base.to_ascii_lowercase();
        lower
            .strip_suffix(".exe")
            .map(str::to_owned)
            .unwrap_or(lower)
    }

    /// The first word as typed (quotes removed).
    pub fn program(&self) -> &str {
        self.words.first().map(String::as_str).unwrap_or("")
    }

    /// Words after the first.
    pub fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or(&[])
    }
}

/// Whether `arg` is the switch `/name` or `-name` (case-insensitive), returning its `:value`.
pub fn switch<'a>(arg: &'a str, name: &str) -> Option<Option<&'a str>> {
    let body = arg.strip_prefix('/').or_else(|| arg.strip_prefix('-'))?;
    let (key, value) = match body.split_once(':') {
        Some((k, v)) => (k, Some(v)),
        None => (body, None),
    };
    key.eq_ignore_ascii_case(name).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quotes_and_spaces() {
        let c = CmdLine::parse(r#"cluster group "EVS1 Group" /moveto:NODE2 /wait:120"#);
        assert_eq!(
            c.words,
            [
                "cluster",
                "group",
                "EVS1 Group",
                "/moveto:NODE2",
                "/wait:120"
            ]
        );
        assert_eq!(c.command(), "cluster");
        let c = CmdLine::parse(r#""\\fs01\install$\E2K3SP2\setup\i386\update.exe" /q /z"#);
        assert_eq!(
            c.program(),
            r"\\fs01\install$\E2K3SP2\setup\i386\update.exe"
        );
        assert_eq!(c.command(), "update");
        let c = CmdLine::parse("echo  hello \"world\"");
        assert_eq!(c.rest, " hello \"world\"");
        assert_eq!(
            CmdLine::parse("C:\\WINDOWS\\system32\\NET.EXE stop x").command(),
            "net"
        );
        assert_eq!(switch("/MoveTo:N1", "moveto"), Some(Some("N1")));
        assert_eq!(switch("-offline", "offline"), Some(None));
        assert_eq!(switch("/online", "offline"), None);
    }
}
