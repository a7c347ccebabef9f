//! [`Gantt`]: the run's timeline as an inline SVG. One row per host under group headers (site and
//! cluster/pool), x = UTC time, one bar per started step coloured by state, stage starts as light
//! vertical lines, the halt as a red line at the failing step's end.
//!
//! [`Gantt::timeline`] computes the geometry (a serializable [`Timeline`]); the template
//! `templates/timeline.svg`, included by the HTML report, draws it with every text escaped.

use lockstep_core::{RunStatus, StepState};
use serde::Serialize;

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

/// A coordinate as drawn: rounded to a tenth of a pixel.
fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The timeline's geometry and texts, for `templates/timeline.svg`: plain data, every string
/// raw (the template escapes it).
#[derive(Debug, Serialize)]
pub struct Timeline<'a> {
    run_id: &'a str,
    width: u32,
    height: u32,
    font: f64,
    row_h: f64,
    /// Where the plot starts (right of the host names).
    label_w: f64,
    /// The top of the axis lines, and where tick labels sit.
    plot_top: f64,
    tick_label_y: f64,
    plot_bottom: f64,
    /// Tick labels are repeated below long charts, at this height.
    bottom_label_y: Option<f64>,
    groups: Vec<GroupRow<'a>>,
    ticks: Vec<Tick>,
    stages: Vec<StageLine>,
    out_of_service: Vec<Band<'a>>,
    bar_h: f64,
    bar_font: f64,
    bars: Vec<Bar<'a>>,
    halt: Option<HaltLine<'a>>,
    /// Where "no step has started" goes, when none has.
    empty: Option<(f64, f64)>,
    halt_colour: &'static str,
    stage_colour: &'static str,
    oos_colour: &'static str,
}

/// A group header and its host rows.
#[derive(Debug, Serialize)]
struct GroupRow<'a> {
    y: f64,
    text_y: f64,
    site: &'a str,
    label: &'a str,
    hosts: Vec<HostLabel<'a>>,
}

#[derive(Debug, Serialize)]
struct HostLabel<'a> {
    y: f64,
    text_y: f64,
    host: &'a str,
    /// Every other row is shaded.
    stripe: bool,
}

#[derive(Debug, Serialize)]
struct Tick {
    x: f64,
    label: String,
}

#[derive(Debug, Serialize)]
struct StageLine {
    x: f64,
    /// The line starts just below its label; labels alternate between two heights so that
    /// close stages stay legible.
    line_top: f64,
    label_x: f64,
    label_y: f64,
    name: String,
}

/// A node's out-of-service window, drawn behind its bars.
#[derive(Debug, Serialize)]
struct Band<'a> {
    x: f64,
    y: f64,
    width: f64,
    host: &'a str,
    duration: String,
}

#[derive(Debug, Serialize)]
struct Bar<'a> {
    state: &'static str,
    colour: &'static str,
    x: f64,
    y: f64,
    width: f64,
    step: &'a str,
    rule: &'a str,
    duration: String,
    /// Still running: its duration is `… so far`.
    so_far: bool,
    /// The step's short name inside the bar, when it fits.
    label: Option<BarLabel<'a>>,
}

#[derive(Debug, Serialize)]
struct BarLabel<'a> {
    x: f64,
    y: f64,
    fill: &'static str,
    text: &'a str,
}

