//! From an Ansible inventory to Lockstep's [`Fleet`]: Windows hosts (with or without Exchange),
//! sites, clusters, pools, WinRM connections.
//!
//! A host is in the fleet when it is a Windows host Lockstep reaches: its merged variables say
//! `ansible_connection: winrm`, or set `windows_release`/`windows_build`, or `exchange_version`
//! (then it is also an Exchange server). Other hosts (Linux machines, network gear, `localhost`)
//! are left out of the fleet and of `Fleet::groups`, but they are still read and checked like
//! Ansible would, and are listed by [`crate::load_ansible_inventory`]. A plain Windows host in
//! no site group joins the implicit site [`DEFAULT_SITE`] (locale en-US); an Exchange host must
//! name its site.

use std::collections::{BTreeMap, BTreeSet};

use lockstep_core::{
    Auth, Cluster, ClusterGroup, ClusterMode, Connection, Edition, Exchange, Fleet, FrontEndScope,
    GroupKind, Host, Locale, Name, NameKind, Pool, Product, Role, Scheme, SecretSource, Site,
    Version, VirtualServer, WindowsRelease,
};

use crate::ansible::{env_lookup, read_raw, FastMap, MergedVar, MergedVars, Raw, PASSWORD_VARS};
use crate::diag::{hint, q, Diagnostics, Pos, Sink, SourceFile};
use crate::tree::Node;

/// Builds a [`Fleet`] from inventory files; one instance per load.
pub(crate) struct InventoryLoader<'a> {
    raw: &'a Raw,
    sink: &'a mut Sink,
    /// Each group's name, validated once (not once per host).
    group_names: FastMap<&'a str, Name>,
}

/// A site group; `site` is `None` when its `lockstep_site` was invalid (already reported), so its
/// hosts are not reported again as site-less.
struct SiteDef {
    site: Option<Site>,
}

struct ClusterDef {
    group: String,
    pos: Pos,
    node: Node,
}

struct PoolDef {
    name: Name,
    pos: Pos,
}

/// Loads inventory files into a validated fleet, collecting every error.
pub fn load_inventory(files: &[SourceFile]) -> Result<Fleet, Diagnostics> {
    let mut sink = Sink::default();
    let raw = read_raw(files, &mut sink);
    let fleet = InventoryLoader {
        raw: &raw,
        sink: &mut sink,
        group_names: raw
            .groups
            .keys()
            .filter_map(|g| Some((g.as_str(), Name::ident(g).ok()?)))
            .collect(),
    }
    .fleet();
    sink.finish(fleet)
}

pub(crate) fn scalar<'n>(node: &'n Node, what: &str, sink: &mut Sink) -> Option<&'n str> {
    match node.as_str() {
        Some(s) if !node.is_null() => Some(s),
        _ => {
            sink.error(
                &node.pos,
                format!(
                    "{} must be a single value, found {}",
                    q(what),
                    node.describe()
                ),
            );
            None
        }
    }
}

pub(crate) fn enum_value<T: Copy>(
    node: &Node,
    key: &str,
    choices: &[(&str, T)],
    sink: &mut Sink,
) -> Option<T> {
    let s = scalar(node, key, sink)?;
    if let Some((_, v)) = choices.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        return Some(*v);
    }
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    sink.error(
        &node.pos,
        format!(
            "{} is not a valid `{key}` (expected {}){}",
            q(s),
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            hint(s, &names)
        ),
    );
    None
}

pub(crate) fn name_at(kind: NameKind, node: &Node, what: &str, sink: &mut Sink) -> Option<Name> {
    let s = scalar(node, what, sink)?;
    match Name::new(kind, s) {
        Ok(n) => Some(n),
        Err(e) => {
            sink.error(&node.pos, format!("{what}: {e}"));
            None
        }
    }
}

pub(crate) fn version_at(
    node: &Node,
    what: &str,
    product: Option<Product>,
    sink: &mut Sink,
) -> Option<Version> {
    let s = scalar(node, what, sink)?;
    match s.parse::<Version>() {
        Ok(v) => {
            if let Some(p) = product {
                if !p.owns(v) {
                    sink.error(
                        &node.pos,
                        format!(
                            "{what} {} is not an {p} build (those start with `{}.{}.`)",
                            q(s),
                            p.rtm().major,
                            p.rtm().minor
                        ),
                    );
                    return None;
                }
            }
            Some(v)
        }
        Err(e) => {
            sink.error(&node.pos, format!("{what}: {e}"));
            None
        }
    }
}

/// Checks a mapping's keys against `known`; returns false if it is not a mapping.
pub(crate) fn check_keys(node: &Node, what: &str, known: &[&str], sink: &mut Sink) -> bool {
    let Some(entries) = node.as_map() else {
        sink.error(
            &node.pos,
            format!("{what} must be a mapping, found {}", node.describe()),
        );
        return false;
    };
    for (k, _) in entries {
        let key = k.as_str().unwrap_or("");
        if !known.contains(&key) {
            sink.error(
                &k.pos,
                format!(
                    "unknown key {} in {what} (expected {}){}",
                    q(key),
                    known
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    hint(key, known)
                ),
            );
        }
    }
    true
}

pub(crate) const PRODUCTS: &[(&str, Product)] = &[
    ("5.5", Product::Exchange55),
    ("2000", Product::Exchange2000),
    ("2003", Product::Exchange2003),
];
pub(crate) const ROLES: &[(&str, Role)] = &[
    ("front-end", Role::FrontEnd),
    ("back-end", Role::BackEnd),
    ("standalone", Role::Standalone),
    ("sbs", Role::Sbs),
];
pub(crate) const EDITIONS: &[(&str, Edition)] = &[
    ("standard", Edition::Standard),
    ("enterprise", Edition::Enterprise),
    ("conferencing", Edition::Conferencing),
    ("small-business", Edition::SmallBusiness),
];
const EXCHANGE_VARS: &[&str] = &["exchange_role", "exchange_edition", "exchange_build"];

/// The site of the plain Windows hosts that are in no site group.
pub const DEFAULT_SITE: &str = "default";

/// Whether a host is one of the fleet's: a Windows host Lockstep reaches over WinRM.
fn is_fleet_host(vars: &MergedVars<'_>) -> bool {
    ["exchange_version", "windows_release", "windows_build"]
        .iter()
        .any(|k| vars.contains_key(*k))
        || vars
            .get("ansible_connection")
            .is_some_and(|c| c.var.value.as_str() == Some("winrm"))
}

