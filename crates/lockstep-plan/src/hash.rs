//! The plan hash: hex SHA-256 of the plan's canonical JSON with the hash field emptied.

use std::io;

use lockstep_core::{Plan, PlanHash};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The plan's fields in declaration order, with an empty hash: serialises exactly as the plan
/// would with `hash` set to `""`, without cloning its steps.
#[derive(Serialize)]
struct Canonical<'p> {
    playbook: &'p lockstep_core::Name,
    procedure: &'p str,
    shape: &'p lockstep_core::Shape,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    invariants: &'p lockstep_core::Invariants,
    target: &'p Option<lockstep_core::Version>,
    stages: &'p [lockstep_core::PlannedStage],
    steps: &'p [lockstep_core::PlannedStep],
    max_parallel_per_site: u32,
    failure_budget: &'p lockstep_core::FailureBudget,
    hash: &'static str,
}

struct HashWriter(Sha256);

impl io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hex SHA-256 of the canonical JSON of `plan` with its `hash` emptied: the same inputs give
/// the same hash, and any change to a step, an edge or a stage changes it.
pub fn plan_hash(plan: &Plan) -> PlanHash {
    let view = Canonical {
        playbook: &plan.playbook,
        procedure: &plan.procedure,
        shape: &plan.shape,
        invariants: &plan.invariants,
        target: &plan.target,
        stages: &plan.stages,
        steps: &plan.steps,
        max_parallel_per_site: plan.max_parallel_per_site,
        failure_budget: &plan.failure_budget,
        hash: "",
    };
    let mut w = HashWriter(Sha256::new());
    // Serialising plain data into a hasher cannot fail.
    serde_json::to_writer(&mut w, &view).expect("plan serialises to JSON");
    PlanHash(hex::encode(w.0.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The view must serialise byte-for-byte like the plan with an empty hash; this fails if
    /// `Plan` gains, loses or reorders a field.
    #[test]
    fn view_matches_plan_json() {
        let plan = Plan {
            playbook: lockstep_core::Name::ident("p").unwrap(),
            procedure: "patch".into(),
            shape: lockstep_core::Shape {
                units: lockstep_core::Units::Clusters,
                failover: false,
                ..Default::default()
            },
            invariants: [(lockstep_core::Invariant::NoFailover, "P-1".to_owned())].into(),
            target: Some(lockstep_core::Version::new(6, 5, 7638, 2)),
            stages: vec![],
            steps: vec![],
            max_parallel_per_site: 3,
            failure_budget: lockstep_core::FailureBudget {
                max_failed_hosts: 1,
            },
            hash: PlanHash(String::new()),
        };
        let a = serde_json::to_vec(&plan).unwrap();
        let b = serde_json::to_vec(&Canonical {
            playbook: &plan.playbook,
            procedure: &plan.procedure,
            shape: &plan.shape,
            invariants: &plan.invariants,
            target: &plan.target,
            stages: &plan.stages,
            steps: &plan.steps,
            max_parallel_per_site: 3,
            failure_budget: &plan.failure_budget,
            hash: "",
        })
        .unwrap();
        assert_eq!(a, b);
        let h = hex::encode(Sha256::digest(&a));
        assert_eq!(plan_hash(&plan).0, h);
    }
}
