//! A modelled subset of Windows PowerShell 5.1, reached as `powershell.exe -NoProfile
//! -NonInteractive -EncodedCommand <base64 of the UTF-16LE script>` (or `-Command TEXT`).
//!
//! The script is read the way PowerShell reads it, in three stages: a tokenizer ([`lex`]:
//! words, `-Parameters`, quoted strings, numbers, `$variables` with `.Member` access, `|`, `;`,
//! `{ }`, `,`), a parser ([`parse`]: statements of pipelines of commands with named and
//! positional arguments, script blocks for `Where-Object`), and an evaluator over the node's
//! state (in `State::ps_command`). What is modelled is listed in `docs/lab-powershell.md`;
//! every other command answers as PowerShell does: a `CommandNotFoundException` error record on
//! the error stream and exit code 1.

use std::fmt::Write as _;

use base64::Engine as _;

/// A token of the script.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare word: a command name or an unquoted argument.
    Word(String),
    /// `-Name` (the dash removed); `-Name:value` carries its value.
    Param(String, Option<Box<Tok>>),
    /// A quoted string (quotes removed; `''` and `` `" `` unescaped).
    Str(String),
    /// An integer.
    Num(i64),
    /// `$name` with its `.Member` path (`$_.State` is `("_", ["State"])`).
    Var(String, Vec<String>),
    /// `|`.
    Pipe,
    /// `;` or a line break.
    Sep,
    /// `{`.
    LBrace,
    /// `}`.
    RBrace,
    /// `,`.
    Comma,
}

/// A value of the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    /// `$null`.
    Null,
    /// `$true` / `$false`.
    Bool(bool),
    /// An integer (enums are their numbers, as `ConvertTo-Json` writes them).
    Int(i64),
    /// A string.
    Str(String),
    /// An object: its properties in order.
    Obj(Vec<(String, Val)>),
    /// An array.
    Arr(Vec<Val>),
}

impl Val {
    /// A property, case-insensitively (`$null` when absent, as PowerShell).
    pub(crate) fn prop(&self, name: &str) -> Val {
        match self {
            Val::Obj(props) => props
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or(Val::Null),
            _ => Val::Null,
        }
    }

    /// The value as PowerShell converts it to a string.
    pub(crate) fn text(&self) -> String {
        match self {
            Val::Null => String::new(),
            Val::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
            Val::Int(i) => i.to_string(),
            Val::Str(s) => s.clone(),
            Val::Obj(_) => "System.Management.Automation.PSCustomObject".to_owned(),
            Val::Arr(a) => a.iter().map(Val::text).collect::<Vec<_>>().join(" "),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::Str(s) => !s.is_empty(),
            Val::Obj(_) => true,
            Val::Arr(a) => !a.is_empty(),
        }
    }

    /// JSON as `ConvertTo-Json` writes it (`-Compress`: no blanks).
    pub(crate) fn json(&self, compress: bool) -> String {
        let v = self.to_json();
        if compress {
            v.to_string()
        } else {
            serde_json::to_string_pretty(&v).unwrap_or_default()
        }
    }

    fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Val::Null => J::Null,
            Val::Bool(b) => J::Bool(*b),
            Val::Int(i) => J::from(*i),
            Val::Str(s) => J::String(s.clone()),
            Val::Arr(a) => J::Array(a.iter().map(Val::to_json).collect()),
            Val::Obj(props) => {
                let mut m = serde_json::Map::new();
                for (k, v) in props {
                    m.insert(k.clone(), v.to_json());
                }
                J::Object(m)
            }
        }
    }
}

/// An argument of a command.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    /// `-Name` with the value bound to it, if the parameter takes one.
    Named(String, Option<Expr>),
    /// A positional value.
    Pos(Expr),
}

/// An argument's value before evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// A literal.
    Lit(Val),
    /// `$name.Member...`.
    Var(String, Vec<String>),
    /// `a, b, c`.
    List(Vec<Expr>),
    /// `{ $_.X -op Y [-and|-or ...] }`.
    Block(Cond),
}

/// A condition of a `Where-Object` script block (or its simplified syntax).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    /// `left -op right`.
    Cmp(Box<Expr>, String, Box<Expr>),
    /// A value tested for truth.
    Truth(Box<Expr>),
    /// `a -and b`.
    And(Box<Cond>, Box<Cond>),
    /// `a -or b`.
    Or(Box<Cond>, Box<Cond>),
}

