//! [`Gantt`]: the run's timeline as an inline SVG. One row per host under group headers (site and
//! cluster/pool), x = UTC time, one bar per started step coloured by state, stage starts as light
//! vertical lines, the halt as a red line at the failing step's end.

use std::fmt::Write as _;

use lockstep_core::{RunStatus, StepState};

use crate::escape::html as esc;
use crate::time;
use crate::view::RunView;

/// Fill colour of the band behind a node's bars while it was out of service (also the legend's).
pub const OOS_COLOUR: &str = "#fde2c8";

/// Fill colour of a state's bars (also used by the HTML legend and chips).
pub fn state_colour(state: StepState) -> &'static str {
    match state {
        StepState::Done => "#2e7d32",
        StepState::Skipped => "#90a4ae",
        StepState::Failed => "#c62828",
        StepState::Waiting => "#f9a825",
        StepState::Running => "#1565c0",
        StepState::Pending => "#cfd8dc",
    }
}

/// The last part of a step id (`install-sp` of `PRG-N1/install-sp`) when it fits in a bar
/// `width` wide; rows too thin for text get none.
fn bar_label(step: &str, width: f64, sc: Scale) -> Option<&str> {
    if sc.row_h < 20.0 {
        return None;
    }
    let label = step.rsplit('/').next().unwrap_or(step);
    // Average glyph width of a sans-serif face is about 0.6 em.
    let needed = label.chars().count() as f64 * (sc.font - 1.5) * 0.6 + 8.0;
    (width >= needed).then_some(label)
}

/// Colour of the stage-start lines (also the legend's).
pub const STAGE_COLOUR: &str = "#7986cb";

/// Colour of the halt marker.
pub const HALT_COLOUR: &str = "#d50000";

const WIDTH: f64 = 1200.0;
const LABEL_W: f64 = 230.0;
const RIGHT_PAD: f64 = 28.0;
const TOP: f64 = 58.0;

/// Tick spacings the axis chooses from, ms.
const TICKS_MS: [u64; 21] = [
    1_000,
    2_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    10_800_000,
    21_600_000,
    43_200_000,
    86_400_000,
    172_800_000,
    604_800_000,
    2_592_000_000,
];

/// Sizes that depend on how many rows the chart has.
#[derive(Debug, Clone, Copy)]
struct Scale {
    row_h: f64,
    font: f64,
}

impl Scale {
    fn for_rows(rows: usize) -> Self {
        match rows {
            0..=80 => Scale {
                row_h: 22.0,
                font: 12.0,
            },
            81..=250 => Scale {
                row_h: 14.0,
                font: 10.0,
            },
            _ => Scale {
                row_h: 9.0,
                font: 7.5,
            },
        }
    }
}

/// The timeline of one run.
#[derive(Debug)]
pub struct Gantt<'v, 'a> {
    view: &'v RunView<'a>,
}

impl<'v, 'a> Gantt<'v, 'a> {
    /// A timeline over the view.
    pub fn new(view: &'v RunView<'a>) -> Self {
        Gantt { view }
    }

    /// The chart's time span, ms: at least a second, so that x stays finite.
    fn span(&self) -> (u64, u64) {
        let t0 = self.view.first_ms;
        let t1 = self.view.last_ms.max(t0 + 1000);
        (t0, t1)
    }

