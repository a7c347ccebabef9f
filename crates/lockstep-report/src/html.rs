//! [`HtmlReport`]: one self-contained HTML file: inline CSS, an inline SVG timeline, no script,
//! no external resource (a Content-Security-Policy forbids loading any), everything from the run
//! escaped.

use std::fmt::Write as _;

use lockstep_core::{RunStatus, StepState};

use crate::escape::{html as esc, html_ticks};
use crate::gantt::{state_colour, Gantt, HALT_COLOUR, OOS_COLOUR};
use crate::time;
use crate::view::{release_label, AtTarget, RunView, STATE_ORDER};

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;background:#f3f5f8;color:#1f2933;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1260px;margin:0 auto;padding:24px 24px 48px}
header{display:flex;align-items:center;gap:14px;flex-wrap:wrap;margin-bottom:16px}
h1{font-size:22px;margin:0;font-weight:650}
h2{font-size:16px;margin:0 0 10px;font-weight:650}
code,pre,.mono{font-family:ui-monospace,"Cascadia Mono","DejaVu Sans Mono",Consolas,monospace;font-size:.9em}
section{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:16px 18px;margin:0 0 16px}
.badge{display:inline-block;padding:3px 10px;border-radius:999px;font-weight:650;font-size:13px;color:#fff;text-transform:uppercase;letter-spacing:.04em}
.status-finished{background:#2e7d32}.status-halted{background:#c62828}.status-waiting{background:#b7791f}.status-running{background:#1565c0}
.cols{display:grid;grid-template-columns:minmax(0,1.1fr) minmax(0,1fr);gap:4px 36px}
@media (max-width:900px){.cols{grid-template-columns:1fr}}
dl.summary{display:grid;align-content:start;grid-template-columns:max-content 1fr;gap:4px 18px;margin:0}
dl.summary dt{color:#64748b}dl.summary dd{margin:0;overflow-wrap:anywhere}
.callout{border-left:5px solid;border-radius:6px;padding:10px 14px;margin:0 0 16px;background:#fff}
.callout.halted{border-color:#c62828;background:#fdecea}.callout.waiting{border-color:#f9a825;background:#fff8e1}
.callout p{margin:4px 0}
.chips{display:flex;gap:8px;flex-wrap:wrap;margin-top:12px}
.chip{display:inline-flex;align-items:center;gap:6px;padding:2px 10px;border:1px solid #dde3ea;border-radius:999px;background:#f8fafc;font-size:13px}
.dot{display:inline-block;width:10px;height:10px;border-radius:2px}
.scroll{overflow-x:auto}
svg.gantt{display:block;max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e5e9f0;vertical-align:top}
th{background:#f1f4f8;font-weight:600;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.msg{overflow-wrap:anywhere;max-width:420px}
tr.st-failed td{background:#fdecea}tr.st-waiting td{background:#fff8e1}
.state{font-weight:600}
.state-done{color:#2e7d32}.state-skipped{color:#607d8b}.state-failed{color:#c62828}.state-waiting{color:#a86b00}.state-running{color:#1565c0}.state-pending{color:#94a3b8}
.ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:700}.unknown{color:#a86b00;font-weight:600}
details.step{border:1px solid #e5e9f0;border-left:4px solid var(--c);border-radius:6px;margin:6px 0;background:#fff}
details.step>summary{cursor:pointer;padding:6px 10px;display:flex;gap:12px;flex-wrap:wrap;align-items:baseline}
details.step>summary .id{font-weight:600}
details.step .body{padding:0 12px 10px}
pre.output{background:#0f172a;color:#e2e8f0;padding:10px 12px;border-radius:6px;white-space:pre-wrap;overflow-wrap:anywhere;max-height:480px;overflow:auto;margin:6px 0 0}
.muted{color:#64748b}
footer{color:#94a3b8;font-size:12px;text-align:center}
@media print{
 body{background:#fff;font-size:11px}
 main{max-width:none;padding:0}
 section,.callout{border:1px solid #ccc;break-inside:avoid-page}
 section.steps,section.outputs,section.timeline{break-inside:auto}
 th{position:static}
 details.step::details-content{content-visibility:visible;display:block}
 pre.output{max-height:none;overflow:visible;background:#f5f5f5;color:#000;border:1px solid #ddd}
 .badge,.dot,rect,tr.st-failed td{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"#;

/// The HTML report of one run.
#[derive(Debug)]
pub struct HtmlReport<'v, 'a> {
    view: &'v RunView<'a>,
}

impl<'v, 'a> HtmlReport<'v, 'a> {
    /// A report over the view.
    pub fn new(view: &'v RunView<'a>) -> Self {
        HtmlReport { view }
    }

    /// Renders the whole document.
    pub fn render(&self) -> String {
        let v = self.view;
        let mut s = String::with_capacity(16_384 + v.steps.len() * 900);
        let _ = write!(
            s,
            r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="lockstep-report">
<title>Lockstep run {} ({})</title>
<style>{CSS}</style>
</head>
<body>
<main>
"#,
            esc(&v.run.id.0),
            v.status_word()
        );
        self.header(&mut s);
        self.callout(&mut s);
        self.summary(&mut s);
        self.timeline(&mut s);
        self.versions(&mut s);
        self.steps_table(&mut s);
        self.outputs(&mut s);
        let _ = write!(
            s,
            "<footer>lockstep report · plan {} · procedure {}</footer>\n</main>\n</body>\n</html>\n",
            esc(v.run.plan.hash.short()),
            esc(&v.run.plan.procedure)
        );
        s
    }

    fn header(&self, s: &mut String) {
        let v = self.view;
        let _ = writeln!(
            s,
            r#"<header><h1>Lockstep run <code>{}</code></h1><span class="badge status-{w}">{w}</span><span class="muted">{} · {}</span></header>"#,
            esc(&v.run.id.0),
            esc(v.run.plan.playbook.as_str()),
            esc(&v.target_described()),
            w = v.status_word()
        );
    }

    fn callout(&self, s: &mut String) {
        let v = self.view;
        match &v.run.status {
            RunStatus::Halted { class, reason } => {
                let at = v
                    .halt_step
                    .map(|i| {
                        let r = &v.steps[i];
                        format!(
                            " at step <code>{}</code> on <code>{}</code>",
                            esc(&r.rec.step),
                            esc(r.host())
                        )
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    r#"<div class="callout halted" role="alert"><p><strong>Halted ({})</strong>{at}</p><p>{}</p><p><strong>Next:</strong> {}</p></div>"#,
                    class.as_str(),
                    html_ticks(reason),
                    html_ticks(class.next_step())
                );
            }
            RunStatus::Waiting { reason } => {
                let _ = writeln!(
                    s,
                    r#"<div class="callout waiting"><p><strong>Waiting for an operator</strong></p><p>{}</p><p><strong>Next:</strong> <code>lockstep approve</code> once it is done, then the run continues</p></div>"#,
                    html_ticks(reason)
                );
            }
            RunStatus::Running | RunStatus::Finished => {}
        }
    }

    fn summary(&self, s: &mut String) {
        let v = self.view;
        let run = v.run;
        let plan = &run.plan;
        // Left: what was run and how it stands; right: when, by whom, from which files.
        let mut what: Vec<(&str, String)> = Vec::new();
        let mut when: Vec<(&str, String)> = Vec::new();
        what.push(("Run", format!("<code>{}</code>", esc(&run.id.0))));
        what.push((
            "Playbook",
            format!(
                "<code>{}</code> (procedure {}, {})",
                esc(plan.playbook.as_str()),
                esc(&plan.procedure),
                esc(&v.product_text())
            ),
        ));
        what.push((
            "Target build",
            format!(
                "{} <span class=\"muted\">({})</span>",
                esc(&v.target_described()),
                esc(&v.target_text())
            ),
        ));
        what.push((
            "Plan hash",
            format!(
                "<code title=\"{}\">{}</code>",
                esc(&plan.hash.0),
                esc(plan.hash.short())
            ),
        ));
        let status = match &run.status {
            RunStatus::Finished => "finished".to_owned(),
            RunStatus::Running => "running (or its controller stopped while driving it)".to_owned(),
            RunStatus::Waiting { reason } => format!("waiting: {}", html_ticks(reason)),
            // The callout above carries the reason.
            RunStatus::Halted { class, .. } => {
                format!("halted (<strong>{}</strong>)", class.as_str())
            }
        };
        what.push(("Status", status));
        what.push(("Steps", esc(&v.counts_sentence())));
        if !run.approvals.is_empty() {
            let a: Vec<String> = run
                .approvals
                .iter()
                .map(|a| {
                    format!(
                        "<code>{}</code> by {} at {}",
                        esc(&a.what),
                        esc(&a.by),
                        esc(&time::utc(a.at_ms))
                    )
                })
                .collect();
            what.push(("Approvals", a.join(", ")));
        }
        when.push(("Started", esc(&time::utc(run.created_ms))));
        let took = esc(&time::duration(v.last_ms - run.created_ms));
        if v.ended() {
            when.push(("Ended", esc(&time::utc(v.last_ms))));
            when.push(("Duration", took));
        } else {
            when.push(("Last activity", esc(&time::utc(v.last_ms))));
            when.push(("Elapsed so far", took));
        }
        when.push(("Started by", esc(or_dash(&run.meta.started_by))));
        when.push((
            "Inventory",
            esc(or_dash(&run.meta.inventory)).replace('\n', "<br>"),
        ));
        when.push(("Playbook file", esc(or_dash(&run.meta.playbook))));
        if !run.meta.limit.is_empty() {
            when.push(("Limit", esc(&run.meta.limit.join(", "))));
        }
        if !run.meta.owners.is_empty() {
            let owners: Vec<String> = run
                .meta
                .owners
                .iter()
                .map(|(g, n)| format!("{} → {}", esc(g), esc(n)))
                .collect();
            when.push(("Group owners at planning", owners.join("<br>")));
        }
        s.push_str("<section class=\"summary\"><h2>Summary</h2><div class=\"cols\">");
        for column in [what, when] {
            s.push_str("<dl class=\"summary\">");
            for (k, val) in column {
                let _ = write!(s, "<dt>{k}</dt><dd>{val}</dd>");
            }
            s.push_str("</dl>");
        }
        s.push_str("</div><div class=\"chips\">");
        for (state, n) in v.counts() {
            let _ = write!(
                s,
                r#"<span class="chip"><span class="dot" style="background:{}"></span>{n} {}</span>"#,
                state_colour(state),
                state.as_str()
            );
        }
        s.push_str("</div></section>\n");
    }

    fn timeline(&self, s: &mut String) {
        let v = self.view;
        s.push_str("<section class=\"timeline\"><h2>Timeline</h2><div class=\"chips\" style=\"margin:0 0 10px\">");
        for state in STATE_ORDER {
            if state == StepState::Pending {
                continue;
            }
            let _ = write!(
                s,
                r#"<span class="chip"><span class="dot" style="background:{}"></span>{}</span>"#,
                state_colour(state),
                state.as_str()
            );
        }
        let _ = write!(
            s,
            r#"<span class="chip"><span class="dot" style="background:{HALT_COLOUR};width:3px"></span>halt</span><span class="chip"><span class="dot" style="background:#7986cb;width:3px"></span>stage start</span><span class="chip"><span class="dot" style="background:{OOS_COLOUR}"></span>node out of service</span></div><div class="scroll">"#
        );
        s.push_str(&Gantt::new(v).svg());
        s.push_str("</div></section>\n");
    }

    fn versions(&self, s: &mut String) {
        let v = self.view;
        let target = v.target_text();
        let _ = write!(
            s,
            r#"<section class="versions"><h2>Versions per node</h2><p class="muted">Target: {} ({})</p><table><thead><tr><th>Host</th><th>Site</th><th>Cluster / pool</th><th>Before</th><th>After</th><th>At target</th></tr></thead><tbody>"#,
            esc(&target),
            esc(&v.target_described())
        );
        for n in &v.versions {
            let build = |f: Option<&lockstep_core::Fact>| match f {
                Some(f) => {
                    let label = release_label(v.product, &f.value);
                    let label = if label.is_empty() {
                        String::new()
                    } else {
                        format!(" <span class=\"muted\">{label}</span>")
                    };
                    format!(
                        "<span class=\"mono\" title=\"{} at {}\">{}</span>{label}",
                        esc(&f.key),
                        esc(&time::utc(f.at_ms)),
                        esc(&f.value)
                    )
                }
                None => "<span class=\"muted\">—</span>".to_owned(),
            };
            let mark = match n.at_target {
                AtTarget::Yes => "<span class=\"ok\">✔ yes</span>",
                AtTarget::No => "<span class=\"bad\">✘ not at target</span>",
                AtTarget::Unknown => "<span class=\"unknown\">? not verified</span>",
            };
            let _ = write!(
                s,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{mark}</td></tr>",
                esc(n.host),
                esc(n.site),
                esc(&n.group),
                build(n.before),
                build(n.after)
            );
        }
        s.push_str("</tbody></table></section>\n");
    }

    fn steps_table(&self, s: &mut String) {
        let v = self.view;
        s.push_str(r#"<section class="steps"><h2>Steps</h2><table><thead><tr><th>#</th><th>Step</th><th>Rule</th><th>Host</th><th>State</th><th>Duration</th><th>Exit</th><th>Message</th></tr></thead><tbody>"#);
        for r in &v.steps {
            let st = r.rec.state.as_str();
            let _ = write!(
                s,
                r##"<tr class="st-{st}"><td class="num">{}</td><td><a href="#s-{}"><code>{}</code></a></td><td>{}</td><td><code>{}</code></td><td class="state state-{st}">{st}</td><td class="num">{}</td><td class="num">{}</td><td class="msg">{}</td></tr>"##,
                r.index + 1,
                r.index,
                esc(&r.rec.step),
                esc(r.rule()),
                esc(r.host()),
                esc(&duration_of(v, r)),
                r.rec.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                html_ticks(&r.rec.message)
            );
        }
        s.push_str("</tbody></table></section>\n");
    }

    fn outputs(&self, s: &mut String) {
        let v = self.view;
        s.push_str("<section class=\"outputs\"><h2>Step details and output</h2>");
        for r in &v.steps {
            let state = r.rec.state;
            let open = matches!(state, StepState::Failed | StepState::Waiting);
            let _ = write!(
                s,
                r#"<details class="step st-{st}" id="s-{}" style="--c:{}"{}><summary><span class="state state-{st}">{st}</span><code class="id">{}</code><span>{}</span><code>{}</code><span class="muted">{}</span></summary><div class="body">"#,
                r.index,
                state_colour(state),
                if open { " open" } else { "" },
                esc(&r.rec.step),
                esc(r.rule()),
                esc(r.host()),
                esc(&duration_of(v, r)),
                st = state.as_str()
            );
            if let Some(p) = r.plan {
                let _ = write!(s, "<p>{}</p>", esc(&p.name));
            }
            s.push_str("<dl class=\"summary\">");
            if let Some(p) = r.plan {
                let _ = write!(
                    s,
                    "<dt>Action</dt><dd><code>{}</code> · stage {}</dd>",
                    esc(p.action.kind()),
                    esc(&v.stage_name(p.stage))
                );
            }
            if let Some(t) = r.rec.started_ms {
                let _ = write!(s, "<dt>Started</dt><dd>{}</dd>", esc(&time::utc(t)));
            }
            if let Some(t) = r.rec.finished_ms {
                let _ = write!(s, "<dt>Finished</dt><dd>{}</dd>", esc(&time::utc(t)));
            }
            let _ = write!(s, "<dt>Attempts</dt><dd>{}</dd>", r.rec.attempts);
            if let Some(c) = r.rec.exit_code {
                let _ = write!(s, "<dt>Exit code</dt><dd>{c}</dd>");
            }
            if !r.rec.message.is_empty() {
                let _ = write!(s, "<dt>Message</dt><dd>{}</dd>", html_ticks(&r.rec.message));
            }
            s.push_str("</dl>");
            if r.rec.output.is_empty() {
                s.push_str("<p class=\"muted\">No output.</p>");
            } else {
                let _ = write!(
                    s,
                    "<pre class=\"output\">{}</pre>",
                    esc(r.rec.output.trim_end())
                );
            }
            s.push_str("</div></details>\n");
        }
        s.push_str("</section>\n");
    }
}

fn or_dash(s: &str) -> &str {
    if s.trim().is_empty() {
        "—"
    } else {
        s
    }
}

/// A step's duration as shown: empty when it has not started, `… so far` while it runs.
pub(crate) fn duration_of(v: &RunView<'_>, r: &crate::view::StepRow<'_>) -> String {
    match r.span(v.last_ms) {
        None => String::new(),
        Some((a, b)) if r.rec.finished_ms.is_some() => time::duration(b - a),
        Some((a, b)) => format!("{} so far", time::duration(b - a)),
    }
}
