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

/// PostgreSQL writes a batch's step records as one statement and the rest pipelined: an unknown
/// step, a record the server refuses (a NUL byte, which TEXT cannot hold: the batch is done
/// again one savepoint per write) and a stale fencing token each fail alone, in the same
/// batches as writes that succeed; the timeline keeps the order the writes arrived in.
#[test]
fn batched_writes_fail_alone_and_stay_fenced_postgres() {
    use lockstep_core::{Fact, Name, StoreError};
    let pg = common::pg::Pg::start();
    let url = pg.url("batched");
    let ttl = std::time::Duration::from_secs(1);
    let a = PgStore::connect(&url, ttl).unwrap();
    let b = PgStore::connect(&url, ttl).unwrap();
    let ids: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let run = a
        .create_run(&common::plan("h", &ids), &RunMeta::default())
        .unwrap();
    let _guard = a.lock_run(&run).unwrap();

    let mut unknown = record(1);
    unknown.step = "no-such-step".to_owned();
    let mut nul = record(3);
    nul.output = "bad\0output".to_owned();
    let fact = Fact {
        host: Name::host("PRG-N1").unwrap(),
        key: "build".to_owned(),
        value: "6.5.7226.6".to_owned(),
        at_ms: 1,
    };
    let results = futures::executor::block_on(join_all(vec![
        a.put_step_async(&run, &record(0)),
        a.put_step_async(&run, &unknown),
        a.put_fact_async(&run, &fact),
        a.put_step_async(&run, &record(2)),
        a.put_step_async(&run, &nul),
        a.put_step_async(&run, &record(4)),
    ]));
    assert!(
        matches!(&results[1], Err(StoreError::NoSuchStep { step, .. }) if step == "no-such-step"),
        "{results:?}"
    );
    assert!(results[4].is_err(), "{results:?}");
    for i in [0, 2, 3, 5] {
        assert!(results[i].is_ok(), "write {i}: {results:?}");
    }
    let rec = b.load_run(&run).unwrap();
    assert_eq!(
        &rec.steps[..3],
        &[record(0), StepRecord::pending("s1"), record(2)]
    );
    assert_eq!(
        rec.steps[3],
        StepRecord::pending("s3"),
        "the refused record left nothing"
    );
    assert_eq!(rec.steps[4], record(4));
    assert_eq!(rec.facts, vec![fact]);
    let timeline: Vec<String> = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .query(
                    "SELECT step_id FROM transitions WHERE run = $1 ORDER BY seq",
                    &[&run.0],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
        });
    assert_eq!(timeline, ["s0", "s2", "s4"]);

    // A stops renewing; B takes the run over. A's batch of writes is refused whole, B's lands.
    a.stop_heartbeat();
    std::thread::sleep(std::time::Duration::from_millis(1_600));
    let _b_guard = b.lock_run(&run).unwrap();
    let late =
        futures::executor::block_on(join_all((5..8).map(|i| a.put_step_async(&run, &record(i)))));
    for r in &late {
        assert!(
            matches!(r, Err(StoreError::Fenced { detail, .. }) if detail.contains("fencing token 2")),
            "{late:?}"
        );
    }
    let ok =
        futures::executor::block_on(join_all((5..8).map(|i| b.put_step_async(&run, &record(i)))));
    assert!(ok.iter().all(Result::is_ok), "{ok:?}");
    assert_eq!(
        b.load_run(&run).unwrap().steps[5..],
        [record(5), record(6), record(7)]
    );
}
