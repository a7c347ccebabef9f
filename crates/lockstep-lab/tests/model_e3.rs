//! The whole E3-CLUSTER procedure (KB 328839) on 2- and 4-node clusters, driven by the exact
//! command lines of docs/commands.md, then checked by the invariant checker.

mod model_support;

use lockstep_core::Locale;
use lockstep_lab::backend::Backend;
use lockstep_lab::model::World;
use lockstep_lab::verify::verify;
use model_support::*;

const NONESSENTIAL: [&str; 3] = ["McShield", "BackupExecAgentAccelerator", "SNMP"];

fn owned_groups(w: &World, ask: &str, node: &str) -> Vec<String> {
    w.wql(
        ask,
        "root/MSCluster",
        "SELECT GroupComponent, PartComponent FROM MSCluster_NodeToActiveGroup",
    )
    .unwrap()
    .into_iter()
    .filter(|o| o["GroupComponent"] == format!("MSCluster_Node.Name=\"{node}\""))
    .map(|o| {
        o["PartComponent"]
            .trim_start_matches("MSCluster_ResourceGroup.Name=\"")
            .trim_end_matches('"')
            .to_owned()
    })
    .collect()
}

/// E3-CLUSTER.2 / .16: move every group off `node` to `to` (cluster-wide: run on `to`).
async fn evacuate(w: &World, node: &str, to: &str) {
    for g in owned_groups(w, to, node) {
        ok(
            w,
            to,
            &format!("cluster group \"{g}\" /moveto:{to} /wait:120"),
        )
        .await;
    }
    assert!(owned_groups(w, to, node).is_empty());
}