/// The Windows release and OS build of a host, from `windows_release` and `windows_build`, each
/// inferring the other; an Exchange host with neither runs its product's usual release. The
/// flag is false when an error was reported.
fn windows_of(
    vars: &MergedVars<'_>,
    product: Option<Product>,
    sink: &mut Sink,
) -> (Option<WindowsRelease>, Option<Version>, bool) {
    let mut ok = true;
    let release = match vars.get("windows_release") {
        Some(v) => {
            let node = &v.var.value;
            match scalar(node, "windows_release", sink) {
                Some(s) => match WindowsRelease::from_tag(s) {
                    Some(r) => Some(r),
                    None => {
                        let tags: Vec<&str> = WindowsRelease::ALL.iter().map(|r| r.tag()).collect();
                        sink.error(
                            &node.pos,
                            format!(
                                "{} is not a valid `windows_release` (expected {}){}",
                                q(s),
                                tags.iter()
                                    .map(|t| format!("`{t}`"))
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                hint(s, &tags)
                            ),
                        );
                        ok = false;
                        None
                    }
                },
                None => {
                    ok = false;
                    None
                }
            }
        }
        None => None,
    };
    let build = match vars.get("windows_build") {
        Some(v) => {
            let b = version_at(&v.var.value, "windows_build", None, sink);
            ok &= b.is_some();
            b.map(|b| (b, v.var.value.pos.clone()))
        }
        None => None,
    };
    let release = match (release, &build) {
        (Some(r), Some((b, at))) if !r.owns(*b) => {
            let rtm = r.rtm_build();
            sink.error(
                at,
                format!(
                    "`windows_build` {} is not a build of {r} (those start with `{}.{}.{}.`)",
                    q(&b.to_string()),
                    rtm.major,
                    rtm.minor,
                    rtm.build
                ),
            );
            ok = false;
            Some(r)
        }
        (None, Some((b, at))) => match WindowsRelease::ALL.into_iter().find(|r| r.owns(*b)) {
            Some(r) => Some(r),
            None => {
                sink.error(
                    at,
                    format!(
                        "`windows_build` {} is the build of no Windows Server release from NT 4.0 to 2025",
                        q(&b.to_string())
                    ),
                );
                ok = false;
                None
            }
        },
        (r, _) => r,
    };
    let release = release.or_else(|| {
        product.map(|p| match p {
            Product::Exchange2003 => WindowsRelease::Windows2003,
            Product::Exchange2000 => WindowsRelease::Windows2000,
            Product::Exchange55 => WindowsRelease::Nt4,
        })
    });
    (release, build.map(|(b, _)| b), ok)
}

/// The computer name of an inventory host. An inventory may name a host by its DNS name: the
/// computer is its first label; an address is refused.
fn computer_name(name: &str, pos: &Pos, sink: &mut Sink) -> Option<Name> {
    let mut labels = name.split('.');
    let computer = labels.next().unwrap_or(name);
    // Every label of a DNS name is a host label (the domain may reach a URL, never a shell).
    let refusal = if name.parse::<std::net::IpAddr>().is_ok() {
        format!(
            "host {} is named by its address; name it by its computer name and put the address in `ansible_host`",
            q(name)
        )
    } else {
        match (
            Name::host(computer),
            labels.find_map(|l| Name::host(l).err()),
        ) {
            (Ok(n), None) => return Some(n),
            (Ok(_), Some(e)) => format!("host {}: a label of its DNS name: {e}", q(name)),
            (Err(e), _) => format!(
                "host {}: {e} (a computer name; put the DNS name in `ansible_host`)",
                q(name)
            ),
        }
    };
    sink.error(pos, refusal);
    None
}

/// The one site group among the host's groups; a host without Exchange may be in none (the default
/// site).
fn site_of(
    name: &str,
    pos: &Pos,
    no_exchange: bool,
    my_groups: &[&str],
    sites: &BTreeMap<String, SiteDef>,
    sink: &mut Sink,
) -> Option<Name> {
    let my_sites: Vec<(&str, &SiteDef)> = my_groups
        .iter()
        .filter_map(|g| sites.get(*g).map(|s| (*g, s)))
        .collect();
    match my_sites.as_slice() {
        [] if no_exchange => Name::ident(DEFAULT_SITE).ok(),
        [] => {
            sink.error(
                pos,
                format!(
                    "Exchange host {} is in no site group (a group with `lockstep_site`)",
                    q(name)
                ),
            );
            None
        }
        [(_, s)] => s.site.as_ref().map(|s| s.name.clone()),
        [(a, _), (b, _), ..] => {
            sink.error(
                pos,
                format!("host {} is in two sites, {} and {}", q(name), q(a), q(b)),
            );
            None
        }
    }
}

/// The one cluster whose group lists the host, if any.
fn cluster_of(
    name: &str,
    pos: &Pos,
    my_groups: &[&str],
    clusters: &FastMap<&str, &ClusterDef>,
    sink: &mut Sink,
) -> Option<Name> {
    let my_clusters: Vec<&ClusterDef> = my_groups
        .iter()
        .filter_map(|g| clusters.get(g).copied())
        .collect();
    match my_clusters.as_slice() {
        [] => None,
        [c] => c
            .node
            .get("name")
            .and_then(Node::as_str)
            .and_then(|s| Name::object(s).ok()),
        [a, b, ..] => {
            sink.error(
                pos,
                format!(
                    "host {} is a node of two clusters (groups {} and {})",
                    q(name),
                    q(&a.group),
                    q(&b.group)
                ),
            );
            None
        }
    }
}

/// The one pool whose group lists the host, if any.
fn pool_of(
    name: &str,
    pos: &Pos,
    my_groups: &[&str],
    pools: &BTreeMap<String, PoolDef>,
    sink: &mut Sink,
) -> Option<Name> {
    let my_pools: Vec<(&str, &PoolDef)> = my_groups
        .iter()
        .filter_map(|g| pools.get(*g).map(|p| (*g, p)))
        .collect();
    match my_pools.as_slice() {
        [] => None,
        [(_, p)] => Some(p.name.clone()),
        [(a, _), (b, _), ..] => {
            sink.error(
                pos,
                format!(
                    "host {} is in two pools (groups {} and {})",
                    q(name),
                    q(a),
                    q(b)
                ),
            );
            None
        }
    }
}

