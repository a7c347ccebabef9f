//! [`Graph`]: everything the scheduler needs about a plan, computed once per drive so that no
//! step transition scans the plan: dependents, and a dense index of every step's site and unit.

use std::collections::HashMap;

use lockstep_core::Plan;

/// The precomputed shape of a plan.
#[derive(Debug)]
pub(crate) struct Graph {
    /// For each step, the steps whose `after` names it.
    pub dependents: Vec<Vec<usize>>,
    /// For each step, its site (dense index).
    pub site: Vec<usize>,
    /// For each step, its unit (dense index, in order of first appearance in the plan): the
    /// cluster, else the pool, else the host the step belongs to, within its site.
    pub unit: Vec<usize>,
    /// Number of sites.
    pub n_sites: usize,
    /// Number of units.
    pub n_units: usize,
    /// For each stage, its steps in plan order.
    pub stage_steps: Vec<Vec<usize>>,
    /// For each stage, the rank of every site in it (stage's own list first, then the order the
    /// plan's steps name them); `usize::MAX` for sites not in the stage.
    pub site_rank: Vec<Vec<usize>>,
}

impl Graph {
    /// Builds the graph of `plan` in O(steps + edges).
    pub fn new(plan: &Plan) -> Graph {
        let n = plan.steps.len();
        let n_stages = plan
            .stages
            .len()
            .max(plan.steps.iter().map(|s| s.stage + 1).max().unwrap_or(0));
        let mut dependents = vec![Vec::new(); n];
        let mut sites: HashMap<String, usize> = HashMap::new();
        let mut site_names = Vec::new();
        let mut units: HashMap<(usize, String), usize> = HashMap::new();
        let mut site = Vec::with_capacity(n);
        let mut unit = Vec::with_capacity(n);
        let mut stage_steps = vec![Vec::new(); n_stages];
        let mut intern_site = |name: &str, site_names: &mut Vec<String>| -> usize {
            let key = name.to_ascii_lowercase();
            let next = sites.len();
            *sites.entry(key).or_insert_with(|| {
                site_names.push(name.to_owned());
                next
            })
        };
        // Stage site lists first, so that every listed site has an index.
        for stage in &plan.stages {
            for s in &stage.sites {
                intern_site(s.as_str(), &mut site_names);
            }
        }
        for (i, step) in plan.steps.iter().enumerate() {
            for &d in &step.after {
                if d < n {
                    dependents[d].push(i);
                }
            }
            let s = intern_site(step.site.as_str(), &mut site_names);
            site.push(s);
            let key = if let Some(c) = &step.cluster {
                format!("cluster:{}", c.as_str().to_ascii_lowercase())
            } else if let Some(p) = &step.pool {
                format!("pool:{}", p.as_str().to_ascii_lowercase())
            } else {
                format!("host:{}", step.host.as_str().to_ascii_lowercase())
            };
            let next = units.len();
            unit.push(*units.entry((s, key)).or_insert(next));
            stage_steps[step.stage].push(i);
        }
        let n_sites = site_names.len();
        let mut site_rank = Vec::with_capacity(n_stages);
        for (k, steps) in stage_steps.iter().enumerate() {
            let mut rank = vec![usize::MAX; n_sites];
            let mut next = 0;
            let listed = plan
                .stages
                .get(k)
                .map(|s| s.sites.as_slice())
                .unwrap_or(&[]);
            let listed_idx = listed.iter().map(|s| {
                sites
                    .get(&s.as_str().to_ascii_lowercase())
                    .copied()
                    .unwrap_or(usize::MAX)
            });
            for s in listed_idx.chain(steps.iter().map(|&i| site[i])) {
                if s < n_sites && rank[s] == usize::MAX {
                    rank[s] = next;
                    next += 1;
                }
            }
            site_rank.push(rank);
        }
        Graph {
            dependents,
            site,
            unit,
            n_sites,
            n_units: units.len(),
            stage_steps,
            site_rank,
        }
    }
}