/// One command of a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Command {
    /// The name as written.
    pub name: String,
    /// Its arguments.
    pub args: Vec<Arg>,
    /// Column (1-based) where it starts, for error records.
    pub col: usize,
    /// The statement's text, for error records.
    pub line: String,
}

impl Command {
    /// The value of `-name` (case-insensitive, unambiguous prefixes accepted).
    pub(crate) fn named(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|a| match a {
            Arg::Named(n, _) => is_param(n, name),
            Arg::Pos(_) => false,
        })
    }

    /// Whether switch `-name` is present.
    pub(crate) fn switch(&self, name: &str) -> bool {
        self.named(name).is_some()
    }

    /// The positional arguments.
    pub(crate) fn positional(&self) -> Vec<&Expr> {
        self.args
            .iter()
            .filter_map(|a| match a {
                Arg::Pos(e) => Some(e),
                Arg::Named(..) => None,
            })
            .collect()
    }
}

/// Whether written parameter `written` names parameter `full` (PowerShell accepts any prefix).
pub(crate) fn is_param(written: &str, full: &str) -> bool {
    !written.is_empty()
        && full.len() >= written.len()
        && full[..written.len()].eq_ignore_ascii_case(written)
}

/// Parameters that take no value (switches), across the modelled cmdlets.
const SWITCHES: &[&str] = &[
    "Drain",
    "Wait",
    "ForceDrain",
    "Compress",
    "Force",
    "PassThru",
    "AsArray",
    "NoProfile",
    "NonInteractive",
    "Unique",
    "Sum",
    "Average",
    "Maximum",
    "Minimum",
];

/// A statement: a pipeline.
pub(crate) type Pipeline = Vec<Command>;

/// Decodes `-EncodedCommand`'s argument: base64 of the script in UTF-16LE.
pub(crate) fn decode(arg: &str) -> Result<String, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(arg.trim())
        .map_err(|_| "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded.".to_owned())?;
    if bytes.len() % 2 != 0 {
        return Err("Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded.".to_owned());
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Ok(String::from_utf16_lossy(&units))
}

/// A script the parser refuses, with PowerShell's message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseError(pub String);

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '|' | ';' | '{' | '}' | ',' | '(' | ')' | '"' | '\'')
}

/// Splits a script into tokens, each with its byte offset.
pub(crate) fn lex(src: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let word_at = |i: &mut usize| -> String {
        let mut s = String::new();
        while *i < chars.len() && is_word_char(chars[*i].1) {
            s.push(chars[*i].1);
            *i += 1;
        }
        s
    };
    while i < chars.len() {
        let (at, c) = chars[i];
        match c {
            '\n' | ';' => {
                out.push((at, Tok::Sep));
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '#' => {
                while i < chars.len() && chars[i].1 != '\n' {
                    i += 1;
                }
            }
            '|' => {
                out.push((at, Tok::Pipe));
                i += 1;
            }
            '{' => {
                out.push((at, Tok::LBrace));
                i += 1;
            }
            '}' => {
                out.push((at, Tok::RBrace));
                i += 1;
            }
            ',' => {
                out.push((at, Tok::Comma));
                i += 1;
            }
            '(' | ')' => {
                return Err(ParseError(
                    "Parenthesised expressions are not part of the lab's PowerShell subset."
                        .to_owned(),
                ))
            }
            '\'' | '"' => {
                let q = c;
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&(_, d)) = chars.get(i) else {
                        return Err(ParseError(format!(
                            "The string is missing the terminator: {q}."
                        )));
                    };
                    i += 1;
                    if q == '"' && d == '`' {
                        if let Some(&(_, e)) = chars.get(i) {
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                            i += 1;
                        }
                    } else if d == q {
                        if chars.get(i).map(|x| x.1) == Some(q) {
                            s.push(q);
                            i += 1;
                        } else {
                            break;
                        }
                    } else {
                        s.push(d);
                    }
                }
                out.push((at, Tok::Str(s)));
            }
            '$' => {
                i += 1;
                let w = word_at(&mut i);
                let mut parts = w.split('.');
                let name = parts.next().unwrap_or("").to_owned();
                out.push((at, Tok::Var(name, parts.map(str::to_owned).collect())));
            }
            '-' if chars.get(i + 1).is_some_and(|x| x.1.is_ascii_alphabetic()) => {
                i += 1;
                let w = word_at(&mut i);
                match w.split_once(':') {
                    Some((n, v)) => {
                        let value = lex(v)?.into_iter().next().map(|(_, t)| Box::new(t));
                        out.push((at, Tok::Param(n.to_owned(), value)));
                    }
                    None => out.push((at, Tok::Param(w, None))),
                }
            }
            _ => {
                let w = word_at(&mut i);
                match w.parse::<i64>() {
                    Ok(n) => out.push((at, Tok::Num(n))),
                    Err(_) => out.push((at, Tok::Word(w))),
                }
            }
        }
    }
    Ok(out)
}

