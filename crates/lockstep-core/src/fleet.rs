//! The fleet: sites, hosts, clusters and front-end pools, as the inventory describes them.
//!
//! These types are what `lockstep-spec` produces from `inventory/*.yml` and what the planner, the
//! engine and the lab consume. Everything here is already validated; names are [`Name`]s.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::name::Name;
use crate::version::{Edition, Product, Version, WindowsRelease};

/// A Windows locale (MS-LCID), as a site's servers run it: decides the OEM code page of their
/// console output, the LCID WMI reports (`OSLanguage`) and the language of localised tools.
///
/// Every locale Windows defines is accepted (`en-GB`, `de-CH`, `sr-Cyrl-RS`, ...); the catalogue
/// (names, LCIDs, ANSI code pages) is the `lcid` crate's copy of MS-LCID, and the OEM code page
/// follows from the ANSI one as Windows assigns it ([`Locale::oem_codepage`]).
#[derive(Clone, Copy)]
pub struct Locale(&'static lcid::LanguageId);

/// Locales of the ANSI code page 1252 whose OEM code page is 437 rather than 850.
const OEM_437: &[&str] = &[
    "en",
    "en-US",
    "en-IN",
    "en-MY",
    "en-PH",
    "en-SG",
    "en-ZA",
    "en-ZW",
    "en-HK",
    "fil",
    "fil-PH",
    "sw",
    "sw-KE",
    "haw",
    "haw-US",
    "ha",
    "ha-Latn",
    "ha-Latn-NG",
    "yo",
    "yo-NG",
    "ig",
    "ig-NG",
    "iu-Latn",
    "iu-Latn-CA",
    "rw",
    "rw-RW",
];

impl Locale {
    /// English (United States).
    pub const EN_US: Locale = Locale(lcid::constants::LANG_EN_US);
    /// English (United Kingdom).
    pub const EN_GB: Locale = Locale(lcid::constants::LANG_EN_GB);
    /// Czech (Czechia).
    pub const CS_CZ: Locale = Locale(lcid::constants::LANG_CS_CZ);
    /// Italian (Italy).
    pub const IT_IT: Locale = Locale(lcid::constants::LANG_IT_IT);
    /// Dutch (Netherlands).
    pub const NL_NL: Locale = Locale(lcid::constants::LANG_NL_NL);
    /// Japanese (Japan).
    pub const JA_JP: Locale = Locale(lcid::constants::LANG_JA_JP);
    /// German (Germany).
    pub const DE_DE: Locale = Locale(lcid::constants::LANG_DE_DE);

    /// The five locales of the seeds (KB 328839 in five languages), whose cluster.exe and cmd.exe
    /// texts the lab knows; a handy spread of code pages (437, 850, 852, 932) for tests.
    pub const SEEDS: [Locale; 5] = [
        Locale::EN_US,
        Locale::CS_CZ,
        Locale::IT_IT,
        Locale::NL_NL,
        Locale::JA_JP,
    ];

    /// The OEM code page cmd.exe uses for console output under this locale: 437 (en-US), 850
    /// (Western Europe), 852 (Central Europe), 866/855 (Cyrillic), 737, 857, 862, 720, 775, the
    /// East Asian and Thai/Vietnamese pages (the same as ANSI), and 65001 for the Unicode-only
    /// locales (hi-IN, ka-GE, ...), which Windows runs in UTF-8.
    pub fn oem_codepage(self) -> u32 {
        match self.ansi_codepage() {
            1250 => 852,
            1251 if matches!(self.language(), "sr" | "bs") => 855,
            1251 => 866,
            1252 if OEM_437.contains(&self.tag()) => 437,
            1252 => 850,
            1253 => 737,
            1254 => 857,
            1255 => 862,
            1256 => 720,
            1257 => 775,
            // 874, 932, 936, 949, 950, 1258: one page for both; 65001 for Unicode-only.
            cp => cp,
        }
    }

    /// The ANSI code page (1252 for Western Europe); 65001 for the Unicode-only locales.
    pub fn ansi_codepage(self) -> u32 {
        self.0.ansi_code_page.map(u32::from).unwrap_or(65001)
    }

    /// The locale identifier (1033 for en-US), as WMI's `OSLanguage` reports it.
    pub fn lcid(self) -> u32 {
        self.0.lcid
    }

    /// The ISO 639 language (`cs` for cs-CZ): what localised texts are chosen by.
    pub fn language(self) -> &'static str {
        self.0.iso639_two_letter
    }

    /// The English name (`Czech (Czechia)`).
    pub fn english_name(self) -> &'static str {
        self.0.english_name
    }

    /// The BCP 47 tag as Windows spells it (`cs-CZ`).
    pub fn tag(self) -> &'static str {
        self.0.name
    }

    /// Parses a locale name, case-insensitively (`en-gb`, `sr-latn-rs`); `None` if Windows
    /// defines no such locale.
    pub fn from_tag(s: &str) -> Option<Locale> {
        let canonical: Vec<String> = s
            .trim()
            .split(['-', '_'])
            .enumerate()
            .map(|(i, part)| {
                let alpha = part.bytes().all(|b| b.is_ascii_alphabetic());
                if i == 0 {
                    part.to_ascii_lowercase()
                } else if alpha && part.len() == 4 {
                    let mut t = part.to_ascii_lowercase();
                    t[..1].make_ascii_uppercase();
                    t
                } else if alpha && part.len() == 2 {
                    part.to_ascii_uppercase()
                } else {
                    part.to_ascii_lowercase()
                }
            })
            .collect();
        let tag = canonical.join("-");
        <&'static lcid::LanguageId>::try_from(tag.as_str())
            .ok()
            .map(Locale)
    }
}

