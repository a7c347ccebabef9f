//! [`PgStore`]: the shared state store on PostgreSQL, for teams with several controllers.
//!
//! One connection per store handle lives on the writer thread ([`crate::batch`]): writes that
//! arrive together share one transaction (group commit), reads go the same way. Lease expiry
//! uses the server's clock, so controllers on different machines agree on it. TLS with rustls
//! (`sslmode=require` in the URL; roots from the system store and `PGSSLROOTCERT`); the
//! password in the URL is never logged nor shown (see [`redact_url`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lockstep_core::{
    Fact, Fence, HostLease, Name, Plan, RunId, RunLease, RunLock, RunMeta, RunRecord, RunStatus,
    RunSummary, StateStore, StepRecord, StoreError, StoreFuture,
};
use std::cell::RefCell;
use std::collections::HashMap;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement, Transaction};

use crate::batch::{unit, Job, Op, Out, Writer};
use crate::lease::{fenced, Session};
use crate::pg_migrations::PG_MIGRATIONS;
use crate::run_id::new_run_id;
use crate::sqlite::parse_state;

/// Whether a `--state` value names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// The URL without its password (`postgres://user:***@host/db`), for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    // A password may also come as a query parameter.
    let tail = tail
        .split('&')
        .map(|kv| {
            let (k, _) = kv.split_once('=').unwrap_or((kv, ""));
            if k.trim_start_matches('?').eq_ignore_ascii_case("password") {
                format!("{k}=***")
            } else {
                kv.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{scheme}://{authority}{tail}")
}

/// The PostgreSQL state store.
pub struct PgStore {
    url: String,
    session: Session,
    writer: Writer,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

struct Conn {
    rt: tokio::runtime::Runtime,
    client: Client,
    stmts: Stmts,
}

fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Ok(file) = std::env::var("PGSSLROOTCERT") {
        let pem =
            std::fs::read(&file).map_err(|e| format!("cannot read PGSSLROOTCERT `{file}`: {e}"))?;
        let mut added = 0;
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
            let cert: rustls::pki_types::CertificateDer<'static> =
                cert.map_err(|e| format!("PGSSLROOTCERT `{file}`: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("PGSSLROOTCERT `{file}`: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("PGSSLROOTCERT `{file}` holds no certificate"));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    loop {
        let tx = client.transaction().await?;
        // Several controllers may start on a new database at once: one migrates (creating the
        // version table too), the others wait for it.
        tx.execute("SELECT pg_advisory_xact_lock(7263541)", &[])
            .await?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS lockstep_schema (version INTEGER NOT NULL)")
            .await?;
        let version: i32 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM lockstep_schema", &[])
            .await?
            .get(0);
        let Some(script) = PG_MIGRATIONS.get(version as usize) else {
            return tx.commit().await;
        };
        tx.batch_execute(script).await?;
        tx.execute(
            "INSERT INTO lockstep_schema (version) VALUES ($1)",
            &[&(version + 1)],
        )
        .await?;
        tx.commit().await?;
        tracing::info!("PostgreSQL schema migrated to version {}", version + 1);
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/db?sslmode=require`), brings the
    /// schema up to date, and keeps leases of `lease_ttl`.
    pub fn connect(url: &str, lease_ttl: Duration) -> Result<Self, StoreError> {
        let shown = redact_url(url);
        let backend = |detail: String| StoreError::Backend {
            path: shown.clone(),
            detail,
        };
        let owned = url.to_owned();
        // Connected on a thread of its own: the caller may be inside a tokio runtime.
        let conn = std::thread::spawn(move || -> Result<Conn, String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let client = rt.block_on(async {
                let config: tokio_postgres::Config = owned
                    .parse()
                    .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
                let (mut client, connection) = config
                    .connect(tls()?)
                    .await
                    .map_err(|e| format!("cannot connect: {}", pg_message(&e)))?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::warn!("PostgreSQL connection ended: {e}");
                    }
                });
                // A controller paused inside a transaction (SIGSTOP, a VM freeze) must not keep
                // its row locks: the server ends such a session after half a lease (its fence
                // has closed by then anyway), and nobody waits on a lock for long.
                client
                    .batch_execute(&format!(
                        "SET idle_in_transaction_session_timeout = {}; SET lock_timeout = '10s'",
                        (lease_ttl.as_millis() / 2).max(500)
                    ))
                    .await
                    .map_err(|e| format!("cannot set session limits: {}", pg_message(&e)))?;
                migrate(&mut client)
                    .await
                    .map_err(|e| format!("cannot migrate the schema: {}", pg_message(&e)))?;
                let stmts = Stmts::prepare(&client)
                    .await
                    .map_err(|e| format!("cannot prepare statements: {}", pg_message(&e)))?;
                Ok::<_, String>((client, stmts))
            })?;
            let (client, stmts) = client;
            Ok(Conn { rt, client, stmts })
        })
        .join()
        .map_err(|_| backend("the connecting thread panicked".to_owned()))?
        .map_err(backend)?;
        let mut conn = conn;
        let path = shown.clone();
        let writer = Writer::start(shown.clone(), move |jobs| {
            let Conn { rt, client, stmts } = &mut conn;
            rt.block_on(apply_batch(client, stmts, &path, jobs));
        })?;
        Ok(PgStore {
            url: shown,
            session: Session::new(lease_ttl),
            writer,
        })
    }

    /// The URL, without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many commits the writer has made (see [`crate::SqliteStore::commits`]).
    pub fn commits(&self) -> u64 {
        self.writer.commits()
    }

    /// Stops renewing this handle's leases: they lapse after their length, as if the controller
    /// had died or hung (its writes stay fenced by their token).
    pub fn stop_heartbeat(&self) {
        self.session.stop_heartbeat();
    }

    /// This handle's identity in leases.
    pub fn holder(&self) -> &str {
        &self.session.holder
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Backend {
            path: self.url.clone(),
            detail,
        }
    }

    fn json<T: serde::Serialize>(&self, v: &T) -> Result<String, StoreError> {
        serde_json::to_string(v).map_err(|e| self.corrupt(format!("cannot encode JSON: {e}")))
    }

    fn write(&self, op: Op) -> Result<(), StoreError> {
        unit(self.writer.call(op))
    }

    fn write_async(&self, op: Op) -> StoreFuture {
        let rx = self.writer.submit(op);
        let gone = self.writer.gone();
        Box::pin(async move { unit(rx.await.unwrap_or(Err(gone))) })
    }

    fn note(&self, r: Result<(), StoreError>) -> Result<(), StoreError> {
        if let Err(StoreError::Fenced { run, detail }) = &r {
            self.session.fence.lose(format!("run `{run}`: {detail}"));
        }
        r
    }
}

fn db_err(path: &str, e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend {
        path: path.to_owned(),
        detail: pg_message(&e),
    }
}

/// The server's own message when there is one (`db error` alone says nothing).
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// The fencing check every fenced write starts with, in the same statement as the write: the
/// lease row is read `FOR SHARE`, so a takeover (`FOR UPDATE` on that row) waits for this
/// transaction to commit: no write lands after the lease moved, none is refused before it did.
/// `$1` is the run, `$2` the writer's token (NULL: an unfenced handle).
macro_rules! fenced_sql {
    ($($body:literal),+ $(,)?) => {
        concat!(
            "WITH lease AS (
                SELECT holder, token FROM run_leases WHERE run = $1::TEXT FOR SHARE
            ), allowed AS (
                SELECT $2::BIGINT IS NULL
                       OR EXISTS (SELECT 1 FROM lease WHERE token = $2::BIGINT) AS ok
            ), ",
            $($body),+
        )
    };
}

/// `put_step` in one statement: the fence, the step's new record and its line in the timeline.
const PUT_STEP: &str = fenced_sql!(
    "changed AS (
        UPDATE steps SET state = $4::TEXT, attempts = $5::BIGINT, started_ms = $6::BIGINT,
                         finished_ms = $7::BIGINT, exit_code = $8::INTEGER, output = $9::TEXT,
                         message = $10::TEXT
        WHERE run = $1 AND step_id = $3::TEXT AND (SELECT ok FROM allowed)
        RETURNING step_id
    ), logged AS (
        INSERT INTO transitions (run, seq, step_id, state, at_ms, message)
        SELECT $1, COALESCE((SELECT MAX(seq) FROM transitions WHERE run = $1), 0) + 1,
               $3, $4, $11::BIGINT, $10
        FROM changed
    )
    SELECT (SELECT ok FROM allowed), (SELECT holder FROM lease), (SELECT token FROM lease),
           EXISTS (SELECT 1 FROM changed), EXISTS (SELECT 1 FROM runs WHERE id = $1)"
);

/// `put_fact` in one statement.
const PUT_FACT: &str = fenced_sql!(
    "added AS (
        INSERT INTO facts (run, seq, host, key, value, at_ms)
        SELECT $1, COALESCE((SELECT MAX(seq) FROM facts WHERE run = $1), 0) + 1,
               $3::TEXT, $4::TEXT, $5::TEXT, $6::BIGINT
        WHERE (SELECT ok FROM allowed) AND EXISTS (SELECT 1 FROM runs WHERE id = $1)
        RETURNING seq
    )
    SELECT (SELECT ok FROM allowed), (SELECT holder FROM lease), (SELECT token FROM lease),
           EXISTS (SELECT 1 FROM added), EXISTS (SELECT 1 FROM runs WHERE id = $1)"
);

/// `set_status` in one statement.
const SET_STATUS: &str = fenced_sql!(
    "changed AS (
        UPDATE runs SET status_json = $3::TEXT WHERE id = $1 AND (SELECT ok FROM allowed)
        RETURNING id
    )
    SELECT (SELECT ok FROM allowed), (SELECT holder FROM lease), (SELECT token FROM lease),
           EXISTS (SELECT 1 FROM changed), EXISTS (SELECT 1 FROM runs WHERE id = $1)"
);

/// The statements of the hot path, prepared once per connection; the others are prepared on
/// first use and kept ([`Cx`]).
struct Stmts {
    put_step: Statement,
    put_steps: Statement,
    put_fact: Statement,
    set_status: Statement,
    now: Statement,
    cache: RefCell<HashMap<String, Statement>>,
}

impl Stmts {
    async fn prepare(client: &Client) -> Result<Stmts, tokio_postgres::Error> {
        Ok(Stmts {
            put_step: client.prepare(PUT_STEP).await?,
            put_steps: client.prepare(PUT_STEPS).await?,
            put_fact: client.prepare(PUT_FACT).await?,
            set_status: client.prepare(SET_STATUS).await?,
            now: client
                .prepare("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
                .await?,
            cache: RefCell::new(HashMap::new()),
        })
    }
}

/// A transaction whose statements are prepared once per connection.
struct Cx<'a, 'b> {
    tx: &'a Transaction<'b>,
    stmts: &'a Stmts,
}

impl Cx<'_, '_> {
    async fn st(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(s) = self.stmts.cache.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql).await?;
        self.stmts
            .cache
            .borrow_mut()
            .insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    async fn execute(
        &self,
        sql: &str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        self.tx.execute(&self.st(sql).await?, p).await
    }

    async fn query(
        &self,
        sql: &str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        self.tx.query(&self.st(sql).await?, p).await
    }

    async fn query_one(
        &self,
        sql: &str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, tokio_postgres::Error> {
        self.tx.query_one(&self.st(sql).await?, p).await
    }

    async fn query_opt(
        &self,
        sql: &str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        self.tx.query_opt(&self.st(sql).await?, p).await
    }
}

/// Writes done by one statement that answers (never fails) when the fence or the row is
/// missing: a batch sends them all at once (pipelined, one round trip) without savepoints.
fn is_single_statement(op: &Op) -> bool {
    matches!(
        op,
        Op::PutStep { .. } | Op::PutFact { .. } | Op::SetStatus { .. }
    )
}

/// Runs one of the single-statement writes ([`is_single_statement`]).
async fn single_statement(
    tx: &Transaction<'_>,
    stmts: &Stmts,
    op: &Op,
) -> Result<Result<Out, StoreError>, tokio_postgres::Error> {
    let (run, token, row) = match op {
        Op::PutStep { run, token, record } => (
            run,
            token,
            tx.query_one(
                &stmts.put_step,
                &[
                    &run.0,
                    &opt(*token),
                    &record.step,
                    &record.state.as_str(),
                    &(record.attempts as i64),
                    &opt(record.started_ms),
                    &opt(record.finished_ms),
                    &record.exit_code,
                    &record.output,
                    &record.message,
                    &(lockstep_core::now_ms() as i64),
                ],
            )
            .await?,
        ),
        Op::PutFact { run, token, fact } => (
            run,
            token,
            tx.query_one(
                &stmts.put_fact,
                &[
                    &run.0,
                    &opt(*token),
                    &fact.host.as_str(),
                    &fact.key,
                    &fact.value,
                    &(fact.at_ms as i64),
                ],
            )
            .await?,
        ),
        Op::SetStatus { run, token, json } => (
            run,
            token,
            tx.query_one(&stmts.set_status, &[&run.0, &opt(*token), json])
                .await?,
        ),
        other => unreachable!("not a single-statement write: {other:?}"),
    };
    Ok(verdict(
        op,
        run,
        *token,
        row.get(0),
        row.get::<_, Option<String>>(1)
            .zip(row.get::<_, Option<i64>>(2)),
        row.get(3),
        row.get(4),
    ))
}

/// What a fenced write answers, from what its statement found: whether the fence held (and
/// the lease it saw), whether the row was written, whether the run exists.
fn verdict(
    op: &Op,
    run: &RunId,
    token: Option<u64>,
    allowed: bool,
    lease: Option<(String, i64)>,
    applied: bool,
    run_exists: bool,
) -> Result<Out, StoreError> {
    if !allowed {
        let by = lease.map(|(h, t)| (h, t as u64));
        return Err(fenced(run, by, token.unwrap_or(0)));
    }
    if !run_exists {
        return Err(StoreError::NoSuchRun(run.clone()));
    }
    if !applied {
        let step = match op {
            Op::PutStep { record, .. } => record.step.clone(),
            _ => String::new(),
        };
        return Err(StoreError::NoSuchStep {
            run: run.clone(),
            step,
        });
    }
    Ok(Out::Done)
}

/// Step records of one batch written by ONE statement (arrays, one element per write, in
/// order): the fence of each write's run, the records, and their timeline lines numbered in
/// arrival order. Answers one row per write, in order.
const PUT_STEPS: &str = "
WITH w AS (
    SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[],
                         $6::BIGINT[], $7::BIGINT[], $8::INTEGER[], $9::TEXT[], $10::TEXT[],
                         $11::BIGINT[])
        WITH ORDINALITY AS w (run, token, step, state, attempts, started_ms, finished_ms,
                              exit_code, output, message, at_ms, ord)
), lease AS (
    SELECT run, holder, token FROM run_leases WHERE run IN (SELECT run FROM w) FOR SHARE
), checked AS (
    SELECT w.*, COALESCE(w.token IS NULL OR w.token = l.token, FALSE) AS ok,
           l.holder AS lease_holder, l.token AS lease_token
    FROM w LEFT JOIN lease l ON l.run = w.run
), changed AS (
    UPDATE steps s SET state = c.state, attempts = c.attempts, started_ms = c.started_ms,
                       finished_ms = c.finished_ms, exit_code = c.exit_code,
                       output = c.output, message = c.message
    FROM checked c
    WHERE c.ok AND s.run = c.run AND s.step_id = c.step
    RETURNING c.ord, c.run, c.step, c.state, c.at_ms, c.message
), logged AS (
    INSERT INTO transitions (run, seq, step_id, state, at_ms, message)
    SELECT run,
           COALESCE((SELECT MAX(seq) FROM transitions t WHERE t.run = changed.run), 0)
               + row_number() OVER (PARTITION BY run ORDER BY ord),
           step, state, at_ms, message
    FROM changed
)
SELECT c.ok, c.lease_holder, c.lease_token, c.ord IN (SELECT ord FROM changed),
       EXISTS (SELECT 1 FROM runs r WHERE r.id = c.run)
FROM checked c ORDER BY c.ord";

/// Whether the writes can go as one [`PUT_STEPS`] statement: at least two step records, none
/// for the same step twice (one `UPDATE` cannot apply two records to one row in order).
fn one_statement_for_steps(ops: &[&Op]) -> bool {
    let mut seen = std::collections::HashSet::new();
    ops.len() >= 2
        && ops.iter().all(|op| match op {
            Op::PutStep { run, record, .. } => seen.insert((&run.0, &record.step)),
            _ => false,
        })
}

/// Writes step records with [`PUT_STEPS`]; one answer per op, in order.
async fn put_steps(
    tx: &Transaction<'_>,
    stmts: &Stmts,
    ops: &[&Op],
) -> Result<Vec<Result<Out, StoreError>>, tokio_postgres::Error> {
    let recs: Vec<(&RunId, Option<u64>, &StepRecord)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::PutStep { run, token, record } => Some((run, *token, record)),
            _ => None,
        })
        .collect();
    let runs: Vec<&str> = recs.iter().map(|r| r.0 .0.as_str()).collect();
    let tokens: Vec<Option<i64>> = recs.iter().map(|r| opt(r.1)).collect();
    let steps: Vec<&str> = recs.iter().map(|r| r.2.step.as_str()).collect();
    let states: Vec<&str> = recs.iter().map(|r| r.2.state.as_str()).collect();
    let attempts: Vec<i64> = recs.iter().map(|r| r.2.attempts as i64).collect();
    let started: Vec<Option<i64>> = recs.iter().map(|r| opt(r.2.started_ms)).collect();
    let finished: Vec<Option<i64>> = recs.iter().map(|r| opt(r.2.finished_ms)).collect();
    let codes: Vec<Option<i32>> = recs.iter().map(|r| r.2.exit_code).collect();
    let outputs: Vec<&str> = recs.iter().map(|r| r.2.output.as_str()).collect();
    let messages: Vec<&str> = recs.iter().map(|r| r.2.message.as_str()).collect();
    let at = lockstep_core::now_ms() as i64;
    let ats: Vec<i64> = vec![at; recs.len()];
    let rows = tx
        .query(
            &stmts.put_steps,
            &[
                &runs, &tokens, &steps, &states, &attempts, &started, &finished, &codes, &outputs,
                &messages, &ats,
            ],
        )
        .await?;
    Ok(ops
        .iter()
        .zip(&recs)
        .zip(rows)
        .map(|((op, r), row)| {
            verdict(
                op,
                r.0,
                r.1,
                row.get(0),
                row.get::<_, Option<String>>(1)
                    .zip(row.get::<_, Option<i64>>(2)),
                row.get(3),
                row.get(4),
            )
        })
        .collect())
}

async fn apply_batch(client: &mut Client, stmts: &Stmts, path: &str, jobs: Vec<Job>) {
    // First with the single-statement writes pipelined and no savepoint around them; should
    // one of them fail in the server (which aborts the transaction), the whole batch is done
    // again with each write in its own savepoint, so that it fails alone.
    let mut outcome = attempt(client, stmts, path, &jobs, true).await;
    if let Err(Retry::Pipelined(e)) = &outcome {
        tracing::debug!(
            "a pipelined write failed ({}): one savepoint per write",
            pg_message(e)
        );
        outcome = attempt(client, stmts, path, &jobs, false).await;
    }
    match outcome {
        Ok(results) => {
            for (job, r) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(r);
            }
        }
        Err(Retry::Pipelined(e) | Retry::Failed(e)) => {
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::Backend {
                    path: path.to_owned(),
                    detail: format!("commit failed: {}", pg_message(&e)),
                }));
            }
        }
    }
}

enum Retry {
    /// A pipelined write failed: the batch is worth redoing one savepoint per write.
    Pipelined(tokio_postgres::Error),
    Failed(tokio_postgres::Error),
}

async fn attempt(
    client: &mut Client,
    stmts: &Stmts,
    path: &str,
    jobs: &[Job],
    pipeline: bool,
) -> Result<Vec<Result<Out, StoreError>>, Retry> {
    let failed = Retry::Failed;
    let mut tx = client.transaction().await.map_err(failed)?;
    // Lease expiry uses the server's clock; only the writes that need it ask.
    let now = if jobs.iter().any(|j| !is_single_statement(&j.op)) {
        let row = tx.query_one(&stmts.now, &[]).await.map_err(failed)?;
        row.get::<_, i64>(0) as u64
    } else {
        0
    };
    let mut results = Vec::with_capacity(jobs.len());
    let mut i = 0;
    while i < jobs.len() {
        if pipeline && is_single_statement(&jobs[i].op) {
            let n = jobs[i..]
                .iter()
                .take_while(|j| is_single_statement(&j.op))
                .count();
            // Polled together, the statements go out in one write and their answers come
            // back in order (tokio-postgres pipelines concurrent queries on one connection).
            // The step records among them go as one statement when they can.
            let segment = &jobs[i..i + n];
            let step_ops: Vec<&Op> = segment
                .iter()
                .map(|j| &j.op)
                .filter(|op| matches!(op, Op::PutStep { .. }))
                .collect();
            let grouped = one_statement_for_steps(&step_ops);
            let together = async {
                if grouped {
                    put_steps(&tx, stmts, &step_ops).await.map(Some)
                } else {
                    Ok(None)
                }
            };
            let singles = futures::future::join_all(
                segment
                    .iter()
                    .filter(|j| !(grouped && matches!(j.op, Op::PutStep { .. })))
                    .map(|j| single_statement(&tx, stmts, &j.op)),
            );
            let (together, singles) = futures::future::join(together, singles).await;
            let mut together = together.map_err(Retry::Pipelined)?.into_iter().flatten();
            let mut singles = singles.into_iter();
            for j in segment {
                let r = if grouped && matches!(j.op, Op::PutStep { .. }) {
                    together.next()
                } else {
                    singles
                        .next()
                        .map(|a| a.map_err(Retry::Pipelined))
                        .transpose()?
                };
                results.push(r.expect("one answer per write"));
            }
            i += n;
        } else {
            let sp = tx.savepoint("lockstep_write").await.map_err(failed)?;
            let r = apply_one(&Cx { tx: &sp, stmts }, path, now, &jobs[i].op).await;
            if r.is_ok() {
                sp.commit().await.map_err(failed)?;
            } else {
                sp.rollback().await.map_err(failed)?;
            }
            results.push(r);
            i += 1;
        }
    }
    tx.commit().await.map_err(failed)?;
    Ok(results)
}

fn opt(v: Option<u64>) -> Option<i64> {
    v.map(|v| v as i64)
}

async fn require_run(cx: &Cx<'_, '_>, path: &str, run: &RunId) -> Result<(), StoreError> {
    match cx
        .query_opt("SELECT 1 FROM runs WHERE id = $1", &[&run.0])
        .await
        .map_err(|e| db_err(path, e))?
    {
        Some(_) => Ok(()),
        None => Err(StoreError::NoSuchRun(run.clone())),
    }
}

async fn check_token(
    cx: &Cx<'_, '_>,
    path: &str,
    run: &RunId,
    token: Option<u64>,
) -> Result<(), StoreError> {
    let Some(mine) = token else { return Ok(()) };
    let row = cx
        .query_opt(
            "SELECT holder, token FROM run_leases WHERE run = $1 FOR SHARE",
            &[&run.0],
        )
        .await
        .map_err(|e| db_err(path, e))?;
    match row {
        Some(r) if r.get::<_, i64>(1) as u64 == mine => Ok(()),
        Some(r) => Err(fenced(
            run,
            Some((r.get(0), r.get::<_, i64>(1) as u64)),
            mine,
        )),
        None => Err(fenced(run, None, mine)),
    }
}

async fn next_seq(
    cx: &Cx<'_, '_>,
    path: &str,
    table: &str,
    run: &RunId,
) -> Result<i64, StoreError> {
    Ok(cx
        .query_one(
            &format!("SELECT COALESCE(MAX(seq), 0) + 1 FROM {table} WHERE run = $1"),
            &[&run.0],
        )
        .await
        .map_err(|e| db_err(path, e))?
        .get(0))
}

async fn insert_step(
    cx: &Cx<'_, '_>,
    path: &str,
    run: &RunId,
    idx: usize,
    rec: &StepRecord,
) -> Result<(), StoreError> {
    cx.execute(
        "INSERT INTO steps (run, idx, step_id, state, attempts, started_ms, finished_ms,
                            exit_code, output, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &run.0,
            &(idx as i32),
            &rec.step,
            &rec.state.as_str(),
            &(rec.attempts as i64),
            &opt(rec.started_ms),
            &opt(rec.finished_ms),
            &rec.exit_code,
            &rec.output,
            &rec.message,
        ],
    )
    .await
    .map_err(|e| db_err(path, e))?;
    Ok(())
}

async fn load_steps(
    cx: &Cx<'_, '_>,
    path: &str,
    run: &RunId,
) -> Result<Vec<StepRecord>, StoreError> {
    let rows = cx
        .query(
            "SELECT step_id, state, attempts, started_ms, finished_ms, exit_code, output, message
             FROM steps WHERE run = $1 ORDER BY idx",
            &[&run.0],
        )
        .await
        .map_err(|e| db_err(path, e))?;
    rows.into_iter()
        .map(|r| {
            let state: String = r.get(1);
            Ok(StepRecord {
                step: r.get(0),
                state: parse_state(&state).ok_or_else(|| StoreError::Backend {
                    path: path.to_owned(),
                    detail: format!("unknown step state `{state}`"),
                })?,
                attempts: r.get::<_, i64>(2) as u32,
                started_ms: r.get::<_, Option<i64>>(3).map(|v| v as u64),
                finished_ms: r.get::<_, Option<i64>>(4).map(|v| v as u64),
                exit_code: r.get(5),
                output: r.get(6),
                message: r.get(7),
            })
        })
        .collect()
}

fn decode<T: serde::de::DeserializeOwned>(
    path: &str,
    what: &str,
    run: &RunId,
    s: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Backend {
        path: path.to_owned(),
        detail: format!("run `{run}` has an unreadable {what}: {e}"),
    })
}

async fn apply_one(cx: &Cx<'_, '_>, path: &str, now: u64, op: &Op) -> Result<Out, StoreError> {
    let err = |e: tokio_postgres::Error| db_err(path, e);
    match op {
        Op::CreateRun { .. } => create_run(cx, path, now, op).await,
        Op::PutStep { .. } | Op::PutFact { .. } | Op::SetStatus { .. } => {
            single_statement(cx.tx, cx.stmts, op).await.map_err(err)?
        }
        Op::Approve { run, what, by } => {
            require_run(cx, path, run).await?;
            let seq = next_seq(cx, path, "approvals", run).await?;
            cx.execute(
                "INSERT INTO approvals (run, seq, what, at_ms, by_user) VALUES ($1, $2, $3, $4, $5)",
                &[&run.0, &seq, what, &(lockstep_core::now_ms() as i64), by],
            )
            .await
            .map_err(err)?;
            Ok(Out::Done)
        }
        Op::ReplacePlan { .. } => replace_plan(cx, path, op).await,
        Op::TakeRun { .. } => take_run(cx, path, now, op).await,
        Op::TakeHosts { .. } => take_hosts(cx, path, now, op).await,
        Op::BindHosts { holder, run } => {
            cx.execute(
                "UPDATE host_leases SET run = $2 WHERE holder = $1",
                &[holder, &run.0],
            )
            .await
            .map_err(err)?;
            Ok(Out::Done)
        }
        Op::Renew { .. } => renew(cx, path, now, op).await,
        Op::Release {
            holder,
            runs,
            hosts,
        } => {
            for (run, token) in runs {
                cx.execute(
                    "UPDATE run_leases SET expires_ms = 0 WHERE run = $1 AND token = $2",
                    &[&run.0, &(*token as i64)],
                )
                .await
                .map_err(err)?;
            }
            if *hosts {
                cx.execute("DELETE FROM host_leases WHERE holder = $1", &[holder])
                    .await
                    .map_err(err)?;
            }
            Ok(Out::Done)
        }
        Op::PutFleetFacts(facts) => {
            for f in facts {
                cx.execute(
                    "INSERT INTO fleet_facts (host, key, value, at_ms) VALUES ($1, $2, $3, $4)",
                    &[&f.host.as_str(), &f.key, &f.value, &(f.at_ms as i64)],
                )
                .await
                .map_err(err)?;
            }
            Ok(Out::Done)
        }
        Op::LatestFleetFacts => latest_fleet_facts(cx, path).await,
        Op::LoadRun(_) => load_run(cx, path, op).await,
        Op::LatestRun => Ok(Out::Latest(
            cx.query_opt(
                "SELECT id FROM runs ORDER BY created_ms DESC, id DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(err)?
            .map(|r| RunId(r.get(0))),
        )),
        Op::ListRuns => list_runs(cx, path).await,
        Op::RunLeases => {
            let rows = cx
                .query(
                    "SELECT run, holder, token, expires_ms FROM run_leases ORDER BY run",
                    &[],
                )
                .await
                .map_err(err)?;
            Ok(Out::Leases(
                rows.into_iter()
                    .map(|r| {
                        let expires = r.get::<_, i64>(3) as u64;
                        RunLease {
                            run: RunId(r.get(0)),
                            holder: r.get(1),
                            token: r.get::<_, i64>(2) as u64,
                            expires_ms: expires,
                            expired: expires <= now,
                        }
                    })
                    .collect(),
            ))
        }
    }
}

/// Inserts a new run under a fresh id, with every step pending.
async fn create_run(cx: &Cx<'_, '_>, path: &str, now: u64, op: &Op) -> Result<Out, StoreError> {
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
    let err = |e: tokio_postgres::Error| db_err(path, e);
    let mut id = new_run_id(now);
    for _ in 0..64 {
        if require_run(cx, path, &id).await.is_err() {
            break;
        }
        id = new_run_id(now);
    }
    cx.execute(
        "INSERT INTO runs (id, created_ms, playbook, plan_hash, plan_json, meta_json,
                           status_json)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &id.0,
            &(now as i64),
            playbook,
            hash,
            plan_json,
            meta_json,
            status_json,
        ],
    )
    .await
    .map_err(err)?;
    for (idx, step) in step_ids.iter().enumerate() {
        insert_step(cx, path, &id, idx, &StepRecord::pending(step)).await?;
    }
    Ok(Out::Run(id))
}

/// Swaps a run's plan, keeping the records of steps that stay.
async fn replace_plan(cx: &Cx<'_, '_>, path: &str, op: &Op) -> Result<Out, StoreError> {
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
    let err = |e: tokio_postgres::Error| db_err(path, e);
    check_token(cx, path, run, *token).await?;
    require_run(cx, path, run).await?;
    let old = load_steps(cx, path, run).await?;
    cx.execute("DELETE FROM steps WHERE run = $1", &[&run.0])
        .await
        .map_err(err)?;
    for (idx, id) in step_ids.iter().enumerate() {
        let rec = old
            .iter()
            .find(|r| &r.step == id)
            .cloned()
            .unwrap_or_else(|| StepRecord::pending(id));
        insert_step(cx, path, run, idx, &rec).await?;
    }
    cx.execute(
        "UPDATE runs SET playbook = $2, plan_hash = $3, plan_json = $4 WHERE id = $1",
        &[&run.0, playbook, hash, plan_json],
    )
    .await
    .map_err(err)?;
    Ok(Out::Done)
}

/// Takes (or steals) a run's lease and returns the new fencing token.
async fn take_run(cx: &Cx<'_, '_>, path: &str, now: u64, op: &Op) -> Result<Out, StoreError> {
    let Op::TakeRun {
        run,
        holder,
        ttl_ms,
        steal,
    } = op
    else {
        unreachable!("`take_run` is only called for `Op::TakeRun`");
    };
    let err = |e: tokio_postgres::Error| db_err(path, e);
    require_run(cx, path, run).await?;
    let expires = (now + ttl_ms) as i64;
    cx.execute(
        "INSERT INTO run_leases (run, holder, token, expires_ms) VALUES ($1, '', 0, 0)
         ON CONFLICT (run) DO NOTHING",
        &[&run.0],
    )
    .await
    .map_err(err)?;
    let row = cx
        .query_one(
            "SELECT holder, token, expires_ms FROM run_leases WHERE run = $1 FOR UPDATE",
            &[&run.0],
        )
        .await
        .map_err(err)?;
    let (h, t, exp): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
    if !(*steal || &h == holder || (exp as u64) <= now) {
        return Err(StoreError::Locked {
            run: run.clone(),
            holder: h,
        });
    }
    cx.execute(
        "UPDATE run_leases SET holder = $2, token = $3, expires_ms = $4 WHERE run = $1",
        &[&run.0, holder, &(t + 1), &expires],
    )
    .await
    .map_err(err)?;
    Ok(Out::Token((t + 1) as u64))
}

/// Takes the host leases in one order, collecting every host held by another.
async fn take_hosts(cx: &Cx<'_, '_>, path: &str, now: u64, op: &Op) -> Result<Out, StoreError> {
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
    let err = |e: tokio_postgres::Error| db_err(path, e);
    let expires = (now + ttl_ms) as i64;
    let mut keys: Vec<(String, &Name)> = hosts
        .iter()
        .map(|h| (h.as_str().to_ascii_lowercase(), h))
        .collect();
    // One order for every controller: no deadlock between two taking overlapping sets.
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    keys.dedup_by(|a, b| a.0 == b.0);
    let run_id = run.as_ref().map(|r| r.0.clone());
    let mut conflicts = Vec::new();
    for (key, host) in keys {
        cx.execute(
            "INSERT INTO host_leases (host, name, holder, run, expires_ms)
             VALUES ($1, $2, '', NULL, 0) ON CONFLICT (host) DO NOTHING",
            &[&key, &host.as_str()],
        )
        .await
        .map_err(err)?;
        let row = cx
            .query_one(
                "SELECT holder, run, expires_ms FROM host_leases WHERE host = $1 FOR UPDATE",
                &[&key],
            )
            .await
            .map_err(err)?;
        let (h, r, exp): (String, Option<String>, i64) = (row.get(0), row.get(1), row.get(2));
        // Lapsed, or its controller (of this machine) is gone.
        let expired = (exp as u64) <= now || crate::lease::holder_gone(&h);
        let same_run = r.is_some() && r == run_id;
        let take = h.is_empty()
            || &h == holder
            || (same_run && (expired || *run_dead))
            || (r.is_none() && expired);
        if take {
            cx.execute(
                "UPDATE host_leases SET name = $2, holder = $3,
                     run = COALESCE($4, run), expires_ms = $5
                 WHERE host = $1",
                &[&key, &host.as_str(), holder, &run_id, &expires],
            )
            .await
            .map_err(err)?;
        } else {
            conflicts.push(HostLease {
                host: host.as_str().to_owned(),
                holder: h,
                run: r.map(RunId),
                expired,
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
async fn renew(cx: &Cx<'_, '_>, path: &str, now: u64, op: &Op) -> Result<Out, StoreError> {
    let Op::Renew {
        holder,
        ttl_ms,
        runs,
    } = op
    else {
        unreachable!("`renew` is only called for `Op::Renew`");
    };
    let err = |e: tokio_postgres::Error| db_err(path, e);
    let expires = (now + ttl_ms) as i64;
    let mut lost = Vec::new();
    for (run, token) in runs {
        let n = cx
            .execute(
                "UPDATE run_leases SET expires_ms = $3 WHERE run = $1 AND token = $2",
                &[&run.0, &(*token as i64), &expires],
            )
            .await
            .map_err(err)?;
        if n == 0 {
            let by = cx
                .query_opt("SELECT holder FROM run_leases WHERE run = $1", &[&run.0])
                .await
                .map_err(err)?
                .map(|r| r.get::<_, String>(0));
            lost.push((
                run.clone(),
                by.unwrap_or_else(|| "nobody (released)".to_owned()),
            ));
        }
    }
    cx.execute(
        "UPDATE host_leases SET expires_ms = $2 WHERE holder = $1",
        &[holder, &expires],
    )
    .await
    .map_err(err)?;
    Ok(Out::Lost(lost))
}

/// Each host's facts from its newest fleet survey.
async fn latest_fleet_facts(cx: &Cx<'_, '_>, path: &str) -> Result<Out, StoreError> {
    let err = |e: tokio_postgres::Error| db_err(path, e);
    let rows = cx
        .query(
            "SELECT host, key, value, at_ms FROM fleet_facts f
             WHERE at_ms = (SELECT MAX(at_ms) FROM fleet_facts g WHERE g.host = f.host)
             ORDER BY host, seq",
            &[],
        )
        .await
        .map_err(err)?;
    let mut out = Vec::new();
    for r in rows {
        let host: String = r.get(0);
        out.push(Fact {
            host: Name::host(&host).map_err(|e| StoreError::Backend {
                path: path.to_owned(),
                detail: format!("a fleet fact has a bad host: {e}"),
            })?,
            key: r.get(1),
            value: r.get(2),
            at_ms: r.get::<_, i64>(3) as u64,
        });
    }
    Ok(Out::Facts(out))
}

/// A run's whole record: plan, start parameters, status, steps, facts and approvals.
async fn load_run(cx: &Cx<'_, '_>, path: &str, op: &Op) -> Result<Out, StoreError> {
    let Op::LoadRun(run) = op else {
        unreachable!("`load_run` is only called for `Op::LoadRun`");
    };
    let err = |e: tokio_postgres::Error| db_err(path, e);
    let Some(row) = cx
        .query_opt(
            "SELECT plan_json, meta_json, status_json, created_ms FROM runs WHERE id = $1",
            &[&run.0],
        )
        .await
        .map_err(err)?
    else {
        return Err(StoreError::NoSuchRun(run.clone()));
    };
    let plan: Plan = decode(path, "plan", run, row.get(0))?;
    let meta: RunMeta = decode(path, "start parameters", run, row.get(1))?;
    let status: RunStatus = decode(path, "status", run, row.get(2))?;
    let steps = load_steps(cx, path, run).await?;
    let mut facts = Vec::new();
    for r in cx
        .query(
            "SELECT host, key, value, at_ms FROM facts WHERE run = $1 ORDER BY seq",
            &[&run.0],
        )
        .await
        .map_err(err)?
    {
        let host: String = r.get(0);
        facts.push(Fact {
            host: Name::host(&host).map_err(|e| StoreError::Backend {
                path: path.to_owned(),
                detail: format!("run `{run}` has a fact with a bad host: {e}"),
            })?,
            key: r.get(1),
            value: r.get(2),
            at_ms: r.get::<_, i64>(3) as u64,
        });
    }
    let approvals = cx
        .query(
            "SELECT what, by_user, at_ms FROM approvals WHERE run = $1 ORDER BY seq",
            &[&run.0],
        )
        .await
        .map_err(err)?
        .into_iter()
        .map(|r| lockstep_core::Approval {
            what: r.get(0),
            by: r.get(1),
            at_ms: r.get::<_, i64>(2) as u64,
        })
        .collect();
    Ok(Out::Record(Box::new(RunRecord {
        id: run.clone(),
        plan,
        meta,
        status,
        steps,
        facts,
        approvals,
        created_ms: row.get::<_, i64>(3) as u64,
    })))
}

/// Every run, newest first, with its count of finished steps.
async fn list_runs(cx: &Cx<'_, '_>, path: &str) -> Result<Out, StoreError> {
    let err = |e: tokio_postgres::Error| db_err(path, e);
    let rows = cx
        .query(
            "SELECT r.id, r.playbook, r.status_json, r.created_ms,
                    (SELECT COUNT(*) FROM steps s
                      WHERE s.run = r.id AND s.state IN ('done', 'skipped')),
                    (SELECT COUNT(*) FROM steps s WHERE s.run = r.id)
             FROM runs r ORDER BY r.created_ms DESC, r.id DESC",
            &[],
        )
        .await
        .map_err(err)?;
    let mut out = Vec::new();
    for r in rows {
        let id = RunId(r.get(0));
        out.push(RunSummary {
            status: decode(path, "status", &id, r.get(2))?,
            playbook: r.get(1),
            created_ms: r.get::<_, i64>(3) as u64,
            complete: r.get::<_, i64>(4) as usize,
            total: r.get::<_, i64>(5) as usize,
            id,
        });
    }
    Ok(Out::Runs(out))
}

impl StateStore for PgStore {
    fn create_run(&self, plan: &Plan, meta: &RunMeta) -> Result<RunId, StoreError> {
        match self.writer.call(Op::CreateRun {
            playbook: plan.playbook.as_str().to_owned(),
            hash: plan.hash.0.clone(),
            plan_json: self.json(plan)?,
            meta_json: self.json(meta)?,
            status_json: self.json(&RunStatus::Running)?,
            step_ids: plan.steps.iter().map(|s| s.id.clone()).collect(),
        })? {
            Out::Run(id) => Ok(id),
            other => Err(self.corrupt(format!("unexpected answer: {other:?}"))),
        }
    }

    fn load_run(&self, run: &RunId) -> Result<RunRecord, StoreError> {
        match self.writer.call(Op::LoadRun(run.clone()))? {
            Out::Record(r) => Ok(*r),
            other => Err(self.corrupt(format!("unexpected answer: {other:?}"))),
        }
    }

    fn latest_run(&self) -> Result<Option<RunId>, StoreError> {
        match self.writer.call(Op::LatestRun)? {
            Out::Latest(r) => Ok(r),
            other => Err(self.corrupt(format!("unexpected answer: {other:?}"))),
        }
    }

    fn list_runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        match self.writer.call(Op::ListRuns)? {
            Out::Runs(r) => Ok(r),
            other => Err(self.corrupt(format!("unexpected answer: {other:?}"))),
        }
    }

    fn lock_run(&self, run: &RunId) -> Result<Box<dyn RunLock>, StoreError> {
        let sent = Instant::now();
        let token = match self.writer.call(Op::TakeRun {
            run: run.clone(),
            holder: self.session.holder.clone(),
            ttl_ms: self.session.ttl_ms(),
            steal: false,
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
            None,
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
            json: self.json(status)?,
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

    fn replace_plan(&self, run: &RunId, plan: &Plan) -> Result<(), StoreError> {
        let r = self.write(Op::ReplacePlan {
            run: run.clone(),
            token: self.session.token(run),
            playbook: plan.playbook.as_str().to_owned(),
            hash: plan.hash.0.clone(),
            plan_json: self.json(plan)?,
            step_ids: plan.steps.iter().map(|s| s.id.clone()).collect(),
        });
        self.note(r)
    }

    fn fence(&self) -> Option<Arc<Fence>> {
        Some(Arc::clone(&self.session.fence))
    }

    fn take_hosts(&self, hosts: &[Name], run: Option<&RunId>) -> Result<(), StoreError> {
        let sent = Instant::now();
        self.write(Op::TakeHosts {
            holder: self.session.holder.clone(),
            ttl_ms: self.session.ttl_ms(),
            hosts: hosts.to_vec(),
            run: run.cloned(),
            // Only the lapse of the lease proves a controller on another machine dead.
            run_dead: false,
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

    fn put_fleet_facts(&self, facts: &[Fact]) -> Result<(), StoreError> {
        self.write(Op::PutFleetFacts(facts.to_vec()))
    }

    fn latest_fleet_facts(&self) -> Result<Vec<Fact>, StoreError> {
        match self.writer.call(Op::LatestFleetFacts)? {
            Out::Facts(f) => Ok(f),
            other => Err(self.corrupt(format!("unexpected answer: {other:?}"))),
        }
    }

    fn run_leases(&self) -> Result<Vec<RunLease>, StoreError> {
        match self.writer.call(Op::RunLeases)? {
            Out::Leases(l) => Ok(l),
            other => Err(self.corrupt(format!("unexpected answer: {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_postgres_url, redact_url};

    #[test]
    fn redact_url_hides_the_password_wherever_it_is() {
        assert_eq!(
            redact_url("postgres://lockstep:s3cret@db:5432/runs?sslmode=require"),
            "postgres://lockstep:***@db:5432/runs?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://db/runs?user=l&password=s3cret"),
            "postgresql://db/runs?user=l&password=***"
        );
        assert_eq!(redact_url("postgres://l@db/runs"), "postgres://l@db/runs");
        // A password holding `@` or `:` still vanishes whole.
        let shown = redact_url("postgres://l:p@ss:w@db/runs");
        assert!(
            !shown.contains("ss:w") && shown.ends_with("@db/runs"),
            "{shown}"
        );
        assert!(is_postgres_url("postgres://x") && is_postgres_url("postgresql://x"));
        assert!(!is_postgres_url(".lockstep/state.db"));
    }
}
