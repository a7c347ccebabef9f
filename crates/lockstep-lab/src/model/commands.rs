//! The console commands other than cluster.exe and installers: `net`, `sc`, `reg`, `tasklist`,
//! `wlbs`, `shutdown` and the lab's own `labctl`.

use super::cmdline::switch;
use super::fault::Fault;
use super::state::{Out, Power, State};
use super::text::{fill, text};
use super::world::Action;
use crate::record::RecordEvent;

pub(crate) const SYSTEM_PROCESSES: &[(u32, &str)] = &[
    (0, "System Idle Process"),
    (4, "System"),
    (312, "smss.exe"),
    (360, "csrss.exe"),
    (384, "winlogon.exe"),
    (432, "services.exe"),
    (444, "lsass.exe"),
    (620, "svchost.exe"),
    (704, "svchost.exe"),
    (1520, "explorer.exe"),
];

impl State {
    fn net_help(&self, h: usize, code: u32) -> String {
        fill(text(self.hosts[h].locale).more_help, &code.to_string(), "")
    }

    /// `net start|stop ["NAME"]`.
    pub(crate) fn cmd_net(&mut self, h: usize, args: &[String]) -> Out {
        let t = text(self.hosts[h].locale);
        let verb = args
            .first()
            .map(|a| a.to_ascii_lowercase())
            .unwrap_or_default();
        let Some(name) = args.get(1) else {
            if verb == "start" {
                let mut out = String::from("These Windows services are started:\n\n");
                for s in &self.hosts[h].services {
                    if self.service_running(h, s) {
                        out.push_str(&format!("   {}\n", s.display));
                    }
                }
                out.push_str("\nThe command completed successfully.\n\n");
                return Out::ok(out);
            }
            return Out::err(
                1,
                "The syntax of this command is:\n\nNET [ START | STOP ] service\n",
            );
        };
        if verb != "start" && verb != "stop" {
            return Out::err(
                1,
                "The syntax of this command is:\n\nNET [ START | STOP ] service\n",
            );
        }
        let Some(si) = self.hosts[h].services.iter().position(|s| {
            s.name.eq_ignore_ascii_case(name) || s.display.eq_ignore_ascii_case(name)
        }) else {
            return Out::err(
                2,
                format!("{}\n\n{}\n\n", t.invalid_service, self.net_help(h, 2185)),
            );
        };
        let s = self.hosts[h].services[si].clone();
        let running = self.service_running(h, &s);
        let d = s.display.as_str();
        if verb == "start" {
            if running {
                return Out::err(
                    2,
                    format!("{}\n\n{}\n\n", t.already_started, self.net_help(h, 2182)),
                );
            }
            if s.start == super::config::StartType::Disabled {
                return Out::err(2, "System error 1058 has occurred.\n\nThe service cannot be started, either because it is disabled or because it has no enabled devices associated with it.\n\n");
            }
            if s.clustered.is_some() {
                return Out::err(2, format!(
                    "{}\n\nThe service `{}` is a cluster resource on this node: bring its resource online with cluster.exe.\n\n",
                    fill(t.svc_could_not_start, d, ""), s.name
                ));
            }
            if s.name.eq_ignore_ascii_case("ClusSvc") {
                if self.start_clussvc(h).is_err() {
                    return Out::err(
                        2,
                        format!(
                            "{}\n{}\n\nA service specific error occurred: 5086.\n\n{}\n\n",
                            fill(t.svc_starting, d, ""),
                            fill(t.svc_could_not_start, d, ""),
                            self.net_help(h, 3547)
                        ),
                    );
                }
            } else {
                self.hosts[h].services[si].running = true;
                self.record(
                    Some(h),
                    RecordEvent::Service {
                        name: s.name.clone(),
                        state: "running".to_owned(),
                    },
                );
            }
            Out::ok(format!(
                "{}\n{}\n\n",
                fill(t.svc_starting, d, ""),
                fill(t.svc_started, d, "")
            ))
        } else {
            if !running {
                return Out::err(
                    2,
                    format!(
                        "{}\n\n{}\n\n",
                        fill(t.not_started, d, ""),
                        self.net_help(h, 3521)
                    ),
                );
            }
            if s.clustered.is_some() {
                return Out::err(2, format!(
                    "The service `{}` is a cluster resource on this node: take its resource offline with cluster.exe.\n\n",
                    s.name
                ));
            }
            if s.name.eq_ignore_ascii_case("ClusSvc") {
                self.stop_clussvc(h);
            } else {
                self.hosts[h].services[si].running = false;
                self.record(
                    Some(h),
                    RecordEvent::Service {
                        name: s.name.clone(),
                        state: "stopped".to_owned(),
                    },
                );
            }
            Out::ok(format!(
                "{}\n{}\n\n",
                fill(t.svc_stopping, d, ""),
                fill(t.svc_stopped, d, "")
            ))
        }
    }

