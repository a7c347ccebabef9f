//! The shipped playbooks take their sites and groups from the inventory (issue 8): `lockstep
//! check -i THEIR-INVENTORY.yml` passes for another organisation's fleet, whose sites, groups,
//! clusters and hosts share no name with the lab's. The inventories are built here, for several
//! site layouts, each holding something every shipped playbook applies to (every KB 328839
//! topology, a Windows Server failover cluster and plain servers).

use std::fmt::Write;

use crate::util::{code, run, text};

/// One Exchange or Windows host line of a generated inventory.
fn host(name: &str, vars: &str) -> String {
    format!(
        "            {name}: {{ ansible_host: {}.corp.fabrikam.example{vars} }}\n",
        name.to_ascii_lowercase()
    )
}

/// A cluster group (`lockstep_cluster`) of `nodes` with its Exchange virtual servers.
#[allow(clippy::too_many_arguments)]
fn cluster(
    out: &mut String,
    group: &str,
    name: &str,
    mode: &str,
    version: &str,
    build: &str,
    windows: &str,
    nodes: &[String],
    evs: usize,
) {
    let _ = writeln!(out, "        {group}:\n          vars:");
    if !version.is_empty() {
        let _ = writeln!(
            out,
            "            exchange_version: \"{version}\"\n            exchange_role: back-end\n            exchange_edition: enterprise"
        );
    }
    let _ = writeln!(
        out,
        "            windows_release: \"{windows}\"\n            lockstep_cluster:\n              name: {name}\n              mode: {mode}\n              cluster_group: {{ name: Cluster Group, owner: {} }}",
        nodes[0]
    );
    if version.is_empty() {
        let _ = writeln!(
            out,
            "              groups:\n                - {{ name: {name}-FS, kind: file-server, owner: {} }}",
            nodes[0]
        );
    } else {
        let _ = writeln!(out, "              virtual_servers:");
        for i in 0..evs {
            let _ = writeln!(
                out,
                "                - {{ name: {name}V{i}, group: {name}V{i} Group, owner: {}, build: {build} }}",
                nodes[i % nodes.len()]
            );
        }
    }
    let _ = writeln!(out, "          hosts:");
    for n in nodes {
        let vars = if version.is_empty() {
            ", windows_build: 10.0.17763.5458".to_owned()
        } else {
            format!(", exchange_build: {build}")
        };
        out.push_str(&host(n, &vars));
    }
}

/// An inventory of organisation `org` (its hosts' prefix) over `sites`, every topology placed
/// round-robin over the sites, product groups named `{org}_*` (none of the lab's names).
fn inventory(org: &str, sites: &[(&str, &str)], ordered: bool) -> String {
    let o = org.to_ascii_uppercase();
    // (site index, kind)
    let kinds = [
        "e3-cluster",
        "e3-pool",
        "e3-fe",
        "e3-be",
        "e3-nc",
        "e3-sbs",
        "e2-ap",
        "e2-aa",
        "e2-fe",
        "e2-be",
        "e2-nc",
        "e5-cluster",
        "e5-nc",
        "wsfc",
        "plain",
    ];
    let mut per_site: Vec<Vec<&str>> = vec![Vec::new(); sites.len()];
    for (i, k) in kinds.iter().enumerate() {
        per_site[i % sites.len()].push(k);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "all:\n  vars:\n    ansible_connection: winrm\n    ansible_user: 'FABRIKAM\\svc-patch'\n    lockstep_password_env: FABRIKAM_PASSWORD\n    lockstep_organisation: {org}\n    package_root: /srv/fabrikam/packages\n  children:"
    );
    for (si, (site, locale)) in sites.iter().enumerate() {
        let _ = writeln!(
            out,
            "    {site}:\n      vars:\n        lockstep_site:\n          locale: {locale}"
        );
        if ordered {
            // The reverse of name order: counts follow `rollout_order`, not names.
            let _ = writeln!(out, "          rollout_order: {}", sites.len() - si);
        }
        let _ = writeln!(out, "      children:");
        let p = format!("{o}{si}");
        for k in &per_site[si] {
            let g = format!("{}_{si}_{}", org, k.replace('-', "_"));
            let nodes = |tag: &str, n: usize| -> Vec<String> {
                (1..=n).map(|i| format!("{p}-{tag}{i}")).collect()
            };
            match *k {
                "e3-cluster" => cluster(
                    &mut out,
                    &g,
                    &format!("{p}C3"),
                    "active-passive",
                    "2003",
                    "6.5.7226.6",
                    "2003",
                    &nodes("C3N", 3),
                    2,
                ),
                "e2-ap" => cluster(
                    &mut out,
                    &g,
                    &format!("{p}C2P"),
                    "active-passive",
                    "2000",
                    "6.0.5762.4",
                    "2000",
                    &nodes("C2P", 2),
                    1,
                ),
                "e2-aa" => cluster(
                    &mut out,
                    &g,
                    &format!("{p}C2A"),
                    "active-active",
                    "2000",
                    "6.0.5762.4",
                    "2000",
                    &nodes("C2A", 2),
                    2,
                ),
                "e5-cluster" => cluster(
                    &mut out,
                    &g,
                    &format!("{p}C5"),
                    "active-passive",
                    "5.5",
                    "5.5.2650.24",
                    "2000",
                    &nodes("C5N", 2),
                    1,
                ),
                "wsfc" => cluster(
                    &mut out,
                    &g,
                    &format!("{p}WS"),
                    "active-passive",
                    "",
                    "",
                    "2019",
                    &nodes("WS", 3),
                    0,
                ),
                "e3-pool" => {
                    let _ = writeln!(
                        out,
                        "        {g}:\n          vars:\n            exchange_version: \"2003\"\n            windows_release: \"2003\"\n            exchange_role: front-end\n            lockstep_pool: {{ name: {p}-WEB }}\n          hosts:"
                    );
                    for n in nodes("WEB", 2) {
                        out.push_str(&host(&n, ", exchange_build: 6.5.7226.6"));
                    }
                }
                single => {
                    let (version, windows, build, role, tag) = match single {
                        "e3-fe" => ("2003", "2003", "6.5.6944.4", "front-end", "FE3"),
                        "e3-be" => ("2003", "2003", "6.5.7226.6", "back-end", "BE3"),
                        "e3-nc" => ("2003", "2003", "6.5.7226.6", "standalone", "EX3"),
                        "e3-sbs" => ("2003", "2003", "6.5.7226.6", "sbs", "SBS3"),
                        "e2-fe" => ("2000", "2000", "6.0.5762.4", "front-end", "FE2"),
                        "e2-be" => ("2000", "2000", "6.0.5762.4", "back-end", "BE2"),
                        "e2-nc" => ("2000", "2000", "6.0.5762.4", "standalone", "EX2"),
                        "e5-nc" => ("5.5", "nt4", "5.5.2650.24", "standalone", "EX5"),
                        _ => ("", "2022", "", "", "APP"),
                    };
                    let _ = writeln!(out, "        {g}:\n          vars:");
                    if version.is_empty() {
                        let _ = writeln!(
                            out,
                            "            windows_release: \"{windows}\"\n            windows_build: 10.0.20348.2227"
                        );
                    } else {
                        let _ = writeln!(
                            out,
                            "            exchange_version: \"{version}\"\n            windows_release: \"{windows}\"\n            exchange_role: {role}"
                        );
                    }
                    let _ = writeln!(out, "          hosts:");
                    let n = if version.is_empty() { 4 } else { 1 };
                    for h in nodes(tag, n) {
                        let vars = if version.is_empty() {
                            String::new()
                        } else {
                            format!(", exchange_build: {build}")
                        };
                        out.push_str(&host(&h, &vars));
                    }
                }
            }
        }
    }
    out
}

