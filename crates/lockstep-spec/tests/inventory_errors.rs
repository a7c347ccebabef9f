//! One test per inventory error kind: file, line, column and message are asserted.

use lockstep_spec::{load_inventory, Diagnostic, Diagnostics, SourceFile};

const FILE: &str = "inv.yml";

/// A small valid inventory; tests splice lines into it.
const BASE: &str = r#"all:
  vars:
    ansible_user: 'CORP\svc'
    ansible_winrm_scheme: http
    ansible_port: 5985
    lockstep_password_env: PW
  children:
    prague:
      vars:
        lockstep_site: { locale: cs-CZ }
      children:
        prg_cl1:
          vars:
            exchange_version: "2003"
            exchange_role: back-end
            lockstep_cluster:
              name: PRGCL1
              cluster_group: { name: Cluster Group, owner: PRG-N1 }
              virtual_servers:
                - { name: PRGEVS1, group: PRGEVS1 Group, owner: PRG-N1 }
          hosts:
            PRG-N1:
            PRG-N2:
      hosts:
        PRG-EX01: { exchange_version: "2003", exchange_build: 6.5.6944.4 }
"#;

fn errors(text: &str) -> Diagnostics {
    match load_inventory(&[SourceFile::new(FILE, text)]) {
        Ok(f) => panic!("expected errors, loaded {} hosts", f.hosts.len()),
        Err(d) => d,
    }
}

/// The one diagnostic at `line:col`, whose message contains every one of `parts`.
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
fn base_loads() {
    let fleet = load_inventory(&[SourceFile::new(FILE, BASE)]).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(fleet.hosts.len(), 3);
    assert_eq!(fleet.clusters.len(), 1);
    assert_eq!(fleet.clusters[0].nodes.len(), 2);
}

#[test]
fn malformed_yaml_reports_the_parser_position() {
    let d = errors("all:\n  hosts:\n    A: {x: [1, 2}\n");
    assert_eq!(d.len(), 1);
    let e = &d.0[0];
    assert_eq!((e.file.as_str(), e.line), (FILE, 3));
    assert!(e.col >= 8, "{e}");
    assert!(e.message.starts_with("malformed YAML"), "{e}");
}

#[test]
fn unknown_structural_key_is_named_with_a_suggestion() {
    let text = BASE.replace(
        "      hosts:\n        PRG-EX01",
        "      hostz:\n        PRG-EX01",
    );
    let d = errors(&text);
    expect(
        &d,
        24,
        7,
        &[
            "unknown key `hostz`",
            "group `prague`",
            "did you mean `hosts`?",
        ],
    );
}

#[test]
fn unknown_lockstep_variable_is_named_with_a_suggestion() {
    let text = BASE.replace(
        "    lockstep_password_env: PW",
        "    lockstep_pasword_env: PW",
    );
    let d = errors(&text);
    expect(
        &d,
        6,
        5,
        &[
            "unknown Lockstep variable `lockstep_pasword_env`",
            "did you mean `lockstep_password_env`?",
        ],
    );
}

#[test]
fn unknown_owner_of_a_virtual_server() {
    let text = BASE.replace(
        "group: PRGEVS1 Group, owner: PRG-N1 }",
        "group: PRGEVS1 Group, owner: PRG-N9 }",
    );
    let d = errors(&text);
    expect(
        &d,
        20,
        65,
        &[
            "virtual server owner `PRG-N9`",
            "not a host of the inventory",
        ],
    );
}

#[test]
fn cluster_group_owner_must_be_a_node() {
    let text = BASE.replace(
        "{ name: Cluster Group, owner: PRG-N1 }",
        "{ name: Cluster Group, owner: PRG-EX01 }",
    );
    let d = errors(&text);
    expect(
        &d,
        18,
        60,
        &[
            "cluster group owner `PRG-EX01`",
            "not a node of cluster group `prg_cl1`",
        ],
    );
}

#[test]
fn host_in_two_sites() {
    let text = format!(
        "{BASE}    milan:\n      vars:\n        lockstep_site: {{ locale: it-IT }}\n      hosts:\n        PRG-EX01:\n"
    );
    let d = errors(&text);
    expect(
        &d,
        25,
        9,
        &["host `PRG-EX01` is in two sites", "`milan`", "`prague`"],
    );
}

