//! The whole `StateStore` trait in one story, plus migrations and error cases.

mod common;

use lockstep_core::{
    Fact, HaltClass, Name, RunMeta, RunStatus, StateStore, StepRecord, StepState, StoreError,
};
use lockstep_store::{PgStore, SqliteStore, MIGRATIONS};

fn meta() -> RunMeta {
    RunMeta {
        inventory: "inventory/prg.yml".to_owned(),
        playbook: "playbooks/e3-cluster.yml".to_owned(),
        started_by: "operator".to_owned(),
        limit: vec!["prague".to_owned()],
        ..RunMeta::default()
    }
}

fn record(step: &str, state: StepState, attempts: u32, output: &str) -> StepRecord {
    StepRecord {
        step: step.to_owned(),
        state,
        attempts,
        started_ms: Some(1_000 + attempts as u64),
        finished_ms: state.is_complete().then_some(2_000),
        exit_code: state.is_complete().then_some(3010),
        output: output.to_owned(),
        message: format!("{step} is {}", state.as_str()),
    }
}

/// Runs the story against any store: `reopen` gives a second, independent handle on the same
/// backend (a second controller).
fn story(store: &dyn StateStore, reopen: &dyn Fn() -> Box<dyn StateStore>) {
    let plan = common::plan("h1", &["a", "b", "c"]);
    assert!(store.latest_run().unwrap().is_none());
    assert!(store.list_runs().unwrap().is_empty());

    let run = store.create_run(&plan, &meta()).unwrap();
    let rec = store.load_run(&run).unwrap();
    assert_eq!(rec.id, run);
    assert_eq!(rec.plan, plan);
    assert_eq!(rec.meta, meta());
    assert_eq!(rec.status, RunStatus::Running);
    assert_eq!(
        rec.steps,
        vec![
            StepRecord::pending("a"),
            StepRecord::pending("b"),
            StepRecord::pending("c")
        ]
    );
    assert!(rec.facts.is_empty() && rec.approvals.is_empty());

    // Lock: a second controller (another handle, another open file description) is refused and
    // told who holds the run; once released, it may take it.
    let guard = store.lock_run(&run).unwrap();
    let other = reopen();
    match other.lock_run(&run) {
        Err(StoreError::Locked { run: r, holder }) => {
            assert_eq!(r, run);
            assert!(
                holder.contains(&format!("pid {}", std::process::id())),
                "holder `{holder}` does not name this process"
            );
        }
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("expected Locked, got the lock"),
    }

    // Steps, with non-ASCII output (Czech and Japanese nodes).
    store
        .put_step(&run, &record("a", StepState::Running, 1, ""))
        .unwrap();
    let done_a = record(
        "a",
        StepState::Done,
        1,
        "Instalace dokončena. 完了しました。",
    );
    store.put_step(&run, &done_a).unwrap();
    let running_b = record("b", StepState::Running, 2, "copying files");
    store.put_step(&run, &running_b).unwrap();
    let failed_c = record("c", StepState::Failed, 1, "System error 5 has occurred.");
    store.put_step(&run, &failed_c).unwrap();
    match store.put_step(&run, &record("zz", StepState::Done, 1, "")) {
        Err(StoreError::NoSuchStep { step, .. }) => assert_eq!(step, "zz"),
        other => panic!("expected NoSuchStep, got {other:?}"),
    }

    // Facts and approvals, in order.
    let fact = |key: &str, value: &str| Fact {
        host: Name::host("PRG-N1").unwrap(),
        key: key.to_owned(),
        value: value.to_owned(),
        at_ms: 1234,
    };
    store
        .put_fact(&run, &fact("exchange.build", "6.5.7226.0"))
        .unwrap();
    store
        .put_fact(&run, &fact("group.EVS1.owner", "PRG-N2"))
        .unwrap();
    store.approve(&run, "canary").unwrap();
    store.approve(&run, "PRGCL1/EVS1/upgrade").unwrap();
    let waiting = RunStatus::Waiting {
        reason: "gate `canary`".to_owned(),
    };
    store.set_status(&run, &waiting).unwrap();

    // Reload through the other handle: everything written is there.
    let rec = other.load_run(&run).unwrap();
    assert_eq!(
        rec.steps,
        vec![done_a.clone(), running_b.clone(), failed_c.clone()]
    );
    assert_eq!(
        rec.facts,
        vec![
            fact("exchange.build", "6.5.7226.0"),
            fact("group.EVS1.owner", "PRG-N2")
        ]
    );
    // Each approval says what, who (this process's OS user) and when.
    assert_eq!(
        rec.approvals
            .iter()
            .map(|a| a.what.as_str())
            .collect::<Vec<_>>(),
        ["canary", "PRGCL1/EVS1/upgrade"]
    );
    for a in &rec.approvals {
        assert_eq!(a.by, lockstep_store::os_user(), "{a:?}");
        assert!(a.at_ms >= rec.created_ms, "{a:?}");
    }
    assert_eq!(rec.status, waiting);

    // A second run: newest first.
    let run2 = store
        .create_run(&common::plan("h2", &["x"]), &meta())
        .unwrap();
    assert_ne!(run2, run);
    assert_eq!(store.latest_run().unwrap(), Some(run2.clone()));
    let halted = RunStatus::Halted {
        class: HaltClass::StepFailed,
        reason: "installer exit code 1603".to_owned(),
    };
    store.set_status(&run2, &halted).unwrap();
    let list = store.list_runs().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, run2);
    assert_eq!(list[0].status, halted);
    assert_eq!((list[0].complete, list[0].total), (0, 1));
    assert_eq!(list[1].id, run);
    assert_eq!(list[1].playbook, "e3-cluster");
    assert_eq!((list[1].complete, list[1].total), (1, 3));

    // Re-plan: `b` survives with its state, `c` vanishes, `d` is new and pending, order follows
    // the new plan.
    let plan2 = common::plan("h3", &["d", "b", "a"]);
    store.replace_plan(&run, &plan2).unwrap();
    let rec = store.load_run(&run).unwrap();
    assert_eq!(rec.plan, plan2);
    assert_eq!(
        rec.steps,
        vec![StepRecord::pending("d"), running_b.clone(), done_a.clone()]
    );
    match store.put_step(&run, &record("c", StepState::Done, 1, "")) {
        Err(StoreError::NoSuchStep { .. }) => {}
        other => panic!("a vanished step must not be writable, got {other:?}"),
    }

    // Unknown runs.
    let ghost = lockstep_core::RunId("r19990101-000000-0000".to_owned());
    assert!(matches!(
        store.load_run(&ghost),
        Err(StoreError::NoSuchRun(_))
    ));
    assert!(matches!(
        store.put_step(&ghost, &StepRecord::pending("a")),
        Err(StoreError::NoSuchRun(_))
    ));
    assert!(matches!(
        store.set_status(&ghost, &RunStatus::Finished),
        Err(StoreError::NoSuchRun(_))
    ));
    assert!(matches!(
        store.lock_run(&ghost),
        Err(StoreError::NoSuchRun(_))
    ));

    // Released: the other controller takes it now.
    drop(guard);
    let guard2 = other.lock_run(&run).unwrap();
    assert!(matches!(
        store.lock_run(&run),
        Err(StoreError::Locked { .. })
    ));
    drop(guard2);
}

