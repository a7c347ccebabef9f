//! The files that ship load cleanly, against each other.

use lockstep_spec::{embedded, load_inventory, load_playbook};

#[test]
fn every_shipped_playbook_loads_against_the_lab_inventory() {
    let fleet =
        load_inventory(&[embedded::LAB_INVENTORY.source()]).unwrap_or_else(|d| panic!("{d}"));
    let books = embedded::playbooks();
    assert!(!books.is_empty());
    for file in &books {
        let pb = load_playbook(file, &fleet).unwrap_or_else(|d| panic!("{d}"));
        assert!(!pb.phases.is_empty(), "{}", file.path);
        for phase in &pb.phases {
            for step in &phase.steps {
                assert!(!step.rule.is_empty());
            }
        }
    }
}
