//! Install: run a service pack, hotfix or prerequisite hotfix installer and judge its exit code
//! (0 installed, 3010 restart required, 1641 restart started, anything else failed).
//!
//! Before: an installer is never sent to a node already at its target (the playbook package:
//! registry build >= target; a prerequisite hotfix: WQL `Win32_QuickFixEngineering` lists it);
//! the product line must match; no Setup, Update or Xcopy may run (G6). After: a target install
//! must leave exactly the target build (else `VersionMismatch`). Before, on an Exchange 2000/2003
//! cluster node the Cluster service must be stopped first (E3-C). A failure whose output shows
//! `FileInUse` points at G5.

use lockstep_core::{Action, Name, Product, RebootPolicy, Version};

use crate::parse::{self, EXIT_REBOOT_INITIATED, EXIT_REBOOT_REQUIRED, SERVICE_STOPPED};
use crate::reboot;
use crate::remote::{joined, Node, ServiceState};
use crate::render;
use crate::{Ctx, FactOut, Outcome, Probe};
use lockstep_core::StepError;

/// What an installer's exit code means under a reboot policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallVerdict {
    /// Installed; nothing more to do.
    Installed,
    /// Installed; restart the node now and wait for it (3010 with `if-required`/`always`, or
    /// any success with `always`).
    RebootNow,
    /// Installed; the installer started a restart itself (1641): wait for the node.
    RebootStarted,
    /// Installed; a restart is required but the policy is `never`: record `reboot.pending`.
    RebootPending,
    /// The installer failed.
    Failed,
}

/// Judges an installer's exit code (docs/commands.md, "Installers").
pub fn install_verdict(exit_code: i32, policy: RebootPolicy) -> InstallVerdict {
    match (exit_code, policy) {
        (0, RebootPolicy::Always) => InstallVerdict::RebootNow,
        (0, _) => InstallVerdict::Installed,
        (EXIT_REBOOT_REQUIRED, RebootPolicy::Never) => InstallVerdict::RebootPending,
        (EXIT_REBOOT_REQUIRED, _) => InstallVerdict::RebootNow,
        (EXIT_REBOOT_INITIATED, _) => InstallVerdict::RebootStarted,
        _ => InstallVerdict::Failed,
    }
}

/// The images whose presence means an installer runs (G6), plus the package's own file name.
fn installer_images(package: &Name) -> Vec<String> {
    let mut v: Vec<String> = ["setup.exe", "update.exe", "xcopy.exe"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(file) = package.as_str().rsplit('\\').next() {
        if !v.iter().any(|i| i.eq_ignore_ascii_case(file)) {
            v.push(file.to_owned());
        }
    }
    v
}

async fn running_installers(node: &Node<'_>, images: &[String]) -> Result<Vec<String>, StepError> {
    let procs = node.processes().await?;
    let mut found: Vec<String> = procs
        .into_iter()
        .filter(|p| images.iter().any(|i| i.eq_ignore_ascii_case(p)))
        .collect();
    found.sort();
    found.dedup();
    Ok(found)
}

fn has_hotfix(hotfixes: &[String], kb: &str) -> bool {
    hotfixes.iter().any(|h| h.eq_ignore_ascii_case(kb))
}

struct InstallSpec<'a> {
    package: &'a Name,
    args: &'a Name,
    prerequisite: Option<&'a str>,
    product: Product,
    target: Option<Version>,
    reboot: RebootPolicy,
}

fn spec(action: &Action) -> Option<InstallSpec<'_>> {
    match action {
        Action::Install {
            package,
            args,
            prerequisite,
            product,
            target,
            reboot,
            ..
        } => Some(InstallSpec {
            package,
            args,
            prerequisite: prerequisite.as_deref(),
            product: *product,
            target: *target,
            reboot: *reboot,
        }),
        _ => None,
    }
}

/// E3-C (and E2 procedures): on an Exchange 2000/2003 cluster node, the Cluster service must be
/// stopped before the service pack runs (setup refuses otherwise). Exchange 5.5 clusters install
/// on the active node with the group online, so they are not checked.
async fn check_cluster_service_stopped(
    ctx: &Ctx<'_>,
    node: &Node<'_>,
    product: Product,
) -> Result<(), StepError> {
    let host = ctx.host();
    let is_node = ctx
        .fleet
        .host(host.as_str())
        .is_some_and(|h| h.cluster.is_some());
    if !is_node || product == Product::Exchange55 {
        return Ok(());
    }
    match node.service_state(render::SC_QUERY_CLUSSVC).await? {
        ServiceState::State(SERVICE_STOPPED) | ServiceState::Missing => Ok(()),
        ServiceState::State(st) => Err(StepError::precondition(
            host,
            format!(
                "the Cluster service of cluster node `{host}` is not stopped (state {st}): \
                 move its groups away and stop it before installing"
            ),
        )),
    }
}

