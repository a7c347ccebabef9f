//! The lab's PowerShell subset: every modelled cmdlet, reached the way Lockstep and Ansible reach
//! it, `powershell.exe -NoProfile -NonInteractive -EncodedCommand <base64 of UTF-16LE>`, on a
//! Windows Server 2019 failover cluster with a file server and a SQL Server instance (no
//! Exchange). One test sends the scripts through the lab's WinRM server with winrm-rs.

mod model_support;

use std::sync::Arc;

use base64::Engine as _;
use lockstep_core::{ClusterGroup, Fleet, GroupKind, Locale, Name, Version, WindowsRelease};
use lockstep_lab::backend::Backend;
use lockstep_lab::model::World;
use lockstep_lab::record::RecordEvent;
use model_support::*;

/// `powershell.exe ... -EncodedCommand` for `script`.
fn ps(script: &str) -> String {
    let bytes: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    format!(
        "powershell.exe -NoProfile -NonInteractive -EncodedCommand {}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Three Server 2019 nodes at UBR 5458; FS1 on N1, SQL on N2; no Exchange anywhere.
fn fleet_2019() -> Fleet {
    let mut f = cluster_fleet(3, 0, Locale::EN_GB);
    for h in &mut f.hosts {
        h.exchange = None;
        h.windows = Some(WindowsRelease::Windows2019);
        h.os_build = Some(Version::new(10, 0, 17763, 5458));
    }
    f.clusters[0].groups = vec![
        ClusterGroup {
            name: Name::object("FS1").unwrap(),
            kind: GroupKind::FileServer,
            owner: Name::host("N1").unwrap(),
        },
        ClusterGroup {
            name: Name::object("SQL Server (MSSQLSERVER)").unwrap(),
            kind: GroupKind::Sql,
            owner: Name::host("N2").unwrap(),
        },
    ];
    f
}

fn lab() -> Arc<World> {
    let mut cfg = fast();
    cfg.hosts
        .entry("N1".into())
        .or_default()
        .hotfixes
        .push("KB5034127".into());
    world(&fleet_2019(), cfg)
}

async fn json(w: &World, host: &str, script: &str) -> serde_json::Value {
    let r = ok(w, host, &ps(script)).await;
    serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

async fn owners(w: &World) -> Vec<(String, String)> {
    let v = json(
        w,
        "N3",
        "Get-ClusterGroup | Select-Object Name,OwnerNode | ConvertTo-Json -Compress",
    )
    .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["Name"].as_str().unwrap().to_owned(),
                g["OwnerNode"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn cluster_nodes_and_groups_read_as_json() {
    let w = lab();
    let v = json(
        &w,
        "N1",
        "Get-ClusterNode | Select-Object Name,State | ConvertTo-Json -Compress",
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!([
            {"Name": "N1", "State": 0},
            {"Name": "N2", "State": 0},
            {"Name": "N3", "State": 0}
        ])
    );
    let g = json(&w, "N1", "Get-ClusterGroup -Name FS1 | ConvertTo-Json").await;
    assert_eq!(g["OwnerNode"], "N1");
    assert_eq!(g["State"], 0, "online");
    assert_eq!(g["GroupType"], 100, "FileServer");
    assert_eq!(
        owners(&w).await,
        [
            ("Cluster Group".to_owned(), "N1".to_owned()),
            ("FS1".to_owned(), "N1".to_owned()),
            ("SQL Server (MSSQLSERVER)".to_owned(), "N2".to_owned()),
        ]
    );
}

#[tokio::test]
async fn suspend_drain_empties_the_node_and_resume_fails_back() {
    let w = lab();
    let v = json(
        &w,
        "N3",
        "Suspend-ClusterNode -Name N1 -Drain -Wait | Select-Object Name,State,DrainStatus | ConvertTo-Json -Compress",
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({"Name": "N1", "State": 2, "DrainStatus": 2})
    );
    let now = owners(&w).await;
    assert!(now.iter().all(|(_, o)| o != "N1"), "{now:?}");
    // A paused node takes no group.
    let r = run(&w, "N3", &ps("Move-ClusterGroup -Name FS1 -Node N1")).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r
        .stderr
        .contains("Move-ClusterGroup : An error occurred while moving"));
    let v = json(
        &w,
        "N3",
        "Resume-ClusterNode N1 -Failback Immediate | Select-Object Name,State | ConvertTo-Json -Compress",
    )
    .await;
    assert_eq!(v, serde_json::json!({"Name": "N1", "State": 0}));
    let back = owners(&w).await;
    assert_eq!(back[0], ("Cluster Group".to_owned(), "N1".to_owned()));
    assert_eq!(back[1], ("FS1".to_owned(), "N1".to_owned()));
    // The record says when the node was out of service.
    let paused: Vec<bool> = w
        .recorder()
        .records()
        .iter()
        .filter_map(|r| match &r.event {
            RecordEvent::NodePaused { paused } if r.host.as_deref() == Some("N1") => Some(*paused),
            _ => None,
        })
        .collect();
    assert_eq!(paused, [true, false]);
    let r = run(&w, "N3", &ps("Resume-ClusterNode N1 -Failback Sometimes")).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("NoFailback, Immediate, Policy"), "{r:?}");
}

#[tokio::test]
async fn measure_object_counts_the_groups_not_online() {
    let w = lab();
    let not_online = "Get-ClusterGroup | Where-Object { $_.State -ne 0 } | Measure-Object | Select-Object Count | ConvertTo-Json -Compress";
    assert_eq!(
        json(&w, "N1", not_online).await,
        serde_json::json!({"Count": 0})
    );
    let all = json(
        &w,
        "N1",
        "Get-ClusterGroup | Measure-Object | ConvertTo-Json -Compress",
    )
    .await;
    assert_eq!(
        all,
        serde_json::json!({"Count": 3, "Average": null, "Sum": null, "Maximum": null, "Minimum": null, "Property": null})
    );
    let stats = json(
        &w,
        "N1",
        "Get-ClusterNode | Measure-Object -Property State -Sum -Maximum | Select-Object Count,Sum,Maximum,Minimum | ConvertTo-Json -Compress",
    )
    .await;
    assert_eq!(
        stats,
        serde_json::json!({"Count": 3, "Sum": 0, "Maximum": 0, "Minimum": null})
    );
    // A paused node shows in the sum of the node states (Paused = 2).
    ok(&w, "N3", &ps("Suspend-ClusterNode -Name N2 -Drain")).await;
    let stats = json(
        &w,
        "N1",
        "Get-ClusterNode | Measure-Object -Property State -Sum | Select-Object Sum | ConvertTo-Json -Compress",
    )
    .await;
    assert_eq!(stats, serde_json::json!({"Sum": 2}));
    assert_eq!(
        json(&w, "N1", not_online).await,
        serde_json::json!({"Count": 0})
    );
}

#[tokio::test]
async fn move_cluster_group_moves_and_reports_the_group() {
    let w = lab();
    let v = json(
        &w,
        "N2",
        "Move-ClusterGroup 'SQL Server (MSSQLSERVER)' -Node N3 | Select-Object OwnerNode,State | ConvertTo-Json -Compress",
    )
    .await;
    assert_eq!(v, serde_json::json!({"OwnerNode": "N3", "State": 0}));
    let r = run(&w, "N2", &ps("Move-ClusterGroup -Name NoSuchGroup")).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("does not exist in the cluster"), "{r:?}");
}

#[tokio::test]
async fn services_stop_start_and_read_as_json() {
    let w = lab();
    let v = json(
        &w,
        "N2",
        "Get-Service -Name W32Time | Select-Object Name,Status,StartType | ConvertTo-Json -Compress",
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({"Name": "W32Time", "Status": 4, "StartType": 2})
    );
    ok(&w, "N2", &ps("Stop-Service -Name W32Time -Force")).await;
    let v = json(
        &w,
        "N2",
        "Get-Service W32Time | Select-Object -ExpandProperty Status | ConvertTo-Json",
    )
    .await;
    assert_eq!(v, 1, "stopped");
    ok(&w, "N2", &ps("Start-Service W32Time")).await;
    let running = json(
        &w,
        "N2",
        "Get-Service | Where-Object { $_.Status -eq 4 -and $_.Name -like 'W*' } | Select-Object -ExpandProperty Name | ConvertTo-Json -Compress",
    )
    .await;
    assert_eq!(running, serde_json::json!(["W32Time", "WinRM"]));
    let r = run(&w, "N2", &ps("Get-Service -Name NoSuchService")).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("NoServiceFoundForGivenName"), "{r:?}");
}

#[tokio::test]
async fn registry_hotfixes_and_the_os_read_as_json() {
    let w = lab();
    let v = json(
        &w,
        "N1",
        r"Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion' | Select-Object CurrentBuildNumber,UBR,CurrentMajorVersionNumber | ConvertTo-Json -Compress",
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({"CurrentBuildNumber": "17763", "UBR": 5458, "CurrentMajorVersionNumber": 10})
    );
    let r = run(
        &w,
        "N1",
        &ps(r"Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Exchange\Setup'"),
    )
    .await;
    assert_eq!(r.code, 1, "no Exchange on this node: {r:?}");
    assert!(r.stderr.contains("PathNotFound"));
    let v = json(
        &w,
        "N1",
        "Get-HotFix -Id KB5034127 | Select-Object HotFixID | ConvertTo-Json -Compress",
    )
    .await;
    assert_eq!(v, serde_json::json!({"HotFixID": "KB5034127"}));
    let r = run(&w, "N2", &ps("Get-HotFix -Id KB5034127")).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("GetHotFixNoEntriesFound"));
    let v = json(
        &w,
        "N1",
        "Get-CimInstance -ClassName Win32_OperatingSystem | Select-Object Caption,Version,BuildNumber,OSLanguage | ConvertTo-Json -Compress",
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({
            "Caption": "Microsoft Windows Server 2019 Datacenter",
            "Version": "10.0.17763",
            "BuildNumber": "17763",
            "OSLanguage": "2057"
        })
    );
}