#[test]
fn host_in_two_clusters() {
    let second = "        prg_cl2:\n          vars:\n            lockstep_cluster:\n              name: PRGCL2\n              virtual_servers: [{ name: PRGEVS2, owner: PRG-N2 }]\n          hosts:\n            PRG-N2:\n";
    let text = BASE.replace(
        "      hosts:\n        PRG-EX01",
        &format!("{second}      hosts:\n        PRG-EX01"),
    );
    let d = errors(&text);
    expect(
        &d,
        23,
        13,
        &[
            "host `PRG-N2` is a node of two clusters",
            "`prg_cl1`",
            "`prg_cl2`",
        ],
    );
}

#[test]
fn duplicate_keys_are_errors() {
    let text = format!("{BASE}  vars:\n    x: 1\n");
    let d = errors(&text);
    expect(&d, 26, 3, &["duplicate key `vars` (first at line 2)"]);
}

#[test]
fn cycle_in_children() {
    let text = "all:\n  children:\n    a:\n      children:\n        b:\n          children:\n            a:\n";
    let d = errors(text);
    expect(&d, 7, 13, &["cycle in `children`: `a` -> `b` -> `a`"]);
}

#[test]
fn group_named_like_a_host() {
    let text = format!("{BASE}    PRG-N1:\n      vars: {{}}\n");
    let d = errors(&text);
    expect(
        &d,
        26,
        5,
        &["group `PRG-N1` has the same name as host `PRG-N1`"],
    );
}

#[test]
fn pool_mixing_exchange_versions() {
    let pool = "        prg_owa:\n          vars:\n            exchange_role: front-end\n            lockstep_pool: { name: PRG-OWA }\n          hosts:\n            PRG-FE01: { exchange_version: \"2003\" }\n            PRG-FE02: { exchange_version: \"2000\" }\n";
    let text = BASE.replace(
        "      hosts:\n        PRG-EX01",
        &format!("{pool}      hosts:\n        PRG-EX01"),
    );
    let d = errors(&text);
    expect(
        &d,
        27,
        13,
        &[
            "pool `PRG-OWA` mixes Exchange versions",
            "`PRG-FE01` (Exchange Server 2003)",
            "`PRG-FE02` (Exchange 2000 Server)",
        ],
    );
    assert_eq!(d.len(), 1, "{d}");
}

#[test]
fn cluster_nodes_disagree_on_version() {
    let text = BASE.replace(
        "            PRG-N2:\n",
        "            PRG-N2: { exchange_version: \"2000\" }\n",
    );
    let d = errors(&text);
    expect(
        &d,
        16,
        13,
        &[
            "nodes of cluster group `prg_cl1` disagree on the Exchange version",
            "`PRG-N2` (Exchange 2000 Server)",
        ],
    );
}

#[test]
fn hostile_names_are_refused_where_written() {
    for (key, shown) in [
        ("'PRG\"&del'", "PRG\\\"&del"),
        ("a|b", "a|b"),
        ("\"it's\"", "it\\'s"),
        ("x%PATH%", "x%PATH%"),
        ("\"a\\nb\"", "a\\nb"),
    ] {
        let text = BASE.replace("        PRG-EX01: {", &format!("        {key}: {{"));
        let d = errors(&text);
        expect(
            &d,
            25,
            9,
            &[&format!("host `{shown}`"), "cannot be safely quoted"],
        );
    }
}

#[test]
fn inline_password_is_refused_without_echoing_it() {
    let text = BASE.replace(
        "    lockstep_password_env: PW",
        "    ansible_password: Hunter2!",
    );
    let d = errors(&text);
    let e = expect(
        &d,
        6,
        23,
        &["inline password in `ansible_password` is refused"],
    );
    assert!(!d.to_string().contains("Hunter2"), "{e}");
}

#[test]
fn env_lookup_password_is_accepted() {
    let text = BASE.replace(
        "    lockstep_password_env: PW",
        "    ansible_password: \"{{ lookup('env', 'EXCH_PW') }}\"",
    );
    let fleet = load_inventory(&[SourceFile::new(FILE, &text)]).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        fleet.hosts[0].connection.password,
        lockstep_core::SecretSource::Env("EXCH_PW".into())
    );
    assert!(!fleet.hosts[0].vars.contains_key("ansible_password"));
}

