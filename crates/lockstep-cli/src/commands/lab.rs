//! `lockstep lab`: serve the simulated fleet; `lockstep lab verify FILE`: check a record.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use lockstep_core::Fleet;
use lockstep_lab::{Lab, LabConfig, Recorder, ServerConfig};

use crate::args::{FaultArgs, LabAction, LabArgs};
use crate::exit::{BadInput, ExitStatus};
use crate::inputs;
use crate::settings::Settings;

/// The lab's server settings: one account, HTTP or HTTPS (a lab CA), Windows' defaults unless
/// `allow_unencrypted`.
pub fn lab_server_config(
    user: &str,
    password: &str,
    https: bool,
    allow_unencrypted: bool,
) -> ServerConfig {
    let mut config = ServerConfig::with_credentials(user, password);
    config.allow_unencrypted = allow_unencrypted;
    if https {
        config.tls = Some(lockstep_lab::server::TlsOptions::default());
    }
    config
}

/// `lockstep lab verify FILE`: prints every violation; exit 1 if there is one.
pub fn verify(file: &Path) -> Result<ExitStatus> {
    let violations = lockstep_lab::verify_file(file)
        .with_context(|| format!("cannot check lab record `{}`", file.display()))?;
    let mut out = std::io::stdout().lock();
    for v in &violations {
        writeln!(out, "{v}")?;
    }
    writeln!(
        out,
        "{}: {} violation(s) of the KB 328839 invariants",
        file.display(),
        violations.len()
    )?;
    Ok(if violations.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// The user the lab accepts: the inventory's first connection user (without its domain).
pub fn lab_user(fleet: &Fleet) -> String {
    fleet
        .hosts
        .first()
        .map(|h| h.connection.user.clone())
        .unwrap_or_else(|| "svc-lockstep".into())
}

/// The lab's Kerberos realm (`lockstep lab --kerberos`): the realm of a `user@REALM`, else
/// `LAB.TEST`; the principal is the user without its domain.
pub fn lab_realm(user: &str) -> (String, String) {
    let bare = user.rsplit('\\').next().unwrap_or(user);
    match bare.rsplit_once('@') {
        Some((name, realm)) if !name.is_empty() && !realm.is_empty() => {
            (name.to_owned(), realm.to_ascii_uppercase())
        }
        _ => (bare.to_owned(), "LAB.TEST".to_owned()),
    }
}

/// A host's Kerberos name in the lab realm: `node1.lab.test`.
pub fn kerberos_host(host: &str, realm: &str) -> String {
    format!(
        "{}.{}",
        host.to_ascii_lowercase(),
        realm.to_ascii_lowercase()
    )
}

/// Starts the lab's KDC: the account `principal` with `password`, every host's service
/// principals. A missing MIT binary is named in the error.
fn start_kdc(
    principal: &str,
    realm: &str,
    password: &str,
    hosts: &[String],
) -> Result<lockstep_lab::kdc::LabKdc> {
    use lockstep_lab::kdc::{KdcUser, LabKdc};
    let services: Vec<String> = hosts.iter().map(|h| kerberos_host(h, realm)).collect();
    LabKdc::start(
        realm,
        &[KdcUser {
            name: principal.to_owned(),
            password: password.to_owned(),
        }],
        &services,
    )
    .map_err(|e| kdc_error(e, realm))
}

fn kdc_error(e: lockstep_lab::kdc::KdcError, realm: &str) -> anyhow::Error {
    match e {
        lockstep_lab::kdc::KdcError::Missing(binary) => anyhow::anyhow!(
            "`lockstep lab --kerberos` runs MIT Kerberos' KDC, but `{binary}` is not installed \
             (Debian: apt-get install krb5-kdc krb5-admin-server krb5-user)"
        ),
        e => anyhow::Error::new(e)
            .context(format!("the lab's Kerberos realm {realm} could not start")),
    }
}

/// The Kerberos settings of the overlay (`lockstep lab --kerberos`): `user@REALM` and the
/// hosts' Kerberos names.
pub struct OverlayKerberos<'a> {
    /// The principal without the realm.
    pub principal: &'a str,
    /// The realm.
    pub realm: &'a str,
}

/// An Ansible inventory overlay pointing every host at its lab endpoint; HTTPS endpoints trust
/// the lab CA written at `ca` (certificate checks are never turned off); with `kerberos`, every
/// host is reached with Kerberos under its name in the lab realm.
pub fn overlay(
    endpoints: &BTreeMap<String, String>,
    user: &str,
    password_env: &str,
    ca: Option<&Path>,
    package_root: Option<&Path>,
    kerberos: Option<&OverlayKerberos<'_>>,
) -> String {
    let kerberos_user = kerberos.map(|k| format!("{}@{}", k.principal, k.realm));
    let user = kerberos_user.as_deref().unwrap_or(user);
    let mut y = String::from(
        "# Written by `lockstep lab`: points every host at its lab endpoint.\n# Use: lockstep run -i inventory/lab.yml -i THIS_FILE PLAYBOOK\nall:\n",
    );
    if let Some(root) = package_root {
        // The lab's packages, which `stage` steps copy to the nodes.
        let _ = writeln!(
            y,
            "  vars:\n    package_root: '{}'",
            root.display().to_string().replace('\'', "''")
        );
    }
    y.push_str("  hosts:\n");
    for (host, url) in endpoints {
        let Some(e) = crate::wiring::parse_endpoint(url) else {
            continue;
        };
        let scheme = match e.scheme {
            lockstep_core::Scheme::Http => "http",
            lockstep_core::Scheme::Https => "https",
        };
        let _ = writeln!(
            y,
            "    {host}:\n      ansible_host: {}\n      ansible_port: {}\n      ansible_winrm_scheme: {scheme}\n      ansible_user: '{}'\n      lockstep_password_env: {password_env}",
            e.address,
            e.port,
            user.replace('\'', "''")
        );
        if let Some(k) = kerberos {
            let _ = writeln!(
                y,
                "      ansible_winrm_transport: kerberos\n      ansible_winrm_kerberos_hostname_override: {}",
                kerberos_host(host, k.realm)
            );
        }
        if let (true, Some(ca)) = (scheme == "https", ca) {
            let _ = writeln!(
                y,
                "      ansible_winrm_ca_trust_path: '{}'",
                ca.display().to_string().replace('\'', "''")
            );
        }
    }
    y
}

fn load_config(path: Option<&Path>, time_scale: Option<f64>) -> Result<LabConfig> {
    let mut config = match path {
        None => LabConfig::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read lab config `{}`", p.display()))?;
            serde_yaml::from_str(&text).map_err(|e| {
                let at = e
                    .location()
                    .map(|l| format!("{}:{}:{}", p.display(), l.line(), l.column()))
                    .unwrap_or_else(|| p.display().to_string());
                anyhow::Error::new(BadInput(format!("{at}: error: {e}")))
            })?
        }
    };
    if let Some(t) = time_scale {
        config.time_scale = t;
    }
    Ok(config)
}

