//! The model's rules, each driven through `Backend::start` / `Backend::wql`.

mod model_support;

use std::time::Duration;

use lockstep_core::{Edition, Locale, Product, Role};
use lockstep_lab::backend::WqlError;
use lockstep_lab::backend::{Availability, Backend};
use lockstep_lab::model::{Fault, HostConfig, LabConfig, PackageEffect, PackageSpec, World};
use lockstep_lab::record::RecordEvent;
use model_support::*;

const T2: &str = "The version of Exchange on this computer does not match the version of Exchange on server 'N2'. ID no: c1037b44";

fn two_nodes() -> std::sync::Arc<World> {
    world(&cluster_fleet(2, 1, Locale::EN_US), fast())
}

/// Brings N2 to SP2 the KB's way (N2 owns nothing, its Cluster service stopped for the install).
async fn upgrade_n2(w: &World) {
    ok(w, "N2", "net stop \"McShield\"").await;
    ok(w, "N2", "net stop clussvc").await;
    ok(w, "N2", &format!("\"{SP2_PACKAGE}\" /q /z")).await;
    ok(w, "N2", "net start clussvc").await;
}

fn events(w: &World) -> Vec<RecordEvent> {
    w.recorder()
        .records()
        .into_iter()
        .map(|r| r.event)
        .collect()
}

#[tokio::test]
async fn t1_old_evs_cannot_come_online_on_an_upgraded_node() {
    let w = two_nodes();
    upgrade_n2(&w).await;
    // EVS1 (SP1) with its resources online moves to N2 (SP2): its Exchange resources fail.
    let r = run(
        &w,
        "N1",
        "cluster group \"EVS1 Group\" /moveto:N2 /wait:120",
    )
    .await;
    assert_eq!(r.code, 5038, "{r:?}");
    assert!(
        r.stderr
            .starts_with("System error 5038 has occurred (0x000013ae)."),
        "{r:?}"
    );
    let ev = events(&w);
    assert!(ev.iter().any(|e| matches!(e, RecordEvent::EventLog { id: 1025, source, .. } if source == "MSExchangeCluster")));
    let g = w.snapshot();
    let g = g.group("EVS1 Group").unwrap();
    assert_eq!(g.owner, "N2");
    assert_eq!(g.resources["EVS1 System Attendant"], "failed");
    assert_eq!(g.resources["EVS1 IP Address"], "online");
    let st = wql_one(
        &w,
        "N1",
        "root/MSCluster",
        "SELECT Name, State FROM MSCluster_ResourceGroup WHERE Name='EVS1 Group'",
        "State",
    );
    assert_eq!(st, "2");
}

/// Sets up the T2 situation where every precondition holds: N2 at SP2, EVS1 on N2 with only
/// IP/Name/Disk online, DTC online.
async fn t2_ready(w: &World) {
    upgrade_n2(w).await;
    ok(
        w,
        "N1",
        "cluster res \"EVS1 System Attendant\" /offline /wait:120",
    )
    .await;
    ok(w, "N2", "cluster group \"EVS1 Group\" /moveto:N2 /wait:120").await;
}

#[tokio::test]
async fn t2_upgrade_succeeds_when_every_precondition_holds() {
    let w = two_nodes();
    t2_ready(&w).await;
    let r = ok(&w, "N2", "labctl evs upgrade \"EVS1 Group\"").await;
    assert!(r.stdout.contains("6.5.7638.2"));
    assert_eq!(
        w.snapshot().group("EVS1 Group").unwrap().evs_version,
        Some(SP2)
    );
    ok(&w, "N2", "cluster group \"EVS1 Group\" /online /wait:120").await;
    assert!(events(&w)
        .iter()
        .any(|e| matches!(e, RecordEvent::EvsUpgraded { version, .. } if *version == SP2)));
}

#[tokio::test]
async fn t2_fails_when_the_group_is_on_a_node_at_the_old_build() {
    let w = two_nodes();
    upgrade_n2(&w).await;
    ok(
        &w,
        "N1",
        "cluster res \"EVS1 System Attendant\" /offline /wait:120",
    )
    .await;
    // The group stays on N1 (SP1); the command runs on N2 (SP2).
    let r = run(&w, "N2", "labctl evs upgrade \"EVS1 Group\"").await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("ID no: c1037b44"), "{r:?}");
    assert!(r.stderr.contains("server 'N1'"), "{r:?}");
}

