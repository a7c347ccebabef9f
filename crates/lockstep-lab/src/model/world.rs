//! [`World`]: the simulated fleet behind the lab's WinRM server.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use lockstep_core::Fleet;
use tokio::sync::{mpsc, oneshot};

use super::cmdline::CmdLine;
use super::config::LabConfig;
use super::fault::Fault;
use super::install::InstallJob;
use super::snapshot::WorldSnapshot;
use super::state::{Out, Power, State};
use super::text;
use crate::backend::{
    Availability, Backend, HostInfo, ProcessEvent, ProcessHandle, ProtocolFaults, WmiObject,
    WqlError,
};
use crate::record::{RecordEvent, Recorder};

/// What a started command does after its first, synchronous part.
pub(crate) enum Action {
    /// Finished: this output and exit code.
    Done(Out),
    /// Finished with this output; the host then restarts (after the shutdown delay).
    Restart(Out),
    /// An installer runs for a while.
    Install(InstallJob),
    /// A command that waits this long in real time (`ping -n N`: the Windows sleep idiom), then
    /// finishes with this output; its end is recorded.
    Wait(Duration, Out),
}

/// The simulated Windows / failover-cluster / Exchange fleet. Shared as an `Arc`; every method
/// takes `&self` and holds the state lock only briefly (never across an await).
pub struct World {
    me: Weak<World>,
    state: Mutex<State>,
    config: LabConfig,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World").finish_non_exhaustive()
    }
}

/// Exit code Windows gives a process ended by ctrl+c (`STATUS_CONTROL_C_EXIT`).
const CTRL_C_EXIT: i32 = 0xC000013A_u32 as i32;

impl World {
    /// Builds the fleet from the inventory; writes the `lab-started` header to `recorder`.
    pub fn new(fleet: &Fleet, config: LabConfig, recorder: Recorder) -> Arc<World> {
        Arc::new_cyclic(|me| World {
            me: me.clone(),
            state: Mutex::new(State::new(fleet, config.clone(), recorder)),
            config,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A simulated duration in real time.
    pub(crate) fn scaled(&self, secs: f64) -> Duration {
        Duration::from_secs_f64((secs * self.config.time_scale).max(0.0))
    }

    /// Injects a fault into `host` (replacing one of the same kind). Unknown hosts are ignored.
    pub fn set_fault(&self, host: &str, fault: Fault) {
        let mut st = self.lock();
        if let Some(h) = st.find(host) {
            st.set_fault(h, fault);
        }
    }

    /// Clears every fault of `host`; a host held down by `reboot-never-returns` then boots.
    pub fn clear_faults(&self, host: &str) {
        let mut st = self.lock();
        if let Some(h) = st.find(host) {
            st.clear_faults(h);
        }
    }

    /// A serialisable view of the whole fleet.
    pub fn snapshot(&self) -> WorldSnapshot {
        WorldSnapshot::of(&self.lock())
    }

    /// The recorder this world writes to.
    pub fn recorder(&self) -> Recorder {
        self.lock().recorder.clone()
    }

    fn spawn_restart(&self, h: usize) {
        let Some(me) = self.me.upgrade() else { return };
        let delay = self.scaled(self.config.shutdown_delay_secs);
        let down_for = self.scaled(self.config.reboot_secs);
        let task = async move {
            tokio::time::sleep(delay).await;
            me.lock().go_down(h);
            tokio::time::sleep(down_for).await;
            me.lock().finish_boot(h);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(task);
            }
            Err(_) => {
                let mut st = self.lock();
                st.go_down(h);
                st.finish_boot(h);
            }
        }
    }

    fn spawn_wait(
        &self,
        host: &str,
        line: &str,
        wait: Duration,
        out: Out,
        tx: Tx,
        term: oneshot::Receiver<()>,
    ) {
        let Some(me) = self.me.upgrade() else { return };
        let h = self.lock().find(host);
        let line = line.to_owned();
        let finish = move |me: &World, code: i32| {
            me.lock().record(
                h,
                RecordEvent::CommandFinished {
                    line,
                    exit_code: code,
                },
            );
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            finish(&me, out.code);
            send(&tx, out);
            return;
        };
        rt.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {
                    finish(&me, out.code);
                    send(&tx, out);
                }
                Ok(()) = term => {
                    finish(&me, CTRL_C_EXIT);
                    let _ = tx.send(ProcessEvent::Exit(CTRL_C_EXIT));
                }
            }
        });
    }

    fn spawn_install(&self, job: InstallJob, tx: Tx, term: oneshot::Receiver<()>) {
        let Some(me) = self.me.upgrade() else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // No runtime (a synchronous caller): the installer finishes at once.
            let (out, restart) = self.lock().install_end(&job);
            send(&tx, out);
            if restart {
                self.spawn_restart(job.host);
            }
            return;
        };
        let run_for = self.scaled(job.duration_secs);
        rt.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(run_for) => {
                    let (out, restart) = me.lock().install_end(&job);
                    send(&tx, out);
                    if restart {
                        me.spawn_restart(job.host);
                    }
                }
                Ok(()) = term => {
                    me.lock().install_abort(&job, CTRL_C_EXIT);
                    let _ = tx.send(ProcessEvent::Exit(CTRL_C_EXIT));
                }
            }
        });
    }
}

