//! `lockstep run` and `lockstep resume`: discovery, planning, driving the engine.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;

use anyhow::{Context, Result};
use lockstep_core::{Fleet, Plan, Playbook, RunId, RunMeta, StateStore, Transport};
use lockstep_engine::{Engine, EngineOptions, RunOutcome, StopSignal};
use lockstep_plan::PlanOptions;

use crate::args::{ResumeArgs, RunArgs};
use crate::exit::{BadInput, ExitStatus};
use crate::live::LiveSink;
use crate::logging::RunLogSink;
use crate::progress::{LineSink, Tee};
use crate::settings::{Progress, Settings};
use crate::{inputs, wiring};

/// Everything a drive needs besides the plan.
pub struct Drive<'a> {
    /// The fleet.
    pub fleet: Arc<Fleet>,
    /// The transport.
    pub transport: Arc<dyn Transport>,
    /// The store.
    pub store: Arc<dyn StateStore>,
    /// Engine options.
    pub options: EngineOptions,
    /// Global flags.
    pub settings: &'a Settings,
}

impl<'a> Drive<'a> {
    /// The parts of a drive; `auto_approve` and `soak_scale` are the engine options a command
    /// chooses (`--yes`, `--soak-scale`; the demo approves everything and skips soaks).
    pub fn new(
        fleet: Arc<Fleet>,
        transport: Arc<dyn Transport>,
        store: Arc<dyn StateStore>,
        auto_approve: bool,
        soak_scale: f64,
        settings: &'a Settings,
    ) -> Self {
        Drive {
            fleet,
            transport,
            store,
            options: EngineOptions {
                auto_approve,
                soak_scale,
                ..EngineOptions::default()
            },
            settings,
        }
    }

    /// An engine over these parts with the built-in actions, reporting progress on `plan` (the
    /// plan it will drive; `complete[i]` marks steps a resume finds complete): live bars on a
    /// terminal, plain lines otherwise or with `--no-progress`, JSON with `--output json`; and
    /// always the run's log file beside the state.
    pub fn engine(&self, plan: &Plan, complete: &[bool]) -> Engine {
        let runner = Arc::new(crate::runner::BuiltinRunner::new(
            self.transport.clone(),
            self.fleet.clone(),
        ));
        let display: Arc<dyn lockstep_core::EventSink> = match self.settings.progress {
            Progress::Bars => Arc::new(LiveSink::new(plan, complete)),
            Progress::Lines { quiet } => Arc::new(LineSink::new(quiet)),
            Progress::Json => Arc::new(crate::progress::JsonSink::default()),
        };
        let events = Arc::new(Tee(vec![
            Arc::new(RunLogSink::new(&self.settings.state.log_anchor())),
            display,
        ]));
        Engine::new(runner, self.store.clone(), events, self.options.clone())
    }
}

/// What live discovery found before the first change.
pub enum Discovered {
    /// Nothing known stops the run: the plan with the live group owners.
    Ready {
        /// The plan.
        plan: Plan,
        /// The live owners it was made with.
        owners: BTreeMap<String, String>,
    },
    /// Something already known would halt the run: it must not change anything.
    Halted {
        /// The plan without live owners (what a run of it would be).
        plan: Plan,
        /// The class of the halt.
        class: lockstep_core::HaltClass,
        /// Every problem found, one sentence each.
        problems: Vec<String>,
    },
}

impl Discovered {
    /// The halt reason of a `Halted` discovery.
    pub fn reason(problems: &[String]) -> String {
        format!(
            "live discovery before the first change found {} problem(s): {}",
            problems.len(),
            problems.join("; ")
        )
    }

    /// Prints a `Halted` discovery for `run --check` (no run is stored).
    pub fn print_halt(class: lockstep_core::HaltClass, problems: &[String]) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "HALTED ({class}): live discovery before the first change found problems; a run would change nothing and halt here"
        );
        for p in problems {
            let _ = writeln!(err, "  - {p}");
        }
        let _ = writeln!(err, "  next: {}", class.next_step());
    }
}

