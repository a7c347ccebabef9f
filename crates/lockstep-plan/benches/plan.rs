//! Planning 10,000 hosts in 2,000 five-node E3 clusters across 50 sites (target: under 1 s).
//!
//! `cargo bench -p lockstep-plan` (criterion). Two groups: `plan` measures wall time, which
//! on a shared machine depends on everyone else's load; `plan-cpu` measures the CPU time of
//! the benchmarking thread (`/proc/thread-self/schedstat`, nanoseconds), which does not.
//! Peak memory: `cargo run --release -p lockstep-plan --example peak_rss`.
#![allow(missing_docs)]

#[path = "../tests/fixtures/mod.rs"]
mod fixtures;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lockstep_plan::{plan, plan_hash, render_text, PlanOptions};

/// CPU time of the current thread, nanoseconds (Linux).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A criterion measurement of thread CPU time.
struct CpuTime;

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical >= 1e9 {
            (1e9, "s (cpu)")
        } else if typical >= 1e6 {
            (1e6, "ms (cpu)")
        } else if typical >= 1e3 {
            (1e3, "µs (cpu)")
        } else {
            (1.0, "ns (cpu)")
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }

    fn scale_throughputs(&self, _: f64, _: &Throughput, _: &mut [f64]) -> &'static str {
        "elements"
    }

    fn scale_for_machines(&self, _: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

fn bench_with<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let fleet = fixtures::big_e3_fleet(50, 40, 5);
    assert_eq!(fleet.hosts.len(), 10_000);
    let pb = fixtures::e3_cluster(&fleet);
    let opts = PlanOptions::default();
    let p = plan(&fleet, &pb, &opts).unwrap();
    assert_eq!(p.steps.len(), 114_000);
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.bench_function("e3-cluster 10k hosts / 2k clusters / 50 sites", |b| {
        // The plan is dropped outside the measurement: planning, not freeing, is measured.
        b.iter_with_large_drop(|| plan(&fleet, &pb, &opts).unwrap())
    });
    g.bench_function("plan_hash of that plan", |b| b.iter(|| plan_hash(&p)));
    g.bench_function("render_text of that plan", |b| b.iter(|| render_text(&p)));
    g.finish();
}

fn wall(c: &mut Criterion) {
    bench_with(c, "plan");
}

fn cpu(c: &mut Criterion<CpuTime>) {
    bench_with(c, "plan-cpu");
}

criterion_group!(wall_time, wall);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(CpuTime);
    targets = cpu
}
criterion_main!(wall_time, cpu_time);
