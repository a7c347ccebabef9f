//! Add-only schema migrations of the PostgreSQL store, tracked in `lockstep_schema`.
//!
//! Script `i` (0-based) moves the schema from version `i` to `i + 1`. Never edit or reorder a
//! script that has shipped: add a new one at the end. Times are ms since the Unix epoch
//! (`BIGINT`), as in the SQLite store.

/// The migration scripts, applied in order.
pub const PG_MIGRATIONS: &[&str] = &[
    // 1: runs, steps, the append-only timeline, facts, approvals and leases.
    r#"
CREATE TABLE runs (
    id          TEXT PRIMARY KEY NOT NULL,
    created_ms  BIGINT NOT NULL,
    playbook    TEXT NOT NULL,
    plan_hash   TEXT NOT NULL,
    plan_json   TEXT NOT NULL,
    meta_json   TEXT NOT NULL,
    status_json TEXT NOT NULL
);
CREATE INDEX runs_by_created ON runs (created_ms);
CREATE TABLE steps (
    run         TEXT NOT NULL REFERENCES runs (id),
    idx         INTEGER NOT NULL,
    step_id     TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    started_ms  BIGINT,
    finished_ms BIGINT,
    exit_code   INTEGER,
    output      TEXT NOT NULL,
    message     TEXT NOT NULL,
    PRIMARY KEY (run, step_id)
);
CREATE INDEX steps_by_idx ON steps (run, idx);
CREATE TABLE transitions (
    run     TEXT NOT NULL REFERENCES runs (id),
    seq     BIGINT NOT NULL,
    step_id TEXT NOT NULL,
    state   TEXT NOT NULL,
    at_ms   BIGINT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (run, seq)
);
CREATE TABLE facts (
    run   TEXT NOT NULL REFERENCES runs (id),
    seq   BIGINT NOT NULL,
    host  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (run, seq)
);
CREATE TABLE approvals (
    run   TEXT NOT NULL REFERENCES runs (id),
    seq   BIGINT NOT NULL,
    what  TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (run, seq)
);
CREATE TABLE run_leases (
    run        TEXT PRIMARY KEY NOT NULL REFERENCES runs (id),
    holder     TEXT NOT NULL,
    token      BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE TABLE host_leases (
    host       TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    holder     TEXT NOT NULL,
    run        TEXT,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX host_leases_by_holder ON host_leases (holder);
"#,
    // 2: facts read outside any run (`lockstep facts`), with the time each was read.
    r#"
CREATE TABLE fleet_facts (
    seq   BIGSERIAL PRIMARY KEY,
    host  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX fleet_facts_by_host ON fleet_facts (host, at_ms);
"#,
    // 3: who gave each approval (the OS user of the controller that recorded it); earlier
    // approvals read as `unknown`.
    r#"
ALTER TABLE approvals ADD COLUMN by_user TEXT NOT NULL DEFAULT 'unknown';
"#,
];
