//! Group commit: step transitions written at the same time share commits, and every one of them
//! is durable (readable by another handle) when its future resolves. Both backends.

mod common;

use futures::future::join_all;
use lockstep_core::{RunMeta, StateStore, StepRecord, StepState};
use lockstep_store::{Durability, PgStore, SqliteStore};

const HOSTS: usize = 200;

fn record(i: usize) -> StepRecord {
    StepRecord {
        step: format!("s{i}"),
        state: StepState::Done,
        attempts: 1,
        started_ms: Some(1),
        finished_ms: Some(2),
        exit_code: Some(0),
        output: format!("host {i} done"),
        message: String::new(),
    }
}

/// Writes one transition per host at once; returns how many commits they took.
fn concurrent_transitions(
    store: &dyn StateStore,
    reader: &dyn StateStore,
    commits: &dyn Fn() -> u64,
) {
    let ids: Vec<String> = (0..HOSTS).map(|i| format!("s{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let run = store
        .create_run(&common::plan("h", &ids), &RunMeta::default())
        .unwrap();
    let before = commits();
    let writes: Vec<_> = (0..HOSTS)
        .map(|i| store.put_step_async(&run, &record(i)))
        .collect();
    for r in futures::executor::block_on(join_all(writes)) {
        r.unwrap();
    }
    let used = commits() - before;
    assert!(
        used < HOSTS as u64 / 10,
        "{HOSTS} concurrent transitions took {used} commits: they were not grouped"
    );
    let steps = reader.load_run(&run).unwrap().steps;
    assert_eq!(steps, (0..HOSTS).map(record).collect::<Vec<_>>());
}

#[test]
fn concurrent_transitions_share_commits_sqlite_full() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open_with(&path, Durability::Full).unwrap();
    let reader = SqliteStore::open(&path).unwrap();
    concurrent_transitions(&store, &reader, &|| store.commits());
}

#[test]
fn concurrent_transitions_share_commits_postgres() {
    let pg = common::pg::Pg::start();
    let url = pg.url("group");
    let ttl = std::time::Duration::from_secs(30);
    let store = PgStore::connect(&url, ttl).unwrap();
    let reader = PgStore::connect(&url, ttl).unwrap();
    concurrent_transitions(&store, &reader, &|| store.commits());
}

#[test]
fn one_failing_write_in_a_batch_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    let run = store
        .create_run(&common::plan("h", &["s0", "s1"]), &RunMeta::default())
        .unwrap();
    let mut bad = record(0);
    bad.step = "no-such-step".to_owned();
    let writes = vec![
        store.put_step_async(&run, &record(0)),
        store.put_step_async(&run, &bad),
        store.put_step_async(&run, &record(1)),
    ];
    let results = futures::executor::block_on(join_all(writes));
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(results[1].is_err());
    assert_eq!(
        store.load_run(&run).unwrap().steps,
        vec![record(0), record(1)]
    );
}