#[tokio::test]
async fn t2_fails_when_run_from_a_node_at_the_old_build() {
    let w = two_nodes();
    t2_ready(&w).await;
    let r = run(&w, "N1", "labctl evs upgrade \"EVS1 Group\"").await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with(T2), "{r:?}");
    assert!(r.stderr.contains("this node `N1`"), "{r:?}");
}

#[tokio::test]
async fn t2_fails_when_the_system_attendant_is_online() {
    let w = two_nodes();
    t2_ready(&w).await;
    // The old EVS's SA cannot come online on N2 (T1): it fails and does not block the upgrade.
    let r = run(
        &w,
        "N2",
        "cluster res \"EVS1 System Attendant\" /online /wait:120",
    )
    .await;
    assert_eq!(r.code, 5038);
    // An SA left online (forced: a stuck resource) is the one precondition that fails.
    ok(
        &w,
        "N2",
        "labctl res force \"EVS1 System Attendant\" online",
    )
    .await;
    let r = run(&w, "N2", "labctl evs upgrade \"EVS1 Group\"").await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with(T2), "{r:?}");
    assert!(r.stderr.contains("System Attendant resource"), "{r:?}");
    assert_eq!(r.stderr.matches("(lab:").count(), 1, "{r:?}");
}

#[tokio::test]
async fn t2_fails_when_a_resource_other_than_ip_name_disk_is_online() {
    let w = two_nodes();
    t2_ready(&w).await;
    ok(&w, "N2", "labctl res force \"EVS1 SMTP\" online").await;
    let r = run(&w, "N2", "labctl evs upgrade \"EVS1 Group\"").await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with(T2), "{r:?}");
    assert!(
        r.stderr
            .contains("resource `EVS1 SMTP` (Microsoft Exchange SMTP Server Instance) is online"),
        "{r:?}"
    );
    assert_eq!(r.stderr.matches("(lab:").count(), 1, "{r:?}");
    ok(&w, "N2", "labctl res force \"EVS1 SMTP\" offline").await;
    ok(&w, "N2", "labctl evs upgrade \"EVS1 Group\"").await;
}

#[tokio::test]
async fn t2_fails_when_dtc_is_offline() {
    let w = two_nodes();
    t2_ready(&w).await;
    ok(&w, "N1", "cluster res \"MSDTC\" /offline /wait:120").await;
    let r = run(&w, "N2", "labctl evs upgrade \"EVS1 Group\"").await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with(T2), "{r:?}");
    assert!(
        r.stderr.contains("Distributed Transaction Coordinator"),
        "{r:?}"
    );
    assert_eq!(r.stderr.matches("(lab:").count(), 1, "{r:?}");
}

#[tokio::test]
async fn e3_step_12_upgraded_evs_cannot_come_online_on_an_old_node() {
    let w = two_nodes();
    t2_ready(&w).await;
    ok(&w, "N2", "labctl evs upgrade \"EVS1 Group\"").await;
    ok(&w, "N2", "cluster group \"EVS1 Group\" /online /wait:120").await;
    let r = run(
        &w,
        "N2",
        "cluster group \"EVS1 Group\" /moveto:N1 /wait:120",
    )
    .await;
    assert_eq!(r.code, 5038, "{r:?}");
    let snap = w.snapshot();
    let g = snap.group("EVS1 Group").unwrap();
    assert_eq!(g.owner, "N1");
    assert_eq!(g.resources["EVS1 System Attendant"], "failed");
    assert_eq!(
        g.resources["EVS1 Information Store"], "offline",
        "dependents wait for the SA"
    );
    // 1025 is the T1 event: not written for this direction.
    assert!(!events(&w)
        .iter()
        .any(|e| matches!(e, RecordEvent::EventLog { .. })));
}

#[tokio::test]
async fn a_group_cannot_move_to_a_node_whose_cluster_service_is_stopped() {
    let w = two_nodes();
    ok(&w, "N2", "net stop clussvc").await;
    let r = run(
        &w,
        "N1",
        "cluster group \"EVS1 Group\" /moveto:N2 /wait:120",
    )
    .await;
    assert_eq!(r.code, 5050);
    assert_eq!(
        r.stderr,
        "System error 5050 has occurred (0x000013ba).\nThe cluster node is down.\n"
    );
    assert_eq!(w.snapshot().group("EVS1 Group").unwrap().owner, "N1");
    let r = run(&w, "N1", "cluster group \"No Such Group\" /moveto:N2").await;
    assert_eq!(r.code, 5013);
    let r = run(&w, "N1", "cluster group \"EVS1 Group\" /moveto:N9").await;
    assert_eq!(r.code, 5042);
}