/// The address Lockstep connects to (`ansible_host`, else the inventory name); refuses a
/// connection other than WinRM.
fn winrm_address(name: &str, vars: &MergedVars<'_>, sink: &mut Sink, ok: &mut bool) -> String {
    let get = |k: &str| vars.get(k).map(|v| &v.var.value);
    if let Some(c) = get("ansible_connection") {
        if c.as_str() != Some("winrm") {
            sink.error(
                &c.pos,
                format!(
                    "`ansible_connection` of Windows host {} is {}; Lockstep talks `winrm` only",
                    q(name),
                    q(&c.to_text())
                ),
            );
            *ok = false;
        }
    }
    match get("ansible_host") {
        Some(a) => {
            let s = scalar(a, "ansible_host", sink).unwrap_or("").to_owned();
            let valid = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'));
            if !valid {
                sink.error(
                    &a.pos,
                    format!("`ansible_host` {} is not a DNS name or IP address", q(&s)),
                );
                *ok = false;
            }
            s
        }
        None => name.to_owned(),
    }
}

/// `ansible_port`, when given.
fn winrm_port(vars: &MergedVars<'_>, sink: &mut Sink, ok: &mut bool) -> Option<u16> {
    let get = |k: &str| vars.get(k).map(|v| &v.var.value);
    match get("ansible_port") {
        Some(p) => match p
            .as_str()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|p| *p > 0)
        {
            Some(p) => Some(p),
            None => {
                sink.error(
                    &p.pos,
                    format!("`ansible_port` {} is not a TCP port", q(&p.to_text())),
                );
                *ok = false;
                None
            }
        },
        None => None,
    }
}

/// `ansible_winrm_transport` (NTLM when not given).
fn winrm_auth(vars: &MergedVars<'_>, sink: &mut Sink) -> Option<Auth> {
    let get = |k: &str| vars.get(k).map(|v| &v.var.value);
    match get("ansible_winrm_transport") {
        Some(t) => {
            let one = match t.as_seq() {
                Some([single]) => single,
                _ => t,
            };
            enum_value(
                one,
                "ansible_winrm_transport",
                &[
                    ("ntlm", Auth::Ntlm),
                    ("negotiate", Auth::Negotiate),
                    ("basic", Auth::Basic),
                    ("kerberos", Auth::Kerberos),
                    ("certificate", Auth::Certificate),
                ],
                sink,
            )
        }
        None => Some(Auth::Ntlm),
    }
}

/// `lockstep_codepage`, when given.
fn codepage(vars: &MergedVars<'_>, sink: &mut Sink, ok: &mut bool) -> Option<u32> {
    let get = |k: &str| vars.get(k).map(|v| &v.var.value);
    match get("lockstep_codepage") {
        Some(v) => match v
            .as_str()
            .and_then(|s| s.parse::<u32>().ok())
            .filter(|c| (1..=65535).contains(c))
        {
            Some(c) => Some(c),
            None => {
                sink.error(
                    &v.pos,
                    format!(
                        "`lockstep_codepage` {} is not a code page number",
                        q(&v.to_text())
                    ),
                );
                *ok = false;
                None
            }
        },
        None => None,
    }
}

/// Kerberos needs `ansible_user` as `user@REALM`.
fn check_kerberos_user(
    name: &str,
    pos: &Pos,
    vars: &MergedVars<'_>,
    user: Option<&str>,
    sink: &mut Sink,
    ok: &mut bool,
) {
    let get = |k: &str| vars.get(k).map(|v| &v.var.value);
    if let Some(u) = user.filter(|u| {
        u.split_once('@')
            .is_none_or(|(a, r)| a.is_empty() || r.is_empty())
    }) {
        let at = get("ansible_user")
            .or_else(|| get("ansible_winrm_user"))
            .map(|n| n.pos.clone())
            .unwrap_or(pos.clone());
        sink.error(
            &at,
            format!(
                "host {} uses Kerberos: `ansible_user` must be `user@REALM`, found {}",
                q(name),
                q(u)
            ),
        );
        *ok = false;
    }
}

/// Certificate authentication: HTTPS only, with both PEM files (read when connecting; the key is
/// never shown).
fn check_certificate_auth(
    name: &str,
    pos: &Pos,
    vars: &MergedVars<'_>,
    scheme: Option<Scheme>,
    sink: &mut Sink,
    ok: &mut bool,
) {
    let get = |k: &str| vars.get(k).map(|v| &v.var.value);
    let at = get("ansible_winrm_transport")
        .map(|n| n.pos.clone())
        .unwrap_or(pos.clone());
    if scheme == Some(Scheme::Http) {
        sink.error(
            &at,
            format!(
                "host {} uses certificate authentication, which works only over HTTPS; set `ansible_winrm_scheme: https`",
                q(name)
            ),
        );
        *ok = false;
    }
    for key in ["ansible_winrm_cert_pem", "ansible_winrm_cert_key_pem"] {
        match get(key) {
            Some(v) => {
                if scalar(v, key, sink).is_none() {
                    *ok = false;
                }
            }
            None => {
                sink.error(
                    &at,
                    format!(
                        "host {} uses certificate authentication but has no `{key}`",
                        q(name)
                    ),
                );
                *ok = false;
            }
        }
    }
}

/// The groups that give their hosts a role, found in one pass over the groups.
struct GroupRoles {
    sites: BTreeMap<String, SiteDef>,
    clusters: Vec<ClusterDef>,
    pools: BTreeMap<String, PoolDef>,
}

/// The valid sites, plus the default site when a host is in no site group, sorted by name.
fn sites_with_default(sites: BTreeMap<String, SiteDef>, hosts: &[(&str, Host)]) -> Vec<Site> {
    let mut out_sites: Vec<Site> = sites.into_values().filter_map(|d| d.site).collect();
    if hosts.iter().any(|(_, h)| h.site.as_str() == DEFAULT_SITE)
        && !out_sites.iter().any(|s| s.name.as_str() == DEFAULT_SITE)
    {
        out_sites.push(Site {
            name: Name::ident(DEFAULT_SITE).expect("a valid site name"),
            locale: Locale::EN_US,
            description: Some("Windows hosts in no site group".to_owned()),
            rollout_order: None,
        });
    }
    out_sites.sort_by(|a, b| a.name.cmp(&b.name));
    out_sites
}