const OPERATORS: &[&str] = &[
    "eq", "ne", "gt", "ge", "lt", "le", "like", "notlike", "match", "contains", "in",
];

struct Parser<'a> {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    src: &'a str,
}

/// Parses a script into statements of pipelines.
pub(crate) fn parse(src: &str) -> Result<Vec<Pipeline>, ParseError> {
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
        src,
    };
    let mut out = Vec::new();
    while p.pos < p.toks.len() {
        if matches!(p.peek(), Some(Tok::Sep)) {
            p.pos += 1;
            continue;
        }
        out.push(p.pipeline()?);
    }
    Ok(out)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }

    fn pipeline(&mut self) -> Result<Pipeline, ParseError> {
        let mut cmds = vec![self.command()?];
        while matches!(self.peek(), Some(Tok::Pipe)) {
            self.pos += 1;
            while matches!(self.peek(), Some(Tok::Sep)) {
                self.pos += 1;
            }
            cmds.push(self.command()?);
        }
        Ok(cmds)
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let at = self.toks.get(self.pos).map(|(a, _)| *a).unwrap_or(0);
        let line_start = self.src[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line_end = self.src[at..]
            .find('\n')
            .map(|i| at + i)
            .unwrap_or(self.src.len());
        let line = self.src[line_start..line_end].trim_end().to_owned();
        let col = self.src[line_start..at].chars().count() + 1;
        let name = match self.next() {
            Some(Tok::Word(w)) => w,
            Some(Tok::Var(v, m)) if m.is_empty() => format!("${v}"),
            Some(Tok::Str(s)) => s,
            Some(Tok::Num(n)) => n.to_string(),
            other => {
                return Err(ParseError(format!(
                    "An empty pipe element is not allowed (found {other:?})."
                )))
            }
        };
        let mut args = Vec::new();
        loop {
            match self.peek() {
                None | Some(Tok::Pipe | Tok::Sep | Tok::RBrace) => break,
                Some(Tok::Param(..)) => {
                    let Some(Tok::Param(n, inline)) = self.next() else {
                        unreachable!()
                    };
                    let value = match inline {
                        Some(t) => Some(self.value_of(*t)?),
                        None if SWITCHES.iter().any(|s| s.eq_ignore_ascii_case(&n)) => None,
                        None => match self.peek() {
                            None | Some(Tok::Pipe | Tok::Sep | Tok::RBrace | Tok::Param(..)) => {
                                None
                            }
                            _ => Some(self.list()?),
                        },
                    };
                    args.push(Arg::Named(n, value));
                }
                _ => args.push(Arg::Pos(self.list()?)),
            }
        }
        Ok(Command {
            name,
            args,
            col,
            line,
        })
    }

    /// A value, or a comma-separated list of values.
    fn list(&mut self) -> Result<Expr, ParseError> {
        let first = self.value()?;
        if !matches!(self.peek(), Some(Tok::Comma)) {
            return Ok(first);
        }
        let mut items = vec![first];
        while matches!(self.peek(), Some(Tok::Comma)) {
            self.pos += 1;
            items.push(self.value()?);
        }
        Ok(Expr::List(items))
    }

    fn value(&mut self) -> Result<Expr, ParseError> {
        match self.next() {
            Some(Tok::LBrace) => {
                let c = self.cond()?;
                match self.next() {
                    Some(Tok::RBrace) => Ok(Expr::Block(c)),
                    _ => Err(ParseError(
                        "Missing closing '}' in statement block or type definition.".to_owned(),
                    )),
                }
            }
            Some(t) => self.value_of(t),
            None => Err(ParseError("Missing an argument.".to_owned())),
        }
    }

    fn value_of(&mut self, t: Tok) -> Result<Expr, ParseError> {
        Ok(match t {
            Tok::Str(s) => Expr::Lit(Val::Str(s)),
            Tok::Num(n) => Expr::Lit(Val::Int(n)),
            Tok::Word(w) => Expr::Lit(Val::Str(w)),
            Tok::Var(v, m) => match (v.to_ascii_lowercase().as_str(), m.is_empty()) {
                ("true", true) => Expr::Lit(Val::Bool(true)),
                ("false", true) => Expr::Lit(Val::Bool(false)),
                ("null", true) => Expr::Lit(Val::Null),
                _ => Expr::Var(v, m),
            },
            other => {
                return Err(ParseError(format!(
                    "Unexpected token {other:?} in expression or statement."
                )))
            }
        })
    }

    fn cond(&mut self) -> Result<Cond, ParseError> {
        let mut left = self.cmp()?;
        loop {
            match self.peek() {
                Some(Tok::Param(op, None)) if op.eq_ignore_ascii_case("and") => {
                    self.pos += 1;
                    left = Cond::And(Box::new(left), Box::new(self.cmp()?));
                }
                Some(Tok::Param(op, None)) if op.eq_ignore_ascii_case("or") => {
                    self.pos += 1;
                    left = Cond::Or(Box::new(left), Box::new(self.cmp()?));
                }
                _ => return Ok(left),
            }
        }
    }

    fn cmp(&mut self) -> Result<Cond, ParseError> {
        let left = self.value()?;
        match self.peek() {
            Some(Tok::Param(op, None))
                if OPERATORS
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(op.trim_start_matches(['c', 'i'])))
                    && !op.eq_ignore_ascii_case("and")
                    && !op.eq_ignore_ascii_case("or") =>
            {
                let op = op.to_ascii_lowercase();
                self.pos += 1;
                let right = self.value()?;
                Ok(Cond::Cmp(Box::new(left), op, Box::new(right)))
            }
            _ => Ok(Cond::Truth(Box::new(left))),
        }
    }
}

