//! Escaping of run data for HTML/SVG text and attributes, and for Markdown.
//!
//! Everything that comes from a run (names, step output, messages, meta) goes through one of
//! these functions before it reaches the report: in the HTML report the template engine calls
//! [`formatter`] for every value (autoescape); the Markdown renderer calls the `md_*` functions.

use std::fmt;

use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Error, Output, State};

/// Which templates autoescape: HTML and SVG ones (`report.html`, `timeline.svg`).
pub fn auto_escape(name: &str) -> AutoEscape {
    if name.ends_with(".html") || name.ends_with(".svg") {
        AutoEscape::Html
    } else {
        AutoEscape::None
    }
}

/// The minijinja formatter of the report's templates. Where the template autoescapes (its
/// name ends in `.html` or `.svg`), a value not marked safe is written through [`write_html`];
/// anything else is written as minijinja's own formatter would.
///
/// minijinja's HTML escaping would let C0 controls through (an SVG with one is not
/// well-formed XML) and turns every `/` of a step id into `&#x2f;`; this one does neither.
pub fn formatter(out: &mut Output<'_>, state: &State<'_, '_>, value: &Value) -> Result<(), Error> {
    if state.auto_escape() != AutoEscape::Html || value.is_safe() {
        return minijinja::escape_formatter(out, state, value);
    }
    match value.as_str() {
        Some(s) => write_html(out, s),
        // A number's text has nothing to escape.
        None if value.kind() == ValueKind::Number => write!(out, "{value}"),
        None => write_html(out, &value.to_string()),
    }
    .map_err(Error::from)
}

/// Writes `s` escaped for HTML or SVG text and for a double- or single-quoted attribute value.
///
/// Characters that XML forbids (C0 controls other than tab, newline and carriage return, DEL,
/// and U+FFFE/U+FFFF) become U+FFFD, so the SVG stays well-formed whatever a node printed.
pub fn write_html<W: fmt::Write + ?Sized>(out: &mut W, s: &str) -> fmt::Result {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let replacement = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            '\t' | '\n' | '\r' => continue,
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{fffe}' || c == '\u{ffff}' => {
                "\u{fffd}"
            }
            _ => continue,
        };
        out.write_str(&s[start..i])?;
        out.write_str(replacement)?;
        start = i + c.len_utf8();
    }
    out.write_str(&s[start..])
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

    fn render(template: &str, name: &str, x: &str) -> String {
        let mut env = minijinja::Environment::new();
        env.set_auto_escape_callback(auto_escape);
        env.set_formatter(formatter);
        env.add_template(name, template).unwrap();
        env.get_template(name)
            .unwrap()
            .render(minijinja::context! { x })
            .unwrap()
    }

    #[test]
    fn html_escapes_markup_quotes_and_controls() {
        let mut s = String::new();
        write_html(&mut s, "<a href=\"x/y\">&'\u{0}\u{1b}</a>").unwrap();
        assert_eq!(
            s,
            "&lt;a href=&quot;x/y&quot;&gt;&amp;&#39;\u{fffd}\u{fffd}&lt;/a&gt;"
        );
        s.clear();
        write_html(&mut s, "line1\nline2\ttab é").unwrap();
        assert_eq!(s, "line1\nline2\ttab é");
    }

    #[test]
    fn the_formatter_escapes_what_html_templates_print() {
        let hostile = "<script>alert(1)</script> \"'&";
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &quot;&#39;&amp;";
        assert_eq!(
            render("<p>{{ x }}</p>", "t.html", hostile),
            format!("<p>{escaped}</p>")
        );
        assert_eq!(
            render("<text>{{ x }}</text>", "t.svg", hostile),
            format!("<text>{escaped}</text>")
        );
        // Marked safe, or in a template that does not autoescape, it is printed as it is.
        assert_eq!(render("{{ x|safe }}", "t.html", hostile), hostile);
        assert_eq!(render("{{ x }}", "t.txt", hostile), hostile);
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
