//! The lab's configuration: time scale, durations, installer packages, services, per-host
//! faults and leftovers. Every field has a default fit for tests ([`LabConfig::default`]).

use std::collections::BTreeMap;

use lockstep_core::{Edition, Product, Role, Version, WindowsRelease};
use serde::{Deserialize, Serialize};

use super::fault::Fault;

/// How the lab behaves. Deserialises from YAML/JSON with every field optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabConfig {
    /// Multiplies every simulated duration (an installer of 1200 s takes 0.6 s at 0.0005).
    pub time_scale: f64,
    /// How long a restart keeps a host down, in simulated seconds.
    pub reboot_secs: f64,
    /// Between `shutdown /r` (or an installer's 1641) and the endpoint going away, simulated s.
    pub shutdown_delay_secs: f64,
    /// The simulated wall clock at lab start, ms since the Unix epoch (`None`: now). Simulated
    /// time then runs `1 / time_scale` times faster than real time.
    pub start_wall_ms: Option<u64>,
    /// Installer packages the lab recognises (by case-insensitive path suffix).
    pub packages: Vec<PackageSpec>,
    /// Services per role, replacing the default set for that role.
    pub services: BTreeMap<Role, Vec<ServiceSpec>>,
    /// The antivirus service name (G5).
    pub antivirus_service: String,
    /// The backup agent service name (G5).
    pub backup_service: String,
    /// Per-host settings, by host name (case-insensitive).
    pub hosts: BTreeMap<String, HostConfig>,
    /// Whether a process started in a WinRM session without delegable credentials (Basic,
    /// NTLM, Negotiate-NTLM, Kerberos without delegation) may read a UNC path. `refuse` (the
    /// default) is Windows: "Access is denied". `allow` rehearses an old setup (CredSSP, or
    /// Kerberos delegation everywhere) where installers ran straight from a share.
    pub double_hop: DoubleHop,
}

/// Whether a remote session reaches a second server (see [`LabConfig::double_hop`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DoubleHop {
    /// As Windows: no delegable credentials, no share.
    #[default]
    Refuse,
    /// Every session may read shares (a rehearsal of CredSSP-like setups).
    Allow,
}

/// Per-host settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Faults in force from the start.
    pub faults: Vec<Fault>,
    /// Extra running processes (`setup.exe`: a stray setup, G6).
    pub processes: Vec<String>,
    /// A reboot is pending from the start.
    pub pending_reboot: bool,
    /// Installed hotfixes from the start (`KB831464`).
    pub hotfixes: Vec<String>,
    /// Services stopped at the start.
    pub stopped_services: Vec<String>,
    /// Exchange build, overriding the inventory's.
    pub build: Option<Version>,
}

/// A service and how it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Service (key) name.
    pub name: String,
    /// Display name (defaults to the name).
    #[serde(default)]
    pub display: Option<String>,
    /// Start type.
    #[serde(default)]
    pub start: StartType,
}

/// A service's start type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartType {
    /// Started at boot.
    #[default]
    Auto,
    /// Started on demand.
    Manual,
    /// Never started.
    Disabled,
}

impl StartType {
    /// WMI `StartMode`.
    pub fn wmi(self) -> &'static str {
        match self {
            StartType::Auto => "Auto",
            StartType::Manual => "Manual",
            StartType::Disabled => "Disabled",
        }
    }
}

/// What a package installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PackageEffect {
    /// An Exchange service pack (or build-changing hotfix): leaves `build` behind.
    ServicePack {
        /// The build left behind.
        build: Version,
    },
    /// A hotfix: adds `id` to the installed hotfixes.
    Hotfix {
        /// `KB831464`.
        id: String,
    },
    /// A Windows update (`.msu`, installed by `wusa.exe`): adds `id` to the hotfixes; a
    /// cumulative update also sets the update build revision (UBR) at the next restart.
    WindowsUpdate {
        /// `KB5035849`.
        id: String,
        /// The UBR after the restart (`5576`: 10.0.17763.5576).
        #[serde(default)]
        ubr: Option<u32>,
    },
}

