//! WQL over the model: `SELECT <props|*> FROM <class> [WHERE Prop='value' [AND ...]]` on
//! `root/MSCluster` (only while the node's Cluster service runs), `root/cimv2` and, on Exchange
//! 2003 servers, `root/MicrosoftExchangeV2` (`Exchange_Server`).

use lockstep_core::{Product, Version};

use super::state::State;
use crate::backend::{WmiObject, WqlError};

/// A parsed WQL query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WqlQuery {
    /// Selected properties; empty for `*`.
    pub props: Vec<String>,
    /// Class name.
    pub class: String,
    /// `Prop = 'value'` conditions, all of which must hold.
    pub conditions: Vec<(String, String)>,
}

fn bad(q: &str, why: &str) -> WqlError {
    WqlError::InvalidQuery(format!("`{q}`: {why}"))
}

/// Splits on a keyword (case-insensitive, surrounded by whitespace) outside quotes.
fn split_kw<'a>(s: &'a str, kw: &str) -> Vec<&'a str> {
    let lower = s.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let kw = format!(" {} ", kw.to_ascii_lowercase());
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if lower[i..].starts_with(&kw) => {
                parts.push(&s[start..i]);
                start = i + kw.len();
                i = start;
                continue;
            }
            None => {}
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}

impl WqlQuery {
    /// Parses a query.
    pub fn parse(q: &str) -> Result<WqlQuery, WqlError> {
        let text = format!(" {} ", q.trim());
        let after_select = text
            .get(..8)
            .filter(|p| p.eq_ignore_ascii_case(" select "))
            .map(|_| &text[8..])
            .ok_or_else(|| bad(q, "expected SELECT"))?;
        let parts = split_kw(after_select, "from");
        let [props, rest] = parts.as_slice() else {
            return Err(bad(q, "expected one FROM"));
        };
        let props: Vec<String> = props
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        if props.is_empty() {
            return Err(bad(q, "no properties"));
        }
        let props = if props.len() == 1 && props[0] == "*" {
            Vec::new()
        } else {
            props
        };
        let parts = split_kw(rest, "where");
        let (class, cond) = match parts.as_slice() {
            [class] => (class.trim(), None),
            [class, cond] => (class.trim(), Some(*cond)),
            _ => return Err(bad(q, "more than one WHERE")),
        };
        if class.is_empty() || !class.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad(q, "bad class name"));
        }
        let mut conditions = Vec::new();
        if let Some(cond) = cond {
            for c in split_kw(&format!(" {cond} "), "and") {
                let (k, v) = c
                    .split_once('=')
                    .ok_or_else(|| bad(q, "conditions must be Prop='value'"))?;
                let k = k.trim();
                let v = v.trim();
                let v = v
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                    .unwrap_or(v);
                if k.is_empty() {
                    return Err(bad(q, "empty property in WHERE"));
                }
                conditions.push((k.to_owned(), v.to_owned()));
            }
        }
        Ok(WqlQuery {
            props,
            class: class.to_owned(),
            conditions,
        })
    }
}

fn obj(pairs: &[(&str, String)]) -> WmiObject {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// CIM datetime of a Unix time in ms: `20261121081131.123000+000` (the civil date and time in
/// UTC).
pub(crate) fn cim_datetime(ms: u64) -> String {
    let t = i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    let d = jiff::tz::Offset::UTC.to_datetime(t);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}.{:06}+000",
        d.year(),
        d.month(),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.subsec_nanosecond() / 1000
    )
}

/// `Exchange_Server.ExchangeVersion` as Exchange 2003 writes it: `Version 6.5 (Build 7638.2:
/// Service Pack 2)`, without the service-pack part for a build it does not name.
fn exchange_version(v: Version) -> String {
    let sp = match (v.major, v.minor, v.build) {
        (6, 5, 7226) => ": Service Pack 1",
        (6, 5, 7638) => ": Service Pack 2",
        _ => "",
    };
    format!(
        "Version {}.{} (Build {}.{}{sp})",
        v.major, v.minor, v.build, v.revision
    )
}

impl State {
    /// Runs a WQL query on host `h`.
    pub(crate) fn wql(
        &self,
        h: usize,
        namespace: &str,
        query: &str,
    ) -> Result<Vec<WmiObject>, WqlError> {
        let ns = namespace.replace('\\', "/").to_ascii_lowercase();
        let ns = ns.trim_start_matches('/');
        let q = WqlQuery::parse(query)?;
        let class = q.class.to_ascii_lowercase();
        let node = &self.hosts[h];
        let all: Vec<WmiObject> = match ns {
            "root/mscluster" => {
                let Some(c) = node.cluster.filter(|_| self.clussvc_running(h)) else {
                    return Err(WqlError::NamespaceUnavailable(namespace.to_owned()));
                };
                self.mscluster(c, &class, query)?
            }
            "root/cimv2" => self.cimv2(h, &class, query)?,
            // Exchange 2003's WMI provider: every Exchange 2003 server of the organisation and
            // every virtual server, with `ExchangeVersion` as Exchange writes it.
            "root/microsoftexchangev2" if node.product == Some(Product::Exchange2003) => {
                self.exchange_v2(&class, query)?
            }
            _ => return Err(WqlError::NamespaceUnavailable(namespace.to_owned())),
        };
        select(all, &q, query)
    }

