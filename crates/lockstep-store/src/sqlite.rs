//! [`SqliteStore`]: the embedded state store.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lockstep_core::{
    now_ms, Approval, Fact, Fence, HostLease, Name, Plan, RunId, RunLease, RunLock, RunMeta,
    RunRecord, RunStatus, RunSummary, StateStore, StepRecord, StepState, StoreError, StoreFuture,
};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::batch::{unit, Job, Op, Out, Writer};
use crate::lease::{fenced, Session, DEFAULT_LEASE_TTL};
use crate::lock::RunGuard;
use crate::migrations::MIGRATIONS;
use crate::run_id::new_run_id;
use crate::transition::Transition;

/// How hard a write is pushed to the disk before the call returns.
///
/// The default is [`Durability::Full`]: the engine writes a step's `running` record before it
/// sends the step's command, and only a synced record still says so after a power loss of the
/// controller (with `NORMAL`, the last records may vanish and a step that had been sent would
/// look never started). `FULL` adds an `fdatasync` per write: 0.13-0.3 ms on a quiet disk, 4.5 ms
/// on a loaded one (`cargo bench -p lockstep-store --bench checkpoint`), against 0.03-0.23 ms
/// for `NORMAL`. On the rollout bench (1,000 hosts, lab time scale 0.005, quiet disk): 24.0 s
/// with `FULL` (1.01 x the critical path), 20.5 s with `NORMAL`. Since writes are group-committed
/// (one writer thread syncs every write that arrived meanwhile at once), `FULL` costs 1.15x
/// `NORMAL` at 200 concurrent hosts (`benches/group_commit.rs`), and the CLI always uses it.
/// `NORMAL` still survives a crash of the controller process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: the WAL is synced at every commit; a write survives a power loss of
    /// the controller. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: the WAL is synced at checkpoints only; a write survives a crash of
    /// the controller process but the last ones may be lost on a power loss.
    Normal,
}

