//! Live progress on a terminal: an overall bar with elapsed time and a plan-based estimate, and
//! one bar per active stage/site/cluster (or pool) showing the current step of each busy node.
//! Halts, failures, waits and stage starts are printed above the bars and stay after they clear.

use crate::progress::sentence;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lockstep_core::{Event, EventSink, Plan, StepState};

/// The bars currently drawn, if any: log lines written meanwhile go above them
/// ([`with_output_suspended`]).
static ACTIVE: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Most site/cluster lines drawn at once (a terminal is only so tall); the others are counted.
const MAX_GROUP_LINES: usize = 16;

/// Whether bars are drawn: the terminal then shows warnings and errors only (the bars tell the
/// rest; the run's log file keeps every line).
static DRAWING: AtomicBool = AtomicBool::new(false);

/// Whether live bars are on the terminal now.
pub fn drawing() -> bool {
    DRAWING.load(Ordering::Relaxed)
}

/// Runs `f` (which writes to standard error) with the live bars, if any, lifted out of the way,
/// so that log lines do not tear them.
pub fn with_output_suspended<R>(f: impl FnOnce() -> R) -> R {
    let active = ACTIVE.lock().ok().and_then(|g| g.clone());
    match active {
        Some(mp) => mp.suspend(f),
        None => f(),
    }
}

/// Whether standard error gets ANSI colours: a terminal, and `NO_COLOR` unset (no-color.org).
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// One line of bars: the steps of one stage on one site and one cluster, pool or set of
/// standalone servers.
struct Group {
    label: String,
    steps: Vec<usize>,
    bar: Option<ProgressBar>,
}

struct State {
    states: Vec<StepState>,
    started_at: Vec<Option<Instant>>,
    group_of: Vec<usize>,
    groups: Vec<Group>,
    /// Measured seconds and planned seconds of the steps done under our eyes: their ratio scales
    /// the plan's estimates to this fleet (a lab runs its simulated durations faster).
    measured_secs: f64,
    estimated_secs: f64,
    stage: String,
    running: bool,
    finished: bool,
}

/// The terminal progress display; an [`EventSink`] that knows the plan it follows. A helper
/// thread refreshes the estimate twice a second between events (a service-pack install is
/// silent for half an hour).
pub struct LiveSink(Arc<Live>);

struct Live {
    plan: Plan,
    multi: MultiProgress,
    overall: ProgressBar,
    color: bool,
    started: Instant,
    state: Mutex<State>,
}

fn plain_or(color: bool, colored: &str, plain: &str) -> String {
    if color { colored } else { plain }.to_owned()
}

/// Seconds in the one duration style (`12 s`, `4 min 05 s`, `3 h 02 min`).
pub fn human_secs(secs: u64) -> String {
    lockstep_core::duration_text(secs.saturating_mul(1000))
}

impl LiveSink {
    /// A display of `plan` drawing on standard error; `complete[i]` marks steps already
    /// complete (a resume), missing entries count as pending.
    pub fn new(plan: &Plan, complete: &[bool]) -> Self {
        Self::with_target(
            plan,
            complete,
            ProgressDrawTarget::stderr(),
            color_enabled(),
        )
    }