    /// `root/MSCluster` on a node of cluster `c` (its Cluster service running).
    fn mscluster(&self, c: usize, class: &str, query: &str) -> Result<Vec<WmiObject>, WqlError> {
        let cl = &self.clusters[c];
        Ok(match class {
            "mscluster_node" => cl
                .nodes
                .iter()
                .map(|&n| {
                    obj(&[
                        ("Name", self.hosts[n].name.clone()),
                        ("State", (self.node_state(n) as u32).to_string()),
                    ])
                })
                .collect(),
            "mscluster_resourcegroup" => cl
                .groups
                .iter()
                .map(|g| {
                    obj(&[
                        ("Name", g.name.clone()),
                        ("State", (g.state() as u32).to_string()),
                    ])
                })
                .collect(),
            "mscluster_nodetoactivegroup" => cl
                .groups
                .iter()
                .map(|g| {
                    obj(&[
                        (
                            "GroupComponent",
                            format!("MSCluster_Node.Name=\"{}\"", self.hosts[g.owner].name),
                        ),
                        (
                            "PartComponent",
                            format!("MSCluster_ResourceGroup.Name=\"{}\"", g.name),
                        ),
                    ])
                })
                .collect(),
            "mscluster_resource" => cl
                .groups
                .iter()
                .flat_map(|g| g.resources.iter())
                .map(|r| {
                    obj(&[
                        ("Name", r.name.clone()),
                        ("Type", r.kind.type_name().to_owned()),
                        ("State", r.state.wmi().to_string()),
                    ])
                })
                .collect(),
            "mscluster_resourcegrouptoresource" => cl
                .groups
                .iter()
                .flat_map(|g| {
                    g.resources.iter().map(move |r| {
                        obj(&[
                            (
                                "GroupComponent",
                                format!("MSCluster_ResourceGroup.Name=\"{}\"", g.name),
                            ),
                            (
                                "PartComponent",
                                format!("MSCluster_Resource.Name=\"{}\"", r.name),
                            ),
                        ])
                    })
                })
                .collect(),
            _ => return Err(bad(query, "unknown class")),
        })
    }

    /// `root/cimv2` on host `h`.
    fn cimv2(&self, h: usize, class: &str, query: &str) -> Result<Vec<WmiObject>, WqlError> {
        let node = &self.hosts[h];
        Ok(match class {
            "win32_service" => node
                .services
                .iter()
                .map(|s| {
                    let running = self.service_running(h, s);
                    obj(&[
                        ("Name", s.name.clone()),
                        ("DisplayName", s.display.clone()),
                        (
                            "State",
                            if running { "Running" } else { "Stopped" }.to_owned(),
                        ),
                        ("StartMode", s.start.wmi().to_owned()),
                        ("Started", if running { "true" } else { "false" }.to_owned()),
                    ])
                })
                .collect(),
            "win32_process" => super::commands::SYSTEM_PROCESSES
                .iter()
                .map(|(pid, name)| (*pid, (*name).to_owned()))
                .chain(node.processes.iter().cloned())
                .map(|(pid, name)| obj(&[("Name", name.clone()), ("ProcessId", pid.to_string())]))
                .collect(),
            "win32_operatingsystem" => {
                let caption = super::commands::os_caption(node.windows);
                let b = node.os_build;
                let version = format!("{}.{}.{}", b.major, b.minor, b.build);
                vec![obj(&[
                    ("Caption", caption.to_owned()),
                    ("CSName", node.name.clone()),
                    ("LastBootUpTime", cim_datetime(node.boot_ms)),
                    ("LocalDateTime", cim_datetime(self.sim_now_ms())),
                    ("OSLanguage", node.locale.lcid().to_string()),
                    ("Version", version),
                ])]
            }
            "win32_quickfixengineering" => node
                .hotfixes
                .iter()
                .map(|id| obj(&[("HotFixID", id.clone()), ("CSName", node.name.clone())]))
                .collect(),
            // One fixed disk per node: a 2003-era 72 GB system disk (20 GiB free unless the
            // lab config says otherwise) whose free space shrinks by 512 MiB for every
            // installed hotfix (their uninstall folders), so it moves as packages land.
            "win32_logicaldisk" => {
                const SIZE: u64 = 73_372_631_040;
                let used = 536_870_912 * node.hotfixes.len() as u64;
                vec![obj(&[
                    ("DeviceID", "C:".to_owned()),
                    ("DriveType", "3".to_owned()),
                    ("FileSystem", "NTFS".to_owned()),
                    ("FreeSpace", node.free_disk.saturating_sub(used).to_string()),
                    ("Size", SIZE.to_string()),
                ])]
            }
            // The Application log only (`WHERE Logfile='Application'` selects it; the lab
            // keeps no other log), newest first as Windows returns it.
            "win32_ntlogevent" => node
                .app_log
                .iter()
                .rev()
                .map(|e| {
                    obj(&[
                        ("Logfile", "Application".to_owned()),
                        ("RecordNumber", e.record_number.to_string()),
                        ("EventCode", e.event_code.to_string()),
                        ("EventIdentifier", e.event_code.to_string()),
                        ("SourceName", e.source.clone()),
                        ("Type", "Error".to_owned()),
                        ("ComputerName", node.name.clone()),
                        ("TimeGenerated", cim_datetime(e.time_ms)),
                        ("Message", e.message.clone()),
                    ])
                })
                .collect(),
            "win32_computersystem" => vec![obj(&[
                ("Name", node.name.clone()),
                ("Domain", "lab.local".to_owned()),
            ])],
            _ => return Err(bad(query, "unknown class")),
        })
    }

