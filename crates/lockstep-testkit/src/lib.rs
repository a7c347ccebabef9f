//! Test support shared by Lockstep's crates (a dev-dependency only; nothing ships with it).
//!
//! [`FleetBuilder`] builds a [`Fleet`] in Rust the way the inventory loader builds one (sorted,
//! with product groups, every host with the `package_root` the shipped playbooks stage from), and
//! [`shipped`] reads a shipped playbook (`playbooks/*.yml`, embedded in `lockstep-spec`) with the
//! real loader against such a fleet. Tests plan and run the playbooks an administrator gets
//! instead of retyping them. It depends on `lockstep-core` and `lockstep-spec` only; a crate's
//! library code must never depend on it.
#![deny(missing_docs)]

use std::collections::BTreeMap;

use lockstep_core::*;

/// A shipped playbook (`e3-cluster`, `cau-cluster`, ...), loaded by the spec loader against
/// `fleet` as an inventory of that fleet would have it loaded. Panics with the loader's
/// diagnostics if it does not load.
pub fn shipped(name: &str, fleet: &Fleet) -> Playbook {
    let file = lockstep_spec::embedded::playbook(name)
        .unwrap_or_else(|| panic!("no shipped playbook `{name}`"));
    lockstep_spec::load_playbook(&file, fleet).unwrap_or_else(|d| panic!("{name}: {d}"))
}

/// The built-in lab inventory (`inventory/lab.yml`), loaded by the real loader: a fleet every
/// shipped playbook loads against.
pub fn lab_fleet() -> Fleet {
    lockstep_spec::load_inventory(&[lockstep_spec::embedded::lab_inventory()])
        .unwrap_or_else(|d| panic!("inventory/lab.yml: {d}"))
}

/// Where the controller keeps packages in the fleets built here (the shipped playbooks stage
/// `{{ package_root }}/FILE`).
pub const PACKAGE_ROOT: &str = "/srv/packages";

/// A host name (panics if invalid).
pub fn name_h(s: &str) -> Name {
    Name::host(s).unwrap()
}
/// An object name (panics if invalid).
pub fn name_o(s: &str) -> Name {
    Name::object(s).unwrap()
}
/// An identifier (panics if invalid).
pub fn name_i(s: &str) -> Name {
    Name::ident(s).unwrap()
}

/// The WinRM connection every built host gets: NTLM over HTTP to its lower-case name, the
/// password from `LOCKSTEP_PASSWORD`.
pub fn connection(host: &str) -> Connection {
    Connection {
        address: host.to_ascii_lowercase(),
        port: 5985,
        scheme: Scheme::Http,
        auth: Auth::Ntlm,
        user: "CONTOSO\\svc-lockstep".to_owned(),
        password: SecretSource::Env("LOCKSTEP_PASSWORD".to_owned()),
        verify_tls: true,
        allow_basic_over_http: false,
        codepage: None,
        ca_trust_path: None,
    }
}

/// The inventory group of a product's hosts.
pub fn product_group(p: Product) -> &'static str {
    match p {
        Product::Exchange2003 => "exchange2003",
        Product::Exchange2000 => "exchange2000",
        Product::Exchange55 => "exchange55",
    }
}

/// Builds a [`Fleet`] the way the inventory loader would: sorted, with product groups.
#[derive(Default)]
pub struct FleetBuilder {
    fleet: Fleet,
}

/// One EVS: (name, group, owner).
pub type Evs<'a> = (&'a str, &'a str, &'a str);

impl FleetBuilder {
    /// An empty fleet of organisation `Contoso`.
    pub fn new() -> Self {
        FleetBuilder {
            fleet: Fleet {
                organisation: "Contoso".to_owned(),
                ..Fleet::default()
            },
        }
    }

    /// A site.
    pub fn site(mut self, name: &str, locale: Locale) -> Self {
        self.fleet.sites.push(Site {
            name: name_i(name),
            locale,
            description: None,
            rollout_order: None,
        });
        self
    }

