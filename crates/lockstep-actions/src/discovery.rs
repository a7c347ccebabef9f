//! Reading the live fleet: [`discover`] (what a run reads before planning) and
//! [`discover_with`] (what `lockstep facts` reads) run the same [`BuiltinProbe`]s through the same
//! code; [`Discovery::differences`] is what blocks a run, [`Discovery::drift`] what `lockstep
//! facts` shows, [`Discovery::to_facts`] what the state store keeps.
//!
//! Each probe has one command line or query (in [`crate::render`]) and one parser (in
//! [`crate::parse`] / the node reads of `remote.rs`): nothing here formats a command.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use futures::stream::{self, StreamExt};

use lockstep_core::{
    Action, Edition, Fact, Fleet, HaltClass, Name, Plan, PreflightCheck, Transport, TransportError,
    Version,
};

use crate::gates::{edition_allowed, tier_order, TierOrder};
use crate::parse::{Disk, WindowsVersion, SERVICE_RUNNING};
use crate::remote::{get_ci, Node, ServiceState};
use crate::render::SC_QUERY_CLUSSVC;
use lockstep_core::StepError;

type NodeRead<'a> =
    Pin<Box<dyn Future<Output = (&'a Name, Result<NodeFacts, StepError>)> + Send + 'a>>;

/// Hosts read at once during discovery (a run's and `lockstep facts`'), under the transport's
/// own connection limits.
pub const DISCOVERY_CONCURRENCY: usize = 16;

/// One thing discovery can read from the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BuiltinProbe {
    /// Windows product name, version and build (`reg query` of `Windows NT\CurrentVersion`).
    Windows,
    /// Exchange build and edition (`reg query` of `Exchange\Setup`).
    Exchange,
    /// Whether the Cluster service runs (`sc query clussvc`), on cluster nodes.
    ClusterService,
    /// `LastBootUpTime` (WQL `Win32_OperatingSystem`).
    BootTime,
    /// Whether a restart is pending (`PendingFileRenameOperations`).
    PendingRestart,
    /// Free space of the local fixed disks (WQL `Win32_LogicalDisk`).
    FreeDisk,
    /// Installed hotfixes (WQL `Win32_QuickFixEngineering`).
    Hotfixes,
    /// The owner node of every cluster group (WQL `MSCluster_NodeToActiveGroup`), asked of a
    /// node whose Cluster service runs.
    Owners,
}

impl BuiltinProbe {
    /// Every built-in probe, in display order.
    pub const ALL: [BuiltinProbe; 8] = [
        BuiltinProbe::Windows,
        BuiltinProbe::Exchange,
        BuiltinProbe::ClusterService,
        BuiltinProbe::BootTime,
        BuiltinProbe::PendingRestart,
        BuiltinProbe::FreeDisk,
        BuiltinProbe::Hotfixes,
        BuiltinProbe::Owners,
    ];

    /// What a run reads before planning.
    pub const RUN: [BuiltinProbe; 4] = [
        BuiltinProbe::Exchange,
        BuiltinProbe::ClusterService,
        BuiltinProbe::BootTime,
        BuiltinProbe::Owners,
    ];

    /// The name `--probe` takes.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinProbe::Windows => "windows",
            BuiltinProbe::Exchange => "exchange",
            BuiltinProbe::ClusterService => "cluster-service",
            BuiltinProbe::BootTime => "boot-time",
            BuiltinProbe::PendingRestart => "pending-restart",
            BuiltinProbe::FreeDisk => "free-disk",
            BuiltinProbe::Hotfixes => "hotfixes",
            BuiltinProbe::Owners => "owners",
        }
    }

    /// The probe called `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<BuiltinProbe> {
        BuiltinProbe::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// Why a host could not be asked anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UnreachableKind {
    /// The connection was refused.
    Refused,
    /// No connection (no route, name not resolved, TLS failed).
    Network,
    /// The node rejected the credentials.
    Credentials,
    /// The node did not answer in time.
    Timeout,
    /// The connection broke while a command ran.
    Dropped,
    /// The node answered something WinRM does not allow.
    Protocol,
    /// The node refused: a WinRM quota of the account is exhausted.
    Quota,
    /// No connection settings or credentials for the host.
    Settings,
}

