//! Group commit: one writer thread per store applies every write that arrived while the
//! previous commit was syncing, in one transaction (each write in its own savepoint, so one
//! failing write fails alone), then answers each caller. Under load many step transitions share
//! one `fsync`; alone, a write costs one commit as before. Every caller still returns only once
//! its write is durable: the checkpoint-before-remote-action rule holds per step.

use std::sync::mpsc;
use std::thread::JoinHandle;

use futures::channel::oneshot;
use lockstep_core::{
    Fact, HostLease, Name, RunId, RunLease, RunRecord, RunSummary, StepRecord, StoreError,
};

/// The most writes one commit carries.
const MAX_BATCH: usize = 1024;

/// A write (or a lease operation, which is a write too).
#[derive(Debug)]
pub(crate) enum Op {
    /// A new run with every step pending.
    CreateRun {
        playbook: String,
        hash: String,
        plan_json: String,
        meta_json: String,
        status_json: String,
        step_ids: Vec<String>,
    },
    PutStep {
        run: RunId,
        token: Option<u64>,
        record: StepRecord,
    },
    PutFact {
        run: RunId,
        token: Option<u64>,
        fact: Fact,
    },
    SetStatus {
        run: RunId,
        token: Option<u64>,
        json: String,
    },
    Approve {
        run: RunId,
        what: String,
        by: String,
    },
    ReplacePlan {
        run: RunId,
        token: Option<u64>,
        playbook: String,
        hash: String,
        plan_json: String,
        step_ids: Vec<String>,
    },
    /// Takes the run's lease; `steal` when the caller proved the holder dead (SQLite's OS lock).
    TakeRun {
        run: RunId,
        holder: String,
        ttl_ms: u64,
        steal: bool,
    },
    TakeHosts {
        holder: String,
        ttl_ms: u64,
        hosts: Vec<Name>,
        run: Option<RunId>,
        /// The run being resumed was proved dead: its host leases may be taken at once.
        run_dead: bool,
    },
    BindHosts {
        holder: String,
        run: RunId,
    },
    Renew {
        holder: String,
        ttl_ms: u64,
        runs: Vec<(RunId, u64)>,
    },
    /// Reads, for a backend whose one connection lives on the writer thread (PostgreSQL).
    LoadRun(RunId),
    LatestRun,
    ListRuns,
    RunLeases,
    /// Facts read outside any run (`lockstep facts`).
    PutFleetFacts(Vec<Fact>),
    LatestFleetFacts,
    /// Releases run leases (by token) and, with `hosts`, every host lease of the holder.
    Release {
        holder: String,
        runs: Vec<(RunId, u64)>,
        hosts: bool,
    },
}

/// What a write answers.
#[derive(Debug)]
pub(crate) enum Out {
    Done,
    Run(RunId),
    Token(u64),
    /// Runs whose lease another controller took (with who).
    Lost(Vec<(RunId, String)>),
    Record(Box<RunRecord>),
    Latest(Option<RunId>),
    Runs(Vec<RunSummary>),
    Leases(Vec<RunLease>),
    Facts(Vec<Fact>),
}

/// A write and where its answer goes.
pub(crate) struct Job {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Out, StoreError>>,
}

/// The writer thread of a store.
pub(crate) struct Writer {
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    path: String,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("path", &self.path).finish()
    }
}

impl Writer {
    /// Starts the thread; `apply` runs each batch (at least one job) and answers every job.
    pub fn start<F>(path: String, mut apply: F) -> Result<Writer, StoreError>
    where
        F: FnMut(Vec<Job>) + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Job>();
        let commits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = std::sync::Arc::clone(&commits);
        let thread = std::thread::Builder::new()
            .name("lockstep-store-writer".to_owned())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    apply(jobs);
                    counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
            .map_err(|e| StoreError::Backend {
                path: path.clone(),
                detail: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Writer {
            commits,
            tx: Some(tx),
            thread: Some(thread),
            path,
        })
    }

    /// Queues a write; the receiver resolves once it is durable.
    pub fn submit(&self, op: Op) -> oneshot::Receiver<Result<Out, StoreError>> {
        let (reply, rx) = oneshot::channel();
        if let Some(tx) = &self.tx {
            // A send fails only once the thread is gone; the dropped reply then says so.
            let _ = tx.send(Job { op, reply });
        }
        rx
    }

    /// The same, waiting for the answer.
    pub fn call(&self, op: Op) -> Result<Out, StoreError> {
        let rx = self.submit(op);
        futures::executor::block_on(rx).unwrap_or_else(|_| Err(self.gone()))
    }

    /// How many batches (commits) the writer has applied.
    pub fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A cheap handle for another thread (the heartbeat).
    pub fn handle(&self) -> WriterHandle {
        WriterHandle {
            tx: self.tx.clone(),
            path: self.path.clone(),
        }
    }

    pub fn gone(&self) -> StoreError {
        gone(&self.path)
    }
}

fn gone(path: &str) -> StoreError {
    StoreError::Backend {
        path: path.to_owned(),
        detail: "the store's writer thread stopped".to_owned(),
    }
}

/// A sender to a [`Writer`] that does not keep it alive past the store.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    tx: Option<mpsc::Sender<Job>>,
    path: String,
}

impl WriterHandle {
    pub fn call(&self, op: Op) -> Result<Out, StoreError> {
        let (reply, rx) = oneshot::channel();
        if let Some(tx) = &self.tx {
            let _ = tx.send(Job { op, reply });
        }
        futures::executor::block_on(rx).unwrap_or_else(|_| Err(gone(&self.path)))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Turns an answer into `()` (every write but the three that answer something).
pub(crate) fn unit(r: Result<Out, StoreError>) -> Result<(), StoreError> {
    r.map(|_| ())
}

/// Host-lease conflicts are reported all at once.
pub(crate) fn host_conflicts(conflicts: Vec<HostLease>) -> Result<Out, StoreError> {
    Err(StoreError::HostsLeased(conflicts))
}