/// `lockstep check -i INVENTORY` with no playbook named checks every shipped playbook.
fn check_all(inventory: &str) {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("fabrikam.yml");
    std::fs::write(&inv, inventory).unwrap();
    let o = run(dir.path(), &["check", "-i", inv.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}\n--- inventory\n{inventory}", text(&o));
}

#[test]
fn every_shipped_playbook_checks_on_another_organisations_inventory() {
    let lab_names = [
        "seattle",
        "prague",
        "milan",
        "amsterdam",
        "tokyo",
        "exchange2003",
        "exchange2000",
        "exchange55",
        "own_service_pack",
    ];
    let layouts: [&[(&str, &str)]; 3] = [
        &[
            ("lisboa", "pt-PT"),
            ("oslo", "nb-NO"),
            ("denver", "en-US"),
            ("wien", "de-AT"),
        ],
        &[("hq", "en-GB")],
        &[
            ("zz_last", "fr-FR"),
            ("aa_first", "es-ES"),
            ("mm_mid", "sv-SE"),
            ("bb", "pl-PL"),
            ("cc", "da-DK"),
            ("dd", "fi-FI"),
        ],
    ];
    for (i, sites) in layouts.iter().enumerate() {
        for ordered in [false, true] {
            let inv = inventory(&format!("fab{i}"), sites, ordered);
            for name in lab_names {
                assert!(!inv.contains(name), "`{name}` is a lab name");
            }
            check_all(&inv);
        }
    }
}

/// The counted stages follow the inventory's `rollout_order`: on the lab, `sites: 1` is the
/// head office (Seattle, rollout order 1) and `sites: 2` Prague and Milan, whatever their names
/// sort as; on a fleet without any order, the first site by name.
#[test]
fn counted_stages_follow_the_inventorys_rollout_order() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["plan", "e3-cluster"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("`canary` (") && out.contains("): seattle\n"),
        "{out}"
    );
    assert!(
        out.contains("`wave-1` (") && out.contains("): prague\n"),
        "{out}"
    );

    let inv = dir.path().join("fabrikam.yml");
    std::fs::write(
        &inv,
        inventory(
            "fab",
            &[("oslo", "nb-NO"), ("bergen", "nb-NO"), ("alta", "nb-NO")],
            false,
        ),
    )
    .unwrap();
    let o = run(
        dir.path(),
        &["plan", "-i", inv.to_str().unwrap(), "e3-cluster"],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    // No rollout order: by name. The canary is alta, which holds no 2003 cluster (left out);
    // `sites: 2` takes bergen and oslo, where the cluster is.
    assert!(!out.contains("`canary`"), "{out}");
    assert!(
        out.contains("`wave-1` (") && out.contains("): oslo\n"),
        "{out}"
    );
    assert!(!out.contains("`wave-2`"), "{out}");
}