impl UnreachableKind {
    /// The kind of a transport failure.
    pub fn of(err: &TransportError) -> Self {
        match err {
            TransportError::Unreachable { detail, .. } => {
                let d = detail.to_ascii_lowercase();
                if d.contains("refused") {
                    UnreachableKind::Refused
                } else if d.contains("timed out") || d.contains("timeout") {
                    UnreachableKind::Timeout
                } else {
                    UnreachableKind::Network
                }
            }
            TransportError::AuthRejected { .. } => UnreachableKind::Credentials,
            TransportError::TimedOut { .. } => UnreachableKind::Timeout,
            TransportError::Interrupted { .. } => UnreachableKind::Dropped,
            TransportError::Protocol { .. } => UnreachableKind::Protocol,
            TransportError::Quota { .. } => UnreachableKind::Quota,
            TransportError::Config { .. } => UnreachableKind::Settings,
        }
    }

    /// One word for tables (`refused`, `credentials`, `timeout`...).
    pub fn as_str(self) -> &'static str {
        match self {
            UnreachableKind::Refused => "refused",
            UnreachableKind::Network => "network",
            UnreachableKind::Credentials => "credentials",
            UnreachableKind::Timeout => "timeout",
            UnreachableKind::Dropped => "dropped",
            UnreachableKind::Protocol => "protocol",
            UnreachableKind::Quota => "quota",
            UnreachableKind::Settings => "settings",
        }
    }
}

/// What one node reported. A field is `None` when its probe was not asked or could not be read
/// (then `unread` says why).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeFacts {
    /// Installed Exchange build (registry), if it could be read.
    pub build: Option<Version>,
    /// Installed edition (registry), if the key names one.
    pub edition: Option<Edition>,
    /// Whether the Cluster service runs (`sc query clussvc` state 4); `None` for hosts that are
    /// not cluster nodes in the inventory.
    pub cluster_service: Option<bool>,
    /// `LastBootUpTime` (CIM datetime).
    pub boot_time: Option<String>,
    /// Windows product, version and build.
    pub windows: Option<WindowsVersion>,
    /// Whether a restart is pending.
    pub pending_restart: Option<bool>,
    /// Local fixed disks.
    pub disks: Option<Vec<Disk>>,
    /// Installed hotfix ids, sorted.
    pub hotfixes: Option<Vec<String>>,
    /// Probe name -> why the node's answer could not be read (the node itself answered).
    pub unread: BTreeMap<String, String>,
}

/// The live state of the discovered hosts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Discovery {
    /// Host name (as in the inventory) -> what it reported.
    pub nodes: BTreeMap<String, NodeFacts>,
    /// `CLUSTER/GROUP` (group name as the cluster reports it) -> owner node. Keyed by cluster:
    /// every cluster has its own `Cluster Group`.
    pub owners: BTreeMap<String, String>,
    /// Hosts (or clusters, when no node could answer for them) that could not be read, with why.
    pub unreachable: Vec<(String, String)>,
    /// The hosts of `unreachable` that could not be asked at all, by kind of failure.
    pub unreachable_kinds: BTreeMap<String, UnreachableKind>,
    /// Cluster name -> whether a Distributed Transaction Coordinator resource is online (T2),
    /// read with the owners (absent when the resources could not be read).
    pub dtc_online: BTreeMap<String, bool>,
}

/// What a run reads before planning ([`BuiltinProbe::RUN`]): every host of `hosts` (registry
/// build and edition, Cluster service state for cluster nodes, boot time), at most
/// [`DISCOVERY_CONCURRENCY`] hosts at once, then the group owners of every cluster they belong
/// to, asked of a node whose Cluster service runs. A host that fails, or shows no Exchange build
/// or no Cluster service state, is listed in `unreachable` and the rest go on; discovery itself
/// never fails.
pub async fn discover(t: &dyn Transport, fleet: &Fleet, hosts: &[Name]) -> Discovery {
    read(t, fleet, hosts, &BuiltinProbe::RUN, true).await
}