/// An installer package the lab recognises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSpec {
    /// Matched case-insensitively against the end of the command's first word.
    pub path: String,
    /// The Exchange product it is for; `None` for a Windows package.
    #[serde(default)]
    pub product: Option<Product>,
    /// Editions it applies to (empty: any) (E2-ED).
    #[serde(default)]
    pub editions: Vec<Edition>,
    /// Windows releases it applies to (empty: any).
    #[serde(default)]
    pub windows: Vec<WindowsRelease>,
    /// What it installs.
    pub effect: PackageEffect,
    /// Running time in simulated seconds (silent meanwhile).
    pub duration_secs: f64,
    /// Exit code on success: 0, 3010 (restart required) or 1641 (restart started).
    #[serde(default)]
    pub exit_code: i32,
    /// Size of the lab's stand-in file, bytes ([`DEFAULT_PACKAGE_BYTES`] when absent).
    #[serde(default)]
    pub size: Option<usize>,
}

/// The size of a package's stand-in file when its spec gives none.
pub const DEFAULT_PACKAGE_BYTES: usize = 20 * 1024;

impl PackageSpec {
    /// The file's place under a package root: the share path without `\\server\share\`,
    /// with `/` (`E2K3SP2/setup/i386/update.exe`); a bare file name stays as it is.
    pub fn relative_path(&self) -> String {
        let p = self.path.trim_start_matches('\\');
        let rel = if self.path.starts_with("\\\\") {
            p.splitn(3, '\\').nth(2).unwrap_or(p)
        } else {
            p
        };
        rel.replace('\\', "/")
    }

    /// The bytes of the lab's stand-in file: deterministic (SHA-256 blocks of the path), so
    /// the controller's copy, the node's copy and the playbooks' `sha256` agree.
    pub fn contents(&self) -> Vec<u8> {
        use sha2::{Digest, Sha256};
        let size = self.size.unwrap_or(DEFAULT_PACKAGE_BYTES);
        let mut out = Vec::with_capacity(size + 32);
        out.extend_from_slice(b"MZ");
        let mut i = 0u64;
        while out.len() < size {
            let mut h = Sha256::new();
            h.update(self.path.to_ascii_lowercase().as_bytes());
            h.update(i.to_le_bytes());
            out.extend_from_slice(&h.finalize());
            i += 1;
        }
        out.truncate(size);
        out
    }

    /// SHA-256 of [`PackageSpec::contents`], lower-case hex.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.contents())
    }

    /// The image name of the running installer (`update.exe`).
    pub fn image(&self) -> String {
        self.path
            .rsplit(['\\', '/'])
            .next()
            .unwrap_or(&self.path)
            .to_ascii_lowercase()
    }
}

impl Default for LabConfig {
    fn default() -> Self {
        let sp = |path: &str, product, build: Version| PackageSpec {
            path: path.to_owned(),
            product: Some(product),
            // The Exchange of Small Business Server takes the same service pack (E3-SBS, E2-SBS,
            // E5-SBS: "just run it"); Conferencing Server has its own (E2-ED).
            editions: vec![
                Edition::Standard,
                Edition::Enterprise,
                Edition::SmallBusiness,
            ],
            windows: vec![],
            effect: PackageEffect::ServicePack { build },
            duration_secs: 1200.0,
            exit_code: 0,
            size: None,
        };
        LabConfig {
            time_scale: 0.0005,
            reboot_secs: 120.0,
            shutdown_delay_secs: 10.0,
            start_wall_ms: None,
            packages: vec![
                sp(
                    r"\\fs01\install$\E2K3SP2\setup\i386\update.exe",
                    Product::Exchange2003,
                    Version::new(6, 5, 7638, 2),
                ),
                // Small Business Server 2000 takes SBS 2000 SP1, one integrated setup with
                // Windows 2000 SP3 and Exchange 2000 SP3 (E2-SBS), not the Exchange SP3 alone.
                PackageSpec {
                    editions: vec![Edition::Standard, Edition::Enterprise],
                    ..sp(
                        r"\\fs01\install$\E2KSP3\setup\i386\update.exe",
                        Product::Exchange2000,
                        Version::new(6, 0, 6249, 0),
                    )
                },
                PackageSpec {
                    editions: vec![Edition::SmallBusiness],
                    duration_secs: 3600.0,
                    ..sp(
                        r"\\fs01\install$\SBS2000SP1\sbssp1.exe",
                        Product::Exchange2000,
                        Version::new(6, 0, 6249, 0),
                    )
                },
                sp(
                    r"\\fs01\install$\EX55SP4\server\i386\update.exe",
                    Product::Exchange55,
                    Version::new(5, 5, 2653, 0),
                ),
                PackageSpec {
                    path: r"\\fs01\install$\KB831464\WindowsServer2003-KB831464-x86-ENU.exe"
                        .to_owned(),
                    product: None,
                    editions: vec![],
                    windows: vec![WindowsRelease::Windows2003],
                    effect: PackageEffect::Hotfix {
                        id: "KB831464".to_owned(),
                    },
                    duration_secs: 60.0,
                    exit_code: 3010,
                    size: None,
                },
                // The March 2024 cumulative updates of Server 2019 and 2022 (OS builds
                // 17763.5576 and 20348.2340), as `wusa.exe` gets them.
                msu(
                    "windows10.0-kb5035849-x64.msu",
                    WindowsRelease::Windows2019,
                    "KB5035849",
                    5576,
                ),
                msu(
                    "windows10.0-kb5035857-x64.msu",
                    WindowsRelease::Windows2022,
                    "KB5035857",
                    2340,
                ),
                // The out-of-band update of hotfix-waves.yml (any release that takes .msu).
                PackageSpec {
                    path: "windows10.0-kb5037422-x64.msu".to_owned(),
                    product: None,
                    editions: vec![],
                    windows: vec![],
                    effect: PackageEffect::WindowsUpdate {
                        id: "KB5037422".to_owned(),
                        ubr: None,
                    },
                    duration_secs: 300.0,
                    exit_code: 3010,
                    size: None,
                },
            ],
            services: BTreeMap::new(),
            antivirus_service: "McShield".to_owned(),
            backup_service: "BackupExecAgentAccelerator".to_owned(),
            hosts: BTreeMap::new(),
            double_hop: DoubleHop::Refuse,
        }
    }
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl LabConfig {
    /// Writes every package's stand-in file under `root` (at [`PackageSpec::relative_path`]),
    /// for a controller to stage from; returns the files written.
    pub fn write_packages(
        &self,
        root: &std::path::Path,
    ) -> std::io::Result<Vec<std::path::PathBuf>> {
        let mut written = Vec::new();
        for p in &self.packages {
            let path = root.join(p.relative_path());
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, p.contents())?;
            written.push(path);
        }
        Ok(written)
    }
}

