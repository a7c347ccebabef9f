//! Random (often hostile) names either load or produce a positioned error; never a panic.

use lockstep_core::Name;
use lockstep_spec::{embedded, load_inventory, load_playbook, SourceFile};
use proptest::prelude::*;

/// A YAML double-quoted scalar holding exactly `s`.
fn yaml_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn name_strategy() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(vec![
        'A', 'b', 'Z', '0', '9', '-', '_', '.', ' ', '"', '\'', '&', '|', '%', '^', '!', '<', '>',
        '\\', '$', '(', ')', '/', '\n', '\t', 'é', '日',
    ]);
    prop::collection::vec(chars, 0..24).prop_map(|v| v.into_iter().collect())
}

const INVENTORY: &str = "all:
  vars:
    ansible_user: 'CORP\\svc'
    lockstep_password_env: PW
    exchange_version: \"2003\"
  children:
    site1:
      vars:
        lockstep_site: { locale: en-US }
      hosts:
        HOSTNAME: { exchange_role: standalone }
";

const PLAYBOOK: &str = "name: p
title: Random names
procedure: E3-NC
hosts: [all]
target: { product: \"2003\", build: 6.5.7638.2, kind: service-pack }
phases:
  - name: Services
    scope: each-host
    steps:
      - id: STEPID
        name: Stop a service
        rule: G5
        action: stop-services
        services: [SERVICE]
";

/// Whether an inventory host name is a computer name or a DNS name of host labels.
fn dns_name_ok(name: &str) -> bool {
    name.split('.').all(|l| Name::host(l).is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn host_names_load_or_fail_at_their_line(name in name_strategy()) {
        let text = INVENTORY.replace("HOSTNAME", &yaml_quoted(&name));
        match load_inventory(&[SourceFile::new("p.yml", text)]) {
            // A host may be named by its DNS name: the computer is its first label, and every
            // label must be a valid host label.
            Ok(fleet) => {
                prop_assert!(dns_name_ok(&name), "accepted {name:?}");
                prop_assert_eq!(fleet.hosts.len(), 1);
                let computer = name.split('.').next().unwrap();
                prop_assert_eq!(fleet.hosts[0].name.as_str(), computer);
            }
            Err(d) => {
                prop_assert!(!d.is_empty());
                prop_assert!(d.iter().all(|x| x.file == "p.yml" && x.line >= 1 && x.col >= 1));
                if !dns_name_ok(&name) {
                    prop_assert!(d.iter().any(|x| x.line == 11 && x.col == 9), "{d}");
                }
            }
        }
    }

    #[test]
    fn step_ids_and_service_names_load_or_fail_at_their_line(
        id in name_strategy(),
        service in name_strategy(),
    ) {
        let fleet = load_inventory(&[embedded::LAB_INVENTORY.source()]).unwrap();
        let text = PLAYBOOK
            .replace("STEPID", &yaml_quoted(&id))
            .replace("SERVICE", &yaml_quoted(&service));
        let id_ok = Name::ident(&id).is_ok();
        let service_ok = Name::object(&service).is_ok() || service.contains("{{") || service.contains("{%");
        match load_playbook(&SourceFile::new("p.yml", text), &fleet) {
            Ok(pb) => {
                prop_assert!(id_ok && service_ok, "accepted {id:?} / {service:?}");
                prop_assert_eq!(pb.phases[0].steps[0].id.as_str(), id.as_str());
            }
            Err(d) => {
                prop_assert!(d.iter().all(|x| x.file == "p.yml" && x.line >= 1));
                if !id_ok {
                    prop_assert!(d.iter().any(|x| x.line == 10), "{d}");
                }
                if !service_ok {
                    prop_assert!(d.iter().any(|x| x.line == 14), "{d}");
                }
            }
        }
    }
}

/// Found by the property above: a quoted `"<<"` host name was taken for a YAML merge key.
#[test]
fn a_quoted_merge_key_is_an_ordinary_name() {
    let text = INVENTORY.replace("HOSTNAME", "\"<<\"");
    let d = load_inventory(&[SourceFile::new("p.yml", text)]).unwrap_err();
    assert!(
        d.iter()
            .any(|x| x.line == 11 && x.col == 9 && x.message.contains("`<<`")),
        "{d}"
    );
}