/// What `lockstep facts` reads: the `probes` of every host of `hosts`, with the same code,
/// concurrency and order as [`discover`]. Only a host that cannot be asked at all (refused,
/// credentials, timeout...) is unreachable; a probe whose answer cannot be read is noted in the
/// host's `unread` and the other probes go on.
pub async fn discover_with(
    t: &dyn Transport,
    fleet: &Fleet,
    hosts: &[Name],
    probes: &[BuiltinProbe],
) -> Discovery {
    read(t, fleet, hosts, probes, false).await
}

async fn read(
    t: &dyn Transport,
    fleet: &Fleet,
    hosts: &[Name],
    probes: &[BuiltinProbe],
    strict: bool,
) -> Discovery {
    let mut d = Discovery::default();
    let mut clusters: Vec<Name> = Vec::new();
    for host in hosts {
        if let Some(c) = fleet.host(host.as_str()).and_then(|h| h.cluster.clone()) {
            if !clusters.contains(&c) {
                clusters.push(c);
            }
        }
    }
    // Hosts are read concurrently (bounded), results kept in `hosts` order.
    // Boxed as `Send` futures: the engine may run discovery on a multi-threaded runtime (a
    // closure-built stream would not be provably `Send` across its lifetimes).
    let reads: Vec<NodeRead<'_>> = hosts
        .iter()
        .map(|host| {
            let inv = fleet.host(host.as_str());
            let is_node = inv.is_some_and(|h| h.cluster.is_some());
            // A host the inventory gives no Exchange (a plain Windows server) is not asked for
            // an Exchange build it cannot show.
            let exchange = inv.is_none_or(|h| h.exchange.is_some());
            let kind = NodeKind { is_node, exchange };
            Box::pin(async move { (host, node_facts(t, host, kind, probes, strict).await) })
                as NodeRead<'_>
        })
        .collect();
    let results: Vec<(&Name, Result<NodeFacts, StepError>)> = stream::iter(reads)
        .buffered(DISCOVERY_CONCURRENCY)
        .collect()
        .await;
    for (host, r) in results {
        match r {
            Ok(f) => {
                d.nodes.insert(host.to_string(), f);
            }
            Err(e) => {
                tracing::warn!(host = %host, error = %e, "discovery failed");
                if let Some(te) = &e.transport {
                    d.unreachable_kinds
                        .insert(host.to_string(), UnreachableKind::of(te));
                }
                d.unreachable.push((host.to_string(), e.message));
            }
        }
    }
    if !probes.contains(&BuiltinProbe::Owners) {
        return d;
    }
    for cname in clusters {
        let Some(cluster) = fleet.cluster(cname.as_str()) else {
            continue;
        };
        // Only a node whose Cluster service runs answers root/MSCluster; prefer the nodes just
        // read as up, then any other node of the cluster.
        let mut candidates: Vec<&Name> = cluster
            .nodes
            .iter()
            .filter(|n| {
                d.nodes
                    .get(n.as_str())
                    .is_some_and(|f| f.cluster_service == Some(true))
            })
            .collect();
        candidates.extend(cluster.nodes.iter().filter(|n| {
            !d.nodes.contains_key(n.as_str()) && !d.unreachable.iter().any(|(h, _)| h == n.as_str())
        }));
        if !strict {
            // Nodes read without a Cluster service state (not asked) are worth a try too.
            candidates.extend(cluster.nodes.iter().filter(|n| {
                d.nodes
                    .get(n.as_str())
                    .is_some_and(|f| f.cluster_service.is_none())
            }));
        }
        let mut last_err = String::from("no node of the cluster has its Cluster service running");
        let mut found = false;
        for n in candidates {
            match Node::new(t, n).owners().await {
                Ok(o) => {
                    d.owners.extend(
                        o.into_iter()
                            .map(|(g, n)| (format!("{}/{g}", cluster.name), n)),
                    );
                    if strict {
                        if let Ok(res) = Node::new(t, n).all_resources().await {
                            let dtc = res.iter().any(|r| {
                                r.kind
                                    .eq_ignore_ascii_case("Distributed Transaction Coordinator")
                                    && r.is_online()
                            });
                            d.dtc_online.insert(cluster.name.to_string(), dtc);
                        }
                    }
                    found = true;
                    break;
                }
                Err(e) => last_err = e.message,
            }
        }
        if !found {
            d.unreachable.push((
                cluster.name.to_string(),
                format!(
                    "the group owners of cluster `{}` could not be read: {last_err}",
                    cluster.name
                ),
            ));
        }
    }
    d
}