/// How long a writer waits for another process's transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite state store (one file, WAL mode). Reads use their own connection behind a mutex;
/// writes go to one writer thread that group-commits them ([`crate::batch`]). Other processes
/// may open the same file at the same time.
pub struct SqliteStore {
    path: PathBuf,
    // Declared before the writer: its heartbeat holds a handle to the writer and must stop
    // first.
    session: Session,
    writer: Writer,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the state file with the default [`Durability`] (`NORMAL`) and
    /// brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::default())
    }

    /// Opens (creating if needed) the state file with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        Self::open_leased(path, durability, DEFAULT_LEASE_TTL)
    }

    /// Opens the state file with the given durability and lease length (see
    /// [`StateStore::take_hosts`] and [`StateStore::lock_run`]).
    pub fn open_leased(
        path: &Path,
        durability: Durability,
        lease_ttl: Duration,
    ) -> Result<Self, StoreError> {
        let conn = Self::connect(path, durability, true)?;
        let mut wconn = Self::connect(path, durability, false)?;
        let wpath = path.to_owned();
        let writer = Writer::start(path.display().to_string(), move |jobs| {
            apply_batch(&mut wconn, &wpath, jobs)
        })?;
        Ok(SqliteStore {
            path: path.to_owned(),
            session: Session::new(lease_ttl),
            writer,
            conn: Mutex::new(conn),
        })
    }

    /// Opens a connection (and, with `migrate_schema`, brings the schema up to date), retrying
    /// while another process holds the file. The busy handler does not cover everything: two
    /// processes switching a new file to WAL at once meet a lock-upgrade deadlock that SQLite
    /// answers at once with `SQLITE_BUSY` (seen in CI: two `lockstep run`s started together).
    fn connect(
        path: &Path,
        durability: Durability,
        migrate_schema: bool,
    ) -> Result<Connection, StoreError> {
        let deadline = Instant::now() + BUSY_TIMEOUT;
        let mut pause = Duration::from_millis(5);
        loop {
            match Self::try_connect(path, durability, migrate_schema) {
                Err(ConnectError::Sqlite(e)) if is_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(ConnectError::Sqlite(e)) => return Err(backend_err(path, e)),
                Err(ConnectError::NotWal(mode)) => {
                    return Err(StoreError::Backend {
                        path: path.display().to_string(),
                        detail: format!("cannot switch to WAL journal mode (got `{mode}`)"),
                    })
                }
                Ok(conn) => return Ok(conn),
            }
        }
    }

    fn try_connect(
        path: &Path,
        durability: Durability,
        migrate_schema: bool,
    ) -> Result<Connection, ConnectError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(ConnectError::NotWal(mode));
        }
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        if migrate_schema {
            migrate(&mut conn)?;
        }
        Ok(conn)
    }

    /// How many commits the writer has made since the store was opened (several writes that
    /// arrive together share one: group commit).
    pub fn commits(&self) -> u64 {
        self.writer.commits()
    }

    /// Stops renewing this handle's leases: they lapse after their length, as if the controller
    /// had died (its writes stay fenced by their token).
    pub fn stop_heartbeat(&self) {
        self.session.stop_heartbeat();
    }

    /// This handle's identity in leases.
    pub fn holder(&self) -> &str {
        &self.session.holder
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the file (`PRAGMA user_version`): the number of migrations applied.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// The run's timeline: every step record ever written, in write order (including steps a
    /// re-plan dropped).
    pub fn transitions(&self, run: &RunId) -> Result<Vec<Transition>, StoreError> {
        let conn = self.conn();
        self.require_run(&conn, run)?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, step_id, state, at_ms, message FROM transitions
                 WHERE run = ?1 ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([&run.0], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, step, state, at_ms, message) = row.map_err(|e| self.err(e))?;
            out.push(Transition {
                seq: seq as u64,
                state: self.parse_state(&state)?,
                step,
                at_ms: at_ms as u64,
                message,
            });
        }
        Ok(out)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written transaction behind (it rolls
        // back on drop), so a poisoned mutex is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        backend_err(&self.path, e)
    }

    fn corrupt(&self, what: String) -> StoreError {
        StoreError::Backend {
            path: self.path.display().to_string(),
            detail: what,
        }
    }

    fn parse_state(&self, s: &str) -> Result<StepState, StoreError> {
        parse_state(s).ok_or_else(|| self.corrupt(format!("unknown step state `{s}`")))
    }

    fn encode_json<T: serde::Serialize>(&self, v: &T) -> Result<String, StoreError> {
        serde_json::to_string(v).map_err(|e| self.corrupt(format!("cannot encode JSON: {e}")))
    }

    fn decode_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        run: &RunId,
        s: &str,
    ) -> Result<T, StoreError> {
        serde_json::from_str(s)
            .map_err(|e| self.corrupt(format!("run `{run}` has an unreadable {what}: {e}")))
    }

    fn require_run(&self, conn: &Connection, run: &RunId) -> Result<(), StoreError> {
        let found = conn
            .prepare_cached("SELECT 1 FROM runs WHERE id = ?1")
            .and_then(|mut s| s.query_row([&run.0], |_| Ok(())).optional())
            .map_err(|e| self.err(e))?;
        found.ok_or_else(|| StoreError::NoSuchRun(run.clone()))
    }

    fn load_steps(&self, conn: &Connection, run: &RunId) -> Result<Vec<StepRecord>, StoreError> {
        load_steps(conn, &self.path, run)
    }
}

enum ConnectError {
    Sqlite(rusqlite::Error),
    NotWal(String),
}

impl From<rusqlite::Error> for ConnectError {
    fn from(e: rusqlite::Error) -> Self {
        ConnectError::Sqlite(e)
    }
}

/// `SQLITE_BUSY` or `SQLITE_LOCKED`: another connection holds the file; worth another try.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn backend_err(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Backend {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

pub(crate) fn parse_state(s: &str) -> Option<StepState> {
    [
        StepState::Pending,
        StepState::Running,
        StepState::Waiting,
        StepState::Done,
        StepState::Skipped,
        StepState::Failed,
    ]
    .into_iter()
    .find(|st| st.as_str() == s)
}

/// Applies the migrations the file has not seen, each in its own immediate transaction that
/// re-reads the version (two controllers may open a new file at once).
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let Some(script) = MIGRATIONS.get(version as usize) else {
            return tx.commit();
        };
        tx.execute_batch(script)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        tracing::info!("state file schema migrated to version {}", version + 1);
    }
}

fn opt_i64(v: Option<u64>) -> Option<i64> {
    v.map(|v| v as i64)
}

fn insert_step(
    tx: &Connection,
    run: &RunId,
    idx: usize,
    rec: &StepRecord,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "INSERT INTO steps (run, idx, step_id, state, attempts, started_ms, finished_ms,
                            exit_code, output, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        run.0,
        idx as i64,
        rec.step,
        rec.state.as_str(),
        rec.attempts as i64,
        opt_i64(rec.started_ms),
        opt_i64(rec.finished_ms),
        rec.exit_code,
        rec.output,
        rec.message,
    ])
}

