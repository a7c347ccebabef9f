//! [`HtmlReport`]: one self-contained HTML file: inline CSS, an inline SVG timeline, no script,
//! no external resource (a Content-Security-Policy forbids loading any).
//!
//! The document is the minijinja template `templates/report.html`, which includes
//! `templates/timeline.svg` (both compiled into the binary), over a [`Page`]: plain
//! serializable data built here from the [`RunView`] (the timeline's geometry by [`Gantt`]);
//! the templates only lay it out. Both autoescape, so every value from the run is HTML-escaped
//! by the engine; only the stylesheet, a constant, is marked safe.

use std::sync::OnceLock;

use lockstep_core::{Fact, RunStatus, StepState};
use minijinja::Environment;
use serde::Serialize;

use crate::gantt::{state_colour, Gantt, Timeline, HALT_COLOUR, OOS_COLOUR, STAGE_COLOUR};
use crate::time;
use crate::view::{release_label, AtTarget, RunView, StepRow, STATE_ORDER};

/// The report's template name; its `.html` suffix turns autoescape on.
const TEMPLATE: &str = "report.html";

/// The inline stylesheet.
const CSS: &str = include_str!("../templates/report.css");

/// The environment with the report template, built once.
fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(crate::escape::auto_escape);
        env.set_formatter(crate::escape::formatter);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        env.add_template(TEMPLATE, include_str!("../templates/report.html"))
            .expect("templates/report.html parses");
        env.add_template("timeline.svg", include_str!("../templates/timeline.svg"))
            .expect("templates/timeline.svg parses");
        env
    })
}

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
    ///
    /// Panics if the templates do not fit the page (a name either side misspelt): a bug of this
    /// crate that the tests reach, never something a run can cause.
    pub fn render(&self) -> String {
        let page = Page::new(self.view);
        env()
            .get_template(TEMPLATE)
            .and_then(|t| t.render(&page))
            // The template is fixed and the page is plain data: a failure is a bug here.
            .unwrap_or_else(|e| panic!("rendering {TEMPLATE}: {e:#}"))
    }
}

/// Everything the HTML template shows, as plain data (strings are raw run text: the template
/// escapes them).
#[derive(Debug, Serialize)]
pub struct Page<'a> {
    css: &'static str,
    run: RunHead<'a>,
    halted: Option<Halted<'a>>,
    waiting: Option<Waiting<'a>>,
    summary: Summary<'a>,
    legend: Legend,
    /// The SVG timeline's geometry, for `templates/timeline.svg`.
    timeline: Timeline<'a>,
    versions: Vec<VersionRow<'a>>,
    steps: Vec<StepItem<'a>>,
}

/// What the title, header, summary and footer say about the run.
#[derive(Debug, Serialize)]
struct RunHead<'a> {
    id: &'a str,
    status: &'static str,
    playbook: &'a str,
    procedure: &'a str,
    product: String,
    target_described: String,
    target_text: String,
    plan_hash: &'a str,
    plan_hash_short: &'a str,
}

/// Text in which pairs of backticks (how messages name objects: `` host `PRG-N1` ``) mark code.
type Ticked<'a> = Vec<Segment<'a>>;

/// A piece of [`Ticked`] text.
#[derive(Debug, Serialize)]
struct Segment<'a> {
    text: &'a str,
    code: bool,
}

/// Splits `s` at backticks: text between a pair is code; an unpaired backtick stays text.
fn ticked(s: &str) -> Ticked<'_> {
    let parts: Vec<&str> = s.split('`').collect();
    let pairs = (parts.len() - 1) / 2;
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.into_iter().enumerate() {
        if i > pairs * 2 {
            out.push(Segment {
                text: "`",
                code: false,
            });
        }
        let code = i % 2 == 1 && i < pairs * 2;
        if code || !part.is_empty() {
            out.push(Segment { text: part, code });
        }
    }
    out
}

#[derive(Debug, Serialize)]
struct Halted<'a> {
    class: &'static str,
    at: Option<HaltAt<'a>>,
    reason: Ticked<'a>,
    next: Ticked<'static>,
}

#[derive(Debug, Serialize)]
struct HaltAt<'a> {
    step: &'a str,
    host: &'a str,
}

