//! The shipped e3-cluster playbook on a two-node cluster, action after action, against a small
//! stateful fake of the cluster (not the lab: just enough state for the actions to compose).
//! Checks that the actions leave the state each next step needs, that only one node is ever out
//! of service (E3-C1), that the installer runs once per node, and that every change step's
//! probe then answers Done (resume would skip them).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use lockstep_actions::render::{self as r, NS_CLUSTER};
use lockstep_actions::{execute, probe, Ctx, Outcome, Probe};
use lockstep_core::*;

use crate::scripted::{fleet, step, CLUSTER_GROUP, EVS_GROUP, N1, N2, SP1, SP2};

// Where the shipped playbook installs from: the node's copy its `stage` steps made.
const SP_PKG: &str = r"C:\Lockstep\packages\E2K3SP2\update.exe";
const HF_PKG: &str = r"C:\Lockstep\packages\KB831464\WindowsServer2003-KB831464-x86-ENU.exe";
const LABCTL: &str = "labctl evs upgrade \"EVS1 Group\"";

struct NodeState {
    clussvc: bool,
    build: Version,
    boot: u32,
    down_polls: u32,
    hotfixes: Vec<String>,
    services: BTreeMap<String, u32>,
}

struct Res {
    name: &'static str,
    group: &'static str,
    kind: &'static str,
    state: u32,
}

struct State {
    nodes: BTreeMap<String, NodeState>,
    owners: BTreeMap<&'static str, String>,
    resources: Vec<Res>,
    evs_version: Version,
    installs: BTreeMap<String, u32>,
    max_out_of_service: usize,
}

struct Fake(Mutex<State>);

fn o(code: i32, stdout: impl Into<String>) -> CommandOutput {
    CommandOutput {
        stdout: stdout.into(),
        stderr: String::new(),
        exit_code: code,
    }
}

fn quoted(cmd: &str) -> Option<&str> {
    let start = cmd.find('"')? + 1;
    let end = start + cmd[start..].find('"')?;
    Some(&cmd[start..end])
}

fn sc_text(state: u32) -> String {
    format!("SERVICE_NAME: x\r\n        TYPE               : 10  WIN32_OWN_PROCESS\r\n        STATE              : {state}  ?\r\n")
}

impl State {
    fn node(&mut self, host: &str) -> &mut NodeState {
        self.nodes.get_mut(&host.to_ascii_uppercase()).unwrap()
    }

    fn group_state(&self, group: &str) -> u32 {
        let states: Vec<u32> = self
            .resources
            .iter()
            .filter(|r| r.group == group)
            .map(|r| r.state)
            .collect();
        if states.iter().all(|s| *s == 2) {
            0
        } else if states.iter().all(|s| *s == 3) {
            1
        } else {
            3
        }
    }

    fn fail_over_from(&mut self, host: &str) {
        let other = self
            .nodes
            .iter()
            .find(|(n, s)| !n.eq_ignore_ascii_case(host) && s.clussvc && s.down_polls == 0)
            .map(|(n, _)| n.clone());
        if let Some(other) = other {
            for owner in self.owners.values_mut() {
                if owner.eq_ignore_ascii_case(host) {
                    *owner = other.clone();
                }
            }
        }
    }

    fn track(&mut self) {
        let out = self
            .nodes
            .values()
            .filter(|s| !s.clussvc || s.down_polls > 0)
            .count();
        self.max_out_of_service = self.max_out_of_service.max(out);
    }

    fn t2_holds(&self, host: &str) -> bool {
        let sp2: Version = SP2.parse().unwrap();
        let owner = &self.owners[EVS_GROUP];
        self.nodes[&owner.to_ascii_uppercase()].build == sp2
            && self.nodes[&host.to_ascii_uppercase()].build == sp2
            && self
                .resources
                .iter()
                .filter(|r| r.group == EVS_GROUP && r.kind.contains("System Attendant"))
                .all(|r| r.state == 3)
            && self
                .resources
                .iter()
                .filter(|r| r.group == EVS_GROUP)
                .filter(|r| !["IP Address", "Network Name", "Physical Disk"].contains(&r.kind))
                .all(|r| r.state != 2)
            && self
                .resources
                .iter()
                .any(|r| r.kind == "Distributed Transaction Coordinator" && r.state == 2)
    }

