//! `lockstep check`: validate, print nothing but errors.

use anyhow::Result;

use crate::args::CheckArgs;
use crate::exit::{BadInput, ExitStatus};
use crate::inputs;

/// Validates the inventories and every playbook named (or every built-in one), and plans each
/// so that planning errors (templates, unsafe rendered names) are reported too. All errors of
/// all playbooks are reported together.
pub fn run(args: &CheckArgs) -> Result<ExitStatus> {
    let (fleet, _) = inputs::load_fleet(&args.spec.inventories)?;
    let names: Vec<String> = if args.playbooks.is_empty() {
        lockstep_spec::embedded::playbooks()
            .into_iter()
            .map(|f| f.path)
            .collect()
    } else {
        args.playbooks
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    };
    let mut errors = Vec::new();
    for name in &names {
        // A playbook file with its own `group_vars/` or `host_vars/` has its own fleet.
        let own;
        let fleet = if !args.playbooks.is_empty()
            && !args.spec.inventories.is_empty()
            && inputs::playbook_vars_dir(name).is_some()
        {
            match inputs::load_fleet_for(&args.spec.inventories, Some(name)) {
                Ok((f, _)) => {
                    own = f;
                    &own
                }
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            }
        } else {
            &fleet
        };
        let loaded = if args.playbooks.is_empty() {
            let src = lockstep_spec::embedded::playbooks()
                .into_iter()
                .find(|f| &f.path == name)
                .expect("listed above");
            lockstep_spec::load_playbook(&src, fleet)
                .map_err(|d| anyhow::Error::new(BadInput(d.to_string())))
        } else {
            inputs::load_playbook(name, fleet).map(|(p, _)| p)
        };
        let playbook = match loaded {
            Ok(p) => p,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        let opts = inputs::plan_options(&args.spec)?;
        if let Err(e) = lockstep_plan::plan(fleet, &playbook, &opts) {
            errors.push(format!("{name}: {e}"));
        }
    }
    if errors.is_empty() {
        Ok(ExitStatus::Success)
    } else {
        Err(anyhow::Error::new(BadInput(errors.join("\n"))))
    }
}
