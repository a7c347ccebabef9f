//! One test per playbook error kind: file, line, column and message are asserted.

use lockstep_core::{Fleet, Gate};
use lockstep_spec::{embedded, load_inventory, load_playbook, Diagnostic, Diagnostics, SourceFile};

const FILE: &str = "playbooks/t.yml";

const BASE: &str = r#"name: t
title: Test
shape: { units: clusters }
hosts: [exchange2003]
target:
  product: "2003"
  build: 6.5.7638.2
  kind: service-pack
  editions: [standard, enterprise]
vars:
  sp_package: '\\fs01\install$\E2K3SP2\setup\i386\update.exe'
  sp_args: /q /z
rollout:
  max_parallel_sites: 2
  stages:
    - { name: canary, sites: [seattle] }
    - { name: rest, sites: ["*"], gate: { soak: 30m } }
phases:
  - name: Upgrade
    scope: first-node
    steps:
      - id: stop-clussvc
        name: Stop the Cluster service on {{ node }}
        rule: E3-CLUSTER.3
        action: stop-cluster-service
      - id: install-sp
        name: Install on {{ node }}
        rule: E3-CLUSTER.4
        when: "windows == '2003'"
        action: install
        package: "{{ sp_package }}"
        args: "{{ sp_args }}"
        timeout_secs: 7200
"#;

fn fleet() -> Fleet {
    load_inventory(&[embedded::LAB_INVENTORY.source()]).unwrap_or_else(|d| panic!("{d}"))
}

fn errors(text: &str) -> Diagnostics {
    match load_playbook(&SourceFile::new(FILE, text), &fleet()) {
        Ok(_) => panic!("expected errors in:\n{text}"),
        Err(d) => d,
    }
}

fn expect(d: &Diagnostics, line: usize, col: usize, parts: &[&str]) -> Diagnostic {
    let found: Vec<&Diagnostic> =
        d.0.iter()
            .filter(|x| x.line == line && x.col == col)
            .collect();
    assert!(!found.is_empty(), "no diagnostic at {line}:{col} in:\n{d}");
    let hit = found
        .iter()
        .find(|x| parts.iter().all(|p| x.message.contains(p)))
        .unwrap_or_else(|| panic!("no diagnostic at {line}:{col} containing {parts:?} in:\n{d}"));
    assert_eq!(hit.file, FILE);
    (*hit).clone()
}

#[test]
fn base_loads_and_star_means_the_rest() {
    let pb =
        load_playbook(&SourceFile::new(FILE, BASE), &fleet()).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(pb.rollout.stages.len(), 2);
    // `"*"` is resolved by the planner: what no other stage takes.
    assert!(pb.rollout.stages[1].rest && pb.rollout.stages[1].sites.is_empty());
    assert_eq!(pb.rollout.stages[0].sites[0].as_str(), "seattle");
    assert!(!pb.rollout.stages[0].rest);
    assert_eq!(pb.rollout.stages[1].gate, Gate::Soak { secs: 1800 });
    assert_eq!(pb.phases[0].steps[1].timeout_secs, Some(7200));
    assert_eq!(pb.vars["sp_args"], "/q /z");
}

#[test]
fn stages_count_sites_take_groups_and_hosts_and_keep_a_budget() {
    let text = BASE.replace(
        r#"    - { name: canary, sites: [seattle] }"#,
        r#"    - { name: canary, sites: 1, failure_budget: { max_failed_hosts: 0 } }
    - { name: pilot, groups: [exchange2000] }
    - { name: picked, hosts: [sea-n1] }"#,
    );
    let pb =
        load_playbook(&SourceFile::new(FILE, &text), &fleet()).unwrap_or_else(|d| panic!("{d}"));
    let st = &pb.rollout.stages;
    assert_eq!(st[0].site_count, Some(1));
    assert_eq!(st[0].failure_budget.map(|b| b.max_failed_hosts), Some(0));
    assert_eq!(st[1].groups[0].as_str(), "exchange2000");
    // The inventory's spelling of the host.
    assert_eq!(st[2].hosts[0].as_str(), "SEA-N1");
    assert!(st[3].rest);
}