#[tokio::test]
async fn cluster_exe_fails_with_1722_where_the_local_cluster_service_is_stopped() {
    let w = two_nodes();
    ok(&w, "N2", "net stop clussvc").await;
    let r = run(&w, "N2", "cluster group").await;
    assert_eq!(r.code, 1722);
    assert!(r.stderr.contains("The RPC server is unavailable."));
    assert_eq!(
        w.wql(
            "N2",
            "root/MSCluster",
            "SELECT Name, State FROM MSCluster_Node"
        ),
        Err(WqlError::NamespaceUnavailable("root/MSCluster".into()))
    );
    let st = wql_one(
        &w,
        "N1",
        "root/MSCluster",
        "SELECT Name, State FROM MSCluster_Node WHERE Name='N2'",
        "State",
    );
    assert_eq!(st, "1");
}

#[tokio::test]
async fn stopping_the_cluster_service_fails_groups_over() {
    let w = two_nodes();
    ok(&w, "N1", "net stop clussvc").await;
    let snap = w.snapshot();
    assert_eq!(snap.group("EVS1 Group").unwrap().owner, "N2");
    assert_eq!(snap.group("Cluster Group").unwrap().owner, "N2");
    assert!(snap
        .group("EVS1 Group")
        .unwrap()
        .resources
        .values()
        .all(|s| s == "online"));
    assert!(events(&w).iter().any(|e| matches!(e, RecordEvent::GroupMoved { cause, to, .. } if cause == "failover" && to == "N2")));
    // The Exchange services follow their resources.
    let st = wql_one(
        &w,
        "N2",
        "root/cimv2",
        "SELECT Name, State FROM Win32_Service WHERE Name='MSExchangeIS'",
        "State",
    );
    assert_eq!(st, "Running");
    let st = wql_one(
        &w,
        "N1",
        "root/cimv2",
        "SELECT Name, State FROM Win32_Service WHERE Name='MSExchangeIS'",
        "State",
    );
    assert_eq!(st, "Stopped");
}

#[tokio::test]
async fn antivirus_running_makes_the_service_pack_fail_with_file_in_use() {
    let w = two_nodes();
    ok(&w, "N2", "net stop clussvc").await;
    let r = run(&w, "N2", &format!("\"{SP2_PACKAGE}\" /q /z")).await;
    assert_eq!(r.code, 1603);
    assert!(r.stdout.contains("FileInUse:: Added to Filelist:"), "{r:?}");
    assert_eq!(w.snapshot().host("N2").unwrap().build, SP1);
}