impl<'a> InventoryLoader<'a> {
    fn fleet(&mut self) -> Fleet {
        let raw = self.raw;
        let all_vars = raw
            .groups
            .get("all")
            .map(|g| g.own_vars())
            .unwrap_or_default();
        let organisation = match all_vars.get("lockstep_organisation") {
            Some(v) => scalar(&v.value, "lockstep_organisation", self.sink)
                .unwrap_or_default()
                .to_owned(),
            None => String::new(),
        };
        let front_end_scope = match all_vars.get("lockstep_front_end_scope") {
            Some(v) => enum_value(
                &v.value,
                "lockstep_front_end_scope",
                &[
                    ("organisation", FrontEndScope::Organisation),
                    ("site", FrontEndScope::Site),
                ],
                self.sink,
            )
            .unwrap_or_default(),
            None => FrontEndScope::default(),
        };

        let GroupRoles {
            sites,
            clusters,
            pools,
        } = self.group_roles();
        let hosts = self.hosts(&sites, &clusters, &pools);
        self.check_computer_names_unique(&hosts);
        // Inventory name (what groups list) to host.
        let by_inv: FastMap<&str, &Host> = hosts.iter().map(|(i, h)| (*i, h)).collect();
        let out_clusters = self.clusters(&clusters, &by_inv);
        let out_pools = self.pools(&pools, &hosts);
        let groups = self.groups(&hosts);
        let out_sites = sites_with_default(sites, &hosts);
        Fleet {
            organisation,
            sites: out_sites,
            hosts: hosts.into_iter().map(|(_, h)| h).collect(),
            clusters: out_clusters,
            pools: out_pools,
            groups,
            front_end_scope,
        }
    }

    /// Group roles: sites (`lockstep_site`), clusters (`lockstep_cluster`) and pools
    /// (`lockstep_pool`).
    fn group_roles(&mut self) -> GroupRoles {
        let raw = self.raw;
        let mut sites: BTreeMap<String, SiteDef> = BTreeMap::new();
        let mut clusters: Vec<ClusterDef> = Vec::new();
        let mut pools: BTreeMap<String, PoolDef> = BTreeMap::new();
        for (g, group) in &raw.groups {
            let own = group.own_vars();
            if let Some(v) = own.get("lockstep_site") {
                let site = self.site(g, &v.value);
                sites.insert(g.clone(), SiteDef { site });
            }
            if let Some(v) = own.get("lockstep_cluster") {
                clusters.push(ClusterDef {
                    group: g.clone(),
                    pos: v.key_pos.clone(),
                    node: v.value.clone(),
                });
            }
            if let Some(v) = own.get("lockstep_pool") {
                if check_keys(&v.value, "`lockstep_pool`", &["name"], self.sink) {
                    match v.value.get("name") {
                        Some(n) => {
                            if let Some(name) = name_at(NameKind::Ident, n, "pool name", self.sink)
                            {
                                pools.insert(
                                    g.clone(),
                                    PoolDef {
                                        name,
                                        pos: v.key_pos.clone(),
                                    },
                                );
                            }
                        }
                        None => self.sink.error(
                            &v.value.pos,
                            format!("`lockstep_pool` of group {} has no `name`", q(g)),
                        ),
                    }
                }
            }
        }
        GroupRoles {
            sites,
            clusters,
            pools,
        }
    }

    /// The fleet's hosts (those Lockstep reaches), sorted by computer name, each with its
    /// inventory name.
    fn hosts(
        &mut self,
        sites: &BTreeMap<String, SiteDef>,
        clusters: &[ClusterDef],
        pools: &BTreeMap<String, PoolDef>,
    ) -> Vec<(&'a str, Host)> {
        let raw = self.raw;
        let cluster_by_group: FastMap<&str, &ClusterDef> =
            clusters.iter().map(|c| (c.group.as_str(), c)).collect();
        let mut hosts: Vec<(&str, Host)> = Vec::new();
        let env = crate::hostvars::environment(raw);
        for name in &raw.host_order {
            let order = raw.merge_order(name);
            let mut vars = raw.merged_vars_in(name, &order, false);
            crate::hostvars::render_host_vars(&env, name, &order, &mut vars, self.sink);
            let version = vars.get("exchange_version");
            if version.is_none() {
                if let Some(k) = EXCHANGE_VARS.iter().find(|k| vars.contains_key(**k)) {
                    let v = &vars[*k];
                    self.sink.error(
                        &v.var.key_pos,
                        format!(
                            "host {} sets {} but no `exchange_version` (needed to make it an Exchange server)",
                            q(name),
                            q(k)
                        ),
                    );
                }
            }
            if !is_fleet_host(&vars) {
                continue;
            }
            let pos = raw.hosts[raw.host_index[name]].pos.clone();
            if let Some(h) = self.host(
                name,
                &order,
                &pos,
                version,
                &vars,
                sites,
                &cluster_by_group,
                pools,
            ) {
                hosts.push((name.as_str(), h));
            }
        }
        hosts.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        hosts
    }

    fn check_computer_names_unique(&mut self, hosts: &[(&str, Host)]) {
        let raw = self.raw;
        // Windows compares computer names without case: `PRG-N1` and `prg-n1` are one machine,
        // and so are `web01.example.com` and `WEB01.corp.example` (both `web01`).
        let mut seen: FastMap<String, &str> = FastMap::default();
        for (inv, h) in hosts {
            let key = h.name.as_str().to_ascii_uppercase();
            if let Some(first) = seen.insert(key, inv) {
                let pos = raw.hosts[raw.host_index[*inv]].pos.clone();
                let why = if first.eq_ignore_ascii_case(inv) {
                    "differ only in case; Windows treats them as one computer".to_owned()
                } else {
                    format!("are both the computer {}", q(h.name.as_str()))
                };
                self.sink
                    .error(&pos, format!("hosts {} and {} {why}", q(first), q(inv)));
            }
        }
    }

    /// The clusters, sorted by name; two clusters of one name (without case) are reported.
    fn clusters(&mut self, clusters: &[ClusterDef], by_inv: &FastMap<&str, &Host>) -> Vec<Cluster> {
        let mut out_clusters = Vec::new();
        for def in clusters {
            if let Some(c) = self.cluster(def, by_inv) {
                out_clusters.push(c);
            }
        }
        out_clusters.sort_by(|a, b| a.name.cmp(&b.name));
        for w in out_clusters.windows(2) {
            if w[0].name.eq_ignore_case(w[1].name.as_str()) {
                let def = clusters.iter().find(|d| {
                    d.node.get("name").and_then(Node::as_str) == Some(w[1].name.as_str())
                });
                if let Some(d) = def {
                    self.sink.error(
                        &d.pos,
                        format!("two clusters are called {}", q(w[1].name.as_str())),
                    );
                }
            }
        }
        out_clusters
    }