    /// As [`LiveSink::new`], drawing on `target` (tests use a hidden one).
    pub fn with_target(
        plan: &Plan,
        complete: &[bool],
        target: ProgressDrawTarget,
        color: bool,
    ) -> Self {
        let n = plan.steps.len();
        let states: Vec<StepState> = (0..n)
            .map(|i| {
                if complete.get(i).copied().unwrap_or(false) {
                    StepState::Done
                } else {
                    StepState::Pending
                }
            })
            .collect();
        let mut keys: BTreeMap<(usize, String, String), usize> = BTreeMap::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut group_of = Vec::with_capacity(n);
        for (i, s) in plan.steps.iter().enumerate() {
            let unit = s
                .cluster
                .as_ref()
                .or(s.pool.as_ref())
                .map(|c| c.to_string())
                .unwrap_or_else(|| "servers".to_owned());
            let key = (s.stage, s.site.to_string(), unit.clone());
            let g = *keys.entry(key).or_insert_with(|| {
                let stage = plan
                    .stages
                    .get(s.stage)
                    .map(|st| st.name.as_str())
                    .unwrap_or("?");
                groups.push(Group {
                    label: format!("{stage} {} {unit}", s.site),
                    steps: Vec::new(),
                    bar: None,
                });
                groups.len() - 1
            });
            groups[g].steps.push(i);
            group_of.push(g);
        }
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(n as u64));
        overall.set_style(
            ProgressStyle::with_template(&plain_or(
                color,
                "{spinner:.green} {prefix:.bold} [{elapsed_precise}] [{bar:30.cyan/blue}] {pos}/{len} steps  {msg}",
                "{spinner} {prefix} [{elapsed_precise}] [{bar:30}] {pos}/{len} steps  {msg}",
            ))
            .expect("valid template")
            .progress_chars("=>-"),
        );
        overall.set_prefix(plan.playbook.to_string());
        overall.set_position(states.iter().filter(|s| s.is_complete()).count() as u64);
        let sink = Live {
            plan: plan.clone(),
            multi,
            overall,
            color,
            started: Instant::now(),
            state: Mutex::new(State {
                states,
                started_at: vec![None; n],
                group_of,
                groups,
                measured_secs: 0.0,
                estimated_secs: 0.0,
                stage: String::new(),
                running: false,
                finished: false,
            }),
        };
        if let Ok(mut g) = ACTIVE.lock() {
            *g = Some(sink.multi.clone());
        }
        DRAWING.store(!sink.multi.is_hidden(), Ordering::Relaxed);
        let sink = Arc::new(sink);
        let weak = Arc::downgrade(&sink);
        let _ = std::thread::Builder::new()
            .name("lockstep-progress".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(500));
                let Some(live) = weak.upgrade() else { break };
                let Ok(mut st) = live.state.lock() else { break };
                if st.finished {
                    break;
                }
                if st.running {
                    live.refresh(&mut st);
                }
            });
        LiveSink(sink)
    }

    /// The site/cluster lines drawn now: (label, busy nodes and their steps).
    #[cfg(test)]
    pub fn lines(&self) -> Vec<(String, String)> {
        let st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        st.groups
            .iter()
            .filter_map(|g| g.bar.as_ref().map(|b| (b.prefix(), b.message())))
            .collect()
    }

    /// The estimated seconds left, by the plan (see the README's "Progress").
    #[cfg(test)]
    pub fn eta_secs(&self) -> u64 {
        let st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        self.0.eta_secs(&st, Instant::now())
    }
}

impl Live {
    fn group_style(&self) -> ProgressStyle {
        ProgressStyle::with_template(&plain_or(
            self.color,
            "  {prefix:<34} [{bar:20.green/white}] {pos:>3}/{len:<3} {wide_msg}",
            "  {prefix:<34} [{bar:20}] {pos:>3}/{len:<3} {wide_msg}",
        ))
        .expect("valid template")
        .progress_chars("=>-")
    }

    /// A line that stays: above the bars while they are drawn, plainly after.
    fn keep(&self, text: &str) {
        let e = self.started.elapsed().as_secs();
        let line = format!("{:>4}:{:02} {text}", e / 60, e % 60);
        self.multi.suspend(|| {
            let _ = writeln!(std::io::stderr(), "{line}");
        });
    }

    fn paint(&self, text: &str, style: console::Style) -> String {
        // `force_styling`: whether to colour is decided once, by `self.color`.
        style.force_styling(self.color).apply_to(text).to_string()
    }

    /// Remaining seconds by the plan: the remaining critical path (stages one after another,
    /// within a stage the longest chain of unfinished steps, a running step counting what is
    /// left of its estimate), scaled by how fast steps have gone against their estimates.
    fn eta_secs(&self, st: &State, now: Instant) -> u64 {
        let scale = if st.estimated_secs > 0.0 && st.measured_secs > 0.0 {
            st.measured_secs / st.estimated_secs
        } else {
            1.0
        };
        let mut finish = vec![0f64; self.plan.steps.len()];
        let mut stage_longest = vec![0f64; self.plan.stages.len().max(1)];
        for (i, s) in self.plan.steps.iter().enumerate() {
            if st.states[i].is_complete() {
                continue;
            }
            let mut left = s.estimate_secs as f64;
            if let Some(t) = st.started_at[i] {
                left = (left - now.duration_since(t).as_secs_f64() / scale).max(0.0);
            }
            let start = s.after.iter().map(|&d| finish[d]).fold(0f64, f64::max);
            finish[i] = start + left;
            let slot = s.stage.min(stage_longest.len() - 1);
            stage_longest[slot] = stage_longest[slot].max(finish[i]);
        }
        (stage_longest.iter().sum::<f64>() * scale).round() as u64
    }

