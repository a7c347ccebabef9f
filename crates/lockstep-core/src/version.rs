//! Build numbers, Windows releases, Exchange products and editions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A dotted build number: `6.5.7638.2`. Missing trailing parts compare as zero; the default is
/// `0.0.0.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Version {
    /// Major (6 for Exchange 2000/2003, 5 for 5.5).
    pub major: u32,
    /// Minor (5 for 2003 and 5.5, 0 for 2000).
    pub minor: u32,
    /// Build (7638 for 2003 SP2).
    pub build: u32,
    /// Revision (2 for 2003 SP2).
    pub revision: u32,
}

impl Version {
    /// A version from its four parts.
    pub const fn new(major: u32, minor: u32, build: u32, revision: u32) -> Self {
        Version {
            major,
            minor,
            build,
            revision,
        }
    }
}

/// A build number that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a build number (expected e.g. `6.5.7638.2`)")]
pub struct VersionParseError(pub String);

impl FromStr for Version {
    type Err = VersionParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionParseError(s.to_owned());
        let parts: Vec<&str> = s.trim().split('.').collect();
        if parts.len() < 2 || parts.len() > 4 {
            return Err(err());
        }
        let mut n = [0u32; 4];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            n[i] = p.parse().map_err(|_| err())?;
        }
        Ok(Version::new(n[0], n[1], n[2], n[3]))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.major, self.minor, self.build, self.revision
        )
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A Windows (Server) release, from NT 4.0 to Server 2025.
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
    /// Windows Server 2003 R2.
    #[serde(rename = "2003r2")]
    Windows2003R2,
    /// Windows Server 2008.
    #[serde(rename = "2008")]
    Windows2008,
    /// Windows Server 2008 R2.
    #[serde(rename = "2008r2")]
    Windows2008R2,
    /// Windows Server 2012.
    #[serde(rename = "2012")]
    Windows2012,
    /// Windows Server 2012 R2.
    #[serde(rename = "2012r2")]
    Windows2012R2,
    /// Windows Server 2016.
    #[serde(rename = "2016")]
    Windows2016,
    /// Windows Server 2019.
    #[serde(rename = "2019")]
    Windows2019,
    /// Windows Server 2022.
    #[serde(rename = "2022")]
    Windows2022,
    /// Windows Server 2025.
    #[serde(rename = "2025")]
    Windows2025,
}

impl WindowsRelease {
    /// Every release, oldest first.
    pub const ALL: [WindowsRelease; 12] = [
        WindowsRelease::Nt4,
        WindowsRelease::Windows2000,
        WindowsRelease::Windows2003,
        WindowsRelease::Windows2003R2,
        WindowsRelease::Windows2008,
        WindowsRelease::Windows2008R2,
        WindowsRelease::Windows2012,
        WindowsRelease::Windows2012R2,
        WindowsRelease::Windows2016,
        WindowsRelease::Windows2019,
        WindowsRelease::Windows2022,
        WindowsRelease::Windows2025,
    ];