/// Live discovery of every host of the run (and the front-ends the tier order covers), then
/// everything it makes knowable before the first change: the inventory's agreement with the
/// fleet, reachability and credentials of every host, the tier order (`tier-order`) against the
/// live builds, the package's editions (E2-ED), the packages readable on the controller and the
/// disk space to stage them. `run` and `run --check` judge it identically.
pub async fn discover_and_plan(
    fleet: &Fleet,
    playbook: &Playbook,
    opts: PlanOptions,
    transport: &dyn Transport,
) -> Result<Discovered> {
    let offline = plan(fleet, playbook, &opts)?;
    let hosts = wiring::plan_hosts(&offline, fleet);
    let discovery = lockstep_actions::discover(transport, fleet, &hosts).await;
    let differences = discovery.differences(fleet, &hosts);
    let mut problems: Vec<String> = differences.clone();
    problems.extend(
        discovery
            .unreachable
            .iter()
            .map(|(h, why)| format!("host `{h}` is unreachable: {why}")),
    );
    let mut halts = discovery.halts(fleet, &offline);
    halts.extend(lockstep_actions::stage::space_halts(transport, fleet, &offline).await);
    problems.extend(halts.iter().map(|(_, why)| why.clone()));
    if !problems.is_empty() {
        // A real difference is the inventory's; then unreachable nodes; then the rules.
        let class = if !differences.is_empty() {
            lockstep_core::HaltClass::InventoryMismatch
        } else if !discovery.unreachable.is_empty() {
            lockstep_core::HaltClass::NodeUnreachable
        } else {
            halts[0].0
        };
        return Ok(Discovered::Halted {
            plan: offline,
            class,
            problems,
        });
    }
    let owners = discovery.owners.clone();
    let opts = PlanOptions {
        owners: owners.clone(),
        ..opts
    };
    Ok(Discovered::Ready {
        plan: plan(fleet, playbook, &opts)?,
        owners,
    })
}

/// Plans, mapping planner errors to bad input.
pub fn plan(fleet: &Fleet, playbook: &Playbook, opts: &PlanOptions) -> Result<Plan> {
    lockstep_plan::plan(fleet, playbook, opts)
        .map_err(|e| anyhow::Error::new(BadInput(e.to_string())))
}

/// The exit status of an outcome, printing where things are (for a halt: what the run changed
/// and left out of service, from the stored run).
pub fn finish(outcome: &RunOutcome, state: &std::path::Path, store: &dyn StateStore) -> ExitStatus {
    let mut err = std::io::stderr().lock();
    match outcome {
        RunOutcome::Finished { run } => {
            let _ = writeln!(err, "run {run} finished; state in {}", state.display());
            ExitStatus::Success
        }
        RunOutcome::Halted { run, class, reason } => {
            let standing = store
                .load_run(run)
                .map(|r| standing(&r).describe())
                .unwrap_or_else(|e| format!("(the stored run could not be read: {e})"));
            let _ = writeln!(
                err,
                "run {run} halted ({class}): {reason}\nnow:  {standing}\nnext: {}\n      (`lockstep resume {run}`; state in {})",
                class.next_step(),
                state.display()
            );
            ExitStatus::Halted
        }
        RunOutcome::Waiting { run, reason } => {
            let _ = writeln!(
                err,
                "run {run} is waiting: {reason}\nnext: `lockstep approve {run}` then `lockstep resume {run}`"
            );
            ExitStatus::Waiting
        }
    }
}

/// What a stored run changed and left out of service.
pub fn standing(record: &lockstep_core::RunRecord) -> lockstep_core::Standing {
    let by_id: std::collections::HashMap<&str, lockstep_core::StepState> = record
        .steps
        .iter()
        .map(|s| (s.step.as_str(), s.state))
        .collect();
    let states: Vec<lockstep_core::StepState> = record
        .plan
        .steps
        .iter()
        .map(|s| {
            by_id
                .get(s.id.as_str())
                .copied()
                .unwrap_or(lockstep_core::StepState::Pending)
        })
        .collect();
    lockstep_core::Standing::of(&record.plan, &states)
}

/// Wires Ctrl-C to a stop at the next safe point.
pub fn stop_on_ctrl_c() -> StopSignal {
    let stop = StopSignal::new();
    let s = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            crate::live::with_output_suspended(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "stopping at the next safe point (running steps finish first)..."
                );
            });
            s.trigger();
        }
    });
    stop
}

