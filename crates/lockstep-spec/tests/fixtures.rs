//! Snapshots of the rendered diagnostics of bad inputs, and an ordinary Ansible inventory.

use lockstep_spec::{embedded, load_ansible_inventory, load_inventory, load_playbook, SourceFile};

fn fixture(name: &str) -> SourceFile {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let mut f = SourceFile::read(&path).unwrap_or_else(|d| panic!("{d}"));
    f.path = format!("fixtures/{name}");
    f
}

#[test]
fn bad_inventory_diagnostics() {
    let d = load_inventory(&[fixture("bad-inventory.yml")]).unwrap_err();
    assert!(
        !d.to_string().contains("Summer2026"),
        "a password must never be echoed"
    );
    insta::assert_snapshot!(d.to_string());
}

#[test]
fn bad_playbook_diagnostics() {
    let fleet =
        load_inventory(&[embedded::LAB_INVENTORY.source()]).unwrap_or_else(|d| panic!("{d}"));
    let d = load_playbook(&fixture("bad-playbook.yml"), &fleet).unwrap_err();
    insta::assert_snapshot!(d.to_string());
}

#[test]
fn syntax_error_diagnostics() {
    let fleet =
        load_inventory(&[embedded::LAB_INVENTORY.source()]).unwrap_or_else(|d| panic!("{d}"));
    let d = load_playbook(&fixture("syntax-error.yml"), &fleet).unwrap_err();
    assert_eq!(d.len(), 1);
    insta::assert_snapshot!(d.to_string());
}

/// Hosts without `exchange_version` are plain Windows hosts: an ordinary Ansible inventory of
/// WinRM hosts is a fleet (its DNS-named hosts are the computers of their first label, in the
/// default site), read with Ansible's precedence and listed by `load_ansible_inventory`.
#[test]
fn ordinary_ansible_inventory_loads_with_ansible_precedence() {
    let file = fixture("ansible-windows.yml");
    let fleet = load_inventory(std::slice::from_ref(&file)).unwrap_or_else(|d| panic!("{d}"));
    let computers: Vec<&str> = fleet.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(computers, ["db01", "jump01", "web01", "web02", "web03"]);
    assert!(fleet.hosts.iter().all(|h| h.exchange.is_none()));
    let sites: Vec<&str> = fleet.sites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(sites, ["default"]);
    let web01 = fleet.host("web01").unwrap();
    assert_eq!(web01.connection.address, "web01.example.com");
    assert_eq!(web01.connection.port, 5986);
    let webservers: Vec<&str> = fleet.groups[&lockstep_core::Name::ident("webservers").unwrap()]
        .iter()
        .map(|n| n.as_str())
        .collect();
    assert_eq!(webservers, ["web01", "web02", "web03"]);

    let inv = load_ansible_inventory(&[file]).unwrap_or_else(|d| panic!("{d}"));
    let names: Vec<&str> = inv.hosts.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "db01.example.com",
            "jump01.example.com",
            "web01.example.com",
            "web02.example.com",
            "web03.example.com"
        ]
    );
    // Groups, ranges, `ungrouped`, inherited membership.
    assert_eq!(inv.groups["ungrouped"].hosts, ["jump01.example.com"]);
    assert_eq!(
        inv.groups["windows"].hosts,
        [
            "db01.example.com",
            "web01.example.com",
            "web02.example.com",
            "web03.example.com"
        ]
    );
    assert_eq!(inv.groups["webservers"].depth, 2);
    assert_eq!(inv.groups["windows"].depth, 1);
    assert_eq!(inv.groups["all"].depth, 0);
    assert_eq!(inv.groups["dbservers"].parents, ["windows"]);
    assert_eq!(
        inv.hosts["web01.example.com"].groups,
        ["all", "datacenter_a", "webservers", "windows"]
    );
    let var = |h: &str, k: &str| inv.hosts[h].vars.get(k).cloned();
    // all < parent < child.
    assert_eq!(
        var("jump01.example.com", "ntp_server").as_deref(),
        Some("pool.ntp.org")
    );
    assert_eq!(
        var("web01.example.com", "ntp_server").as_deref(),
        Some("ntp.web.example")
    );
    assert_eq!(
        var("web01.example.com", "ansible_port").as_deref(),
        Some("5986")
    );
    // Host vars win over every group.
    assert_eq!(
        var("db01.example.com", "ntp_server").as_deref(),
        Some("ntp.db-host.example")
    );
    // Same depth: ansible_group_priority 10 beats the default 1 (name order would pick webservers).
    assert_eq!(
        var("web02.example.com", "iis_site").as_deref(),
        Some("none")
    );
    // Same depth, same priority: merged by name, the later name wins.
    assert_eq!(var("web03.example.com", "rack").as_deref(), Some("b"));
}

/// `group_vars/` and `host_vars/` files next to the inventory, with Ansible's precedence:
/// inventory-file group vars < group_vars files < inventory-file host vars < host_vars files.
#[test]
fn group_vars_and_host_vars_files_follow_ansible_precedence() {
    let files = [
        fixture("ansible-windows.yml"),
        SourceFile::new(
            "inv/group_vars/windows.yml",
            "ntp_server: gv.windows\nowner: ops\n",
        ),
        SourceFile::new("inv/group_vars/dbservers/main.yml", "backup: nightly\n"),
        SourceFile::new("inv/group_vars/nosuchgroup.yml", "x: 1\n"),
        SourceFile::new("inv/host_vars/web01.example.com.yml", "owner: web-team\n"),
        SourceFile::new(
            "inv/host_vars/db01.example.com.yml",
            "ntp_server: hv.db01\n",
        ),
    ];
    let inv = load_ansible_inventory(&files).unwrap_or_else(|d| panic!("{d}"));
    let var = |h: &str, k: &str| inv.hosts[h].vars.get(k).cloned();
    // A group_vars file of the parent beats the child's inventory-file vars.
    assert_eq!(
        var("web01.example.com", "ntp_server").as_deref(),
        Some("gv.windows")
    );
    assert_eq!(
        var("web01.example.com", "owner").as_deref(),
        Some("web-team")
    );
    assert_eq!(var("web03.example.com", "owner").as_deref(), Some("ops"));
    assert_eq!(
        var("web02.example.com", "backup").as_deref(),
        Some("nightly")
    );
    assert_eq!(
        var("db01.example.com", "ntp_server").as_deref(),
        Some("hv.db01")
    );
    assert_eq!(
        var("jump01.example.com", "ntp_server").as_deref(),
        Some("pool.ntp.org")
    );
    assert_eq!(inv.groups["windows"].vars["owner"], "ops");
    // Their errors are positioned in their own file.
    let bad = [
        fixture("ansible-windows.yml"),
        SourceFile::new("inv/group_vars/windows.yml", "lockstep_codepag: 65001\n"),
    ];
    let d = load_ansible_inventory(&bad).unwrap_err();
    assert_eq!(d.to_string(), "inv/group_vars/windows.yml:1:1: error: unknown Lockstep variable `lockstep_codepag` (did you mean `lockstep_codepage`?)");
}