    fn x(&self, ms: u64) -> f64 {
        let (t0, t1) = self.span();
        let plot = WIDTH - LABEL_W - RIGHT_PAD;
        LABEL_W + (ms.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * plot
    }

    /// Renders the SVG element.
    pub fn svg(&self) -> String {
        let v = self.view;
        let rows = v.groups.len() + v.groups.iter().map(|g| g.hosts.len()).sum::<usize>();
        let sc = Scale::for_rows(rows);
        let plot_bottom = TOP + rows as f64 * sc.row_h;
        let bottom_axis = rows > 30;
        let height = plot_bottom + if bottom_axis { 26.0 } else { 8.0 };
        let mut s = String::with_capacity(256 + rows * 160 + v.steps.len() * 220);
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="gantt" role="img" aria-labelledby="gantt-title" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif" font-size="{}">"#,
            sc.font
        );
        let _ = write!(
            s,
            r#"<title id="gantt-title">Timeline of run {}: one row per host, one bar per step</title>"#,
            esc(&v.run.id.0)
        );

        // Row backgrounds and labels.
        let mut y = TOP;
        let mut stripe = false;
        for g in &v.groups {
            let _ = write!(
                s,
                r##"<rect class="group" x="0" y="{y:.1}" width="{WIDTH}" height="{:.1}" fill="#e8edf3"/><text x="8" y="{:.1}" font-weight="600" fill="#1f2933">{} · {}</text>"##,
                sc.row_h,
                y + sc.row_h * 0.7,
                esc(g.site),
                esc(&g.label)
            );
            y += sc.row_h;
            for h in &g.hosts {
                if stripe {
                    let _ = write!(
                        s,
                        r##"<rect x="0" y="{y:.1}" width="{WIDTH}" height="{:.1}" fill="#f7f9fb"/>"##,
                        sc.row_h
                    );
                }
                stripe = !stripe;
                let _ = write!(
                    s,
                    r##"<text x="22" y="{:.1}" fill="#334155">{}</text>"##,
                    y + sc.row_h * 0.7,
                    esc(h.host)
                );
                y += sc.row_h;
            }
        }
        let _ = write!(
            s,
            r##"<line x1="{LABEL_W}" y1="{:.1}" x2="{LABEL_W}" y2="{plot_bottom:.1}" stroke="#b0bec5"/>"##,
            TOP - 4.0
        );

        self.axis(&mut s, plot_bottom, bottom_axis);
        self.stages(&mut s, plot_bottom);
        self.bars(&mut s, sc);
        self.halt(&mut s, plot_bottom, sc);

        if v.steps.iter().all(|r| r.rec.started_ms.is_none()) {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#64748b">no step has started</text>"##,
                LABEL_W + (WIDTH - LABEL_W) / 2.0,
                TOP + 16.0
            );
        }
        s.push_str("</svg>");
        s
    }

    /// Ticks at round UTC times, with labels above the rows (and below them for long charts).
    fn axis(&self, s: &mut String, plot_bottom: f64, bottom_axis: bool) {
        let (t0, t1) = self.span();
        let step = TICKS_MS
            .iter()
            .copied()
            .find(|&st| (t1 - t0) / st <= 8)
            .unwrap_or(TICKS_MS[TICKS_MS.len() - 1]);
        let seconds = step < 60_000;
        let days = time::date(t0) != time::date(t1);
        let mut t = t0.div_ceil(step) * step;
        while t <= t1 {
            let x = self.x(t);
            let label = if days {
                format!("{} {}", &time::date(t)[5..], time::clock(t, seconds))
            } else {
                time::clock(t, seconds)
            };
            let _ = write!(
                s,
                r##"<g class="tick"><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{plot_bottom:.1}" stroke="#e2e8f0"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#64748b" font-size="11">{label}</text>"##,
                TOP - 4.0,
                TOP - 8.0
            );
            if bottom_axis {
                let _ = write!(
                    s,
                    r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#64748b" font-size="11">{label}</text>"##,
                    plot_bottom + 16.0
                );
            }
            s.push_str("</g>");
            t += step;
        }
        let _ = write!(
            s,
            r##"<text x="8" y="{:.1}" fill="#64748b" font-size="11">time (UTC)</text>"##,
            TOP - 8.0
        );
    }

    /// A light line where each stage's first step started, with the stage's name.
    fn stages(&self, s: &mut String, plot_bottom: f64) {
        let v = self.view;
        let mut starts: Vec<(usize, u64)> = Vec::new();
        for r in &v.steps {
            let (Some(p), Some(t)) = (r.plan, r.rec.started_ms) else {
                continue;
            };
            match starts.iter_mut().find(|(st, _)| *st == p.stage) {
                Some(e) => e.1 = e.1.min(t),
                None => starts.push((p.stage, t)),
            }
        }
        starts.sort_by_key(|&(st, t)| (t, st));
        for (lane, (stage, t)) in starts.into_iter().enumerate() {
            let x = self.x(t);
            let ly = if lane % 2 == 0 { 14.0 } else { 28.0 };
            let _ = write!(
                s,
                r##"<g class="stage"><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{plot_bottom:.1}" stroke="{STAGE_COLOUR}" stroke-dasharray="4 3" stroke-opacity="0.8"/><text x="{:.1}" y="{ly}" fill="#3949ab" font-size="11" font-weight="600">▸ {}</text></g>"##,
                ly + 4.0,
                x + 2.0,
                esc(&v.stage_name(stage))
            );
        }
    }

    /// One bar per started step, on its host's row, with a tooltip.
    fn bars(&self, s: &mut String, sc: Scale) {
        let v = self.view;
        let bar_h = (sc.row_h * 0.64).max(4.0);
        let mut y = TOP;
        for g in &v.groups {
            y += sc.row_h;
            for h in &g.hosts {
                let by = y + (sc.row_h - bar_h) / 2.0;
                // Behind the bars: when the node was out of service.
                for (start, end) in v.out_of_service(h) {
                    let (x0, x1) = (self.x(start), self.x(end));
                    let _ = write!(
                        s,
                        r##"<rect class="oos" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{OOS_COLOUR}"><title>{} out of service · {}</title></rect>"##,
                        (x1 - x0).max(1.0),
                        sc.row_h,
                        esc(h.host),
                        time::duration(end - start),
                    );
                }
                for &i in &h.steps {
                    let r = &v.steps[i];
                    let Some((start, end)) = r.span(v.last_ms) else {
                        continue;
                    };
                    let x1 = self.x(end);
                    let w = (x1 - self.x(start)).max(2.0);
                    // A very short bar grows to the left, so it still ends where the step did.
                    let x0 = x1 - w;
                    let state = r.rec.state;
                    let label = bar_label(&r.rec.step, w, sc);
                    let _ = write!(
                        s,
                        r##"<rect class="bar st-{}" x="{x0:.1}" y="{by:.1}" width="{w:.1}" height="{bar_h:.1}" rx="2" fill="{}"><title>{} · {} · {} · {}{}</title></rect>"##,
                        state.as_str(),
                        state_colour(state),
                        esc(&r.rec.step),
                        esc(r.rule()),
                        state.as_str(),
                        time::duration(end - start),
                        if r.rec.finished_ms.is_none() {
                            " so far"
                        } else {
                            ""
                        }
                    );
                    if let Some(label) = label {
                        let _ = write!(
                            s,
                            r##"<text class="bar-label" x="{:.1}" y="{:.1}" fill="{}" font-size="{:.1}" pointer-events="none">{}</text>"##,
                            x0 + 4.0,
                            by + bar_h * 0.5 + (sc.font - 1.5) * 0.36,
                            if state == StepState::Waiting {
                                "#1f2933"
                            } else {
                                "#ffffff"
                            },
                            sc.font - 1.5,
                            esc(label)
                        );
                    }
                }
                y += sc.row_h;
            }
        }
    }

    /// The halt: a red line at the failing step's end (or at the last known time) and a label.
    fn halt(&self, s: &mut String, plot_bottom: f64, sc: Scale) {
        let v = self.view;
        let RunStatus::Halted { class, .. } = &v.run.status else {
            return;
        };
        let at = v
            .halt_step
            .and_then(|i| v.steps[i].span(v.last_ms))
            .map_or(v.last_ms, |(_, end)| end);
        let x = self.x(at);
        let step = v
            .halt_step
            .map(|i| format!(" at {}", v.steps[i].rec.step))
            .unwrap_or_default();
        let (anchor, tx) = if x > WIDTH / 2.0 {
            ("end", x - 5.0)
        } else {
            ("start", x + 5.0)
        };
        let _ = write!(
            s,
            r##"<g class="halt"><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{plot_bottom:.1}" stroke="{HALT_COLOUR}" stroke-width="2"/><text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" fill="{HALT_COLOUR}" font-size="{:.1}" font-weight="700" stroke="#ffffff" stroke-width="3" paint-order="stroke">halt: {}{}</text><title>halted ({}){}</title></g>"##,
            TOP - 4.0,
            TOP + sc.row_h * 0.7,
            sc.font.max(11.0),
            class.as_str(),
            esc(&step),
            class.as_str(),
            esc(&step)
        );
    }
}
