//! Controllers started together open one new state file at once (two `lockstep run`s racing for
//! the same hosts, a standby beside the driver). Every open must succeed: SQLite answers two
//! connections switching a new file to WAL at once with `SQLITE_BUSY` without consulting the
//! busy handler, which once failed a CI run with "database is locked".

use std::sync::{Arc, Barrier};

use lockstep_store::SqliteStore;

const ROUNDS: usize = 30;
const OPENERS: usize = 8;

#[test]
fn many_handles_opening_one_new_file_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let path = dir.path().join(format!("race-{round}.db"));
        let barrier = Arc::new(Barrier::new(OPENERS));
        let handles: Vec<_> = (0..OPENERS)
            .map(|_| {
                let path = path.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteStore::open(&path).and_then(|s| s.schema_version())
                })
            })
            .collect();
        for h in handles {
            match h.join().unwrap() {
                Ok(v) => assert_eq!(
                    v,
                    lockstep_store::MIGRATIONS.len() as u32,
                    "round {round}: a handle saw a schema not fully migrated"
                ),
                Err(e) => failures.push(format!("round {round}: {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "opens failed:\n{}",
        failures.join("\n")
    );
}
