//! The two shipped playbooks written with the generic steps only (issue 8), rehearsed on the lab
//! serving `inventory/windows-lab.yml` (plain Windows servers and a Server 2019 failover cluster
//! with a file server and a SQL Server instance; no Exchange):
//! - `cau-cluster`: per node, drain, `wusa.exe`, restart, wait for the OS build and UBR, resume
//!   with failback, roles online; one node out of service at a time, quorum kept;
//! - `hotfix-waves`: a hotfix over the 20 standalone servers in waves of 1, 10% and 50% with a
//!   health stage between waves.
//!
//! Each passes end to end with the lab's verifier reporting 0 violations, installs once per node,
//! changes nothing when run again, and survives SIGKILLs of the controller at random points.

use rand::SeedableRng;

use crate::util::{code, crash_seed, text, windows_lab_inventory, Lab};

/// The cluster's nodes and standalone servers of `inventory/windows-lab.yml`.
const CLUSTER_NODES: [&str; 3] = ["AMS-WS01", "AMS-WS02", "AMS-WS03"];
const STANDALONE: usize = 20;

/// The lab's record events of `kind` as (host, event) pairs, in record order.
fn events(lab: &Lab, kind: &str) -> Vec<(String, serde_json::Value)> {
    lab.records()
        .into_iter()
        .filter(|r| r["event"] == kind)
        .map(|r| (r["host"].as_str().unwrap_or_default().to_owned(), r))
        .collect()
}

/// Asserts the cluster was patched one node at a time: each node paused (drained) and resumed
/// exactly once per install, never two paused together, and its installer ran while it was
/// paused.
fn assert_one_node_at_a_time(lab: &Lab) {
    let mut paused: Option<String> = None;
    let mut rounds: Vec<String> = Vec::new();
    for r in lab.records() {
        let host = r["host"].as_str().unwrap_or_default().to_owned();
        match r["event"].as_str() {
            Some("node-paused") if r["paused"] == true => {
                assert!(
                    paused.is_none() || paused.as_deref() == Some(&host),
                    "`{host}` paused while `{paused:?}` was: {r}"
                );
                if paused.is_none() {
                    rounds.push(host.clone());
                }
                paused = Some(host);
            }
            Some("node-paused") => {
                assert_eq!(paused.as_deref(), Some(host.as_str()), "{r}");
                paused = None;
            }
            Some("install-started") => {
                assert_eq!(
                    paused.as_deref(),
                    Some(host.as_str()),
                    "installer on `{host}` while it was not drained: {r}"
                );
            }
            _ => {}
        }
    }
    assert!(paused.is_none(), "`{paused:?}` left paused");
    let mut seen = rounds.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, CLUSTER_NODES, "paused rounds: {rounds:?}");
}