#[tokio::test]
async fn anything_else_is_command_not_found_and_old_windows_has_no_powershell() {
    let w = lab();
    let r = run(&w, "N1", &ps("Get-ClusterNode; Invoke-Magic -Now")).await;
    assert_eq!(r.code, 1);
    assert!(r
        .stderr
        .starts_with("Invoke-Magic : The term 'Invoke-Magic' is not recognized"));
    assert!(r.stderr.contains("CommandNotFoundException"));
    assert!(
        r.stdout.contains("N1"),
        "the first statement still ran: {r:?}"
    );
    let r = run(&w, "N1", &ps("Get-ClusterNode | Out-GridView")).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("'Out-GridView' is not recognized"));
    let r = run(&w, "N1", &ps("exit 7")).await;
    assert_eq!(r.code, 7);
    // Server 2019 has no cluster.exe; Server 2003 has no PowerShell.
    let r = run(&w, "N1", "cluster group").await;
    assert_ne!(r.code, 0);
    let old = world(&cluster_fleet(2, 1, Locale::EN_US), fast());
    let r = run(&old, "N1", &ps("Get-ClusterNode")).await;
    assert_ne!(r.code, 0);
    assert!(!r.stderr.contains("CommandNotFoundException"), "{r:?}");
}

#[tokio::test]
async fn encoded_scripts_reach_the_lab_through_its_winrm_server() {
    use lockstep_lab::server::{LabServer, ServerConfig};
    use winrm_rs::{AuthMethod, EncryptionMode, WinrmClient, WinrmConfig, WinrmCredentials};
    let w = lab();
    // winrm-rs sends Basic over plain HTTP, which a default Windows node (and the lab) refuses:
    // this test of the PowerShell model opts into the weakened setting.
    let mut cfg = ServerConfig::with_credentials("u", "P-1");
    cfg.allow_unencrypted = true;
    let server = LabServer::start(w.clone(), cfg).await.unwrap();
    let url = &server.endpoints()["N2"];
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let client = WinrmClient::new(
        WinrmConfig {
            port,
            auth_method: AuthMethod::Basic,
            encryption: EncryptionMode::Never,
            connect_timeout_secs: 5,
            operation_timeout_secs: 10,
            ..WinrmConfig::default()
        },
        WinrmCredentials::new("u", "P-1", ""),
    )
    .unwrap();
    let out = client
        .run_powershell(
            "127.0.0.1",
            "Get-ClusterNode -Name N2 | Select-Object Name,State | ConvertTo-Json -Compress",
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(v, serde_json::json!({"Name": "N2", "State": 0}));
    let out = client
        .run_powershell("127.0.0.1", "Get-Nothing")
        .await
        .unwrap();
    assert_eq!(out.exit_code, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("CommandNotFoundException"));
    server.shutdown().await;
}

#[tokio::test]
async fn the_verifier_sees_suspended_nodes_and_lost_quorum() {
    use lockstep_lab::verify::{verify, verify_declared, Invariant};
    let w = lab();
    // One node drained and resumed: nothing broken.
    ok(&w, "N3", &ps("Suspend-ClusterNode -Name N1 -Drain")).await;
    ok(
        &w,
        "N3",
        &ps("Resume-ClusterNode -Name N1 -Failback Immediate"),
    )
    .await;
    assert_eq!(verify(&w.recorder().records()), vec![]);
    // Two of three suspended: two nodes out at once, and the quorum is gone.
    ok(&w, "N3", &ps("Suspend-ClusterNode -Name N1 -Drain")).await;
    ok(&w, "N3", &ps("Suspend-ClusterNode -Name N2")).await;
    let records = w.recorder().records();
    let rules: Vec<String> = verify(&records).into_iter().map(|v| v.rule).collect();
    assert_eq!(rules, ["quorum", "E3-C1"]);
    let only_quorum = verify_declared(&records, &[(Invariant::Quorum, String::new())].into());
    assert_eq!(only_quorum.len(), 1);
    assert!(
        only_quorum[0].message.contains("lost its quorum"),
        "{only_quorum:?}"
    );
    assert_eq!(
        Invariant::from_name("one-node-out-per-cluster"),
        Some(Invariant::OneNodeOutPerCluster)
    );
    assert!(Invariant::ALL
        .iter()
        .all(|i| Invariant::from_name(i.name()) == Some(*i)));
}

#[tokio::test]
async fn wusa_installs_a_cumulative_update_that_takes_effect_at_the_restart() {
    let w = lab();
    // From the share: a console process (this test's `start`) has its credentials.
    let msu = r"wusa.exe \\fs01\updates\windows10.0-kb5035849-x64.msu /quiet /norestart";
    let ubr = r"Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion' -Name UBR | Select-Object -ExpandProperty UBR | ConvertTo-Json";
    // CAU's order: drain, install, restart, resume.
    ok(&w, "N2", &ps("Suspend-ClusterNode -Drain")).await;
    let r = run(&w, "N2", msu).await;
    assert_eq!(r.code, 3010, "installed, restart needed: {r:?}");
    assert_eq!(
        json(&w, "N2", ubr).await,
        5458,
        "the new UBR waits for the restart"
    );
    let hf = json(
        &w,
        "N2",
        "Get-HotFix -Id KB5035849 | Select-Object -ExpandProperty HotFixID | ConvertTo-Json",
    )
    .await;
    assert_eq!(hf, "KB5035849");
    let epoch = w.boot_epoch("N2");
    ok(&w, "N2", "shutdown /r /t 0").await;
    wait_rebooted(&w, "N2", epoch).await;
    assert_eq!(json(&w, "N2", ubr).await, 5576);
    assert!(ok(&w, "N2", "ver")
        .await
        .stdout
        .contains("[Version 10.0.17763.5576]"));
    // Still suspended after the restart, until resumed.
    let state = "Get-ClusterNode N2 | Select-Object -ExpandProperty State | ConvertTo-Json";
    assert_eq!(json(&w, "N2", state).await, 2);
    ok(&w, "N2", &ps("Resume-ClusterNode -Failback Immediate")).await;
    assert_eq!(json(&w, "N2", state).await, 0);
    // Again: WU_S_ALREADY_INSTALLED. Server 2022's update: WU_E_NOT_APPLICABLE.
    assert_eq!(run(&w, "N2", msu).await.code, 2_359_302);
    let r = run(
        &w,
        "N3",
        r"wusa.exe \\fs01\updates\windows10.0-kb5035857-x64.msu /quiet /norestart",
    )
    .await;
    assert_eq!(r.code, 0x8024_0017_u32 as i32);
    assert_eq!(
        lockstep_lab::verify::verify(&w.recorder().records()),
        vec![]
    );
}