    fn pools(&mut self, pools: &BTreeMap<String, PoolDef>, hosts: &[(&str, Host)]) -> Vec<Pool> {
        let raw = self.raw;
        // Pools: each pool group's hosts that joined its pool, found from the hosts' side (one
        // pass over the hosts, not one per pool).
        let mut pool_members: FastMap<&str, Vec<&Host>> = FastMap::default();
        for (inv, h) in hosts {
            let Some(p) = &h.pool else { continue };
            for g in raw.merge_order(inv) {
                if pools.get(g).is_some_and(|def| &def.name == p) {
                    pool_members.entry(g).or_default().push(h);
                }
            }
        }
        let mut out_pools = Vec::new();
        for (g, def) in pools {
            let members: Vec<&Host> = pool_members.remove(g.as_str()).unwrap_or_default();
            if members.is_empty() {
                self.sink.error(
                    &def.pos,
                    format!(
                        "pool {} (group {}) has no Windows host",
                        q(def.name.as_str()),
                        q(g)
                    ),
                );
                continue;
            }
            let products: BTreeSet<Product> = members.iter().filter_map(|h| h.product()).collect();
            if products.len() > 1 {
                let list = members
                    .iter()
                    .filter_map(|h| Some(format!("`{}` ({})", h.name, h.product()?)))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.sink.error(
                    &def.pos,
                    format!(
                        "pool {} mixes Exchange versions: {list}",
                        q(def.name.as_str())
                    ),
                );
            }
            for h in &members {
                if h.role().is_some_and(|r| r != Role::FrontEnd) {
                    self.sink.error(
                        &def.pos,
                        format!(
                            "pool {} holds {}, which is not a front-end (`exchange_role: front-end`)",
                            q(def.name.as_str()),
                            q(h.name.as_str())
                        ),
                    );
                }
            }
            let sites_of: BTreeSet<&Name> = members.iter().map(|h| &h.site).collect();
            if sites_of.len() > 1 {
                self.sink.error(
                    &def.pos,
                    format!("pool {} spans several sites", q(def.name.as_str())),
                );
            }
            out_pools.push(Pool {
                name: def.name.clone(),
                site: members[0].site.clone(),
                members: members.iter().map(|h| h.name.clone()).collect(),
            });
        }
        out_pools.sort_by(|a, b| a.name.cmp(&b.name));
        out_pools
    }

    /// Groups restricted to the fleet's hosts.
    fn groups(&self, hosts: &[(&str, Host)]) -> BTreeMap<Name, Vec<Name>> {
        let raw = self.raw;
        let mut groups = BTreeMap::new();
        // By host number (of `raw.host_order`), not by a lookup per group member.
        let mut fleet_host: Vec<Option<&Host>> = vec![None; raw.host_order.len()];
        for (inv, h) in hosts {
            if let Some(&i) = raw.host_index.get(*inv) {
                fleet_host[i] = Some(h);
            }
        }
        for g in raw.groups.keys() {
            let Some(gname) = self.group_names.get(g.as_str()) else {
                continue;
            };
            let m: Vec<Name> = raw
                .members
                .get(g)
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter_map(|h| fleet_host[*h as usize].map(|x| x.name.clone()))
                .collect();
            groups.insert(gname.clone(), m);
        }
        groups
    }

