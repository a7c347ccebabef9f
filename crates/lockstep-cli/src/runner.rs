//! `BuiltinRunner`: the step-runner contract of `lockstep-core` over the built-in actions of
//! `lockstep-actions`. The only place the engine meets the actions crate; both speak the core's
//! types, so nothing is converted.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lockstep_core::{Fleet, Plan, PlannedStep, Transport};

use lockstep_core::step::{Outcome, Probe, StageHalt, StepError, StepRunner};

/// Runs plan steps with the built-in actions over a transport.
pub struct BuiltinRunner {
    transport: Arc<dyn Transport>,
    fleet: Arc<Fleet>,
    reboot_poll: Duration,
}

impl BuiltinRunner {
    /// A runner over `transport` for `fleet`.
    pub fn new(transport: Arc<dyn Transport>, fleet: Arc<Fleet>) -> Self {
        BuiltinRunner {
            transport,
            fleet,
            reboot_poll: Duration::from_millis(500),
        }
    }

    fn ctx<'a>(&'a self, step: &'a PlannedStep, timeout: Duration) -> lockstep_actions::Ctx<'a> {
        lockstep_actions::Ctx {
            transport: self.transport.as_ref(),
            fleet: &self.fleet,
            step,
            timeout,
            reboot_poll: self.reboot_poll,
        }
    }
}

#[async_trait]
impl StepRunner for BuiltinRunner {
    async fn execute(&self, step: &PlannedStep, timeout: Duration) -> Result<Outcome, StepError> {
        lockstep_actions::execute(&self.ctx(step, timeout)).await
    }

    async fn probe(&self, step: &PlannedStep) -> Result<Probe, StepError> {
        let timeout = Duration::from_secs(step.timeout_secs.max(1));
        lockstep_actions::probe(&self.ctx(step, timeout)).await
    }

    async fn verify_performed(&self, step: &PlannedStep) -> Result<Option<String>, StepError> {
        let timeout = Duration::from_secs(step.timeout_secs.max(1));
        lockstep_actions::verify_performed(&self.ctx(step, timeout)).await
    }

    async fn before_stage(&self, plan: &Plan, stage: usize) -> Result<(), StageHalt> {
        match lockstep_actions::tier_order_now(self.transport.as_ref(), &self.fleet, plan, stage)
            .await
        {
            None => Ok(()),
            Some((class, reason)) => Err(StageHalt { class, reason }),
        }
    }
}