    fn run(&mut self, host: &str, cmd: &str) -> Result<CommandOutput, TransportError> {
        let h = Name::host(host).unwrap();
        if self.node(host).down_polls > 0 {
            self.node(host).down_polls -= 1;
            return Err(TransportError::Unreachable {
                host: h,
                detail: "rebooting".into(),
            });
        }
        let local_up = self.node(host).clussvc;
        let result = if cmd.starts_with("cluster ") {
            if !local_up {
                return Ok(o(1722, ""));
            }
            let name = quoted(cmd).unwrap();
            if cmd.starts_with("cluster group") && cmd.contains("/moveto:") {
                let to = cmd
                    .split("/moveto:")
                    .nth(1)
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap();
                if !self.node(to).clussvc {
                    return Ok(o(5050, ""));
                }
                let key = *self.owners.keys().find(|g| **g == name).unwrap();
                self.owners.insert(key, to.to_owned());
                o(0, "")
            } else if cmd.starts_with("cluster group") && cmd.contains("/online") {
                let owner = self.owners[name].clone();
                let has_exchange = self
                    .resources
                    .iter()
                    .any(|r| r.group == name && r.kind.contains("Exchange"));
                let owner_build = self.node(&owner).build;
                if has_exchange && self.evs_version != owner_build {
                    return Ok(o(5038, ""));
                }
                self.resources
                    .iter_mut()
                    .filter(|r| r.group == name)
                    .for_each(|r| r.state = 2);
                o(0, "")
            } else if cmd.starts_with("cluster res") && cmd.contains("/offline") {
                self.resources
                    .iter_mut()
                    .filter(|r| r.name == name)
                    .for_each(|r| r.state = 3);
                o(0, "")
            } else {
                o(1, "")
            }
        } else if cmd == r::NET_STOP_CLUSSVC {
            self.fail_over_from(host);
            self.node(host).clussvc = false;
            o(0, "")
        } else if cmd == r::NET_START_CLUSSVC {
            self.node(host).clussvc = true;
            o(0, "")
        } else if cmd == r::SC_QUERY_CLUSSVC {
            o(0, sc_text(if local_up { 4 } else { 1 }))
        } else if let Some(rest) = cmd.strip_prefix("sc query ") {
            let svc = quoted(rest).unwrap().to_ascii_lowercase();
            match self.node(host).services.get(&svc) {
                Some(s) => o(0, sc_text(*s)),
                None => o(1060, ""),
            }
        } else if cmd.starts_with("net stop \"") || cmd.starts_with("net start \"") {
            let svc = quoted(cmd).unwrap().to_ascii_lowercase();
            let want = if cmd.starts_with("net start") { 4 } else { 1 };
            match self.node(host).services.get_mut(&svc) {
                Some(s) if *s != want => {
                    *s = want;
                    o(0, "")
                }
                _ => o(2, ""),
            }
        } else if cmd == r::REG_EXCHANGE_SETUP {
            let b = self.node(host).build;
            o(0, format!(
                "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup\r\n    MsiProductMajor    REG_DWORD    0x{:x}\r\n    MsiProductMinor    REG_DWORD    0x{:x}\r\n    MsiBuildMajor    REG_DWORD    0x{:x}\r\n    MsiBuildMinor    REG_DWORD    0x{:x}\r\n    Edition    REG_SZ    Enterprise\r\n",
                b.major, b.minor, b.build, b.revision
            ))
        } else if cmd == r::REG_PENDING_REBOOT {
            o(1, "")
        } else if cmd == r::SHUTDOWN_REBOOT {
            self.fail_over_from(host);
            let n = self.node(host);
            n.boot += 1;
            n.down_polls = 2;
            o(0, "")
        } else if cmd.starts_with(&format!("\"{SP_PKG}\"")) {
            *self.installs.entry(host.to_owned()).or_default() += 1;
            if local_up {
                return Ok(o(1603, "setup refuses: the Cluster service is running"));
            }
            self.node(host).build = SP2.parse().unwrap();
            o(0, "")
        } else if cmd.starts_with(&format!("\"{HF_PKG}\"")) {
            self.node(host).hotfixes.push("KB831464".into());
            o(3010, "")
        } else if cmd == LABCTL {
            if !self.t2_holds(host) {
                return Ok(o(1, "ID no: c1037b44"));
            }
            self.evs_version = self.node(host).build;
            o(0, "")
        } else {
            o(1, "not recognized")
        };
        self.track();
        Ok(result)
    }

