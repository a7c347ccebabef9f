//! Mean time of one durable `put_step` (one checkpoint of the engine) with `synchronous=FULL`
//! and `synchronous=NORMAL`, on a file in the cargo target dir (a real disk, not tmpfs), next to
//! the disk's own floor: one 4 KiB write + `fdatasync`.

use criterion::{criterion_group, criterion_main, Criterion};
use lockstep_core::{
    Action, FailureBudget, Gate, Name, Plan, PlanHash, PlannedStage, PlannedStep, Role, RunMeta,
    StateStore, StepRecord, StepState, Version,
};
use lockstep_store::{Durability, SqliteStore};

fn plan(steps: usize) -> Plan {
    Plan {
        playbook: Name::ident("e3-cluster").unwrap(),
        procedure: "E3-CLUSTER".into(),
        shape: Default::default(),
        invariants: Default::default(),
        target: Some(Version::new(6, 5, 7638, 2)),
        stages: vec![PlannedStage {
            name: "all".to_owned(),
            sites: vec![Name::ident("PRG").unwrap()],
            gate: Gate::None,
            max_parallel_sites: 1,
            failure_budget: None,
        }],
        steps: (0..steps)
            .map(|i| PlannedStep {
                id: format!("PRG-N1/step-{i}"),
                spec: Name::ident("reboot").unwrap(),
                name: format!("step {i}"),
                rule: "E3-CLUSTER.4".to_owned(),
                stage: 0,
                site: Name::ident("PRG").unwrap(),
                cluster: None,
                pool: None,
                host: Name::host("PRG-N1").unwrap(),
                role: Role::BackEnd,
                out_of_service: false,
                action: Action::Reboot,
                after: vec![],
                timeout_secs: 600,
                estimate_secs: 60,
            })
            .collect(),
        max_parallel_per_site: 1,
        failure_budget: FailureBudget::default(),
        hash: PlanHash("bench".to_owned()),
    }
}

fn put_step(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut group = c.benchmark_group("put_step");
    for (label, durability) in [("full", Durability::Full), ("normal", Durability::Normal)] {
        let store =
            SqliteStore::open_with(&dir.path().join(format!("{label}.db")), durability).unwrap();
        let run = store.create_run(&plan(40), &RunMeta::default()).unwrap();
        // A realistic record: a kilobyte of installer output.
        let output = "Setup is copying files...\r\n".repeat(40);
        let mut n: u32 = 0;
        group.bench_function(label, |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                let rec = StepRecord {
                    step: format!("PRG-N1/step-{}", n % 40),
                    state: StepState::Running,
                    attempts: n,
                    started_ms: Some(1_700_000_000_000),
                    finished_ms: None,
                    exit_code: None,
                    output: output.clone(),
                    message: String::new(),
                };
                store.put_step(&run, &rec).unwrap();
            })
        });
    }
    // The floor of a durable write on this disk: one 4 KiB append + fdatasync (FULL pays one per
    // commit; compare the ratio within one run, the disk is shared).
    let mut file = std::fs::File::create(dir.path().join("fsync-baseline")).unwrap();
    let page = vec![0u8; 4096];
    group.bench_function("fdatasync-baseline", |b| {
        b.iter(|| {
            use std::io::Write;
            file.write_all(&page).unwrap();
            file.sync_data().unwrap();
        })
    });
    group.finish();
}

// criterion's macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group! {
        name = benches;
        config = Criterion::default().sample_size(30);
        targets = put_step
    }
}
criterion_main!(group::benches);
