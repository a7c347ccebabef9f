//! The fleet: sites, hosts, clusters and front-end pools, as the inventory describes them.
//!
//! These types are what `lockstep-spec` produces from `inventory/*.yml` and what the planner, the
//! engine and the lab consume. Everything here is already validated; names are [`Name`]s.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::name::Name;
use crate::version::{Edition, Product, Version};

/// A Windows display/system locale a site runs; decides the OEM code page of its nodes' console
/// output and the language of cluster.exe's headers and state words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Locale {
    /// English (United States).
    #[serde(rename = "en-US")]
    EnUs,
    /// Czech.
    #[serde(rename = "cs-CZ")]
    CsCz,
    /// Italian.
    #[serde(rename = "it-IT")]
    ItIt,
    /// Dutch.
    #[serde(rename = "nl-NL")]
    NlNl,
    /// Japanese.
    #[serde(rename = "ja-JP")]
    JaJp,
}

impl Locale {
    /// Every supported locale.
    pub const ALL: [Locale; 5] = [
        Locale::EnUs,
        Locale::CsCz,
        Locale::ItIt,
        Locale::NlNl,
        Locale::JaJp,
    ];

    /// The OEM code page cmd.exe uses for console output under this locale.
    pub fn oem_codepage(self) -> u32 {
        match self {
            Locale::EnUs => 437,
            Locale::ItIt | Locale::NlNl => 850,
            Locale::CsCz => 852,
            Locale::JaJp => 932,
        }
    }

    /// The BCP 47 tag (`cs-CZ`).
    pub fn tag(self) -> &'static str {
        match self {
            Locale::EnUs => "en-US",
            Locale::CsCz => "cs-CZ",
            Locale::ItIt => "it-IT",
            Locale::NlNl => "nl-NL",
            Locale::JaJp => "ja-JP",
        }
    }

    /// Parses a BCP 47 tag, case-insensitively.
    pub fn from_tag(s: &str) -> Option<Locale> {
        Locale::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A site: a place with its own locale, rolled out as a unit by the stages of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// Site name (`prague`).
    pub name: Name,
    /// Locale of the site's servers.
    pub locale: Locale,
    /// Free text: country, description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The Exchange role of a host (KB 328839 topologies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A front-end server (E3-FB, E2-FB): upgraded before every back-end.
    FrontEnd,
    /// A back-end (mailbox) server.
    BackEnd,
    /// A standalone server, neither front-end nor back-end.
    Standalone,
    /// A Small Business Server.
    Sbs,
}

/// Windows Server release of a node (the IIS 6.0 hotfix of E3-CLUSTER step 1 applies to 2003 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WindowsRelease {
    /// Windows NT 4.0.
    #[serde(rename = "nt4")]
    Nt4,
    /// Windows 2000 Server.
    #[serde(rename = "2000")]
    Windows2000,
    /// Windows Server 2003.
    #[serde(rename = "2003")]
    Windows2003,
}

/// HTTP or HTTPS for WinRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP (port 5985 by default): NTLM bodies are sealed (message encryption).
    #[default]
    Http,
    /// HTTPS (port 5986 by default).
    Https,
}

/// WinRM authentication method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// NTLMv2 in the `Negotiate` scheme, bodies sealed over HTTP (Ansible's `ntlm` and
    /// `negotiate`).
    #[default]
    Ntlm,
    /// HTTP Basic: over plain HTTP only with [`Connection::allow_basic_over_http`].
    Basic,
}

/// Where a password comes from. There is deliberately no inline variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretSource {
    /// An environment variable of the controller.
    Env(String),
    /// A file on the controller (its first line; must not be readable by group or others).
    File(String),
    /// Asked for once on the terminal.
    Prompt,
}