    fn site(&mut self, group: &str, node: &Node) -> Option<Site> {
        if !check_keys(
            node,
            "`lockstep_site`",
            &["locale", "description", "rollout_order"],
            self.sink,
        ) {
            return None;
        }
        let name = Name::ident(group).ok()?;
        let Some(l) = node.get("locale") else {
            self.sink
                .error(&node.pos, format!("site {} has no `locale`", q(group)));
            return None;
        };
        let tag = scalar(l, "locale", self.sink)?;
        let Some(locale) = Locale::from_tag(tag) else {
            let tags: Vec<&str> = Locale::SEEDS.iter().map(|l| l.tag()).collect();
            self.sink.error(
                &l.pos,
                format!(
                    "locale {} of site {} is not a Windows locale name (a language-region tag of MS-LCID such as `en-GB` or `sr-Latn-RS`){}",
                    q(tag),
                    q(group),
                    hint(tag, &tags)
                ),
            );
            return None;
        };
        let description = node
            .get("description")
            .and_then(|d| d.as_str())
            .map(str::to_owned);
        let rollout_order = match node.get("rollout_order") {
            None => None,
            Some(n) => match n.as_str().and_then(|v| v.trim().parse::<u32>().ok()) {
                Some(v) => Some(v),
                None => {
                    self.sink.error(
                        &n.pos,
                        format!(
                            "`rollout_order` of site {} must be a whole number, found {}",
                            q(group),
                            q(&n.to_text())
                        ),
                    );
                    return None;
                }
            },
        };
        Some(Site {
            name,
            locale,
            description,
            rollout_order,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn host(
        &mut self,
        name: &str,
        order: &[&str],
        pos: &Pos,
        version: Option<&MergedVar>,
        vars: &MergedVars<'_>,
        sites: &BTreeMap<String, SiteDef>,
        clusters: &FastMap<&str, &ClusterDef>,
        pools: &BTreeMap<String, PoolDef>,
    ) -> Option<Host> {
        let sink = &mut *self.sink;
        let hname = computer_name(name, pos, sink);
        let product = version.map(|v| enum_value(&v.var.value, "exchange_version", PRODUCTS, sink));
        let role = vars
            .get("exchange_role")
            .map(|v| enum_value(&v.var.value, "exchange_role", ROLES, sink))
            .unwrap_or(Some(Role::Standalone));
        let exchange_ok = product != Some(None);
        let product = product.flatten();
        let edition = match vars.get("exchange_edition") {
            Some(v) => enum_value(&v.var.value, "exchange_edition", EDITIONS, sink),
            None => Some(if role == Some(Role::Sbs) {
                Edition::SmallBusiness
            } else {
                Edition::Standard
            }),
        };
        if let (Some(Edition::Conferencing), Some(p)) = (edition, product) {
            if p != Product::Exchange2000 {
                let v = &vars["exchange_edition"];
                sink.error(
                    &v.var.value.pos,
                    format!(
                        "the Conferencing edition exists for Exchange 2000 only, host {} is {p}",
                        q(name)
                    ),
                );
            }
        }
        if (role == Some(Role::Sbs)) != (edition == Some(Edition::SmallBusiness))
            && vars.contains_key("exchange_edition")
        {
            let v = &vars["exchange_edition"];
            sink.error(
                &v.var.value.pos,
                format!(
                    "host {}: role `sbs` goes with edition `small-business` and only with it",
                    q(name)
                ),
            );
        }
        let mut build_ok = true;
        let build = match vars.get("exchange_build") {
            Some(v) => {
                let b = version_at(&v.var.value, "exchange_build", product, sink);
                build_ok = b.is_some();
                b
            }
            None => None,
        };
        let (windows, os_build, windows_ok) = windows_of(vars, product, sink);

        // Site, cluster, pool membership.
        // The host's groups (sorted by name) looked up in the site, cluster and pool tables.
        let mut my_groups: Vec<&str> = order.to_vec();
        my_groups.sort_unstable();
        let site = site_of(name, pos, version.is_none(), &my_groups, sites, sink);
        let cluster = cluster_of(name, pos, &my_groups, clusters, sink);
        let pool = pool_of(name, pos, &my_groups, pools, sink);
        if cluster.is_some() && pool.is_some() {
            sink.error(
                pos,
                format!(
                    "host {} cannot be both a cluster node and a pool member",
                    q(name)
                ),
            );
        }

        let connection = self.connection(name, pos, vars);

        let groups: Vec<Name> = my_groups
            .iter()
            .filter_map(|g| self.group_names.get(g).cloned())
            .collect();
        let host_vars: BTreeMap<String, String> = vars
            .iter()
            .filter(|(k, _)| !PASSWORD_VARS.contains(k))
            .map(|(k, v)| ((*k).to_owned(), v.var.value.to_text()))
            .collect();
        if !build_ok || !exchange_ok || !windows_ok {
            return None;
        }
        let exchange = match product {
            Some(product) => Some(Exchange {
                role: role?,
                product,
                edition: edition?,
                build,
            }),
            None => None,
        };
        Some(Host {
            name: hname?,
            site: site?,
            exchange,
            windows,
            os_build,
            cluster,
            pool,
            connection: connection?,
            groups,
            vars: host_vars,
        })
    }

    fn connection(&mut self, name: &str, pos: &Pos, vars: &MergedVars<'_>) -> Option<Connection> {
        let sink = &mut *self.sink;
        let get = |k: &str| vars.get(k).map(|v| &v.var.value);
        let mut ok = true;
        let address = winrm_address(name, vars, sink, &mut ok);
        let port = winrm_port(vars, sink, &mut ok);
        // Ansible's rule: https unless the port is 5985.
        let scheme = match get("ansible_winrm_scheme") {
            Some(s) => enum_value(
                s,
                "ansible_winrm_scheme",
                &[("http", Scheme::Http), ("https", Scheme::Https)],
                sink,
            ),
            None => Some(if port == Some(5985) {
                Scheme::Http
            } else {
                Scheme::Https
            }),
        };
        let auth = winrm_auth(vars, sink);
        let verify_tls = match get("ansible_winrm_server_cert_validation") {
            Some(v) => enum_value(
                v,
                "ansible_winrm_server_cert_validation",
                &[("validate", true), ("ignore", false)],
                sink,
            ),
            None => Some(true),
        };
        let ca_trust_path = get("ansible_winrm_ca_trust_path")
            .and_then(|v| scalar(v, "ansible_winrm_ca_trust_path", sink))
            .map(str::to_owned);
        let allow_basic_over_http = match get("lockstep_allow_basic_over_http") {
            Some(v) => match v.as_bool() {
                Some(b) => b,
                None => {
                    sink.error(
                        &v.pos,
                        format!(
                            "`lockstep_allow_basic_over_http` must be true or false, found {}",
                            q(&v.to_text())
                        ),
                    );
                    false
                }
            },
            None => false,
        };
        if auth == Some(Auth::Basic) && scheme == Some(Scheme::Http) && !allow_basic_over_http {
            let at = get("ansible_winrm_transport")
                .map(|n| n.pos.clone())
                .unwrap_or(pos.clone());
            sink.error(
                &at,
                format!(
                    "host {} would send Basic credentials over plain HTTP; use `ansible_winrm_scheme: https` or set `lockstep_allow_basic_over_http: true`",
                    q(name)
                ),
            );
            ok = false;
        }
        let codepage = codepage(vars, sink, &mut ok);
        let user = match get("ansible_user").or_else(|| get("ansible_winrm_user")) {
            Some(u) => scalar(u, "ansible_user", sink).map(str::to_owned),
            None => {
                sink.error(pos, format!("host {} has no `ansible_user`", q(name)));
                None
            }
        };
        if auth == Some(Auth::Kerberos) {
            check_kerberos_user(name, pos, vars, user.as_deref(), sink, &mut ok);
        }
        if let Some(v) = get("ansible_winrm_kerberos_hostname_override") {
            scalar(v, "ansible_winrm_kerberos_hostname_override", sink);
        }
        if auth == Some(Auth::Certificate) {
            check_certificate_auth(name, pos, vars, scheme, sink, &mut ok);
        }
        let password = self.password(name, vars);
        if !ok {
            return None;
        }
        let scheme = scheme?;
        Some(Connection {
            address,
            port: port.unwrap_or(match scheme {
                Scheme::Http => 5985,
                Scheme::Https => 5986,
            }),
            scheme,
            auth: auth?,
            user: user?,
            password: password?,
            verify_tls: verify_tls?,
            allow_basic_over_http,
            codepage,
            ca_trust_path,
        })
    }

    /// The password source of highest precedence; two at the same level conflict.
    fn password(&mut self, name: &str, vars: &MergedVars<'_>) -> Option<SecretSource> {
        let keys = [
            "lockstep_password_env",
            "lockstep_password_file",
            "lockstep_password_prompt",
            "ansible_password",
            "ansible_winrm_password",
        ];
        let found: Vec<(&str, &MergedVar)> = keys
            .iter()
            .filter_map(|k| vars.get(*k).map(|v| (*k, v)))
            .collect();
        let Some(top) = found.iter().map(|(_, v)| v.rank).max() else {
            return Some(SecretSource::Prompt);
        };
        let best: Vec<&(&str, &MergedVar)> = found.iter().filter(|(_, v)| v.rank == top).collect();
        if best.len() > 1 {
            self.sink.error(
                &best[1].1.var.key_pos,
                format!(
                    "host {} has two password sources at the same level, {} and {}",
                    q(name),
                    q(best[0].0),
                    q(best[1].0)
                ),
            );
            return None;
        }
        let (key, v) = best[0];
        let node = &v.var.value;
        match *key {
            "lockstep_password_env" => {
                let s = scalar(node, key, self.sink)?;
                let ok = s
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    self.sink.error(
                        &node.pos,
                        format!("{} is not an environment variable name", q(s)),
                    );
                    return None;
                }
                Some(SecretSource::Env(s.to_owned()))
            }
            "lockstep_password_file" => {
                Some(SecretSource::File(scalar(node, key, self.sink)?.to_owned()))
            }
            "lockstep_password_prompt" => match node.as_bool() {
                Some(true) => Some(SecretSource::Prompt),
                _ => {
                    self.sink.error(
                        &node.pos,
                        format!(
                            "`lockstep_password_prompt` must be `true`, found {}",
                            q(&node.to_text())
                        ),
                    );
                    None
                }
            },
            // Inline values were refused where they were written; vault values and other
            // templates are fine for Ansible but not something Lockstep can resolve.
            _ if node.tag.as_deref() == Some("!vault") => node
                .as_str()
                .map(|envelope| SecretSource::Vault(envelope.trim().to_owned())),
            _ => match env_lookup(node) {
                Some(var) => Some(SecretSource::Env(var)),
                None => {
                    if !crate::ansible::is_inline_secret(node) {
                        self.sink.error(
                            &node.pos,
                            format!(
                                "{} of host {} is a template Lockstep \
                                 cannot resolve; use `\"{{{{ lookup('env', 'VAR') }}}}\"` or \
                                 `lockstep_password_env`/`_file`/`_prompt`",
                                q(key),
                                q(name)
                            ),
                        );
                    }
                    None
                }
            },
        }
    }

    fn cluster(&mut self, def: &ClusterDef, hosts: &FastMap<&str, &Host>) -> Option<Cluster> {
        let raw = self.raw;
        let sink = &mut *self.sink;
        let node = &def.node;
        if !check_keys(
            node,
            "`lockstep_cluster`",
            &["name", "mode", "cluster_group", "virtual_servers", "groups"],
            sink,
        ) {
            return None;
        }
        let Some(name_node) = node.get("name") else {
            sink.error(
                &node.pos,
                format!(
                    "`lockstep_cluster` of group {} has no `name`",
                    q(&def.group)
                ),
            );
            return None;
        };
        let name = name_at(NameKind::Object, name_node, "cluster name", sink);
        let mode = match node.get("mode") {
            Some(m) => enum_value(
                m,
                "mode",
                &[
                    ("active-passive", ClusterMode::ActivePassive),
                    ("active-active", ClusterMode::ActiveActive),
                ],
                sink,
            ),
            None => Some(ClusterMode::ActivePassive),
        };
        let member_names: Vec<&str> = raw.members_in_order(&def.group);
        let nodes = cluster_nodes(raw, def, &member_names, hosts, sink)?;
        // When every node was refused (and why was reported), the rest is still checked.
        check_nodes_agree(def, &nodes, sink);
        let product = nodes.first().and_then(|h| h.product()).or_else(|| {
            let first = member_names.first()?;
            let v = raw
                .merged_vars(first)
                .get("exchange_version")?
                .var
                .value
                .to_text();
            PRODUCTS.iter().find(|(n, _)| *n == v).map(|(_, p)| *p)
        });
        let node_names: Vec<Name> = nodes.iter().map(|h| h.name.clone()).collect();
        let owners = Owners {
            raw,
            group: &def.group,
            member_names: &member_names,
            node_names: &node_names,
        };
        let (cluster_group, cluster_group_owner) = match node.get("cluster_group") {
            Some(cg) => {
                if check_keys(cg, "`cluster_group`", &["name", "owner"], sink) {
                    let n = match cg.get("name") {
                        Some(n) => name_at(NameKind::Object, n, "cluster group name", sink),
                        None => Name::object("Cluster Group").ok(),
                    };
                    let o = match cg.get("owner") {
                        Some(o) => owners.resolve(o, "cluster group owner", sink),
                        None => owners.first(),
                    };
                    (n, o)
                } else {
                    (None, None)
                }
            }
            None => (Name::object("Cluster Group").ok(), owners.first()),
        };
        let mut evs_ok = true;
        let evss = virtual_servers(def, &owners, product, sink, &mut evs_ok);
        let groups = other_groups(def, &owners, sink, &mut evs_ok);
        check_group_names_unique(
            def,
            cluster_group.as_ref(),
            &evss,
            &groups,
            sink,
            &mut evs_ok,
        );
        if !evs_ok {
            return None;
        }
        Some(Cluster {
            name: name?,
            site: nodes.first()?.site.clone(),
            nodes: node_names,
            mode: mode?,
            cluster_group: cluster_group?,
            cluster_group_owner: cluster_group_owner?,
            virtual_servers: evss,
            groups,
        })
    }
}

/// The hosts of a cluster group that are fleet hosts, in the group's order; reports every member
/// Lockstep does not reach. `None` (reported) when the group has no host at all.
fn cluster_nodes<'h>(
    raw: &Raw,
    def: &ClusterDef,
    member_names: &[&str],
    hosts: &FastMap<&str, &'h Host>,
    sink: &mut Sink,
) -> Option<Vec<&'h Host>> {
    let nodes: Vec<&Host> = member_names
        .iter()
        .filter_map(|h| hosts.get(*h).copied())
        .collect();
    for h in member_names {
        if !hosts.contains_key(*h) && !is_fleet_host(&raw.merged_vars(h)) {
            sink.error(
                &def.pos,
                format!(
                    "node {} of cluster group {} is not a Windows host Lockstep reaches (`ansible_connection: winrm`)",
                    q(h),
                    q(&def.group)
                ),
            );
        }
    }
    if member_names.is_empty() {
        sink.error(
            &def.pos,
            format!("cluster group {} has no host", q(&def.group)),
        );
        return None;
    }
    Some(nodes)
}