#[tokio::test]
async fn a_stray_setup_makes_the_installer_exit_1618() {
    let mut cfg = fast();
    cfg.hosts.insert(
        "N2".into(),
        HostConfig {
            processes: vec!["setup.exe".into()],
            ..HostConfig::default()
        },
    );
    let w = world(&cluster_fleet(2, 1, Locale::EN_US), cfg);
    let rows = w
        .wql(
            "N2",
            "root/cimv2",
            "SELECT Name FROM Win32_Process WHERE Name='setup.exe'",
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    let t = ok(
        &w,
        "N2",
        "tasklist /fi \"IMAGENAME eq setup.exe\" /fo csv /nh",
    )
    .await;
    assert!(t.stdout.starts_with("\"setup.exe\",\""), "{t:?}");
    ok(&w, "N2", "net stop \"McShield\"").await;
    ok(&w, "N2", "net stop clussvc").await;
    let r = run(&w, "N2", &format!("\"{SP2_PACKAGE}\" /q /z")).await;
    assert_eq!(r.code, 1618);
    // xcopy started at run time (labctl) blocks it too; once gone, the install runs.
    ok(&w, "N2", "labctl process kill setup.exe").await;
    ok(&w, "N2", "labctl process start xcopy.exe").await;
    assert_eq!(
        run(&w, "N2", &format!("\"{SP2_PACKAGE}\" /q /z"))
            .await
            .code,
        1618
    );
    ok(&w, "N2", "labctl process kill xcopy.exe").await;
    let t = ok(
        &w,
        "N2",
        "tasklist /fi \"IMAGENAME eq xcopy.exe\" /fo csv /nh",
    )
    .await;
    assert_eq!(
        t.stdout,
        "INFO: No tasks running with the specified criteria.\n"
    );
    ok(&w, "N2", &format!("\"{SP2_PACKAGE}\" /q /z")).await;
    assert_eq!(w.snapshot().host("N2").unwrap().build, SP2);
}

#[tokio::test]
async fn setup_refuses_on_a_cluster_node_whose_cluster_service_runs() {
    let w = two_nodes();
    ok(&w, "N2", "net stop \"McShield\"").await;
    let r = run(&w, "N2", &format!("\"{SP2_PACKAGE}\" /q /z")).await;
    assert_eq!(r.code, 1603);
    assert!(r.stderr.contains("Cluster service is running"), "{r:?}");
    assert_eq!(w.snapshot().host("N2").unwrap().build, SP1);
}

#[tokio::test]
async fn product_and_edition_mismatches_fail() {
    let mut fleet = cluster_fleet(2, 1, Locale::EN_US);
    fleet.hosts[1].exchange.as_mut().unwrap().edition = Edition::Conferencing;
    let w = world(&fleet, fast());
    ok(&w, "N2", "net stop clussvc").await;
    let r = run(&w, "N2", &format!("\"{SP2_PACKAGE}\" /q /z")).await;
    assert_eq!(r.code, 1642, "E2-ED: {r:?}");
    let r = run(
        &w,
        "N2",
        r#""\\fs01\install$\E2KSP3\setup\i386\update.exe" /q"#,
    )
    .await;
    assert_eq!(r.code, 1642, "Exchange 2000 package on 2003: {r:?}");
}

#[tokio::test]
async fn the_iis_hotfix_leaves_a_pending_reboot_that_a_restart_clears() {
    let w = two_nodes();
    let pending = r#"reg query "HKLM\SYSTEM\CurrentControlSet\Control\Session Manager" /v PendingFileRenameOperations"#;
    assert_eq!(run(&w, "N2", pending).await.code, 1);
    let r = run(&w, "N2", &format!("\"{IIS_PACKAGE}\" /quiet /norestart")).await;
    assert_eq!(r.code, 3010);
    let p = run(&w, "N2", pending).await;
    assert_eq!(p.code, 0);
    assert!(
        p.stdout
            .contains("    PendingFileRenameOperations    REG_MULTI_SZ    "),
        "{p:?}"
    );
    let qfe = w
        .wql(
            "N2",
            "root/cimv2",
            "SELECT HotFixID FROM Win32_QuickFixEngineering",
        )
        .unwrap();
    assert_eq!(qfe[0]["HotFixID"], "KB831464");
    let e = w.boot_epoch("N2");
    ok(&w, "N2", "shutdown /r /t 0 /f").await;
    wait_rebooted(&w, "N2", e).await;
    assert_eq!(run(&w, "N2", pending).await.code, 1);
}

#[tokio::test]
async fn an_installer_exiting_1641_restarts_the_node() {
    let mut cfg = fast();
    cfg.packages.push(PackageSpec {
        path: r"\\fs01\install$\E2K3HF\restart.exe".into(),
        product: Some(Product::Exchange2003),
        editions: vec![],
        windows: vec![],
        effect: PackageEffect::Hotfix {
            id: "KB999999".into(),
        },
        duration_secs: 30.0,
        exit_code: 1641,
        size: None,
    });
    let w = world(&cluster_fleet(2, 1, Locale::EN_US), cfg);
    ok(&w, "N2", "net stop \"McShield\"").await;
    ok(&w, "N2", "net stop clussvc").await;
    let e = w.boot_epoch("N2");
    let r = run(&w, "N2", r#""\\FS01\INSTALL$\E2K3HF\RESTART.EXE" /q"#).await;
    assert_eq!(r.code, 1641);
    wait_rebooted(&w, "N2", e).await;
    let snap = w.snapshot();
    let n2 = snap.host("N2").unwrap();
    assert_eq!(n2.hotfixes, ["KB999999"]);
    assert_eq!(
        snap.clusters[0].nodes["N2"], "up",
        "ClusSvc (auto) rejoined"
    );
    let ev = events(&w);
    assert!(ev.iter().any(|e| matches!(e, RecordEvent::RebootStarted)));
    assert!(ev.iter().any(|e| matches!(e, RecordEvent::RebootFinished)));
}

#[tokio::test]
async fn a_restart_brings_services_back_by_start_type() {
    let mut cfg = fast();
    cfg.services.insert(
        Role::BackEnd,
        vec![
            lockstep_lab::model::ServiceSpec {
                name: "SNMP".into(),
                display: None,
                start: lockstep_lab::model::StartType::Auto,
            },
            lockstep_lab::model::ServiceSpec {
                name: "Spooler".into(),
                display: None,
                start: lockstep_lab::model::StartType::Manual,
            },
            lockstep_lab::model::ServiceSpec {
                name: "Telnet".into(),
                display: None,
                start: lockstep_lab::model::StartType::Disabled,
            },
        ],
    );
    let w = world(&cluster_fleet(2, 1, Locale::EN_US), cfg);
    ok(&w, "N2", "net stop SNMP").await;
    ok(&w, "N2", "net start spooler").await;
    let r = run(&w, "N2", "net start Telnet").await;
    assert_eq!(r.code, 2);
    ok(&w, "N2", "net stop clussvc").await;
    let before = wql_one(
        &w,
        "N2",
        "root/cimv2",
        "SELECT LastBootUpTime FROM Win32_OperatingSystem",
        "LastBootUpTime",
    );
    let e = w.boot_epoch("N2");
    ok(&w, "N2", "shutdown /r /t 0 /f").await;
    wait_rebooted(&w, "N2", e).await;
    let after = wql_one(
        &w,
        "N2",
        "root/cimv2",
        "SELECT LastBootUpTime FROM Win32_OperatingSystem",
        "LastBootUpTime",
    );
    assert!(after > before);
    let s = w.snapshot();
    let n2 = s.host("N2").unwrap();
    assert_eq!(n2.services["SNMP"], "running");
    assert_eq!(n2.services["Spooler"], "stopped");
    assert_eq!(n2.services["Telnet"], "stopped");
    assert_eq!(n2.services["ClusSvc"], "running");
    let mode = wql_one(
        &w,
        "N2",
        "root/cimv2",
        "SELECT Name, StartMode FROM Win32_Service WHERE Name='Spooler'",
        "StartMode",
    );
    assert_eq!(mode, "Manual");
}

#[tokio::test]
async fn protocol_faults_reach_the_server() {
    let w = two_nodes();
    assert_eq!(w.protocol_faults("N1"), Default::default());
    w.set_fault("N1", Fault::Http500);
    w.set_fault("N1", Fault::Slow { ms: 250 });
    w.set_fault("N1", Fault::DropMidReceive);
    let pf = w.protocol_faults("N1");
    assert!(pf.http_500 && pf.drop_mid_receive);
    assert_eq!(pf.delay, Some(Duration::from_millis(250)));
    w.protocol_fault_used("N1");
    assert!(
        !w.protocol_faults("N1").drop_mid_receive,
        "drop-mid-receive is used once"
    );
    assert!(w.protocol_faults("N1").http_500);
    w.clear_faults("N1");
    assert_eq!(w.protocol_faults("N1"), Default::default());
    // Refuse, set from another host through labctl.
    ok(&w, "N2", "labctl fault set N1 refuse").await;
    assert_eq!(w.availability("N1"), Availability::Down);
    ok(&w, "N2", "labctl fault clear N1").await;
    assert_eq!(w.availability("N1"), Availability::Up);
    let r = run(&w, "N2", "labctl fault set N1 slow").await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("`slow` needs a delay"), "{r:?}");
}

#[tokio::test]
async fn reboot_never_returns_keeps_the_host_down_until_cleared() {
    let w = two_nodes();
    ok(&w, "N2", "labctl fault set N2 reboot-never-returns").await;
    let e = w.boot_epoch("N2");
    ok(&w, "N2", "shutdown /r /t 0 /f").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(w.availability("N2"), Availability::Down);
    assert_eq!(w.boot_epoch("N2"), e);
    w.clear_faults("N2");
    assert_eq!(w.availability("N2"), Availability::Up);
    assert_eq!(w.boot_epoch("N2"), e + 1);
}

#[tokio::test]
async fn installer_faults_override_the_outcome() {
    let w = two_nodes();
    ok(&w, "N2", "net stop \"McShield\"").await;
    ok(&w, "N2", "net stop clussvc").await;
    w.set_fault("N2", Fault::InstallerFails { exit_code: 1603 });
    let r = run(&w, "N2", &format!("\"{SP2_PACKAGE}\" /q /z")).await;
    assert_eq!(r.code, 1603);
    assert_eq!(w.snapshot().host("N2").unwrap().build, SP1);
    w.clear_faults("N2");
    ok(
        &w,
        "N2",
        "labctl fault set N2 wrong-version-after-install 6.5.7226.7",
    )
    .await;
    let r = run(&w, "N2", &format!("\"{SP2_PACKAGE}\" /q /z")).await;
    assert_eq!(r.code, 0);
    let reg = ok(
        &w,
        "N2",
        r#"reg query "HKLM\SOFTWARE\Microsoft\Exchange\Setup" /v MsiBuildMinor"#,
    )
    .await;
    assert!(
        reg.stdout.contains("    MsiBuildMinor    REG_DWORD    0x7"),
        "{reg:?}"
    );
}

#[tokio::test]
async fn cluster_service_fails_to_start_and_group_move_fails() {
    let w = two_nodes();
    ok(&w, "N2", "net stop clussvc").await;
    w.set_fault("N2", Fault::ClusterServiceFailsToStart);
    let r = run(&w, "N2", "net start clussvc").await;
    assert_eq!(r.code, 2);
    assert!(
        r.stdout.contains("could not be started") || r.stderr.contains("could not be started"),
        "{r:?}"
    );
    w.clear_faults("N2");
    ok(&w, "N2", "net start clussvc").await;
    ok(
        &w,
        "N1",
        "labctl fault set N2 group-move-fails \"EVS1 Group\"",
    )
    .await;
    let r = run(
        &w,
        "N1",
        "cluster group \"EVS1 Group\" /moveto:N2 /wait:120",
    )
    .await;
    assert_eq!(r.code, 5038);
    assert_eq!(w.snapshot().group("EVS1 Group").unwrap().owner, "N1");
    ok(
        &w,
        "N1",
        "cluster group \"Cluster Group\" /moveto:N2 /wait:120",
    )
    .await;
}

#[tokio::test]
async fn faults_from_the_config_file() {
    let yaml = r#"{"time_scale": 0.0001, "hosts": {"n1": {"faults": [{"kind": "refuse"}, {"kind": "installer-fails", "exit_code": 1603}, {"kind": "group-move-fails", "group": "EVS1 Group"}]}}}"#;
    let cfg: LabConfig = serde_json::from_str(yaml).unwrap();
    let w = world(&cluster_fleet(2, 1, Locale::EN_US), cfg);
    assert_eq!(w.availability("N1"), Availability::Down);
    assert_eq!(w.snapshot().host("N1").unwrap().faults.len(), 3);
}

#[tokio::test]
async fn reg_query_output_shape() {
    let w = two_nodes();
    let r = ok(
        &w,
        "N1",
        r#"reg query "HKLM\SOFTWARE\Microsoft\Exchange\Setup""#,
    )
    .await;
    insta::assert_snapshot!("reg_query_exchange_setup", r.stdout);
    for line in r.stdout.lines().filter(|l| l.starts_with("    ")) {
        let parts: Vec<&str> = line.trim_start().split("    ").collect();
        assert_eq!(parts.len(), 3, "{line:?}");
        assert!(parts[1].starts_with("REG_"));
    }
    let r = ok(
        &w,
        "N1",
        r#"reg query "HKLM\SYSTEM\CurrentControlSet\Control\Nls\CodePage" /v OEMCP"#,
    )
    .await;
    assert!(r.stdout.contains("    OEMCP    REG_SZ    437\n"), "{r:?}");
    let r = run(&w, "N1", r#"reg query "HKLM\SOFTWARE\Nothing""#).await;
    assert_eq!(r.code, 1);
    assert!(r
        .stderr
        .contains("ERROR: The system was unable to find the specified registry key or value."));
}

#[tokio::test]
async fn unknown_commands_get_cmds_own_error() {
    let w = world(&cluster_fleet(2, 1, Locale::CS_CZ), fast());
    let r = run(&w, "N1", "foo /bar").await;
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "'foo' není názvem vnitřního ani vnějšího příkazu,\nspustitelného programu nebo dávkového souboru.\n");
    let w = two_nodes();
    let r = run(&w, "N1", "\"C:\\x\\nothing.exe\" /q").await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("'\"C:\\x\\nothing.exe\"' is not recognized"),
        "{r:?}"
    );
    // wlbs exists on pool members only.
    assert_eq!(run(&w, "N1", "wlbs query").await.code, 1);
    assert_eq!(ok(&w, "N1", "HOSTNAME").await.stdout, "N1\n");
    assert_eq!(
        ok(&w, "N1", "echo hello  \"x\"").await.stdout,
        "hello  \"x\"\n"
    );
    assert_eq!(ok(&w, "N1", "chcp").await.stdout, "Active code page: 437\n");
    assert!(ok(&w, "N1", "ver").await.stdout.contains("5.2.3790"));
    assert_eq!(run(&w, "N1", "cmd /c exit 3").await.code, 3);
}