/// Reads `probes` of one host. A transport failure is the host's error; any other failure is
/// the host's error when `strict` (a run's discovery: no Exchange build, no Cluster service
/// state), else a note in `unread`.
/// What the inventory says a host is, for the probes that apply to it.
#[derive(Debug, Clone, Copy)]
struct NodeKind {
    /// A failover cluster node.
    is_node: bool,
    /// Runs Exchange (or is not in the inventory).
    exchange: bool,
}

async fn node_facts(
    t: &dyn Transport,
    host: &Name,
    kind: NodeKind,
    probes: &[BuiltinProbe],
    strict: bool,
) -> Result<NodeFacts, StepError> {
    let NodeKind { is_node, exchange } = kind;
    let node = Node::new(t, host);
    let mut f = NodeFacts::default();
    // The last SOAP fault a probe got: the node answered, so it is a note unless every probe
    // got one.
    let mut fault: Option<StepError> = None;
    let mut note = |f: &mut NodeFacts, p: BuiltinProbe, e: StepError| -> Result<(), StepError> {
        let answered = matches!(
            e.transport.as_deref(),
            None | Some(TransportError::Protocol { .. } | TransportError::Quota { .. })
        );
        if !answered || (strict && p != BuiltinProbe::BootTime) {
            return Err(e);
        }
        f.unread.insert(p.name().to_owned(), e.message.clone());
        if e.transport.is_some() {
            fault = Some(e);
        }
        Ok(())
    };
    for &p in probes {
        match p {
            BuiltinProbe::Windows => match node.windows().await {
                Ok(w) => f.windows = Some(w),
                Err(e) => note(&mut f, p, e)?,
            },
            BuiltinProbe::Exchange if !exchange => {}
            BuiltinProbe::Exchange => match node.build().await {
                Ok(b) => {
                    f.build = Some(b.build);
                    f.edition = b.edition;
                }
                Err(e) => note(&mut f, p, e)?,
            },
            BuiltinProbe::ClusterService if is_node => {
                match node.service_state(SC_QUERY_CLUSSVC).await {
                    Ok(ServiceState::Missing) => f.cluster_service = Some(false),
                    Ok(ServiceState::State(s)) => f.cluster_service = Some(s == SERVICE_RUNNING),
                    Err(e) => note(&mut f, p, e)?,
                }
            }
            BuiltinProbe::ClusterService => {}
            BuiltinProbe::BootTime => match node.boot_time().await {
                Ok(b) => f.boot_time = Some(b),
                Err(e) => note(&mut f, p, e)?,
            },
            BuiltinProbe::PendingRestart => match node.pending_reboot().await {
                Ok(b) => f.pending_restart = Some(b),
                Err(e) => note(&mut f, p, e)?,
            },
            BuiltinProbe::FreeDisk => match node.fixed_disks().await {
                Ok(d) => f.disks = Some(d),
                Err(e) => note(&mut f, p, e)?,
            },
            BuiltinProbe::Hotfixes => match node.hotfixes().await {
                Ok(mut h) => {
                    h.sort();
                    h.dedup();
                    f.hotfixes = Some(h);
                }
                Err(e) => note(&mut f, p, e)?,
            },
            // Read per cluster once every host is in.
            BuiltinProbe::Owners => {}
        }
    }
    let asked = probes
        .iter()
        .filter(|p| match p {
            BuiltinProbe::Owners => false,
            BuiltinProbe::ClusterService => is_node,
            BuiltinProbe::Exchange => exchange,
            _ => true,
        })
        .count();
    match fault {
        // Every probe got a fault: the node is not usable, whatever it answered.
        Some(e) if asked > 0 && f.unread.len() == asked => Err(e),
        _ => Ok(f),
    }
}