    /// `sc query ["NAME"]`.
    pub(crate) fn cmd_sc(&mut self, h: usize, args: &[String]) -> Out {
        let verb = args
            .first()
            .map(|a| a.to_ascii_lowercase())
            .unwrap_or_default();
        if verb != "query" && verb != "queryex" {
            return Out::err(1, "DESCRIPTION:\n        SC is a command line program used for communicating with the\n        Service Control Manager and services.\n");
        }
        let render = |name: &str, running: bool| {
            let (n, word, flags) = if running {
                (
                    4,
                    "RUNNING",
                    "\n                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)",
                )
            } else {
                (1, "STOPPED", "")
            };
            format!(
                "\nSERVICE_NAME: {name}\n        TYPE               : 10  WIN32_OWN_PROCESS  \n        STATE              : {n}  {word} {flags}\n        WIN32_EXIT_CODE    : 0  (0x0)\n        SERVICE_EXIT_CODE  : 0  (0x0)\n        CHECKPOINT         : 0x0\n        WAIT_HINT          : 0x0\n"
            )
        };
        match args.get(1) {
            Some(name) => {
                match self.hosts[h].services.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
                    Some(s) => Out::ok(render(&s.name, self.service_running(h, s))),
                    None => Out {
                        stdout: "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\n\nThe specified service does not exist as an installed service.\n\n".to_owned(),
                        stderr: String::new(),
                        code: 1060,
                    },
                }
            }
            None => {
                let mut out = String::new();
                for s in &self.hosts[h].services {
                    if self.service_running(h, s) {
                        out.push_str(&render(&s.name, true));
                    }
                }
                Out::ok(out)
            }
        }
    }

    /// `reg query KEY [/v NAME]`.
    pub(crate) fn cmd_reg(&mut self, h: usize, args: &[String]) -> Out {
        let not_found = || {
            Out::err(
                1,
                "\nERROR: The system was unable to find the specified registry key or value.\n",
            )
        };
        if !args
            .first()
            .is_some_and(|a| a.eq_ignore_ascii_case("query"))
        {
            return Out::err(1, "ERROR: Invalid syntax.\nType \"REG /?\" for usage.\n");
        }
        let Some(key) = args.get(1) else {
            return not_found();
        };
        let mut want = None;
        let mut i = 2;
        while i < args.len() {
            if switch(&args[i], "v").is_some() {
                want = args.get(i + 1).cloned();
                i += 1;
            }
            i += 1;
        }
        let Some((full, values)) = self.reg_key(h, key) else {
            return not_found();
        };
        let shown: Vec<_> = match &want {
            Some(w) => values
                .into_iter()
                .filter(|(n, _, _)| n.eq_ignore_ascii_case(w))
                .collect(),
            None => values,
        };
        if want.is_some() && shown.is_empty() {
            return not_found();
        }
        let mut out = format!("\n! REG.EXE VERSION 3.0\n\n{full}\n");
        for (n, ty, data) in shown {
            out.push_str(&format!("    {n}    {ty}    {data}\n"));
        }
        out.push('\n');
        Out::ok(out)
    }

    /// The values of registry key `key` (`HKLM\...` or `HKEY_LOCAL_MACHINE\...`) on host `h`, with
    /// the key's full name; `None` when the lab does not model it.
    pub(crate) fn reg_key(&self, h: usize, key: &str) -> Option<(&'static str, Vec<RegValue>)> {
        let norm = key.trim_end_matches('\\').to_ascii_lowercase();
        let norm = norm
            .strip_prefix("hkey_local_machine")
            .map(|r| format!("hklm{r}"))
            .unwrap_or(norm);
        let node = &self.hosts[h];
        let dword = |n: &str, v: u32| (n.to_owned(), "REG_DWORD", format!("0x{v:x}"));
        let sz = |n: &str, v: &str| (n.to_owned(), "REG_SZ", v.to_owned());
        let (full, values): (&'static str, Vec<RegValue>) = match norm.as_str() {
            r"hklm\software\microsoft\exchange\setup" => {
                let b = node.build;
                let edition = match node.edition {
                    Some(lockstep_core::Edition::Standard) => "Standard",
                    Some(lockstep_core::Edition::Enterprise) => "Enterprise",
                    Some(lockstep_core::Edition::Conferencing) => "Conferencing",
                    Some(lockstep_core::Edition::SmallBusiness) => "SmallBusiness",
                    // No Exchange: no Setup key.
                    None => return None,
                };
                (
                    r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Exchange\Setup",
                    vec![
                        sz("Services", r"C:\Program Files\Exchsrvr"),
                        dword("MsiProductMajor", b.major),
                        dword("MsiProductMinor", b.minor),
                        dword("MsiBuildMajor", b.build),
                        dword("MsiBuildMinor", b.revision),
                        dword("ServicePackBuild", b.build),
                        sz("Edition", edition),
                    ],
                )
            }
            r"hklm\system\currentcontrolset\control\nls\codepage" => {
                let acp = node.locale.ansi_codepage();
                (
                    r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\Nls\CodePage",
                    vec![
                        sz("ACP", &acp.to_string()),
                        sz("OEMCP", &node.locale.oem_codepage().to_string()),
                        sz("MACCP", "10000"),
                    ],
                )
            }
            r"hklm\system\currentcontrolset\control\session manager" => {
                let mut v = vec![
                    (
                        "BootExecute".to_owned(),
                        "REG_MULTI_SZ",
                        r"autocheck autochk *".to_owned(),
                    ),
                    dword("CriticalSectionTimeout", 2_592_000),
                ];
                if node.pending_reboot || node.installing > 0 {
                    v.push((
                        "PendingFileRenameOperations".to_owned(),
                        "REG_MULTI_SZ",
                        r"\??\C:\WINDOWS\system32\inetsrv\w3core.dll.new\0!\??\C:\WINDOWS\system32\inetsrv\w3core.dll".to_owned(),
                    ));
                }
                (
                    r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\Session Manager",
                    v,
                )
            }
            r"hklm\software\microsoft\windows nt\currentversion" => (
                r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion",
                current_version(node.windows, node.os_build),
            ),
            _ => return None,
        };
        Some((full, values))
    }

    /// `tasklist [/fi "IMAGENAME eq X"] [/fo csv|table] [/nh]`.
    pub(crate) fn cmd_tasklist(&mut self, h: usize, args: &[String]) -> Out {
        let mut filter: Option<String> = None;
        let mut csv = false;
        let mut header = true;
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if switch(a, "fi").is_some() {
                let f = args.get(i + 1).cloned().unwrap_or_default();
                let parts: Vec<&str> = f.split_whitespace().collect();
                if parts.len() >= 3
                    && parts[0].eq_ignore_ascii_case("imagename")
                    && parts[1].eq_ignore_ascii_case("eq")
                {
                    filter = Some(parts[2..].join(" ").to_ascii_lowercase());
                } else {
                    return Out::err(1, "ERROR: The search filter cannot be recognized.\n");
                }
                i += 1;
            } else if switch(a, "fo").is_some() {
                csv = args
                    .get(i + 1)
                    .is_some_and(|f| f.eq_ignore_ascii_case("csv"));
                i += 1;
            } else if switch(a, "nh").is_some() {
                header = false;
            }
            i += 1;
        }
        let node = &self.hosts[h];
        let procs: Vec<(u32, String)> = SYSTEM_PROCESSES
            .iter()
            .map(|(p, n)| (*p, n.to_string()))
            .chain(node.processes.iter().cloned())
            .filter(|(_, n)| match &filter {
                Some(f) => match f.strip_suffix('*') {
                    Some(prefix) => n.to_ascii_lowercase().starts_with(prefix),
                    None => n.eq_ignore_ascii_case(f),
                },
                None => true,
            })
            .collect();
        if procs.is_empty() {
            return Out::ok(format!("{}\n", text(node.locale).no_tasks));
        }
        let mut out = String::new();
        if csv {
            if header {
                out.push_str(
                    "\"Image Name\",\"PID\",\"Session Name\",\"Session#\",\"Mem Usage\"\n",
                );
            }
            for (pid, n) in procs {
                out.push_str(&format!(
                    "\"{n}\",\"{pid}\",\"Console\",\"0\",\"4,512 K\"\n"
                ));
            }
        } else {
            if header {
                out.push_str("\nImage Name                     PID Session Name     Session#    Mem Usage\n========================= ====== ================ ======== ============\n");
            }
            for (pid, n) in procs {
                out.push_str(&format!(
                    "{n:<25} {pid:>6} {:<16} {:>8} {:>12}\n",
                    "Console", 0, "4,512 K"
                ));
            }
        }
        Out::ok(out)
    }

    /// `wlbs query|start|stop|drainstop` on a pool member.
    pub(crate) fn cmd_wlbs(&mut self, h: usize, args: &[String]) -> Out {
        let verb = args
            .first()
            .map(|a| a.to_ascii_lowercase())
            .unwrap_or_default();
        let converged = self.hosts[h].nlb.unwrap_or(false);
        let set = |st: &mut State, on: bool| {
            if st.hosts[h].nlb != Some(on) {
                st.hosts[h].nlb = Some(on);
                st.record(
                    Some(h),
                    RecordEvent::Nlb {
                        state: if on { "converged" } else { "stopped" }.to_owned(),
                    },
                );
            }
        };
        let banner = "WLBS Cluster Control Utility V2.4 (c) 1997-2003 Microsoft Corporation.\n";
        match verb.as_str() {
            "query" => {
                if converged {
                    Out { stdout: format!("{banner}Host 1 has entered a converging state 1 time(s) since joining the cluster\n  and the last convergence completed at approximately: {}\nHost 1 converged with the following host(s) as part of the cluster:\n1\n", self.hosts[h].name), stderr: String::new(), code: 1005 }
                } else {
                    Out { stdout: format!("{banner}Host 1 is stopped and does not know convergence state of the cluster.\n"), stderr: String::new(), code: 1007 }
                }
            }
            "start" => {
                set(self, true);
                Out::ok(format!("{banner}Cluster operations started.\n"))
            }
            "stop" | "drainstop" => {
                set(self, false);
                Out::ok(format!("{banner}Cluster operations stopped.\n"))
            }
            _ => Out::err(1, format!("{banner}Usage: WLBS <command> [<cluster>[:<host>] [/PASSW [<password>]] [/local] [/COMMIT]]\n")),
        }
    }

    /// `ping [-n N] TARGET`: the Windows sleep idiom (`ping -n 6 127.0.0.1` waits about five
    /// seconds): N echoes one second apart, every one answered, exit 0. Real time, not scaled.
    pub(crate) fn cmd_ping(&self, args: &[String]) -> Action {
        let mut count: u32 = 4;
        let mut target = None;
        let mut i = 0;
        while i < args.len() {
            if switch(&args[i], "n").is_some() {
                match args.get(i + 1).and_then(|n| n.parse().ok()) {
                    Some(n) if (1..=3600).contains(&n) => count = n,
                    _ => {
                        return Action::Done(Out::err(
                            1,
                            "Bad value for option -n, valid range is from 1 to 4294967295.\n",
                        ))
                    }
                }
                i += 1;
            } else {
                target = Some(args[i].clone());
            }
            i += 1;
        }
        let Some(target) = target else {
            return Action::Done(Out::err(
                1,
                "\nUsage: ping [-t] [-a] [-n count] [-l size] target_name\n",
            ));
        };
        let mut out = format!("\nPinging {target} with 32 bytes of data:\n\n");
        for _ in 0..count {
            out.push_str(&format!("Reply from {target}: bytes=32 time<1ms TTL=128\n"));
        }
        out.push_str(&format!(
            "\nPing statistics for {target}:\n    Packets: Sent = {count}, Received = {count}, Lost = 0 (0% loss),\n"
        ));
        Action::Wait(
            std::time::Duration::from_secs(u64::from(count - 1)),
            Out::ok(out),
        )
    }

    /// `shutdown /r [/t N] [/f]`.
    pub(crate) fn cmd_shutdown(&mut self, h: usize, args: &[String]) -> Action {
        if !args.iter().any(|a| switch(a, "r").is_some()) {
            return Action::Done(Out::err(1, "Usage: shutdown [-i | -l | -s | -r | -a] [-f] [-m \\\\computername] [-t xx]\n(the lab supports /r only)\n"));
        }
        if self.hosts[h].power != Power::Up {
            return Action::Done(Out::err(
                1115,
                format!(
                    "{}: {}\n",
                    self.hosts[h].name,
                    super::text::win32_message(1115)
                ),
            ));
        }
        self.hosts[h].power = Power::GoingDown;
        Action::Restart(Out::ok(""))
    }

    /// `labctl evs upgrade "G"`, `labctl fault set HOST KIND [ARG]`, `labctl fault clear HOST`,
    /// `labctl process start|kill IMAGE`.
    pub(crate) fn cmd_labctl(&mut self, h: usize, args: &[String]) -> Out {
        let lower: Vec<String> = args.iter().map(|a| a.to_ascii_lowercase()).collect();
        let words: Vec<&str> = lower.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["evs", "upgrade", _] => self.evs_upgrade(h, &args[2]),
            ["fault", "set", _, _, ..] => {
                let Some(target) = self.find(&args[2]) else {
                    return Out::err(1, format!("labctl: host `{}` is not in the lab\n", args[2]));
                };
                match Fault::parse(&args[3], args.get(4).map(String::as_str)) {
                    Ok(f) => {
                        self.set_fault(target, f);
                        Out::ok("")
                    }
                    Err(e) => Out::err(1, format!("labctl: {e}\n")),
                }
            }
            ["fault", "clear", _] => match self.find(&args[2]) {
                Some(target) => {
                    self.clear_faults(target);
                    Out::ok("")
                }
                None => Out::err(1, format!("labctl: host `{}` is not in the lab\n", args[2])),
            },
            ["res", "force", _, state @ ("online" | "offline" | "failed")] => {
                // A lab back door: sets a resource's state without the cluster's checks, to
                // craft situations Cluster Administrator could leave behind (a stuck resource).
                let Some(c) = self.hosts[h].cluster else {
                    return Out::err(1, "labctl: this host is not a cluster node\n");
                };
                let Some((g, r)) = self.find_resource(c, &args[2]) else {
                    return Out::err(1, format!("labctl: resource `{}` is not in the cluster\n", args[2]));
                };
                let st = match *state {
                    "online" => super::state::ResState::Online,
                    "offline" => super::state::ResState::Offline,
                    _ => super::state::ResState::Failed,
                };
                self.force_res(c, g, r, st);
                Out::ok("")
            }
            ["process", "start", _] => {
                let pid = self.hosts[h].spawn_process(&args[2]);
                Out::ok(format!("{pid}\n"))
            }
            ["process", "kill", _] => {
                if self.hosts[h].kill_process(&args[2]) {
                    Out::ok("")
                } else {
                    Out::err(128, format!("labctl: no process `{}` runs\n", args[2]))
                }
            }
            _ => Out::err(
                1,
                "usage: labctl evs upgrade \"GROUP\" | labctl fault set HOST KIND [ARG] | labctl fault clear HOST | labctl process start|kill IMAGE | labctl res force \"RES\" online|offline|failed\n",
            ),
        }
    }
}

