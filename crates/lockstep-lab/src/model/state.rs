//! The mutable state of the simulated fleet and the rules that change it. Everything here runs
//! with the world's lock held, never across an await.

use std::collections::{BTreeSet, HashMap};

use lockstep_core::{Edition, Fleet, Locale, Product, Role, Version, WindowsRelease};

use super::config::{LabConfig, StartType};
use super::fault::Fault;
use crate::record::{GroupHeader, HostHeader, Record, RecordEvent, Recorder};

/// One Windows service.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub name: String,
    pub display: String,
    pub start: StartType,
    pub running: bool,
    /// An Exchange service that is a cluster resource on this node (state derived).
    pub clustered: Option<ResKind>,
}

/// Whether the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Power {
    Up,
    /// `shutdown /r` accepted; the endpoint still answers.
    GoingDown,
    /// Restarting; `stuck` when a `reboot-never-returns` fault holds it down.
    Down {
        stuck: bool,
    },
}

/// One simulated Windows server.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: String,
    pub site: String,
    pub locale: Locale,
    /// Exchange role, product and edition; `None` on a plain Windows host.
    pub role: Option<Role>,
    pub product: Option<Product>,
    pub edition: Option<Edition>,
    pub windows: WindowsRelease,
    /// OS version with the update build revision (`10.0.17763.5696`).
    pub os_build: Version,
    pub cluster: Option<usize>,
    pub pool: Option<String>,
    /// The Exchange build (`0.0.0.0` on a host without Exchange).
    pub build: Version,
    pub services: Vec<Service>,
    /// Running processes beyond the system ones: (pid, image).
    pub processes: Vec<(u32, String)>,
    pub next_pid: u32,
    pub hotfixes: BTreeSet<String>,
    pub boot_epoch: u64,
    /// Simulated wall clock at the last boot (ms since the Unix epoch).
    pub boot_ms: u64,
    pub pending_reboot: bool,
    /// Free bytes on `C:` before any hotfix (`Win32_LogicalDisk`).
    pub free_disk: u64,
    pub power: Power,
    pub installing: u32,
    pub paused: bool,
    /// The groups `Suspend-ClusterNode -Drain` moved off the node (for `-Failback Immediate`).
    pub drained: Vec<String>,
    /// The update build revision a Windows update brings at the next restart.
    pub pending_ubr: Option<u32>,
    /// NLB converged (pool members only).
    pub nlb: Option<bool>,
    pub faults: Vec<Fault>,
    /// The Application event log, oldest first (WQL `Win32_NTLogEvent`).
    pub app_log: Vec<LogEvent>,
    /// Files written on the node (staged packages and their work files), by lower-cased path:
    /// the path as written and the bytes. They survive restarts.
    pub files: std::collections::BTreeMap<String, (String, Vec<u8>)>,
    /// Directories made on the node (lower-cased, no trailing `\`); drive roots always exist.
    pub dirs: BTreeSet<String>,
}

/// One entry of a node's Application event log.
#[derive(Debug, Clone)]
pub(crate) struct LogEvent {
    pub record_number: u32,
    pub event_code: u32,
    pub source: String,
    /// Simulated wall clock, ms since the Unix epoch.
    pub time_ms: u64,
    pub message: String,
}

/// A cluster resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResKind {
    Ip,
    NetName,
    Disk,
    Dtc,
    Sa,
    Is,
    Mta,
    Routing,
    Smtp,
    Http,
    /// The application resource of a non-Exchange group (file server, SQL Server, generic).
    App(lockstep_core::GroupKind),
}

impl ResKind {
    pub fn type_name(self) -> &'static str {
        match self {
            ResKind::Ip => "IP Address",
            ResKind::NetName => "Network Name",
            ResKind::Disk => "Physical Disk",
            ResKind::Dtc => "Distributed Transaction Coordinator",
            ResKind::Sa => "Microsoft Exchange System Attendant",
            ResKind::Is => "Microsoft Exchange Information Store",
            ResKind::Mta => "Microsoft Exchange Message Transfer Agent Instance",
            ResKind::Routing => "Microsoft Exchange Routing Service Instance",
            ResKind::Smtp => "Microsoft Exchange SMTP Server Instance",
            ResKind::Http => "Microsoft Exchange HTTP Server Instance",
            ResKind::App(lockstep_core::GroupKind::FileServer) => "File Server",
            ResKind::App(lockstep_core::GroupKind::Sql) => "SQL Server",
            ResKind::App(_) => "Generic Service",
        }
    }

    pub fn is_exchange(self) -> bool {
        !matches!(
            self,
            ResKind::Ip | ResKind::NetName | ResKind::Disk | ResKind::Dtc | ResKind::App(_)
        )
    }
}