/// One commit for a batch of writes: each in its own savepoint, answered after the commit.
fn apply_batch(conn: &mut Connection, path: &Path, jobs: Vec<Job>) {
    let err = |e: rusqlite::Error| backend_err(path, e);
    let mut results = Vec::with_capacity(jobs.len());
    let committed = (|| {
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        for job in &jobs {
            let sp = tx.savepoint().map_err(err)?;
            let r = apply_one(&sp, path, &job.op);
            if r.is_ok() {
                sp.commit().map_err(err)?;
            } else {
                drop(sp); // rolls back this write only
            }
            results.push(r);
        }
        tx.commit().map_err(err)
    })();
    match committed {
        Ok(()) => {
            for (job, r) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(r);
            }
        }
        Err(e) => {
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::Backend {
                    path: path.display().to_string(),
                    detail: format!("commit failed: {e}"),
                }));
            }
        }
    }
}

fn require_run(conn: &Connection, run: &RunId) -> Result<(), rusqlite::Error> {
    conn.prepare_cached("SELECT 1 FROM runs WHERE id = ?1")?
        .query_row([&run.0], |_| Ok(()))
}

/// The write is this controller's to make: it still holds the run's lease with `token`.
fn check_token(
    conn: &Connection,
    path: &Path,
    run: &RunId,
    token: Option<u64>,
) -> Result<(), StoreError> {
    let Some(mine) = token else { return Ok(()) };
    let row: Option<(String, i64)> = conn
        .prepare_cached("SELECT holder, token FROM run_leases WHERE run = ?1")
        .and_then(|mut s| {
            s.query_row([&run.0], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(|e| backend_err(path, e))?;
    match row {
        Some((_, t)) if t as u64 == mine => Ok(()),
        Some((holder, t)) => Err(fenced(run, Some((holder, t as u64)), mine)),
        None => Err(fenced(run, None, mine)),
    }
}

fn next_seq(conn: &Connection, table: &str, run: &RunId) -> rusqlite::Result<i64> {
    conn.prepare_cached(&format!(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM {table} WHERE run = ?1"
    ))?
    .query_row([&run.0], |r| r.get(0))
}

fn apply_one(conn: &Connection, path: &Path, op: &Op) -> Result<Out, StoreError> {
    let err = |e: rusqlite::Error| backend_err(path, e);
    let no_run = |run: &RunId, e: rusqlite::Error| match e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NoSuchRun(run.clone()),
        e => backend_err(path, e),
    };
    let now = now_ms();
    match op {
        Op::CreateRun { .. } => create_run(conn, path, now, op),
        Op::PutStep { .. } => put_step(conn, path, now, op),
        Op::PutFact { run, token, fact } => {
            check_token(conn, path, run, *token)?;
            require_run(conn, run).map_err(|e| no_run(run, e))?;
            let seq = next_seq(conn, "facts", run).map_err(err)?;
            conn.prepare_cached(
                "INSERT INTO facts (run, seq, host, key, value, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    run.0,
                    seq,
                    fact.host.as_str(),
                    fact.key,
                    fact.value,
                    fact.at_ms as i64
                ])
            })
            .map_err(err)?;
            Ok(Out::Done)
        }
        Op::SetStatus { run, token, json } => {
            check_token(conn, path, run, *token)?;
            let changed = conn
                .execute(
                    "UPDATE runs SET status_json = ?2 WHERE id = ?1",
                    params![run.0, json],
                )
                .map_err(err)?;
            if changed == 0 {
                return Err(StoreError::NoSuchRun(run.clone()));
            }
            Ok(Out::Done)
        }
        Op::Approve { run, what, by } => {
            require_run(conn, run).map_err(|e| no_run(run, e))?;
            let seq = next_seq(conn, "approvals", run).map_err(err)?;
            conn.execute(
                "INSERT INTO approvals (run, seq, what, at_ms, by_user) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![run.0, seq, what, now as i64, by],
            )
            .map_err(err)?;
            Ok(Out::Done)
        }
        Op::ReplacePlan { .. } => replace_plan(conn, path, op),
        Op::TakeRun { .. } => take_run(conn, path, now, op),
        Op::TakeHosts { .. } => take_hosts(conn, path, now, op),
        Op::BindHosts { holder, run } => {
            conn.execute(
                "UPDATE host_leases SET run = ?2 WHERE holder = ?1",
                params![holder, run.0],
            )
            .map_err(err)?;
            Ok(Out::Done)
        }
        Op::Renew { .. } => renew(conn, path, now, op),
        Op::LoadRun(_)
        | Op::LatestRun
        | Op::ListRuns
        | Op::RunLeases
        | Op::PutFleetFacts(_)
        | Op::LatestFleetFacts => Err(StoreError::Backend {
            path: path.display().to_string(),
            detail: "reads do not go through the SQLite writer".to_owned(),
        }),
        Op::Release {
            holder,
            runs,
            hosts,
        } => {
            for (run, token) in runs {
                conn.execute(
                    "UPDATE run_leases SET expires_ms = 0 WHERE run = ?1 AND token = ?2",
                    params![run.0, *token as i64],
                )
                .map_err(err)?;
            }
            if *hosts {
                conn.execute("DELETE FROM host_leases WHERE holder = ?1", [holder])
                    .map_err(err)?;
            }
            Ok(Out::Done)
        }
    }
}

