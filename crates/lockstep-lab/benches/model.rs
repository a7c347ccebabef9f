//! The model at fleet scale: 2,000 hosts (1,000 two-node clusters). Measures building the
//! world, answering a console command, a WQL query, a cluster move, and checking the records.
//! Run: `cargo bench -p lockstep-lab --bench model`.
#![allow(missing_docs)]

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion};
use lockstep_core::{
    Auth, Cluster, ClusterMode, Connection, Edition, Exchange, Fleet, FrontEndScope, Host, Locale,
    Name, Product, Role, Scheme, SecretSource, Site, Version, VirtualServer, WindowsRelease,
};
use lockstep_lab::backend::{Backend, ProcessEvent};
use lockstep_lab::model::{LabConfig, World};
use lockstep_lab::record::Recorder;
use lockstep_lab::verify::verify;

const SP1: Version = Version::new(6, 5, 7226, 6);

fn fleet(clusters: usize) -> Fleet {
    let mut hosts = Vec::new();
    let mut cls = Vec::new();
    for c in 0..clusters {
        let names = [format!("C{c}N1"), format!("C{c}N2")];
        for n in &names {
            hosts.push(Host {
                name: Name::host(n).unwrap(),
                site: Name::ident("s").unwrap(),
                exchange: Some(Exchange {
                    role: Role::BackEnd,
                    product: Product::Exchange2003,
                    edition: Edition::Enterprise,
                    build: Some(SP1),
                }),
                windows: Some(WindowsRelease::Windows2003),
                os_build: None,
                cluster: Some(Name::object(&format!("CL{c}")).unwrap()),
                pool: None,
                connection: Connection {
                    address: n.clone(),
                    port: 5985,
                    scheme: Scheme::Http,
                    auth: Auth::Ntlm,
                    user: "u".into(),
                    password: SecretSource::Prompt,
                    verify_tls: true,
                    allow_basic_over_http: false,
                    codepage: None,
                    ca_trust_path: None,
                },
                groups: vec![],
                vars: BTreeMap::new(),
            });
        }
        cls.push(Cluster {
            name: Name::object(&format!("CL{c}")).unwrap(),
            site: Name::ident("s").unwrap(),
            nodes: names.iter().map(|n| Name::host(n).unwrap()).collect(),
            mode: ClusterMode::ActivePassive,
            cluster_group: Name::object("Cluster Group").unwrap(),
            cluster_group_owner: Name::host(&names[0]).unwrap(),
            virtual_servers: vec![VirtualServer {
                name: Name::object(&format!("EVS{c}")).unwrap(),
                group: Name::object(&format!("EVS{c} Group")).unwrap(),
                owner: Name::host(&names[0]).unwrap(),
                build: Some(SP1),
            }],
            groups: Vec::new(),
        });
    }
    Fleet {
        organisation: "Bench".into(),
        sites: vec![Site {
            name: Name::ident("s").unwrap(),
            locale: Locale::EN_US,
            description: None,
            rollout_order: None,
        }],
        hosts,
        clusters: cls,
        pools: vec![],
        groups: BTreeMap::new(),
        front_end_scope: FrontEndScope::Organisation,
    }
}

fn exit_of(w: &World, host: &str, line: &str) -> i32 {
    let mut p = w.start(host, line);
    loop {
        match p.events.try_recv() {
            Ok(ProcessEvent::Exit(c)) => return c,
            Ok(_) => {}
            Err(_) => return i32::MIN,
        }
    }
}

fn bench(c: &mut Criterion) {
    let f = fleet(1000);
    c.bench_function("world_new_2000_hosts", |b| {
        b.iter(|| World::new(&f, LabConfig::default(), Recorder::null()))
    });
    let w = World::new(&f, LabConfig::default(), Recorder::null());
    let mut i = 0usize;
    c.bench_function("sc_query_2000_hosts", |b| {
        b.iter(|| {
            i = (i + 1) % 1000;
            exit_of(&w, &format!("C{i}N1"), "sc query \"W3SVC\"")
        })
    });
    c.bench_function("wql_cluster_resources", |b| {
        b.iter(|| {
            w.wql(
                "C500N1",
                "root/MSCluster",
                "SELECT Name, Type, State FROM MSCluster_Resource",
            )
            .unwrap()
        })
    });
    let mut flip = false;
    c.bench_function("cluster_group_move", |b| {
        b.iter(|| {
            flip = !flip;
            let to = if flip { "C7N2" } else { "C7N1" };
            exit_of(
                &w,
                "C7N1",
                &format!("cluster group \"Cluster Group\" /moveto:{to} /wait:120"),
            )
        })
    });
    // Records of every node's Cluster service going down and up once.
    let rec = Recorder::in_memory();
    let w = World::new(&f, LabConfig::default(), rec.clone());
    for c in 0..1000 {
        for n in ["N2", "N1"] {
            let h = format!("C{c}{n}");
            exit_of(&w, &h, "net stop clussvc");
            exit_of(&w, &h, "net start clussvc");
        }
    }
    let records = rec.records();
    c.bench_function(&format!("verify_{}_records", records.len()), |b| {
        b.iter(|| verify(&records))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