/// Reports a cluster whose nodes run different Exchange versions or sit in several sites.
fn check_nodes_agree(def: &ClusterDef, nodes: &[&Host], sink: &mut Sink) {
    let products: BTreeSet<Option<Product>> = nodes.iter().map(|h| h.product()).collect();
    if products.len() > 1 {
        let list = nodes
            .iter()
            .map(|h| match h.product() {
                Some(p) => format!("`{}` ({p})", h.name),
                None => format!("`{}` (no Exchange)", h.name),
            })
            .collect::<Vec<_>>()
            .join(", ");
        sink.error(
            &def.pos,
            format!(
                "the nodes of cluster group {} disagree on the Exchange version: {list}",
                q(&def.group)
            ),
        );
    }
    let sites: BTreeSet<&Name> = nodes.iter().map(|h| &h.site).collect();
    if sites.len() > 1 {
        sink.error(
            &def.pos,
            format!(
                "the nodes of cluster group {} are in several sites",
                q(&def.group)
            ),
        );
    }
}

/// Resolves the `owner` of a cluster's groups against its nodes.
struct Owners<'a> {
    raw: &'a Raw,
    group: &'a str,
    /// Every member of the cluster group, refused or not.
    member_names: &'a [&'a str],
    /// The members accepted as nodes.
    node_names: &'a [Name],
}