#[test]
fn node_order_is_declared_or_refused() {
    let text = BASE.replace(
        "shape: { units: clusters }\n",
        "shape: { units: clusters, node_order: fewest-groups-first }\n",
    );
    let pb =
        load_playbook(&SourceFile::new(FILE, &text), &fleet()).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        pb.shape.node_order,
        Some(lockstep_core::NodeOrderKind::FewestGroupsFirst)
    );
    let d = errors(&BASE.replace(
        "shape: { units: clusters }\n",
        "shape: { units: clusters, node_order: by-nam }\n",
    ));
    expect(
        &d,
        3,
        39,
        &[
            "`by-nam` is not a valid `node_order`",
            "did you mean `by-name`?",
        ],
    );
}

#[test]
fn stage_selectors_are_checked() {
    let text = BASE.replace(
        r#"    - { name: canary, sites: [seattle] }"#,
        r#"    - { name: canary, sites: 0 }
    - { name: pilot, groups: [exchange2030] }
    - { name: both, sites: 1, hosts: [SEA-N1] }
    - { name: none }
    - { name: picked, hosts: [SEA-N9] }
    - { name: again, sites: rest }"#,
    );
    let d = errors(&text);
    for part in [
        "a count of sites must be at least 1",
        "stage names group `exchange2030`, which is not in the inventory (did you mean",
        "stage `both` must take its hosts with exactly one of",
        "stage `none` must take its hosts with exactly one of",
        "stage names host `SEA-N9`, which is not in the inventory",
        "`rest` (or `*`) may appear in one stage only",
    ] {
        assert!(
            d.0.iter().any(|x| x.message.contains(part)),
            "`{part}` in:\n{d}"
        );
    }
}

#[test]
fn unknown_top_level_key() {
    let d = errors(&BASE.replace("phases:", "phasez:"));
    expect(
        &d,
        18,
        1,
        &[
            "unknown key `phasez` in a playbook",
            "did you mean `phases`?",
        ],
    );
    expect(&d, 1, 1, &["missing field `phases`"]);
}

#[test]
fn unknown_action() {
    let d = errors(&BASE.replace("action: stop-cluster-service", "action: stop-cluster-svc"));
    expect(
        &d,
        25,
        17,
        &[
            "step `stop-clussvc`: unknown action `stop-cluster-svc`",
            "did you mean `stop-cluster-service`?",
        ],
    );
}

#[test]
fn unknown_scope() {
    let d = errors(&BASE.replace("scope: first-node", "scope: first-nod"));
    expect(
        &d,
        20,
        12,
        &[
            "`first-nod` is not a valid `scope`",
            "did you mean `first-node`?",
        ],
    );
}

#[test]
fn scope_that_does_not_fit_the_shape() {
    let d = errors(&BASE.replace("scope: first-node", "scope: each-host"));
    expect(
        &d,
        20,
        12,
        &["scope `each-host` does not fit the playbook's `shape.units: clusters`"],
    );
}

#[test]
fn missing_step_field() {
    let d = errors(&BASE.replace("        rule: E3-CLUSTER.3\n", ""));
    expect(&d, 22, 9, &["missing field `rule`"]);
}

#[test]
fn missing_and_unknown_action_fields() {
    let d = errors(&BASE.replace("        package: \"{{ sp_package }}\"\n", ""));
    expect(
        &d,
        26,
        9,
        &[
            "step `install-sp` (action `install`)",
            "missing field `package`",
        ],
    );
    let d = errors(&BASE.replace("package:", "pakage:"));
    expect(&d, 31, 9, &["unknown field `pakage`"]);
}

#[test]
fn duplicate_step_ids_in_one_scope() {
    let d = errors(&BASE.replace("id: install-sp", "id: stop-clussvc"));
    expect(
        &d,
        26,
        13,
        &["step id `stop-clussvc` is used twice in scope `first-node` (first at line 22)"],
    );
}

