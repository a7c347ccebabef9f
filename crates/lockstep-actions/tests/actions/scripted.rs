//! A scripted in-test Transport: exact command line / WQL query -> canned replies (a queue whose
//! last reply repeats), recording everything sent. Plus fixtures: a two-node cluster fleet and
//! Windows-looking outputs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use lockstep_actions::render::{self, NS_CIMV2, NS_CLUSTER};
use lockstep_actions::Ctx;
use lockstep_core::*;

#[derive(Clone, Debug)]
pub enum Reply {
    Out(CommandOutput),
    Rows(Vec<WmiObject>),
    Err(TransportError),
}

#[derive(Default)]
pub struct Scripted {
    script: Mutex<HashMap<(String, String), VecDeque<Reply>>>,
    sent: Mutex<Vec<String>>,
    resets: Mutex<Vec<String>>,
}

fn key(host: &str, what: &str) -> (String, String) {
    (host.to_ascii_uppercase(), what.to_owned())
}

fn wql_key(ns: &str, q: &str) -> String {
    format!("WQL {ns}: {q}")
}

impl Scripted {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replies to a command line, in order; the last repeats.
    pub fn on_run(&self, host: &str, line: &str, replies: Vec<Reply>) -> &Self {
        self.script
            .lock()
            .unwrap()
            .insert(key(host, line), replies.into());
        self
    }

    /// Replies to a WQL query, in order; the last repeats.
    pub fn on_wql(&self, host: &str, ns: &str, q: &str, replies: Vec<Reply>) -> &Self {
        self.script
            .lock()
            .unwrap()
            .insert(key(host, &wql_key(ns, q)), replies.into());
        self
    }

    fn next(&self, host: &str, what: &str) -> Option<Reply> {
        let mut s = self.script.lock().unwrap();
        let q = s.get_mut(&key(host, what))?;
        if q.len() > 1 {
            q.pop_front()
        } else {
            q.front().cloned()
        }
    }

    /// Everything sent, as `HOST> line` or `HOST> WQL ns: query`.
    pub fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }

    /// Command lines only (no WQL), as `HOST> line`.
    pub fn commands(&self) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter(|l| !l.contains("> WQL "))
            .collect()
    }

    /// Command lines sent that are not reads (`sc query`, `reg query`, `wlbs query`).
    pub fn changes(&self) -> Vec<String> {
        self.commands()
            .into_iter()
            .filter(|l| {
                !l.contains("> sc query")
                    && !l.contains("> reg query")
                    && !l.contains("> wlbs query")
            })
            .collect()
    }

    pub fn resets(&self) -> usize {
        self.resets.lock().unwrap().len()
    }
}

#[async_trait]
impl Transport for Scripted {
    async fn run(
        &self,
        host: &Name,
        command: &str,
        _timeout: Duration,
    ) -> Result<CommandOutput, TransportError> {
        self.sent.lock().unwrap().push(format!("{host}> {command}"));
        match self.next(host.as_str(), command) {
            Some(Reply::Out(o)) => Ok(o),
            Some(Reply::Err(e)) => Err(e),
            Some(Reply::Rows(_)) => panic!("rows scripted for a command line: {command}"),
            None => Ok(CommandOutput {
                stdout: String::new(),
                stderr: format!(
                    "'{}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n",
                    command.split(' ').next().unwrap_or("")
                ),
                exit_code: 1,
            }),
        }
    }

    async fn wql(
        &self,
        host: &Name,
        namespace: &str,
        query: &str,
    ) -> Result<Vec<WmiObject>, TransportError> {
        let k = wql_key(namespace, query);
        self.sent.lock().unwrap().push(format!("{host}> {k}"));
        match self.next(host.as_str(), &k) {
            Some(Reply::Rows(r)) => Ok(r),
            Some(Reply::Err(e)) => Err(e),
            Some(Reply::Out(_)) => panic!("command output scripted for WQL: {query}"),
            None => Err(TransportError::Protocol {
                host: host.clone(),
                detail: format!("unscripted WQL `{query}`"),
            }),
        }
    }

    async fn reset(&self, host: &Name) {
        self.resets.lock().unwrap().push(host.to_string());
    }
}

// ---- replies ----

pub fn out(code: i32, stdout: &str) -> Reply {
    Reply::Out(CommandOutput {
        stdout: stdout.to_owned(),
        stderr: String::new(),
        exit_code: code,
    })
}

pub fn err_out(code: i32, stderr: &str) -> Reply {
    Reply::Out(CommandOutput {
        stdout: String::new(),
        stderr: stderr.to_owned(),
        exit_code: code,
    })
}

pub fn ok() -> Reply {
    out(0, "")
}

pub fn unreachable(host: &str) -> Reply {
    Reply::Err(TransportError::Unreachable {
        host: Name::host(host).unwrap(),
        detail: "connection refused".into(),
    })
}