/// `lockstep lab`.
pub async fn run(args: &LabArgs, settings: &Settings) -> Result<ExitStatus> {
    match &args.action {
        Some(LabAction::Verify { file }) => return verify(file),
        Some(LabAction::Fault(f)) => return fault(f, args, settings).await,
        None => {}
    }
    let (fleet, _) = inputs::load_fleet(&args.inventories)?;
    let config = load_config(args.config.as_deref(), settings.time_scale)?;
    let password = std::env::var(&args.password_env)
        .unwrap_or_else(|_| lockstep_lab::DEFAULT_LAB_PASSWORD.to_owned());
    let user = lab_user(&fleet);
    let recorder = match &args.record {
        Some(p) => Recorder::to_file(p)
            .with_context(|| format!("cannot write lab record `{}`", p.display()))?,
        None => Recorder::null(),
    };
    let config_packages = config.clone();
    let mut server_config = lab_server_config(&user, &password, args.https, args.allow_unencrypted);
    // The realm's KDC lives as long as the lab (dropped after it).
    let (principal, realm) = lab_realm(&user);
    let kdc = if args.kerberos {
        let hosts: Vec<String> = fleet.hosts.iter().map(|h| h.name.to_string()).collect();
        let kdc = start_kdc(&principal, &realm, &password, &hosts)?;
        server_config.kerberos = Some(lockstep_lab::server::KerberosConfig {
            keytab: kdc.keytab(),
            realm: realm.clone(),
        });
        Some(kdc)
    } else {
        None
    };
    let lab = Lab::start(&fleet, config, server_config, recorder)
        .await
        .context("the lab could not start")?;
    let endpoints = lab.endpoints();
    // The lab CA (HTTPS): written beside the endpoints (or the overlay) as `NAME.ca.pem`.
    let ca = match (
        lab.cert_pem(),
        args.endpoints.as_ref().or(args.overlay.as_ref()),
    ) {
        (Some(pem), Some(beside)) => {
            let path = std::path::absolute(beside.with_extension("ca.pem"))
                .unwrap_or_else(|_| beside.with_extension("ca.pem"));
            std::fs::write(&path, pem)
                .with_context(|| format!("cannot write the lab CA `{}`", path.display()))?;
            let _ = writeln!(
                std::io::stderr(),
                "lab: HTTPS certificates signed by the lab CA in `{}` (trust it with `ansible_winrm_ca_trust_path`)",
                path.display()
            );
            Some(path)
        }
        _ => None,
    };
    // The realm's krb5.conf: beside the endpoints (or the overlay) as `NAME.krb5.conf`, else the
    // KDC's own (removed when the lab stops).
    if let Some(kdc) = &kdc {
        let conf = match args.endpoints.as_ref().or(args.overlay.as_ref()) {
            Some(beside) => {
                let path = std::path::absolute(beside.with_extension("krb5.conf"))
                    .unwrap_or_else(|_| beside.with_extension("krb5.conf"));
                std::fs::copy(kdc.krb5_conf(), &path).with_context(|| {
                    format!("cannot write the lab's krb5.conf `{}`", path.display())
                })?;
                path
            }
            None => kdc.krb5_conf(),
        };
        let _ = writeln!(
            std::io::stderr(),
            "lab: Kerberos realm {realm}, KDC {addr} (TCP); hosts are HTTP/<host>.{domain}\n\
             lab: export KRB5_CONFIG={conf}\n\
             lab: then `kinit {principal}@{realm}` (the lab password, from ${env}) for a ticket by hand; \
             Lockstep asks the KDC itself with `ansible_winrm_transport: kerberos` or `negotiate`, \
             `ansible_user: {principal}@{realm}`, `ansible_winrm_kerberos_hostname_override: <host>.{domain}`",
            addr = kdc.addr(),
            domain = realm.to_ascii_lowercase(),
            conf = conf.display(),
            env = args.password_env,
        );
    }
    if let Some(p) = &args.endpoints {
        std::fs::write(p, serde_json::to_string_pretty(&endpoints)?)
            .with_context(|| format!("cannot write endpoints `{}`", p.display()))?;
    }
    if let Some(p) = &args.overlay {
        // The lab's installer packages (deterministic stand-ins) beside the overlay, for the
        // playbooks' `stage` steps: `package_root` in the overlay points at them.
        let root = std::path::absolute(p.with_extension("packages"))
            .unwrap_or_else(|_| p.with_extension("packages"));
        config_packages
            .write_packages(&root)
            .with_context(|| format!("cannot write the lab packages to `{}`", root.display()))?;
        std::fs::write(
            p,
            overlay(
                &endpoints,
                &user,
                &args.password_env,
                ca.as_deref(),
                Some(&root),
                kdc.as_ref()
                    .map(|_| OverlayKerberos {
                        principal: &principal,
                        realm: &realm,
                    })
                    .as_ref(),
            ),
        )
        .with_context(|| format!("cannot write overlay `{}`", p.display()))?;
    }
    {
        let mut out = std::io::stdout().lock();
        for (host, url) in &endpoints {
            writeln!(out, "{host:<16} {url}")?;
        }
        out.flush()?;
    }
    let _ = writeln!(
        std::io::stderr(),
        "lab: {} hosts up; user `{user}`, password from ${} (or the documented rehearsal default); Ctrl-C stops",
        endpoints.len(),
        args.password_env
    );
    stop_requested().await;
    // What the fleet was asked, for benchmarks and for a person checking a client's round trips
    // and clean-up.
    let open: usize = lab.open_shells().values().sum();
    let _ = writeln!(
        std::io::stderr(),
        "lab: served {}; {open} shell(s) left open",
        lab.stats()
    );
    lab.shutdown().await;
    drop(kdc);
    Ok(ExitStatus::Success)
}