#[tokio::test]
async fn wql_queries() {
    let w = two_nodes();
    let nodes = w
        .wql(
            "N1",
            "root/MSCluster",
            "SELECT Name, State FROM MSCluster_Node",
        )
        .unwrap();
    assert_eq!(nodes.len(), 2);
    assert!(nodes.iter().all(|n| n["State"] == "0" && n.len() == 2));
    let res = w
        .wql("N1", "root\\MSCluster", "SELECT Name, Type, State FROM MSCluster_Resource WHERE Type='Distributed Transaction Coordinator'")
        .unwrap();
    assert_eq!(res.len(), 1);
    assert_eq!(res[0]["Name"], "MSDTC");
    assert_eq!(res[0]["State"], "2");
    let all = w
        .wql("N1", "root/cimv2", "SELECT * FROM Win32_OperatingSystem")
        .unwrap();
    assert_eq!(all[0]["OSLanguage"], "1033");
    assert!(all[0]["LastBootUpTime"].ends_with("+000"));
    let svc = w
        .wql(
            "N1",
            "root/cimv2",
            "select name, state from win32_service where name='w3svc'",
        )
        .unwrap();
    assert_eq!(svc[0]["Name"], "W3SVC");
    assert_eq!(svc[0]["State"], "Running");
    assert!(matches!(
        w.wql("N1", "root/cimv2", "SELECT Nope FROM Win32_Service"),
        Err(WqlError::InvalidQuery(_))
    ));
    assert!(matches!(
        w.wql("N1", "root/cimv2", "SELECT Name FROM Win32_Nothing"),
        Err(WqlError::InvalidQuery(_))
    ));
    assert!(matches!(
        w.wql("N1", "root/other", "SELECT Name FROM X"),
        Err(WqlError::NamespaceUnavailable(_))
    ));
    // Pause and resume show in the node state.
    ok(&w, "N1", "cluster node N2 /pause").await;
    assert_eq!(
        wql_one(
            &w,
            "N1",
            "root/MSCluster",
            "SELECT Name, State FROM MSCluster_Node WHERE Name='N2'",
            "State"
        ),
        "2"
    );
    assert_eq!(
        run(&w, "N1", "cluster group \"EVS1 Group\" /moveto:N2")
            .await
            .code,
        5005
    );
    ok(&w, "N1", "cluster node N2 /resume").await;
    assert_eq!(
        wql_one(
            &w,
            "N1",
            "root/MSCluster",
            "SELECT Name, State FROM MSCluster_Node WHERE Name='N2'",
            "State"
        ),
        "0"
    );
}