#[test]
fn cau_cluster_updates_each_node_in_turn_with_its_roles_online() {
    let inv = windows_lab_inventory();
    let lab = Lab::start_inventory(&inv, None);
    let plan = lab.run(&["plan", "-i", inv.to_str().unwrap(), "cau-cluster"]);
    assert_eq!(code(&plan), 0, "{}", text(&plan));
    let o = lab.rollout_on(&inv, "cau-cluster", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    lab.assert_invariants();
    lab.assert_each_installer_once("cau-cluster");
    let installs = lab.installs();
    let hosts: Vec<&str> = installs.keys().map(|(h, _)| h.as_str()).collect();
    assert_eq!(hosts, CLUSTER_NODES, "{installs:?}");
    assert!(installs
        .keys()
        .all(|(_, p)| p.ends_with("windows10.0-kb5035849-x64.msu")));
    assert_one_node_at_a_time(&lab);
    // Each node restarted for the update (wusa's 3010), while drained.
    assert_eq!(events(&lab, "reboot-started").len(), 3);
    // The roles ended where they began: failback brought each drained group home.
    let moved = events(&lab, "group-moved");
    assert!(!moved.is_empty(), "the drains moved no group");
    // Run again: every node is at the target, nothing is drained or installed.
    let pauses = events(&lab, "node-paused").len();
    let again = lab.rollout_on(&inv, "cau-cluster", &[]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert!(text(&again).contains("already holds"), "{}", text(&again));
    assert_eq!(lab.installs(), installs);
    assert_eq!(events(&lab, "node-paused").len(), pauses);
    lab.assert_invariants();
}

#[test]
fn hotfix_waves_patches_the_standalone_servers_in_waves_with_health_stages() {
    let inv = windows_lab_inventory();
    let lab = Lab::start_inventory(&inv, None);
    let o = lab.rollout_on(&inv, "hotfix-waves", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = text(&o);
    // 20 servers: waves of 1, 2 (10%), 10 (50%) and the 7 left.
    for stage in [
        "wave-1",
        "health-before-wave-2",
        "wave-2",
        "health-before-wave-3",
        "wave-3",
        "health-before-wave-4",
        "wave-4",
    ] {
        assert!(out.contains(&format!("== stage {stage}")), "{stage}: {out}");
    }
    assert!(!out.contains("wave-5"), "{out}");
    lab.assert_invariants();
    lab.assert_each_installer_once("hotfix-waves");
    let installs = lab.installs();
    assert_eq!(installs.len(), STANDALONE, "{installs:?}");
    assert!(
        installs
            .keys()
            .all(|(h, _)| !CLUSTER_NODES.contains(&h.as_str())),
        "a cluster node was taken as a standalone server: {installs:?}"
    );
    // The canary finished before any other server's installer started.
    let started = events(&lab, "install-started");
    let finished = events(&lab, "install-finished");
    let canary = &started[0].0;
    let canary_done = lab
        .records()
        .iter()
        .position(|r| r["event"] == "install-finished" && r["host"] == canary.as_str())
        .expect("the canary's installer finished");
    let second = lab
        .records()
        .iter()
        .position(|r| r["event"] == "install-started" && r["host"] != canary.as_str())
        .expect("other servers installed");
    assert!(
        canary_done < second,
        "wave 2 started before the canary finished"
    );
    assert_eq!(finished.len(), STANDALONE);
    // Run again: the hotfix is everywhere, no installer runs.
    let again = lab.rollout_on(&inv, "hotfix-waves", &[]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(lab.installs(), installs);
    lab.assert_invariants();
}

#[test]
fn cau_cluster_survives_sigkill_and_resume_without_repeating_an_installer() {
    let seed = crash_seed("cau-cluster crash test");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let inv = windows_lab_inventory();
    // Simulated installs and restarts long enough for kills to land inside them.
    let lab = Lab::start_inventory(&inv, Some("time_scale: 0.001\n"));
    let args = Lab::run_args_on(&inv, "cau-cluster");
    let what = format!("cau-cluster, seed {seed}");
    let kills = lab.run_through_kills(&args, 8, 900, &mut rng, &what);
    assert!(kills > 0, "{what}: no kill landed mid-run");
    lab.assert_invariants();
    lab.assert_each_installer_once(&what);
    assert_eq!(lab.installs().len(), CLUSTER_NODES.len(), "{what}");
    assert_one_node_at_a_time(&lab);
}

#[test]
fn hotfix_waves_survive_sigkill_and_resume_without_repeating_an_installer() {
    let seed = crash_seed("hotfix-waves crash test");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let inv = windows_lab_inventory();
    let lab = Lab::start_inventory(&inv, Some("time_scale: 0.001\n"));
    let args = Lab::run_args_on(&inv, "hotfix-waves");
    let what = format!("hotfix-waves, seed {seed}");
    let kills = lab.run_through_kills(&args, 8, 900, &mut rng, &what);
    assert!(kills > 0, "{what}: no kill landed mid-run");
    lab.assert_invariants();
    lab.assert_each_installer_once(&what);
    assert_eq!(lab.installs().len(), STANDALONE, "{what}");
}