/// Install.
pub(crate) async fn execute(ctx: &Ctx<'_>, action: &Action) -> Result<Outcome, StepError> {
    let host = ctx.host();
    let Some(s) = spec(action) else {
        return Err(StepError::step_failed(host, "not an install action"));
    };
    let node = ctx.node();
    let mut facts = Vec::new();

    // Never install twice: re-check first.
    if let Some(kb) = s.prerequisite {
        if has_hotfix(&node.hotfixes().await?, kb) {
            return Ok(Outcome::done(format!(
                "hotfix {kb} is already installed on `{host}`: nothing sent"
            )));
        }
    }
    if let Some(target) = s.target {
        let b = node.build().await?;
        if b.build >= target {
            return Ok(Outcome::done(format!(
                "host `{host}` is already at target {} (found {}): nothing sent",
                s.product.describe(target),
                s.product.describe(b.build)
            )));
        }
        if !s.product.owns(b.build) {
            return Err(StepError::precondition(
                host,
                format!(
                    "host `{host}` runs build {}, which is not {}: package `{}` is for {}",
                    b.build, s.product, s.package, s.product
                ),
            ));
        }
        facts.push(FactOut::new(host, "build.before", b.build.to_string()));
        check_cluster_service_stopped(ctx, &node, s.product).await?;
    }
    let running = running_installers(&node, &installer_images(s.package)).await?;
    if !running.is_empty() {
        return Err(StepError::precondition(
            host,
            format!(
                "{} already running on `{host}`: close every Setup, Update and Xcopy before installing",
                running.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let boot_before = node.boot_time().await?;

    let line = render::installer(s.package, s.args);
    let out = node.run(&line, ctx.timeout).await?;
    let mut output = joined(&out);
    let code = out.exit_code;
    let mut message = format!("`{}` installed on `{host}` (exit {code})", s.package);
    match install_verdict(code, s.reboot) {
        InstallVerdict::Failed => {
            let mut m = format!(
                "installer `{}` failed on host `{host}` with exit {}",
                s.package,
                parse::describe_exit(code)
            );
            if parse::mentions_file_in_use(&output) {
                m.push_str(
                    "; a file was held open (`FileInUse:: Added to Filelist:` in the setup log): \
                     stop antivirus, backup and monitoring services first",
                );
            }
            return Err(StepError::step_failed(host, m).with_output(output, Some(code)));
        }
        InstallVerdict::Installed => {}
        InstallVerdict::RebootPending => {
            facts.push(FactOut::new(host, "reboot.pending", "true"));
            message.push_str("; a restart is pending (reboot policy `never`)");
        }
        InstallVerdict::RebootNow => {
            let (o, after) = reboot::restart(ctx).await?;
            if !o.is_empty() {
                output.push('\n');
                output.push_str(&o);
            }
            facts.push(FactOut::new(host, "boot.time", after));
            message.push_str("; restarted");
        }
        InstallVerdict::RebootStarted => {
            let after = reboot::wait_for_new_boot(ctx, &boot_before).await?;
            facts.push(FactOut::new(host, "boot.time", after));
            message.push_str("; the installer restarted the node and it is back");
        }
    }
    if let Some(target) = s.target {
        let after = node.build().await?;
        facts.push(FactOut::new(host, "build.after", after.build.to_string()));
        if after.build != target {
            return Err(StepError::version_mismatch(
                host,
                format!(
                    "host `{host}` shows {} after installing `{}`, expected {}",
                    s.product.describe(after.build),
                    s.package,
                    s.product.describe(target)
                ),
            )
            .with_output(output, Some(code)));
        }
        message = format!(
            "{message}; host `{host}` is at {}",
            s.product.describe(after.build)
        );
    }
    Ok(Outcome::Done {
        output,
        exit_code: Some(code),
        facts,
        message,
    })
}

/// Install probe: at target (or the hotfix is listed) => Done; an installer process runs =>
/// InProgress; else NotDone.
pub(crate) async fn probe(ctx: &Ctx<'_>, action: &Action) -> Result<Probe, StepError> {
    let Some(s) = spec(action) else {
        return Ok(Probe::NotDone);
    };
    let node = ctx.node();
    if let Some(kb) = s.prerequisite {
        if has_hotfix(&node.hotfixes().await?, kb) {
            return Ok(Probe::Done);
        }
    }
    // A setup rewriting the Setup key can leave it unreadable for a while: that is not an
    // answer until we know no installer runs.
    let mut unreadable = None;
    if let (None, Some(target)) = (s.prerequisite, s.target) {
        match node.build().await {
            Ok(b) if b.build >= target => return Ok(Probe::Done),
            Ok(_) => {}
            Err(e) if e.class == lockstep_core::HaltClass::Precondition => unreadable = Some(e),
            Err(e) => return Err(e),
        }
    }
    let installing = running_installers(&node, &installer_images(s.package))
        .await?
        .iter()
        .any(|p| !p.eq_ignore_ascii_case("xcopy.exe"));
    match (installing, unreadable) {
        (true, _) => Ok(Probe::InProgress),
        (false, Some(e)) => Err(e),
        (false, None) => Ok(Probe::NotDone),
    }
}
