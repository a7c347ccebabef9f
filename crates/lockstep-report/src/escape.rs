//! Escaping of run data for HTML/SVG text and attributes, and for Markdown.
//!
//! Everything that comes from a run (names, step output, messages, meta) goes through one of
//! these functions before it reaches the report.

/// Escapes `s` for HTML or SVG text and for a double- or single-quoted attribute value.
///
/// Characters that XML forbids (C0 controls other than tab, newline and carriage return, and
/// U+FFFE/U+FFFF) become U+FFFD, so the SVG stays well-formed whatever a node printed.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    push_html(&mut out, s);
    out
}

/// [`html`], appended to `out`.
pub fn push_html(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push('\u{fffd}')
            }
            c => out.push(c),
        }
    }
}

/// [`html`], then every pair of backticks (`` `PRG-N1` ``, as error messages name objects) turns
/// into a `<code>` element; an unpaired backtick stays as it is.
pub fn html_ticks(s: &str) -> String {
    let escaped = html(s);
    let parts: Vec<&str> = escaped.split('`').collect();
    let mut out = String::with_capacity(escaped.len() + 16);
    let pairs = (parts.len() - 1) / 2;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            if i <= pairs * 2 {
                out.push_str(if i % 2 == 1 { "<code>" } else { "</code>" });
            } else {
                out.push('`');
            }
        }
        out.push_str(part);
    }
    out
}

/// Escapes `s` for a Markdown table cell: one line, no `|`, no inline HTML, no emphasis.
pub fn md_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut last_space = false;
    for c in s.chars() {
        match c {
            '\r' | '\n' | '\t' => {
                if !last_space {
                    out.push(' ');
                }
                last_space = true;
                continue;
            }
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
        last_space = false;
    }
    out.trim().to_owned()
}

/// [`md_cell`], except that text between a pair of backticks (how messages name objects:
/// `` host `PRG-N1` ``) becomes a code span; an unpaired backtick is escaped.
pub fn md_text(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    let pairs = (parts.len() - 1) / 2;
    let mut out = String::with_capacity(s.len() + 8);
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        if i % 2 == 1 && i < pairs * 2 + 1 && !last {
            out.push_str(&md_code(part));
        } else {
            if i > pairs * 2 {
                out.push_str("\\`");
            }
            // Keep the spaces around a code span: md_cell trims.
            let cell = md_cell(part);
            let lead = i > 0 && part.starts_with(char::is_whitespace);
            let trail = !last && part.ends_with(char::is_whitespace);
            if cell.is_empty() {
                if lead || trail {
                    out.push(' ');
                }
            } else {
                if lead {
                    out.push(' ');
                }
                out.push_str(&cell);
                if trail {
                    out.push(' ');
                }
            }
        }
    }
    out
}

/// `s` as a Markdown code span, with a fence longer than any run of backticks inside it.
pub fn md_code(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let fence = "`".repeat(longest_backtick_run(&one_line) + 1);
    let pad = if one_line.starts_with('`') || one_line.ends_with('`') {
        " "
    } else {
        ""
    };
    // A `|` inside a code span still ends a table cell in GFM; its escape is honoured there.
    let body = one_line.replace('|', "\\|");
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// A fence (three or more backticks) that no line of `s` can close.
pub fn md_fence(s: &str) -> String {
    "`".repeat((longest_backtick_run(s) + 1).max(3))
}

fn longest_backtick_run(s: &str) -> usize {
    let mut best = 0;
    let mut run = 0;
    for c in s.chars() {
        if c == '`' {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup_quotes_and_controls() {
        assert_eq!(
            html("<a href=\"x\">&'\u{0}</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;\u{fffd}&lt;/a&gt;"
        );
        assert_eq!(html("line1\nline2\ttab"), "line1\nline2\ttab");
    }

    #[test]
    fn ticks_become_code_after_escaping() {
        assert_eq!(
            html_ticks("host `PRG-N1` <b> `x"),
            "host <code>PRG-N1</code> &lt;b&gt; `x"
        );
        assert_eq!(html_ticks("`<i>`"), "<code>&lt;i&gt;</code>");
    }

    #[test]
    fn md_cell_is_one_inert_line() {
        assert_eq!(md_cell("a|b\n<script>*x*"), "a\\|b \\<script\\>\\*x\\*");
    }

    #[test]
    fn md_text_keeps_named_objects_as_code() {
        assert_eq!(
            md_text("host `PRG-N1` is <b>down</b>; run `lockstep resume`"),
            "host `PRG-N1` is \\<b\\>down\\</b\\>; run `lockstep resume`"
        );
        assert_eq!(md_text("odd ` tick"), "odd \\` tick");
        assert_eq!(md_text("`a|b`"), "`a\\|b`");
    }

    #[test]
    fn md_code_outgrows_backticks() {
        assert_eq!(md_code("PRG-N1"), "`PRG-N1`");
        assert_eq!(md_code("a``b"), "```a``b```");
        assert_eq!(md_code("`x"), "`` `x ``");
        assert_eq!(md_fence("no ticks"), "```");
        assert_eq!(md_fence("````"), "`````");
    }
}