/// E3-CLUSTER.1: the IIS hotfix, then a restart (reboot: always).
async fn iis_hotfix(w: &World, node: &str) {
    let has = w
        .wql(
            node,
            "root/cimv2",
            "SELECT HotFixID FROM Win32_QuickFixEngineering WHERE HotFixID='KB831464'",
        )
        .unwrap();
    if has.is_empty() {
        let r = run(w, node, &format!("\"{IIS_PACKAGE}\" /quiet /norestart")).await;
        assert_eq!(r.code, 3010, "{r:?}");
    }
    let boot = wql_one(
        w,
        node,
        "root/cimv2",
        "SELECT LastBootUpTime FROM Win32_OperatingSystem",
        "LastBootUpTime",
    );
    let epoch = w.boot_epoch(node);
    ok(w, node, "shutdown /r /t 0 /f").await;
    wait_rebooted(w, node, epoch).await;
    let after = wql_one(
        w,
        node,
        "root/cimv2",
        "SELECT LastBootUpTime FROM Win32_OperatingSystem",
        "LastBootUpTime",
    );
    assert!(after > boot, "{after} after {boot}");
    let pending = run(w, node, r#"reg query "HKLM\SYSTEM\CurrentControlSet\Control\Session Manager" /v PendingFileRenameOperations"#).await;
    assert_eq!(pending.code, 1, "no reboot pending after the restart");
}

async fn services(w: &World, node: &str, verb: &str) {
    for s in NONESSENTIAL {
        ok(w, node, &format!("net {verb} \"{s}\"")).await;
        let q = run(w, node, &format!("sc query \"{s}\"")).await;
        let want = if verb == "stop" {
            "STATE              : 1"
        } else {
            "STATE              : 4"
        };
        assert!(q.stdout.contains(want), "{q:?}");
    }
}

async fn install_sp(w: &World, node: &str) {
    let reg = ok(
        w,
        node,
        r#"reg query "HKLM\SOFTWARE\Microsoft\Exchange\Setup""#,
    )
    .await;
    assert!(
        reg.stdout
            .contains("    MsiBuildMajor    REG_DWORD    0x1c3a"),
        "at SP1 before: {reg:?}"
    );
    let r = run(w, node, &format!("\"{SP2_PACKAGE}\" /q /z")).await;
    assert_eq!(r.code, 0, "{r:?}");
}

/// E3-CLUSTER.7: every resource of the EVS offline except IP Address, Physical Disk, Network Name.
async fn offline_except(w: &World, ask: &str, group: &str) {
    let members: Vec<String> = w
        .wql(
            ask,
            "root/MSCluster",
            "SELECT GroupComponent, PartComponent FROM MSCluster_ResourceGroupToResource",
        )
        .unwrap()
        .into_iter()
        .filter(|o| o["GroupComponent"] == format!("MSCluster_ResourceGroup.Name=\"{group}\""))
        .map(|o| {
            o["PartComponent"]
                .trim_start_matches("MSCluster_Resource.Name=\"")
                .trim_end_matches('"')
                .to_owned()
        })
        .collect();
    assert!(members.len() >= 6);
    for r in w
        .wql(
            ask,
            "root/MSCluster",
            "SELECT Name, Type, State FROM MSCluster_Resource",
        )
        .unwrap()
    {
        if !members.contains(&r["Name"]) {
            continue;
        }
        let keep = ["IP Address", "Physical Disk", "Network Name"].contains(&r["Type"].as_str());
        if !keep && r["State"] == "2" {
            ok(
                w,
                ask,
                &format!("cluster res \"{}\" /offline /wait:120", r["Name"]),
            )
            .await;
        }
    }
    let state = w
        .wql(
            ask,
            "root/MSCluster",
            &format!("SELECT Name, State FROM MSCluster_ResourceGroup WHERE Name='{group}'"),
        )
        .unwrap();
    assert_eq!(state[0]["State"], "3", "{group} partially online");
}

async fn e3_cluster(n: usize, evs: usize) {
    let fleet = cluster_fleet(n, evs, Locale::EN_US);
    let w = world(&fleet, fast());
    let nodes: Vec<String> = (1..=n).map(|i| format!("N{i}")).collect();
    let groups: Vec<String> = (1..=evs).map(|i| format!("EVS{i} Group")).collect();
    let first = "N2";
    let peer = "N1";

    // Preflight on every node (G6, pending reboot, Cluster service).
    for node in &nodes {
        assert!(w
            .wql(
                node,
                "root/cimv2",
                "SELECT Name FROM Win32_Process WHERE Name='setup.exe'"
            )
            .unwrap()
            .is_empty());
        let st = wql_one(
            &w,
            node,
            "root/cimv2",
            "SELECT Name, State, StartMode FROM Win32_Service WHERE Name='ClusSvc'",
            "State",
        );
        assert_eq!(st, "Running");
    }

    // The first node.
    evacuate(&w, first, peer).await;
    iis_hotfix(&w, first).await;
    services(&w, first, "stop").await;
    ok(&w, first, "net stop clussvc").await;
    install_sp(&w, first).await;
    services(&w, first, "start").await;
    for g in &groups {
        offline_except(&w, peer, g).await;
    }
    ok(&w, first, "net start clussvc").await;
    for g in &groups {
        ok(
            &w,
            first,
            &format!("cluster group \"{g}\" /moveto:{first} /wait:120"),
        )
        .await;
        ok(&w, first, &format!("labctl evs upgrade \"{g}\"")).await;
        ok(
            &w,
            first,
            &format!("cluster group \"{g}\" /online /wait:120"),
        )
        .await;
        let st = wql_one(
            &w,
            first,
            "root/MSCluster",
            &format!("SELECT Name, State FROM MSCluster_ResourceGroup WHERE Name='{g}'"),
            "State",
        );
        assert_eq!(st, "0", "{g} online on the upgraded node");
    }

    // The other nodes, one at a time.
    for node in nodes.iter().filter(|n| n.as_str() != first) {
        evacuate(&w, node, first).await;
        iis_hotfix(&w, node).await;
        services(&w, node, "stop").await;
        ok(&w, node, "net stop clussvc").await;
        install_sp(&w, node).await;
        ok(&w, node, "net start clussvc").await;
        services(&w, node, "start").await;
    }

    // E3-CLUSTER.17: every EVS fails over to every node and back.
    for g in &groups {
        for node in &nodes {
            ok(
                &w,
                first,
                &format!("cluster group \"{g}\" /moveto:{node} /wait:120"),
            )
            .await;
        }
        ok(
            &w,
            first,
            &format!("cluster group \"{g}\" /moveto:{first} /wait:120"),
        )
        .await;
    }

    // E3-CLUSTER.18: every node at 6.5.7638.2; every EVS upgraded and online.
    for node in &nodes {
        let reg = ok(
            &w,
            node,
            r#"reg query "HKLM\SOFTWARE\Microsoft\Exchange\Setup""#,
        )
        .await;
        assert!(
            reg.stdout
                .contains("    MsiBuildMajor    REG_DWORD    0x1dd6"),
            "{reg:?}"
        );
        assert!(
            reg.stdout.contains("    MsiBuildMinor    REG_DWORD    0x2"),
            "{reg:?}"
        );
    }
    let snap = w.snapshot();
    for g in &groups {
        let gs = snap.group(g).unwrap();
        assert_eq!(gs.evs_version, Some(SP2));
        assert!(gs.resources.values().all(|s| s == "online"), "{gs:?}");
    }
    let records = w.recorder().records();
    assert!(records.len() > 50);
    let violations = verify(&records);
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test]
async fn e3_cluster_two_nodes_one_evs() {
    e3_cluster(2, 1).await;
}

#[tokio::test]
async fn e3_cluster_four_nodes_two_evs() {
    e3_cluster(4, 2).await;
}
