//! Shared helpers of the model tests: fleets built in code, a command runner.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lockstep_core::{
    Auth, Cluster, ClusterMode, Connection, Edition, Exchange, Fleet, FrontEndScope, Host, Locale,
    Name, Product, Role, Scheme, SecretSource, Site, Version, VirtualServer, WindowsRelease,
};
use lockstep_lab::backend::{Availability, Backend, ProcessEvent};
use lockstep_lab::model::{LabConfig, World};
use lockstep_lab::record::Recorder;

pub const SP2: Version = Version::new(6, 5, 7638, 2);
pub const SP1: Version = Version::new(6, 5, 7226, 6);
pub const SP2_PACKAGE: &str = r"\\fs01\install$\E2K3SP2\setup\i386\update.exe";
pub const IIS_PACKAGE: &str = r"\\fs01\install$\KB831464\WindowsServer2003-KB831464-x86-ENU.exe";

pub fn host(name: &str, site: &str, role: Role, product: Product, build: Version) -> Host {
    Host {
        name: Name::host(name).unwrap(),
        site: Name::ident(site).unwrap(),
        exchange: Some(Exchange {
            role,
            product,
            edition: Edition::Enterprise,
            build: Some(build),
        }),
        windows: Some(WindowsRelease::Windows2003),
        os_build: None,
        cluster: None,
        pool: None,
        connection: Connection {
            address: name.to_owned(),
            port: 5985,
            scheme: Scheme::Http,
            auth: Auth::Ntlm,
            user: "LAB\\admin".to_owned(),
            password: SecretSource::Env("LAB_PW".to_owned()),
            verify_tls: true,
            allow_basic_over_http: false,
            codepage: None,
            ca_trust_path: None,
        },
        groups: vec![],
        vars: BTreeMap::new(),
    }
}

/// One cluster `CL1` of `n` nodes `N1..Nn` at SP1 in site `site` (locale), with `evs` EVSs
/// `EVS1..` in groups `EVS1 Group..`, EVS i owned by node `2i-1` (N1, N3, ...), the cluster
/// group on N1.
pub fn cluster_fleet(n: usize, evs: usize, locale: Locale) -> Fleet {
    let site = "site1";
    let names: Vec<String> = (1..=n).map(|i| format!("N{i}")).collect();
    let mut hosts: Vec<Host> = names
        .iter()
        .map(|nm| {
            let mut h = host(nm, site, Role::BackEnd, Product::Exchange2003, SP1);
            h.cluster = Some(Name::object("CL1").unwrap());
            h
        })
        .collect();
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    let vs = (1..=evs)
        .map(|i| VirtualServer {
            name: Name::object(&format!("EVS{i}")).unwrap(),
            group: Name::object(&format!("EVS{i} Group")).unwrap(),
            owner: Name::host(&names[(2 * (i - 1)) % n]).unwrap(),
            build: Some(SP1),
        })
        .collect();
    Fleet {
        organisation: "Lab".to_owned(),
        sites: vec![Site {
            name: Name::ident(site).unwrap(),
            locale,
            description: None,
            rollout_order: None,
        }],
        hosts,
        clusters: vec![Cluster {
            name: Name::object("CL1").unwrap(),
            site: Name::ident(site).unwrap(),
            nodes: names.iter().map(|n| Name::host(n).unwrap()).collect(),
            mode: ClusterMode::ActivePassive,
            cluster_group: Name::object("Cluster Group").unwrap(),
            cluster_group_owner: Name::host("N1").unwrap(),
            virtual_servers: vs,
            groups: Vec::new(),
        }],
        pools: vec![],
        groups: BTreeMap::new(),
        front_end_scope: FrontEndScope::Organisation,
    }
}

/// A fast config for tests: an installer of 1200 s takes 0.12 s.
pub fn fast() -> LabConfig {
    LabConfig {
        time_scale: 0.0001,
        start_wall_ms: Some(1_795_248_691_000),
        ..LabConfig::default()
    }
}

pub fn world(fleet: &Fleet, config: LabConfig) -> Arc<World> {
    World::new(fleet, config, Recorder::in_memory())
}

/// What a finished command left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Runs `line` on `host` and collects its events until the exit (bounded: 10 s).
pub async fn run(w: &World, host: &str, line: &str) -> Run {
    collect(w.start(host, line), host, line).await
}

/// Runs `line` in a WinRM session that holds delegable credentials or not (the double hop).
pub async fn run_in(w: &World, host: &str, line: &str, delegable: bool) -> Run {
    collect(w.start_in_session(host, line, delegable), host, line).await
}

/// Collects a started process's events until its exit (bounded: 10 s).
async fn collect(mut p: lockstep_lab::backend::ProcessHandle, host: &str, line: &str) -> Run {
    let mut r = Run {
        stdout: String::new(),
        stderr: String::new(),
        code: i32::MIN,
    };
    let collect = async {
        while let Some(ev) = p.events.recv().await {
            match ev {
                ProcessEvent::Stdout(s) => r.stdout.push_str(&s),
                ProcessEvent::Stderr(s) => r.stderr.push_str(&s),
                ProcessEvent::Exit(c) => {
                    r.code = c;
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .unwrap_or_else(|_| panic!("`{line}` on {host} did not exit"));
    r
}

/// Runs and asserts exit 0.
pub async fn ok(w: &World, host: &str, line: &str) -> Run {
    let r = run(w, host, line).await;
    assert_eq!(r.code, 0, "`{line}` on {host}: {r:?}");
    r
}

/// Waits (bounded) until `host` went down and came back with a new boot epoch.
pub async fn wait_rebooted(w: &World, host: &str, epoch_before: u64) {
    let wait = async {
        loop {
            if w.availability(host) == Availability::Up && w.boot_epoch(host) > epoch_before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("{host} did not come back"));
}

/// The value of `prop` in the single object a WQL query returns.
pub fn wql_one(w: &World, host: &str, ns: &str, q: &str, prop: &str) -> String {
    let rows = w.wql(host, ns, q).unwrap();
    assert_eq!(rows.len(), 1, "{q}: {rows:?}");
    rows[0][prop].clone()
}