/// A cumulative update for one Windows release.
fn msu(path: &str, release: WindowsRelease, id: &str, ubr: u32) -> PackageSpec {
    PackageSpec {
        path: path.to_owned(),
        product: None,
        editions: vec![],
        windows: vec![release],
        effect: PackageEffect::WindowsUpdate {
            id: id.to_owned(),
            ubr: Some(ubr),
        },
        duration_secs: 900.0,
        exit_code: 3010,
        size: None,
    }
}

impl LabConfig {
    /// The settings of `host` (case-insensitive), if any.
    pub fn host(&self, host: &str) -> Option<&HostConfig> {
        self.hosts
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(host))
            .map(|(_, v)| v)
    }

    /// The default services of a host of `role` (cluster resources excluded).
    pub fn default_services(&self, role: Option<Role>) -> Vec<ServiceSpec> {
        let s = |name: &str, display: &str| ServiceSpec {
            name: name.to_owned(),
            display: Some(display.to_owned()),
            start: StartType::Auto,
        };
        let Some(role) = role else {
            // A plain Windows server: what every member server runs.
            return vec![
                s("W32Time", "Windows Time"),
                s("WinRM", "Windows Remote Management (WS-Management)"),
                s("LanmanServer", "Server"),
                s("EventLog", "Windows Event Log"),
                s("Spooler", "Print Spooler"),
                s(&self.antivirus_service, "Network Associates McShield"),
                s(&self.backup_service, "Backup Exec Agent Accelerator"),
            ];
        };
        if let Some(s) = self.services.get(&role) {
            return s.clone();
        }
        vec![
            s("MSExchangeSA", "Microsoft Exchange System Attendant"),
            s("MSExchangeIS", "Microsoft Exchange Information Store"),
            s("MSExchangeMTA", "Microsoft Exchange MTA Stacks"),
            s("RESvc", "Microsoft Exchange Routing Engine"),
            s("SMTPSVC", "Simple Mail Transfer Protocol (SMTP)"),
            s("W3SVC", "World Wide Web Publishing Service"),
            s("IISADMIN", "IIS Admin Service"),
            s("SNMP", "SNMP Service"),
            s(&self.antivirus_service, "Network Associates McShield"),
            s(&self.backup_service, "Backup Exec Agent Accelerator"),
            s("MSDTC", "Distributed Transaction Coordinator"),
        ]
    }
}
