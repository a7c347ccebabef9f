//! Building the real parts from validated settings: the WinRM transport (with credentials from
//! their sources), the SQLite store, the engine with the built-in actions.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use lockstep_core::{Fence, Fleet, Name, Scheme, StateStore, Transport, TransportError};
use lockstep_winrm::{Limits, NodeTarget, WinrmTransport};
use secrecy::{ExposeSecret, SecretString};

use crate::exit::BadInput;
use crate::secrets::SecretResolver;
use crate::settings::StateLocation;

/// Where to reach a host instead of its inventory address (the lab's endpoint map).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// http or https.
    pub scheme: Scheme,
    /// Address.
    pub address: String,
    /// Port.
    pub port: u16,
}

/// Parses `http://127.0.0.1:40001/wsman`.
pub fn parse_endpoint(url: &str) -> Option<Endpoint> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        return None;
    };
    let authority = rest.split('/').next()?;
    let (address, port) = authority.rsplit_once(':')?;
    Some(Endpoint {
        scheme,
        address: address.to_owned(),
        port: port.parse().ok()?,
    })
}

/// Credentials given in-process (the demo's lab), instead of the inventory's sources.
pub struct DirectCredentials {
    /// User.
    pub user: String,
    /// Password.
    pub password: SecretString,
}

/// The transport for `hosts` of the fleet. Each password source is resolved once.
pub fn transport(
    fleet: &Fleet,
    hosts: &[Name],
    endpoints: Option<&BTreeMap<String, String>>,
    direct: Option<&DirectCredentials>,
    settings: &crate::settings::Settings,
) -> Result<Arc<WinrmTransport>> {
    let max_connections = settings.max_connections;
    let mut resolver = if settings.ask_pass {
        SecretResolver::asking()
    } else {
        SecretResolver::default()
    };
    let mut nodes = Vec::new();
    let mut errors = Vec::new();
    for name in hosts {
        let Some(host) = fleet.host(name.as_str()) else {
            errors.push(format!("error: host `{name}` is not in the inventory"));
            continue;
        };
        let c = &host.connection;
        let (scheme, address, port) = match endpoints.and_then(|m| m.get(host.name.as_str())) {
            Some(url) => match parse_endpoint(url) {
                Some(e) => (e.scheme, e.address, e.port),
                None => {
                    errors.push(format!(
                        "error: endpoint `{url}` of host `{name}` is not an http(s)://ADDRESS:PORT/wsman URL"
                    ));
                    continue;
                }
            },
            None => (c.scheme, c.address.clone(), c.port),
        };
        let (user, password) = match direct {
            Some(d) => (d.user.clone(), d.password.clone()),
            // Certificate authentication: the key file is the credential, no password to ask.
            None if c.auth == lockstep_core::Auth::Certificate => {
                (c.user.clone(), secrecy::SecretString::from(String::new()))
            }
            None => match resolver.resolve(&c.user, &c.password, name.as_str()) {
                Ok(p) => (c.user.clone(), p),
                Err(e) => {
                    if !e.0.is_empty() {
                        errors.push(e.0);
                    }
                    continue;
                }
            },
        };
        let oem = fleet
            .site(host.site.as_str())
            .map(|s| s.locale.oem_codepage())
            .unwrap_or(437);
        nodes.push(NodeTarget {
            name: host.name.clone(),
            address,
            port,
            scheme,
            auth: c.auth,
            user,
            password: lockstep_winrm::Secret::new(password.expose_secret().to_owned()),
            verify_tls: c.verify_tls,
            allow_basic_over_http: c.allow_basic_over_http,
            codepage: c.codepage,
            ca_trust_path: c.ca_trust_path.as_ref().map(std::path::PathBuf::from),
            oem_codepage: oem,
            kerberos_hostname: host
                .vars
                .get("ansible_winrm_kerberos_hostname_override")
                .cloned(),
            kdc: None,
            client_certificate: match (
                host.vars.get("ansible_winrm_cert_pem"),
                host.vars.get("ansible_winrm_cert_key_pem"),
            ) {
                (Some(cert), Some(key)) if c.auth == lockstep_core::Auth::Certificate => {
                    Some(lockstep_winrm::ClientCertificate {
                        cert_pem: cert.into(),
                        key_pem: key.into(),
                    })
                }
                _ => None,
            },
        });
    }
    if !errors.is_empty() {
        errors.dedup();
        return Err(anyhow::Error::new(BadInput(errors.join("\n"))));
    }
    let limits = Limits {
        total: max_connections as usize,
        ..Limits::default()
    };
    let t = WinrmTransport::new(nodes, limits)
        .map_err(|e| anyhow::Error::new(BadInput(format!("error: {e}"))))?;
    Ok(Arc::new(t))
}

