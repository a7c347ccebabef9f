//! `lockstep facts` against the lab: the fleet's builds before and after every shipped rollout
//! match the lab's own record; a host refusing connections is listed as unreachable with a
//! non-zero exit code; wrong credentials are named as such; facts are kept with their time.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{code, lab_inventory, lockstep, text, Lab};

fn facts(lab: &Lab, extra: &[&str]) -> (i32, Value, String) {
    let inv = lab_inventory();
    let mut args = vec![
        "facts",
        "-i",
        inv.to_str().unwrap(),
        "-i",
        "overlay.yml",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let o = lab.run(&args);
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    (code(&o), v, text(&o))
}

/// Host -> Exchange build, from a `facts --format json` document (every host must be reachable).
fn builds(v: &Value) -> BTreeMap<String, String> {
    v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["reachable"], true, "{h}");
            (
                h["host"].as_str().unwrap().to_owned(),
                h["exchange"]["build"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Host -> build by the lab's record: the header's build, then every install's `version_after`.
fn recorded_builds(lab: &Lab) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for r in lab.records() {
        match r["event"].as_str() {
            Some("lab-started") => {
                for h in r["hosts"].as_array().unwrap() {
                    m.insert(
                        h["name"].as_str().unwrap().to_owned(),
                        h["build"].as_str().unwrap().to_owned(),
                    );
                }
            }
            Some("install-finished") => {
                m.insert(
                    r["host"].as_str().unwrap().to_owned(),
                    r["version_after"].as_str().unwrap().to_owned(),
                );
            }
            _ => {}
        }
    }
    m
}

#[test]
fn builds_before_and_after_every_rollout_match_the_lab_record() {
    let lab = Lab::start(None);
    let (c, before, t) = facts(&lab, &[]);
    assert_eq!(c, 0, "{t}");
    let before = builds(&before);
    assert_eq!(before, recorded_builds(&lab), "before any rollout");
    assert!(before.len() > 50, "every lab host is read: {before:?}");

    for pb in lockstep::lab_support::DEMO_ORDER {
        let o = lab.rollout(pb, &["-e", "evs_upgrade_tool=labctl evs upgrade"]);
        assert_eq!(code(&o), 0, "{pb}: {}", text(&o));
    }
    let (c, after_doc, t) = facts(&lab, &[]);
    assert_eq!(c, 0, "{t}");
    let after = builds(&after_doc);
    let recorded = recorded_builds(&lab);
    assert_eq!(after, recorded, "after the rollouts");
    // Every host the record shows an installer finishing on moved, and the table says the
    // inventory is now behind it.
    let installed: Vec<String> = lab
        .records()
        .iter()
        .filter(|r| r["event"] == "install-finished")
        .map(|r| r["host"].as_str().unwrap().to_owned())
        .collect();
    assert!(installed.len() > 40, "{installed:?}");
    let moved = before.iter().filter(|(h, b)| after[*h] != **b).count();
    assert!(moved > 40, "builds moved on {moved} hosts");
    let prg_n1 = after_doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "PRG-N1")
        .unwrap();
    assert!(
        prg_n1["drift"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d.as_str().unwrap().contains("newer")),
        "{prg_n1}"
    );
}

#[test]
fn a_refusing_host_is_unreachable_and_the_exit_code_says_so() {
    let lab = Lab::start(None);
    lab.fault("PRG-N2", "refuse", None);
    let (c, v, t) = facts(&lab, &["-l", "prague"]);
    assert_eq!(c, 5, "{t}");
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 7, "no host dropped: {v}");
    for h in hosts {
        if h["host"] == "PRG-N2" {
            assert_eq!(h["reachable"], false, "{h}");
            assert_eq!(h["unreachable"]["kind"], "refused", "{h}");
        } else {
            assert_eq!(h["reachable"], true, "{h}");
            assert!(
                h["windows"]["version"].as_str().unwrap().starts_with("5."),
                "{h}"
            );
            assert!(h["disks"][0]["free_bytes"].as_u64().unwrap() > 0, "{h}");
        }
    }
    // The owners came from the node still up.
    assert_eq!(v["clusters"][0]["owners"]["Cluster Group"], "PRG-N1", "{v}");

    // The table and CSV say the same.
    let inv = lab_inventory();
    let inv = inv.to_str().unwrap();
    let o = lab.run(&["facts", "-i", inv, "-i", "overlay.yml", "-l", "prague"]);
    assert_eq!(code(&o), 5, "{}", text(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let row = table.lines().find(|l| l.contains("PRG-N2")).unwrap();
    assert!(row.contains("UNREACHABLE (refused)"), "{table}");
    let o = lab.run(&[
        "facts",
        "-i",
        inv,
        "-i",
        "overlay.yml",
        "-l",
        "prague",
        "--format",
        "csv",
    ]);
    let csv = String::from_utf8_lossy(&o.stdout);
    assert_eq!(csv.lines().count(), 8, "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("PRG-N2,prague,PRGCL1,false,refused,")),
        "{csv}"
    );

    // Kept with the time they were read.
    let store = lockstep_store::SqliteStore::open(&lab.path().join("state.db")).unwrap();
    let kept = lockstep_core::StateStore::latest_fleet_facts(&store).unwrap();
    let n2 = kept.iter().find(|f| f.host.as_str() == "PRG-N2").unwrap();
    assert_eq!(n2.key, "unreachable");
    assert!(n2.value.starts_with("refused: "), "{n2:?}");
    assert!(n2.at_ms > 1_700_000_000_000);
    assert!(kept
        .iter()
        .any(|f| f.host.as_str() == "PRG-N1" && f.key == "exchange.build"));

    // A later plan says how old its preview is.
    let o = lab.run(&["plan", "-i", inv, "e3-cluster"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("were read by `lockstep facts`, the oldest"),
        "{err}"
    );

    // Wrong credentials are named as such (and never printed).
    let o = lockstep(lab.path())
        .env("LOCKSTEP_LAB_PASSWORD", "not-the-lab-password")
        .args([
            "facts",
            "-i",
            inv,
            "-i",
            "overlay.yml",
            "-l",
            "PRG-FE01",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 5, "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["hosts"][0]["unreachable"]["kind"], "credentials", "{v}");
    assert!(!text(&o).contains("not-the-lab-password"));

    // A probe name that does not exist is bad input, nothing read.
    let o = lab.run(&[
        "facts",
        "-i",
        inv,
        "-i",
        "overlay.yml",
        "--probe",
        "disk-space",
    ]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("`--probe disk-space`"), "{}", text(&o));
}

#[test]
fn the_demo_reads_the_builds_before_and_after_like_facts() {
    let dir = tempfile::tempdir().unwrap();
    let o = crate::util::run(dir.path(), &["demo", "--playbooks", "e3-nc"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    // The hosts whose build the lab's record shows changing.
    let record = std::fs::read_to_string(dir.path().join(".lockstep/demo-record.jsonl")).unwrap();
    let mut start = BTreeMap::new();
    let mut end = BTreeMap::new();
    for l in record.lines() {
        let r: Value = serde_json::from_str(l).unwrap();
        if r["event"] == "lab-started" {
            for h in r["hosts"].as_array().unwrap() {
                start.insert(h["name"].as_str().unwrap().to_owned(), h["build"].clone());
            }
        } else if r["event"] == "install-finished" {
            end.insert(
                r["host"].as_str().unwrap().to_owned(),
                r["version_after"].clone(),
            );
        }
    }
    let moved = end.iter().filter(|(h, b)| start[*h] != **b).count();
    assert!(moved > 0, "{record}");
    assert!(
        out.contains(&format!("builds: {moved} of {} hosts moved", start.len())),
        "{out}"
    );
}

/// `--playbook` reads the facts that playbook declares (issue 14), on the hosts it would touch:
/// the values follow the lab's record before and after the rollout, a probe that finds nothing
/// is empty (not an error), and every format and the state store carry them.
#[test]
fn a_playbooks_declared_facts_are_read_on_the_hosts_it_touches() {
    let lab = Lab::start(None);
    // The generic playbook's `sp_build`, plus a registry value every lab host has and one no
    // host has.
    let playbook = crate::generic::PLAYBOOK.replacen(
        "facts:\n",
        "facts:\n  acp: { registry: 'HKLM\\SYSTEM\\CurrentControlSet\\Control\\Nls\\CodePage', value: ACP }\n  absent: { registry: 'HKLM\\SOFTWARE\\Lockstep\\Nowhere', value: Nothing }\n",
        1,
    );
    std::fs::write(lab.path().join("declared.yml"), playbook).unwrap();
    let declared = |lab: &Lab| {
        let (c, v, t) = facts(lab, &["--playbook", "declared.yml"]);
        assert_eq!(c, 0, "{t}");
        v["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["host"].as_str().unwrap().to_owned(),
                    h["declared"].clone(),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    // ServicePackBuild is the third part of the build the record gives.
    let sp_builds = |lab: &Lab, hosts: &BTreeMap<String, Value>| {
        let rec = recorded_builds(lab);
        hosts
            .keys()
            .map(|h| (h.clone(), rec[h].split('.').nth(2).unwrap().to_owned()))
            .collect::<BTreeMap<_, _>>()
    };
    let before = declared(&lab);
    // Exactly the hosts its plan has steps on: it declares no tier order, so no front-end is
    // read on the side.
    let inv = lab_inventory();
    let plan = lab.run(&[
        "plan",
        "-i",
        inv.to_str().unwrap(),
        "declared.yml",
        "--format",
        "json",
    ]);
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let planned: std::collections::BTreeSet<String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["host"].as_str().unwrap().to_owned())
        .collect();
    assert!(planned.len() >= 3, "the playbook's hosts: {planned:?}");
    assert_eq!(
        before
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        planned
    );
    let want = sp_builds(&lab, &before);
    for (h, d) in &before {
        assert_eq!(d["sp_build"], want[h].as_str(), "{h}: {d}");
        assert!(
            d["acp"].as_str().unwrap().parse::<u32>().unwrap() > 0,
            "{h}: {d}"
        );
        assert_eq!(d["absent"], Value::Null, "{h}: {d}");
    }
    assert!(
        before.values().any(|d| d["sp_build"] != "7638"),
        "some host is below SP2 before the rollout: {before:?}"
    );

    let o = lab.rollout("declared.yml", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let after = declared(&lab);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        sp_builds(&lab, &after),
        after
            .iter()
            .map(|(h, d)| (h.clone(), d["sp_build"].as_str().unwrap().to_owned()))
            .collect()
    );
    let at_sp2 =
        |m: &BTreeMap<String, Value>| m.values().filter(|d| d["sp_build"] == "7638").count();
    assert!(
        at_sp2(&after) > at_sp2(&before),
        "the rollout moved some: {after:?}"
    );

    // The table has a column per declared fact, the CSV a field, the store a fact per value.
    let inv = lab_inventory();
    let inv = inv.to_str().unwrap();
    let base = [
        "facts",
        "-i",
        inv,
        "-i",
        "overlay.yml",
        "--playbook",
        "declared.yml",
    ];
    let o = lab.run(&base);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let header = table
        .lines()
        .find(|l| l.trim_start().starts_with("HOST"))
        .unwrap();
    assert!(
        header.contains("SP_BUILD") && header.contains("ACP") && header.contains("ABSENT"),
        "{table}"
    );
    let o = lab.run(&[&base[..], &["--format", "csv"]].concat());
    let csv = String::from_utf8_lossy(&o.stdout);
    let columns: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("no column {name}: {csv}"))
    };
    let (sp, absent) = (col("fact_sp_build"), col("fact_absent"));
    // Counted from the end: the declared facts are the last fields, and a quoted field before
    // them (a Windows product name) may hold commas.
    let (sp, absent) = (columns.len() - 1 - sp, columns.len() - 1 - absent);
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').collect())
        .collect();
    assert_eq!(rows.len(), after.len(), "{csv}");
    assert!(
        rows.iter()
            .all(|r| r[sp].parse::<u32>().is_ok() && r[absent].is_empty()),
        "{csv}"
    );
    assert_eq!(
        rows.iter().filter(|r| r[sp] == "7638").count(),
        at_sp2(&after),
        "{csv}"
    );
    let store = lockstep_store::SqliteStore::open(&lab.path().join("state.db")).unwrap();
    let kept = lockstep_core::StateStore::latest_fleet_facts(&store).unwrap();
    let sp: Vec<_> = kept.iter().filter(|f| f.key == "fact.sp_build").collect();
    assert_eq!(sp.len(), after.len(), "{kept:?}");
    for f in &sp {
        assert_eq!(
            after[f.host.as_str()]["sp_build"],
            f.value.as_str(),
            "{f:?}"
        );
    }
    assert!(
        !kept.iter().any(|f| f.key == "fact.absent"),
        "a missing value is not kept"
    );
}