/// Ctrl-C, or SIGTERM (a service manager's stop): either shuts the lab down cleanly, its KDC
/// with it.
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    tokio::signal::ctrl_c().await.ok();
}

/// `lockstep lab fault`: sends `labctl fault set|clear` to another host of the running lab (the
/// faulty host itself may refuse connections).
pub async fn fault(f: &FaultArgs, lab: &LabArgs, settings: &Settings) -> Result<ExitStatus> {
    use lockstep_core::{Name, NameKind, Transport};
    let text = std::fs::read_to_string(&f.endpoints)
        .with_context(|| format!("cannot read endpoints `{}`", f.endpoints.display()))?;
    let endpoints: BTreeMap<String, String> = serde_json::from_str(&text).map_err(|e| {
        anyhow::Error::new(BadInput(format!(
            "{}: error: not an endpoint map (JSON object of host to URL): {e}",
            f.endpoints.display()
        )))
    })?;
    let bad = |e: lockstep_core::NameError| anyhow::Error::new(BadInput(format!("error: {e}")));
    let host = Name::host(&f.host).map_err(bad)?;
    if !endpoints.keys().any(|h| host.eq_ignore_case(h)) {
        return Err(anyhow::Error::new(BadInput(format!(
            "error: host `{host}` is not in the lab's endpoint map"
        ))));
    }
    let command = if f.clear {
        format!("labctl fault clear {host}")
    } else {
        let kind = Name::ident(f.kind.as_deref().unwrap_or_default()).map_err(bad)?;
        match &f.arg {
            Some(a) => format!(
                "labctl fault set {host} {kind} {}",
                Name::new(NameKind::Object, a).map_err(bad)?.cmd_quoted()
            ),
            None => format!("labctl fault set {host} {kind}"),
        }
    };
    let (fleet, _) = inputs::load_fleet(&lab.inventories)?;
    let password = std::env::var(&lab.password_env)
        .unwrap_or_else(|_| lockstep_lab::DEFAULT_LAB_PASSWORD.to_owned());
    let direct = crate::wiring::DirectCredentials {
        user: lab_user(&fleet),
        password: secrecy::SecretString::from(password),
    };
    let mut last = String::from("no other host of the lab answered");
    for via in endpoints.keys().filter(|h| !host.eq_ignore_case(h)).take(5) {
        let Ok(via) = Name::host(via) else { continue };
        let t = crate::wiring::transport(
            &fleet,
            std::slice::from_ref(&via),
            Some(&endpoints),
            Some(&direct),
            settings,
        )?;
        match t
            .run(&via, &command, std::time::Duration::from_secs(30))
            .await
        {
            Ok(out) if out.exit_code == 0 => {
                writeln!(std::io::stdout(), "{}", out.stdout.trim_end())?;
                return Ok(ExitStatus::Success);
            }
            Ok(out) => {
                return Err(anyhow::anyhow!(
                    "the lab refused `{command}`: {}",
                    out.stderr.trim()
                ))
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(anyhow::anyhow!(
        "could not reach the lab to send `{command}`: {last}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_kdc_binary_is_named() {
        let e = kdc_error(lockstep_lab::kdc::KdcError::Missing("krb5kdc"), "LAB.TEST");
        let text = format!("{e:#}");
        assert!(text.contains("`krb5kdc` is not installed"), "{text}");
        assert!(text.contains("--kerberos"), "{text}");
    }

    #[test]
    fn the_lab_realm_comes_from_a_user_at_realm() {
        assert_eq!(
            lab_realm("CONTOSO\\svc-lockstep"),
            ("svc-lockstep".to_owned(), "LAB.TEST".to_owned())
        );
        assert_eq!(
            lab_realm("svc@corp.example"),
            ("svc".to_owned(), "CORP.EXAMPLE".to_owned())
        );
        assert_eq!(kerberos_host("PRG-FE01", "LAB.TEST"), "prg-fe01.lab.test");
    }
}