impl PartialEq for Locale {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Locale {}

impl std::hash::Hash for Locale {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl PartialOrd for Locale {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Locale {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.name.cmp(other.0.name)
    }
}

impl fmt::Debug for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locale({})", self.tag())
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl Serialize for Locale {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.tag())
    }
}

impl<'de> Deserialize<'de> for Locale {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Locale::from_tag(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a Windows locale")))
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
    /// Where the site comes in a rollout whose stages count sites (`sites: 1`): lowest first;
    /// sites without one come after, by name (`lockstep_site: { rollout_order: 1 }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_order: Option<u32>,
}

/// The Exchange role of a host (KB 328839 topologies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A front-end server: upgraded before every back-end where a playbook declares `tier-order`.
    FrontEnd,
    /// A back-end (mailbox) server.
    BackEnd,
    /// A standalone server, neither front-end nor back-end.
    Standalone,
    /// A Small Business Server.
    Sbs,
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
    /// NTLMv2 in the `Negotiate` scheme, bodies sealed over HTTP (Ansible's `ntlm`).
    #[default]
    Ntlm,
    /// SPNEGO as Windows clients and pypsrp send it (Ansible's `negotiate`): Kerberos first
    /// when the user is `user@REALM` and a ticket can be had from the realm's KDC, NTLM when
    /// not; bodies sealed over HTTP.
    Negotiate,
    /// HTTP Basic: over plain HTTP only with [`Connection::allow_basic_over_http`].
    Basic,
    /// Kerberos (Ansible's `kerberos`): the user is `user@REALM`, the node's service principal
    /// `HTTP/<address>` (or `ansible_winrm_kerberos_hostname_override`), the KDC from
    /// `krb5.conf`; bodies sealed over HTTP.
    Kerberos,
    /// WinRM certificate authentication (Ansible's `certificate`): a TLS client certificate
    /// (`ansible_winrm_cert_pem`, `ansible_winrm_cert_key_pem`) mapped to a user on the node;
    /// HTTPS only, no password.
    Certificate,
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
    /// An Ansible Vault envelope (`!vault` value, the ciphertext as written), opened with the
    /// operator's vault password when the connection is made.
    Vault(String),
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

/// What an Exchange server runs: present on the hosts whose inventory sets `exchange_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// Exchange role.
    pub role: Role,
    /// Exchange product installed.
    pub product: Product,
    /// Exchange edition installed.
    pub edition: Edition,
    /// Installed build as the inventory believes it (a planning input; live discovery checks it).
    pub build: Option<Version>,
}