/// `sc query` output for a state number, with the state word in Czech (never read).
pub fn sc(state: u32) -> Reply {
    let word = match state {
        1 => "ZASTAVENO",
        2 => "SPOUŠTĚNÍ",
        3 => "ZASTAVOVÁNÍ",
        _ => "SPUŠTĚNO",
    };
    out(
        0,
        &format!(
            "\r\nSERVICE_NAME: svc\r\n        TYPE               : 10  WIN32_OWN_PROCESS\r\n        STATE              : {state}  {word}\r\n        WIN32_EXIT_CODE    : 0  (0x0)\r\n"
        ),
    )
}

pub fn sc_missing() -> Reply {
    err_out(
        1060,
        "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n",
    )
}

/// `reg query` of the Exchange Setup key.
pub fn reg_build(v: &str, edition: &str) -> Reply {
    let v: Version = v.parse().unwrap();
    out(
        0,
        &format!(
            "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup\r\n    MsiProductMajor    REG_DWORD    0x{:x}\r\n    MsiProductMinor    REG_DWORD    0x{:x}\r\n    MsiBuildMajor    REG_DWORD    0x{:x}\r\n    MsiBuildMinor    REG_DWORD    0x{:x}\r\n    ServicePackBuild    REG_DWORD    0x{:x}\r\n    Edition    REG_SZ    {edition}\r\n",
            v.major, v.minor, v.build, v.revision, v.build
        ),
    )
}

pub fn obj(pairs: &[(&str, &str)]) -> WmiObject {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>()
}

/// `MSCluster_NodeToActiveGroup` rows from (group, node).
pub fn owners(pairs: &[(&str, &str)]) -> Reply {
    Reply::Rows(
        pairs
            .iter()
            .map(|(g, n)| {
                obj(&[
                    ("GroupComponent", &format!("MSCluster_Node.Name=\"{n}\"")),
                    (
                        "PartComponent",
                        &format!("MSCluster_ResourceGroup.Name=\"{g}\""),
                    ),
                ])
            })
            .collect(),
    )
}

/// `MSCluster_ResourceGroup` rows from (group, state).
pub fn groups(pairs: &[(&str, u32)]) -> Reply {
    Reply::Rows(
        pairs
            .iter()
            .map(|(g, s)| obj(&[("Name", g), ("State", &s.to_string())]))
            .collect(),
    )
}

/// `MSCluster_Resource` rows from (name, type, state).
pub fn resources(rows: &[(&str, &str, u32)]) -> Reply {
    Reply::Rows(
        rows.iter()
            .map(|(n, t, s)| obj(&[("Name", n), ("Type", t), ("State", &s.to_string())]))
            .collect(),
    )
}

/// `MSCluster_ResourceGroupToResource` rows from (group, resource).
pub fn membership(rows: &[(&str, &str)]) -> Reply {
    Reply::Rows(
        rows.iter()
            .map(|(g, r)| {
                obj(&[
                    (
                        "GroupComponent",
                        &format!("MSCluster_ResourceGroup.Name=\"{g}\""),
                    ),
                    ("PartComponent", &format!("MSCluster_Resource.Name=\"{r}\"")),
                ])
            })
            .collect(),
    )
}

pub fn os(boot: &str) -> Reply {
    Reply::Rows(vec![obj(&[
        ("LastBootUpTime", boot),
        ("Version", "5.2.3790"),
        ("OSLanguage", "1029"),
    ])])
}

pub fn processes(names: &[&str]) -> Reply {
    Reply::Rows(names.iter().map(|n| obj(&[("Name", n)])).collect())
}

/// `Win32_NTLogEvent` rows from (event code, message), newest first.
pub fn app_events(rows: &[(u32, &str)]) -> Reply {
    Reply::Rows(
        rows.iter()
            .enumerate()
            .map(|(i, (code, m))| {
                obj(&[
                    ("EventCode", &code.to_string()),
                    ("SourceName", "MSExchangeCluster"),
                    (
                        "TimeGenerated",
                        &format!("2026112108{:02}00.000000+000", 59 - i),
                    ),
                    ("Message", m),
                ])
            })
            .collect(),
    )
}

pub fn hotfixes(ids: &[&str]) -> Reply {
    Reply::Rows(ids.iter().map(|n| obj(&[("HotFixID", n)])).collect())
}

// ---- scripting shortcuts ----

pub fn script_owners(t: &Scripted, host: &str, replies: Vec<Reply>) {
    t.on_wql(host, NS_CLUSTER, render::WQL_OWNERS, replies);
}

pub fn script_os(t: &Scripted, host: &str, replies: Vec<Reply>) {
    t.on_wql(host, NS_CIMV2, render::WQL_OS, replies);
}

pub fn script_build(t: &Scripted, host: &str, replies: Vec<Reply>) {
    t.on_run(host, render::REG_EXCHANGE_SETUP, replies);
}