#[test]
fn basic_over_http_needs_the_explicit_allow() {
    let text = BASE.replace(
        "    ansible_port: 5985\n",
        "    ansible_port: 5985\n    ansible_winrm_transport: basic\n",
    );
    let d = errors(&text);
    expect(
        &d,
        6,
        30,
        &["host `PRG-EX01` would send Basic credentials over plain HTTP"],
    );
    let allowed = text.replace(
        "    ansible_winrm_transport: basic\n",
        "    ansible_winrm_transport: basic\n    lockstep_allow_basic_over_http: true\n",
    );
    let fleet =
        load_inventory(&[SourceFile::new(FILE, &allowed)]).unwrap_or_else(|d| panic!("{d}"));
    assert!(fleet
        .hosts
        .iter()
        .all(|h| h.connection.allow_basic_over_http));
}

#[test]
fn kerberos_needs_the_realm_in_the_user_name() {
    let text = BASE.replace(
        "    ansible_port: 5985\n",
        "    ansible_port: 5985\n    ansible_winrm_transport: kerberos\n",
    );
    let d = errors(&text);
    expect(
        &d,
        3,
        19,
        &[
            "host `PRG-EX01` uses Kerberos",
            "`ansible_user` must be `user@REALM`",
        ],
    );
    let with_realm = text.replace("'CORP\\svc'", "svc@CORP.EXAMPLE").replace(
        "    ansible_winrm_transport: kerberos\n",
        "    ansible_winrm_transport: kerberos\n    ansible_winrm_kerberos_hostname_override: prg-ex01.corp.example\n",
    );
    let fleet =
        load_inventory(&[SourceFile::new(FILE, &with_realm)]).unwrap_or_else(|d| panic!("{d}"));
    let h = &fleet.hosts[0];
    assert_eq!(h.connection.auth, lockstep_core::Auth::Kerberos);
    assert_eq!(h.connection.user, "svc@CORP.EXAMPLE");
    assert_eq!(
        h.vars["ansible_winrm_kerberos_hostname_override"],
        "prg-ex01.corp.example"
    );
}

#[test]
fn negotiate_is_spnego_not_a_synonym_of_ntlm() {
    // Ansible's `negotiate` (Kerberos first, NTLM when no ticket) with either user form.
    for user in ["'CORP\\svc'", "svc@CORP.EXAMPLE"] {
        let text = BASE.replace("'CORP\\svc'", user).replace(
            "    ansible_port: 5985\n",
            "    ansible_port: 5985\n    ansible_winrm_transport: negotiate\n",
        );
        let fleet =
            load_inventory(&[SourceFile::new(FILE, &text)]).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(
            fleet.hosts[0].connection.auth,
            lockstep_core::Auth::Negotiate
        );
    }
}

#[test]
fn certificate_needs_https_and_both_pem_files() {
    // Over HTTP and with no PEM files: every problem at once, at the transport's line.
    let text = BASE.replace(
        "    ansible_port: 5985\n",
        "    ansible_port: 5985\n    ansible_winrm_transport: certificate\n",
    );
    let d = errors(&text);
    expect(
        &d,
        6,
        30,
        &["certificate authentication", "ansible_winrm_scheme: https"],
    );
    expect(&d, 6, 30, &["no `ansible_winrm_cert_pem`"]);
    expect(&d, 6, 30, &["no `ansible_winrm_cert_key_pem`"]);
    // HTTPS with both files: loaded; the paths stay with the host for the transport.
    let ok = text
        .replace("ansible_winrm_scheme: http\n", "ansible_winrm_scheme: https\n")
        .replace(
            "    ansible_winrm_transport: certificate\n",
            "    ansible_winrm_transport: certificate\n    ansible_winrm_cert_pem: /etc/lockstep/svc.pem\n    ansible_winrm_cert_key_pem: /etc/lockstep/svc.key\n",
        );
    let fleet = load_inventory(&[SourceFile::new(FILE, &ok)]).unwrap_or_else(|d| panic!("{d}"));
    let h = &fleet.hosts[0];
    assert_eq!(h.connection.auth, lockstep_core::Auth::Certificate);
    assert_eq!(
        h.vars["ansible_winrm_cert_key_pem"],
        "/etc/lockstep/svc.key"
    );
}

