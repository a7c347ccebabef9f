//! Rendering time of the HTML and Markdown reports for fleets of 50 and 1,000 hosts
//! (E3-CLUSTER, finished runs): `cargo bench -p lockstep-report`.

use criterion::{criterion_group, criterion_main, Criterion};

#[allow(dead_code)]
#[path = "../tests/report/fixture.rs"]
mod fixture;

fn render(c: &mut Criterion) {
    let mut g = c.benchmark_group("report");
    g.sample_size(10);
    for (name, clusters, per) in [("50-hosts", 25, 2), ("1000-hosts", 250, 4)] {
        let run = fixture::simulate(
            fixture::plan(&fixture::fleet(clusters, per), &["canary", "wave-1"]),
            |_| fixture::Outcome::Ok,
            None,
        );
        g.bench_function(format!("html/{name}"), |b| {
            b.iter(|| lockstep_report::html(std::hint::black_box(&run)))
        });
        g.bench_function(format!("markdown/{name}"), |b| {
            b.iter(|| lockstep_report::markdown(std::hint::black_box(&run)))
        });
    }
    g.finish();
}

// The macro's generated function has no doc comment.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, render);
}
use group::benches;
criterion_main!(benches);
