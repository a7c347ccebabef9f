//! The HTML report: well-formed, everything escaped, the timeline's bars and halt marker.

use lockstep_core::{RunRecord, RunStatus, StepState};

use crate::fixture;

const VOID: [&str; 6] = ["meta", "link", "br", "hr", "img", "input"];

/// Checks that every tag is closed in order (void elements and `/>` aside), that `<` in text
/// always starts a tag, and skips the inside of `<style>`. Returns the open/close pairs seen.
pub fn check_balanced(doc: &str) -> Result<usize, String> {
    let mut stack: Vec<String> = Vec::new();
    let mut pairs = 0;
    let mut rest = doc;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        if let Some(after) = rest.strip_prefix('!') {
            let gt = after.find('>').ok_or("unterminated <!")?;
            rest = &after[gt + 1..];
            continue;
        }
        let closing = rest.starts_with('/');
        let body = if closing { &rest[1..] } else { rest };
        let name_len = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(body.len());
        if name_len == 0 || !body.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(format!(
                "`<` not starting a tag near {:?}",
                &rest[..rest.len().min(40)]
            ));
        }
        let name = body[..name_len].to_ascii_lowercase();
        let gt = body
            .find('>')
            .ok_or_else(|| format!("unterminated <{name}"))?;
        let tag = &body[..gt];
        rest = &body[gt + 1..];
        if closing {
            match stack.pop() {
                Some(open) if open == name => pairs += 1,
                other => return Err(format!("</{name}> closes {other:?}")),
            }
        } else if tag.ends_with('/') || VOID.contains(&name.as_str()) {
        } else if name == "style" || name == "script" {
            let end = format!("</{name}>");
            let at = rest
                .find(&end)
                .ok_or_else(|| format!("unterminated <{name}>"))?;
            rest = &rest[at + end.len()..];
            pairs += 1;
        } else {
            stack.push(name);
        }
    }
    if stack.is_empty() {
        Ok(pairs)
    } else {
        Err(format!("unclosed: {stack:?}"))
    }
}

/// The `<svg>…</svg>` of the document.
fn svg(doc: &str) -> &str {
    let a = doc.find("<svg").unwrap();
    let b = doc.find("</svg>").unwrap();
    &doc[a..b + 6]
}

/// The value of `attr="…"` in `tag`.
fn attr(tag: &str, name: &str) -> f64 {
    let key = format!(" {name}=\"");
    let at = tag.find(&key).unwrap() + key.len();
    tag[at..].split('"').next().unwrap().parse().unwrap()
}

#[test]
fn document_is_balanced() {
    for run in [fixture::halted_two_node(), fixture::finished_two_node()] {
        let doc = lockstep_report::html(&run);
        let pairs = check_balanced(&doc).unwrap();
        assert!(pairs > 100, "{pairs}");
        assert!(doc.starts_with("<!DOCTYPE html>"));
    }
}

#[test]
fn the_balance_check_catches_broken_markup() {
    assert!(check_balanced("<div><p>x</div></p>").is_err());
    assert!(check_balanced("<div>a < b</div>").is_err());
    assert!(check_balanced("<div>").is_err());
    assert_eq!(check_balanced("<p><br>x<rect/></p>"), Ok(1));
}

#[test]
fn nothing_is_loaded_from_anywhere() {
    let doc = lockstep_report::html(&fixture::halted_two_node());
    for bad in [
        "<script", "<link", "<img", "src=", "url(", "@import", "http://", "https://",
    ] {
        // The SVG namespace is a name, not a resource.
        let n = doc.matches(bad).count()
            - doc.matches("http://www.w3.org/2000/svg").count() * usize::from(bad == "http://");
        assert_eq!(n, 0, "{bad}");
    }
    assert!(doc.contains("Content-Security-Policy\" content=\"default-src 'none'"));
}