#[test]
fn bad_locale() {
    let text = BASE.replace("{ locale: cs-CZ }", "{ locale: cs-SK }");
    let d = errors(&text);
    expect(
        &d,
        10,
        34,
        &[
            "locale `cs-SK` of site `prague` is not a Windows locale name",
            "did you mean `cs-CZ`?",
        ],
    );
    assert_eq!(d.len(), 1, "no cascade of site-less hosts:\n{d}");
}

#[test]
fn bad_build_numbers() {
    let text = BASE.replace("exchange_build: 6.5.6944.4", "exchange_build: 6.5.x");
    let d = errors(&text);
    expect(&d, 25, 63, &["`6.5.x` is not a build number"]);
    let text = BASE.replace("exchange_build: 6.5.6944.4", "exchange_build: 6.0.6249.0");
    let d = errors(&text);
    expect(
        &d,
        25,
        63,
        &["`6.0.6249.0` is not an Exchange Server 2003 build"],
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let text = BASE
        .replace("{ locale: cs-CZ }", "{ locale: xx-XX }")
        .replace(
            "    lockstep_password_env: PW",
            "    lockstep_pasword_env: PW",
        )
        .replace("exchange_build: 6.5.6944.4", "exchange_build: 6.5.x");
    let d = errors(&text);
    assert!(d.len() >= 3, "{d}");
    let lines: Vec<usize> = d.0.iter().map(|x| x.line).collect();
    assert!(
        lines.contains(&6) && lines.contains(&10) && lines.contains(&25),
        "{d}"
    );
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "diagnostics come in line order");
    for line in d.to_string().lines() {
        assert!(
            line.starts_with("inv.yml:") && line.contains(": error: "),
            "{line}"
        );
    }
}

#[test]
fn a_host_defined_twice_merges_its_vars_like_ansible() {
    // Conflicting definitions are not an error in Ansible: the later one wins.
    let text = format!("{BASE}    extra:\n      hosts:\n        PRG-EX01: {{ exchange_build: 6.5.7226.6, owner_team: mail }}\n");
    let fleet = load_inventory(&[SourceFile::new(FILE, &text)]).unwrap_or_else(|d| panic!("{d}"));
    let h = fleet.host("PRG-EX01").unwrap();
    assert_eq!(
        h.exchange_build().map(|b| b.to_string()).as_deref(),
        Some("6.5.7226.6")
    );
    assert_eq!(h.vars.get("owner_team").map(String::as_str), Some("mail"));
    assert!(h.groups.iter().any(|g| g.as_str() == "extra"));
}

#[test]
fn several_files_merge_and_errors_name_their_file() {
    let second = "all:\n  children:\n    prague:\n      hosts:\n        PRG-EX02: { exchange_version: \"2003\", exchange_role: front-end }\n        PRG-EX03: { exchange_version: \"2033\" }\n";
    let files = [
        SourceFile::new(FILE, BASE),
        SourceFile::new("more.yml", second),
    ];
    let d = load_inventory(&files).unwrap_err();
    assert_eq!(d.len(), 1, "{d}");
    let e = &d.0[0];
    assert_eq!((e.file.as_str(), e.line, e.col), ("more.yml", 6, 39));
    assert!(
        e.message
            .contains("`2033` is not a valid `exchange_version`"),
        "{e}"
    );
    let ok = second.replace("\"2033\"", "\"2003\"");
    let files = [SourceFile::new(FILE, BASE), SourceFile::new("more.yml", ok)];
    let fleet = load_inventory(&files).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(fleet.hosts.len(), 5);
    assert_eq!(fleet.host("PRG-EX02").unwrap().site.as_str(), "prague");
}