    /// The inventory spelling (`windows_release: 2019`, `2008r2`, `nt4`).
    pub fn tag(self) -> &'static str {
        match self {
            WindowsRelease::Nt4 => "nt4",
            WindowsRelease::Windows2000 => "2000",
            WindowsRelease::Windows2003 => "2003",
            WindowsRelease::Windows2003R2 => "2003r2",
            WindowsRelease::Windows2008 => "2008",
            WindowsRelease::Windows2008R2 => "2008r2",
            WindowsRelease::Windows2012 => "2012",
            WindowsRelease::Windows2012R2 => "2012r2",
            WindowsRelease::Windows2016 => "2016",
            WindowsRelease::Windows2019 => "2019",
            WindowsRelease::Windows2022 => "2022",
            WindowsRelease::Windows2025 => "2025",
        }
    }

    /// Parses an inventory spelling, ignoring case and blanks (`2008 R2` is `2008r2`).
    pub fn from_tag(s: &str) -> Option<WindowsRelease> {
        let t: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        WindowsRelease::ALL.into_iter().find(|r| r.tag() == t)
    }

    /// The release's kernel version and build at release to manufacturing: `10.0.17763.0` for
    /// Server 2019 (the revision, the update build revision "UBR", grows with monthly updates).
    /// Server 2008 shipped at SP1's build 6001; 2003 R2 shares 2003's 3790.
    pub fn rtm_build(self) -> Version {
        match self {
            WindowsRelease::Nt4 => Version::new(4, 0, 1381, 0),
            WindowsRelease::Windows2000 => Version::new(5, 0, 2195, 0),
            WindowsRelease::Windows2003 | WindowsRelease::Windows2003R2 => {
                Version::new(5, 2, 3790, 0)
            }
            WindowsRelease::Windows2008 => Version::new(6, 0, 6001, 0),
            WindowsRelease::Windows2008R2 => Version::new(6, 1, 7600, 0),
            WindowsRelease::Windows2012 => Version::new(6, 2, 9200, 0),
            WindowsRelease::Windows2012R2 => Version::new(6, 3, 9600, 0),
            WindowsRelease::Windows2016 => Version::new(10, 0, 14393, 0),
            WindowsRelease::Windows2019 => Version::new(10, 0, 17763, 0),
            WindowsRelease::Windows2022 => Version::new(10, 0, 20348, 0),
            WindowsRelease::Windows2025 => Version::new(10, 0, 26100, 0),
        }
    }

    /// Whether `v` is a build of this release (same major, minor and build number).
    pub fn owns(self, v: Version) -> bool {
        let r = self.rtm_build();
        let build_ok = match self {
            // Service packs moved these builds on.
            WindowsRelease::Windows2008 => (6001..=6003).contains(&v.build),
            WindowsRelease::Windows2008R2 => matches!(v.build, 7600 | 7601),
            _ => v.build == r.build,
        };
        r.major == v.major && r.minor == v.minor && build_ok
    }

    /// The marketing name (`Windows Server 2019`).
    pub fn product_name(self) -> &'static str {
        match self {
            WindowsRelease::Nt4 => "Windows NT 4.0",
            WindowsRelease::Windows2000 => "Windows 2000 Server",
            WindowsRelease::Windows2003 => "Windows Server 2003",
            WindowsRelease::Windows2003R2 => "Windows Server 2003 R2",
            WindowsRelease::Windows2008 => "Windows Server 2008",
            WindowsRelease::Windows2008R2 => "Windows Server 2008 R2",
            WindowsRelease::Windows2012 => "Windows Server 2012",
            WindowsRelease::Windows2012R2 => "Windows Server 2012 R2",
            WindowsRelease::Windows2016 => "Windows Server 2016",
            WindowsRelease::Windows2019 => "Windows Server 2019",
            WindowsRelease::Windows2022 => "Windows Server 2022",
            WindowsRelease::Windows2025 => "Windows Server 2025",
        }
    }

    /// Whether the release ships Windows PowerShell with the FailoverClusters module
    /// (`Get-ClusterNode`, `Suspend-ClusterNode -Drain`): Server 2008 R2 and later.
    pub fn has_cluster_cmdlets(self) -> bool {
        self >= WindowsRelease::Windows2008R2
    }

    /// Whether `cluster.exe` is installed with failover clustering: up to Server 2012 R2
    /// (an optional feature from 2012 on, gone from 2016).
    pub fn has_cluster_exe(self) -> bool {
        self <= WindowsRelease::Windows2012R2
    }

    /// Whether updates install as `.msu` packages through `wusa.exe`: Server 2008 and later.
    pub fn uses_msu(self) -> bool {
        self >= WindowsRelease::Windows2008
    }
}

impl fmt::Display for WindowsRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.product_name())
    }
}

/// An Exchange product line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Product {
    /// Exchange Server 5.5.
    #[serde(rename = "5.5")]
    Exchange55,
    /// Exchange 2000 Server.
    #[serde(rename = "2000")]
    Exchange2000,
    /// Exchange Server 2003.
    #[serde(rename = "2003")]
    Exchange2003,
}

impl Product {
    /// The build of the product's release to manufacturing.
    pub fn rtm(self) -> Version {
        match self {
            Product::Exchange55 => Version::new(5, 5, 1960, 0),
            Product::Exchange2000 => Version::new(6, 0, 4417, 0),
            Product::Exchange2003 => Version::new(6, 5, 6944, 0),
        }
    }