/// A cluster resource's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResState {
    Online,
    Offline,
    Failed,
}

impl ResState {
    pub fn word(self) -> &'static str {
        match self {
            ResState::Online => "online",
            ResState::Offline => "offline",
            ResState::Failed => "failed",
        }
    }
    /// `MSCluster_Resource.State`.
    pub fn wmi(self) -> u32 {
        match self {
            ResState::Online => 2,
            ResState::Offline => 3,
            ResState::Failed => 4,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub name: String,
    pub kind: ResKind,
    pub state: ResState,
}

#[derive(Debug, Clone)]
pub(crate) struct Evs {
    pub name: String,
    pub version: Version,
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub name: String,
    pub owner: usize,
    pub evs: Option<Evs>,
    /// What the group serves (`None` for the cluster group).
    pub kind: Option<lockstep_core::GroupKind>,
    pub resources: Vec<Resource>,
}

/// Group states as cluster.exe and WMI count them: 0 Online, 1 Offline, 2 Failed, 3 Partial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    Online = 0,
    Offline = 1,
    Failed = 2,
    Partial = 3,
}

impl Group {
    pub fn state(&self) -> GroupState {
        let all = |s| self.resources.iter().all(|r| r.state == s);
        if self.resources.iter().any(|r| r.state == ResState::Failed) {
            GroupState::Failed
        } else if all(ResState::Online) {
            GroupState::Online
        } else if all(ResState::Offline) {
            GroupState::Offline
        } else {
            GroupState::Partial
        }
    }
}

/// Node states as cluster.exe and WMI count them: 0 Up, 1 Down, 2 Paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeState {
    Up = 0,
    Down = 1,
    Paused = 2,
}

#[derive(Debug, Clone)]
pub(crate) struct ClusterSt {
    pub name: String,
    pub nodes: Vec<usize>,
    pub groups: Vec<Group>,
    pub product: Product,
}

/// A command's result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Out {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Out {
    pub fn ok(stdout: impl Into<String>) -> Out {
        Out {
            stdout: stdout.into(),
            stderr: String::new(),
            code: 0,
        }
    }
    pub fn err(code: i32, stderr: impl Into<String>) -> Out {
        Out {
            stdout: String::new(),
            stderr: stderr.into(),
            code,
        }
    }
}

/// The whole fleet's state.
pub(crate) struct State {
    pub hosts: Vec<Node>,
    pub clusters: Vec<ClusterSt>,
    pub index: HashMap<String, usize>,
    pub recorder: Recorder,
    pub t0: tokio::time::Instant,
    pub wall0_ms: u64,
    pub scale: f64,
    pub config: LabConfig,
    /// Whether the session of the command being dispatched holds delegable credentials (set
    /// for each command; see [`LabConfig::double_hop`]).
    pub delegable: bool,
}

fn svc(name: &str, display: &str, start: StartType) -> Service {
    Service {
        name: name.to_owned(),
        display: display.to_owned(),
        start,
        running: start == StartType::Auto,
        clustered: None,
    }
}

impl State {
    /// Builds the fleet's state from the inventory.
    pub fn new(fleet: &Fleet, config: LabConfig, recorder: Recorder) -> State {
        let t0 = tokio::time::Instant::now();
        let wall0_ms = config.start_wall_ms.unwrap_or_else(lockstep_core::now_ms);
        let mut st = State {
            hosts: Vec::with_capacity(fleet.hosts.len()),
            clusters: Vec::new(),
            index: HashMap::with_capacity(fleet.hosts.len()),
            recorder,
            t0,
            wall0_ms,
            scale: if config.time_scale > 0.0 {
                config.time_scale
            } else {
                1.0
            },
            config,
            delegable: true,
        };
        for h in &fleet.hosts {
            let node = st.node_of(fleet, h);
            st.index
                .insert(h.name.as_str().to_ascii_lowercase(), st.hosts.len());
            st.hosts.push(node);
        }
        for c in &fleet.clusters {
            let cluster = st.cluster_of(c);
            st.clusters.push(cluster);
        }
        let header = st.header();
        st.record(None, header);
        // Cluster-service stops from the config take effect now (groups fail over).
        st.stop_configured_clussvc();
        st
    }