#[test]
fn vault_passwords_are_fine_for_ansible_hosts_but_not_for_exchange_hosts() {
    let vault = "all:\n  hosts:\n    dc01.example.com:\n      ansible_password: !vault |\n        $ANSIBLE_VAULT;1.1;AES256\n        6162636465\n    fs01.example.com:\n      ansible_password: \"{{ vault_fs01_password }}\"\n";
    let inv = lockstep_spec::load_ansible_inventory(&[SourceFile::new(FILE, vault)])
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(inv.hosts.len(), 2);
    assert!(!inv.hosts["dc01.example.com"]
        .vars
        .contains_key("ansible_password"));
    let text = BASE.replace(
        "    lockstep_password_env: PW",
        "    ansible_password: \"{{ vault_pw }}\"",
    );
    let d = errors(&text);
    expect(
        &d,
        6,
        23,
        &["`ansible_password` of host `PRG-EX01` is a template Lockstep cannot resolve"],
    );
}

#[test]
fn hosts_differing_only_in_case_are_one_computer() {
    let text = format!("{BASE}        prg-ex01: {{ exchange_version: \"2003\" }}\n");
    let d = errors(&text);
    expect(
        &d,
        26,
        9,
        &["hosts `PRG-EX01` and `prg-ex01` differ only in case"],
    );
}

/// A fleet with no Exchange at all: Server 2019/2022, an en-GB site, a failover cluster with a
/// file server and a SQL Server instance, hosts named by their DNS names.
const PLAIN: &str = r#"all:
  vars:
    ansible_connection: winrm
    ansible_user: 'CORP\svc'
    lockstep_password_env: PW
  children:
    london:
      vars:
        lockstep_site: { locale: en-gb }
      children:
        lon_cl1:
          vars:
            windows_release: 2019
            lockstep_cluster:
              name: LONCL1
              groups:
                - { name: FS1, kind: file-server, owner: LON-N2 }
                - { name: SQL Server (MSSQLSERVER), kind: sql }
          hosts:
            LON-N1: { windows_build: 10.0.17763.5696 }
            LON-N2:
      hosts:
        web[01:03].corp.example: { windows_release: "2022" }
        APP01: { windows_build: 10.0.20348.2340 }
    unsited:
      hosts:
        dc01.corp.example:
"#;

#[test]
fn a_fleet_without_exchange_loads() {
    let fleet = load_inventory(&[SourceFile::new(FILE, PLAIN)]).unwrap_or_else(|d| panic!("{d}"));
    let names: Vec<&str> = fleet.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["APP01", "LON-N1", "LON-N2", "dc01", "web01", "web02", "web03"]
    );
    assert!(fleet.hosts.iter().all(|h| h.exchange.is_none()));
    let h = |n: &str| fleet.host(n).unwrap();
    use lockstep_core::WindowsRelease as W;
    assert_eq!(h("LON-N1").windows, Some(W::Windows2019));
    assert_eq!(
        h("LON-N1").os_build.map(|b| b.to_string()).as_deref(),
        Some("10.0.17763.5696")
    );
    assert_eq!(h("LON-N2").os_build, None);
    // The release follows from the build when only the build is given.
    assert_eq!(h("APP01").windows, Some(W::Windows2022));
    assert_eq!(h("web02").windows, Some(W::Windows2022));
    assert_eq!(h("dc01").windows, None);
    // A DNS name is the address; the computer is its first label.
    assert_eq!(h("web02").connection.address, "web02.corp.example");
    // en-GB: OEM code page 850; the site-less host lands in the default site.
    let london = fleet.site("london").unwrap();
    assert_eq!(london.locale.tag(), "en-GB");
    assert_eq!(london.locale.oem_codepage(), 850);
    assert_eq!(h("dc01").site.as_str(), "default");
    assert_eq!(fleet.site("default").unwrap().locale.tag(), "en-US");
    // The cluster: no virtual server, a file server and a SQL Server instance.
    let c = fleet.cluster("LONCL1").unwrap();
    assert!(c.virtual_servers.is_empty());
    let groups: Vec<(String, String, String)> = c
        .groups
        .iter()
        .map(|g| (g.name.to_string(), g.kind.to_string(), g.owner.to_string()))
        .collect();
    assert_eq!(
        groups,
        [
            ("FS1".into(), "file-server".into(), "LON-N2".into()),
            (
                "SQL Server (MSSQLSERVER)".into(),
                "sql".into(),
                "LON-N1".into()
            ),
        ]
    );
    assert_eq!(c.all_groups().count(), 3);
    // Groups list the fleet's computers.
    let web: Vec<&str> = fleet.groups[&lockstep_core::Name::ident("london").unwrap()]
        .iter()
        .map(|n| n.as_str())
        .collect();
    assert_eq!(web.len(), 6, "{web:?}");
}

