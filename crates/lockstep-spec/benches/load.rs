//! Loading speed: the shipped lab inventory and playbooks, a generated 10,000-host fleet, and
//! flat estates of 10,000, 20,000 and 40,000 hosts (issue 10: loading must be linear in the
//! host count; 40,000 hosts took 7.3 s when the issue was filed). Run with
//! `cargo bench -p lockstep-spec --bench load`.
//!
//! Measured 2026-12-06 on the 2-core build machine, release profile, `load_inventory` of the flat
//! estate, best of 5 (CPU time is the steadier figure: the machine ran 5 builds at once, load
//! average 9 to 22, so wall time there was often several times the CPU time):
//!
//! | hosts | CPU before (e9f348a) | CPU now | wall now, least loaded run |
//! |---:|---:|---:|---:|
//! | 10,000 | 0.17 s | 0.09 s | 0.18 s |
//! | 20,000 | 0.38 s | 0.21 s | 0.39 s |
//! | 40,000 | 0.79 s | 0.50 s | 0.53 s |
//!
//! 40,000 hosts: 0.50 s of CPU, 14.6x less than the 7.3 s of the issue (1.6x less than e9f348a,
//! which had already removed the quadratic steps); peak memory 135 MB, was 208 MB (the 5 MB
//! inventory text included). `inventory_list` (what `lockstep inventory --list` prints) takes the
//! same time. With a templated `ansible_host` on every site group, rendered for each host: 0.66 s
//! of CPU for 40,000 (0.91 s before templates were compiled once per load).
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use lockstep_spec::{embedded, inventory_list, load_inventory, load_playbook, SourceFile};

/// 50 sites, each with 20 four-node clusters and 120 standalone servers: 10,000 hosts.
fn big_inventory() -> SourceFile {
    let mut y = String::from(
        "all:\n  vars:\n    ansible_user: u\n    lockstep_password_env: PW\n    exchange_version: \"2003\"\n  children:\n",
    );
    for s in 0..50 {
        y.push_str(&format!(
            "    site{s}:\n      vars:\n        lockstep_site: {{ locale: en-US }}\n      children:\n"
        ));
        for c in 0..20 {
            y.push_str(&format!(
                "        s{s}cl{c}:\n          vars:\n            exchange_role: back-end\n            lockstep_cluster: {{ name: S{s}CL{c}, virtual_servers: [{{ name: S{s}EVS{c}, owner: S{s}-C{c}-N0 }}] }}\n          hosts:\n"
            ));
            for n in 0..4 {
                y.push_str(&format!("            S{s}-C{c}-N{n}:\n"));
            }
        }
        y.push_str("      hosts:\n");
        for h in 0..120 {
            y.push_str(&format!(
                "        S{s}-H{h}: {{ exchange_role: standalone }}\n"
            ));
        }
    }
    SourceFile::new("big.yml", y)
}

/// `n` standalone Exchange hosts (DNS names in `ansible_host`): 1,000 per site group, every one also in one
/// big `patching` group (the shape that was quadratic). `templated`: each site group sets
/// `ansible_host: "{{ inventory_hostname | lower }}.contoso.com"` instead, rendered per host.
fn flat_estate(n: usize, templated: bool) -> SourceFile {
    let mut y = String::from(
        "all:\n  vars:\n    ansible_user: u\n    lockstep_password_env: PW\n    exchange_version: \"2003\"\n  children:\n",
    );
    for s in 0..n.div_ceil(1000) {
        y.push_str(&format!(
            "    site{s}:\n      vars:\n        lockstep_site: {{ locale: en-US }}\n"
        ));
        if templated {
            y.push_str("        ansible_host: \"{{ inventory_hostname | lower }}.contoso.com\"\n");
        }
        y.push_str("      hosts:\n");
        for h in s * 1000..((s + 1) * 1000).min(n) {
            if templated {
                y.push_str(&format!(
                    "        EX{h:05}: {{ exchange_role: standalone, ansible_port: 5986 }}\n"
                ));
            } else {
                y.push_str(&format!(
                    "        EX{h:05}: {{ ansible_host: ex{h:05}.site{s}.contoso.com, exchange_role: standalone, ansible_port: 5986 }}\n"
                ));
            }
        }
    }
    y.push_str("    patching:\n      hosts:\n");
    for h in 0..n {
        y.push_str(&format!("        EX{h:05}:\n"));
    }
    SourceFile::new("flat.yml", y)
}

fn bench(c: &mut Criterion) {
    let lab = embedded::lab_inventory();
    c.bench_function("lab inventory (53 hosts)", |b| {
        b.iter(|| load_inventory(std::slice::from_ref(&lab)).unwrap())
    });
    let fleet = load_inventory(std::slice::from_ref(&lab)).unwrap();
    let books = embedded::playbooks();
    c.bench_function("nine shipped playbooks", |b| {
        b.iter(|| {
            for f in &books {
                load_playbook(f, &fleet).unwrap();
            }
        })
    });
    let big = big_inventory();
    let mut g = c.benchmark_group("large");
    g.sample_size(10);
    g.bench_function("10,000 hosts, 1,000 clusters", |b| {
        b.iter(|| load_inventory(std::slice::from_ref(&big)).unwrap())
    });
    g.finish();
    let mut g = c.benchmark_group("hosts");
    g.sample_size(10);
    for n in [10_000, 20_000, 40_000] {
        let f = flat_estate(n, false);
        g.bench_function(format!("load_inventory {n}"), |b| {
            b.iter(|| {
                let fleet = load_inventory(std::slice::from_ref(&f)).unwrap();
                assert_eq!(fleet.hosts.len(), n);
            })
        });
        g.bench_function(format!("inventory_list {n}"), |b| {
            b.iter(|| inventory_list(std::slice::from_ref(&f)).unwrap())
        });
    }
    let f = flat_estate(40_000, true);
    g.bench_function("load_inventory 40000, templated ansible_host", |b| {
        b.iter(|| {
            let fleet = load_inventory(std::slice::from_ref(&f)).unwrap();
            assert_eq!(fleet.hosts[0].connection.address, "ex00000.contoso.com");
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
