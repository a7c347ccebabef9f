//! [`StopSignal`]: the operator's "stop at the next safe point" (Ctrl-C).

use std::sync::Arc;

use tokio::sync::watch;

/// A cloneable stop request. Once triggered, the engine starts nothing new, lets the running
/// steps finish, and halts the run with `OperatorStop` (resumable).
#[derive(Debug, Clone)]
pub struct StopSignal {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl StopSignal {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        StopSignal {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Requests the stop (idempotent; safe from any thread).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the stop was requested.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the stop is requested.
    pub async fn triggered(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}