/// One Windows server: any release, with or without Exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Computer name.
    pub name: Name,
    /// Site the host belongs to.
    pub site: Name,
    /// The Exchange server it is, if it runs Exchange; `None` for a plain Windows host.
    pub exchange: Option<Exchange>,
    /// Windows release: from `windows_release`, inferred from `windows_build`, or the usual
    /// release of the host's Exchange product; `None` when the inventory does not say (live
    /// discovery reads it from the node).
    pub windows: Option<WindowsRelease>,
    /// The full OS build as the inventory believes it (`10.0.17763.5696`: major, minor, build,
    /// update build revision), from `windows_build`; a planning input the node's registry checks.
    pub os_build: Option<Version>,
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

impl Host {
    /// The Exchange product line the host runs, if any.
    pub fn product(&self) -> Option<Product> {
        self.exchange.as_ref().map(|x| x.product)
    }

    /// Whether the host runs Exchange of product line `p`.
    pub fn runs(&self, p: Product) -> bool {
        self.product() == Some(p)
    }

    /// The Exchange role, if the host runs Exchange.
    pub fn role(&self) -> Option<Role> {
        self.exchange.as_ref().map(|x| x.role)
    }

    /// Whether the host is an Exchange server of role `r`.
    pub fn has_role(&self, r: Role) -> bool {
        self.role() == Some(r)
    }

    /// The Exchange edition, if the host runs Exchange.
    pub fn edition(&self) -> Option<Edition> {
        self.exchange.as_ref().map(|x| x.edition)
    }

    /// The Exchange build the inventory believes installed, if any.
    pub fn exchange_build(&self) -> Option<Version> {
        self.exchange.as_ref().and_then(|x| x.build)
    }
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

/// What a cluster group (a "role" in Failover Cluster Manager) serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupKind {
    /// A file server (a client access point and its shares).
    FileServer,
    /// A SQL Server failover cluster instance.
    Sql,
    /// A generic service, application or script.
    Generic,
    /// An Exchange virtual server (listed in [`Cluster::virtual_servers`]).
    ExchangeVirtualServer,
}

impl GroupKind {
    /// Every kind.
    pub const ALL: [GroupKind; 4] = [
        GroupKind::FileServer,
        GroupKind::Sql,
        GroupKind::Generic,
        GroupKind::ExchangeVirtualServer,
    ];

    /// The inventory spelling (`file-server`).
    pub fn tag(self) -> &'static str {
        match self {
            GroupKind::FileServer => "file-server",
            GroupKind::Sql => "sql",
            GroupKind::Generic => "generic",
            GroupKind::ExchangeVirtualServer => "exchange-virtual-server",
        }
    }
}

impl fmt::Display for GroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A cluster group other than the cluster's own group and its Exchange virtual servers: a file
/// server, a SQL Server instance, a generic application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterGroup {
    /// Group name (`FS1`, `SQL Server (MSSQLSERVER)`).
    pub name: Name,
    /// What it serves.
    pub kind: GroupKind,
    /// Node owning the group now, as the inventory believes (a planning input).
    pub owner: Name,
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
    /// Exchange virtual servers (none on a cluster without Exchange).
    pub virtual_servers: Vec<VirtualServer>,
    /// Its other groups (file servers, SQL Server instances, generic roles), in inventory order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<ClusterGroup>,
}