impl Owners<'_> {
    /// Owners are checked against every member, so a node refused for another reason does not
    /// make its EVSs' owners look unknown too.
    fn resolve(&self, n: &Node, what: &str, sink: &mut Sink) -> Option<Name> {
        let s = scalar(n, what, sink)?;
        if let Some(m) = self.node_names.iter().find(|m| m.eq_ignore_case(s)) {
            return Some(m.clone());
        }
        if self.member_names.iter().any(|m| m.eq_ignore_ascii_case(s)) {
            return None;
        }
        if self
            .raw
            .host_order
            .iter()
            .any(|h| h.eq_ignore_ascii_case(s))
        {
            sink.error(
                &n.pos,
                format!(
                    "{what} {} is not a node of cluster group {}",
                    q(s),
                    q(self.group)
                ),
            );
        } else {
            let known: Vec<&str> = self.member_names.to_vec();
            sink.error(
                &n.pos,
                format!(
                    "{what} {} is not a host of the inventory{}",
                    q(s),
                    hint(s, &known)
                ),
            );
        }
        None
    }

    /// The owner when none is given: the first node.
    fn first(&self) -> Option<Name> {
        self.node_names.first().cloned()
    }
}

/// The cluster's Exchange virtual servers (`virtual_servers`); clears `ok` on any error.
fn virtual_servers(
    def: &ClusterDef,
    owners: &Owners<'_>,
    product: Option<Product>,
    sink: &mut Sink,
    ok: &mut bool,
) -> Vec<VirtualServer> {
    let node = &def.node;
    let mut evss = Vec::new();
    match node.get("virtual_servers").map(|v| (v, v.as_seq())) {
        Some((_, Some(items))) if !items.is_empty() => {
            for item in items {
                if !check_keys(
                    item,
                    "a virtual server",
                    &["name", "group", "owner", "build"],
                    sink,
                ) {
                    *ok = false;
                    continue;
                }
                let n = match item.get("name") {
                    Some(n) => name_at(NameKind::Object, n, "virtual server name", sink),
                    None => {
                        sink.error(&item.pos, "a virtual server has no `name`".to_string());
                        None
                    }
                };
                let g = match item.get("group") {
                    Some(g) => name_at(NameKind::Object, g, "virtual server group", sink),
                    None => n
                        .as_ref()
                        .and_then(|n| Name::object(&format!("{n} Group")).ok()),
                };
                let o = match item.get("owner") {
                    Some(o) => owners.resolve(o, "virtual server owner", sink),
                    None => owners.first(),
                };
                let b = match item.get("build") {
                    Some(b) => {
                        // An Exchange 2003 cluster moved from Exchange 2000 by clean install
                        // keeps an Exchange 2000 virtual server until it is upgraded (KB
                        // 328839 E3-C2): the planner refuses a service pack until then.
                        let evs_product = match product {
                            Some(Product::Exchange2003)
                                if b.to_text().trim().starts_with("6.0.") =>
                            {
                                Some(Product::Exchange2000)
                            }
                            p => p,
                        };
                        let v = version_at(b, "virtual server build", evs_product, sink);
                        if v.is_none() {
                            *ok = false;
                        }
                        v
                    }
                    None => None,
                };
                match (n, g, o) {
                    (Some(name), Some(group), Some(owner)) => evss.push(VirtualServer {
                        name,
                        group,
                        owner,
                        build: b,
                    }),
                    _ => *ok = false,
                }
            }
        }
        Some((v, _)) => {
            sink.error(
                &v.pos,
                format!(
                    "`virtual_servers` of cluster group {} must be a non-empty list",
                    q(&def.group)
                ),
            );
            *ok = false;
        }
        None => {}
    }
    if !evss.is_empty() && product.is_none() {
        sink.error(
            &def.pos,
            format!(
                "cluster group {} declares `virtual_servers` but its nodes run no Exchange (`exchange_version`)",
                q(&def.group)
            ),
        );
        *ok = false;
    }
    evss
}

/// The cluster's other groups (`groups`); clears `ok` on any error.
fn other_groups(
    def: &ClusterDef,
    owners: &Owners<'_>,
    sink: &mut Sink,
    ok: &mut bool,
) -> Vec<ClusterGroup> {
    let node = &def.node;
    let mut groups = Vec::new();
    match node.get("groups").map(|v| (v, v.as_seq())) {
        Some((_, Some(items))) => {
            for item in items {
                if !check_keys(item, "a cluster group", &["name", "kind", "owner"], sink) {
                    *ok = false;
                    continue;
                }
                let n = match item.get("name") {
                    Some(n) => name_at(NameKind::Object, n, "cluster group name", sink),
                    None => {
                        sink.error(&item.pos, "a cluster group has no `name`".to_string());
                        None
                    }
                };
                let kinds: Vec<(&str, GroupKind)> = GroupKind::ALL
                    .iter()
                    .filter(|k| **k != GroupKind::ExchangeVirtualServer)
                    .map(|k| (k.tag(), *k))
                    .collect();
                let k = match item.get("kind") {
                    Some(k) => enum_value(k, "kind", &kinds, sink),
                    None => Some(GroupKind::Generic),
                };
                let o = match item.get("owner") {
                    Some(o) => owners.resolve(o, "cluster group owner", sink),
                    None => owners.first(),
                };
                match (n, k, o) {
                    (Some(name), Some(kind), Some(owner)) => {
                        groups.push(ClusterGroup { name, kind, owner })
                    }
                    _ => *ok = false,
                }
            }
        }
        Some((v, None)) => {
            sink.error(
                &v.pos,
                format!("`groups` of cluster group {} must be a list", q(&def.group)),
            );
            *ok = false;
        }
        None => {}
    }
    groups
}

/// Reports a group name declared twice in one cluster (cluster group, EVS groups, other groups).
fn check_group_names_unique(
    def: &ClusterDef,
    cluster_group: Option<&Name>,
    evss: &[VirtualServer],
    groups: &[ClusterGroup],
    sink: &mut Sink,
    ok: &mut bool,
) {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let all_names = cluster_group
        .into_iter()
        .chain(evss.iter().map(|v| &v.group))
        .chain(groups.iter().map(|g| &g.name));
    for g in all_names {
        if !seen.insert(g.as_str().to_ascii_lowercase()) {
            sink.error(
                &def.pos,
                format!(
                    "cluster group {} declares the group {} twice",
                    q(&def.group),
                    q(g.as_str())
                ),
            );
            *ok = false;
        }
    }
}