/// Evaluates an argument against `$_` = `item`.
pub(crate) fn eval(e: &Expr, item: &Val) -> Val {
    match e {
        Expr::Lit(v) => v.clone(),
        Expr::Var(name, members) => {
            let mut v = if name == "_" || name.eq_ignore_ascii_case("PSItem") {
                item.clone()
            } else {
                Val::Null
            };
            for m in members {
                v = v.prop(m);
            }
            v
        }
        Expr::List(items) => Val::Arr(items.iter().map(|i| eval(i, item)).collect()),
        Expr::Block(_) => Val::Null,
    }
}

/// Compares two values as PowerShell does: the left side's type decides; strings ignore case.
fn compare(l: &Val, op: &str, r: &Val) -> bool {
    let op = op.trim_start_matches('i');
    let (case, op) = match op.strip_prefix('c') {
        Some(rest) if OPERATORS.contains(&rest) => (true, rest),
        _ => (false, op),
    };
    let norm = |s: String| if case { s } else { s.to_lowercase() };
    match op {
        "contains" => match l {
            Val::Arr(a) => a.iter().any(|x| compare(x, "eq", r)),
            other => compare(other, "eq", r),
        },
        "in" => compare(r, "contains", l),
        "like" | "notlike" => {
            let ok = glob(&norm(l.text()), &norm(r.text()));
            ok == (op == "like")
        }
        "match" => norm(l.text()).contains(&norm(r.text())),
        _ => {
            let ord = match (l, r) {
                (Val::Int(a), _) => r.text().trim().parse::<i64>().ok().map(|b| a.cmp(&b)),
                _ => Some(norm(l.text()).cmp(&norm(r.text()))),
            };
            let Some(ord) = ord else { return op == "ne" };
            match op {
                "eq" => ord.is_eq(),
                "ne" => ord.is_ne(),
                "gt" => ord.is_gt(),
                "ge" => ord.is_ge(),
                "lt" => ord.is_lt(),
                "le" => ord.is_le(),
                _ => false,
            }
        }
    }
}