type Tx = mpsc::UnboundedSender<ProcessEvent>;

/// The console's text mode: cmd.exe and the tools it runs write through the C runtime, which
/// turns each `\n` into `\r\n` on the way to the pipe (`test_client_execute_cmd.yml`: `echo abc`
/// arrives as `YWJjDQo=`, `abc\r\n`). The model's texts end lines in `\n`; what already ends
/// in `\r\n` (the PowerShell texts) is left as it is.
fn text_mode(text: String) -> String {
    if !text.contains('\n') {
        return text;
    }
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut previous = '\0';
    for c in text.chars() {
        if c == '\n' && previous != '\r' {
            out.push('\r');
        }
        out.push(c);
        previous = c;
    }
    out
}

fn send(tx: &Tx, out: Out) {
    if !out.stdout.is_empty() {
        let _ = tx.send(ProcessEvent::Stdout(text_mode(out.stdout)));
    }
    if !out.stderr.is_empty() {
        let _ = tx.send(ProcessEvent::Stderr(text_mode(out.stderr)));
    }
    let _ = tx.send(ProcessEvent::Exit(out.code));
}

impl Backend for World {
    fn hosts(&self) -> Vec<HostInfo> {
        self.lock()
            .hosts
            .iter()
            .map(|n| HostInfo {
                name: n.name.clone(),
                oem_codepage: n.locale.oem_codepage(),
                locale: n.locale.tag().to_owned(),
            })
            .collect()
    }

    fn availability(&self, host: &str) -> Availability {
        let st = self.lock();
        match st.find(host) {
            Some(h)
                if !matches!(st.hosts[h].power, Power::Down { .. })
                    && !st.has_fault(h, |f| matches!(f, Fault::Refuse)) =>
            {
                Availability::Up
            }
            _ => Availability::Down,
        }
    }

    fn protocol_faults(&self, host: &str) -> ProtocolFaults {
        let st = self.lock();
        let mut pf = ProtocolFaults::default();
        if let Some(h) = st.find(host) {
            for f in &st.hosts[h].faults {
                match f {
                    Fault::Http500 => pf.http_500 = true,
                    Fault::Slow { ms } => pf.delay = Some(Duration::from_millis(*ms)),
                    Fault::DropMidReceive => pf.drop_mid_receive = true,
                    _ => {}
                }
            }
        }
        pf
    }