fn hostile(mut run: RunRecord) -> RunRecord {
    const H: &str = "<script>alert('x')</script> & \"Q\" <img src=x onerror=alert(1)> ]]> `t`";
    run.id.0 = format!("r1{H}");
    run.meta.started_by = H.into();
    run.meta.inventory = H.into();
    run.meta.playbook = H.into();
    run.meta.limit = vec![H.into()];
    run.meta.owners.insert(H.into(), H.into());
    run.approvals.push(lockstep_core::Approval {
        what: H.into(),
        by: H.into(),
        at_ms: 0,
    });
    run.plan.hash.0 = format!("ab\"cd{H}");
    run.plan.stages[0].name = H.into();
    for (s, p) in run.steps.iter_mut().zip(run.plan.steps.iter_mut()) {
        s.output = format!("{}\u{0}\u{1b}[31m{H}\n", s.output);
        s.message = H.into();
        p.id = format!("{}{H}", p.id);
        s.step = p.id.clone();
        p.name = H.into();
        p.rule = H.into();
    }
    for f in &mut run.facts {
        f.value = H.into();
        f.key = format!("build.{H}");
    }
    if let RunStatus::Halted { reason, .. } = &mut run.status {
        *reason = H.into();
    }
    run
}

#[test]
fn everything_from_the_run_is_escaped() {
    let run = hostile(fixture::halted_two_node());
    let doc = lockstep_report::html(&run);
    check_balanced(&doc).unwrap();
    assert!(!doc.contains("<script"));
    assert!(!doc.contains("<img"));
    assert!(!doc.contains("\"Q\""));
    assert!(!doc.contains("'x'"));
    assert!(!doc.contains('\u{0}') && !doc.contains('\u{1b}'));
    assert!(
        doc.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Q&quot; &lt;img")
    );
    // The hostile step ids still reach the timeline and the tables, escaped.
    let bars = svg(&doc).matches("<rect class=\"bar").count();
    assert_eq!(
        bars,
        run.steps.iter().filter(|s| s.started_ms.is_some()).count()
    );
    // Markdown: outside code spans and fenced blocks (where it is literal text), every `<` is
    // backslash-escaped, so no renderer sees a tag.
    let md = lockstep_report::markdown(&run);
    assert!(
        md.contains("<script"),
        "the code spans keep the text as it is"
    );
    let mut fenced = false;
    for line in md.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let prose = strip_code_spans(line);
        let bytes = prose.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'<' {
                assert!(i > 0 && bytes[i - 1] == b'\\', "raw `<` in {line:?}");
            }
        }
    }
}

/// Markup in a step message, in the operator's `user@host` and in a stage name reaches the page
/// as text: the run's `<script>` is absent, its escaped form is where the value is shown. (Host
/// names themselves are `Name`s, which refuse `<`, quotes and `&`.)
#[test]
fn a_script_from_the_run_is_shown_as_text() {
    const EVIL: &str = "<script>alert(1)</script>\"'&";
    const SHOWN: &str = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;";
    let mut run = fixture::halted_two_node();
    run.steps[0].message = format!("copied to `{EVIL}` {EVIL}");
    run.meta.started_by = format!("admin@{EVIL}");
    run.plan.stages[0].name = EVIL.into();
    let doc = lockstep_report::html(&run);
    assert!(!doc.contains("<script"));
    assert!(!doc.contains("alert(1)</script>"));
    let message = format!("copied to <code>{SHOWN}</code> {SHOWN}");
    assert!(doc.contains(&format!("<td class=\"msg\">{message}</td>")));
    assert!(doc.contains(&format!("<dt>Message</dt><dd>{message}</dd>")));
    assert!(doc.contains(&format!("<dt>Started by</dt><dd>admin@{SHOWN}</dd>")));
    assert!(svg(&doc).contains(&format!("▸ {SHOWN}</text>")));
    check_balanced(&doc).unwrap();
}