/// Inserts a new run under a fresh id, with every step pending.
fn create_run(conn: &Connection, path: &Path, now: u64, op: &Op) -> Result<Out, StoreError> {
    let Op::CreateRun {
        playbook,
        hash,
        plan_json,
        meta_json,
        status_json,
        step_ids,
    } = op
    else {
        unreachable!("`create_run` is only called for `Op::CreateRun`");
    };
    let err = |e: rusqlite::Error| backend_err(path, e);
    // A clash of the 16-bit suffix within one second is rare; draw again if it happens.
    let mut id = new_run_id(now);
    for _ in 0..64 {
        if require_run(conn, &id).optional().map_err(err)?.is_none() {
            break;
        }
        id = new_run_id(now);
    }
    conn.execute(
        "INSERT INTO runs (id, created_ms, playbook, plan_hash, plan_json, meta_json,
                           status_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id.0,
            now as i64,
            playbook,
            hash,
            plan_json,
            meta_json,
            status_json
        ],
    )
    .map_err(err)?;
    for (idx, step) in step_ids.iter().enumerate() {
        insert_step(conn, &id, idx, &StepRecord::pending(step)).map_err(err)?;
    }
    Ok(Out::Run(id))
}

/// Writes one step's record, fenced by the run's lease token.
fn put_step(conn: &Connection, path: &Path, now: u64, op: &Op) -> Result<Out, StoreError> {
    let Op::PutStep { run, token, record } = op else {
        unreachable!("`put_step` is only called for `Op::PutStep`");
    };
    let err = |e: rusqlite::Error| backend_err(path, e);
    let no_run = |run: &RunId, e: rusqlite::Error| match e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NoSuchRun(run.clone()),
        e => backend_err(path, e),
    };
    check_token(conn, path, run, *token)?;
    let changed = conn
        .prepare_cached(
            "UPDATE steps SET state = ?3, attempts = ?4, started_ms = ?5,
                              finished_ms = ?6, exit_code = ?7, output = ?8, message = ?9
             WHERE run = ?1 AND step_id = ?2",
        )
        .and_then(|mut s| {
            s.execute(params![
                run.0,
                record.step,
                record.state.as_str(),
                record.attempts as i64,
                opt_i64(record.started_ms),
                opt_i64(record.finished_ms),
                record.exit_code,
                record.output,
                record.message,
            ])
        })
        .map_err(err)?;
    if changed == 0 {
        require_run(conn, run).map_err(|e| no_run(run, e))?;
        return Err(StoreError::NoSuchStep {
            run: run.clone(),
            step: record.step.clone(),
        });
    }
    let seq = next_seq(conn, "transitions", run).map_err(err)?;
    conn.prepare_cached(
        "INSERT INTO transitions (run, seq, step_id, state, at_ms, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            run.0,
            seq,
            record.step,
            record.state.as_str(),
            now as i64,
            record.message,
        ])
    })
    .map_err(err)?;
    Ok(Out::Done)
}