    /// An Exchange host at its product's RTM build, Enterprise (Small Business for `sbs`).
    pub fn host(
        mut self,
        name: &str,
        site: &str,
        role: Role,
        product: Product,
        windows: WindowsRelease,
    ) -> Self {
        self.fleet.hosts.push(Host {
            name: name_h(name),
            site: name_i(site),
            exchange: Some(Exchange {
                role,
                product,
                edition: if role == Role::Sbs {
                    Edition::SmallBusiness
                } else {
                    Edition::Enterprise
                },
                build: Some(product.rtm()),
            }),
            windows: Some(windows),
            os_build: None,
            cluster: None,
            pool: None,
            connection: connection(name),
            groups: vec![],
            vars: BTreeMap::from([("package_root".to_owned(), PACKAGE_ROOT.to_owned())]),
        });
        self
    }

    /// An inventory variable of `host`.
    pub fn var(mut self, host: &str, key: &str, value: &str) -> Self {
        let h = self
            .fleet
            .hosts
            .iter_mut()
            .find(|h| h.name.as_str() == host)
            .unwrap();
        h.vars.insert(key.to_owned(), value.to_owned());
        self
    }

    /// A cluster of back-end nodes (added as hosts too); `cg_owner` owns the cluster group.
    #[allow(clippy::too_many_arguments)]
    pub fn cluster(
        mut self,
        name: &str,
        site: &str,
        product: Product,
        mode: ClusterMode,
        nodes: &[&str],
        cg_owner: &str,
        evs: &[Evs<'_>],
    ) -> Self {
        for n in nodes {
            self = self.host(n, site, Role::BackEnd, product, WindowsRelease::Windows2003);
            self.fleet.hosts.last_mut().unwrap().cluster = Some(name_o(name));
        }
        self.fleet.clusters.push(Cluster {
            name: name_o(name),
            site: name_i(site),
            nodes: nodes.iter().map(|n| name_h(n)).collect(),
            mode,
            cluster_group: name_o("Cluster Group"),
            cluster_group_owner: name_h(cg_owner),
            virtual_servers: evs
                .iter()
                .map(|(n, g, o)| VirtualServer {
                    name: name_o(n),
                    group: name_o(g),
                    owner: name_h(o),
                    build: Some(product.rtm()),
                })
                .collect(),
            groups: Vec::new(),
        });
        self
    }

    /// A load-balanced pool of front-ends (added as hosts too).
    pub fn pool(mut self, name: &str, site: &str, product: Product, members: &[&str]) -> Self {
        for m in members {
            self = self.host(
                m,
                site,
                Role::FrontEnd,
                product,
                WindowsRelease::Windows2003,
            );
            self.fleet.hosts.last_mut().unwrap().pool = Some(name_i(name));
        }
        self.fleet.pools.push(Pool {
            name: name_i(name),
            site: name_i(site),
            members: members.iter().map(|n| name_h(n)).collect(),
        });
        self
    }

    /// Whether the front-end rule is the organisation's or each site's.
    pub fn front_end_scope(mut self, s: FrontEndScope) -> Self {
        self.fleet.front_end_scope = s;
        self
    }

    /// The fleet, sorted as the loader sorts it, with its product groups.
    pub fn build(mut self) -> Fleet {
        let f = &mut self.fleet;
        f.sites.sort_by(|a, b| a.name.cmp(&b.name));
        f.hosts.sort_by(|a, b| a.name.cmp(&b.name));
        f.clusters.sort_by(|a, b| a.name.cmp(&b.name));
        f.pools.sort_by(|a, b| a.name.cmp(&b.name));
        let mut groups: BTreeMap<Name, Vec<Name>> = BTreeMap::new();
        for h in &mut f.hosts {
            let Some(product) = h.product() else { continue };
            let g = name_i(product_group(product));
            groups.entry(g.clone()).or_default().push(h.name.clone());
            h.groups = vec![g];
        }
        f.groups = groups;
        self.fleet
    }
}
