//! Log setup: `tracing` to standard error, human or JSON, `-v`/`-q`, `RUST_LOG` honoured.

use tracing_subscriber::EnvFilter;

use crate::args::{GlobalArgs, LogFormat};

/// Installs the global subscriber. Data goes to stdout; logs always go to stderr.
pub fn init(global: &GlobalArgs) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn,lockstep=info",
        (false, 1) => "debug,hyper=info,reqwest=info,rustls=info",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(global.verbose > 0);
    let ansi = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = match global.log_format {
        LogFormat::Human => builder.with_ansi(ansi).without_time().try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