#[test]
fn stage_naming_an_unknown_site() {
    let d = errors(&BASE.replace("sites: [seattle]", "sites: [seatle]"));
    expect(
        &d,
        16,
        31,
        &[
            "stage names site `seatle`, which is not in the inventory",
            "did you mean `seattle`?",
        ],
    );
}

#[test]
fn site_in_two_stages() {
    let d = errors(&BASE.replace("sites: [\"*\"]", "sites: [seattle]"));
    expect(
        &d,
        17,
        29,
        &["site `seattle` is in two stages, `canary` and `rest`"],
    );
}

#[test]
fn hosts_pattern_matching_nothing() {
    let d = errors(&BASE.replace("hosts: [exchange2003]", "hosts: [exchange2033]"));
    expect(
        &d,
        4,
        9,
        &[
            "host pattern `exchange2033` matches nothing in the inventory",
            "did you mean `exchange2003`?",
        ],
    );
}

#[test]
fn when_that_does_not_parse() {
    let d = errors(&BASE.replace("when: \"windows == '2003'\"", "when: \"windows ==\""));
    expect(
        &d,
        29,
        15,
        &["step `install-sp`: `when` expression `windows ==` does not parse"],
    );
}

#[test]
fn template_that_does_not_parse() {
    let d = errors(&BASE.replace("name: Install on {{ node }}", "name: Install on {{ node"));
    expect(
        &d,
        27,
        15,
        &["template `Install on {{ node` does not parse"],
    );
}

#[test]
fn rule_id_not_in_the_procedure_file() {
    let d = errors(&BASE.replace("rule: E3-CLUSTER.4", "rule: E3-CLUSTER.19"));
    expect(
        &d,
        28,
        15,
        &[
            "rule `E3-CLUSTER.19` is unknown",
            "procedure `E3-CLUSTER` has steps 1 to 18",
        ],
    );
    let d = errors(&BASE.replace("rule: E3-CLUSTER.4", "rule: G9"));
    expect(
        &d,
        28,
        15,
        &["rule `G9` is unknown", "not a rule id of KB 328839"],
    );
}

#[test]
fn literal_values_reaching_command_lines_are_names() {
    let d = errors(&BASE.replace(
        "package: \"{{ sp_package }}\"",
        "package: 'C:\\x.exe & calc'",
    ));
    expect(
        &d,
        31,
        18,
        &["step `install-sp`, `package`", "contains '&'"],
    );
}

#[test]
fn playbook_vars_used_as_paths_are_checked_as_paths() {
    let d = errors(&BASE.replace(
        "sp_package: '\\\\fs01\\install$\\E2K3SP2\\setup\\i386\\update.exe'",
        "sp_package: '\\\\fs01\\x|y.exe'",
    ));
    expect(
        &d,
        11,
        15,
        &[
            "variable `sp_package` (used as `package` of step `install-sp`)",
            "contains '|'",
        ],
    );
}

#[test]
fn bad_soak_duration_and_gate() {
    let d = errors(&BASE.replace("{ soak: 30m }", "{ soak: 30x }"));
    expect(&d, 17, 49, &["soak time `30x` is not a duration"]);
    let d = errors(&BASE.replace("gate: { soak: 30m }", "gate: aproval"));
    expect(&d, 17, 41, &["gate `aproval`", "did you mean `approval`?"]);
}

#[test]
fn shape_and_invariants_are_checked() {
    // A host shape takes no cluster setting; a typo in an invariant is named with a hint.
    let line = "shape: { units: hosts, node_order: by-name }";
    let text = BASE.replace("shape: { units: clusters }", line).replace(
        "vars:\n",
        "invariants: { tier-ordr: E3-FB, quorum: E3-CLUSTR.4 }\nvars:\n",
    );
    let d = errors(&text);
    expect(
        &d,
        3,
        line.find("by-name").unwrap() + 1,
        &["`node_order` is for clusters, but the shape has `units: hosts`"],
    );
    expect(
        &d,
        10,
        15,
        &[
            "`tier-ordr` is not a valid `invariant`",
            "did you mean `tier-order`?",
        ],
    );
    expect(&d, 10, 41, &["rule `E3-CLUSTR.4`"]);
    let d = errors(&BASE.replace(
        "shape: { units: clusters }",
        "shape: { tiers: [front-end] }",
    ));
    expect(&d, 3, 8, &["`shape` needs `units`"]);
}

