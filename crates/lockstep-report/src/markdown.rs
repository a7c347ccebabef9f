//! [`MarkdownReport`]: the run for a change ticket: a summary table, the halt and what to do
//! next, versions per node, every step in a table, and the output of failed and waiting steps
//! in fenced blocks (their last [`OUTPUT_LINES`] lines).

use std::fmt::Write as _;

use lockstep_core::{RunStatus, StepState};

use crate::escape::{md_cell, md_code, md_fence, md_text};
use crate::html::duration_of;
use crate::time;
use crate::view::{release_label, AtTarget, RunView};

/// Lines of a failed or waiting step's output shown (the last ones: errors come at the end).
pub const OUTPUT_LINES: usize = 40;

/// The Markdown report of one run.
#[derive(Debug)]
pub struct MarkdownReport<'v, 'a> {
    view: &'v RunView<'a>,
}

impl<'v, 'a> MarkdownReport<'v, 'a> {
    /// A report over the view.
    pub fn new(view: &'v RunView<'a>) -> Self {
        MarkdownReport { view }
    }

    /// Renders the document.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(4096 + self.view.steps.len() * 160);
        self.summary(&mut s);
        self.status(&mut s);
        self.versions(&mut s);
        self.steps(&mut s);
        self.outputs(&mut s);
        s
    }

    fn summary(&self, s: &mut String) {
        let v = self.view;
        let run = v.run;
        let plan = &run.plan;
        let _ = writeln!(
            s,
            "# Lockstep run {}: {}\n",
            md_code(&run.id.0),
            v.status_word()
        );
        s.push_str("| | |\n|---|---|\n");
        let mut row = |k: &str, val: String| {
            let _ = writeln!(s, "| {k} | {val} |");
        };
        row("Run", md_code(&run.id.0));
        row(
            "Playbook",
            format!(
                "{} (procedure {}, {})",
                md_code(plan.playbook.as_str()),
                md_cell(&plan.procedure),
                md_cell(&v.product_text())
            ),
        );
        row(
            "Target build",
            format!(
                "{}, {}",
                md_code(&v.target_text()),
                md_cell(&v.target_described())
            ),
        );
        row("Plan hash", md_code(plan.hash.short()));
        let status = match &run.status {
            RunStatus::Finished => "finished".to_owned(),
            RunStatus::Running => "running".to_owned(),
            RunStatus::Waiting { reason } => format!("waiting: {}", md_text(reason)),
            RunStatus::Halted { class, .. } => format!("**halted** ({})", md_code(class.as_str())),
        };
        row("Status", status);
        row("Started", time::utc(run.created_ms));
        if v.ended() {
            row("Ended", time::utc(v.last_ms));
            row("Duration", time::duration(v.last_ms - run.created_ms));
        } else {
            row("Last activity", time::utc(v.last_ms));
            row("Elapsed so far", time::duration(v.last_ms - run.created_ms));
        }
        row("Steps", md_cell(&v.counts_sentence()));
        row("Started by", cell_or_dash(&run.meta.started_by));
        row(
            "Inventory",
            cell_or_dash(&run.meta.inventory.lines().collect::<Vec<_>>().join(", ")),
        );
        row("Playbook file", cell_or_dash(&run.meta.playbook));
        if !run.meta.limit.is_empty() {
            row("Limit", md_cell(&run.meta.limit.join(", ")));
        }
        if !run.approvals.is_empty() {
            let a: Vec<String> = run
                .approvals
                .iter()
                .map(|a| {
                    format!(
                        "{} by {} at {}",
                        md_code(&a.what),
                        md_cell(&a.by),
                        time::utc(a.at_ms)
                    )
                })
                .collect();
            row("Approvals", a.join(", "));
        }
        s.push('\n');
    }

    fn status(&self, s: &mut String) {
        let v = self.view;
        match &v.run.status {
            RunStatus::Halted { class, reason } => {
                let at = v
                    .halt_step
                    .map(|i| {
                        let r = &v.steps[i];
                        format!(" at step {} on {}", md_code(&r.rec.step), md_code(r.host()))
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "> **Halted ({})**{at}: {}\n>\n> **Next:** {}\n",
                    class.as_str(),
                    md_text(reason),
                    md_text(class.next_step())
                );
            }
            RunStatus::Waiting { reason } => {
                let _ = writeln!(
                    s,
                    "> **Waiting for an operator:** {}\n>\n> **Next:** `lockstep approve` once it is done.\n",
                    md_text(reason)
                );
            }
            RunStatus::Running | RunStatus::Finished => {}
        }
    }

    fn versions(&self, s: &mut String) {
        let v = self.view;
        let _ = writeln!(
            s,
            "## Versions per node\n\nTarget: {} ({}).\n\n| Host | Site | Cluster / pool | Before | After | At target |\n|---|---|---|---|---|---|",
            md_code(&v.target_text()),
            md_cell(&v.target_described())
        );
        let build = |f: Option<&lockstep_core::Fact>| match f {
            Some(f) => {
                let label = release_label(v.product, &f.value);
                if label.is_empty() {
                    md_code(&f.value)
                } else {
                    format!("{} {label}", md_code(&f.value))
                }
            }
            None => "—".to_owned(),
        };
        for n in &v.versions {
            let mark = match n.at_target {
                AtTarget::Yes => "yes",
                AtTarget::No => "**NO: not at target**",
                AtTarget::Unknown => "not verified",
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {mark} |",
                md_code(n.host),
                md_cell(n.site),
                md_cell(&n.group),
                build(n.before),
                build(n.after)
            );
        }
        s.push('\n');
    }

    fn steps(&self, s: &mut String) {
        let v = self.view;
        s.push_str("## Steps\n\n| # | Step | Rule | Host | State | Duration | Exit | Message |\n|---:|---|---|---|---|---:|---:|---|\n");
        for r in &v.steps {
            let state = r.rec.state.as_str();
            let state = if matches!(r.rec.state, StepState::Failed | StepState::Waiting) {
                format!("**{state}**")
            } else {
                state.to_owned()
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {state} | {} | {} | {} |",
                r.index + 1,
                md_code(&r.rec.step),
                md_cell(r.rule()),
                md_code(r.host()),
                duration_of(v, r),
                r.rec.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                md_text(&r.rec.message)
            );
        }
        s.push('\n');
    }

    fn outputs(&self, s: &mut String) {
        let v = self.view;
        let shown: Vec<_> = v
            .steps
            .iter()
            .filter(|r| matches!(r.rec.state, StepState::Failed | StepState::Waiting))
            .collect();
        if shown.is_empty() {
            return;
        }
        s.push_str("## Output of failed and waiting steps\n");
        for r in shown {
            let _ = writeln!(
                s,
                "\n### {} ({}, {})\n",
                md_code(&r.rec.step),
                r.rec.state.as_str(),
                md_cell(r.rule())
            );
            if !r.rec.message.is_empty() {
                let _ = writeln!(s, "{}\n", md_text(&r.rec.message));
            }
            let output = r.rec.output.trim_end();
            if output.is_empty() {
                s.push_str("No output.\n");
                continue;
            }
            let lines: Vec<&str> = output.lines().collect();
            let skip = lines.len().saturating_sub(OUTPUT_LINES);
            let mut body = String::new();
            if skip > 0 {
                let _ = writeln!(body, "[... {skip} earlier lines not shown ...]");
            }
            for l in &lines[skip..] {
                body.push_str(&l.replace(|c: char| c.is_control() && c != '\t', "\u{fffd}"));
                body.push('\n');
            }
            let fence = md_fence(&body);
            let _ = write!(s, "{fence}text\n{body}{fence}\n");
        }
    }
}

fn cell_or_dash(s: &str) -> String {
    if s.trim().is_empty() {
        "—".to_owned()
    } else {
        md_cell(s)
    }
}
