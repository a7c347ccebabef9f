//! Exchange products, editions and build numbers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A dotted build number: `6.5.7638.2`. Missing trailing parts compare as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
