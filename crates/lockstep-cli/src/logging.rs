//! Log setup: `tracing` to standard error, human or JSON, `-v`/`-q`, `RUST_LOG` honoured; and
//! the per-run log file `<state dir>/logs/<run id>.log`.
//!
//! The run id is known only when the engine emits `RunStarted`, so the file layer buffers what
//! is logged before (discovery, planning) and writes it out when [`open_run_log`] names the
//! file. The run's own progress (every step change, gates, halts) is logged under the target
//! [`RUN_TARGET`], which goes to the file only: the terminal shows it as progress instead.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lockstep_core::{Event, EventSink};
use tracing::Level;
use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::args::LogFormat;
use crate::settings::LogSettings;

/// The `tracing` target of the run's own event lines (file only).
pub const RUN_TARGET: &str = "lockstep_run";

/// Most bytes kept while no run log is open (what discovery and planning log before a run).
const PENDING_CAP: usize = 1 << 20;

struct RunLog {
    file: Option<File>,
    pending: Vec<u8>,
}

static RUN_LOG: Mutex<RunLog> = Mutex::new(RunLog {
    file: None,
    pending: Vec::new(),
});

/// Where the log of `run` is, for the state file `state`: `<state dir>/logs/<run>.log`.
pub fn run_log_path(state: &Path, run: &str) -> PathBuf {
    state
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join("logs")
        .join(format!("{run}.log"))
}

/// Opens (appending: a resume adds to the same file) the log of `run` and writes out what was
/// logged since the last run log closed. Returns its path.
pub fn open_run_log(state: &Path, run: &str) -> io::Result<PathBuf> {
    let path = run_log_path(state, run);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = File::options().create(true).append(true).open(&path)?;
    let mut log = RUN_LOG.lock().unwrap_or_else(|e| e.into_inner());
    file.write_all(&log.pending)?;
    log.pending.clear();
    log.file = Some(file);
    Ok(path)
}

/// Closes the open run log (the next run opens its own).
pub fn close_run_log() {
    let mut log = RUN_LOG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(mut f) = log.file.take() {
        let _ = f.flush();
    }
}

/// The writer of the file layer: the open run log, or the bounded buffer before one opens.
struct RunLogWriter;

impl Write for RunLogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut log = RUN_LOG.lock().unwrap_or_else(|e| e.into_inner());
        match log.file.as_mut() {
            Some(f) => f.write_all(buf)?,
            None => {
                if log.pending.len() + buf.len() <= PENDING_CAP {
                    log.pending.extend_from_slice(buf);
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut log = RUN_LOG.lock().unwrap_or_else(|e| e.into_inner());
        match log.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Standard error, with the live progress bars (if drawn) lifted while a line is written.
struct StderrWriter;

impl Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::live::with_output_suspended(|| io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Installs the global subscriber. Data goes to stdout; logs always go to stderr, and to the
/// run's log file while a run is driven.
pub(crate) fn init(settings: &LogSettings) {
    let default = match (settings.quiet, settings.verbose) {
        (true, _) => "error",
        // The run's events already reach stderr one line each (progress); the engine's own
        // info lines would repeat them. They stay in the run's log file.
        (false, 0) => "warn",
        (false, 1) => "debug,hyper=info,reqwest=info,rustls=info",
        (false, _) => "trace",
    };
    let off = format!("{RUN_TARGET}=off");
    let stderr_filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default))
        .add_directive(off.parse().expect("valid directive"));
    // The file keeps at least the run's info lines, whatever -q says; -v adds debug.
    let file_default = match settings.verbose {
        0 => "warn,lockstep=info",
        1 => "debug,hyper=info,reqwest=info,rustls=info",
        _ => "trace",
    };
    let file_filter = EnvFilter::new(file_default).add_directive(
        format!("{RUN_TARGET}=info")
            .parse()
            .expect("valid directive"),
    );
    let ansi = crate::live::color_enabled();
    let make_stderr = || StderrWriter;
    let make_file = || RunLogWriter;
    let (stderr_layer, file_layer) = match settings.format {
        LogFormat::Human => (
            tracing_subscriber::fmt::layer()
                .with_writer(make_stderr)
                .with_target(settings.verbose > 0)
                .with_ansi(ansi)
                .without_time()
                .boxed(),
            tracing_subscriber::fmt::layer()
                .with_writer(make_file)
                .with_ansi(false)
                .with_target(true)
                .boxed(),
        ),
        LogFormat::Json => (
            tracing_subscriber::fmt::layer()
                .with_writer(make_stderr)
                .with_target(settings.verbose > 0)
                .json()
                .boxed(),
            tracing_subscriber::fmt::layer()
                .with_writer(make_file)
                .json()
                .boxed(),
        ),
    };
    // While bars are drawn, info lines would only push them around: the bars say the same.
    let verbose = settings.verbose > 0;
    let calm = tracing_subscriber::filter::dynamic_filter_fn(move |meta, _| {
        verbose || !meta.is_event() || *meta.level() <= Level::WARN || !crate::live::drawing()
    });
    let _ = tracing_subscriber::registry()
        .with(stderr_layer.with_filter(stderr_filter.and(calm)))
        .with(file_layer.with_filter(file_filter))
        .try_init();
}

/// Logs every engine event of a run under [`RUN_TARGET`], opening the run's log file when the
/// run starts and closing it when it ends.
pub struct RunLogSink {
    state: PathBuf,
}

impl RunLogSink {
    /// A sink for runs kept in the state file `state`.
    pub fn new(state: &Path) -> Self {
        RunLogSink {
            state: state.to_owned(),
        }
    }
}

impl EventSink for RunLogSink {
    fn emit(&self, event: &Event) {
        match event {
            Event::RunStarted {
                run,
                plan,
                steps,
                complete,
                resumed,
            } => {
                if let Err(e) = open_run_log(&self.state, &run.0) {
                    tracing::warn!(
                        "cannot write the log of run `{run}` in `{}`: {e}",
                        run_log_path(&self.state, &run.0).display()
                    );
                }
                tracing::info!(target: RUN_TARGET, %run, plan = plan.short(), steps, complete, resumed, "run started");
            }
            Event::StageStarted { stage, name } => {
                tracing::info!(target: RUN_TARGET, stage, "stage {name} started");
            }
            Event::GateWaiting { stage, reason } => {
                tracing::info!(target: RUN_TARGET, stage, "gate waiting: {reason}");
            }
            Event::Step {
                id,
                host,
                state,
                rule,
                message,
                t_ms,
                ..
            } => {
                let state = state.as_str();
                tracing::info!(target: RUN_TARGET, step = %id, host = %host, state, rule = %rule, t_ms, "{state:<8} [{rule}] {id}  {message}");
            }
            Event::Fact { host, key, value } => {
                tracing::info!(target: RUN_TARGET, host = %host, key = %key, "fact {key}={value}");
            }
            Event::Halted {
                class,
                reason,
                next,
                standing,
            } => {
                tracing::warn!(target: RUN_TARGET, class = %class, "HALTED: {reason}; {standing}; next: {next}");
            }
            Event::RunFinished {
                run,
                status,
                complete,
                total,
            } => {
                tracing::info!(target: RUN_TARGET, %run, status = %status, complete, total, "run {status}: {complete}/{total} steps complete");
                close_run_log();
            }
        }
    }
}
