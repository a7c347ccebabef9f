//! The exact command lines of every action (snapshot), and their safety.

use lockstep_actions::render;
use lockstep_core::*;

use crate::scripted::*;

fn every_action() -> Vec<Action> {
    let n1 = Name::host(N1).unwrap();
    let n2 = Name::host(N2).unwrap();
    vec![
        Action::MoveGroup {
            group: n(EVS_GROUP),
            to: n2.clone(),
        },
        Action::EvacuateNode {
            node: n1.clone(),
            to: n2.clone(),
        },
        Action::StopClusterService,
        Action::StartClusterService,
        Action::EvsResourcesOffline {
            group: n(EVS_GROUP),
        },
        Action::EvsResourcesOnline {
            group: n(EVS_GROUP),
        },
        Action::UpgradeVirtualServer {
            group: n(EVS_GROUP),
            evs: n("EVS1"),
            command: None,
        },
        Action::UpgradeVirtualServer {
            group: n(EVS_GROUP),
            evs: n("EVS1"),
            command: Some("labctl evs upgrade \"EVS1 Group\"".into()),
        },
        Action::Install {
            package: Name::path(r"\\fs01\install$\E2K3SP2\setup\i386\update.exe").unwrap(),
            args: Name::args("/q /z").unwrap(),
            kind: PackageKind::ServicePack,
            prerequisite: None,
            product: Product::Exchange2003,
            target: Some(Version::new(6, 5, 7638, 2)),
            reboot: RebootPolicy::IfRequired,
        },
        Action::Install {
            package: Name::path(r"\\fs01\install$\KB831464\WindowsServer2003-KB831464-x86-ENU.exe")
                .unwrap(),
            args: Name::args("/quiet /norestart").unwrap(),
            kind: PackageKind::Hotfix,
            prerequisite: Some("KB831464".into()),
            product: Product::Exchange2003,
            target: None,
            reboot: RebootPolicy::Always,
        },
        Action::Install {
            package: Name::path(r"C:\hotfix\fix.exe").unwrap(),
            args: Name::args("").unwrap(),
            kind: PackageKind::Hotfix,
            prerequisite: None,
            product: Product::Exchange2003,
            target: None,
            reboot: RebootPolicy::Never,
        },
        Action::Reboot,
        Action::StopServices {
            services: vec![n("McShield"), n("BackupExecAgentAccelerator"), n("SNMP")],
        },
        Action::StartServices {
            services: vec![n("McShield"), n("SNMP")],
        },
        Action::AssertVersion {
            product: Product::Exchange2003,
            expected: Version::new(6, 5, 7638, 2),
        },
        Action::Preflight {
            checks: vec![
                PreflightCheck::ProductMatches,
                PreflightCheck::EditionMatches,
                PreflightCheck::NoProcesses {
                    images: vec!["setup.exe".into()],
                },
                PreflightCheck::NoPendingReboot,
                PreflightCheck::ClusterServiceRunning,
                PreflightCheck::ServicesStopped {
                    services: vec!["McShield".into(), "SNMP".into()],
                },
            ],
            editions: vec![Edition::Standard, Edition::Enterprise],
            product: Some(Product::Exchange2003),
        },
        Action::FailoverTest {
            group: n(EVS_GROUP),
            nodes: vec![n2.clone(), n1.clone()],
        },
        Action::Confirm {
            message: "Take a full backup of every Exchange database".into(),
            command: None,
        },
        Action::Confirm {
            message: "Backup checked".into(),
            command: Some(r"C:\ops\check-backup.cmd".into()),
        },
        Action::NlbDrain,
        Action::NlbStart,
    ]
}

#[test]
fn render_every_action() {
    let host = Name::host(N1).unwrap();
    let mut text = String::new();
    for a in every_action() {
        text.push_str(&format!("# {}\n", a.kind()));
        for line in render(&a, &host) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    insta::assert_snapshot!(text);
}

#[test]
fn the_contract_lines_of_docs_commands_md() {
    let host = Name::host(N1).unwrap();
    let first = |a: Action| {
        render(&a, &host)
            .into_iter()
            .find(|l| !l.starts_with("rem "))
            .unwrap()
    };
    assert_eq!(
        first(Action::MoveGroup {
            group: n("EVS 1"),
            to: Name::host(N2).unwrap()
        }),
        "cluster group \"EVS 1\" /moveto:PRG-N2 /wait:120"
    );
    assert_eq!(first(Action::StopClusterService), "net stop clussvc");
    assert_eq!(first(Action::StartClusterService), "net start clussvc");
    assert_eq!(
        first(Action::EvsResourcesOnline { group: n("EVS 1") }),
        "cluster group \"EVS 1\" /online /wait:120"
    );
    assert_eq!(first(Action::Reboot), "shutdown /r /t 0 /f");
    assert_eq!(
        render(&Action::NlbStart, &host).last().unwrap(),
        "wlbs start"
    );
    assert_eq!(
        render(&Action::NlbDrain, &host).last().unwrap(),
        "wlbs drainstop"
    );
}

#[test]
fn every_rendered_line_is_free_of_cmd_metacharacters() {
    let host = Name::host(N1).unwrap();
    for a in every_action() {
        for line in render(&a, &host) {
            for bad in ['&', '|', '<', '>', '^', '%', '!'] {
                if line.starts_with("rem ") {
                    continue;
                }
                assert!(!line.contains(bad), "{line}");
            }
        }
    }
}