/// Swaps a run's plan, keeping the records of steps that stay.
fn replace_plan(conn: &Connection, path: &Path, op: &Op) -> Result<Out, StoreError> {
    let Op::ReplacePlan {
        run,
        token,
        playbook,
        hash,
        plan_json,
        step_ids,
    } = op
    else {
        unreachable!("`replace_plan` is only called for `Op::ReplacePlan`");
    };
    let err = |e: rusqlite::Error| backend_err(path, e);
    let no_run = |run: &RunId, e: rusqlite::Error| match e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NoSuchRun(run.clone()),
        e => backend_err(path, e),
    };
    check_token(conn, path, run, *token)?;
    require_run(conn, run).map_err(|e| no_run(run, e))?;
    let old = load_steps(conn, path, run)?;
    conn.execute("DELETE FROM steps WHERE run = ?1", [&run.0])
        .map_err(err)?;
    for (idx, id) in step_ids.iter().enumerate() {
        let rec = old
            .iter()
            .find(|r| &r.step == id)
            .cloned()
            .unwrap_or_else(|| StepRecord::pending(id));
        insert_step(conn, run, idx, &rec).map_err(err)?;
    }
    conn.execute(
        "UPDATE runs SET playbook = ?2, plan_hash = ?3, plan_json = ?4 WHERE id = ?1",
        params![run.0, playbook, hash, plan_json],
    )
    .map_err(err)?;
    Ok(Out::Done)
}

/// Takes (or steals) a run's lease and returns the new fencing token.
fn take_run(conn: &Connection, path: &Path, now: u64, op: &Op) -> Result<Out, StoreError> {
    let Op::TakeRun {
        run,
        holder,
        ttl_ms,
        steal,
    } = op
    else {
        unreachable!("`take_run` is only called for `Op::TakeRun`");
    };
    let err = |e: rusqlite::Error| backend_err(path, e);
    let no_run = |run: &RunId, e: rusqlite::Error| match e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NoSuchRun(run.clone()),
        e => backend_err(path, e),
    };
    require_run(conn, run).map_err(|e| no_run(run, e))?;
    let row: Option<(String, i64, i64)> = conn
        .query_row(
            "SELECT holder, token, expires_ms FROM run_leases WHERE run = ?1",
            [&run.0],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(err)?;
    let expires = (now + ttl_ms) as i64;
    let token = match row {
        None => {
            conn.execute(
                "INSERT INTO run_leases (run, holder, token, expires_ms)
                 VALUES (?1, ?2, 1, ?3)",
                params![run.0, holder, expires],
            )
            .map_err(err)?;
            1
        }
        Some((h, t, exp)) if *steal || &h == holder || (exp as u64) <= now => {
            conn.execute(
                "UPDATE run_leases SET holder = ?2, token = ?3, expires_ms = ?4
                 WHERE run = ?1",
                params![run.0, holder, t + 1, expires],
            )
            .map_err(err)?;
            t + 1
        }
        Some((h, _, _)) => {
            return Err(StoreError::Locked {
                run: run.clone(),
                holder: h,
            })
        }
    };
    Ok(Out::Token(token as u64))
}

