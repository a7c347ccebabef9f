//! Exit statuses and the one place an error chain is rendered.

use std::fmt::Write as _;
use std::process::ExitCode;

/// How `lockstep` ends. The numbers live here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything asked for was done (a run finished).
    Success,
    /// An unexpected failure (I/O, state file, a bug).
    Failure,
    /// Bad input: an invalid inventory, playbook, argument or credential source; nothing ran.
    BadInput,
    /// The run halted in a documented safe state; `lockstep resume` continues it.
    Halted,
    /// The run waits for an operator (`lockstep approve`, then `lockstep resume`).
    Waiting,
    /// Some hosts could not be read (`facts`), or did not all run the command with exit code 0
    /// (`exec`: a non-zero exit code, or unreachable).
    HostsFailed,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::BadInput => 2,
            ExitStatus::Halted => 3,
            ExitStatus::Waiting => 4,
            ExitStatus::HostsFailed => 5,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        ExitCode::from(s.code())
    }
}

/// An error that is the user's input: rendered as is (it already names file, line and value) and
/// mapped to [`ExitStatus::BadInput`].
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// The exit status an error maps to.
pub fn status_of(err: &anyhow::Error) -> ExitStatus {
    if err.chain().any(|e| e.is::<BadInput>()) {
        ExitStatus::BadInput
    } else {
        ExitStatus::Failure
    }
}

/// Whether the error is standard output closed by its reader (`| head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Renders an error and its causes: `error: top` then `  caused by: ...` lines.
pub fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut chain = err.chain();
    if let Some(top) = chain.next() {
        let text = top.to_string();
        if top.is::<BadInput>() {
            // Bad-input messages carry their own `file:line:col: error:` or `error:` prefixes.
            out.push_str(text.trim_end());
        } else {
            let _ = write!(out, "error: {text}");
        }
    }
    for cause in chain {
        let _ = write!(out, "\n  caused by: {cause}");
    }
    out
}