    /// The lab's node for inventory host `h`: its services (the Exchange ones clustered on a
    /// cluster node), build, hotfixes and processes from the inventory and the lab config.
    fn node_of(&self, fleet: &Fleet, h: &lockstep_core::Host) -> Node {
        let locale = fleet
            .site(h.site.as_str())
            .map(|s| s.locale)
            .unwrap_or(Locale::EN_US);
        let hc = self
            .config
            .host(h.name.as_str())
            .cloned()
            .unwrap_or_default();
        // A host whose release the inventory does not give runs the newest the lab models.
        let windows = h.windows.unwrap_or(WindowsRelease::Windows2022);
        let mut services: Vec<Service> = self
            .config
            .default_services(h.role())
            .into_iter()
            .map(|s| {
                let display = s.display.clone().unwrap_or_else(|| s.name.clone());
                svc(&s.name, &display, s.start)
            })
            .collect();
        if h.cluster.is_some() {
            services.insert(0, svc("ClusSvc", "Cluster Service", StartType::Auto));
            for s in &mut services {
                let kind = match s.name.as_str() {
                    "MSExchangeSA" => Some(ResKind::Sa),
                    "MSExchangeIS" => Some(ResKind::Is),
                    "MSExchangeMTA" => Some(ResKind::Mta),
                    _ => None,
                };
                if kind.is_some() {
                    s.clustered = kind;
                    s.start = StartType::Manual;
                    s.running = false;
                }
            }
        }
        for stopped in &hc.stopped_services {
            if let Some(s) = services
                .iter_mut()
                .find(|s| s.name.eq_ignore_ascii_case(stopped))
            {
                s.running = false;
            }
        }
        let mut node = Node {
            name: h.name.as_str().to_owned(),
            site: h.site.as_str().to_owned(),
            locale,
            role: h.role(),
            product: h.product(),
            edition: h.edition(),
            windows,
            os_build: h.os_build.unwrap_or_else(|| windows.rtm_build()),
            cluster: None,
            pool: h.pool.as_ref().map(|p| p.as_str().to_owned()),
            build: hc
                .build
                .or(h.exchange_build())
                .or_else(|| h.product().map(|p| p.rtm()))
                .unwrap_or_default(),
            services,
            processes: Vec::new(),
            next_pid: 1000,
            hotfixes: hc.hotfixes.iter().map(|s| s.to_ascii_uppercase()).collect(),
            boot_epoch: 1,
            boot_ms: self.wall0_ms.saturating_sub(86_400_000),
            pending_reboot: hc.pending_reboot,
            free_disk: hc.free_disk_bytes.unwrap_or(21_474_836_480),
            power: Power::Up,
            installing: 0,
            paused: false,
            drained: Vec::new(),
            pending_ubr: None,
            nlb: h.pool.as_ref().map(|_| true),
            faults: hc.faults.clone(),
            app_log: Vec::new(),
            files: Default::default(),
            dirs: Default::default(),
        };
        for p in &hc.processes {
            node.spawn_process(p);
        }
        node
    }

