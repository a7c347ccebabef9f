//! `lockstep lab`: serve the simulated fleet; `lockstep lab verify FILE`: check a record.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use lockstep_core::Fleet;
use lockstep_lab::{Lab, LabConfig, Recorder, ServerConfig};

use crate::args::{GlobalArgs, LabAction, LabArgs};
use crate::exit::{BadInput, ExitStatus};
use crate::inputs;

/// The lab's server settings: one account, HTTP or HTTPS with a generated certificate.
pub fn lab_server_config(user: &str, password: &str, https: bool) -> ServerConfig {
    let mut config = ServerConfig::with_credentials(user, password);
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

/// An Ansible inventory overlay pointing every host at its lab endpoint.
pub fn overlay(endpoints: &BTreeMap<String, String>, user: &str, password_env: &str) -> String {
    let mut y = String::from(
        "# Written by `lockstep lab`: points every host at its lab endpoint.\n# Use: lockstep run -i inventory/lab.yml -i THIS_FILE PLAYBOOK\nall:\n  hosts:\n",
    );
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
        if scheme == "https" {
            y.push_str("      ansible_winrm_server_cert_validation: ignore\n");
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
pub async fn run(args: &LabArgs, _global: &GlobalArgs) -> Result<ExitStatus> {
    if let Some(LabAction::Verify { file }) = &args.action {
        return verify(file);
    }
    let (fleet, _) = inputs::load_fleet(&args.inventories)?;
    let config = load_config(args.config.as_deref(), args.time_scale)?;
    let password = std::env::var(&args.password_env)
        .unwrap_or_else(|_| lockstep_lab::DEFAULT_LAB_PASSWORD.to_owned());
    let user = lab_user(&fleet);
    let recorder = match &args.record {
        Some(p) => Recorder::to_file(p)
            .with_context(|| format!("cannot write lab record `{}`", p.display()))?,
        None => Recorder::null(),
    };
    let lab = Lab::start(
        &fleet,
        config,
        lab_server_config(&user, &password, args.https),
        recorder,
    )
    .await
    .context("the lab could not start")?;
    let endpoints = lab.endpoints();
    if let Some(p) = &args.endpoints {
        std::fs::write(p, serde_json::to_string_pretty(&endpoints)?)
            .with_context(|| format!("cannot write endpoints `{}`", p.display()))?;
    }
    if let Some(p) = &args.overlay {
        std::fs::write(p, overlay(&endpoints, &user, &args.password_env))
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
    tokio::signal::ctrl_c().await.ok();
    lab.shutdown().await;
    Ok(ExitStatus::Success)
}
