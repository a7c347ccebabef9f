//! Plans for the store tests.
#![allow(dead_code)]

use lockstep_core::{
    Action, FailureBudget, Gate, Name, Plan, PlanHash, PlannedStage, PlannedStep, Role, Version,
};

/// A plan whose steps have the given ids (each a reboot of host `PRG-N1`).
pub fn plan(hash: &str, ids: &[&str]) -> Plan {
    let steps = ids
        .iter()
        .enumerate()
        .map(|(i, id)| PlannedStep {
            id: (*id).to_owned(),
            spec: Name::ident("reboot").unwrap(),
            name: format!("step {id}"),
            rule: "E3-CLUSTER.4".to_owned(),
            stage: 0,
            site: Name::ident("PRG").unwrap(),
            cluster: None,
            pool: None,
            host: Name::host("PRG-N1").unwrap(),
            role: Role::BackEnd,
            out_of_service: false,
            action: Action::Reboot,
            after: if i == 0 { vec![] } else { vec![i - 1] },
            timeout_secs: 600,
            estimate_secs: 60,
        })
        .collect();
    Plan {
        playbook: Name::ident("e3-cluster").unwrap(),
        procedure: "E3-CLUSTER".into(),
        shape: Default::default(),
        invariants: Default::default(),
        target: Some(Version::new(6, 5, 7638, 2)),
        stages: vec![PlannedStage {
            name: "all".to_owned(),
            sites: vec![Name::ident("PRG").unwrap()],
            gate: Gate::None,
            max_parallel_sites: 1,
            failure_budget: None,
        }],
        steps,
        max_parallel_per_site: 1,
        failure_budget: FailureBudget::default(),
        hash: PlanHash(hash.to_owned()),
    }
}
pub mod pg;
