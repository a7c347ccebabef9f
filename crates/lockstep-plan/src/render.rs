//! The text form of a plan, for `lockstep plan`: what an Exchange administrator reads before
//! approving a run. Stable: one line per step, in plan order.

use std::fmt::Write;

use lockstep_core::{Fleet, Gate, Plan};

/// An estimate, rounded up to whole minutes, in the one duration style.
fn duration(secs: u64) -> String {
    match secs.div_ceil(60) {
        0 => "0 min".to_owned(),
        mins => lockstep_core::duration_text(mins.saturating_mul(60_000)),
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn gate(g: &Gate) -> String {
    match g {
        Gate::None => "starts when the previous stage is done".to_owned(),
        Gate::Approval => "waits for `lockstep approve`".to_owned(),
        Gate::Soak { secs } => format!("soaks {} after the previous stage", duration(*secs)),
    }
}

/// Renders `plan` as text: per stage (with its gate), per site, per cluster/pool/host, one line
/// per step: `[rule] id  name  (on HOST)`, with `, out of service` on the steps during which
/// their node is out of service and `, in parallel with the line above` on steps that start
/// together with the one before (all-nodes phases, pool rounds).
pub fn render_text(plan: &Plan) -> String {
    render(plan, None)
}

/// [`render_text`] with each site's locale, read from the fleet the plan was made from.
pub fn render_text_with_fleet(plan: &Plan, fleet: &Fleet) -> String {
    render(plan, Some(fleet))
}

fn render(plan: &Plan, fleet: Option<&Fleet>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan `{}`: {}{}{}, hash {}",
        plan.playbook,
        plan.procedure,
        plan.target.map(|t| format!(" to {t}")).unwrap_or_default(),
        plan.product()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default(),
        plan.hash.short()
    );
    let _ = writeln!(
        out,
        "{} in {}; critical path {}; {}; {} per site at once",
        plural(plan.steps.len(), "step"),
        plural(plan.stages.len(), "stage"),
        duration(plan.critical_path_secs()),
        match plan.failure_budget.max_failed_hosts {
            0 => "halts at the first failed host".to_owned(),
            n => format!("tolerates {}", plural(n as usize, "failed host")),
        },
        match plan.max_parallel_per_site {
            0 => "any number of clusters/hosts".to_owned(),
            n => plural(n as usize, "cluster/host"),
        }
    );
    let mut last_stage = None;
    let mut last_site: Option<&str> = None;
    let mut last_unit: Option<String> = None;
    for (i, s) in plan.steps.iter().enumerate() {
        if last_stage != Some(s.stage) {
            last_stage = Some(s.stage);
            last_site = None;
            last_unit = None;
            if let Some(st) = plan.stages.get(s.stage) {
                let sites: Vec<&str> = st.sites.iter().map(|x| x.as_str()).collect();
                let _ = writeln!(
                    out,
                    "\nStage {}/{} `{}` ({}; {} at once): {}",
                    s.stage + 1,
                    plan.stages.len(),
                    st.name,
                    gate(&st.gate),
                    plural(st.max_parallel_sites as usize, "site"),
                    sites.join(", ")
                );
            }
        }
        if last_site != Some(s.site.as_str()) {
            last_site = Some(s.site.as_str());
            last_unit = None;
            match fleet.and_then(|f| f.site(s.site.as_str())) {
                Some(site) => {
                    let _ = writeln!(out, "  Site {} ({})", s.site, site.locale);
                }
                None => {
                    let _ = writeln!(out, "  Site {}", s.site);
                }
            }
        }
        let unit = match (&s.cluster, &s.pool) {
            (Some(c), _) => format!("Cluster {c}"),
            (None, Some(p)) => format!("Pool {p} (load-balanced, in lockstep)"),
            (None, None) => format!("Host {}", s.host),
        };
        if last_unit.as_deref() != Some(unit.as_str()) {
            let _ = writeln!(out, "    {unit}");
            last_unit = Some(unit);
        }
        // A step waiting for exactly what the line above waits for runs at the same time
        // (all-nodes phases, pool rounds).
        let parallel = i > 0 && {
            let prev = &plan.steps[i - 1];
            prev.stage == s.stage
                && prev.cluster == s.cluster
                && prev.pool == s.pool
                && (s.cluster.is_some() || s.pool.is_some() || prev.host == s.host)
                && prev.after == s.after
        };
        let _ = writeln!(
            out,
            "      [{}] {}  {}  (on {}{}{})",
            s.rule,
            s.id,
            s.name,
            s.host,
            if s.out_of_service {
                ", out of service"
            } else {
                ""
            },
            if parallel {
                ", in parallel with the line above"
            } else {
                ""
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0 min");
        assert_eq!(duration(61), "2 min");
        assert_eq!(duration(3600), "1 h");
        assert_eq!(duration(3599), "1 h");
        assert_eq!(duration(5400), "1 h 30 min");
    }
}