/// `-like` wildcards: `*` and `?`.
fn glob(s: &str, pat: &str) -> bool {
    let (s, p): (Vec<char>, Vec<char>) = (s.chars().collect(), pat.chars().collect());
    let (mut si, mut pi, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether `item` passes a `Where-Object` condition.
pub(crate) fn test(c: &Cond, item: &Val) -> bool {
    match c {
        Cond::Cmp(l, op, r) => compare(&eval(l, item), op, &eval(r, item)),
        Cond::Truth(e) => eval(e, item).truthy(),
        Cond::And(a, b) => test(a, item) && test(b, item),
        Cond::Or(a, b) => test(a, item) || test(b, item),
    }
}

/// The error record PowerShell writes for a failed command, as the error stream shows it.
pub(crate) fn error_record(cmd: &Command, message: &str, category: &str, id: &str) -> String {
    let mut s = format!(
        "{} : {message}\r\nAt line:1 char:{}\r\n+ {}\r\n+ {}{}\r\n",
        cmd.name,
        cmd.col,
        cmd.line,
        " ".repeat(cmd.col.saturating_sub(1)),
        "~".repeat(cmd.name.chars().count().max(1)),
    );
    let _ = write!(
        s,
        "    + CategoryInfo          : {category}\r\n    + FullyQualifiedErrorId : {id}\r\n \r\n"
    );
    s
}

/// The error record of a command PowerShell does not know.
pub(crate) fn not_found(cmd: &Command) -> String {
    error_record(
        cmd,
        &format!(
            "The term '{}' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.",
            cmd.name
        ),
        &format!("ObjectNotFound: ({}:String) [], CommandNotFoundException", cmd.name),
        "CommandNotFoundException",
    )
}

/// Default formatting of output that is not converted: one value per line, objects as
/// `Name : Value` lists.
pub(crate) fn format_default(items: &[Val]) -> String {
    let mut out = String::new();
    for v in items {
        match v {
            Val::Obj(props) => {
                let w = props.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                out.push_str("\r\n");
                for (k, v) in props {
                    let _ = write!(out, "{k:<w$} : {}\r\n", v.text());
                }
            }
            Val::Null => {}
            other => {
                out.push_str(&other.text());
                out.push_str("\r\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pipelines_parameters_and_blocks() {
        let s = parse(
            "Get-ClusterNode | Where-Object { $_.State -eq 'Up' -and $_.Name -like 'N*' } | Select-Object Name,State | ConvertTo-Json -Compress\nSuspend-ClusterNode -Name N1 -Drain -Wait; exit 3",
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].len(), 4);
        assert_eq!(s[0][0].name, "Get-ClusterNode");
        assert!(matches!(
            &s[0][1].args[0],
            Arg::Pos(Expr::Block(Cond::And(..)))
        ));
        assert_eq!(
            s[0][2].args,
            vec![Arg::Pos(Expr::List(vec![
                Expr::Lit(Val::Str("Name".into())),
                Expr::Lit(Val::Str("State".into()))
            ]))]
        );
        assert!(s[0][3].switch("Compress"));
        let susp = &s[1][0];
        assert!(susp.switch("Drain") && susp.switch("Wait"));
        assert_eq!(
            susp.named("Name"),
            Some(&Arg::Named(
                "Name".into(),
                Some(Expr::Lit(Val::Str("N1".into())))
            ))
        );
        assert_eq!(s[2][0].name, "exit");
    }

    #[test]
    fn strings_escape_like_powershell() {
        let t = lex(r#"'it''s' "a`"b" -Confirm:$false # comment"#).unwrap();
        let toks: Vec<Tok> = t.into_iter().map(|(_, t)| t).collect();
        assert_eq!(
            toks,
            vec![
                Tok::Str("it's".into()),
                Tok::Str("a\"b".into()),
                Tok::Param(
                    "Confirm".into(),
                    Some(Box::new(Tok::Var("false".into(), vec![])))
                ),
            ]
        );
        assert!(lex("'open").is_err());
    }

    #[test]
    fn where_conditions_compare_like_powershell() {
        let item = Val::Obj(vec![
            ("Name".into(), Val::Str("SQL1".into())),
            ("State".into(), Val::Int(0)),
        ]);
        let s = parse("Where-Object { $_.name -eq 'sql1' -and $_.State -lt 2 }").unwrap();
        let Arg::Pos(Expr::Block(c)) = &s[0][0].args[0] else {
            panic!()
        };
        assert!(test(c, &item));
        let s = parse("Where-Object { $_.Name -ceq 'sql1' -or $_.State -gt 0 }").unwrap();
        let Arg::Pos(Expr::Block(c)) = &s[0][0].args[0] else {
            panic!()
        };
        assert!(!test(c, &item));
    }

    #[test]
    fn encoded_commands_are_utf16le_base64() {
        let script = "Get-HotFix -Id KB5035849";
        let bytes: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert_eq!(decode(&b64).unwrap(), script);
        assert!(decode("not base64!").is_err());
    }

    #[test]
    fn json_is_compact_on_request() {
        let v = Val::Obj(vec![
            ("Name".into(), Val::Str("N1".into())),
            ("State".into(), Val::Int(2)),
        ]);
        assert_eq!(v.json(true), r#"{"Name":"N1","State":2}"#);
        assert!(v.json(false).contains("\n"));
    }
}