#[tokio::test]
async fn sc_query_and_net_messages() {
    let w = two_nodes();
    let r = ok(&w, "N1", "sc query \"W3SVC\"").await;
    assert!(
        r.stdout.contains("        STATE              : 4  RUNNING"),
        "{r:?}"
    );
    let r = run(&w, "N1", "sc query \"Nope\"").await;
    assert_eq!(r.code, 1060);
    let r = run(&w, "N1", "net start W3SVC").await;
    assert_eq!(r.code, 2);
    assert!(r.stdout.contains("NET HELPMSG 2182") || r.stderr.contains("NET HELPMSG 2182"));
    ok(&w, "N1", "net stop W3SVC").await;
    let r = run(&w, "N1", "net stop W3SVC").await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("NET HELPMSG 3521"));
    let r = ok(&w, "N1", "sc query W3SVC").await;
    assert!(r.stdout.contains("STATE              : 1  STOPPED"));
}

#[tokio::test]
async fn nlb_on_pool_members() {
    let mut fleet = cluster_fleet(2, 1, Locale::EN_US);
    let mut fe = host("FE1", "site1", Role::FrontEnd, Product::Exchange2003, SP1);
    fe.pool = Some(lockstep_core::Name::ident("owa").unwrap());
    fleet.hosts.push(fe);
    let w = world(&fleet, fast());
    assert_eq!(run(&w, "FE1", "wlbs query").await.code, 1005);
    ok(&w, "FE1", "wlbs drainstop").await;
    assert_eq!(run(&w, "FE1", "wlbs query").await.code, 1007);
    ok(&w, "FE1", "wlbs start").await;
    assert_eq!(run(&w, "FE1", "wlbs query").await.code, 1005);
}

