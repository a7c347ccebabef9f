//! Every rule of KB 328839 in the shipped playbooks, each proven in the lab.
//!
//! `every_rule_id_is_cited_or_advice` holds the map of rule ids (`docs/kb328839-rules.yml`)
//! against the procedure file and the KB playbooks' `rule:` citations; the lab scenarios below
//! each prove one rule by the lab's record (the order of what ran) or by the halt.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::util::{code, repo, text, Lab};

/// The KB's playbooks: one per KB 328839 procedure (`e2-*`, `e3-*`, `e5-*`); other playbooks
/// in `playbooks/` are an administrator's own procedures.
fn kb_playbooks() -> Vec<(String, serde_yaml::Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(repo("playbooks")).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let kb = ["e2-", "e3-", "e5-"].iter().any(|p| name.starts_with(p));
        if kb && path.extension().is_some_and(|x| x == "yml") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((name, serde_yaml::from_str(&text).unwrap()));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 9, "the nine KB playbooks are found");
    out
}

/// `(playbook/step, rule)` of every step of the KB playbooks.
fn citations() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, pb) in kb_playbooks() {
        for phase in pb["phases"].as_sequence().unwrap() {
            for step in phase["steps"].as_sequence().unwrap() {
                let id = step["id"].as_str().unwrap();
                let rule = step["rule"].as_str().unwrap_or_default();
                out.push((format!("{name}/{id}"), rule.to_owned()));
            }
        }
    }
    out
}

/// Whether `id` is written in KB 328839's namespace (the spec's own test for it).
fn kb_namespace(id: &str) -> bool {
    let b = id.as_bytes();
    let numbered = |p: u8| b.len() >= 2 && b[0] == p && b[1].is_ascii_digit();
    numbered(b'G') || numbered(b'T') || ["E2-", "E3-", "E5-"].iter().any(|p| id.starts_with(p))
}

/// The procedure file, `shared/procedure/kb328839.md` beside the repository (the project's
/// layout: `../shared` from the checkout, or from a folder above it for a worktree); `None` in a
/// clone of the repository alone.
fn procedure_file() -> Option<(PathBuf, String)> {
    repo("").ancestors().skip(1).find_map(|dir| {
        let p = dir.join("shared/procedure/kb328839.md");
        std::fs::read_to_string(&p).ok().map(|t| (p, t))
    })
}

/// Every rule id of `kb328839.md`: its rules (`- G5 ...`), its procedures
/// (`### Procedure E3-CLUSTER ...`) and their numbered steps (`E3-CLUSTER.7`).
fn ids_of_procedure_file(text: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut procedure: Option<String> = None;
    for line in text.lines() {
        if line.starts_with('#') {
            procedure = line
                .strip_prefix("### Procedure ")
                .and_then(|r| r.split_whitespace().next())
                .map(|p| p.trim_end_matches(['.', ':']).to_owned());
            ids.extend(procedure.clone());
            continue;
        }
        if let Some(rest) = line.strip_prefix("- ") {
            let id = rest.split_whitespace().next().unwrap_or_default();
            if kb_namespace(id) {
                ids.insert(id.to_owned());
            }
            continue;
        }
        if let (Some(p), Some((n, _))) = (&procedure, line.split_once(". ")) {
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                ids.insert(format!("{p}.{n}"));
            }
        }
    }
    ids
}