/// Takes the host leases in one order, collecting every host held by another.
fn take_hosts(conn: &Connection, path: &Path, now: u64, op: &Op) -> Result<Out, StoreError> {
    let Op::TakeHosts {
        holder,
        ttl_ms,
        hosts,
        run,
        run_dead,
    } = op
    else {
        unreachable!("`take_hosts` is only called for `Op::TakeHosts`");
    };
    let err = |e: rusqlite::Error| backend_err(path, e);
    let expires = (now + ttl_ms) as i64;
    let mut conflicts = Vec::new();
    for host in hosts {
        let key = host.as_str().to_ascii_lowercase();
        let row: Option<(String, Option<String>, i64)> = conn
            .prepare_cached("SELECT holder, run, expires_ms FROM host_leases WHERE host = ?1")
            .and_then(|mut s| {
                s.query_row([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(err)?;
        let take = match &row {
            None => true,
            Some((h, r, exp)) => {
                // Lapsed, or its controller (of this machine) is gone.
                let expired = (*exp as u64) <= now || crate::lease::holder_gone(h);
                let same_run = r.is_some() && r.as_deref() == run.as_ref().map(|x| x.0.as_str());
                h == holder || (same_run && (expired || *run_dead)) || (r.is_none() && expired)
            }
        };
        if take {
            conn.prepare_cached(
                "INSERT INTO host_leases (host, name, holder, run, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (host) DO UPDATE SET name = ?2, holder = ?3,
                     run = COALESCE(?4, run), expires_ms = ?5",
            )
            .and_then(|mut s| {
                s.execute(params![
                    key,
                    host.as_str(),
                    holder,
                    run.as_ref().map(|r| r.0.as_str()),
                    expires
                ])
            })
            .map_err(err)?;
        } else if let Some((h, r, exp)) = row {
            conflicts.push(HostLease {
                host: host.as_str().to_owned(),
                holder: h,
                run: r.map(RunId),
                expired: (exp as u64) <= now,
            });
        }
    }
    if conflicts.is_empty() {
        Ok(Out::Done)
    } else {
        crate::batch::host_conflicts(conflicts)
    }
}

/// Extends the holder's run and host leases; reports the runs whose lease another took.
fn renew(conn: &Connection, path: &Path, now: u64, op: &Op) -> Result<Out, StoreError> {
    let Op::Renew {
        holder,
        ttl_ms,
        runs,
    } = op
    else {
        unreachable!("`renew` is only called for `Op::Renew`");
    };
    let err = |e: rusqlite::Error| backend_err(path, e);
    let expires = (now + ttl_ms) as i64;
    let mut lost = Vec::new();
    for (run, token) in runs {
        let n = conn
            .execute(
                "UPDATE run_leases SET expires_ms = ?3 WHERE run = ?1 AND token = ?2",
                params![run.0, *token as i64, expires],
            )
            .map_err(err)?;
        if n == 0 {
            let by: Option<String> = conn
                .query_row(
                    "SELECT holder FROM run_leases WHERE run = ?1",
                    [&run.0],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            lost.push((
                run.clone(),
                by.unwrap_or_else(|| "nobody (released)".to_owned()),
            ));
        }
    }
    conn.execute(
        "UPDATE host_leases SET expires_ms = ?2 WHERE holder = ?1",
        params![holder, expires],
    )
    .map_err(err)?;
    Ok(Out::Lost(lost))
}

fn load_steps(conn: &Connection, path: &Path, run: &RunId) -> Result<Vec<StepRecord>, StoreError> {
    let err = |e: rusqlite::Error| backend_err(path, e);
    let mut stmt = conn
        .prepare_cached(
            "SELECT step_id, state, attempts, started_ms, finished_ms, exit_code, output,
                    message
             FROM steps WHERE run = ?1 ORDER BY idx",
        )
        .map_err(err)?;
    let rows = stmt
        .query_map([&run.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i32>>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
            ))
        })
        .map_err(err)?;
    let mut out = Vec::new();
    for row in rows {
        let (step, state, attempts, started, finished, exit_code, output, message) =
            row.map_err(err)?;
        out.push(StepRecord {
            step,
            state: parse_state(&state).ok_or_else(|| StoreError::Backend {
                path: path.display().to_string(),
                detail: format!("unknown step state `{state}`"),
            })?,
            attempts: attempts as u32,
            started_ms: started.map(|v| v as u64),
            finished_ms: finished.map(|v| v as u64),
            exit_code,
            output,
            message,
        });
    }
    Ok(out)
}

impl SqliteStore {
    fn write(&self, op: Op) -> Result<(), StoreError> {
        unit(self.writer.call(op))
    }

    fn write_async(&self, op: Op) -> StoreFuture {
        let rx = self.writer.submit(op);
        let gone = self.writer.gone();
        Box::pin(async move { unit(rx.await.unwrap_or(Err(gone))) })
    }

    /// A run lease was refused or lost: the fence closes for good if it was this run's.
    fn note(&self, r: Result<(), StoreError>) -> Result<(), StoreError> {
        if let Err(StoreError::Fenced { run, detail }) = &r {
            self.session.fence.lose(format!("run `{run}`: {detail}"));
        }
        r
    }

    /// Whether the OS lock of `run` is free: its last driver is dead (probed for an instant).
    fn run_is_dead(&self, run: &RunId) -> bool {
        RunGuard::acquire(&self.path, run).is_ok()
    }
}

impl StateStore for SqliteStore {
    fn create_run(&self, plan: &Plan, meta: &RunMeta) -> Result<RunId, StoreError> {
        let op = Op::CreateRun {
            playbook: plan.playbook.as_str().to_owned(),
            hash: plan.hash.0.clone(),
            plan_json: self.encode_json(plan)?,
            meta_json: self.encode_json(meta)?,
            status_json: self.encode_json(&RunStatus::Running)?,
            step_ids: plan.steps.iter().map(|s| s.id.clone()).collect(),
        };
        match self.writer.call(op)? {
            Out::Run(id) => {
                tracing::debug!(steps = plan.steps.len(), "run `{id}` created");
                Ok(id)
            }
            other => Err(self.corrupt(format!("unexpected answer to create_run: {other:?}"))),
        }
    }

    fn load_run(&self, run: &RunId) -> Result<RunRecord, StoreError> {
        let mut conn = self.conn();
        // One read transaction: a consistent snapshot even while another process writes.
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let row = tx
            .query_row(
                "SELECT plan_json, meta_json, status_json, created_ms FROM runs WHERE id = ?1",
                [&run.0],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((plan_json, meta_json, status_json, created_ms)) = row else {
            return Err(StoreError::NoSuchRun(run.clone()));
        };
        let plan: Plan = self.decode_json("plan", run, &plan_json)?;
        let meta: RunMeta = self.decode_json("start parameters", run, &meta_json)?;
        let status: RunStatus = self.decode_json("status", run, &status_json)?;
        let steps = self.load_steps(&tx, run)?;

        let mut facts = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT host, key, value, at_ms FROM facts WHERE run = ?1 ORDER BY seq",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([&run.0], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .map_err(|e| self.err(e))?;
            for row in rows {
                let (host, key, value, at_ms) = row.map_err(|e| self.err(e))?;
                let host = Name::host(&host).map_err(|e| {
                    self.corrupt(format!("run `{run}` has a fact with a bad host: {e}"))
                })?;
                facts.push(Fact {
                    host,
                    key,
                    value,
                    at_ms: at_ms as u64,
                });
            }
        }

        let mut approvals = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT what, by_user, at_ms FROM approvals WHERE run = ?1 ORDER BY seq",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([&run.0], |r| {
                    Ok(Approval {
                        what: r.get(0)?,
                        by: r.get(1)?,
                        at_ms: r.get::<_, i64>(2)? as u64,
                    })
                })
                .map_err(|e| self.err(e))?;
            for row in rows {
                approvals.push(row.map_err(|e| self.err(e))?);
            }
        }
        tx.commit().map_err(|e| self.err(e))?;

        Ok(RunRecord {
            id: run.clone(),
            plan,
            meta,
            status,
            steps,
            facts,
            approvals,
            created_ms: created_ms as u64,
        })
    }

    fn latest_run(&self) -> Result<Option<RunId>, StoreError> {
        self.conn()
            .query_row(
                "SELECT id FROM runs ORDER BY created_ms DESC, rowid DESC LIMIT 1",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map(|id| id.map(RunId))
            .map_err(|e| self.err(e))
    }

    fn list_runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT r.id, r.playbook, r.status_json, r.created_ms,
                        (SELECT COUNT(*) FROM steps s
                          WHERE s.run = r.id AND s.state IN ('done', 'skipped')),
                        (SELECT COUNT(*) FROM steps s WHERE s.run = r.id)
                 FROM runs r ORDER BY r.created_ms DESC, r.rowid DESC",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, playbook, status, created_ms, complete, total) =
                row.map_err(|e| self.err(e))?;
            let id = RunId(id);
            out.push(RunSummary {
                status: self.decode_json("status", &id, &status)?,
                id,
                playbook,
                complete: complete as usize,
                total: total as usize,
                created_ms: created_ms as u64,
            });
        }
        Ok(out)
    }

    fn run_driven(&self, run: &RunId) -> Result<Option<bool>, StoreError> {
        Ok(Some(RunGuard::is_held(&self.path, run)?.unwrap_or(false)))
    }

    fn lock_run(&self, run: &RunId) -> Result<Box<dyn RunLock>, StoreError> {
        self.require_run(&self.conn(), run)?;
        let guard = RunGuard::acquire(&self.path, run)?;
        let sent = Instant::now();
        // Holding the OS lock proves any earlier holder dead: its lease is taken at once.
        let token = match self.writer.call(Op::TakeRun {
            run: run.clone(),
            holder: self.session.holder.clone(),
            ttl_ms: self.session.ttl_ms(),
            steal: true,
        })? {
            Out::Token(t) => t,
            other => return Err(self.corrupt(format!("unexpected answer: {other:?}"))),
        };
        self.session.hold(run, token);
        self.session.taken(sent, self.writer.handle());
        Ok(Box::new(self.session.run_lock(
            run,
            token,
            self.writer.handle(),
            Some(guard),
        )))
    }

    fn put_step(&self, run: &RunId, record: &StepRecord) -> Result<(), StoreError> {
        let r = self.write(Op::PutStep {
            run: run.clone(),
            token: self.session.token(run),
            record: record.clone(),
        });
        self.note(r)
    }

    fn put_step_async(&self, run: &RunId, record: &StepRecord) -> StoreFuture {
        self.write_async(Op::PutStep {
            run: run.clone(),
            token: self.session.token(run),
            record: record.clone(),
        })
    }

    fn put_fact(&self, run: &RunId, fact: &Fact) -> Result<(), StoreError> {
        let r = self.write(Op::PutFact {
            run: run.clone(),
            token: self.session.token(run),
            fact: fact.clone(),
        });
        self.note(r)
    }

    fn put_fact_async(&self, run: &RunId, fact: &Fact) -> StoreFuture {
        self.write_async(Op::PutFact {
            run: run.clone(),
            token: self.session.token(run),
            fact: fact.clone(),
        })
    }

    fn set_status(&self, run: &RunId, status: &RunStatus) -> Result<(), StoreError> {
        let r = self.write(Op::SetStatus {
            run: run.clone(),
            token: self.session.token(run),
            json: self.encode_json(status)?,
        });
        self.note(r)
    }

    fn approve(&self, run: &RunId, what: &str) -> Result<(), StoreError> {
        self.write(Op::Approve {
            run: run.clone(),
            what: what.to_owned(),
            by: crate::lock::os_user(),
        })
    }

    fn put_fleet_facts(&self, facts: &[Fact]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO fleet_facts (host, key, value, at_ms) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| self.err(e))?;
            for f in facts {
                stmt.execute(params![f.host.as_str(), f.key, f.value, f.at_ms as i64])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn latest_fleet_facts(&self) -> Result<Vec<Fact>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT host, key, value, at_ms FROM fleet_facts f
                 WHERE at_ms = (SELECT MAX(at_ms) FROM fleet_facts g WHERE g.host = f.host)
                 ORDER BY host, seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (host, key, value, at_ms) = row.map_err(|e| self.err(e))?;
            let host = Name::host(&host)
                .map_err(|e| self.corrupt(format!("a fleet fact has a bad host: {e}")))?;
            out.push(Fact {
                host,
                key,
                value,
                at_ms: at_ms as u64,
            });
        }
        Ok(out)
    }

    fn replace_plan(&self, run: &RunId, plan: &Plan) -> Result<(), StoreError> {
        let r = self.write(Op::ReplacePlan {
            run: run.clone(),
            token: self.session.token(run),
            playbook: plan.playbook.as_str().to_owned(),
            hash: plan.hash.0.clone(),
            plan_json: self.encode_json(plan)?,
            step_ids: plan.steps.iter().map(|s| s.id.clone()).collect(),
        });
        self.note(r)?;
        tracing::info!(plan = %plan.hash.short(), "run `{run}` re-planned");
        Ok(())
    }

    fn fence(&self) -> Option<Arc<Fence>> {
        Some(Arc::clone(&self.session.fence))
    }

    fn take_hosts(&self, hosts: &[Name], run: Option<&RunId>) -> Result<(), StoreError> {
        let run_dead = run.is_some_and(|r| self.run_is_dead(r));
        let sent = Instant::now();
        self.write(Op::TakeHosts {
            holder: self.session.holder.clone(),
            ttl_ms: self.session.ttl_ms(),
            hosts: hosts.to_vec(),
            run: run.cloned(),
            run_dead,
        })?;
        self.session.taken(sent, self.writer.handle());
        Ok(())
    }

    fn bind_hosts(&self, run: &RunId) -> Result<(), StoreError> {
        self.write(Op::BindHosts {
            holder: self.session.holder.clone(),
            run: run.clone(),
        })
    }

    fn release_leases(&self) -> Result<(), StoreError> {
        self.session.stop_heartbeat();
        self.write(Op::Release {
            holder: self.session.holder.clone(),
            runs: self.session.held(),
            hosts: true,
        })
    }

    fn run_leases(&self) -> Result<Vec<RunLease>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT run, holder, token, expires_ms FROM run_leases ORDER BY run")
            .map_err(|e| self.err(e))?;
        let now = now_ms();
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (run, holder, token, expires) = row.map_err(|e| self.err(e))?;
            out.push(RunLease {
                run: RunId(run),
                holder,
                token: token as u64,
                expires_ms: expires as u64,
                expired: (expires as u64) <= now,
            });
        }
        Ok(out)
    }
}