#[derive(Debug, Serialize)]
struct Waiting<'a> {
    reason: Ticked<'a>,
}

#[derive(Debug, Serialize)]
struct Summary<'a> {
    steps: String,
    approvals: Vec<ApprovalItem<'a>>,
    started: String,
    ended: bool,
    last: String,
    took: String,
    started_by: &'a str,
    inventory: Vec<&'a str>,
    playbook_file: &'a str,
    limit: &'a [String],
    owners: Vec<Owner<'a>>,
    chips: Vec<Chip>,
}

#[derive(Debug, Serialize)]
struct ApprovalItem<'a> {
    what: &'a str,
    by: &'a str,
    at: String,
}

#[derive(Debug, Serialize)]
struct Owner<'a> {
    group: &'a str,
    owner: &'a str,
}

/// A coloured chip: a state with its bar colour, and how many steps are in it.
#[derive(Debug, Serialize)]
struct Chip {
    state: &'static str,
    colour: &'static str,
    n: Option<usize>,
}

/// The timeline's legend.
#[derive(Debug, Serialize)]
struct Legend {
    states: Vec<Chip>,
    halt: &'static str,
    stage: &'static str,
    out_of_service: &'static str,
}

#[derive(Debug, Serialize)]
struct VersionRow<'a> {
    host: &'a str,
    site: &'a str,
    group: &'a str,
    before: Option<Build<'a>>,
    after: Option<Build<'a>>,
    /// `yes`, `no` or `unknown`.
    at_target: &'static str,
}

/// A build fact.
#[derive(Debug, Serialize)]
struct Build<'a> {
    key: &'a str,
    at: String,
    value: &'a str,
    /// `SP2`, `RTM`, or empty.
    label: &'static str,
}

/// One step, for both the steps table and the details.
#[derive(Debug, Serialize)]
struct StepItem<'a> {
    index: usize,
    step: &'a str,
    rule: &'a str,
    host: &'a str,
    state: &'static str,
    colour: &'static str,
    /// Failed and waiting steps show their details opened.
    open: bool,
    duration: String,
    exit: Option<i32>,
    message: Ticked<'a>,
    name: Option<&'a str>,
    action: Option<&'a str>,
    stage: Option<String>,
    started: Option<String>,
    finished: Option<String>,
    attempts: u32,
    /// The output without trailing whitespace, or none when the step printed nothing.
    output: Option<&'a str>,
}

impl<'a> Page<'a> {
    /// The page of a view.
    pub fn new(v: &'a RunView<'_>) -> Self {
        let run = v.run;
        let plan = &run.plan;
        let head = RunHead {
            id: &run.id.0,
            status: v.status_word(),
            playbook: plan.playbook.as_str(),
            procedure: &plan.procedure,
            product: v.product_text(),
            target_described: v.target_described(),
            target_text: v.target_text(),
            plan_hash: &plan.hash.0,
            plan_hash_short: plan.hash.short(),
        };
        let (halted, waiting) = match &run.status {
            RunStatus::Halted { class, reason } => (
                Some(Halted {
                    class: class.as_str(),
                    at: v.halt_step.map(|i| HaltAt {
                        step: &v.steps[i].rec.step,
                        host: v.steps[i].host(),
                    }),
                    reason: ticked(reason),
                    next: ticked(class.next_step()),
                }),
                None,
            ),
            RunStatus::Waiting { reason } => (
                None,
                Some(Waiting {
                    reason: ticked(reason),
                }),
            ),
            RunStatus::Running | RunStatus::Finished => (None, None),
        };
        let summary = Summary {
            steps: v.counts_sentence(),
            approvals: run
                .approvals
                .iter()
                .map(|a| ApprovalItem {
                    what: &a.what,
                    by: &a.by,
                    at: time::utc(a.at_ms),
                })
                .collect(),
            started: time::utc(run.created_ms),
            ended: v.ended(),
            last: time::utc(v.last_ms),
            took: time::duration(v.last_ms - run.created_ms),
            started_by: or_dash(&run.meta.started_by),
            inventory: or_dash(&run.meta.inventory).split('\n').collect(),
            playbook_file: or_dash(&run.meta.playbook),
            limit: &run.meta.limit,
            owners: run
                .meta
                .owners
                .iter()
                .map(|(group, owner)| Owner { group, owner })
                .collect(),
            chips: v
                .counts()
                .into_iter()
                .map(|(state, n)| Chip {
                    state: state.as_str(),
                    colour: state_colour(state),
                    n: Some(n),
                })
                .collect(),
        };
        let legend = Legend {
            states: STATE_ORDER
                .into_iter()
                .filter(|&s| s != StepState::Pending)
                .map(|state| Chip {
                    state: state.as_str(),
                    colour: state_colour(state),
                    n: None,
                })
                .collect(),
            halt: HALT_COLOUR,
            stage: STAGE_COLOUR,
            out_of_service: OOS_COLOUR,
        };
        let build = |f: Option<&'a Fact>| {
            f.map(|f| Build {
                key: &f.key,
                at: time::utc(f.at_ms),
                value: &f.value,
                label: release_label(v.product, &f.value),
            })
        };
        let versions = v
            .versions
            .iter()
            .map(|n| VersionRow {
                host: n.host,
                site: n.site,
                group: &n.group,
                before: build(n.before),
                after: build(n.after),
                at_target: match n.at_target {
                    AtTarget::Yes => "yes",
                    AtTarget::No => "no",
                    AtTarget::Unknown => "unknown",
                },
            })
            .collect();
        let steps = v.steps.iter().map(|r| StepItem::new(v, r)).collect();
        Page {
            css: CSS,
            run: head,
            halted,
            waiting,
            summary,
            legend,
            timeline: Gantt::new(v).timeline(),
            versions,
            steps,
        }
    }
}