/// How to reach a host over WinRM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// Address: DNS name or IP; defaults to the host name.
    pub address: String,
    /// TCP port; defaults to 5985 (HTTP) or 5986 (HTTPS).
    pub port: u16,
    /// HTTP or HTTPS.
    pub scheme: Scheme,
    /// Authentication method.
    pub auth: Auth,
    /// User, `DOMAIN\user` or `user`.
    pub user: String,
    /// Where the password comes from.
    pub password: SecretSource,
    /// Verify the server certificate over HTTPS (default true).
    pub verify_tls: bool,
    /// Explicit permission to send Basic credentials over plain HTTP.
    pub allow_basic_over_http: bool,
    /// Code page to ask the shell for (`WINRS_CODEPAGE`); `None` asks for 65001 (UTF-8).
    pub codepage: Option<u32>,
    /// A PEM file of CA certificates trusted for HTTPS besides the system trust store
    /// (`ansible_winrm_ca_trust_path`).
    #[serde(default)]
    pub ca_trust_path: Option<String>,
}

/// One Windows server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Computer name.
    pub name: Name,
    /// Site the host belongs to.
    pub site: Name,
    /// Exchange role.
    pub role: Role,
    /// Exchange product installed.
    pub product: Product,
    /// Exchange edition installed.
    pub edition: Edition,
    /// Installed build as the inventory believes it (a planning input; live discovery checks it).
    pub build: Option<Version>,
    /// Windows release.
    pub windows: WindowsRelease,
    /// The cluster the host is a node of.
    pub cluster: Option<Name>,
    /// The load-balanced front-end pool the host is in.
    pub pool: Option<Name>,
    /// WinRM connection.
    pub connection: Connection,
    /// Inventory groups the host is in (direct and inherited), sorted.
    pub groups: Vec<Name>,
    /// Merged variables, Ansible precedence already applied; used by playbook templates.
    pub vars: BTreeMap<String, String>,
}

/// Failover cluster mode (Exchange 2000/5.5 procedures differ by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterMode {
    /// One node owns every EVS; the others are passive.
    ActivePassive,
    /// Every node owns an EVS.
    ActiveActive,
}

/// An Exchange Virtual Server: a cluster group holding the Exchange resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualServer {
    /// EVS (network) name.
    pub name: Name,
    /// The cluster group that contains it.
    pub group: Name,
    /// Node owning the group now, as the inventory believes (a planning input).
    pub owner: Name,
    /// The EVS's Exchange version, if known.
    pub build: Option<Version>,
}

/// A failover cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// Cluster name.
    pub name: Name,
    /// Site of the cluster (all nodes are in it).
    pub site: Name,
    /// Member nodes, in inventory order.
    pub nodes: Vec<Name>,
    /// Active/passive or active/active.
    pub mode: ClusterMode,
    /// The cluster group (quorum, cluster name and IP): its name.
    pub cluster_group: Name,
    /// The node owning the cluster group now (a planning input).
    pub cluster_group_owner: Name,
    /// Exchange virtual servers.
    pub virtual_servers: Vec<VirtualServer>,
}

/// A load-balanced pool of front-ends, taken out and brought back together (E3-LB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Pool name.
    pub name: Name,
    /// Site of the pool.
    pub site: Name,
    /// Member front-ends.
    pub members: Vec<Name>,
}

/// Scope of the front-end-before-back-end rule (E3-FB, E2-FB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FrontEndScope {
    /// Every front-end of the organisation before any back-end (the KB's rule).
    #[default]
    Organisation,
    /// Front-ends of a site before that site's back-ends; only when the inventory declares it.
    Site,
}

/// The whole fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Fleet {
    /// Organisation name.
    pub organisation: String,
    /// Sites, sorted by name.
    pub sites: Vec<Site>,
    /// Hosts, sorted by name.
    pub hosts: Vec<Host>,
    /// Clusters, sorted by name.
    pub clusters: Vec<Cluster>,
    /// Front-end pools, sorted by name.
    pub pools: Vec<Pool>,
    /// Inventory groups: name to member hosts (flattened, sorted).
    pub groups: BTreeMap<Name, Vec<Name>>,
    /// Scope of the front-end rule.
    pub front_end_scope: FrontEndScope,
}

impl Fleet {
    /// The host called `name` (case-insensitive).
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name.eq_ignore_case(name))
    }

    /// The cluster called `name` (case-insensitive).
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name.eq_ignore_case(name))
    }

    /// The site called `name` (case-insensitive).
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name.eq_ignore_case(name))
    }

    /// The pool called `name` (case-insensitive).
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name.eq_ignore_case(name))
    }
}
