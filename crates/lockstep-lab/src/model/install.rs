//! Installers: recognised by package path, silent while they run, with the KB's failure modes
//! (G5 FileInUse, G6 1618, E2-ED product/edition mismatch, E3-C running Cluster service) and the
//! `installer-fails` / `wrong-version-after-install` faults.

use lockstep_core::{Product, Version};

use super::cmdline::CmdLine;
use super::config::{PackageEffect, PackageSpec};
use super::fault::Fault;
use super::state::{Out, Power, State};
use super::world::Action;
use crate::record::RecordEvent;

/// A running installer.
#[derive(Debug, Clone)]
pub(crate) struct InstallJob {
    pub host: usize,
    pub package: PackageSpec,
    pub pid: u32,
    pub duration_secs: f64,
    /// Decided at start: the antivirus holds a file (G5).
    pub file_in_use: bool,
    /// The host's boot epoch at start: a restart meanwhile kills the installer.
    pub epoch: u64,
    /// Exchange services the installer stopped and starts again at its end (E3-NC, E5-NC).
    pub stopped: Vec<String>,
}

/// The Exchange services a service pack stops while it runs (not the clustered ones).
const EXCHANGE_SERVICES: [&str; 3] = ["MSExchangeSA", "MSExchangeIS", "MSExchangeMTA"];

/// `ERROR_INSTALL_FAILURE`.
const FAILURE: i32 = 1603;
/// `ERROR_INSTALL_ALREADY_RUNNING`.
const ALREADY_RUNNING: i32 = 1618;
/// `ERROR_PATCH_TARGET_NOT_FOUND`: the package is for another product, edition or version.
const NOT_APPLICABLE: i32 = 1642;
/// `ERROR_SUCCESS_REBOOT_INITIATED`.
const REBOOT_INITIATED: i32 = 1641;
/// `ERROR_SUCCESS_REBOOT_REQUIRED`.
const REBOOT_REQUIRED: i32 = 3010;
/// `WU_S_ALREADY_INSTALLED` (0x00240006): `wusa.exe` found the update installed.
const WU_ALREADY_INSTALLED: i32 = 0x0024_0006;
/// `WU_E_NOT_APPLICABLE` (0x80240017): the update is not for this Windows.
const WU_NOT_APPLICABLE: i32 = 0x8024_0017_u32 as i32;

