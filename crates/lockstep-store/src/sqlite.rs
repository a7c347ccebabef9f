//! [`SqliteStore`]: the embedded state store.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use lockstep_core::{
    now_ms, Fact, Name, Plan, RunId, RunLock, RunMeta, RunRecord, RunStatus, RunSummary,
    StateStore, StepRecord, StepState, StoreError,
};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

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
/// with `FULL` (1.01 x the critical path), 20.5 s with `NORMAL`. `NORMAL` (the CLI's
/// `--durability normal`) still survives a crash of the controller process.
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

/// The SQLite state store (one file, WAL mode). Cheap to share: the connection sits behind a
/// mutex, and other processes may open the same file at the same time.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the state file with the default [`Durability`] (`NORMAL`) and
    /// brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::default())
    }

    /// Opens (creating if needed) the state file with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let err = |e: rusqlite::Error| backend_err(path, e);
        let mut conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend {
                path: path.display().to_string(),
                detail: format!("cannot switch to WAL journal mode (got `{mode}`)"),
            });
        }
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync).map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        migrate(&mut conn).map_err(err)?;
        Ok(SqliteStore {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
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

    /// Appends a row to one of the per-run append-only tables, numbering it after the last.
    /// The statement is cached (keyed by its text): every checkpoint calls this, and parsing
    /// it anew each time was a visible share of a 1,000-host rollout's controller CPU.
    fn next_seq(&self, conn: &Connection, table: &str, run: &RunId) -> Result<i64, StoreError> {
        conn.prepare_cached(&format!(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM {table} WHERE run = ?1"
        ))
        .and_then(|mut s| s.query_row([&run.0], |r| r.get(0)))
        .map_err(|e| self.err(e))
    }

    fn load_steps(&self, conn: &Connection, run: &RunId) -> Result<Vec<StepRecord>, StoreError> {
        let mut stmt = conn
            .prepare_cached(
                "SELECT step_id, state, attempts, started_ms, finished_ms, exit_code, output,
                        message
                 FROM steps WHERE run = ?1 ORDER BY idx",
            )
            .map_err(|e| self.err(e))?;
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
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (step, state, attempts, started, finished, exit_code, output, message) =
                row.map_err(|e| self.err(e))?;
            out.push(StepRecord {
                step,
                state: self.parse_state(&state)?,
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
}

fn backend_err(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Backend {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

fn parse_state(s: &str) -> Option<StepState> {
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

impl StateStore for SqliteStore {
    fn create_run(&self, plan: &Plan, meta: &RunMeta) -> Result<RunId, StoreError> {
        let plan_json = self.encode_json(plan)?;
        let meta_json = self.encode_json(meta)?;
        let status_json = self.encode_json(&RunStatus::Running)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let created_ms = now_ms();
        // A clash of the 16-bit suffix within one second is rare; draw again if it happens.
        let mut id = new_run_id(created_ms);
        for _ in 0..64 {
            let taken = tx
                .query_row("SELECT 1 FROM runs WHERE id = ?1", [&id.0], |_| Ok(()))
                .optional()
                .map_err(|e| self.err(e))?
                .is_some();
            if !taken {
                break;
            }
            id = new_run_id(created_ms);
        }
        tx.execute(
            "INSERT INTO runs (id, created_ms, playbook, plan_hash, plan_json, meta_json,
                               status_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id.0,
                created_ms as i64,
                plan.playbook.as_str(),
                plan.hash.0,
                plan_json,
                meta_json,
                status_json
            ],
        )
        .map_err(|e| self.err(e))?;
        for (idx, step) in plan.steps.iter().enumerate() {
            insert_step(&tx, &id, idx, &StepRecord::pending(&step.id)).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        tracing::debug!(steps = plan.steps.len(), "run `{id}` created");
        Ok(id)
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
                .prepare_cached("SELECT what FROM approvals WHERE run = ?1 ORDER BY seq")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([&run.0], |r| r.get::<_, String>(0))
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

    fn lock_run(&self, run: &RunId) -> Result<Box<dyn RunLock>, StoreError> {
        self.require_run(&self.conn(), run)?;
        Ok(Box::new(RunGuard::acquire(&self.path, run)?))
    }

    fn put_step(&self, run: &RunId, record: &StepRecord) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let changed = tx
            .prepare_cached(
                "UPDATE steps SET state = ?3, attempts = ?4, started_ms = ?5, finished_ms = ?6,
                                  exit_code = ?7, output = ?8, message = ?9
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
            .map_err(|e| self.err(e))?;
        if changed == 0 {
            self.require_run(&tx, run)?;
            return Err(StoreError::NoSuchStep {
                run: run.clone(),
                step: record.step.clone(),
            });
        }
        let seq = self.next_seq(&tx, "transitions", run)?;
        tx.prepare_cached(
            "INSERT INTO transitions (run, seq, step_id, state, at_ms, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut s| {
            s.execute(params![
                run.0,
                seq,
                record.step,
                record.state.as_str(),
                now_ms() as i64,
                record.message,
            ])
        })
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn put_fact(&self, run: &RunId, fact: &Fact) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        self.require_run(&tx, run)?;
        let seq = self.next_seq(&tx, "facts", run)?;
        tx.prepare_cached(
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
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn set_status(&self, run: &RunId, status: &RunStatus) -> Result<(), StoreError> {
        let json = self.encode_json(status)?;
        let changed = self
            .conn()
            .execute(
                "UPDATE runs SET status_json = ?2 WHERE id = ?1",
                params![run.0, json],
            )
            .map_err(|e| self.err(e))?;
        if changed == 0 {
            return Err(StoreError::NoSuchRun(run.clone()));
        }
        Ok(())
    }

    fn approve(&self, run: &RunId, what: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        self.require_run(&tx, run)?;
        let seq = self.next_seq(&tx, "approvals", run)?;
        tx.execute(
            "INSERT INTO approvals (run, seq, what, at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![run.0, seq, what, now_ms() as i64],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
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
        let plan_json = self.encode_json(plan)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        self.require_run(&tx, run)?;
        let old = self.load_steps(&tx, run)?;
        tx.execute("DELETE FROM steps WHERE run = ?1", [&run.0])
            .map_err(|e| self.err(e))?;
        for (idx, step) in plan.steps.iter().enumerate() {
            let rec = old
                .iter()
                .find(|r| r.step == step.id)
                .cloned()
                .unwrap_or_else(|| StepRecord::pending(&step.id));
            insert_step(&tx, run, idx, &rec).map_err(|e| self.err(e))?;
        }
        tx.execute(
            "UPDATE runs SET playbook = ?2, plan_hash = ?3, plan_json = ?4 WHERE id = ?1",
            params![run.0, plan.playbook.as_str(), plan.hash.0, plan_json],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        tracing::info!(plan = %plan.hash.short(), "run `{run}` re-planned");
        Ok(())
    }
}