#[test]
fn story_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let reopen = || Box::new(SqliteStore::open(&path).unwrap()) as Box<dyn StateStore>;
    story(&store, &reopen);

    // The timeline keeps every write in order, including steps a re-plan dropped.
    let run = store.list_runs().unwrap()[1].id.clone();
    let timeline: Vec<(String, StepState)> = store
        .transitions(&run)
        .unwrap()
        .into_iter()
        .map(|t| (t.step, t.state))
        .collect();
    assert_eq!(
        timeline,
        vec![
            ("a".to_owned(), StepState::Running),
            ("a".to_owned(), StepState::Done),
            ("b".to_owned(), StepState::Running),
            ("c".to_owned(), StepState::Failed),
        ]
    );
    let t = store.transitions(&run).unwrap();
    assert_eq!(
        t.iter().map(|t| t.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4],
        "seq numbers the timeline"
    );
    assert_eq!(t[1].message, "a is done");
}

#[test]
fn story_postgres() {
    let pg = common::pg::Pg::start();
    let url = pg.url("story");
    let ttl = std::time::Duration::from_secs(30);
    let store = PgStore::connect(&url, ttl).unwrap();
    let reopen = || Box::new(PgStore::connect(&url, ttl).unwrap()) as Box<dyn StateStore>;
    story(&store, &reopen);
    // The password never shows: not in the store's name, not in a connection error.
    assert!(!format!("{store:?}").contains(common::pg::PG_PASSWORD));
    let bad = url.replace("/story", "/no_such_db");
    let e = PgStore::connect(&bad, ttl).unwrap_err().to_string();
    assert!(e.contains("no_such_db"), "{e}");
    assert!(!e.contains(common::pg::PG_PASSWORD), "{e}");
}

