//! `lockstep plan` of every shipped playbook on `inventory/lab.yml`, as an administrator reads it
//! (snapshots: a change to any plan shows up in review).

use crate::util::{code, run, text};

fn snapshot(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["plan", name]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    insta::assert_snapshot!(format!("plan-{name}"), String::from_utf8_lossy(&o.stdout));
}

#[test]
fn e3_cluster() {
    snapshot("e3-cluster");
}
#[test]
fn e3_fb() {
    snapshot("e3-fb");
}
#[test]
fn e3_nc() {
    snapshot("e3-nc");
}
#[test]
fn e2_active_passive() {
    snapshot("e2-active-passive");
}
#[test]
fn e2_active_active() {
    snapshot("e2-active-active");
}
#[test]
fn e2_fb() {
    snapshot("e2-fb");
}
#[test]
fn e2_nc() {
    snapshot("e2-nc");
}
#[test]
fn e5_cluster() {
    snapshot("e5-cluster");
}
#[test]
fn e5_nc() {
    snapshot("e5-nc");
}