impl Cluster {
    /// Every group with its kind and believed owner: the cluster group (kind `None`), the
    /// Exchange virtual servers' groups, then the other groups.
    pub fn all_groups(&self) -> impl Iterator<Item = (&Name, Option<GroupKind>, &Name)> {
        std::iter::once((&self.cluster_group, None, &self.cluster_group_owner))
            .chain(
                self.virtual_servers
                    .iter()
                    .map(|v| (&v.group, Some(GroupKind::ExchangeVirtualServer), &v.owner)),
            )
            .chain(
                self.groups
                    .iter()
                    .map(|g| (&g.name, Some(g.kind), &g.owner)),
            )
    }
}

/// A load-balanced pool of front-ends, taken out and brought back together (`pool-together`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Pool name.
    pub name: Name,
    /// Site of the pool.
    pub site: Name,
    /// Member front-ends.
    pub members: Vec<Name>,
}

/// Scope of the front-end-before-back-end rule (`tier-order`).
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

    /// Site indices in rollout order: by `rollout_order` (lowest first), then the sites
    /// without one, in [`Fleet::sites`] order (by name).
    pub fn sites_in_rollout_order(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.sites.len()).collect();
        v.sort_by_key(|&i| (self.sites[i].rollout_order.unwrap_or(u32::MAX), i));
        v
    }

    /// The pool called `name` (case-insensitive).
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name.eq_ignore_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oem(tag: &str) -> u32 {
        Locale::from_tag(tag)
            .unwrap_or_else(|| panic!("{tag}"))
            .oem_codepage()
    }

    #[test]
    fn every_windows_locale_has_its_oem_code_page() {
        // The seeds' locales keep the pages the lab and the transport always used.
        assert_eq!(oem("en-US"), 437);
        assert_eq!(oem("it-IT"), 850);
        assert_eq!(oem("nl-NL"), 850);
        assert_eq!(oem("cs-CZ"), 852);
        assert_eq!(oem("ja-JP"), 932);
        // And the rest of the world.
        assert_eq!(oem("en-GB"), 850);
        assert_eq!(oem("de-CH"), 850);
        assert_eq!(oem("en-ZA"), 437);
        assert_eq!(oem("pl-PL"), 852);
        assert_eq!(oem("ru-RU"), 866);
        assert_eq!(oem("sr-Cyrl-RS"), 855);
        assert_eq!(oem("sr-Latn-RS"), 852);
        assert_eq!(oem("el-GR"), 737);
        assert_eq!(oem("tr-TR"), 857);
        assert_eq!(oem("he-IL"), 862);
        assert_eq!(oem("ar-SA"), 720);
        assert_eq!(oem("lt-LT"), 775);
        assert_eq!(oem("th-TH"), 874);
        assert_eq!(oem("zh-CN"), 936);
        assert_eq!(oem("ko-KR"), 949);
        assert_eq!(oem("zh-TW"), 950);
        assert_eq!(oem("vi-VN"), 1258);
        assert_eq!(oem("hi-IN"), 65001);
        assert_eq!(Locale::from_tag("ru-RU").unwrap().ansi_codepage(), 1251);
    }

    #[test]
    fn locale_names_parse_case_insensitively_and_carry_their_lcid() {
        assert_eq!(Locale::from_tag("EN-gb"), Some(Locale::EN_GB));
        assert_eq!(Locale::from_tag("sr-latn-rs").unwrap().tag(), "sr-Latn-RS");
        assert_eq!(Locale::from_tag("xx-YY"), None);
        assert_eq!(Locale::from_tag("en-XX"), None);
        let lcids: Vec<u32> = Locale::SEEDS.iter().map(|l| l.lcid()).collect();
        assert_eq!(lcids, [1033, 1029, 1040, 1043, 1041]);
        assert_eq!(Locale::EN_GB.lcid(), 0x0809);
        assert_eq!(Locale::CS_CZ.language(), "cs");
        let json = serde_json::to_string(&Locale::EN_GB).unwrap();
        assert_eq!(json, "\"en-GB\"");
        assert_eq!(
            serde_json::from_str::<Locale>("\"de-de\"").unwrap(),
            Locale::DE_DE
        );
        assert!(serde_json::from_str::<Locale>("\"klingon\"").is_err());
    }
}
