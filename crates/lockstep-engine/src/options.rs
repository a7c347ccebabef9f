//! [`EngineOptions`]: the knobs of one engine.

use std::time::Duration;

/// How an [`crate::Engine`] drives runs.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// Pass approval gates and operator steps without waiting for `lockstep approve` (each
    /// approval is still recorded in the store).
    pub auto_approve: bool,
    /// Multiplier of soak gates' seconds: 1.0 for real runs, 0.0 in tests.
    pub soak_scale: f64,
    /// Extra attempts of read-only calls (probes, and steps whose action changes
    /// nothing) that failed with `NodeUnreachable`. Nothing that may have changed a node is ever
    /// retried by the engine: transport-level retries belong to the transport.
    pub retries: u32,
    /// Pause between those attempts.
    pub retry_backoff: Duration,
    /// Bytes of a step's output kept in the store (the tail is kept).
    pub output_limit: usize,
    /// On resume, the longest wait before a step whose probe says `InProgress` is probed again
    /// (it is probed at once, then after 250 ms, doubling up to this).
    pub probe_interval: Duration,
    /// On resume, how many `InProgress` answers a step may give before the run halts.
    pub probe_attempts: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            auto_approve: false,
            soak_scale: 1.0,
            retries: 2,
            retry_backoff: Duration::from_secs(5),
            output_limit: 64 * 1024,
            probe_interval: Duration::from_secs(30),
            probe_attempts: 120,
        }
    }
}