    fn protocol_fault_used(&self, host: &str) {
        let mut st = self.lock();
        if let Some(h) = st.find(host) {
            let before = st.hosts[h].faults.len();
            st.hosts[h]
                .faults
                .retain(|f| !matches!(f, Fault::DropMidReceive));
            if st.hosts[h].faults.len() != before {
                st.record(
                    Some(h),
                    RecordEvent::Fault {
                        action: "used".to_owned(),
                        fault: Some(Fault::DropMidReceive),
                    },
                );
            }
        }
    }

    fn boot_epoch(&self, host: &str) -> u64 {
        let st = self.lock();
        st.find(host).map(|h| st.hosts[h].boot_epoch).unwrap_or(0)
    }

    fn start_in_session(&self, host: &str, command_line: &str, delegable: bool) -> ProcessHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stdin_tx, _stdin_rx) = mpsc::unbounded_channel();
        let (term_tx, term_rx) = oneshot::channel();
        let action = {
            let mut st = self.lock();
            match st.find(host) {
                Some(h) => st.dispatch_in(h, command_line, delegable),
                None => Action::Done(Out::err(
                    1,
                    format!("The network path was not found: host `{host}` is not in the lab.\n"),
                )),
            }
        };
        match action {
            Action::Done(out) => send(&tx, out),
            Action::Restart(out) => {
                let h = self.lock().find(host);
                send(&tx, out);
                if let Some(h) = h {
                    self.spawn_restart(h);
                }
            }
            Action::Install(job) => self.spawn_install(job, tx, term_rx),
            Action::Wait(d, out) => self.spawn_wait(host, command_line, d, out, tx, term_rx),
        }
        ProcessHandle {
            events: rx,
            stdin: stdin_tx,
            terminate: Some(term_tx),
        }
    }

    fn wql(&self, host: &str, namespace: &str, query: &str) -> Result<Vec<WmiObject>, WqlError> {
        let st = self.lock();
        let h = st
            .find(host)
            .filter(|&h| !matches!(st.hosts[h].power, Power::Down { .. }))
            .ok_or_else(|| WqlError::NamespaceUnavailable(namespace.to_owned()))?;
        st.wql(h, namespace, query)
    }
}

impl State {
    /// The first, synchronous part of every command, for a process of a session that holds
    /// delegable credentials or not (the double hop).
    pub(crate) fn dispatch_in(&mut self, h: usize, line: &str, delegable: bool) -> Action {
        self.delegable = delegable;
        self.record(
            Some(h),
            RecordEvent::Command {
                line: line.to_owned(),
            },
        );
        if matches!(self.hosts[h].power, Power::Down { .. }) {
            return Action::Done(Out::err(1, "The device is not ready.\n"));
        }
        self.run_line(h, line)
    }