    /// The lab's cluster for inventory cluster `c` (its nodes already in `self.hosts`, which
    /// this marks as its members): the cluster group, one group per virtual server with its
    /// Exchange resources, and the application groups.
    fn cluster_of(&mut self, c: &lockstep_core::Cluster) -> ClusterSt {
        let ci = self.clusters.len();
        let nodes: Vec<usize> = c
            .nodes
            .iter()
            .filter_map(|n| self.find(n.as_str()))
            .collect();
        for &n in &nodes {
            self.hosts[n].cluster = Some(ci);
        }
        let product = nodes
            .first()
            .and_then(|&n| self.hosts[n].product)
            .unwrap_or(Product::Exchange2003);
        let first = nodes.first().copied().unwrap_or(0);
        let owner_of =
            |st: &State, name: &str| st.find(name).filter(|i| nodes.contains(i)).unwrap_or(first);
        let mut groups = vec![Group {
            name: c.cluster_group.as_str().to_owned(),
            owner: owner_of(self, c.cluster_group_owner.as_str()),
            evs: None,
            kind: None,
            resources: vec![
                res("Cluster IP Address", ResKind::Ip),
                res("Cluster Name", ResKind::NetName),
                res("Disk Q:", ResKind::Disk),
                res("MSDTC", ResKind::Dtc),
            ],
        }];
        for (i, v) in c.virtual_servers.iter().enumerate() {
            let evs = v.name.as_str();
            let owner = owner_of(self, v.owner.as_str());
            let disk = char::from(b'F' + (i as u8 % 10));
            let mut resources = vec![
                res(&format!("{evs} IP Address"), ResKind::Ip),
                res(&format!("{evs} Network Name"), ResKind::NetName),
                res(&format!("Disk {disk}:"), ResKind::Disk),
                res(&format!("{evs} System Attendant"), ResKind::Sa),
                res(&format!("{evs} Information Store"), ResKind::Is),
                res(&format!("{evs} MTA"), ResKind::Mta),
            ];
            if product != Product::Exchange55 {
                resources.push(res(&format!("{evs} Routing"), ResKind::Routing));
                resources.push(res(&format!("{evs} SMTP"), ResKind::Smtp));
                resources.push(res(&format!("{evs} HTTP"), ResKind::Http));
            }
            groups.push(Group {
                name: v.group.as_str().to_owned(),
                owner,
                evs: Some(Evs {
                    name: evs.to_owned(),
                    version: v.build.unwrap_or(self.hosts[owner].build),
                }),
                kind: Some(lockstep_core::GroupKind::ExchangeVirtualServer),
                resources,
            });
        }
        for (i, grp) in c.groups.iter().enumerate() {
            let name = grp.name.as_str();
            let owner = owner_of(self, grp.owner.as_str());
            let app = ResKind::App(grp.kind);
            groups.push(Group {
                name: name.to_owned(),
                owner,
                evs: None,
                kind: Some(grp.kind),
                resources: vec![
                    res(&format!("{name} IP Address"), ResKind::Ip),
                    res(&format!("{name} Network Name"), ResKind::NetName),
                    res(&format!("Cluster Disk {}", i + 1), ResKind::Disk),
                    res(&format!("{name} {}", app.type_name()), app),
                ],
            });
        }
        ClusterSt {
            name: c.name.as_str().to_owned(),
            nodes,
            groups,
            product,
        }
    }

