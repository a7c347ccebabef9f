//! `lockstep demo`: the README's first command. Starts the lab in-process from the built-in
//! inventory and rolls every shipped KB 328839 procedure across all sites, unattended.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::{Context, Result};
use lockstep_core::RunMeta;
use lockstep_lab::{Lab, LabConfig, Recorder};
use secrecy::SecretString;

use crate::args::DemoArgs;
use crate::commands::lab::lab_user;
use crate::commands::run::{discover_and_plan, finish, stop_on_ctrl_c, Discovered, Drive};
use crate::exit::ExitStatus;
use crate::settings::Settings;
use crate::wiring::DirectCredentials;
use crate::{inputs, wiring};

/// The order the demo rolls the procedures in: front-ends before back-ends (`tier-order`) come
/// first for each product, so the organisation-wide front-end rule holds for the clusters after.
pub const DEMO_ORDER: [&str; 9] = [
    "e3-fb",
    "e3-cluster",
    "e3-nc",
    "e2-fb",
    "e2-active-passive",
    "e2-active-active",
    "e2-nc",
    "e5-cluster",
    "e5-nc",
];

fn ephemeral_password() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// `lockstep demo`.
pub async fn run(args: &DemoArgs, settings: &Settings) -> Result<ExitStatus> {
    let (fleet, inventories) = inputs::load_fleet(&[])?;
    if let Some(dir) = args.record.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    let recorder = Recorder::to_file(&args.record)
        .with_context(|| format!("cannot write lab record `{}`", args.record.display()))?;
    // The lab and the controller share this process: the password never leaves it.
    let password = ephemeral_password();
    let user = lab_user(&fleet);
    let config = LabConfig {
        time_scale: settings.time_scale.unwrap_or(args.time_scale),
        ..LabConfig::default()
    };
    let package_root = write_lab_packages(args, &config)?;
    let lab = Lab::start(
        &fleet,
        config,
        crate::commands::lab::lab_server_config(&user, &password, false, false),
        recorder,
    )
    .await
    .context("the lab could not start")?;
    let endpoints = lab.endpoints();
    let _ = writeln!(
        std::io::stderr(),
        "lab: {} simulated Windows servers in {} sites, listening on 127.0.0.1",
        endpoints.len(),
        fleet.sites.len()
    );
    let all_hosts: Vec<_> = fleet.hosts.iter().map(|h| h.name.clone()).collect();
    let direct = DirectCredentials {
        user,
        password: SecretString::from(password),
    };
    let transport = wiring::transport(
        &fleet,
        &all_hosts,
        Some(&endpoints),
        Some(&direct),
        settings,
    )?;
    let store = wiring::store(settings)?;
    let fleet = Arc::new(fleet);
    // The fleet's Exchange builds before and after, read as `lockstep facts` reads them.
    let read_builds = || async {
        let d = lockstep_actions::discover_with(
            transport.as_ref(),
            &fleet,
            &all_hosts,
            &[lockstep_actions::BuiltinProbe::Exchange],
        )
        .await;
        let _ = store.put_fleet_facts(&d.to_facts(&fleet, lockstep_core::now_ms()));
        d.nodes
            .into_iter()
            .filter_map(|(h, f)| Some((h, f.build?)))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let before = read_builds().await;
    let drive = Drive::new(
        fleet.clone(),
        transport.clone(),
        store.clone(),
        true,
        0.0,
        settings,
    );
    let order: Vec<String> = if args.playbooks.is_empty() {
        DEMO_ORDER.iter().map(|s| s.to_string()).collect()
    } else {
        args.playbooks.clone()
    };
    let mut status = ExitStatus::Success;
    for name in &order {
        let (playbook, shown) = inputs::load_playbook(name, &fleet)?;
        let _ = writeln!(std::io::stderr(), "\n### {} ({})", playbook.title, shown);
        let opts = demo_plan_options(&package_root);
        let extra_vars = opts.extra_vars.clone();
        let (plan, owners) =
            match discover_and_plan(&fleet, &playbook, opts, transport.as_ref()).await? {
                Discovered::Ready { plan, owners } => (plan, owners),
                Discovered::Halted {
                    class, problems, ..
                } => {
                    Discovered::print_halt(class, &problems);
                    status = ExitStatus::Halted;
                    break;
                }
            };
        let meta = RunMeta {
            inventory: inventories.join("\n"),
            playbook: name.clone(),
            started_by: "lockstep demo".into(),
            limit: Vec::new(),
            owners,
            extra_vars,
        };
        let outcome = drive
            .engine(&plan, &[])
            .start(plan, meta, stop_on_ctrl_c())
            .await?;
        status = finish(&outcome, &settings.state.shown(), drive.store.as_ref());
        if status != ExitStatus::Success {
            break;
        }
    }
    let after = read_builds().await;
    transport.close().await;
    lab.shutdown().await;
    let violations = lockstep_lab::verify_file(&args.record)
        .with_context(|| format!("cannot check lab record `{}`", args.record.display()))?;
    print_summary(args, settings, &before, &after, &violations)?;
    if status == ExitStatus::Success && !violations.is_empty() {
        status = ExitStatus::Failure;
    }
    Ok(status)
}

/// Writes the lab's installer packages, which the playbooks' `stage` steps copy to the nodes,
/// beside the record; returns their folder.
fn write_lab_packages(args: &DemoArgs, config: &LabConfig) -> Result<std::path::PathBuf> {
    let package_root = std::path::absolute(args.record.with_extension("packages"))
        .unwrap_or_else(|_| args.record.with_extension("packages"));
    config.write_packages(&package_root).with_context(|| {
        format!(
            "cannot write the lab packages to `{}`",
            package_root.display()
        )
    })?;
    Ok(package_root)
}

/// The lab's stand-in for Cluster Administrator's "Upgrade Exchange Virtual Server", so the
/// rehearsal runs unattended (an operator's -e, never an inventory variable), and the lab's
/// packages.
fn demo_plan_options(package_root: &std::path::Path) -> lockstep_plan::PlanOptions {
    lockstep_plan::PlanOptions {
        extra_vars: [
            (
                "evs_upgrade_tool".to_owned(),
                "labctl evs upgrade".to_owned(),
            ),
            (
                "package_root".to_owned(),
                package_root.display().to_string(),
            ),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    }
}

/// What the demo did: where its state and record are, the builds that moved, and the KB 328839
/// rules the lab record breaks.
fn print_summary<K: Ord, V: PartialEq + std::fmt::Display>(
    args: &DemoArgs,
    settings: &Settings,
    before: &std::collections::BTreeMap<K, V>,
    after: &std::collections::BTreeMap<K, V>,
    violations: &[impl std::fmt::Display],
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "state:  {}   (lockstep status)",
        settings.state.shown().display()
    )?;
    writeln!(
        out,
        "record: {}   (lockstep lab verify {})",
        args.record.display(),
        args.record.display()
    )?;
    let mut moves: std::collections::BTreeMap<String, usize> = Default::default();
    for (h, b) in before {
        if let Some(a) = after.get(h).filter(|a| *a != b) {
            *moves.entry(format!("{b} -> {a}")).or_default() += 1;
        }
    }
    writeln!(
        out,
        "builds: {} of {} hosts moved (read live before and after, as `lockstep facts` does)",
        moves.values().sum::<usize>(),
        before.len()
    )?;
    for (m, n) in &moves {
        writeln!(out, "  {m}: {n} host(s)")?;
    }
    writeln!(
        out,
        "invariants: {} violation(s) of the KB 328839 rules in the lab record",
        violations.len()
    )?;
    for v in violations {
        writeln!(out, "  {v}")?;
    }
    Ok(())
}