    /// Known service-pack builds (KB 328839 section 5 and KB 152439), oldest first.
    pub fn service_packs(self) -> &'static [(&'static str, Version)] {
        const E55: &[(&str, Version)] = &[
            ("SP1", Version::new(5, 5, 2232, 0)),
            ("SP2", Version::new(5, 5, 2448, 0)),
            ("SP3", Version::new(5, 5, 2650, 0)),
            ("SP4", Version::new(5, 5, 2653, 0)),
        ];
        const E2000: &[(&str, Version)] = &[
            ("SP1", Version::new(6, 0, 4712, 0)),
            ("SP2", Version::new(6, 0, 5762, 0)),
            ("SP3", Version::new(6, 0, 6249, 0)),
        ];
        const E2003: &[(&str, Version)] = &[
            ("SP1", Version::new(6, 5, 7226, 6)),
            ("SP2", Version::new(6, 5, 7638, 2)),
        ];
        match self {
            Product::Exchange55 => E55,
            Product::Exchange2000 => E2000,
            Product::Exchange2003 => E2003,
        }
    }

    /// The product line a build belongs to, if any.
    pub fn of_build(v: Version) -> Option<Product> {
        [
            Product::Exchange55,
            Product::Exchange2000,
            Product::Exchange2003,
        ]
        .into_iter()
        .find(|p| p.owns(v))
    }

    /// Whether `v` belongs to this product line (same major.minor).
    pub fn owns(self, v: Version) -> bool {
        let r = self.rtm();
        r.major == v.major && r.minor == v.minor
    }

    /// How Exchange System Manager shows a build: `Version 6.5 (Build 7638.2: Service Pack 2)`.
    pub fn describe(self, v: Version) -> String {
        let sp = self
            .service_packs()
            .iter()
            .rev()
            .find(|(_, b)| b.build == v.build)
            .map(|(n, _)| format!(": Service Pack {}", &n[2..]))
            .unwrap_or_default();
        format!(
            "Version {}.{} (Build {}.{}{})",
            v.major, v.minor, v.build, v.revision, sp
        )
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Product::Exchange55 => "Exchange Server 5.5",
            Product::Exchange2000 => "Exchange 2000 Server",
            Product::Exchange2003 => "Exchange Server 2003",
        })
    }
}

/// An Exchange edition; a package for one edition must not be applied to another (E2-ED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Edition {
    /// Standard edition.
    Standard,
    /// Enterprise edition.
    Enterprise,
    /// Exchange 2000 Conferencing Server (its own service pack; SP3 is the last).
    Conferencing,
    /// The Exchange of Small Business Server.
    SmallBusiness,
}

impl fmt::Display for Edition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Edition::Standard => "Standard",
            Edition::Enterprise => "Enterprise",
            Edition::Conferencing => "Conferencing",
            Edition::SmallBusiness => "Small Business",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        let sp1: Version = "6.5.7226.6".parse().unwrap();
        let sp2: Version = "6.5.7638.2".parse().unwrap();
        assert!(sp1 < sp2);
        assert_eq!("6.5".parse::<Version>().unwrap(), Version::new(6, 5, 0, 0));
        assert!("6.x.1".parse::<Version>().is_err());
        assert!("".parse::<Version>().is_err());
        assert_eq!(sp2.to_string(), "6.5.7638.2");
    }

    #[test]
    fn windows_releases_parse_and_carry_their_builds() {
        for r in WindowsRelease::ALL {
            assert_eq!(WindowsRelease::from_tag(r.tag()), Some(r));
            assert!(r.owns(r.rtm_build()), "{r}");
        }
        assert_eq!(
            WindowsRelease::from_tag("2008 R2"),
            Some(WindowsRelease::Windows2008R2)
        );
        assert_eq!(WindowsRelease::from_tag("2017"), None);
        let ubr: Version = "10.0.17763.5696".parse().unwrap();
        assert!(WindowsRelease::Windows2019.owns(ubr));
        assert!(!WindowsRelease::Windows2022.owns(ubr));
        assert!(WindowsRelease::Windows2019.rtm_build() < ubr);
        assert!(WindowsRelease::Windows2019.has_cluster_cmdlets());
        assert!(!WindowsRelease::Windows2019.has_cluster_exe());
        assert!(WindowsRelease::Windows2003.has_cluster_exe());
        assert!(!WindowsRelease::Windows2003.has_cluster_cmdlets());
        // Serde spelling is the inventory spelling.
        for r in WindowsRelease::ALL {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.tag()));
        }
    }

    #[test]
    fn describes_like_system_manager() {
        let v = Version::new(6, 5, 7638, 2);
        assert_eq!(
            Product::Exchange2003.describe(v),
            "Version 6.5 (Build 7638.2: Service Pack 2)"
        );
        assert_eq!(
            Product::Exchange2003.describe(Version::new(6, 5, 7226, 6)),
            "Version 6.5 (Build 7226.6: Service Pack 1)"
        );
        assert!(Product::Exchange2003.owns(v));
        assert!(!Product::Exchange2000.owns(v));
    }
}