/// The line without its code spans (runs of N backticks closed by a run of N backticks).
fn strip_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find('`') {
        if at > 0 && rest.as_bytes()[at - 1] == b'\\' {
            out.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            continue;
        }
        out.push_str(&rest[..at]);
        let n = rest[at..].len() - rest[at..].trim_start_matches('`').len();
        let fence = "`".repeat(n);
        let body = &rest[at + n..];
        match body.find(&fence) {
            Some(end) => rest = &body[end + n..],
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn one_bar_per_started_step_coloured_by_state() {
    let run = fixture::halted_two_node();
    let doc = lockstep_report::html(&run);
    let svg = svg(&doc);
    let started: Vec<_> = run
        .steps
        .iter()
        .filter(|s| s.started_ms.is_some())
        .collect();
    assert!(
        started.len() < run.steps.len(),
        "the halt leaves steps pending"
    );
    assert_eq!(svg.matches("<rect class=\"bar").count(), started.len());
    for state in [StepState::Done, StepState::Skipped, StepState::Failed] {
        let n = started.iter().filter(|s| s.state == state).count();
        assert!(n > 0);
        let class = format!("<rect class=\"bar st-{}\"", state.as_str());
        assert_eq!(svg.matches(&class).count(), n, "{state:?}");
        let colour = lockstep_report::gantt::state_colour(state);
        let first = &svg[svg.find(&class).unwrap()..];
        assert!(first[..first.find('>').unwrap()].contains(&format!("fill=\"{colour}\"")));
    }
    // Every bar's tooltip names its step and rule.
    for s in &started {
        let rule = &run.plan.step(&s.step).unwrap().1.rule;
        assert!(
            svg.contains(&format!("<title>{} · {rule} · ", s.step)),
            "{}",
            s.step
        );
    }
}

#[test]
fn halt_marker_sits_at_the_failing_steps_end() {
    let run = fixture::halted_two_node();
    let doc = lockstep_report::html(&run);
    let svg = svg(&doc);
    let halt = &svg[svg.find("<g class=\"halt\">").expect("halt marker")..];
    assert!(halt.contains("halt: version-mismatch at PRG-N2/install-sp"));
    let line = &halt[halt.find("<line").unwrap()..];
    let line = &line[..line.find('>').unwrap()];
    let bar = svg
        .match_indices("<rect class=\"bar st-failed\"")
        .map(|(i, _)| &svg[i..])
        .find(|r| r.contains("<title>PRG-N2/install-sp"))
        .unwrap();
    let bar = &bar[..bar.find('>').unwrap()];
    let end = attr(bar, "x") + attr(bar, "width");
    assert!((attr(line, "x1") - end).abs() < 0.2, "{line} vs {bar}");
    // A finished run has no halt marker.
    let doc = lockstep_report::html(&fixture::finished_two_node());
    assert!(!doc.contains("class=\"halt\""));
}

#[test]
fn rows_are_grouped_by_site_and_cluster_with_stage_lines() {
    let run = fixture::simulate(
        fixture::plan(&fixture::fleet(6, 3), &["canary", "wave-1"]),
        |_| fixture::Outcome::Ok,
        None,
    );
    let doc = lockstep_report::html(&run);
    let svg = svg(&doc);
    assert_eq!(svg.matches("<rect class=\"group\"").count(), 6);
    assert!(svg.contains("prague · cluster PRACL1"));
    assert!(svg.contains("milan · cluster MILCL2"));
    assert_eq!(svg.matches("<g class=\"stage\">").count(), 2);
    assert!(svg.contains("▸ canary") && svg.contains("▸ wave-1"));
    assert!(svg.matches("<g class=\"tick\">").count() >= 3);
}

#[test]
fn a_running_step_extends_to_the_last_known_time() {
    // Cut the run 40 minutes in: the first node's SP install is in flight.
    let run = fixture::simulate(
        fixture::plan(&fixture::two_node(), &["canary"]),
        |_| fixture::Outcome::Ok,
        Some(40 * 60_000),
    );
    let running: Vec<_> = run
        .steps
        .iter()
        .filter(|s| s.state == StepState::Running)
        .collect();
    assert_eq!(running.len(), 1);
    let doc = lockstep_report::html(&run);
    let svg = svg(&doc);
    let bar = &svg[svg.find("<rect class=\"bar st-running\"").unwrap()..];
    let bar = &bar[..bar.find('>').unwrap()];
    // The last known time is the running step's start, the latest record: the bar is there and
    // ends at the right edge of the plot.
    assert!(attr(bar, "width") >= 2.0);
    assert!(
        (attr(bar, "x") + attr(bar, "width") - (1200.0 - 28.0)).abs() < 0.2,
        "{bar}"
    );
    assert!(doc.contains("so far"));
}

#[test]
fn a_thousand_hosts_stay_one_row_each() {
    let run = fixture::simulate(
        fixture::plan(&fixture::fleet(250, 4), &["canary", "wave-1"]),
        |_| fixture::Outcome::Ok,
        None,
    );
    let doc = lockstep_report::html(&run);
    check_balanced(&doc).unwrap();
    let svg = svg(&doc);
    let hosts = svg.matches("<text x=\"22\"").count();
    assert_eq!(hosts, 1000);
    let tag = &svg[..svg.find('>').unwrap()];
    let height = attr(tag, "height");
    assert!(height > 1250.0 * 8.0, "{height}");
    assert_eq!(svg.matches("<rect class=\"bar").count(), run.steps.len());
}

#[test]
fn output_is_deterministic() {
    let a = fixture::halted_two_node();
    let b = fixture::halted_two_node();
    assert_eq!(lockstep_report::html(&a), lockstep_report::html(&b));
    assert_eq!(lockstep_report::markdown(&a), lockstep_report::markdown(&b));
}

#[test]
fn failed_steps_open_their_output() {
    let doc = lockstep_report::html(&fixture::halted_two_node());
    let open = doc.matches("<details class=\"step st-failed\"").count();
    assert_eq!(open, 1);
    let d = &doc[doc.find("<details class=\"step st-failed\"").unwrap()..];
    assert!(d[..d.find('>').unwrap()].ends_with(" open"));
    assert!(d.contains("<pre class=\"output\">Exchange Server 2003 Service Pack 2 setup on PRG-N2"));
}

/// Each out-of-service window is one shaded band on its node's row, behind the bars, with a
/// tooltip; the legend names it.
#[test]
fn out_of_service_windows_are_shaded_behind_the_bars() {
    let run = fixture::finished_two_node();
    let view = lockstep_report::view::RunView::new(&run);
    let windows: usize = view
        .groups
        .iter()
        .flat_map(|g| g.hosts.iter())
        .map(|h| view.out_of_service(h).len())
        .sum();
    assert!(windows > 0, "the fixture takes nodes out of service");
    let doc = lockstep_report::html(&run);
    let svg = svg(&doc);
    assert_eq!(svg.matches("<rect class=\"oos\"").count(), windows);
    assert!(svg.contains(" out of service · "));
    // Drawn first on its row: the first band comes before the first bar.
    assert!(svg.find("<rect class=\"oos\"").unwrap() < svg.find("<rect class=\"bar").unwrap());
    assert!(doc.contains("node out of service</span>"));
}

/// Every approval says what, who gave it and when, in both reports.
#[test]
fn approvals_name_who_and_when() {
    // Two stages: the second one's gate is approved.
    let run = fixture::simulate(
        fixture::plan(&fixture::fleet(4, 2), &["canary", "rest"]),
        |_| fixture::Outcome::Ok,
        None,
    );
    assert!(!run.approvals.is_empty(), "the fixture approves its gates");
    let doc = lockstep_report::html(&run);
    let md = lockstep_report::markdown(&run);
    for a in &run.approvals {
        let when = lockstep_report::time::utc(a.at_ms);
        assert!(
            doc.contains(&format!("<code>{}</code> by {} at {when}", a.what, a.by)),
            "{a:?}"
        );
        assert!(
            md.contains(&format!("`{}` by {} at {when}", a.what, a.by)),
            "{a:?}"
        );
    }
}

/// The branches the fixtures above never reach still render (the templates fail on a name they
/// do not know): a run before its first step, and a record whose step a replan dropped.
#[test]
fn a_run_before_its_first_step_and_a_dropped_step_render() {
    let mut run = fixture::finished_two_node();
    run.status = RunStatus::Running;
    run.facts.clear();
    run.approvals.clear();
    for s in &mut run.steps {
        *s = lockstep_core::StepRecord::pending(&s.step);
    }
    let doc = lockstep_report::html(&run);
    check_balanced(&doc).unwrap();
    let svg = svg(&doc);
    assert!(svg.contains(">no step has started</text>"));
    assert_eq!(svg.matches("<rect class=\"bar").count(), 0);
    assert!(doc.contains("<dt>Last activity</dt>"));
    assert!(doc.contains("<span class=\"unknown\">? not verified</span>"));

    let mut run = fixture::halted_two_node();
    run.steps[0].step = "PRG-N1/dropped-by-a-replan".into();
    let doc = lockstep_report::html(&run);
    check_balanced(&doc).unwrap();
    let details = &doc[doc
        .find("<details class=\"step st-done\" id=\"s-0\"")
        .unwrap()..];
    let details = &details[..details.find("</details>").unwrap()];
    assert!(details.contains(
        "<code class=\"id\">PRG-N1/dropped-by-a-replan</code><span></span><code>?</code>"
    ));
    assert!(!details.contains("<dt>Action</dt>"));
}