#[tokio::test]
async fn terminating_an_installer_applies_nothing() {
    let mut cfg = fast();
    cfg.time_scale = 0.01; // 1200 s -> 12 s: long enough to terminate
    let w = world(&cluster_fleet(2, 1, Locale::EN_US), cfg);
    ok(&w, "N2", "net stop \"McShield\"").await;
    ok(&w, "N2", "net stop clussvc").await;
    let mut p = w.start("N2", &format!("\"{SP2_PACKAGE}\" /q /z"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(w.snapshot().host("N2").unwrap().processes, ["update.exe"]);
    p.terminate.take().unwrap().send(()).unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), p.events.recv())
        .await
        .unwrap();
    assert_eq!(
        ev,
        Some(lockstep_lab::backend::ProcessEvent::Exit(
            0xC000013A_u32 as i32
        ))
    );
    let snap = w.snapshot();
    assert_eq!(snap.host("N2").unwrap().build, SP1);
    assert!(snap.host("N2").unwrap().processes.is_empty());
}

#[tokio::test]
async fn localised_listings() {
    for locale in Locale::SEEDS {
        let w = world(&cluster_fleet(2, 1, locale), fast());
        ok(&w, "N1", "cluster res \"EVS1 System Attendant\" /offline").await;
        ok(&w, "N2", "cluster node N2 /pause").await;
        let mut all = String::new();
        for line in [
            "cluster group",
            "cluster res",
            "cluster node",
            "net stop \"SNMP\"",
            "net stop \"SNMP\"",
            "net stop \"NoSuchService\"",
            "net start \"W3SVC\"",
            "chcp",
            "tasklist /fi \"IMAGENAME eq setup.exe\" /fo csv /nh",
        ] {
            let r = run(&w, "N1", line).await;
            all.push_str(&format!(
                "> {line}\n[exit {}]\n{}{}\n",
                r.code, r.stdout, r.stderr
            ));
        }
        ok(&w, "N1", "net stop clussvc").await;
        let r = run(&w, "N1", "cluster group").await;
        all.push_str(&format!(
            "> cluster group (ClusSvc stopped)\n[exit {}]\n{}\n",
            r.code, r.stderr
        ));
        insta::assert_snapshot!(format!("listing_{}", locale.tag()), all);
    }
}