/// The halt marker.
#[derive(Debug, Serialize)]
struct HaltLine<'a> {
    x: f64,
    text_x: f64,
    text_y: f64,
    anchor: &'static str,
    font: f64,
    class: &'static str,
    step: Option<&'a str>,
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

    /// The timeline's geometry, for the template.
    pub fn timeline(&self) -> Timeline<'v> {
        let v = self.view;
        let rows = v.groups.len() + v.groups.iter().map(|g| g.hosts.len()).sum::<usize>();
        let sc = Scale::for_rows(rows);
        let plot_bottom = TOP + rows as f64 * sc.row_h;
        let bottom_axis = rows > 30;
        let height = plot_bottom + if bottom_axis { 26.0 } else { 8.0 };

        // Row backgrounds and labels.
        let mut y = TOP;
        let mut stripe = false;
        let mut groups = Vec::with_capacity(v.groups.len());
        for g in &v.groups {
            let header_y = y;
            y += sc.row_h;
            let mut hosts = Vec::with_capacity(g.hosts.len());
            for h in &g.hosts {
                hosts.push(HostLabel {
                    y: r1(y),
                    text_y: r1(y + sc.row_h * 0.7),
                    host: h.host,
                    stripe,
                });
                stripe = !stripe;
                y += sc.row_h;
            }
            groups.push(GroupRow {
                y: r1(header_y),
                text_y: r1(header_y + sc.row_h * 0.7),
                site: g.site,
                label: &g.label,
                hosts,
            });
        }
        let (out_of_service, bars) = self.bars(sc);
        Timeline {
            run_id: &v.run.id.0,
            width: WIDTH as u32,
            height: height.round() as u32,
            font: sc.font,
            row_h: sc.row_h,
            label_w: LABEL_W,
            plot_top: TOP - 4.0,
            tick_label_y: TOP - 8.0,
            plot_bottom: r1(plot_bottom),
            bottom_label_y: bottom_axis.then(|| r1(plot_bottom + 16.0)),
            groups,
            ticks: self.ticks(),
            stages: self.stages(),
            out_of_service,
            bar_h: r1((sc.row_h * 0.64).max(4.0)),
            bar_font: sc.font - 1.5,
            bars,
            halt: self.halt(sc),
            empty: v
                .steps
                .iter()
                .all(|r| r.rec.started_ms.is_none())
                .then(|| (r1(LABEL_W + (WIDTH - LABEL_W) / 2.0), TOP + 16.0)),
            halt_colour: HALT_COLOUR,
            stage_colour: STAGE_COLOUR,
            oos_colour: OOS_COLOUR,
        }
    }

    /// Ticks at round UTC times.
    fn ticks(&self) -> Vec<Tick> {
        let (t0, t1) = self.span();
        let step = TICKS_MS
            .iter()
            .copied()
            .find(|&st| (t1 - t0) / st <= 8)
            .unwrap_or(TICKS_MS[TICKS_MS.len() - 1]);
        let seconds = step < 60_000;
        let days = time::date(t0) != time::date(t1);
        let mut ticks = Vec::new();
        let mut t = t0.div_ceil(step) * step;
        while t <= t1 {
            let label = if days {
                let date = time::date(t);
                format!(
                    "{} {}",
                    date.get(5..).unwrap_or(&date),
                    time::clock(t, seconds)
                )
            } else {
                time::clock(t, seconds)
            };
            ticks.push(Tick {
                x: r1(self.x(t)),
                label,
            });
            t += step;
        }
        ticks
    }

    /// Where each stage's first step started, with the stage's name.
    fn stages(&self) -> Vec<StageLine> {
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
        starts
            .into_iter()
            .enumerate()
            .map(|(lane, (stage, t))| {
                let x = self.x(t);
                let label_y = if lane % 2 == 0 { 14.0 } else { 28.0 };
                StageLine {
                    x: r1(x),
                    line_top: label_y + 4.0,
                    label_x: r1(x + 2.0),
                    label_y,
                    name: v.stage_name(stage),
                }
            })
            .collect()
    }

    /// Each node's out-of-service windows, and one bar per started step, on its host's row.
    fn bars(&self, sc: Scale) -> (Vec<Band<'v>>, Vec<Bar<'v>>) {
        let v = self.view;
        let bar_h = (sc.row_h * 0.64).max(4.0);
        let mut bands = Vec::new();
        let mut bars = Vec::with_capacity(v.steps.len());
        let mut y = TOP;
        for g in &v.groups {
            y += sc.row_h;
            for h in &g.hosts {
                let by = y + (sc.row_h - bar_h) / 2.0;
                for (start, end) in v.out_of_service(h) {
                    let (x0, x1) = (self.x(start), self.x(end));
                    bands.push(Band {
                        x: r1(x0),
                        y: r1(y),
                        width: r1((x1 - x0).max(1.0)),
                        host: h.host,
                        duration: time::duration(end - start),
                    });
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
                    bars.push(Bar {
                        state: state.as_str(),
                        colour: state_colour(state),
                        x: r1(x0),
                        y: r1(by),
                        width: r1(w),
                        step: &r.rec.step,
                        rule: r.rule(),
                        duration: time::duration(end - start),
                        so_far: r.rec.finished_ms.is_none(),
                        label: bar_label(&r.rec.step, w, sc).map(|text| BarLabel {
                            x: r1(x0 + 4.0),
                            y: r1(by + bar_h * 0.5 + (sc.font - 1.5) * 0.36),
                            fill: if state == StepState::Waiting {
                                "#1f2933"
                            } else {
                                "#ffffff"
                            },
                            text,
                        }),
                    });
                }
                y += sc.row_h;
            }
        }
        (bands, bars)
    }

    /// The halt: a red line at the failing step's end (or at the last known time) and a label.
    fn halt(&self, sc: Scale) -> Option<HaltLine<'v>> {
        let v = self.view;
        let RunStatus::Halted { class, .. } = &v.run.status else {
            return None;
        };
        let at = v
            .halt_step
            .and_then(|i| v.steps[i].span(v.last_ms))
            .map_or(v.last_ms, |(_, end)| end);
        let x = self.x(at);
        let (anchor, text_x) = if x > WIDTH / 2.0 {
            ("end", x - 5.0)
        } else {
            ("start", x + 5.0)
        };
        Some(HaltLine {
            x: r1(x),
            text_x: r1(text_x),
            text_y: r1(TOP + sc.row_h * 0.7),
            anchor,
            font: sc.font.max(11.0),
            class: class.as_str(),
            step: v.halt_step.map(|i| v.steps[i].rec.step.as_str()),
        })
    }
}
