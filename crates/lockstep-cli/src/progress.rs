//! Rendering engine events for a person on standard error, one line per event.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use lockstep_core::{Event, EventSink, StepState};

/// Prints each event as a line on standard error (never data: that goes to stdout).
pub struct LineSink {
    started: Instant,
    quiet: bool,
    lock: Mutex<()>,
}

impl LineSink {
    /// A sink; `quiet` prints halts and the end only.
    pub fn new(quiet: bool) -> Self {
        LineSink {
            started: Instant::now(),
            quiet,
            lock: Mutex::new(()),
        }
    }

    fn line(&self, text: &str) {
        let _g = self.lock.lock();
        let e = self.started.elapsed();
        let _ = writeln!(
            std::io::stderr(),
            "{:>4}:{:02}.{:01} {text}",
            e.as_secs() / 60,
            e.as_secs() % 60,
            e.subsec_millis() / 100
        );
    }
}

/// The sentence a person reads for an event, the same in the plain lines and above the live
/// bars; `None` for events shown only as state (facts).
pub fn sentence(event: &Event) -> Option<String> {
    Some(match event {
        Event::RunStarted {
            run,
            plan,
            steps,
            complete,
            resumed,
        } => format!(
            "{} run {run} (plan {}, {steps} steps{})",
            if *resumed { "resuming" } else { "starting" },
            plan.short(),
            if *complete > 0 {
                format!(", {complete} already complete")
            } else {
                String::new()
            }
        ),
        Event::StageStarted { name, .. } => format!("== stage {name}"),
        Event::GateWaiting { reason, .. } => format!("gate: {reason}"),
        Event::Step {
            id,
            state,
            rule,
            message,
            ..
        } => {
            let msg = message.lines().next().unwrap_or("");
            format!("{:<8} [{rule}] {id}  {msg}", state.as_str())
                .trim_end()
                .to_owned()
        }
        Event::Halted {
            class,
            reason,
            next,
            standing,
        } => format!("HALTED ({class}): {reason}\n        now: {standing}\n        next: {next}"),
        Event::RunFinished {
            run,
            status,
            complete,
            total,
        } => format!("run {run} {status}: {complete}/{total} steps complete"),
        Event::Fact { .. } => return None,
    })
}

impl EventSink for LineSink {
    fn emit(&self, event: &Event) {
        let show = match event {
            Event::StageStarted { .. } => !self.quiet,
            Event::Step { state, .. } => match state {
                StepState::Pending => false,
                StepState::Running | StepState::Done | StepState::Skipped => !self.quiet,
                StepState::Waiting | StepState::Failed => true,
            },
            _ => true,
        };
        if let Some(text) = sentence(event).filter(|_| show) {
            self.line(&text);
        }
    }
}

/// Writes every event as one JSON object per line on standard output (`--output json`).
#[derive(Debug, Default)]
pub struct JsonSink {
    lock: Mutex<()>,
}

impl EventSink for JsonSink {
    fn emit(&self, event: &Event) {
        // Every event carries when it happened (RFC 3339, UTC, milliseconds).
        let mut value = match serde_json::to_value(event) {
            Ok(v) => v,
            Err(_) => return,
        };
        if let Some(map) = value.as_object_mut() {
            let at = jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            map.insert("at".to_owned(), serde_json::Value::String(at));
        }
        let _g = self.lock.lock();
        let mut out = std::io::stdout().lock();
        if serde_json::to_writer(&mut out, &value).is_ok() {
            let _ = writeln!(out);
            let _ = out.flush();
        }
    }
}

/// Hands every event to each sink in turn (the run log first, then the display).
pub struct Tee(pub Vec<std::sync::Arc<dyn EventSink>>);

impl EventSink for Tee {
    fn emit(&self, event: &Event) {
        for sink in &self.0 {
            sink.emit(event);
        }
    }
}
