//! Protocol benchmark of the lab WinRM server: 2,000 hosts on loopback, one shell per host,
//! then short commands (Command `echo`, Receive until Done, Signal terminate: the three
//! requests a WinRM client sends per command) from many concurrent keep-alive connections.
//!
//! Reports commands per second (criterion's throughput, and a fixed run measured in the same
//! process), the time to start the 2,000 endpoints, and the process RSS. The client is a raw
//! HTTP/1.1 client (tests/common) so the client library is not what is measured.
//!
//! `cargo bench -p lockstep-lab --bench protocol`; `LAB_BENCH_HOSTS` and `LAB_BENCH_WORKERS`
//! change the host and concurrent-client counts.
#![allow(clippy::print_stdout, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::RawClient;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lockstep_lab::server::test_backend::TestBackend;
use lockstep_lab::server::{LabServer, ServerConfig};

const USER: &str = "bench";
const PASSWORD: &str = "bench-pw";

struct HostConn {
    client: RawClient,
    shell: String,
}

struct Fleet {
    runtime: tokio::runtime::Runtime,
    workers: Vec<Arc<tokio::sync::Mutex<Vec<HostConn>>>>,
    _server: LabServer,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// CPU time (user + system) this process has used, from `/proc/self/stat` (clock ticks of
/// 10 ms on Linux).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

fn setup() -> Fleet {
    let hosts = env_usize("LAB_BENCH_HOSTS", 2000);
    let workers = env_usize("LAB_BENCH_WORKERS", 64).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rss_before = rss_mib();
    let (server, workers) = runtime.block_on(async {
        let backend = Arc::new(TestBackend::new(hosts));
        let started = Instant::now();
        let config = ServerConfig {
            // The bench's raw client sends unsealed Basic requests: the weakened-node opt-in.
            allow_unencrypted: true,
            ..ServerConfig::with_credentials(USER, PASSWORD)
        };
        let server = LabServer::start(backend, config)
            .await
            .unwrap();
        let start_time = started.elapsed();
        let ports: Vec<u16> = server
            .endpoints()
            .values()
            .map(|url| url.rsplit(':').next().unwrap().trim_end_matches("/wsman").parse().unwrap())
            .collect();
        let rss_listening = rss_mib();
        let mut per_worker: Vec<Vec<HostConn>> = (0..workers).map(|_| Vec::new()).collect();
        let connected = Instant::now();
        for (i, port) in ports.iter().enumerate() {
            let mut client = RawClient::connect(*port, USER, PASSWORD).await.unwrap();
            let created = client.post(&common::create(Some(65001))).await.unwrap();
            assert_eq!(created.status, 200);
            let shell = common::element_text(&created.body, "ShellId").unwrap().to_owned();
            per_worker[i % workers].push(HostConn { client, shell });
        }
        println!(
            "lab bench: {hosts} hosts listening in {:.0} ms (RSS {:.1} -> {:.1} MiB); {hosts} connections + shells in {:.0} ms (RSS {:.1} MiB); {workers} concurrent clients",
            start_time.as_secs_f64() * 1000.0,
            rss_before,
            rss_listening,
            connected.elapsed().as_secs_f64() * 1000.0,
            rss_mib()
        );
        (
            server,
            per_worker
                .into_iter()
                .map(|w| Arc::new(tokio::sync::Mutex::new(w)))
                .collect(),
        )
    });
    Fleet {
        runtime,
        workers,
        _server: server,
    }
}

/// One short command on one host: Command, Receive (until Done), Signal terminate.
async fn one_command(host: &mut HostConn, n: u64) {
    let started = host
        .client
        .post(&common::command(&host.shell, &format!("echo {n}")))
        .await
        .unwrap();
    let id = common::element_text(&started.body, "CommandId")
        .unwrap()
        .to_owned();
    loop {
        let received = host
            .client
            .post(&common::receive(&host.shell, &id, "PT20S"))
            .await
            .unwrap();
        assert_eq!(received.status, 200);
        if received.body.contains("CommandState/Done") {
            break;
        }
    }
    let signalled = host
        .client
        .post(&common::terminate(&host.shell, &id))
        .await
        .unwrap();
    assert_eq!(signalled.status, 200);
}

/// Runs `total` commands spread over every worker; returns the elapsed time.
fn run_commands(fleet: &Fleet, total: u64) -> Duration {
    let workers = fleet.workers.len() as u64;
    fleet.runtime.block_on(async {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (w, hosts) in fleet.workers.iter().enumerate() {
            let share = total / workers + u64::from((w as u64) < total % workers);
            let hosts = hosts.clone();
            tasks.push(tokio::spawn(async move {
                let mut hosts = hosts.lock().await;
                let count = hosts.len();
                for n in 0..share {
                    let host = &mut hosts[n as usize % count];
                    one_command(host, n).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        started.elapsed()
    })
}

fn protocol(c: &mut Criterion) {
    let fleet = setup();
    // Warm-up, then a fixed run measured directly (same process, same fleet).
    run_commands(&fleet, 2_000);
    let fixed = 20_000u64;
    let cpu_before = cpu_seconds();
    let elapsed = run_commands(&fleet, fixed);
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "lab bench: {fixed} commands ({} requests) in {:.2} s = {:.0} commands/s, {:.0} requests/s; RSS {:.1} MiB",
        fixed * 3,
        elapsed.as_secs_f64(),
        fixed as f64 / elapsed.as_secs_f64(),
        3.0 * fixed as f64 / elapsed.as_secs_f64(),
        rss_mib()
    );
    // The machine is shared: CPU time is the load-independent cost (server AND client).
    println!(
        "lab bench: CPU {:.2} s for {fixed} commands = {:.0} µs CPU per command (server + raw client) = {:.0} commands per CPU-second; load average {}",
        cpu,
        cpu * 1e6 / fixed as f64,
        fixed as f64 / cpu.max(1e-9),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    let mut group = c.benchmark_group("lab_protocol");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    group.bench_function("short_command_2000_hosts", |b| {
        b.iter_custom(|iters| run_commands(&fleet, iters))
    });
    group.finish();
    println!("lab bench: RSS at end {:.1} MiB", rss_mib());
}

criterion_group!(benches, protocol);
criterion_main!(benches);