/// How the inventory names a Windows release and the `major.minor` NT version it runs, where
/// that version identifies the release (`CurrentVersion` stays `6.3` from Windows 10 on).
/// Whether the node's build number belongs to release `r` (Server 2016 and later keep
/// `CurrentVersion` at 6.3, so the build number tells the releases apart).
fn runs_release(w: &crate::parse::WindowsVersion, r: lockstep_core::WindowsRelease) -> bool {
    let rtm = r.rtm_build();
    r.owns(lockstep_core::Version::new(
        rtm.major, rtm.minor, w.build, 0,
    ))
}

impl Discovery {
    /// Every halt of `plan` that this discovery already makes certain, one sentence each with
    /// its class, so that a run halts before its first change rather than after: the tier order
    /// (`tier-order`: a front-end below the target that the plan does not upgrade in an earlier
    /// stage) and the package's editions (E2-ED, for every host whose preflight checks it).
    /// Empty = nothing known stops the run. Hosts not read are in `unreachable`, not here.
    pub fn halts(&self, fleet: &Fleet, plan: &Plan) -> Vec<(HaltClass, String)> {
        let mut out = Vec::new();
        // One halt per requirement's shortfall; stages with the same shortfall are merged.
        type Merged = (TierOrder, Vec<Name>, Vec<(Name, Version)>);
        let mut tiers: Vec<Merged> = Vec::new();
        for req in tier_order(fleet, plan) {
            let build = |fe: &Name| Ok(get_ci(&self.nodes, fe.as_str()).and_then(|f| f.build));
            // Unread hosts are reported as unreachable already.
            let unread = |fe: &Name| self.unreachable.iter().any(|(h, _)| fe.eq_ignore_case(h));
            let skip = |fe: &Name| unread(fe) || req.upgraded_earlier(plan, fe);
            let (below, _) = req.shortfall(build, skip);
            if below.is_empty() {
                continue;
            }
            match tiers
                .iter_mut()
                .find(|(r, _, b)| r.rule == req.rule && r.target == req.target && *b == below)
            {
                Some((_, backs, _)) => backs.extend(req.back_ends.iter().cloned()),
                None => tiers.push((req.clone(), req.back_ends.clone(), below)),
            }
        }
        for (req, backs, below) in tiers {
            out.extend(req.halt(&backs, &below, &[]));
        }
        // T2: an EVS upgrade needs a Distributed Transaction Coordinator resource online; no
        // step of a run brings one online, so a cluster without one halts before any change.
        let mut t2: Vec<&Name> = Vec::new();
        for step in &plan.steps {
            let (Action::UpgradeVirtualServer { .. }, Some(c)) = (&step.action, &step.cluster)
            else {
                continue;
            };
            if t2.contains(&c) {
                continue;
            }
            t2.push(c);
            if get_ci(&self.dtc_online, c.as_str()) == Some(&false) {
                out.push((
                    HaltClass::Precondition,
                    format!(
                        "T2: cluster `{c}` has no Distributed Transaction Coordinator resource online, which \"Upgrade Exchange Virtual Server\" needs (bring it online in Cluster Administrator, then `lockstep resume`)"
                    ),
                ));
            }
        }
        let mut seen: Vec<&Name> = Vec::new();
        for step in &plan.steps {
            let Action::Preflight {
                checks, editions, ..
            } = &step.action
            else {
                continue;
            };
            if !checks.contains(&PreflightCheck::EditionMatches) || seen.contains(&&step.host) {
                continue;
            }
            seen.push(&step.host);
            let live = get_ci(&self.nodes, step.host.as_str()).and_then(|f| f.edition);
            let inventory = fleet.host(step.host.as_str()).and_then(|h| h.edition());
            let Some(e) = live.or(inventory) else {
                continue;
            };
            if !edition_allowed(e, editions) {
                let wanted = if editions.is_empty() {
                    "every edition but Conferencing".to_owned()
                } else {
                    editions
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                out.push((
                    HaltClass::VersionMismatch,
                    format!(
                        "{}: host `{}` runs the {e} edition; the package is for {wanted}. `resume` cannot fix this: the host needs its own package (a playbook whose target editions include {e}), or leave it out with --limit",
                        step.rule, step.host
                    ),
                ));
            }
        }
        out
    }

    /// Where the live fleet disagrees with the inventory, one sentence each, for the hosts in
    /// `hosts` and their clusters: product line, edition, an installed build OLDER than the
    /// inventory gives (newer is progress), every cluster group and EVS group the inventory lists
    /// existing, and an active/passive cluster keeping a passive node. Live owners are planning
    /// input, not differences. Hosts that could not be read are not differences (they are in
    /// `unreachable`). Empty = agree.
    pub fn differences(&self, fleet: &Fleet, hosts: &[Name]) -> Vec<String> {
        let mut out = Vec::new();
        let mut clusters: Vec<&Name> = Vec::new();
        for host in hosts {
            let Some(inv) = fleet.host(host.as_str()) else {
                out.push(format!("host `{host}` is not in the inventory"));
                continue;
            };
            if let Some(c) = &inv.cluster {
                if !clusters.contains(&c) {
                    clusters.push(c);
                }
            }
            let Some(live) = self.nodes.get(host.as_str()) else {
                continue;
            };
            let Some(x) = &inv.exchange else {
                continue;
            };
            if let Some(b) = live.build {
                if !x.product.owns(b) {
                    out.push(format!(
                        "host `{host}`: the inventory says {}, the node runs build {b}",
                        x.product
                    ));
                } else if let Some(ib) = x.build {
                    // Newer than the inventory says is progress (an earlier run, a manual
                    // install): the probes skip what is done. Older means the inventory is wrong.
                    if b < ib {
                        out.push(format!(
                            "host `{host}`: the inventory says build {ib}, the node runs the older {b} ({})",
                            x.product.describe(b)
                        ));
                    }
                }
            }
            if let Some(e) = live.edition {
                if e != x.edition {
                    out.push(format!(
                        "host `{host}`: the inventory says edition {}, the node runs {e}",
                        x.edition
                    ));
                }
            }
        }
        for cname in clusters {
            let Some(c) = fleet.cluster(cname.as_str()) else {
                continue;
            };
            if self
                .unreachable
                .iter()
                .any(|(h, _)| c.name.eq_ignore_case(h))
            {
                continue; // owners unknown: already reported as unreachable
            }
            // Owners themselves are a planning input taken live (groups fail over); what must
            // agree is that every group exists and, on an active/passive cluster (N+1 included:
            // at least one passive node), that some node hosts no Exchange virtual server.
            let live_owner = |group: &Name| self.owner(&c.name, group);
            let groups =
                std::iter::once(&c.cluster_group).chain(c.virtual_servers.iter().map(|v| &v.group));
            for group in groups {
                if live_owner(group).is_none() {
                    out.push(format!(
                        "cluster `{}`: group `{group}` was not found on the cluster",
                        c.name
                    ));
                }
            }
            if c.mode == lockstep_core::ClusterMode::ActivePassive {
                let mut evs_nodes: Vec<String> = c
                    .virtual_servers
                    .iter()
                    .filter_map(|v| live_owner(&v.group))
                    .map(|n| n.to_ascii_uppercase())
                    .collect();
                evs_nodes.sort();
                evs_nodes.dedup();
                if !c.nodes.is_empty() && evs_nodes.len() >= c.nodes.len() {
                    out.push(format!(
                        "cluster `{}`: the inventory says active/passive, but every node hosts an Exchange virtual server ({}): no node is passive",
                        c.name,
                        evs_nodes.join(", ")
                    ));
                }
            }
        }
        out
    }

    /// The live owner of `group` of `cluster`.
    pub fn owner(&self, cluster: &Name, group: &Name) -> Option<String> {
        get_ci(&self.owners, &format!("{cluster}/{group}")).cloned()
    }

    /// Everything the live fleet shows that the inventory says otherwise, for a person reading
    /// `lockstep facts`: keyed by host (build, product line, edition, Windows version) and by
    /// cluster (group owners, missing groups). Unlike [`Discovery::differences`], a build newer
    /// than the inventory's and a group owned by another node are listed too: they block
    /// nothing, but the inventory is out of date.
    pub fn drift(&self, fleet: &Fleet, hosts: &[Name]) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut clusters: Vec<&Name> = Vec::new();
        for host in hosts {
            let Some(inv) = fleet.host(host.as_str()) else {
                continue;
            };
            if let Some(c) = &inv.cluster {
                if !clusters.contains(&c) {
                    clusters.push(c);
                }
            }
            let Some(live) = self.nodes.get(host.as_str()) else {
                continue;
            };
            let mut items = Vec::new();
            if let (Some(b), Some(x)) = (live.build, &inv.exchange) {
                if !x.product.owns(b) {
                    items.push(format!("inventory says {}, node runs build {b}", x.product));
                } else if let Some(ib) = x.build.filter(|ib| *ib != b) {
                    let how = if b > ib { "newer" } else { "older" };
                    items.push(format!(
                        "inventory says build {ib}, node runs the {how} {b} ({})",
                        x.product.describe(b)
                    ));
                }
            }
            if let (Some(e), Some(x)) = (live.edition, &inv.exchange) {
                if e != x.edition {
                    items.push(format!(
                        "inventory says edition {}, node runs {e}",
                        x.edition
                    ));
                }
            }
            if let (Some(w), Some(r)) = (&live.windows, inv.windows) {
                if !runs_release(w, r) {
                    let rtm = r.rtm_build();
                    items.push(format!(
                        "inventory says {r} (build {}), node runs {} ({})",
                        rtm.build,
                        w.full(),
                        w.product.as_deref().unwrap_or("unnamed")
                    ));
                }
            }
            if !items.is_empty() {
                out.insert(inv.name.to_string(), items);
            }
        }
        for cname in clusters {
            let Some(c) = fleet.cluster(cname.as_str()) else {
                continue;
            };
            if !self.owners.keys().any(|k| {
                k.split_once('/')
                    .is_some_and(|(cl, _)| c.name.eq_ignore_case(cl))
            }) {
                continue; // owners not read
            }
            let mut items = Vec::new();
            let expected = std::iter::once((&c.cluster_group, &c.cluster_group_owner))
                .chain(c.virtual_servers.iter().map(|v| (&v.group, &v.owner)));
            for (group, owner) in expected {
                match self.owner(&c.name, group) {
                    None => items.push(format!("group `{group}` was not found on the cluster")),
                    Some(live) if !owner.eq_ignore_case(&live) => items.push(format!(
                        "group `{group}`: inventory says owner {owner}, live owner {live}"
                    )),
                    Some(_) => {}
                }
            }
            if !items.is_empty() {
                out.insert(c.name.to_string(), items);
            }
        }
        out
    }