/// `lockstep run`.
pub async fn run(args: &RunArgs, settings: &Settings) -> Result<ExitStatus> {
    let (fleet, inventories) =
        inputs::load_fleet_for(&args.spec.inventories, Some(&args.playbook))?;
    let (playbook, playbook_name) = inputs::load_playbook(&args.playbook, &fleet)?;
    let opts = inputs::plan_options(&args.spec)?;
    let offline = plan(&fleet, &playbook, &opts)?;
    let hosts = wiring::plan_hosts(&offline, &fleet);
    let transport = wiring::transport(&fleet, &hosts, None, None, settings)?;
    // Kept to delete the idle shells however the command ends (finished, halted, `--check`,
    // or an error): shells left open count against the node's `MaxShellsPerUser` for hours.
    let shells = transport.clone();
    let result = async {
        // One controller per host: every host the run will touch is leased before the first remote
        // action (discovery included). `--check` changes nothing and takes no lease.
        let leased = if args.check {
            None
        } else {
            let store = wiring::store(settings)?;
            if let Some(status) = take_hosts(store.as_ref(), &hosts, None)? {
                return Ok(status);
            }
            Some((Leases(store.clone()), store))
        };
        let transport: Arc<dyn lockstep_core::Transport> = match &leased {
            Some((_, store)) => wiring::FencedTransport::wrap(transport, store.fence()),
            None => transport,
        };
        let found = if args.no_discovery {
            Discovered::Ready {
                plan: offline,
                owners: BTreeMap::new(),
            }
        } else {
            discover_and_plan(&fleet, &playbook, opts.clone(), transport.as_ref()).await?
        };
        if args.check {
            return match found {
                Discovered::Ready { plan, .. } => {
                    crate::commands::dry_run::run(&plan, Arc::new(fleet), transport).await
                }
                Discovered::Halted {
                    class, problems, ..
                } => {
                    Discovered::print_halt(class, &problems);
                    Ok(ExitStatus::Halted)
                }
            };
        }
        let Some((leases, store)) = leased else {
            unreachable!("`--check` returned above")
        };
        let drive = Drive::new(
            Arc::new(fleet),
            transport,
            store,
            args.yes,
            settings.soak_scale,
            settings,
        );
        let (plan, owners, halt) = match found {
            Discovered::Ready { plan, owners } => (plan, owners, None),
            Discovered::Halted {
                plan,
                class,
                problems,
            } => (plan, BTreeMap::new(), Some((class, problems))),
        };
        let meta = RunMeta {
            inventory: inventories.join("\n"),
            playbook: playbook_name,
            started_by: lockstep_store::os_user(),
            limit: opts.limit,
            owners,
            extra_vars: opts.extra_vars,
        };
        let engine = drive.engine(&plan, &[]);
        let outcome = match halt {
            // Known before the first change: the run is stored halted, nothing is driven.
            Some((class, problems)) => engine
                .halt_before_start(None, plan, meta, class, Discovered::reason(&problems))
                .context("the run could not be recorded")?,
            None => engine
                .start(plan, meta, stop_on_ctrl_c())
                .await
                .context("the run could not be driven")?,
        };
        drop(leases);
        Ok(finish(
            &outcome,
            &settings.state.shown(),
            drive.store.as_ref(),
        ))
    }
    .await;
    // Ended or halted: delete the idle shells (a shell whose command may still run is not idle).
    shells.close().await;
    result
}

/// Releases this controller's leases when the command ends (a controller that dies instead
/// leaves them to lapse: only the resume of its run takes its hosts over).
pub struct Leases(pub Arc<dyn StateStore>);

impl Drop for Leases {
    fn drop(&mut self) {
        if let Err(e) = self.0.release_leases() {
            tracing::warn!("could not release the leases: {e}");
        }
    }
}

/// Leases `hosts` to this controller; `Some(status)` after printing the refusal (nothing was
/// sent to any host).
pub fn take_hosts(
    store: &dyn StateStore,
    hosts: &[lockstep_core::Name],
    run: Option<&RunId>,
) -> Result<Option<ExitStatus>> {
    match store.take_hosts(hosts, run) {
        Ok(()) => Ok(None),
        Err(e @ lockstep_core::StoreError::HostsLeased(_)) => {
            let _ = writeln!(std::io::stderr().lock(), "REFUSED: {e}");
            Ok(Some(ExitStatus::Halted))
        }
        Err(e) => Err(anyhow::Error::new(e).context("cannot lease the run's hosts")),
    }
}

/// Picks the run: the one named, or the latest.
pub fn pick_run(store: &dyn StateStore, run: &Option<String>) -> Result<RunId> {
    match run {
        Some(r) => {
            let id = RunId(r.clone());
            match store.load_run(&id) {
                Ok(_) => Ok(id),
                Err(lockstep_core::StoreError::NoSuchRun(_)) => {
                    let known: Vec<String> = store
                        .list_runs()
                        .map(|l| l.into_iter().map(|s| s.id.0).collect())
                        .unwrap_or_default();
                    Err(anyhow::Error::new(BadInput(format!(
                        "error: no run `{r}` in the state file{}",
                        match known.last() {
                            Some(last) =>
                                format!(" (latest: `{last}`; `lockstep status` lists them)"),
                            None => String::new(),
                        }
                    ))))
                }
                Err(e) => Err(e.into()),
            }
        }
        None => store.latest_run()?.ok_or_else(|| {
            anyhow::Error::new(BadInput(
                "error: the state file holds no run yet; start one with `lockstep run`".into(),
            ))
        }),
    }
}