#[test]
fn conferencing_cannot_share_a_package() {
    let d = errors(&BASE.replace(
        "editions: [standard, enterprise]",
        "editions: [standard, conferencing]",
    ));
    expect(
        &d,
        9,
        13,
        &["Conferencing Server service pack is not the Standard/Enterprise one (E2-ED)"],
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let text = BASE
        .replace("hosts: [exchange2003]", "hosts: [nowhere]")
        .replace("sites: [seattle]", "sites: [atlantis]")
        .replace("rule: E3-CLUSTER.4", "rule: E3-CLUSTER.40")
        .replace("action: stop-cluster-service", "action: stop-it");
    let d = errors(&text);
    let lines: Vec<usize> = d.0.iter().map(|x| x.line).collect();
    for l in [4, 16, 25, 28] {
        assert!(lines.contains(&l), "line {l} missing in:\n{d}");
    }
}

#[test]
fn site_commands_are_one_line() {
    let text = BASE.replace(
        "        action: stop-cluster-service\n",
        "        action: confirm\n        message: ok\n        command: \"check.cmd\\r\\ndel x\"\n",
    );
    let d = errors(&text);
    expect(
        &d,
        27,
        18,
        &["step `stop-clussvc`, `command`", "a command is one line"],
    );
    let ok = BASE.replace(
        "        action: stop-cluster-service\n",
        "        action: confirm\n        message: ok\n        command: 'labctl evs upgrade \"{{ node }}\"'\n",
    );
    load_playbook(&SourceFile::new(FILE, ok), &fleet()).unwrap_or_else(|d| panic!("{d}"));
}

#[test]
fn template_variables_must_exist_in_the_scope() {
    let d = errors(&BASE.replace(
        "package: \"{{ sp_package }}\"",
        "package: \"{{ sp_pakage }}\"",
    ));
    expect(
        &d,
        31,
        18,
        &[
            "`{{ sp_pakage }}` uses `sp_pakage`",
            "scope `first-node`",
            "did you mean `sp_package`?",
        ],
    );
    // `group` exists only for each-virtual-server steps.
    let d = errors(&BASE.replace(
        "name: Install on {{ node }}",
        "name: Install on {{ group }}",
    ));
    expect(
        &d,
        27,
        15,
        &["uses `group`, which is not a built-in of scope `first-node`"],
    );
    let d = errors(&BASE.replace("when: \"windows == '2003'\"", "when: \"windos == '2003'\""));
    expect(&d, 29, 15, &["uses `windos`", "did you mean `windows`?"]);
    // Inventory host variables are fine (`ansible_host` is set on every lab host).
    let ok = BASE.replace(
        "name: Install on {{ node }}",
        "name: Install on {{ ansible_host }} ({{ range(3) | length }})",
    );
    load_playbook(&SourceFile::new(FILE, ok), &fleet()).unwrap_or_else(|d| panic!("{d}"));
    // An optional inventory flag with a default (`exchange_adc` in the KB playbooks) is no typo;
    // the same name without the default still is.
    let flag =
        |when: &str| BASE.replace("when: \"windows == '2003'\"", &format!("when: \"{when}\""));
    load_playbook(
        &SourceFile::new(
            FILE,
            flag("(no_such_flag | default('false') | lower) == 'true'"),
        ),
        &fleet(),
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let d = errors(&flag("no_such_flag == 'true'"));
    expect(&d, 29, 15, &["uses `no_such_flag`"]);
}