/// Host leases, run leases and fencing, against any backend that lets a second handle take over
/// a lapsed lease (`takeover`: PostgreSQL; SQLite's OS lock keeps a live holder's run).
fn lease_story<S: StateStore>(open: &dyn Fn() -> S, stop: &dyn Fn(&S), takeover: bool) {
    let host = |n: &str| Name::host(n).unwrap();
    let a = open();
    let b = open();
    a.take_hosts(&[host("PRG-N1"), host("PRG-N2")], None)
        .unwrap();
    // Overlap: refused all or none, naming A's holder, host by host.
    match b.take_hosts(&[host("prg-n2"), host("PRG-N3")], None) {
        Err(StoreError::HostsLeased(l)) => {
            assert_eq!(l.len(), 1, "{l:?}");
            assert_eq!(l[0].host, "prg-n2");
            assert!(l[0].holder.contains(&format!("pid {}", std::process::id())));
            assert!(!l[0].expired);
        }
        other => panic!("expected HostsLeased, got {other:?}"),
    }
    b.take_hosts(&[host("PRG-N3")], None).unwrap();
    let run = a
        .create_run(&common::plan("h", &["a", "b"]), &meta())
        .unwrap();
    let guard = a.lock_run(&run).unwrap();
    a.bind_hosts(&run).unwrap();
    a.put_step(&run, &record("a", StepState::Running, 1, ""))
        .unwrap();
    assert!(a.fence().unwrap().check().is_ok());
    let leases = b.run_leases().unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!((leases[0].token, leases[0].expired), (1, false));
    if !takeover {
        drop(guard);
        a.release_leases().unwrap();
        b.take_hosts(&[host("PRG-N2")], None).unwrap();
        return;
    }
    // A stops renewing (dies or hangs): once its lease lapsed, a new run on its hosts is still
    // refused (its run is unfinished), but the resume of that run takes them over.
    stop(&a);
    std::thread::sleep(std::time::Duration::from_millis(1_600));
    match b.take_hosts(&[host("PRG-N1")], None) {
        Err(StoreError::HostsLeased(l)) => {
            assert!(l[0].expired && l[0].run.as_ref() == Some(&run), "{l:?}")
        }
        other => panic!("expected HostsLeased, got {other:?}"),
    }
    let _b_guard = b.lock_run(&run).unwrap();
    b.take_hosts(&[host("PRG-N1"), host("PRG-N2")], Some(&run))
        .unwrap();
    assert_eq!(
        b.run_leases().unwrap()[0].token,
        2,
        "the token grows at a takeover"
    );
    // A wakes: every write is refused, naming the new holder, and its fence is closed.
    match a.put_step(&run, &record("a", StepState::Done, 1, "late")) {
        Err(StoreError::Fenced { run: r, detail }) => {
            assert_eq!(r, run);
            assert!(detail.contains("store handle"), "{detail}");
        }
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert!(a.fence().unwrap().check().is_err());
    assert_eq!(
        b.load_run(&run).unwrap().steps[0],
        record("a", StepState::Running, 1, ""),
        "the fenced write left nothing behind"
    );
    b.put_step(&run, &record("a", StepState::Done, 1, ""))
        .unwrap();
    drop(guard);
}

#[test]
fn leases_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let open = || SqliteStore::open(&path).unwrap();
    lease_story(&open, &|_: &SqliteStore| {}, false);
}

#[test]
fn leases_postgres() {
    let pg = common::pg::Pg::start();
    let url = pg.url("leases");
    let open = || PgStore::connect(&url, std::time::Duration::from_secs(1)).unwrap();
    lease_story(&open, &|s: &PgStore| s.stop_heartbeat(), true);
}

#[test]
fn migrations_are_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let run = {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
        let run = store
            .create_run(&common::plan("h", &["a"]), &meta())
            .unwrap();
        store
            .put_step(&run, &record("a", StepState::Done, 1, "ok"))
            .unwrap();
        run
    };
    // Reopening does not re-run a script (the first one's CREATE TABLE would fail) and keeps the
    // data.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    assert_eq!(
        store.load_run(&run).unwrap().steps,
        vec![record("a", StepState::Done, 1, "ok")]
    );
    // Two handles open at once are fine too.
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(again.latest_run().unwrap(), Some(run));
}

/// A state file written before approvals recorded who gave them (schema version 3) opens, its
/// approvals reading `unknown`; new ones name this process's user.
#[test]
fn approvals_from_before_their_user_was_kept_read_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let run = {
        let store = SqliteStore::open(&path).unwrap();
        let run = store
            .create_run(&common::plan("h", &["a"]), &meta())
            .unwrap();
        store.approve(&run, "gate:canary").unwrap();
        run
    };
    // Back to version 3: the approvals table as it was.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("ALTER TABLE approvals DROP COLUMN by_user; PRAGMA user_version = 3;")
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    store.approve(&run, "PRGCL1/EVS1/upgrade").unwrap();
    let by: Vec<(String, String)> = store
        .load_run(&run)
        .unwrap()
        .approvals
        .into_iter()
        .map(|a| (a.what, a.by))
        .collect();
    assert_eq!(
        by,
        [
            ("gate:canary".to_owned(), "unknown".to_owned()),
            ("PRGCL1/EVS1/upgrade".to_owned(), lockstep_store::os_user())
        ]
    );
}