    /// The facts as the state store keeps them, read at `at_ms`: per host `windows.product`,
    /// `windows.version`, `exchange.build`, `exchange.edition`, `cluster.service`
    /// (`running`/`stopped`), `boot.time`, `reboot.pending` (`true`/`false`),
    /// `disk.<C:>.free_bytes`, `disk.<C:>.size_bytes`, `hotfixes` (comma-separated),
    /// `unread.<probe>`; per cluster `group.<G>.owner`; `unreachable` (`kind: why`) for hosts
    /// and clusters that could not be read.
    pub fn to_facts(&self, fleet: &Fleet, at_ms: u64) -> Vec<Fact> {
        let mut out = Vec::new();
        let mut push = |host: &Name, key: String, value: String| {
            out.push(Fact {
                host: host.clone(),
                key,
                value,
                at_ms,
            })
        };
        let name_of = |s: &str| -> Option<Name> {
            fleet
                .host(s)
                .map(|h| h.name.clone())
                .or_else(|| fleet.cluster(s).map(|c| c.name.clone()))
        };
        for (host, f) in &self.nodes {
            let Some(h) = name_of(host) else { continue };
            if let Some(w) = &f.windows {
                if let Some(p) = &w.product {
                    push(&h, "windows.product".into(), p.clone());
                }
                push(&h, "windows.version".into(), w.full());
            }
            if let Some(b) = f.build {
                push(&h, "exchange.build".into(), b.to_string());
            }
            if let Some(e) = f.edition {
                push(&h, "exchange.edition".into(), e.to_string());
            }
            if let Some(c) = f.cluster_service {
                let v = if c { "running" } else { "stopped" };
                push(&h, "cluster.service".into(), v.into());
            }
            if let Some(b) = &f.boot_time {
                push(&h, "boot.time".into(), b.clone());
            }
            if let Some(p) = f.pending_restart {
                push(&h, "reboot.pending".into(), p.to_string());
            }
            for d in f.disks.iter().flatten() {
                push(
                    &h,
                    format!("disk.{}.free_bytes", d.device),
                    d.free_bytes.to_string(),
                );
                if let Some(s) = d.size_bytes {
                    push(&h, format!("disk.{}.size_bytes", d.device), s.to_string());
                }
            }
            if let Some(hf) = &f.hotfixes {
                push(&h, "hotfixes".into(), hf.join(","));
            }
            for (probe, why) in &f.unread {
                push(&h, format!("unread.{probe}"), why.clone());
            }
        }
        for (key, owner) in &self.owners {
            let Some((cluster, group)) = key.split_once('/') else {
                continue;
            };
            let Some(c) = name_of(cluster) else { continue };
            push(&c, format!("group.{group}.owner"), owner.clone());
        }
        for (host, why) in &self.unreachable {
            let Some(h) = name_of(host) else { continue };
            let kind = self
                .unreachable_kinds
                .get(host)
                .map_or("unreadable", |k| k.as_str());
            push(&h, "unreachable".into(), format!("{kind}: {why}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_kinds_from_transport_failures() {
        let h = Name::host("PRG-N1").unwrap();
        let unreachable = |d: &str| TransportError::Unreachable {
            host: h.clone(),
            detail: d.into(),
        };
        let kind = |e: &TransportError| UnreachableKind::of(e).as_str();
        assert_eq!(
            kind(&unreachable(
                "tcp connect error: Connection refused (os error 111)"
            )),
            "refused"
        );
        assert_eq!(kind(&unreachable("operation timed out")), "timeout");
        assert_eq!(kind(&unreachable("dns error: no such host")), "network");
        let auth = TransportError::AuthRejected {
            host: h.clone(),
            user: "u".into(),
        };
        assert_eq!(kind(&auth), "credentials");
        let slow = TransportError::TimedOut {
            host: h.clone(),
            secs: 120,
        };
        assert_eq!(kind(&slow), "timeout");
        let cut = TransportError::Interrupted {
            host: h,
            detail: "reset".into(),
        };
        assert_eq!(kind(&cut), "dropped");
        for p in BuiltinProbe::ALL {
            assert_eq!(BuiltinProbe::from_name(&p.name().to_uppercase()), Some(p));
        }
        assert_eq!(BuiltinProbe::from_name("disk"), None);
    }
}