    pub(crate) fn run_line(&mut self, h: usize, line: &str) -> Action {
        if line.len() > 8191 {
            return Action::Done(Out::err(1, "The command line is too long.\n"));
        }
        if line.trim_start().starts_with('>') {
            return self.cmd_redirect(h, line);
        }
        let cl = CmdLine::parse(line);
        if cl.words.is_empty() {
            return Action::Done(Out::ok(""));
        }
        // The double hop: a program on a share cannot even be opened.
        if self.unc_refused(cl.program()) {
            return Action::Done(super::files::access_denied());
        }
        if let Some(pkg) = self.package_for(h, cl.program()) {
            return self.install_begin(h, pkg, &cl);
        }
        let args = cl.args();
        let out = match cl.command().as_str() {
            "cmd"
                if args.first().is_some_and(|a| {
                    a.eq_ignore_ascii_case("/c") || a.eq_ignore_ascii_case("/k")
                }) =>
            {
                let rest = cl.rest.trim_start();
                let rest = rest.get(2..).unwrap_or("").trim_start();
                return self.run_line(h, rest);
            }
            "cluster" if self.hosts[h].windows.has_cluster_exe() => self.cmd_cluster(h, args),
            "powershell" => return self.cmd_powershell(h, &cl),
            "wusa" => return self.cmd_wusa(h, &cl),
            "net" => self.cmd_net(h, args),
            "sc" => self.cmd_sc(h, args),
            "reg" => self.cmd_reg(h, args),
            "tasklist" => self.cmd_tasklist(h, args),
            "wlbs" | "nlb" if self.hosts[h].pool.is_some() => self.cmd_wlbs(h, args),
            "shutdown" => return self.cmd_shutdown(h, args),
            "ping" => return self.cmd_ping(args),
            "hostname" => Out::ok(format!("{}\n", self.hosts[h].name)),
            "ver" => Out::ok(self.ver(h)),
            "chcp" => Out::ok(format!(
                "{}\n",
                text::fill(
                    text::text(self.hosts[h].locale).chcp,
                    &args
                        .first()
                        .cloned()
                        .unwrap_or_else(|| self.hosts[h].locale.oem_codepage().to_string()),
                    ""
                )
            )),
            "echo" => Out::ok(format!("{}\n", cl.rest)),
            "rem" => Out::ok(""),
            "exit" => {
                let code = args
                    .iter()
                    .find(|a| !a.eq_ignore_ascii_case("/b"))
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(0);
                Out {
                    code,
                    ..Out::default()
                }
            }
            "labctl" => self.cmd_labctl(h, args),
            "for" => self.cmd_for(h, &cl),
            "mkdir" | "md" => self.cmd_mkdir(h, args),
            "certutil" => self.cmd_certutil(h, args),
            "cscript" => self.cmd_cscript(h, args),
            "type" => self.cmd_type(h, args),
            "move" => self.cmd_move_file(h, args),
            "del" | "erase" => self.cmd_del(h, args),
            "copy" => self.cmd_copy(h, args),
            _ => self.not_recognized(h, line),
        };
        Action::Done(out)
    }

    /// cmd's own error for an unknown program.
    pub(crate) fn not_recognized(&self, h: usize, line: &str) -> Out {
        let line = line.trim_start();
        let first = if let Some(rest) = line.strip_prefix('"') {
            match rest.find('"') {
                Some(end) => &line[..end + 2],
                None => line,
            }
        } else {
            line.split_whitespace().next().unwrap_or("")
        };
        Out::err(
            1,
            text::fill(text::text(self.hosts[h].locale).not_recognized, first, ""),
        )
    }

    fn ver(&self, h: usize) -> String {
        use lockstep_core::WindowsRelease::*;
        let b = self.hosts[h].os_build;
        match self.hosts[h].windows {
            Nt4 => "\nWindows NT Version 4.0  \n".to_owned(),
            Windows2000 => "\nMicrosoft Windows 2000 [Version 5.00.2195]\n".to_owned(),
            Windows2003 | Windows2003R2 | Windows2008 | Windows2008R2 | Windows2012
            | Windows2012R2 => format!(
                "\nMicrosoft Windows [Version {}.{}.{}]\n",
                b.major, b.minor, b.build
            ),
            // From Windows 10 on, `ver` shows the update build revision too.
            _ => format!(
                "\nMicrosoft Windows [Version {}.{}.{}.{}]\n",
                b.major, b.minor, b.build, b.revision
            ),
        }
    }

    pub(crate) fn set_fault(&mut self, h: usize, fault: Fault) {
        self.hosts[h].faults.retain(|f| !f.same_kind(&fault));
        self.hosts[h].faults.push(fault.clone());
        self.record(
            Some(h),
            RecordEvent::Fault {
                action: "set".to_owned(),
                fault: Some(fault),
            },
        );
    }

    pub(crate) fn clear_faults(&mut self, h: usize) {
        self.hosts[h].faults.clear();
        self.record(
            Some(h),
            RecordEvent::Fault {
                action: "cleared".to_owned(),
                fault: None,
            },
        );
        if self.hosts[h].power == (Power::Down { stuck: true }) {
            self.finish_boot(h);
        }
    }
}