#[test]
fn windows_release_and_build_are_checked() {
    let text = PLAIN.replace("windows_release: 2019", "windows_release: 2017");
    let d = errors(&text);
    expect(
        &d,
        13,
        30,
        &[
            "`2017` is not a valid `windows_release`",
            "`2019`",
            "`2008r2`",
            "`nt4`",
        ],
    );
    let text = PLAIN.replace("10.0.17763.5696", "10.0.20348.5696");
    let d = errors(&text);
    expect(
        &d,
        20,
        38,
        &["`windows_build` `10.0.20348.5696` is not a build of Windows Server 2019"],
    );
    let text = PLAIN.replace("10.0.20348.2340", "10.0.12345.1");
    let d = errors(&text);
    expect(&d, 24, 33, &["is the build of no Windows Server release"]);
}

#[test]
fn exchange_variables_need_exchange_version() {
    let text = PLAIN.replace("APP01: {", "APP01: { exchange_role: back-end,");
    let d = errors(&text);
    expect(
        &d,
        24,
        18,
        &["host `APP01` sets `exchange_role` but no `exchange_version`"],
    );
}

#[test]
fn a_host_named_by_its_address_is_refused() {
    let text = PLAIN.replace("dc01.corp.example:", "10.0.0.5:");
    let d = errors(&text);
    expect(&d, 27, 9, &["host `10.0.0.5` is named by its address"]);
}

#[test]
fn cluster_groups_are_checked() {
    let text = PLAIN.replace("kind: file-server", "kind: print-server");
    let d = errors(&text);
    expect(
        &d,
        17,
        38,
        &["`print-server` is not a valid `kind`", "`file-server`"],
    );
    let text = PLAIN.replace("{ name: FS1,", "{ name: Cluster Group,");
    let d = errors(&text);
    assert!(
        d.to_string()
            .contains("declares the group `Cluster Group` twice"),
        "{d}"
    );
    let text = PLAIN.replace("owner: LON-N2 }", "owner: APP01 }");
    let d = errors(&text);
    assert!(
        d.to_string()
            .contains("cluster group owner `APP01` is not a node of cluster group `lon_cl1`"),
        "{d}"
    );
}

#[test]
fn a_vaulted_ansible_password_is_a_vault_password_source() {
    // Made by `ansible-vault encrypt_string` (password `corpus-not-a-secret`).
    let envelope = "$ANSIBLE_VAULT;1.1;AES256\n65333965626636636539366536313037343165323864313431633037316137663732663463396366\n3961353836356234613962343262363163336635333265340a323732636436353065363830356364\n32363964333562353530373433656263343766383537653632626534646666343632323831353230\n3737663265653161630a376564653765393764326635613632373638363635663833376131666366\n6664";
    let indented: String = envelope
        .lines()
        .map(|l| format!("            {l}\n"))
        .collect();
    let text = BASE.replace(
        "        PRG-EX01: { exchange_version: \"2003\", exchange_build: 6.5.6944.4 }\n",
        &format!("        PRG-EX01:\n          exchange_version: \"2003\"\n          ansible_password: !vault |\n{indented}"),
    );
    let fleet = load_inventory(&[SourceFile::new(FILE, &text)]).unwrap_or_else(|d| panic!("{d}"));
    let source = &fleet.host("PRG-EX01").unwrap().connection.password;
    assert_eq!(
        source,
        &lockstep_core::SecretSource::Vault(envelope.to_owned())
    );
    let mut secrets = lockstep_spec::VaultSecrets::new();
    secrets.add("default", b"corpus-not-a-secret");
    let lockstep_core::SecretSource::Vault(e) = source else {
        unreachable!()
    };
    assert_eq!(
        lockstep_spec::vault_decrypt(e, &secrets).unwrap(),
        b"Inline-Pa55"
    );
    // The other hosts keep the group's source.
    assert_eq!(
        fleet.host("PRG-N1").unwrap().connection.password,
        lockstep_core::SecretSource::Env("PW".into())
    );
}