#[test]
fn the_config_round_trips_and_reads_services_per_role() {
    let d = LabConfig::default();
    let back: LabConfig = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    assert_eq!(back, d);
    let cfg: LabConfig = serde_json::from_str(
        r#"{"services": {"front-end": [{"name": "W3SVC", "start": "manual"}]},
            "packages": [{"path": "C:\\sp\\update.exe", "product": "2003", "effect": {"kind": "service-pack", "build": "6.5.7638.2"}, "duration_secs": 10}]}"#,
    )
    .unwrap();
    assert_eq!(
        cfg.services[&Role::FrontEnd][0].start,
        lockstep_lab::model::StartType::Manual
    );
    assert_eq!(cfg.packages[0].exit_code, 0);
    assert!(
        serde_json::from_str::<LabConfig>(r#"{"time_scal": 1}"#).is_err(),
        "unknown fields are refused"
    );
}

#[tokio::test]
async fn the_snapshot_serialises() {
    let w = two_nodes();
    let s = w.snapshot();
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["clusters"][0]["groups"][1]["owner"], "N1");
    assert_eq!(json["hosts"][0]["build"], "6.5.7226.6");
    assert_eq!(json["hosts"][0]["services"]["ClusSvc"], "running");
    let back: lockstep_lab::model::WorldSnapshot = serde_json::from_value(json).unwrap();
    assert_eq!(back, s);
}

#[tokio::test]
async fn a_service_pack_stops_exchange_services_while_it_runs_on_a_standalone_server() {
    let mut fleet = cluster_fleet(2, 1, Locale::EN_US);
    fleet.hosts.push(host(
        "S1",
        "site1",
        Role::Standalone,
        Product::Exchange2003,
        SP1,
    ));
    let mut cfg = fast();
    cfg.time_scale = 0.01; // 1200 s -> 12 s: observed while running
    let w = world(&fleet, cfg);
    ok(&w, "S1", "net stop \"McShield\"").await;
    let mut p = w.start("S1", &format!("\"{SP2_PACKAGE}\" /q /z"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let is = wql_one(
        &w,
        "S1",
        "root/cimv2",
        "SELECT Name, State FROM Win32_Service WHERE Name='MSExchangeIS'",
        "State",
    );
    assert_eq!(is, "Stopped");
    let procs = w
        .wql(
            "S1",
            "root/cimv2",
            "SELECT Name FROM Win32_Process WHERE Name='update.exe'",
        )
        .unwrap();
    assert_eq!(procs.len(), 1, "the installer is visible while it runs");
    // Silent while it runs: nothing arrives before the exit.
    assert!(p.events.try_recv().is_err());
    p.terminate.take().unwrap().send(()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), p.events.recv())
        .await
        .unwrap();
    let is = wql_one(
        &w,
        "S1",
        "root/cimv2",
        "SELECT Name, State FROM Win32_Service WHERE Name='MSExchangeIS'",
        "State",
    );
    assert_eq!(is, "Running", "services come back when the installer ends");
}
