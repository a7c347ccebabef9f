//! Mean time of one short command through `WinrmTransport` against the lab server on loopback:
//! with the pooled shell (the normal path), and with a new shell per command (`reset` before
//! each run), for NTLM and Basic. The ratio shows what shell reuse saves per command.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use lockstep_core::{Auth, Name, Transport};
use lockstep_lab::server::test_backend::TestBackend;
use lockstep_lab::server::{LabServer, ServerConfig};
use lockstep_winrm::{Limits, NodeTarget, Secret, WinrmTransport};

const USER: &str = "labadmin";
const PASSWORD: &str = "Bench-Pass-1";

fn roundtrip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async {
        LabServer::start(
            Arc::new(TestBackend::new(1)),
            // Basic over HTTP needs the weakened-node opt-in; NTLM is sealed either way.
            ServerConfig {
                allow_unencrypted: true,
                ..ServerConfig::with_credentials(USER, PASSWORD)
            },
        )
        .await
        .unwrap()
    });
    let url = server.endpoints()["NODE1"].clone();
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let node = Name::host("NODE1").unwrap();
    let mut group = c.benchmark_group("run_echo");
    for auth in [Auth::Ntlm, Auth::Basic] {
        let mut t = NodeTarget::new(node.clone(), "127.0.0.1", USER, Secret::new(PASSWORD));
        t.port = port;
        t.auth = auth;
        t.allow_basic_over_http = true;
        let tr = WinrmTransport::new(vec![t], Limits::default()).unwrap();
        let label = format!("{auth:?}").to_lowercase();
        group.bench_function(format!("{label}/pooled-shell"), |b| {
            b.iter(|| {
                rt.block_on(tr.run(&node, "echo x", Duration::from_secs(30)))
                    .unwrap()
            })
        });
        group.bench_function(format!("{label}/new-shell"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    tr.reset(&node).await;
                    tr.run(&node, "echo x", Duration::from_secs(30)).await
                })
                .unwrap()
            })
        });
        rt.block_on(tr.close());
    }
    group.finish();
    rt.block_on(server.shutdown());
}

// criterion's macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group! {
        name = benches;
        config = Criterion::default().sample_size(20);
        targets = roundtrip
    }
}
criterion_main!(group::benches);