    fn wql(&mut self, host: &str, ns: &str, q: &str) -> Result<Vec<WmiObject>, TransportError> {
        let h = Name::host(host).unwrap();
        if self.node(host).down_polls > 0 {
            self.node(host).down_polls -= 1;
            self.track();
            return Err(TransportError::Unreachable {
                host: h,
                detail: "rebooting".into(),
            });
        }
        if ns == NS_CLUSTER && !self.node(host).clussvc {
            return Err(TransportError::Protocol {
                host: h,
                detail: "provider unavailable".into(),
            });
        }
        let obj = |pairs: &[(&str, String)]| -> WmiObject {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        Ok(match q {
            r::WQL_OWNERS => self
                .owners
                .iter()
                .map(|(g, n)| {
                    obj(&[
                        ("GroupComponent", format!("MSCluster_Node.Name=\"{n}\"")),
                        (
                            "PartComponent",
                            format!("MSCluster_ResourceGroup.Name=\"{g}\""),
                        ),
                    ])
                })
                .collect(),
            r::WQL_GROUPS => self
                .owners
                .keys()
                .map(|g| {
                    obj(&[
                        ("Name", g.to_string()),
                        ("State", self.group_state(g).to_string()),
                    ])
                })
                .collect(),
            r::WQL_RESOURCES => self
                .resources
                .iter()
                .map(|r| {
                    obj(&[
                        ("Name", r.name.into()),
                        ("Type", r.kind.into()),
                        ("State", r.state.to_string()),
                    ])
                })
                .collect(),
            r::WQL_GROUP_RESOURCES => self
                .resources
                .iter()
                .map(|r| {
                    obj(&[
                        (
                            "GroupComponent",
                            format!("MSCluster_ResourceGroup.Name=\"{}\"", r.group),
                        ),
                        (
                            "PartComponent",
                            format!("MSCluster_Resource.Name=\"{}\"", r.name),
                        ),
                    ])
                })
                .collect(),
            r::WQL_PROCESSES => vec![obj(&[("Name", "System".into())])],
            r::WQL_OS => {
                let boot = self.node(host).boot;
                vec![obj(&[(
                    "LastBootUpTime",
                    format!("2026112108{boot:02}00.000000+060"),
                )])]
            }
            r::WQL_EXCHANGE_SERVERS => {
                let v = self.evs_version;
                vec![obj(&[
                    ("Name", "EVS1".into()),
                    (
                        "ExchangeVersion",
                        format!(
                            "Version {}.{} (Build {}.{})",
                            v.major, v.minor, v.build, v.revision
                        ),
                    ),
                ])]
            }
            r::WQL_HOTFIXES => self
                .node(host)
                .hotfixes
                .iter()
                .map(|k| obj(&[("HotFixID", k.clone())]))
                .collect(),
            _ => {
                return Err(TransportError::Protocol {
                    host: h,
                    detail: format!("unknown WQL {q} in {ns}"),
                })
            }
        })
    }
}

#[async_trait]
impl Transport for Fake {
    async fn run(
        &self,
        host: &Name,
        command: &str,
        _t: Duration,
    ) -> Result<CommandOutput, TransportError> {
        self.0.lock().unwrap().run(host.as_str(), command)
    }
    async fn wql(&self, host: &Name, ns: &str, q: &str) -> Result<Vec<WmiObject>, TransportError> {
        self.0.lock().unwrap().wql(host.as_str(), ns, q)
    }
    async fn reset(&self, _host: &Name) {}
}

fn fake() -> Fake {
    let node = || NodeState {
        clussvc: true,
        build: SP1.parse().unwrap(),
        boot: 1,
        down_polls: 0,
        hotfixes: vec!["KB824146".into()],
        services: [("mcshield", 4), ("snmp", 4), ("w3svc", 4)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    };
    let res = |name, group, kind, state| Res {
        name,
        group,
        kind,
        state,
    };
    Fake(Mutex::new(State {
        nodes: [(N1.to_owned(), node()), (N2.to_owned(), node())]
            .into_iter()
            .collect(),
        owners: [(CLUSTER_GROUP, N1.to_owned()), (EVS_GROUP, N1.to_owned())]
            .into_iter()
            .collect(),
        resources: vec![
            res("Cluster IP Address", CLUSTER_GROUP, "IP Address", 2),
            res("Cluster Name", CLUSTER_GROUP, "Network Name", 2),
            res("Disk Q:", CLUSTER_GROUP, "Physical Disk", 2),
            res(
                "MSDTC",
                CLUSTER_GROUP,
                "Distributed Transaction Coordinator",
                2,
            ),
            res("EVS1 IP Address", EVS_GROUP, "IP Address", 2),
            res("EVS1 Network Name", EVS_GROUP, "Network Name", 2),
            res("Disk F:", EVS_GROUP, "Physical Disk", 2),
            res(
                "EVS1 System Attendant",
                EVS_GROUP,
                "Microsoft Exchange System Attendant",
                2,
            ),
            res(
                "EVS1 Information Store",
                EVS_GROUP,
                "Microsoft Exchange Information Store",
                2,
            ),
            res(
                "EVS1 MTA",
                EVS_GROUP,
                "Microsoft Exchange Message Transfer Agent Instance",
                2,
            ),
            res(
                "EVS1 Routing",
                EVS_GROUP,
                "Microsoft Exchange Routing Service Instance",
                2,
            ),
            res(
                "EVS1 SMTP",
                EVS_GROUP,
                "Microsoft Exchange SMTP Server Instance",
                2,
            ),
            res(
                "EVS1 HTTP",
                EVS_GROUP,
                "Microsoft Exchange HTTP Server Instance",
                2,
            ),
        ],
        evs_version: SP1.parse().unwrap(),
        installs: BTreeMap::new(),
        max_out_of_service: 0,
    }))
}

/// The shipped `playbooks/e3-cluster.yml`, loaded and planned for the fake's two-node cluster
/// (PRG-N1 owns every group: PRG-N2 goes first), as (host, rule, action). The operator's
/// confirmations and the package copies (`stage`: the fake keeps no files; `tests/it/stage.rs`
/// and the lab cover them) are left out; the lab's EVS upgrade tool is given as the README says.
fn e3_steps() -> Vec<(String, String, Action)> {
    let mut fleet = fleet();
    for h in &mut fleet.hosts {
        h.vars
            .insert("package_root".into(), lockstep_testkit::PACKAGE_ROOT.into());
    }
    let mut pb = lockstep_testkit::shipped("e3-cluster", &fleet);
    pb.vars
        .insert("evs_upgrade_tool".into(), "labctl evs upgrade".into());
    let plan = lockstep_plan::plan(&fleet, &pb, &lockstep_plan::PlanOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    plan.steps
        .into_iter()
        .filter(|s| !matches!(s.action, Action::Confirm { .. } | Action::Stage { .. }))
        .map(|s| (s.host.to_string(), s.rule, s.action))
        .collect()
}

fn ctx<'a>(t: &'a Fake, f: &'a Fleet, s: &'a PlannedStep) -> Ctx<'a> {
    Ctx {
        transport: t,
        fleet: f,
        step: s,
        timeout: Duration::from_secs(5),
        reboot_poll: Duration::from_millis(1),
    }
}

#[tokio::test]
async fn e3_cluster_end_to_end_on_a_stateful_fake() {
    let t = fake();
    let f = fleet();
    for (host, rule, action) in e3_steps() {
        let mut s = step(&host, action);
        s.rule = rule.clone();
        match execute(&ctx(&t, &f, &s)).await {
            Ok(Outcome::Done { .. }) => {}
            other => panic!("{} ({rule}) on {host}: {other:?}", s.action.kind()),
        }
    }
    let st = t.0.lock().unwrap();
    let sp2: Version = SP2.parse().unwrap();
    assert!(st.nodes.values().all(|n| n.build == sp2));
    assert_eq!(st.evs_version, sp2);
    // Passive first: PRG-N2 was the first node, the EVS was upgraded there and the failover
    // test brought it back there.
    assert_eq!(st.owners[EVS_GROUP], N2);
    assert_eq!(st.group_state(EVS_GROUP), 0);
    assert_eq!(
        st.max_out_of_service, 1,
        "E3-C1: one node out of service at a time"
    );
    assert_eq!(
        st.installs.values().copied().collect::<Vec<_>>(),
        vec![1, 1]
    );
}

#[tokio::test]
async fn after_the_procedure_every_change_probe_says_done_and_nothing_is_resent() {
    let t = fake();
    let f = fleet();
    let steps = e3_steps();
    for (host, _, action) in steps.iter().cloned() {
        let s = step(&host, action);
        execute(&ctx(&t, &f, &s)).await.unwrap();
    }
    // Probes whose effect is still in place at the end of the run.
    for (host, rule, action) in steps.iter().cloned() {
        let s = step(&host, action);
        let expect_done = matches!(
            s.action,
            Action::Install { .. }
                | Action::AssertVersion { .. }
                | Action::StartClusterService
                | Action::StartServices { .. }
                | Action::EvsResourcesOnline { .. }
                | Action::UpgradeVirtualServer { .. }
        ) || (matches!(s.action, Action::MoveGroup { .. }));
        if expect_done {
            assert_eq!(
                probe(&ctx(&t, &f, &s)).await.unwrap(),
                Probe::Done,
                "{rule} on {host}"
            );
        }
    }
    // Executing the installs again sends no installer (never install twice).
    for (host, _, action) in steps
        .into_iter()
        .filter(|(_, _, a)| matches!(a, Action::Install { .. }))
    {
        let s = step(&host, action);
        execute(&ctx(&t, &f, &s)).await.unwrap();
    }
    assert_eq!(t.0.lock().unwrap().installs.values().sum::<u32>(), 2);
}
