//! A run deletes the WinRM shells it opened when it ends or halts: shells left open count
//! against the node's `MaxShellsPerUser` until its `IdleTimeout` (two hours on Windows). The lab
//! runs in this process so that its open shells can be counted after the controller exits.

use std::collections::BTreeMap;

use lockstep_lab::{Fault, Lab, LabConfig, Recorder};

use crate::util::{code, lab_inventory, lockstep, text, LAB_PASSWORD};

/// The shipped lab fleet served in this process; `lockstep run` gets an overlay to it.
struct InProcess {
    runtime: tokio::runtime::Runtime,
    lab: Option<Lab>,
    dir: tempfile::TempDir,
}

impl InProcess {
    fn start() -> InProcess {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (fleet, _) = lockstep::lab_support::load_fleet(&[lab_inventory()]).unwrap();
        let user = lockstep::lab_support::lab_user(&fleet);
        let lab = runtime
            .block_on(Lab::start(
                &fleet,
                LabConfig::default(),
                lockstep::lab_support::lab_server_config(&user, LAB_PASSWORD, false, false),
                Recorder::null(),
            ))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        // The stand-in packages the playbooks' `stage` steps copy, as `lockstep lab` writes them.
        let packages = dir.path().join("overlay.packages");
        LabConfig::default().write_packages(&packages).unwrap();
        let overlay = lockstep::lab_support::overlay(
            &lab.endpoints(),
            &user,
            "LOCKSTEP_LAB_PASSWORD",
            None,
            Some(&packages),
            None,
        );
        std::fs::write(dir.path().join("overlay.yml"), overlay).unwrap();
        InProcess {
            runtime,
            lab: Some(lab),
            dir,
        }
    }

    fn lab(&self) -> &Lab {
        self.lab.as_ref().unwrap()
    }

    fn rollout(&self, playbook: &str, extra: &[&str]) -> std::process::Output {
        let inventory = lab_inventory();
        lockstep(self.dir.path())
            .args([
                "run",
                "-i",
                inventory.to_str().unwrap(),
                "-i",
                "overlay.yml",
            ])
            .args([playbook, "--yes", "--soak-scale", "0"])
            .args(extra)
            .output()
            .unwrap()
    }

    /// Hosts with shells still open.
    fn open_shells(&self) -> BTreeMap<String, usize> {
        self.lab()
            .open_shells()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(lab) = self.lab.take() {
            self.runtime.block_on(lab.shutdown());
        }
    }
}

#[test]
fn a_run_deletes_its_shells_when_it_checks_halts_and_ends() {
    let lab = InProcess::start();
    // `--check` discovers every node (shells on each) and stops before the first change.
    let checked = lab.rollout("e3-nc", &["--check"]);
    assert_eq!(code(&checked), 0, "{}", text(&checked));
    assert!(lab.lab().stats().commands > 0, "discovery ran commands");
    assert_eq!(lab.open_shells(), BTreeMap::new(), "after `run --check`");

    // A halt (an installer fails: no command is left running) deletes every shell.
    lab.lab()
        .world()
        .set_fault("TYO-EXC01", Fault::InstallerFails { exit_code: 1603 });
    let halted = lab.rollout("e3-nc", &[]);
    assert_eq!(code(&halted), 3, "{}", text(&halted));
    assert!(
        String::from_utf8_lossy(&halted.stderr).contains("(step-failed)"),
        "{}",
        text(&halted)
    );
    assert_eq!(lab.open_shells(), BTreeMap::new(), "after a halted run");

    // The resumed run, to its end, as well.
    lab.lab().world().clear_faults("TYO-EXC01");
    let resumed = lockstep(lab.dir.path())
        .args(["resume", "--yes", "--soak-scale", "0"])
        .output()
        .unwrap();
    assert_eq!(code(&resumed), 0, "{}", text(&resumed));
    assert_eq!(lab.open_shells(), BTreeMap::new(), "after a finished run");
}