/// `Win32_OperatingSystem.Caption` of a release, as the lab's servers (Enterprise up to 2008 R2,
/// Datacenter after) report it.
pub(crate) fn os_caption(w: lockstep_core::WindowsRelease) -> String {
    use lockstep_core::WindowsRelease::*;
    match w {
        Nt4 => "Microsoft Windows NT Server".to_owned(),
        Windows2000 => "Microsoft Windows 2000 Advanced Server".to_owned(),
        Windows2003 => "Microsoft(R) Windows(R) Server 2003, Enterprise Edition".to_owned(),
        Windows2003R2 => "Microsoft(R) Windows(R) Server 2003 R2, Enterprise Edition".to_owned(),
        Windows2008 => "Microsoft® Windows Server® 2008 Enterprise".to_owned(),
        Windows2008R2 => "Microsoft Windows Server 2008 R2 Enterprise".to_owned(),
        _ => format!("Microsoft {} Datacenter", w.product_name()),
    }
}

/// A registry value: name, type (`REG_SZ`, `REG_DWORD`, ...) and data as `reg query` shows it.
pub(crate) type RegValue = (String, &'static str, String);

/// The values of `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion` for a release at OS build
/// `b`: from Windows 10 / Server 2016 on, `CurrentVersion` stays `6.3` for old programs and the
/// real version is in `CurrentMajorVersionNumber`/`CurrentMinorVersionNumber`, with the update
/// build revision in `UBR`.
fn current_version(w: lockstep_core::WindowsRelease, b: lockstep_core::Version) -> Vec<RegValue> {
    use lockstep_core::WindowsRelease::*;
    let sz = |n: &str, v: &str| (n.to_owned(), "REG_SZ", v.to_owned());
    let dword = |n: &str, v: u32| (n.to_owned(), "REG_DWORD", format!("0x{v:x}"));
    match w {
        Nt4 => vec![
            sz("ProductName", "Microsoft Windows NT"),
            sz("CurrentVersion", "4.0"),
            sz("CurrentBuildNumber", "1381"),
        ],
        Windows2000 => vec![
            sz("ProductName", "Microsoft Windows 2000"),
            sz("CurrentVersion", "5.0"),
            sz("CurrentBuildNumber", "2195"),
        ],
        Windows2003 => vec![
            sz("ProductName", "Microsoft Windows Server 2003"),
            sz("CurrentVersion", "5.2"),
            sz("CurrentBuildNumber", "3790"),
        ],
        Windows2003R2 | Windows2008 | Windows2008R2 | Windows2012 | Windows2012R2 => vec![
            sz("ProductName", &os_caption(w).replace("Microsoft ", "")),
            sz("CurrentVersion", &format!("{}.{}", b.major, b.minor)),
            sz("CurrentBuildNumber", &b.build.to_string()),
            sz("CurrentBuild", &b.build.to_string()),
        ],
        _ => {
            let release = match w {
                Windows2016 => ("ReleaseId", "1607"),
                Windows2019 => ("ReleaseId", "1809"),
                Windows2022 => ("DisplayVersion", "21H2"),
                _ => ("DisplayVersion", "24H2"),
            };
            vec![
                sz("ProductName", &format!("{} Datacenter", w.product_name())),
                sz("CurrentVersion", "6.3"),
                dword("CurrentMajorVersionNumber", b.major),
                dword("CurrentMinorVersionNumber", b.minor),
                sz("CurrentBuildNumber", &b.build.to_string()),
                sz("CurrentBuild", &b.build.to_string()),
                dword("UBR", b.revision),
                sz(release.0, release.1),
                sz("InstallationType", "Server"),
            ]
        }
    }
}
