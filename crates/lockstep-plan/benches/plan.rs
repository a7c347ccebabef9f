//! Planning 10,000 hosts in 2,000 five-node E3 clusters across 50 sites (target: under 1 s).
//!
//! `cargo bench -p lockstep-plan` (criterion). Peak memory: `cargo run --release -p
//! lockstep-plan --example peak_rss`.
#![allow(missing_docs)]

#[path = "../tests/fixtures/mod.rs"]
mod fixtures;

use criterion::{criterion_group, criterion_main, Criterion};
use lockstep_plan::{plan, plan_hash, PlanOptions};

fn bench(c: &mut Criterion) {
    let fleet = fixtures::big_e3_fleet(50, 40, 5);
    assert_eq!(fleet.hosts.len(), 10_000);
    let pb = fixtures::e3_cluster(&fleet);
    let opts = PlanOptions::default();
    let p = plan(&fleet, &pb, &opts).unwrap();
    assert_eq!(p.steps.len(), 114_000);
    let mut g = c.benchmark_group("plan");
    g.sample_size(10);
    g.bench_function("e3-cluster 10k hosts / 2k clusters / 50 sites", |b| {
        b.iter(|| plan(&fleet, &pb, &opts).unwrap())
    });
    g.bench_function("plan_hash of that plan", |b| b.iter(|| plan_hash(&p)));
    g.bench_function("render_text of that plan", |b| {
        b.iter(|| lockstep_plan::render_text(&p))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
