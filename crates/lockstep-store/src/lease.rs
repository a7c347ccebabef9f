//! This controller's leases: who it is, the runs it holds (with their fencing tokens), the
//! heartbeat thread that renews them, and the [`Fence`] the engine and the transport check.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lockstep_core::{Fence, RunId, StoreError};

use crate::batch::{Op, Out, WriterHandle};

/// How long a lease lasts unless renewed, by default; the heartbeat renews it every third.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// Whether `holder` (a [`holder_name`]) is a controller process of this machine that no longer
/// exists, so that its host leases need not be waited out: a controller killed while starting a
/// run (before the run was recorded) leaves leases no `resume` can claim, and a new `run` on this
/// machine takes them at once. Only "gone" is trusted: a live process with that pid, even a
/// reused one, keeps the lease until it lapses; without `/proc` nothing is known to be gone.
pub(crate) fn holder_gone(holder: &str) -> bool {
    let Some(rest) = holder.strip_prefix("controller pid ") else {
        return false;
    };
    let Some((pid, rest)) = rest.split_once(" on host ") else {
        return false;
    };
    let host = rest.split(", store handle ").next().unwrap_or(rest);
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if host != crate::lock::host_name() || pid == std::process::id() {
        return false;
    }
    let proc_fs = std::path::Path::new("/proc");
    proc_fs.join("self").exists() && !proc_fs.join(pid.to_string()).exists()
}

/// A controller's identity in leases: `controller pid N on host H` (with `, store handle K`
/// for the second and later store handles of one process, which are different controllers).
pub fn holder_name() -> String {
    static HANDLES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let k = HANDLES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = format!(
        "controller pid {} on host {}",
        std::process::id(),
        crate::lock::host_name()
    );
    if k == 0 {
        base
    } else {
        format!("{base}, store handle {}", k + 1)
    }
}

/// The leases of one store handle (one controller).
pub(crate) struct Session {
    pub holder: String,
    pub ttl: Duration,
    pub fence: Arc<Fence>,
    runs: Arc<Mutex<BTreeMap<RunId, u64>>>,
    heartbeat: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
}

impl Session {
    pub fn new(ttl: Duration) -> Session {
        Session {
            holder: holder_name(),
            ttl,
            fence: Arc::new(Fence::new(ttl)),
            runs: Arc::new(Mutex::new(BTreeMap::new())),
            heartbeat: Mutex::new(None),
        }
    }

    pub fn ttl_ms(&self) -> u64 {
        self.ttl.as_millis() as u64
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, BTreeMap<RunId, u64>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token this controller holds for `run`, if it holds the run.
    pub fn token(&self, run: &RunId) -> Option<u64> {
        self.runs().get(run).copied()
    }

    pub fn held(&self) -> Vec<(RunId, u64)> {
        self.runs().iter().map(|(r, t)| (r.clone(), *t)).collect()
    }

    pub fn hold(&self, run: &RunId, token: u64) {
        self.runs().insert(run.clone(), token);
    }

    /// The run lock of `run` (token `token`): releases the run's lease when dropped.
    pub fn run_lock(
        &self,
        run: &RunId,
        token: u64,
        writer: WriterHandle,
        guard: Option<crate::lock::RunGuard>,
    ) -> LeasedRun {
        LeasedRun {
            run: run.clone(),
            token,
            holder: self.holder.clone(),
            writer,
            runs: Arc::clone(&self.runs),
            _guard: guard,
        }
    }

    /// A lease was taken by a request sent at `sent`: open the fence and keep it renewed.
    pub fn taken(&self, sent: Instant, writer: WriterHandle) {
        self.fence.renewed(sent);
        let mut hb = self.heartbeat.lock().unwrap_or_else(|p| p.into_inner());
        if hb.is_some() {
            return;
        }
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let holder = self.holder.clone();
        let ttl = self.ttl;
        let fence = Arc::clone(&self.fence);
        let runs = Arc::clone(&self.runs);
        let spawned = std::thread::Builder::new()
            .name("lockstep-lease-heartbeat".to_owned())
            .spawn(move || loop {
                match stop_rx.recv_timeout(ttl / 3) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let held: Vec<(RunId, u64)> = runs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .map(|(r, t)| (r.clone(), *t))
                    .collect();
                let sent = Instant::now();
                match writer.call(Op::Renew {
                    holder: holder.clone(),
                    ttl_ms: ttl.as_millis() as u64,
                    runs: held,
                }) {
                    Ok(Out::Lost(lost)) if !lost.is_empty() => {
                        let (run, by) = &lost[0];
                        tracing::warn!(%run, "lease lost to {by}");
                        fence.lose(format!("run `{run}` was taken over by {by}"));
                    }
                    Ok(_) => fence.renewed(sent),
                    // Not renewed: the fence closes by itself when the lease would lapse.
                    Err(e) => tracing::warn!("lease renewal failed: {e}"),
                }
            });
        match spawned {
            Ok(handle) => *hb = Some((stop_tx, handle)),
            Err(e) => {
                tracing::warn!("cannot start the lease heartbeat: {e}");
                self.fence.lose(format!("no lease heartbeat: {e}"));
            }
        }
    }

    /// Stops the heartbeat (before the leases are released).
    pub fn stop_heartbeat(&self) {
        let hb = self
            .heartbeat
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((stop, handle)) = hb {
            let _ = stop.send(());
            let _ = handle.join();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

/// The refusal of a write for a run this controller no longer holds.
pub(crate) fn fenced(run: &RunId, by: Option<(String, u64)>, mine: u64) -> StoreError {
    StoreError::Fenced {
        run: run.clone(),
        detail: match by {
            Some((holder, token)) => {
                format!("{holder} took it over (fencing token {token}, this controller's {mine})")
            }
            None => "its lease was released".to_owned(),
        },
    }
}

/// A run this controller drives under its lease (and, on SQLite, the OS lock of the run).
/// Dropping it releases the lease (only if the token is still this controller's).
pub(crate) struct LeasedRun {
    run: RunId,
    token: u64,
    holder: String,
    writer: WriterHandle,
    runs: Arc<Mutex<BTreeMap<RunId, u64>>>,
    _guard: Option<crate::lock::RunGuard>,
}

impl lockstep_core::RunLock for LeasedRun {}

impl Drop for LeasedRun {
    fn drop(&mut self) {
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.run);
        let _ = self.writer.call(Op::Release {
            holder: self.holder.clone(),
            runs: vec![(self.run.clone(), self.token)],
            hosts: false,
        });
    }
}

#[cfg(test)]
mod gone_tests {
    use super::*;

    #[test]
    fn only_a_dead_process_of_this_machine_is_gone() {
        let here = crate::lock::host_name();
        // This process: alive.
        assert!(!holder_gone(&holder_name()));
        // A child that has exited and been reaped: gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        if std::path::Path::new("/proc/self").exists() {
            assert!(holder_gone(&format!("controller pid {pid} on host {here}")));
            assert!(holder_gone(&format!(
                "controller pid {pid} on host {here}, store handle 2"
            )));
        }
        // Another machine, or a name that is not a controller's: never known to be gone.
        assert!(!holder_gone(&format!(
            "controller pid {pid} on host not-{here}"
        )));
        assert!(!holder_gone("someone"));
        // A live process that is not this one (pid 1): alive.
        assert!(!holder_gone(&format!("controller pid 1 on host {here}")));
    }
}