/// A transport that sends a command only while this controller's [`Fence`] holds: a controller
/// paused past its lease, or whose run another controller took over, sends nothing more, even
/// in the middle of a step's several commands.
pub struct FencedTransport {
    inner: Arc<dyn Transport>,
    fence: Option<Arc<Fence>>,
}

impl FencedTransport {
    /// `inner`, checked against `fence` (none: unchecked).
    pub fn wrap(inner: Arc<dyn Transport>, fence: Option<Arc<Fence>>) -> Arc<dyn Transport> {
        Arc::new(FencedTransport { inner, fence })
    }

    fn check(&self, host: &Name) -> std::result::Result<(), TransportError> {
        match &self.fence {
            Some(f) => f.check().map_err(|why| TransportError::Config {
                host: host.clone(),
                detail: format!("not sent: this controller no longer holds its lease ({why})"),
            }),
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Transport for FencedTransport {
    async fn run(
        &self,
        host: &Name,
        command: &str,
        timeout: std::time::Duration,
    ) -> std::result::Result<lockstep_core::CommandOutput, TransportError> {
        self.check(host)?;
        self.inner.run(host, command, timeout).await
    }

    async fn wql(
        &self,
        host: &Name,
        namespace: &str,
        query: &str,
    ) -> std::result::Result<Vec<lockstep_core::WmiObject>, TransportError> {
        self.check(host)?;
        self.inner.wql(host, namespace, query).await
    }

    async fn reset(&self, host: &Name) {
        self.inner.reset(host).await
    }
}

/// The state store `--state` names: a PostgreSQL database (`postgres://...`, shared by several
/// controllers) or a SQLite file (created with its folder if needed).
pub(crate) fn store(settings: &crate::settings::Settings) -> Result<Arc<dyn StateStore>> {
    let ttl = settings.lease;
    let path = match &settings.state {
        StateLocation::Postgres(url) => {
            let s = lockstep_store::PgStore::connect(url, ttl).with_context(|| {
                format!(
                    "cannot open the state database `{}`",
                    lockstep_store::redact_url(url)
                )
            })?;
            return Ok(Arc::new(s));
        }
        StateLocation::Sqlite(path) => path.as_path(),
    };
    // Every checkpoint is synced (survives a power loss): with group commit it costs about
    // what `synchronous=NORMAL` did (crates/lockstep-store/benches/group_commit.rs).
    let durability = lockstep_store::Durability::Full;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the folder of state file `{}`",
                path.display()
            )
        })?;
    }
    let s = lockstep_store::SqliteStore::open_leased(path, durability, ttl)
        .with_context(|| format!("cannot open state file `{}`", path.display()))?;
    Ok(Arc::new(s))
}

/// Every host a run of `plan` talks to: the hosts its steps run on, in plan order, then the
/// front-ends its tier order covers ([`lockstep_actions::tier_order`], the requirements the
/// engine checks live before a back-end install, whichever playbook upgrades those front-ends).
pub(crate) fn plan_hosts(plan: &lockstep_core::Plan, fleet: &Fleet) -> Vec<Name> {
    let mut seen = std::collections::BTreeSet::new();
    let front_ends: Vec<Name> = lockstep_actions::tier_order(fleet, plan)
        .into_iter()
        .flat_map(|req| req.front_ends)
        .collect();
    plan.steps
        .iter()
        .map(|s| &s.host)
        .chain(&front_ends)
        .filter(|h| seen.insert((*h).clone()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lab_urls() {
        let e = parse_endpoint("http://127.0.0.1:40001/wsman").unwrap();
        assert_eq!(
            (e.address.as_str(), e.port, e.scheme),
            ("127.0.0.1", 40001, Scheme::Http)
        );
        assert!(parse_endpoint("ftp://x:1/wsman").is_none());
        assert!(parse_endpoint("http://noport/wsman").is_none());
    }
}