#[test]
#[allow(clippy::print_stderr)] // the test log says when the procedure file was not compared
fn every_rule_id_is_cited_or_advice() {
    let map: BTreeMap<String, serde_yaml::Value> =
        serde_yaml::from_str(&std::fs::read_to_string(repo("docs/kb328839-rules.yml")).unwrap())
            .unwrap();
    let cites = citations();
    let mut problems = Vec::new();

    // The map lists exactly the ids of the procedure file.
    match procedure_file() {
        Some((path, text)) => {
            let ids = ids_of_procedure_file(&text);
            assert!(
                ids.len() > 50,
                "{} ids read from {}",
                ids.len(),
                path.display()
            );
            for id in ids.iter().filter(|id| !map.contains_key(*id)) {
                problems.push(format!(
                    "`{id}` (in {}) is missing from docs/kb328839-rules.yml",
                    path.display()
                ));
            }
            for id in map.keys().filter(|id| !ids.contains(*id)) {
                problems.push(format!(
                    "`{id}` of docs/kb328839-rules.yml is not a rule id of {}",
                    path.display()
                ));
            }
        }
        None => eprintln!(
            "note: no shared/procedure/kb328839.md beside {}; the map is checked against the \
             playbooks only",
            repo("").display()
        ),
    }

    // Each id: cited by a step, or advice with a reason.
    for (id, how) in &map {
        let citing: Vec<&str> = cites
            .iter()
            .filter(|(_, r)| {
                r == id
                    || r.strip_prefix(id.as_str())
                        .is_some_and(|t| t.starts_with('.'))
            })
            .map(|(s, _)| s.as_str())
            .collect();
        match (how.as_str(), how["advice"].as_str()) {
            (Some("cited"), _) if citing.is_empty() => problems.push(format!(
                "`{id}` is marked cited, but no step of a KB playbook cites it"
            )),
            (Some("cited"), _) => {}
            (None, Some(reason)) if reason.split_whitespace().count() < 5 => {
                problems.push(format!("`{id}` is advice without a reason (`{reason}`)"))
            }
            (None, Some(_)) if !citing.is_empty() => problems.push(format!(
                "`{id}` is marked advice, but {} cite it: mark it cited",
                citing.join(", ")
            )),
            (None, Some(_)) => {}
            _ => problems.push(format!(
                "`{id}`: write `cited` or `{{ advice: REASON }}`, not {how:?}"
            )),
        }
    }

    // Every KB-namespace citation names an id of the map (a typo is not a citation).
    for (step, rule) in &cites {
        if kb_namespace(rule) && !map.contains_key(rule) {
            problems.push(format!("{step} cites `{rule}`, which is not in the map"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_id_reader_reads_rules_procedures_and_steps() {
    // The reader the map test relies on, on a sample in the procedure file's shape.
    let sample = "## 1. Rules\n\n- G1 Take a backup.\n- E3-C2 When moving.\n  continued 2. line\n\
                  ### Procedure E2-X (two nodes)\n1. Apply.\n2. Move.\n### Troubleshooting\n\
                  - T1 Missing.\n3. not a step\n";
    let ids: Vec<String> = ids_of_procedure_file(sample).into_iter().collect();
    assert_eq!(ids, ["E2-X", "E2-X.1", "E2-X.2", "E3-C2", "G1", "T1"]);
}

// ---- plans of every KB playbook ----

/// `lockstep plan NAME` on the shipped lab inventory (plus `extra` inventories), as text.
fn plan(name: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let inv = crate::util::lab_inventory();
    let mut args = vec!["plan", "-i", inv.to_str().unwrap()];
    for e in extra {
        args.extend(["-i", e]);
    }
    args.push(name);
    let o = crate::util::run(dir.path(), &args);
    (code(&o), text(&o))
}

/// The plan's steps per unit block (`Cluster X`, `Host X`, `Pool X`): `(block, rule, step id)`.
fn plan_steps(plan: &str) -> Vec<(String, String, String)> {
    let mut block = String::new();
    let mut out = Vec::new();
    for line in plan.lines() {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if indent == 4
            && ["Cluster ", "Host ", "Pool "]
                .iter()
                .any(|p| t.starts_with(p))
        {
            block = t.to_owned();
        } else if indent >= 6 && t.starts_with('[') {
            let (rule, rest) = t[1..].split_once("] ").unwrap();
            let id = rest.split("  ").next().unwrap();
            out.push((block.clone(), rule.to_owned(), id.to_owned()));
        }
    }
    out
}

fn is_install(id: &str) -> bool {
    // `install-sp`, `fe-install-sp`, `be-install-sp`, `sbs-install-sp`, `iis-hotfix`.
    id.ends_with("install-sp") || id.ends_with("/iis-hotfix")
}

/// In every unit of the plan, each install comes after a step citing one of `rules` for its
/// host or its cluster; returns how many installs were checked.
fn assert_before_every_install(name: &str, plan: &str, rules: &[&str]) -> usize {
    let steps = plan_steps(plan);
    let mut checked = 0;
    for (i, (block, _, id)) in steps.iter().enumerate() {
        if !is_install(id) {
            continue;
        }
        let host = id.split('/').next().unwrap();
        let cluster = block.strip_prefix("Cluster ").unwrap_or("-");
        let ok = steps[..i].iter().any(|(b, r, s)| {
            let unit = s.split('/').next().unwrap();
            b == block && rules.contains(&r.as_str()) && (unit == host || unit == cluster)
        });
        assert!(
            ok,
            "{name}: {id} is not preceded by a {rules:?} step of its unit:\n{plan}"
        );
        checked += 1;
    }
    checked
}

/// The KB playbooks' names and files (the same selection as the rule map's).
fn kb_playbook_files() -> Vec<(String, String)> {
    kb_playbooks()
        .into_iter()
        .map(|(n, _)| {
            let path = repo(&format!("playbooks/{n}.yml"));
            (n, path.to_str().unwrap().to_owned())
        })
        .collect()
}

/// G2: every KB playbook has the operator read the release notes before any install of a unit.
#[test]
fn g2_release_notes_before_every_install_of_every_playbook() {
    for (name, file) in kb_playbook_files() {
        let (c, out) = plan(&file, &[]);
        assert_eq!(c, 0, "{out}");
        let n = assert_before_every_install(&name, &out, &["G2"]);
        assert!(n > 0, "{name}: no install in the plan:\n{out}");
    }
}

/// G4 / E2-ADC: where the inventory says the organisation runs an ADC (`exchange_adc`, set
/// in the lab inventory), every Exchange 2000/2003 playbook has the ADC step before each
/// install; where it says none, the step is not planned.
#[test]
fn g4_adc_step_where_the_inventory_has_an_adc() {
    let dir = tempfile::tempdir().unwrap();
    let no_adc = dir.path().join("no-adc.yml");
    std::fs::write(&no_adc, "all:\n  vars:\n    exchange_adc: false\n").unwrap();
    for (name, file) in kb_playbook_files() {
        if name.starts_with("e5-") {
            continue;
        }
        let rule = if name.starts_with("e2-") {
            "E2-ADC"
        } else {
            "G4"
        };
        let (c, out) = plan(&file, &[]);
        assert_eq!(c, 0, "{out}");
        assert!(assert_before_every_install(&name, &out, &[rule]) > 0);
        let (c, out) = plan(&file, &[no_adc.to_str().unwrap()]);
        assert_eq!(c, 0, "{out}");
        assert!(
            !plan_steps(&out).iter().any(|(_, r, _)| r == rule),
            "{name}: an ADC step without an ADC:\n{out}"
        );
    }
}

// ---- rollouts on the lab ----

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Index of the first progress line containing every part of `parts`.
fn line_of(progress: &str, parts: &[&str]) -> usize {
    progress
        .lines()
        .position(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| panic!("no progress line with {parts:?}:\n{progress}"))
}

/// The record's events on `host`, in order, as `(event, package-or-line)`.
fn events_on(lab: &Lab, host: &str) -> Vec<serde_json::Value> {
    lab.records()
        .into_iter()
        .filter(|r| r["host"] == host)
        .collect()
}

/// G2, E2-ADC and E2-SBS on a rollout: on the standalone server and on the Small Business
/// Server 2000, the release notes and the ADC are confirmed before the installer starts; the
/// SBS gets the integrated SBS 2000 SP1 setup (the lab refuses the Exchange SP3 update alone on
/// it) and ends at Exchange 2000 SP3 like the standalone server.
#[test]
fn e2_nc_confirms_then_installs_the_integrated_sbs_package() {
    let lab = Lab::start(None);
    let o = lab.rollout("e2-nc", &["--limit", "SEA-EX2K01,SEA-SBS01"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let progress = stderr(&o);
    for (host, install) in [
        ("SEA-EX2K01", "install-sp"),
        ("SEA-SBS01", "sbs-install-sp"),
    ] {
        let started = line_of(&progress, &["running", &format!("{host}/{install}")]);
        assert!(
            line_of(
                &progress,
                &["done", "[G2]", &format!("{host}/release-notes")]
            ) < started
        );
        assert!(line_of(&progress, &["done", "[E2-ADC]", &format!("{host}/adc")]) < started);
    }
    let installs: Vec<(String, String, String)> = lab
        .records()
        .into_iter()
        .filter(|r| r["event"] == "install-finished")
        .map(|r| {
            (
                r["host"].as_str().unwrap().to_owned(),
                r["package"].as_str().unwrap().to_owned(),
                r["version_after"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(installs.len(), 2, "{installs:?}");
    for (host, package, after) in &installs {
        let want = if host == "SEA-SBS01" {
            "SBS2000SP1"
        } else {
            "E2KSP3"
        };
        assert!(package.contains(want), "{host}: {package}");
        assert_eq!(after, "6.0.6249.0", "{host}");
    }
    lab.assert_invariants();
}

/// The lab refuses the Exchange 2000 SP3 update alone on a Small Business Server 2000 (exit
/// 1642): the E2-SBS package above is not a formality.
#[test]
fn the_exchange_sp3_update_alone_is_refused_on_sbs_2000() {
    // Run from the share (a rehearsal of a setup without the double hop): the point is E2-ED.
    let lab = Lab::start(Some("double_hop: allow\n"));
    let o = lab.run(&[
        "exec",
        "-i",
        crate::util::lab_inventory().to_str().unwrap(),
        "-i",
        "overlay.yml",
        "--limit",
        "SEA-SBS01",
        "--",
        r#""\\fs01\install$\E2KSP3\setup\i386\update.exe" /q"#,
    ]);
    assert!(text(&o).contains("1642"), "{}", text(&o));
    assert!(
        !lab.records()
            .iter()
            .any(|r| r["event"] == "install-finished" && r["exit_code"] == 0),
        "nothing installed"
    );
}

/// E2-ED: SP3 is the last service pack of Exchange 2000 Conferencing Server. A playbook with a
/// later target that takes the Conferencing server is refused before anything runs, with what to
/// do instead (another package), and the lab record shows no command at all.
#[test]
fn e2_ed_a_target_past_sp3_is_refused_for_conferencing_server() {
    let lab = Lab::start(None);
    let pb = std::fs::read_to_string(repo("playbooks/e2-nc.yml"))
        .unwrap()
        .replace("name: e2-nc", "name: e2-post-sp3")
        .replace(r#"hosts: [all, "!own_service_pack"]"#, "hosts: [all]")
        .replace("build: 6.0.6249.0", "build: 6.0.6620.7");
    assert!(pb.contains("6.0.6620.7") && pb.contains("hosts: [all]\n"));
    std::fs::write(lab.path().join("post-sp3.yml"), pb).unwrap();
    let o = lab.rollout("post-sp3.yml", &[]);
    assert_eq!(code(&o), 2, "refused at plan time: {}", text(&o));
    let err = stderr(&o);
    for part in [
        "MIL-CONF01",
        "Conferencing Server",
        "SP3",
        "E2-ED",
        "package",
    ] {
        assert!(err.contains(part), "`{part}` in: {err}");
    }
    assert!(!err.contains("lockstep resume"), "{err}");
    assert!(
        !lab.records().iter().any(|r| r["event"] == "command"),
        "nothing ran"
    );
}

/// The inventory of a cluster moved from Exchange 2000 by clean install (E3-C2): SEACL1 with
/// its virtual server at `evs_build`.
fn migrated_cluster(dir: &std::path::Path, evs_build: &str) -> PathBuf {
    let p = dir.join(format!("migrated-{evs_build}.yml"));
    std::fs::write(
        &p,
        format!(
            "all:\n  children:\n    seattle:\n      children:\n        sea_cl1:\n          vars:\n\
             \x20           exchange_migrated_by_clean_install: true\n\
             \x20           lockstep_cluster:\n\
             \x20             name: SEACL1\n\
             \x20             mode: active-passive\n\
             \x20             cluster_group: {{ name: Cluster Group, owner: SEA-N1 }}\n\
             \x20             virtual_servers:\n\
             \x20               - {{ name: SEAEVS1, group: SEAEVS1 Group, owner: SEA-N1, build: {evs_build} }}\n"
        ),
    )
    .unwrap();
    p
}

/// E3-C2: on a cluster moved from Windows 2000/Exchange 2000 by clean install, the service pack
/// is refused while its virtual server is still older than Exchange 2003 (upgrade it first, KB
/// 842427); once it is upgraded, the plan has the operator confirm it before the service pack.
#[test]
fn e3_c2_no_service_pack_before_the_evs_of_a_migrated_cluster_is_upgraded() {
    let lab = Lab::start(None);
    let old = migrated_cluster(lab.path(), "6.0.6249.0");
    let inv = crate::util::lab_inventory();
    let o = lab.run(&[
        "run",
        "-i",
        inv.to_str().unwrap(),
        "-i",
        "overlay.yml",
        "-i",
        old.to_str().unwrap(),
        "e3-cluster",
        "--yes",
        "--soak-scale",
        "0",
    ]);
    assert_eq!(code(&o), 2, "refused at plan time: {}", text(&o));
    let err = stderr(&o);
    for part in [
        "SEACL1",
        "SEAEVS1",
        "6.0.6249.0",
        "842427",
        "E3-C2",
        "Upgrade Exchange Virtual Server",
    ] {
        assert!(err.contains(part), "`{part}` in: {err}");
    }
    assert!(
        !lab.records()
            .iter()
            .any(|r| r["event"] == "install-started"),
        "nothing installed"
    );

    // Upgraded to Exchange 2003: planned, with the E3-C2 confirmation before SEACL1's installs
    // (and on no other cluster).
    let new = migrated_cluster(lab.path(), "6.5.6944.4");
    let (c, out) = plan("e3-cluster", &[new.to_str().unwrap()]);
    assert_eq!(c, 0, "{out}");
    let steps = plan_steps(&out);
    let c2: Vec<&String> = steps
        .iter()
        .filter(|(_, r, _)| r == "E3-C2")
        .map(|(_, _, s)| s)
        .collect();
    assert_eq!(c2, ["SEACL1/evs-upgraded-first"], "{out}");
    let first_install = steps
        .iter()
        .position(|(_, _, s)| s.starts_with("SEA-N") && is_install(s))
        .unwrap();
    let confirm = steps.iter().position(|(_, r, _)| r == "E3-C2").unwrap();
    assert!(confirm < first_install, "{out}");
}

/// T1: "Upgrade Exchange Virtual Server" is missing on the upgraded node (it was evicted and
/// added again), so the operator cannot do it; bringing the virtual server online by hand fails
/// with MSExchangeCluster event 1025. The operator approves the step anyway: the run reads the
/// EVS's version, finds it not upgraded, reads event 1025 from the node's Application log (WQL)
/// and keeps waiting with the KB's cause (node evicted and added again) and fix (Setup,
/// Reinstall); the other node is never touched.
#[test]
fn t1_event_1025_halts_with_the_kb_cause_and_fix() {
    let lab = Lab::start(None);
    // Front-ends first (E3-FB): the engine refuses a back-end install before.
    let o = lab.rollout("e3-fb", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = lab.rollout("e3-cluster", &["--limit", "SEACL1"]);
    assert_eq!(code(&o), 4, "waits for the EVS upgrade: {}", text(&o));
    // The operator, finding no "Upgrade Exchange Virtual Server", tries the group online.
    let inv = crate::util::lab_inventory();
    let e = lab.run(&[
        "exec",
        "-i",
        inv.to_str().unwrap(),
        "-i",
        "overlay.yml",
        "-l",
        "SEA-N2",
        "--",
        "cluster group \"SEAEVS1 Group\" /online /wait:120",
    ]);
    assert_ne!(code(&e), 0, "the group does not come online: {}", text(&e));
    let a = lab.run(&["approve", "--what", "SEACL1/SEAEVS1 Group/upgrade-evs"]);
    assert_eq!(code(&a), 0, "{}", text(&a));
    let r = lab.run(&["resume", "--yes", "--soak-scale", "0"]);
    assert_eq!(code(&r), 4, "keeps waiting: {}", text(&r));
    let err = stderr(&r);
    for part in ["event 1025", "T1", "evicted", "Reinstall", "SEA-N2"] {
        assert!(err.contains(part), "`{part}` in: {err}");
    }
    let recs = lab.records();
    let event = recs
        .iter()
        .position(|r| r["event"] == "event-log" && r["id"] == 1025 && r["host"] == "SEA-N2")
        .expect("the lab wrote event 1025 on SEA-N2");
    assert!(
        !recs[event..]
            .iter()
            .any(|r| r["event"] == "install-started" && r["host"] == "SEA-N1"),
        "the other node was not touched after the event"
    );
}

/// E5-CLUSTER (with the cluster note of the 5.5 section, E3-C) and E5-G: the active node is
/// upgraded first with its Cluster service running and its group never moved; the passive node's
/// Cluster service is stopped before its Setup and started after; a Performance Optimizer
/// command the operator supplies runs on each node after its service pack.
#[test]
fn e5_cluster_passive_node_without_its_cluster_service_and_perfwiz_after() {
    let lab = Lab::start(None);
    let o = lab.rollout(
        "e5-cluster",
        &[
            "--limit",
            "TYOCL1",
            "-e",
            "perf_optimizer_command=rem perfwiz.exe -s",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let recs = lab.records();
    assert!(
        !recs
            .iter()
            .any(|r| r["event"] == "group-moved" && r["cluster"] == "TYOCL1"),
        "E5-CLUSTER.1: no group moved"
    );
    let pos = |host: &str, f: &dyn Fn(&serde_json::Value) -> bool| {
        recs.iter()
            .position(|r| r["host"] == host && f(r))
            .unwrap_or_else(|| panic!("{host}: event not in the record"))
    };
    let installed = |h: &str| pos(h, &|r| r["event"] == "install-finished");
    let started = |h: &str| pos(h, &|r| r["event"] == "install-started");
    // Active node first, its Cluster service up throughout.
    assert!(installed("TYO-N1") < started("TYO-N2"));
    assert!(!events_on(&lab, "TYO-N1")
        .iter()
        .any(|r| r["event"] == "cluster-service" && r["state"] == "down"));
    // Passive node: Cluster service down before Setup, up after.
    let down = pos("TYO-N2", &|r| {
        r["event"] == "cluster-service" && r["state"] == "down"
    });
    let up = pos("TYO-N2", &|r| {
        r["event"] == "cluster-service" && r["state"] == "up"
    });
    assert!(down < started("TYO-N2") && installed("TYO-N2") < up);
    // E5-G: Performance Optimizer after each node's service pack.
    for h in ["TYO-N1", "TYO-N2"] {
        let perf = pos(h, &|r| {
            r["event"] == "command" && r["line"].as_str().unwrap_or_default().contains("perfwiz")
        });
        assert!(installed(h) < perf, "{h}");
    }
    lab.assert_invariants();
}
