//! Add-only schema migrations keyed by `PRAGMA user_version`.
//!
//! Script `i` (0-based) moves the schema from version `i` to `i + 1`. Never edit or reorder a
//! script that has shipped: add a new one at the end.

/// The migration scripts, applied in order.
pub const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
CREATE TABLE runs (
    id          TEXT PRIMARY KEY NOT NULL,
    created_ms  INTEGER NOT NULL,
    playbook    TEXT NOT NULL,
    plan_hash   TEXT NOT NULL,
    plan_json   TEXT NOT NULL,
    meta_json   TEXT NOT NULL,
    status_json TEXT NOT NULL
);
CREATE INDEX runs_by_created ON runs (created_ms);

-- Latest record of every step of a run's current plan.
CREATE TABLE steps (
    run         TEXT NOT NULL REFERENCES runs (id),
    idx         INTEGER NOT NULL,
    step_id     TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    started_ms  INTEGER,
    finished_ms INTEGER,
    exit_code   INTEGER,
    output      TEXT NOT NULL,
    message     TEXT NOT NULL,
    PRIMARY KEY (run, step_id)
);
CREATE INDEX steps_by_idx ON steps (run, idx);

-- Append-only timeline.
CREATE TABLE transitions (
    run     TEXT NOT NULL REFERENCES runs (id),
    seq     INTEGER NOT NULL,
    step_id TEXT NOT NULL,
    state   TEXT NOT NULL,
    at_ms   INTEGER NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (run, seq)
);

-- Append-only facts.
CREATE TABLE facts (
    run   TEXT NOT NULL REFERENCES runs (id),
    seq   INTEGER NOT NULL,
    host  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (run, seq)
);

-- Append-only approvals.
CREATE TABLE approvals (
    run   TEXT NOT NULL REFERENCES runs (id),
    seq   INTEGER NOT NULL,
    what  TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (run, seq)
);
"#,
    // 2: facts read outside any run (`lockstep facts`), with the time each was read.
    r#"
CREATE TABLE fleet_facts (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    host  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX fleet_facts_by_host ON fleet_facts (host, at_ms);
"#,
    // 3: leases. A run's lease (holder, fencing token, expiry) and one lease per host, so that
    // one controller drives a run and one run touches a host at a time.
    r#"
CREATE TABLE run_leases (
    run        TEXT PRIMARY KEY NOT NULL REFERENCES runs (id),
    holder     TEXT NOT NULL,
    token      INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);

-- `host` is the lower-cased name (Windows names are case-insensitive); `name` as written.
CREATE TABLE host_leases (
    host       TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    holder     TEXT NOT NULL,
    run        TEXT,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX host_leases_by_holder ON host_leases (holder);
"#,
    // 4: who gave each approval (the OS user of the controller that recorded it); earlier
    // approvals read as `unknown`.
    r#"
ALTER TABLE approvals ADD COLUMN by_user TEXT NOT NULL DEFAULT 'unknown';
"#,
];