    /// Stops the Cluster service the lab config lists as stopped on a cluster node (its groups
    /// fail over), as an operator's stop would.
    fn stop_configured_clussvc(&mut self) {
        for h in 0..self.hosts.len() {
            let stopped = self.hosts[h].cluster.is_some()
                && self.config.host(&self.hosts[h].name).is_some_and(|c| {
                    c.stopped_services
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case("clussvc"))
                });
            if stopped {
                if let Some(s) = self.service_mut(h, "ClusSvc") {
                    s.running = true;
                }
                self.stop_clussvc(h);
            }
        }
    }

    fn header(&self) -> RecordEvent {
        let hosts = self
            .hosts
            .iter()
            .map(|n| HostHeader {
                name: n.name.clone(),
                role: n.role,
                product: n.product,
                edition: n.edition,
                windows: n.windows,
                build: n.build,
                cluster: n.cluster.map(|c| self.clusters[c].name.clone()),
                site: n.site.clone(),
                cluster_service: n.cluster.is_some(),
                hotfixes: n.hotfixes.iter().cloned().collect(),
            })
            .collect();
        let groups = self
            .clusters
            .iter()
            .flat_map(|c| {
                c.groups.iter().map(|g| GroupHeader {
                    cluster: c.name.clone(),
                    group: g.name.clone(),
                    evs: g.evs.as_ref().map(|e| e.name.clone()),
                    version: g.evs.as_ref().map(|e| e.version),
                    owner: self.hosts[g.owner].name.clone(),
                    exchange_online: g
                        .resources
                        .iter()
                        .any(|r| r.kind.is_exchange() && r.state == ResState::Online),
                })
            })
            .collect();
        RecordEvent::LabStarted { hosts, groups }
    }

    // ---- clocks and records ----

    pub fn t_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    /// The simulated wall clock (ms since the Unix epoch): runs `1 / scale` times real time.
    pub fn sim_now_ms(&self) -> u64 {
        self.wall0_ms + (self.t0.elapsed().as_secs_f64() * 1000.0 / self.scale) as u64
    }

    pub fn record(&self, host: Option<usize>, event: RecordEvent) {
        let (host, cluster) = match host {
            Some(h) => (
                Some(self.hosts[h].name.clone()),
                self.hosts[h].cluster.map(|c| self.clusters[c].name.clone()),
            ),
            None => (None, None),
        };
        self.recorder.record(Record {
            t_ms: self.t_ms(),
            host,
            cluster,
            event,
        });
    }

    /// Writes an event to host `h`'s Application log (read by WQL `Win32_NTLogEvent`) and
    /// records it (`event-log`).
    pub fn log_event(&mut self, h: usize, event_code: u32, source: &str, message: String) {
        let time_ms = self.sim_now_ms();
        let log = &mut self.hosts[h].app_log;
        let record_number = log.len() as u32 + 1;
        log.push(LogEvent {
            record_number,
            event_code,
            source: source.to_owned(),
            time_ms,
            message: message.clone(),
        });
        self.record(
            Some(h),
            RecordEvent::EventLog {
                id: event_code,
                source: source.to_owned(),
                message,
            },
        );
    }

    // ---- lookups ----

    pub fn find(&self, name: &str) -> Option<usize> {
        self.index.get(&name.to_ascii_lowercase()).copied()
    }

    pub fn service_mut(&mut self, h: usize, name: &str) -> Option<&mut Service> {
        self.hosts[h]
            .services
            .iter_mut()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    pub fn has_fault(&self, h: usize, f: impl Fn(&Fault) -> bool) -> bool {
        self.hosts[h].faults.iter().any(f)
    }

    /// Whether the host's Cluster service runs (false on hosts outside a cluster).
    pub fn clussvc_running(&self, h: usize) -> bool {
        self.hosts[h].cluster.is_some()
            && !matches!(self.hosts[h].power, Power::Down { .. })
            && self.hosts[h]
                .services
                .iter()
                .any(|s| s.name == "ClusSvc" && s.running)
    }

    pub fn node_state(&self, h: usize) -> NodeState {
        if !self.clussvc_running(h) {
            NodeState::Down
        } else if self.hosts[h].paused {
            NodeState::Paused
        } else {
            NodeState::Up
        }
    }

    /// Whether a service runs; clustered Exchange services run where their resource is online.
    pub fn service_running(&self, h: usize, s: &Service) -> bool {
        if matches!(self.hosts[h].power, Power::Down { .. }) {
            return false;
        }
        match (s.clustered, self.hosts[h].cluster) {
            (Some(kind), Some(c)) => {
                self.clussvc_running(h)
                    && self.clusters[c].groups.iter().any(|g| {
                        g.owner == h
                            && g.resources
                                .iter()
                                .any(|r| r.kind == kind && r.state == ResState::Online)
                    })
            }
            _ => s.running,
        }
    }

    /// The cluster, group index and resource index of resource `name` in cluster `c`.
    pub fn find_resource(&self, c: usize, name: &str) -> Option<(usize, usize)> {
        self.clusters[c]
            .groups
            .iter()
            .enumerate()
            .find_map(|(gi, g)| {
                g.resources
                    .iter()
                    .position(|r| r.name.eq_ignore_ascii_case(name))
                    .map(|ri| (gi, ri))
            })
    }

    pub fn find_group(&self, c: usize, name: &str) -> Option<usize> {
        self.clusters[c]
            .groups
            .iter()
            .position(|g| g.name.eq_ignore_ascii_case(name))
    }

    // ---- cluster rules ----

    /// Sets a resource's state without any check (`labctl res force`).
    pub fn force_res(&mut self, c: usize, g: usize, r: usize, state: ResState) {
        self.set_res(c, g, r, state);
    }

    fn set_res(&mut self, c: usize, g: usize, r: usize, state: ResState) {
        let (owner, name, kind, group, changed) = {
            let grp = &mut self.clusters[c].groups[g];
            let res = &mut grp.resources[r];
            let changed = res.state != state;
            res.state = state;
            (
                grp.owner,
                res.name.clone(),
                res.kind,
                grp.name.clone(),
                changed,
            )
        };
        if changed {
            self.record(
                Some(owner),
                RecordEvent::Resource {
                    resource: name,
                    group,
                    kind: kind.type_name().to_owned(),
                    node: self.hosts[owner].name.clone(),
                    state: state.word().to_owned(),
                },
            );
        }
    }

    /// Brings one resource online on its group's owner, with its dependencies. `Err(5038)` when
    /// it fails (T1: EVS older than the node; E3 step 12: EVS newer than the node).
    pub fn res_online(&mut self, c: usize, g: usize, r: usize) -> Result<(), u32> {
        let kind = self.clusters[c].groups[g].resources[r].kind;
        if self.clusters[c].groups[g].resources[r].state == ResState::Online {
            return Ok(());
        }
        if kind.is_exchange() {
            // Dependencies: the group's IP, name and disks; the System Attendant for the rest.
            let deps: Vec<usize> = self.clusters[c].groups[g]
                .resources
                .iter()
                .enumerate()
                .filter(|(_, x)| {
                    matches!(x.kind, ResKind::Ip | ResKind::NetName | ResKind::Disk)
                        || (kind != ResKind::Sa && x.kind == ResKind::Sa)
                })
                .map(|(i, _)| i)
                .collect();
            for d in deps {
                self.res_online(c, g, d)?;
            }
            let owner = self.clusters[c].groups[g].owner;
            let build = self.hosts[owner].build;
            let product = self.clusters[c].product;
            if let Some(evs) = self.clusters[c].groups[g].evs.clone() {
                match product {
                    Product::Exchange55 => {}
                    Product::Exchange2000 if evs.version < build => {
                        // The new store upgrades the databases as it mounts them (E2 procedures).
                        let group = self.clusters[c].groups[g].name.clone();
                        if let Some(e) = self.clusters[c].groups[g].evs.as_mut() {
                            e.version = build;
                        }
                        self.record(
                            Some(owner),
                            RecordEvent::EvsUpgraded {
                                group,
                                evs: evs.name.clone(),
                                version: build,
                            },
                        );
                    }
                    _ if evs.version < build => {
                        self.set_res(c, g, r, ResState::Failed);
                        self.log_event(
                            owner,
                            1025,
                            "MSExchangeCluster",
                            format!(
                                "The Exchange virtual server `{}` needs to be upgraded before coming online.",
                                evs.name
                            ),
                        );
                        return Err(5038);
                    }
                    _ if evs.version > build => {
                        self.set_res(c, g, r, ResState::Failed);
                        return Err(5038);
                    }
                    _ => {}
                }
            }
        } else if kind == ResKind::NetName {
            let ips: Vec<usize> = self.clusters[c].groups[g]
                .resources
                .iter()
                .enumerate()
                .filter(|(_, x)| x.kind == ResKind::Ip)
                .map(|(i, _)| i)
                .collect();
            for d in ips {
                self.res_online(c, g, d)?;
            }
        }
        self.set_res(c, g, r, ResState::Online);
        Ok(())
    }

    /// Takes one resource offline, its dependents first.
    pub fn res_offline(&mut self, c: usize, g: usize, r: usize) {
        let kind = self.clusters[c].groups[g].resources[r].kind;
        let mut dependents: Vec<(u8, usize)> = self.clusters[c].groups[g]
            .resources
            .iter()
            .enumerate()
            .filter(|(i, x)| {
                *i != r
                    && match kind {
                        ResKind::Sa => x.kind.is_exchange(),
                        ResKind::Ip => x.kind.is_exchange() || x.kind == ResKind::NetName,
                        ResKind::NetName | ResKind::Disk => x.kind.is_exchange(),
                        _ => false,
                    }
            })
            .map(|(i, x)| {
                let rank = match x.kind {
                    ResKind::Sa => 1,
                    ResKind::NetName => 2,
                    _ => 0,
                };
                (rank, i)
            })
            .collect();
        dependents.sort();
        for (_, d) in dependents {
            self.set_res(c, g, d, ResState::Offline);
        }
        self.set_res(c, g, r, ResState::Offline);
    }

    /// Brings every resource of a group online (base resources first).
    pub fn group_online(&mut self, c: usize, g: usize) -> Result<(), u32> {
        let mut result = Ok(());
        let n = self.clusters[c].groups[g].resources.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| self.clusters[c].groups[g].resources[i].kind.is_exchange());
        for r in order {
            if let Err(e) = self.res_online(c, g, r) {
                result = Err(e);
            }
        }
        result
    }

    /// Takes every resource of a group offline (Exchange resources first).
    pub fn group_offline(&mut self, c: usize, g: usize) {
        let n = self.clusters[c].groups[g].resources.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| !self.clusters[c].groups[g].resources[i].kind.is_exchange());
        for r in order {
            self.res_offline(c, g, r);
        }
    }

    /// Gives group `g` to node `to`: resources that were online (or failed) come online there.
    pub fn relocate(&mut self, c: usize, g: usize, to: usize, cause: &str) -> Result<(), u32> {
        let from = self.clusters[c].groups[g].owner;
        let wanted: Vec<usize> = self.clusters[c].groups[g]
            .resources
            .iter()
            .enumerate()
            .filter(|(_, r)| r.state != ResState::Offline)
            .map(|(i, _)| i)
            .collect();
        // Offline on the old node (recorded), then the owner changes, then online again.
        let mut order = wanted.clone();
        order.sort_by_key(|&i| !self.clusters[c].groups[g].resources[i].kind.is_exchange());
        for &r in &order {
            self.set_res(c, g, r, ResState::Offline);
        }
        self.clusters[c].groups[g].owner = to;
        let group = self.clusters[c].groups[g].name.clone();
        self.record(
            Some(to),
            RecordEvent::GroupMoved {
                group,
                from: self.hosts[from].name.clone(),
                to: self.hosts[to].name.clone(),
                cause: cause.to_owned(),
            },
        );
        let mut order = wanted;
        order.sort_by_key(|&i| self.clusters[c].groups[g].resources[i].kind.is_exchange());
        let mut result = Ok(());
        for r in order {
            if let Err(e) = self.res_online(c, g, r) {
                result = Err(e);
            }
        }
        result
    }

    /// A node able to take groups over from `h`: the first other Up node, in inventory order.
    fn failover_target(&self, c: usize, h: usize) -> Option<usize> {
        self.clusters[c]
            .nodes
            .iter()
            .copied()
            .find(|&n| n != h && self.node_state(n) == NodeState::Up)
    }

    /// Stops the Cluster service of `h`: its groups fail over to another Up node.
    pub fn stop_clussvc(&mut self, h: usize) {
        let Some(c) = self.hosts[h].cluster else {
            return;
        };
        let was = self.clussvc_running(h);
        if let Some(s) = self.service_mut(h, "ClusSvc") {
            s.running = false;
        }
        // Server 2008 R2 and later keep a suspended node suspended (in the cluster database)
        // across a stop of its Cluster service; older clusters forget the pause.
        if self.hosts[h].paused && !self.hosts[h].windows.has_cluster_cmdlets() {
            self.hosts[h].paused = false;
            self.record(Some(h), RecordEvent::NodePaused { paused: false });
        }
        if !was {
            return;
        }
        self.record(
            Some(h),
            RecordEvent::Service {
                name: "ClusSvc".to_owned(),
                state: "stopped".to_owned(),
            },
        );
        self.record(
            Some(h),
            RecordEvent::ClusterService {
                state: "down".to_owned(),
            },
        );
        let owned: Vec<usize> = (0..self.clusters[c].groups.len())
            .filter(|&g| self.clusters[c].groups[g].owner == h)
            .collect();
        for g in owned {
            match self.failover_target(c, h) {
                Some(to) => {
                    let _ = self.relocate(c, g, to, "failover");
                }
                None => tracing::debug!(
                    host = %self.hosts[h].name,
                    group = %self.clusters[c].groups[g].name,
                    "no node left to take the group over"
                ),
            }
        }
    }

    /// Starts the Cluster service of `h`; groups whose owner is down are taken over.
    pub fn start_clussvc(&mut self, h: usize) -> Result<(), ()> {
        let Some(c) = self.hosts[h].cluster else {
            return Err(());
        };
        if self.has_fault(h, |f| matches!(f, Fault::ClusterServiceFailsToStart)) {
            return Err(());
        }
        if self.clussvc_running(h) {
            return Ok(());
        }
        if let Some(s) = self.service_mut(h, "ClusSvc") {
            s.running = true;
        }
        self.record(
            Some(h),
            RecordEvent::Service {
                name: "ClusSvc".to_owned(),
                state: "running".to_owned(),
            },
        );
        self.record(
            Some(h),
            RecordEvent::ClusterService {
                state: "up".to_owned(),
            },
        );
        let orphans: Vec<usize> = (0..self.clusters[c].groups.len())
            .filter(|&g| {
                let o = self.clusters[c].groups[g].owner;
                o != h && !self.clussvc_running(o)
            })
            .collect();
        for g in orphans {
            let _ = self.relocate(c, g, h, "arbitrate");
        }
        Ok(())
    }

    // ---- reboots ----

    /// The host goes down: its Cluster service stops (groups fail over), processes end.
    pub fn go_down(&mut self, h: usize) {
        self.stop_clussvc(h);
        let node = &mut self.hosts[h];
        node.power = Power::Down { stuck: false };
        node.processes.clear();
        node.installing = 0;
        for s in &mut node.services {
            s.running = false;
        }
        self.record(Some(h), RecordEvent::RebootStarted);
    }

    /// The host finishes booting unless a fault holds it down. Returns whether it came up.
    pub fn finish_boot(&mut self, h: usize) -> bool {
        if self.has_fault(h, |f| matches!(f, Fault::RebootNeverReturns)) {
            self.hosts[h].power = Power::Down { stuck: true };
            return false;
        }
        let now = self.sim_now_ms();
        let node = &mut self.hosts[h];
        node.boot_epoch += 1;
        node.boot_ms = now.max(node.boot_ms + 1000);
        node.pending_reboot = false;
        node.power = Power::Up;
        if let Some(ubr) = node.pending_ubr.take() {
            node.os_build.revision = node.os_build.revision.max(ubr);
        }
        // A suspended node of Server 2008 R2 and later stays suspended across a restart
        // (Cluster-Aware Updating resumes it); older clusters forget the pause.
        let unpaused = node.paused && !node.windows.has_cluster_cmdlets();
        if unpaused {
            node.paused = false;
        }
        let mut clus = false;
        for s in &mut node.services {
            if s.start == StartType::Auto {
                if s.name == "ClusSvc" {
                    clus = true;
                } else {
                    s.running = true;
                }
            }
        }
        self.record(Some(h), RecordEvent::RebootFinished);
        if unpaused {
            self.record(Some(h), RecordEvent::NodePaused { paused: false });
        }
        if clus {
            let _ = self.start_clussvc(h);
        }
        true
    }
}

fn res(name: &str, kind: ResKind) -> Resource {
    Resource {
        name: name.to_owned(),
        kind,
        state: ResState::Online,
    }
}

impl Node {
    /// Starts a process with this image name; returns its pid.
    pub fn spawn_process(&mut self, image: &str) -> u32 {
        let pid = self.next_pid;
        self.next_pid += 4;
        self.processes.push((pid, image.to_ascii_lowercase()));
        pid
    }

    /// Ends one process with this image name.
    pub fn kill_process(&mut self, image: &str) -> bool {
        match self
            .processes
            .iter()
            .position(|(_, i)| i.eq_ignore_ascii_case(image))
        {
            Some(p) => {
                self.processes.remove(p);
                true
            }
            None => false,
        }
    }

    /// Whether a process with this image runs.
    pub fn runs(&self, image: &str) -> bool {
        self.processes
            .iter()
            .any(|(_, i)| i.eq_ignore_ascii_case(image))
    }
}