/// The `KB` number in an update's file name (`windows10.0-kb5035849-x64.msu`: `KB5035849`).
fn kb_of(file: &str) -> Option<String> {
    let lower = file.to_ascii_lowercase();
    lower.match_indices("kb").find_map(|(i, _)| {
        let digits: String = lower[i + 2..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        (!digits.is_empty()).then(|| format!("KB{digits}"))
    })
}

impl State {
    /// `wusa.exe X.msu /quiet [/norestart]`: installs a Windows update. Exit codes as wusa's:
    /// 3010 (installed, restart needed), 1641 (installed, restarting: no `/norestart`),
    /// 2359302 `WU_S_ALREADY_INSTALLED`, 0x80240017 `WU_E_NOT_APPLICABLE`. The catalogued
    /// cumulative updates (`LabConfig::packages`) set the UBR at the restart; any other `KBnnn`
    /// file installs as a hotfix.
    pub(crate) fn cmd_wusa(&mut self, h: usize, cl: &CmdLine) -> Action {
        if !self.hosts[h].windows.uses_msu() {
            let line = cl.words.join(" ");
            return Action::Done(self.not_recognized(h, &line));
        }
        let args = cl.args();
        let Some(msu) = args.iter().find(|a| !a.starts_with('/')) else {
            return Action::Done(Out::err(87, "wusa.exe: no update file given.\n"));
        };
        if self.unc_refused(msu) {
            return Action::Done(Out::err(super::files::E_ACCESS_DENIED, ""));
        }
        if !super::files::is_unc(msu) && msu.contains('\\') && self.file(h, msu).is_none() {
            return Action::Done(Out::err(super::files::E_FILE_NOT_FOUND, ""));
        }
        let file = msu.rsplit(['\\', '/']).next().unwrap_or(msu);
        let mut pkg = match self.package_for(h, msu) {
            Some(p) if matches!(p.effect, PackageEffect::WindowsUpdate { .. }) => p,
            _ => {
                let Some(id) = kb_of(file) else {
                    return Action::Done(Out::err(WU_NOT_APPLICABLE, ""));
                };
                PackageSpec {
                    path: msu.clone(),
                    product: None,
                    editions: vec![],
                    windows: vec![],
                    effect: PackageEffect::WindowsUpdate { id, ubr: None },
                    duration_secs: 300.0,
                    exit_code: REBOOT_REQUIRED,
                    size: None,
                }
            }
        };
        if !args.iter().any(|a| a.eq_ignore_ascii_case("/norestart")) {
            pkg.exit_code = REBOOT_INITIATED;
        }
        let (id, _) = Self::target_text(&pkg);
        let node = &self.hosts[h];
        // wusa checks before it installs anything: no installer runs in these cases.
        if node.hotfixes.contains(&id) {
            return Action::Done(Out::err(WU_ALREADY_INSTALLED, ""));
        }
        if !pkg.windows.is_empty() && !pkg.windows.contains(&node.windows) {
            return Action::Done(Out::err(WU_NOT_APPLICABLE, ""));
        }
        self.install_begin(h, pkg, cl)
    }

    /// The package a program path on host `h` is: on a share (or a bare name), the package
    /// whose path ends it (case-insensitive); a local file (staged), the package with its
    /// SHA-256, whatever its name.
    pub(crate) fn package_for(&self, h: usize, program: &str) -> Option<PackageSpec> {
        let p = program.to_ascii_lowercase();
        let pkgs = &self.config.packages;
        if super::files::is_unc(&p) || !p.contains('\\') {
            return pkgs
                .iter()
                .find(|pkg| p.ends_with(&pkg.path.to_ascii_lowercase()))
                .cloned();
        }
        let sha = super::config::sha256_hex(self.file(h, program)?);
        pkgs.iter().find(|pkg| pkg.sha256() == sha).cloned()
    }

    fn target_text(pkg: &PackageSpec) -> (String, Option<Version>) {
        match &pkg.effect {
            PackageEffect::ServicePack { build } => (build.to_string(), Some(*build)),
            PackageEffect::Hotfix { id } | PackageEffect::WindowsUpdate { id, .. } => {
                (id.to_ascii_uppercase(), None)
            }
        }
    }

    /// Starts an installer: records `install-started`, checks what fails at once.
    pub(crate) fn install_begin(&mut self, h: usize, pkg: PackageSpec, _cl: &CmdLine) -> Action {
        let (target, target_build) = Self::target_text(&pkg);
        let node = &self.hosts[h];
        let already = match &pkg.effect {
            PackageEffect::ServicePack { build } => node.build >= *build,
            PackageEffect::Hotfix { id } | PackageEffect::WindowsUpdate { id, .. } => {
                node.hotfixes.contains(&id.to_ascii_uppercase())
            }
        };
        self.record(
            Some(h),
            RecordEvent::InstallStarted {
                package: pkg.path.clone(),
                product: pkg.product,
                target,
                target_build,
                build_before: node.build,
                already_at_target: already,
            },
        );
        // An `.msu` is installed by `wusa.exe`: that is the process a node shows while it runs
        // (and what a resumed controller finds running, rather than starting it again).
        let image = match pkg.effect {
            PackageEffect::WindowsUpdate { .. } => "wusa.exe".to_owned(),
            _ => pkg.image(),
        };
        // G6: another setup, update or xcopy is running.
        let stray = ["setup.exe", "update.exe", "xcopy.exe"]
            .iter()
            .chain(std::iter::once(&image.as_str()))
            .any(|i| node.runs(i));
        if stray {
            return Action::Done(self.install_fail_now(
                h,
                &pkg,
                ALREADY_RUNNING,
                "Another installation is already in progress. Complete that installation before proceeding with this install.\n",
            ));
        }
        // E2-ED and product: the package must fit the installed product, edition, Windows.
        if let Some(product) = pkg.product {
            let Some((runs, edition)) = node.product.zip(node.edition) else {
                let msg = format!(
                    "This package is for {product}; host `{}` runs no Exchange.\n",
                    node.name
                );
                return Action::Done(self.install_fail_now(h, &pkg, NOT_APPLICABLE, &msg));
            };
            if product != runs {
                let msg = format!(
                    "This package is for {product}; host `{}` runs {runs}.\n",
                    node.name
                );
                return Action::Done(self.install_fail_now(h, &pkg, NOT_APPLICABLE, &msg));
            }
            if !pkg.editions.is_empty() && !pkg.editions.contains(&edition) {
                let msg = format!(
                    "This service pack cannot be applied to the {edition} edition of {runs} on host `{}`.\n",
                    node.name
                );
                return Action::Done(self.install_fail_now(h, &pkg, NOT_APPLICABLE, &msg));
            }
            if let PackageEffect::ServicePack { build } = pkg.effect {
                if node.build > build {
                    let msg = format!(
                        "A newer version ({}) is already installed on host `{}`.\n",
                        node.build, node.name
                    );
                    return Action::Done(self.install_fail_now(h, &pkg, NOT_APPLICABLE, &msg));
                }
            }
            // E3-C: on a 2000/2003 cluster node the Cluster service must be stopped first.
            if product != Product::Exchange55 && self.clussvc_running(h) {
                let msg = format!(
                    "Setup cannot continue: the Cluster service is running on host `{}`. Move its groups to another node and stop the Cluster service first.\n",
                    node.name
                );
                return Action::Done(self.install_fail_now(h, &pkg, FAILURE, &msg));
            }
        }
        if !pkg.windows.is_empty() && !pkg.windows.contains(&node.windows) {
            let msg = "This update does not apply to this version of Windows.\n".to_owned();
            return Action::Done(self.install_fail_now(h, &pkg, NOT_APPLICABLE, &msg));
        }
        // G5: a running file-level antivirus holds Exchange's files open (Exchange packages
        // only: the shipped playbooks apply the IIS hotfix before stopping the antivirus).
        let av = self.config.antivirus_service.clone();
        let file_in_use = pkg.product.is_some()
            && node
                .services
                .iter()
                .any(|s| s.name.eq_ignore_ascii_case(&av) && s.running);
        let mut stopped = Vec::new();
        if pkg.product.is_some() {
            for s in self.hosts[h].services.iter_mut() {
                if s.clustered.is_none()
                    && s.running
                    && EXCHANGE_SERVICES
                        .iter()
                        .any(|e| s.name.eq_ignore_ascii_case(e))
                {
                    s.running = false;
                    stopped.push(s.name.clone());
                }
            }
        }
        for name in &stopped {
            self.record(
                Some(h),
                RecordEvent::Service {
                    name: name.clone(),
                    state: "stopped".to_owned(),
                },
            );
        }
        let node = &mut self.hosts[h];
        let pid = node.spawn_process(&image);
        node.installing += 1;
        Action::Install(InstallJob {
            host: h,
            duration_secs: pkg.duration_secs,
            package: pkg,
            pid,
            file_in_use,
            epoch: self.hosts[h].boot_epoch,
            stopped,
        })
    }

    fn install_fail_now(&mut self, h: usize, pkg: &PackageSpec, code: i32, msg: &str) -> Out {
        self.record(
            Some(h),
            RecordEvent::InstallFinished {
                package: pkg.path.clone(),
                exit_code: code,
                version_after: self.hosts[h].build,
            },
        );
        Out::err(code, msg)
    }

    /// Ends the installer's process. False when the host restarted under it (the restart
    /// already ended every process).
    fn install_release(&mut self, job: &InstallJob) -> bool {
        let node = &mut self.hosts[job.host];
        let alive = (node.power == Power::Up || node.power == Power::GoingDown)
            && node.boot_epoch == job.epoch;
        if !alive {
            return false;
        }
        if let Some(p) = node.processes.iter().position(|(pid, _)| *pid == job.pid) {
            node.processes.remove(p);
        }
        node.installing = node.installing.saturating_sub(1);
        let mut restarted = Vec::new();
        for s in node.services.iter_mut() {
            if job.stopped.contains(&s.name) && !s.running {
                s.running = true;
                restarted.push(s.name.clone());
            }
        }
        for name in restarted {
            self.record(
                Some(job.host),
                RecordEvent::Service {
                    name,
                    state: "running".to_owned(),
                },
            );
        }
        true
    }

    /// The installer ends: applies its effect, records `install-finished`. Returns the output
    /// and whether the host restarts (1641).
    pub(crate) fn install_end(&mut self, job: &InstallJob) -> (Out, bool) {
        let h = job.host;
        if !self.install_release(job) {
            // The host went down under the installer: nothing was applied.
            let out = Out::err(FAILURE, "");
            self.record(
                Some(h),
                RecordEvent::InstallFinished {
                    package: job.package.path.clone(),
                    exit_code: out.code,
                    version_after: self.hosts[h].build,
                },
            );
            return (out, false);
        }
        let pkg = &job.package;
        let forced = self.hosts[h].faults.iter().find_map(|f| match f {
            Fault::InstallerFails { exit_code } => Some(*exit_code),
            _ => None,
        });
        let wrong = self.hosts[h].faults.iter().find_map(|f| match f {
            Fault::WrongVersionAfterInstall { build } => Some(*build),
            _ => None,
        });
        let out = if let Some(code) = forced {
            Out::err(code, format!("Setup failed with error {code}.\n"))
        } else if job.file_in_use {
            Out {
                stdout:
                    "FileInUse:: Added to Filelist: C:\\Program Files\\Exchsrvr\\bin\\store.exe\n\
                         Setup could not replace files held open by another program.\n"
                        .to_owned(),
                stderr: String::new(),
                code: FAILURE,
            }
        } else {
            let node = &mut self.hosts[h];
            match &pkg.effect {
                PackageEffect::ServicePack { build } => node.build = wrong.unwrap_or(*build),
                PackageEffect::Hotfix { id } => {
                    node.hotfixes.insert(id.to_ascii_uppercase());
                    if let Some(b) = wrong {
                        node.build = b;
                    }
                }
                PackageEffect::WindowsUpdate { id, ubr } => {
                    node.hotfixes.insert(id.to_ascii_uppercase());
                    node.pending_ubr = *ubr;
                    node.pending_reboot = true;
                }
            }
            if pkg.exit_code == REBOOT_REQUIRED {
                node.pending_reboot = true;
            }
            Out {
                code: pkg.exit_code,
                ..Out::default()
            }
        };
        self.record(
            Some(h),
            RecordEvent::InstallFinished {
                package: pkg.path.clone(),
                exit_code: out.code,
                version_after: self.hosts[h].build,
            },
        );
        let restart = out.code == REBOOT_INITIATED && self.hosts[h].power == Power::Up;
        if restart {
            self.hosts[h].power = Power::GoingDown;
        }
        (out, restart)
    }

    /// The installer was terminated: nothing applied.
    pub(crate) fn install_abort(&mut self, job: &InstallJob, code: i32) {
        self.install_release(job);
        self.record(
            Some(job.host),
            RecordEvent::InstallFinished {
                package: job.package.path.clone(),
                exit_code: code,
                version_after: self.hosts[job.host].build,
            },
        );
    }
}