impl<'a> StepItem<'a> {
    fn new(v: &'a RunView<'_>, r: &'a StepRow<'_>) -> Self {
        let state = r.rec.state;
        StepItem {
            index: r.index,
            step: &r.rec.step,
            rule: r.rule(),
            host: r.host(),
            state: state.as_str(),
            colour: state_colour(state),
            open: matches!(state, StepState::Failed | StepState::Waiting),
            duration: duration_of(v, r),
            exit: r.rec.exit_code,
            message: ticked(&r.rec.message),
            name: r.plan.map(|p| p.name.as_str()),
            action: r.plan.map(|p| p.action.kind()),
            stage: r.plan.map(|p| v.stage_name(p.stage)),
            started: r.rec.started_ms.map(time::utc),
            finished: r.rec.finished_ms.map(time::utc),
            attempts: r.rec.attempts,
            output: (!r.rec.output.is_empty()).then(|| r.rec.output.trim_end()),
        }
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
pub(crate) fn duration_of(v: &RunView<'_>, r: &StepRow<'_>) -> String {
    match r.span(v.last_ms) {
        None => String::new(),
        Some((a, b)) if r.rec.finished_ms.is_some() => time::duration(b - a),
        Some((a, b)) => format!("{} so far", time::duration(b - a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(s: &str) -> Vec<(bool, &str)> {
        ticked(s).into_iter().map(|g| (g.code, g.text)).collect()
    }

    #[test]
    fn ticks_pair_into_code() {
        assert_eq!(
            show("host `PRG-N1` <b> `x"),
            [
                (false, "host "),
                (true, "PRG-N1"),
                (false, " <b> "),
                (false, "`"),
                (false, "x")
            ]
        );
        assert_eq!(show("`<i>`"), [(true, "<i>")]);
        assert_eq!(show(""), []);
    }

    #[test]
    fn templates_mark_only_the_stylesheet_safe() {
        let mut safe: Vec<&str> = Vec::new();
        for t in [
            include_str!("../templates/report.html"),
            include_str!("../templates/timeline.svg"),
        ] {
            for (i, _) in t.match_indices('|') {
                if t[i + 1..].trim_start().starts_with("safe") {
                    let value = t[..i].trim_end().rsplit([' ', '{']).next().unwrap();
                    safe.push(value);
                }
            }
            assert!(!t.contains("autoescape"), "autoescape must stay on");
        }
        assert_eq!(safe, ["css"]);
        // Both templates autoescape, by name.
        for name in [TEMPLATE, "timeline.svg"] {
            assert_eq!(
                crate::escape::auto_escape(name),
                minijinja::AutoEscape::Html
            );
        }
    }
}