pub fn script_processes(t: &Scripted, host: &str, names: &[&str]) {
    t.on_wql(
        host,
        NS_CIMV2,
        render::WQL_PROCESSES,
        vec![processes(names)],
    );
}

// ---- fleet ----

pub const N1: &str = "PRG-N1";
pub const N2: &str = "PRG-N2";
pub const FE: &str = "PRG-FE1";
pub const EVS_GROUP: &str = "EVS1 Group";
pub const CLUSTER_GROUP: &str = "Cluster Group";
pub const SP1: &str = "6.5.7226.6";
pub const SP2: &str = "6.5.7638.2";

pub fn n(s: &str) -> Name {
    Name::new(NameKind::Object, s).unwrap()
}

fn host(name: &str, role: Role, cluster: Option<&str>, build: &str, edition: Edition) -> Host {
    Host {
        name: Name::host(name).unwrap(),
        site: Name::ident("prague").unwrap(),
        exchange: Some(Exchange {
            role,
            product: Product::Exchange2003,
            edition,
            build: Some(build.parse().unwrap()),
        }),
        windows: Some(WindowsRelease::Windows2003),
        os_build: None,
        cluster: cluster.map(|c| Name::host(c).unwrap()),
        pool: None,
        connection: Connection {
            address: name.to_owned(),
            port: 5985,
            scheme: Scheme::Http,
            auth: Auth::Ntlm,
            user: "LAB\\admin".into(),
            password: SecretSource::Env("LOCKSTEP_PASSWORD".into()),
            verify_tls: true,
            allow_basic_over_http: false,
            codepage: None,
            ca_trust_path: None,
        },
        groups: Vec::new(),
        vars: BTreeMap::new(),
    }
}

/// A site `prague` (cs-CZ) with cluster `PRGCL1` (PRG-N1 owns everything, both at SP1,
/// Enterprise) and a standalone front-end PRG-FE1 (SP1, Standard).
pub fn fleet() -> Fleet {
    Fleet {
        organisation: "Contoso".into(),
        sites: vec![Site {
            name: Name::ident("prague").unwrap(),
            locale: Locale::CS_CZ,
            description: None,
            rollout_order: None,
        }],
        hosts: vec![
            host(FE, Role::FrontEnd, None, SP1, Edition::Standard),
            host(N1, Role::BackEnd, Some("PRGCL1"), SP1, Edition::Enterprise),
            host(N2, Role::BackEnd, Some("PRGCL1"), SP1, Edition::Enterprise),
        ],
        clusters: vec![Cluster {
            name: Name::host("PRGCL1").unwrap(),
            site: Name::ident("prague").unwrap(),
            nodes: vec![Name::host(N1).unwrap(), Name::host(N2).unwrap()],
            mode: ClusterMode::ActivePassive,
            cluster_group: n(CLUSTER_GROUP),
            cluster_group_owner: Name::host(N1).unwrap(),
            virtual_servers: vec![VirtualServer {
                name: n("EVS1"),
                group: n(EVS_GROUP),
                owner: Name::host(N1).unwrap(),
                build: Some(SP1.parse().unwrap()),
            }],
            groups: Vec::new(),
        }],
        pools: Vec::new(),
        groups: BTreeMap::new(),
        front_end_scope: FrontEndScope::Organisation,
    }
}

pub fn step(host: &str, action: Action) -> PlannedStep {
    PlannedStep {
        id: format!("{host}/{}", action.kind()),
        spec: Name::ident(action.kind()).unwrap(),
        name: action.kind().to_owned(),
        rule: "TEST".into(),
        stage: 0,
        site: Name::ident("prague").unwrap(),
        cluster: Some(Name::host("PRGCL1").unwrap()),
        pool: None,
        host: Name::host(host).unwrap(),
        role: Role::BackEnd,
        out_of_service: false,
        action,
        after: Vec::new(),
        timeout_secs: 60,
        estimate_secs: 60,
    }
}

pub fn ctx<'a>(t: &'a Scripted, fleet: &'a Fleet, step: &'a PlannedStep) -> Ctx<'a> {
    Ctx {
        transport: t,
        fleet,
        step,
        timeout: Duration::from_millis(400),
        reboot_poll: Duration::from_millis(5),
    }
}

/// The facts of a Done outcome as `key=value`.
pub fn facts(o: &lockstep_actions::Outcome) -> Vec<String> {
    match o {
        lockstep_actions::Outcome::Done { facts, .. } => facts
            .iter()
            .map(|f| format!("{}:{}={}", f.host, f.key, f.value))
            .collect(),
        lockstep_actions::Outcome::Waiting { .. } => Vec::new(),
    }
}

pub fn message(o: &lockstep_actions::Outcome) -> String {
    match o {
        lockstep_actions::Outcome::Done { message, .. } => message.clone(),
        lockstep_actions::Outcome::Waiting { instructions } => instructions.clone(),
    }
}