    fn refresh(&self, st: &mut State) {
        let now = Instant::now();
        let complete = st.states.iter().filter(|s| s.is_complete()).count();
        self.overall.set_position(complete as u64);
        let stage = if st.stage.is_empty() {
            String::new()
        } else {
            format!("stage {}  ", st.stage)
        };
        let hidden = st
            .groups
            .iter()
            .filter(|g| {
                g.bar.is_none()
                    && g.steps
                        .iter()
                        .any(|&i| matches!(st.states[i], StepState::Running | StepState::Waiting))
            })
            .count();
        let more = if hidden > 0 {
            format!("  (+{hidden} more busy)")
        } else {
            String::new()
        };
        self.overall.set_message(format!(
            "{stage}ETA ~{}{more}",
            human_secs(self.eta_secs(st, now))
        ));
    }

    fn update_group(&self, st: &mut State, g: usize) {
        let style = self.group_style();
        let group = &st.groups[g];
        let done = group
            .steps
            .iter()
            .filter(|&&i| st.states[i].is_complete())
            .count();
        let busy: Vec<String> = group
            .steps
            .iter()
            .filter(|&&i| matches!(st.states[i], StepState::Running | StepState::Waiting))
            .map(|&i| {
                let s = &self.plan.steps[i];
                let waiting = if st.states[i] == StepState::Waiting {
                    " (waiting)"
                } else {
                    ""
                };
                format!("{}: {}{waiting}", s.host, s.spec)
            })
            .collect();
        let all_done = done == group.steps.len();
        let len = group.steps.len() as u64;
        let label = group.label.clone();
        let drawn = st.groups.iter().filter(|g| g.bar.is_some()).count();
        let group = &mut st.groups[g];
        if all_done {
            if let Some(bar) = group.bar.take() {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
            return;
        }
        if group.bar.is_none() && drawn >= MAX_GROUP_LINES {
            // Counted in the overall line instead (`+N more busy`), drawn when a line frees.
            return;
        }
        let bar = group.bar.get_or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(len));
            bar.set_style(style);
            bar.set_prefix(label);
            bar
        });
        bar.set_position(done as u64);
        bar.set_message(busy.join("  "));
    }

    fn clear(&self, st: &mut State) {
        for g in &mut st.groups {
            if let Some(bar) = g.bar.take() {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Ok(mut st) = self.state.lock() {
            if !st.finished {
                self.clear(&mut st);
            }
        }
        if let Ok(mut g) = ACTIVE.lock() {
            *g = None;
        }
        DRAWING.store(false, Ordering::Relaxed);
    }
}

impl EventSink for LiveSink {
    fn emit(&self, event: &Event) {
        self.0.emit(event);
    }
}

impl Live {
    fn emit(&self, event: &Event) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        match event {
            Event::RunStarted { .. } => {
                self.keep(&sentence(event).unwrap_or_default());
                st.running = true;
                self.overall.enable_steady_tick(Duration::from_millis(200));
                self.refresh(&mut st);
            }
            Event::StageStarted { name, .. } => {
                st.stage = name.clone();
                self.keep(&sentence(event).unwrap_or_default());
                self.refresh(&mut st);
            }
            Event::GateWaiting { .. } => {
                self.keep(&self.paint(
                    &sentence(event).unwrap_or_default(),
                    console::Style::new().yellow(),
                ));
            }
            Event::Step { index, state, .. } => {
                let i = *index;
                if i >= st.states.len() {
                    return;
                }
                let now = Instant::now();
                match state {
                    StepState::Running => {
                        st.started_at[i].get_or_insert(now);
                    }
                    StepState::Done => {
                        if let Some(t) = st.started_at[i] {
                            st.measured_secs += now.duration_since(t).as_secs_f64();
                            st.estimated_secs += self.plan.steps[i].estimate_secs as f64;
                        }
                    }
                    _ => {}
                }
                st.states[i] = *state;
                if matches!(state, StepState::Waiting | StepState::Failed) {
                    let text = sentence(event).unwrap_or_default();
                    let style = if *state == StepState::Failed {
                        console::Style::new().red()
                    } else {
                        console::Style::new().yellow()
                    };
                    self.keep(&self.paint(text.trim_end(), style));
                }
                let g = st.group_of[i];
                self.update_group(&mut st, g);
                self.refresh(&mut st);
            }
            Event::Halted { .. } => {
                self.keep(&self.paint(
                    &sentence(event).unwrap_or_default(),
                    console::Style::new().red().bold(),
                ));
            }
            Event::RunFinished {
                run,
                status,
                complete,
                total,
            } => {
                st.finished = true;
                self.clear(&mut st);
                DRAWING.store(false, Ordering::Relaxed);
                let e = self.started.elapsed().as_secs();
                let _ = writeln!(
                    std::io::stderr(),
                    "{:>4}:{:02} run {run} {status}: {complete}/{total} steps complete in {}",
                    e / 60,
                    e % 60,
                    human_secs(e)
                );
            }
            Event::Fact { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_plan(playbook: &str) -> Plan {
        let (fleet, _) = crate::inputs::load_fleet(&[]).unwrap();
        let (playbook, _) = crate::inputs::load_playbook(playbook, &fleet).unwrap();
        lockstep_plan::plan(&fleet, &playbook, &Default::default()).unwrap()
    }

    fn step(plan: &Plan, i: usize, state: StepState) -> Event {
        let s = &plan.steps[i];
        Event::Step {
            index: i,
            id: s.id.clone(),
            host: s.host.clone(),
            state,
            rule: s.rule.clone(),
            message: String::new(),
            t_ms: 0,
        }
    }

    #[test]
    fn the_estimate_is_the_remaining_critical_path() {
        let plan = lab_plan("e3-nc");
        assert!(plan.stages.len() > 1, "a plan with several stages");
        let sink = LiveSink::with_target(&plan, &[], ProgressDrawTarget::hidden(), false);
        let full = sink.eta_secs();
        assert_eq!(
            full,
            plan.critical_path_secs(),
            "nothing done: the whole path"
        );
        assert!(full > 0);
        // Steps found done (skipped by their probe) carry no timing: the scale stays 1.
        for (i, s) in plan.steps.iter().enumerate() {
            if s.stage == 0 {
                sink.emit(&step(&plan, i, StepState::Skipped));
            }
        }
        let after_first = sink.eta_secs();
        assert!(
            after_first < full && after_first > 0,
            "first stage done: {after_first} of {full}"
        );
        for i in 0..plan.steps.len() {
            sink.emit(&step(&plan, i, StepState::Skipped));
        }
        assert_eq!(sink.eta_secs(), 0, "all done");
    }

    #[test]
    fn a_line_per_busy_group_naming_each_node_and_its_step() {
        let plan = lab_plan("e3-nc");
        let sink = LiveSink::with_target(&plan, &[], ProgressDrawTarget::hidden(), false);
        assert!(sink.lines().is_empty(), "nothing busy, no lines");
        let first = &plan.steps[0];
        sink.emit(&step(&plan, 0, StepState::Running));
        let lines = sink.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].0.contains(first.site.as_str()), "{lines:?}");
        assert_eq!(lines[0].1, format!("{}: {}", first.host, first.spec));
        // The whole group done: its line goes.
        let group: Vec<usize> = (0..plan.steps.len())
            .filter(|&i| {
                let s = &plan.steps[i];
                s.stage == first.stage && s.site == first.site && s.cluster == first.cluster
            })
            .collect();
        for &i in &group {
            sink.emit(&step(&plan, i, StepState::Done));
        }
        assert!(sink.lines().is_empty(), "{:?}", sink.lines());
    }

    #[test]
    fn a_resume_counts_completed_steps_as_done() {
        let plan = lab_plan("e3-nc");
        let all = vec![true; plan.steps.len()];
        let sink = LiveSink::with_target(&plan, &all, ProgressDrawTarget::hidden(), false);
        assert_eq!(sink.eta_secs(), 0);
    }

    #[test]
    fn human_secs_reads_well() {
        assert_eq!(human_secs(12), "12 s");
        assert_eq!(human_secs(245), "4 min 05 s");
        assert_eq!(human_secs(3 * 3600 + 120), "3 h 02 min");
    }
}