    /// `root/MicrosoftExchangeV2` (on an Exchange 2003 server).
    fn exchange_v2(&self, class: &str, query: &str) -> Result<Vec<WmiObject>, WqlError> {
        Ok(match class {
            "exchange_server" => {
                let mut v: Vec<WmiObject> = self
                    .hosts
                    .iter()
                    .filter(|n| n.product == Some(Product::Exchange2003))
                    .map(|n| {
                        obj(&[
                            ("Name", n.name.clone()),
                            ("ExchangeVersion", exchange_version(n.build)),
                        ])
                    })
                    .collect();
                for c in self
                    .clusters
                    .iter()
                    .filter(|c| c.product == Product::Exchange2003)
                {
                    for e in c.groups.iter().filter_map(|g| g.evs.as_ref()) {
                        v.push(obj(&[
                            ("Name", e.name.clone()),
                            ("ExchangeVersion", exchange_version(e.version)),
                        ]));
                    }
                }
                v
            }
            _ => return Err(bad(query, "unknown class")),
        })
    }
}

/// The objects of `all` that meet `q`'s conditions, with the properties it selects.
fn select(all: Vec<WmiObject>, q: &WqlQuery, query: &str) -> Result<Vec<WmiObject>, WqlError> {
    let mut out = Vec::new();
    for o in all {
        let get = |k: &str| {
            o.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        };
        let mut keep = true;
        for (k, v) in &q.conditions {
            match get(k) {
                Some(actual) => keep &= actual.eq_ignore_ascii_case(v),
                None => return Err(bad(query, &format!("unknown property `{k}`"))),
            }
        }
        if !keep {
            continue;
        }
        if q.props.is_empty() {
            out.push(o);
            continue;
        }
        let mut sel = WmiObject::new();
        for p in &q.props {
            match o.iter().find(|(n, _)| n.eq_ignore_ascii_case(p)) {
                Some((n, v)) => {
                    sel.insert(n.clone(), v.clone());
                }
                None => return Err(bad(query, &format!("unknown property `{p}`"))),
            }
        }
        out.push(sel);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cim_datetimes_read_as_wmi_writes_them() {
        assert_eq!(cim_datetime(0), "19700101000000.000000+000");
        assert_eq!(cim_datetime(1_795_248_691_123), "20261121081131.123000+000");
        // A leap day.
        assert_eq!(cim_datetime(951_827_696_000), "20000229123456.000000+000");
    }

    #[test]
    fn exchange_version_is_written_as_exchange_2003_writes_it() {
        assert_eq!(
            exchange_version(Version::new(6, 5, 7638, 2)),
            "Version 6.5 (Build 7638.2: Service Pack 2)"
        );
        assert_eq!(
            exchange_version(Version::new(6, 5, 6944, 4)),
            "Version 6.5 (Build 6944.4)"
        );
    }

    #[test]
    fn parses_queries() {
        let q = WqlQuery::parse(
            "SELECT Name, State FROM Win32_Service WHERE Name='W3SVC' and State = \"Running\"",
        )
        .unwrap();
        assert_eq!(q.props, ["Name", "State"]);
        assert_eq!(q.class, "Win32_Service");
        assert_eq!(
            q.conditions,
            [
                ("Name".into(), "W3SVC".into()),
                ("State".into(), "Running".into())
            ]
        );
        let q = WqlQuery::parse("select * from MSCluster_Node").unwrap();
        assert!(q.props.is_empty());
        assert!(WqlQuery::parse("DELETE FROM x").is_err());
        assert!(WqlQuery::parse("SELECT Name FROM").is_err());
        let q = WqlQuery::parse("SELECT Name FROM Win32_Service WHERE Name='a and b'").unwrap();
        assert_eq!(q.conditions, [("Name".into(), "a and b".into())]);
    }

    #[test]
    fn formats_cim_datetime() {
        // 2026-11-21 08:11:31.250 UTC
        assert_eq!(cim_datetime(1_795_248_691_250), "20261121081131.250000+000");
        assert_eq!(cim_datetime(0), "19700101000000.000000+000");
    }
}
