//! Version and precondition gates: AssertVersion (E3-CLUSTER.18) and Preflight (G5, G6, E2-ED,
//! product line, pending reboot, Cluster service running).

use lockstep_core::{Edition, HaltClass, Name, PreflightCheck, Product, Version};

use crate::error::ActionError;
use crate::parse::SERVICE_RUNNING;
use crate::remote::ServiceState;
use crate::render;
use crate::services::state_word;
use crate::{Ctx, FactOut, Outcome, Probe};

/// AssertVersion: the installed build must equal `expected` (fact `build.after`), else
/// `VersionMismatch` naming host, found and expected as Exchange System Manager shows them.
pub(crate) async fn assert_version(
    ctx: &Ctx<'_>,
    product: Product,
    expected: Version,
) -> Result<Outcome, ActionError> {
    let host = ctx.host();
    let b = ctx.node().build().await?;
    if b.build != expected {
        return Err(ActionError::version_mismatch(
            host,
            format!(
                "host `{host}` runs {}, expected {} (E3-CLUSTER.18)",
                product.describe(b.build),
                product.describe(expected)
            ),
        ));
    }
    Ok(Outcome::Done {
        output: String::new(),
        exit_code: None,
        facts: vec![FactOut::new(host, "build.after", b.build.to_string())],
        message: format!("host `{host}` runs {}", product.describe(b.build)),
    })
}

/// AssertVersion probe: the build is already the expected one.
pub(crate) async fn probe_version(ctx: &Ctx<'_>, expected: Version) -> Result<Probe, ActionError> {
    Ok(if ctx.node().build().await?.build == expected {
        Probe::Done
    } else {
        Probe::NotDone
    })
}

/// Whether `edition` may take a package for `editions` (E2-ED): an empty list means every
/// edition but Conferencing (Conferencing Server has its own service packs).
pub fn edition_allowed(edition: Edition, editions: &[Edition]) -> bool {
    if editions.is_empty() {
        edition != Edition::Conferencing
    } else {
        editions.contains(&edition)
    }
}

/// Preflight: runs every check, collects every failure into one error: `VersionMismatch` when
/// the edition does not match (E2-ED), else `Precondition`.
pub(crate) async fn preflight(
    ctx: &Ctx<'_>,
    checks: &[PreflightCheck],
    editions: &[Edition],
    product: Product,
) -> Result<Outcome, ActionError> {
    let host = ctx.host();
    let node = ctx.node();
    let mut failures: Vec<String> = Vec::new();
    let mut passed: Vec<&str> = Vec::new();
    let mut edition_mismatch = false;
    let mut build = None;
    for check in checks {
        match check {
            PreflightCheck::ServicesStopped { services } => {
                let mut ok = true;
                for s in services {
                    let name = Name::object(s).map_err(|e| {
                        ActionError::precondition(
                            host,
                            format!("preflight service name refused: {e}"),
                        )
                    })?;
                    match node.service_state(&render::sc_query(&name)).await? {
                        ServiceState::Missing => {}
                        ServiceState::State(1) => {}
                        ServiceState::State(st) => {
                            ok = false;
                            failures.push(format!(
                                "service `{s}` is {} (state {st}): stop it before installing (G5)",
                                state_word(st)
                            ));
                        }
                    }
                }
                if ok {
                    passed.push("services stopped (G5)");
                }
            }
            PreflightCheck::NoProcesses { images } => {
                let default = ["setup.exe", "update.exe", "xcopy.exe"]
                    .map(String::from)
                    .to_vec();
                let images = if images.is_empty() { &default } else { images };
                let procs = node.processes().await?;
                let mut found: Vec<&String> = procs
                    .iter()
                    .filter(|p| images.iter().any(|i| i.eq_ignore_ascii_case(p)))
                    .collect();
                found.sort();
                found.dedup();
                if found.is_empty() {
                    passed.push("no setup programs running (G6)");
                } else {
                    failures.push(format!(
                        "{} running: close every Setup, Update and Xcopy first (G6)",
                        found
                            .iter()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            PreflightCheck::EditionMatches => {
                if build.is_none() {
                    build = Some(node.build().await?);
                }
                let live = build.and_then(|b| b.edition);
                let inventory = ctx.fleet.host(host.as_str()).and_then(|h| h.edition());
                match live.or(inventory) {
                    Some(e) if edition_allowed(e, editions) => passed.push("edition matches (E2-ED)"),
                    Some(e) => {
                        edition_mismatch = true;
                        let wanted = if editions.is_empty() {
                            "every edition but Conferencing".to_owned()
                        } else {
                            editions.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")
                        };
                        failures.push(format!(
                            "host `{host}` runs the {e} edition; the package is for {wanted} (E2-ED)"
                        ));
                    }
                    None => failures.push(format!(
                        "the Exchange edition of `{host}` is unknown (no `Edition` value, not in the inventory) (E2-ED)"
                    )),
                }
            }
            PreflightCheck::ProductMatches => {
                let b = match build {
                    Some(b) => b.build,
                    None => {
                        let nb = node.build().await?;
                        build = Some(nb);
                        nb.build
                    }
                };
                if product.owns(b) {
                    passed.push("product matches");
                } else {
                    failures.push(format!(
                        "host `{host}` runs build {b}, which is not {product}"
                    ));
                }
            }
            PreflightCheck::NoPendingReboot => {
                if node.pending_reboot().await? {
                    failures.push(format!(
                        "a restart is pending on `{host}` (`PendingFileRenameOperations`): restart it first"
                    ));
                } else {
                    passed.push("no pending restart");
                }
            }
            PreflightCheck::ClusterServiceRunning => {
                match node.service_state(render::SC_QUERY_CLUSSVC).await? {
                    ServiceState::State(SERVICE_RUNNING) => passed.push("Cluster service running"),
                    ServiceState::State(st) => failures.push(format!(
                        "the Cluster service of `{host}` is {} (state {st}), not running",
                        state_word(st)
                    )),
                    ServiceState::Missing => failures.push(format!(
                        "host `{host}` has no Cluster service (`ClusSvc` is not installed)"
                    )),
                }
            }
        }
    }
    if !failures.is_empty() {
        let class = if edition_mismatch {
            HaltClass::VersionMismatch
        } else {
            HaltClass::Precondition
        };
        return Err(ActionError::new(
            class,
            host,
            format!("preflight failed on `{host}`: {}", failures.join("; ")),
        ));
    }
    Ok(Outcome::Done {
        output: String::new(),
        exit_code: None,
        facts: Vec::new(),
        message: format!("preflight passed on `{host}`: {}", passed.join(", ")),
    })
}