/// `lockstep resume`.
pub async fn resume(args: &ResumeArgs, settings: &Settings) -> Result<ExitStatus> {
    let store = wiring::store(settings)?;
    let run = pick_run(store.as_ref(), &args.run)?;
    let record = store.load_run(&run)?;
    let meta = &record.meta;
    let recorded: Vec<String> = if args.inventories.is_empty() {
        meta.inventory.lines().map(str::to_owned).collect()
    } else {
        args.inventories
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    };
    let fleet = inputs::reload_fleet(&recorded, &meta.playbook)?;
    let (playbook, _) = inputs::load_playbook(&meta.playbook, &fleet)?;
    let hosts = wiring::plan_hosts(&record.plan, &fleet);
    let transport = wiring::transport(&fleet, &hosts, None, None, settings)?;
    // Kept to delete the idle shells however the resume ends (see `run`).
    let shells = transport.clone();
    let result = async {
        if let Some(status) = take_hosts(store.as_ref(), &hosts, Some(&run))? {
            return Ok(status);
        }
        let _leases = Leases(store.clone());
        let transport = wiring::FencedTransport::wrap(transport, store.fence());
        // The plan as the current files give it: with the live owners again when re-planning, else
        // with the owners the run was planned with (so an unchanged inventory gives the same hash).
        let opts = PlanOptions {
            limit: meta.limit.clone(),
            owners: meta.owners.clone(),
            extra_vars: meta.extra_vars.clone(),
        };
        // A run that changed nothing yet (halted by discovery, or stopped before its first step)
        // is judged again as `run` would: discovery, the knowable halts, a fresh plan.
        let untouched = record
            .steps
            .iter()
            .all(|s| s.state == lockstep_core::StepState::Pending);
        let replan = args.replan || untouched;
        let mut halt = None;
        let current = if replan {
            match discover_and_plan(&fleet, &playbook, opts, transport.as_ref()).await? {
                Discovered::Ready { plan, .. } => plan,
                Discovered::Halted {
                    plan,
                    class,
                    problems,
                } => {
                    halt = Some((class, problems));
                    plan
                }
            }
        } else {
            plan(&fleet, &playbook, &opts)?
        };
        let drive = Drive::new(
            Arc::new(fleet),
            transport,
            store,
            args.yes,
            settings.soak_scale,
            settings,
        );
        let complete = complete_steps(&record, &current);
        let engine = drive.engine(&current, &complete);
        if let Some((class, problems)) = halt {
            if !untouched {
                // Steps ran: the run's state stands as it is; only this resume stops.
                Discovered::print_halt(class, &problems);
                return Ok(ExitStatus::Halted);
            }
            let outcome = engine
                .halt_before_start(
                    Some(&run),
                    current,
                    record.meta.clone(),
                    class,
                    Discovered::reason(&problems),
                )
                .context("the run could not be recorded")?;
            return Ok(finish(
                &outcome,
                &settings.state.shown(),
                drive.store.as_ref(),
            ));
        }
        let outcome = match engine
            .resume(&run, Some(current), replan, stop_on_ctrl_c())
            .await
        {
            Ok(o) => o,
            Err(lockstep_engine::EngineError::PlanChanged { run, stored, new }) => {
                return Err(anyhow::Error::new(BadInput(format!(
                    "error: the plan of run `{run}` changed since it started (inventory or playbook edited): stored {}, now {}; `lockstep resume --replan` continues on the new plan, keeping finished steps",
                    stored.short(),
                    new.short()
                ))))
            }
            Err(e) => return Err(anyhow::Error::new(e).context("the run could not be resumed")),
        };
        Ok(finish(
            &outcome,
            &settings.state.shown(),
            drive.store.as_ref(),
        ))
    }
    .await;
    shells.close().await;
    result
}

/// Which steps of a stored run are complete, in plan order (for the progress display).
fn complete_steps(record: &lockstep_core::RunRecord, plan: &Plan) -> Vec<bool> {
    let done: std::collections::BTreeSet<&str> = record
        .steps
        .iter()
        .filter(|s| s.state.is_complete())
        .map(|s| s.step.as_str())
        .collect();
    plan.steps
        .iter()
        .map(|s| done.contains(s.id.as_str()))
        .collect()
}
