//! `lockstep facts`: the fleet as it is, read live with a run's discovery code
//! ([`lockstep_actions::discover_with`]), shown grouped by site and cluster with the drift from
//! the inventory, and kept in the state store with the time it was read.

use std::collections::BTreeMap;
use std::io::Write as _;

use anyhow::Result;
use lockstep_actions::{BuiltinProbe, Discovery, NodeFacts};
use lockstep_core::{FactDef, FactValue, Fleet, Host, Name, Playbook, StateStore as _};
use lockstep_report::time::utc;
use serde_json::{json, Value};

use crate::args::{FactsArgs, FactsFormat};
use crate::exit::{BadInput, ExitStatus};
use crate::settings::Settings;
use crate::{inputs, wiring};

/// The probes named by `--probe` (every one when none is named); every unknown name is
/// reported at once.
pub fn probes(names: &[String]) -> Result<Vec<BuiltinProbe>> {
    if names.is_empty() {
        return Ok(BuiltinProbe::ALL.to_vec());
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for n in names.iter().filter(|n| !n.trim().is_empty()) {
        match BuiltinProbe::from_name(n) {
            Some(p) if !out.contains(&p) => out.push(p),
            Some(_) => {}
            None => errors.push(format!(
                "error: `--probe {n}`: no such probe (probes: {})",
                BuiltinProbe::ALL.map(BuiltinProbe::name).join(", ")
            )),
        }
    }
    if !errors.is_empty() {
        return Err(anyhow::Error::new(BadInput(errors.join("\n"))));
    }
    out.sort();
    Ok(out)
}

/// The hosts a command selects: those the playbook's plan touches (within `--limit`), or those
/// `--limit` selects (every host without one).
pub fn selected_hosts(
    fleet: &Fleet,
    spec: &crate::args::SpecArgs,
    playbook: Option<&Playbook>,
) -> Result<Vec<Name>> {
    match playbook {
        Some(playbook) => {
            let opts = inputs::plan_options(spec)?;
            let plan = crate::commands::run::plan(fleet, playbook, &opts)?;
            Ok(wiring::plan_hosts(&plan, fleet))
        }
        None => lockstep_plan::select_hosts(fleet, &inputs::limit_patterns(&spec.limit)?)
            .map_err(|e| anyhow::Error::new(BadInput(e.to_string()))),
    }
}

/// `lockstep facts`.
pub async fn run(args: &FactsArgs, settings: &Settings) -> Result<ExitStatus> {
    let (fleet, _) = inputs::load_fleet(&args.spec.inventories)?;
    let probes = probes(&args.probes)?;
    let playbook = match &args.playbook {
        Some(pb) => Some(inputs::load_playbook(pb, &fleet)?.0),
        None => None,
    };
    let hosts = selected_hosts(&fleet, &args.spec, playbook.as_ref())?;
    let transport = wiring::transport(&fleet, &hosts, None, None, settings)?;
    let d = lockstep_actions::discover_with(transport.as_ref(), &fleet, &hosts, &probes).await;
    // The facts the playbook declares, on every host discovery could read.
    let defs = playbook
        .as_ref()
        .map(|p| p.facts.as_slice())
        .unwrap_or_default();
    let readable: Vec<Name> = hosts
        .iter()
        .filter(|h| !d.unreachable.iter().any(|(u, _)| h.eq_ignore_case(u)))
        .cloned()
        .collect();
    let declared = Declared::read(transport.as_ref(), &readable, defs).await;
    let at_ms = lockstep_core::now_ms();
    let store = wiring::store(settings)?;
    let mut kept_facts = d.to_facts(&fleet, at_ms);
    kept_facts.extend(declared.to_facts(at_ms));
    let kept = store.put_fleet_facts(&kept_facts);
    let report = Report::new(&fleet, &hosts, &d, &declared, at_ms);
    let mut out = std::io::stdout().lock();
    match args.format {
        FactsFormat::Text => out.write_all(report.text().as_bytes())?,
        FactsFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report.json())?;
            writeln!(out)?;
        }
        FactsFormat::Csv => out.write_all(report.csv().as_bytes())?,
    }
    out.flush()?;
    let mut err = std::io::stderr().lock();
    match kept {
        Ok(()) => {
            let _ = writeln!(
                err,
                "{} hosts read, {} unreachable; facts kept in {}",
                hosts.len() - report.unreachable_hosts(),
                report.unreachable_hosts(),
                settings.state.shown().display()
            );
        }
        Err(e) => {
            let _ = writeln!(err, "warning: the facts were not kept: {e}");
        }
    }
    Ok(if d.unreachable.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::HostsFailed
    })
}

/// How old the kept facts of `hosts` are, for a preview (`lockstep plan`): `None` when the state
/// file does not exist or holds no facts of them. Never creates the state file.
pub fn age_note(settings: &Settings, hosts: &[Name]) -> Option<String> {
    let crate::settings::StateLocation::Sqlite(path) = &settings.state else {
        return None;
    };
    if !path.exists() {
        return None;
    }
    let store = lockstep_store::SqliteStore::open(path).ok()?;
    let facts = store.latest_fleet_facts().ok()?;
    let mut read: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &facts {
        if let Some(h) = hosts.iter().find(|h| h.eq_ignore_case(f.host.as_str())) {
            read.insert(h.as_str(), f.at_ms);
        }
    }
    let oldest = *read.values().min()?;
    let age = lockstep_core::now_ms().saturating_sub(oldest);
    Some(format!(
        "facts of {} of these {} hosts were read by `lockstep facts`, the oldest {} ago; this plan uses the inventory as written (`lockstep run` reads the fleet live)",
        read.len(),
        hosts.len(),
        lockstep_report::time::duration(age)
    ))
}

/// One declared fact as read on a host: its name and value, or why it could not be read.
type FactRead = (String, Result<FactValue, String>);

/// The facts a playbook declares (`facts:`), as read on each host by `--playbook`.
#[derive(Default)]
struct Declared {
    /// The facts' names, in the playbook's order.
    names: Vec<String>,
    /// Host -> each fact's value, or why it could not be read.
    values: Vec<(Name, Vec<FactRead>)>,
}

impl Declared {
    async fn read(t: &dyn lockstep_core::Transport, hosts: &[Name], defs: &[FactDef]) -> Self {
        if defs.is_empty() {
            return Declared::default();
        }
        let values = lockstep_actions::facts::read_all(t, hosts, defs)
            .await
            .into_iter()
            .map(|(h, vs)| {
                let vs = vs
                    .into_iter()
                    .map(|(n, v)| (n, v.map_err(|e| e.to_string())))
                    .collect();
                (h, vs)
            })
            .collect();
        Declared {
            names: defs.iter().map(|d| d.name.clone()).collect(),
            values,
        }
    }

    fn of(&self, host: &str) -> &[FactRead] {
        self.values
            .iter()
            .find(|(h, _)| h.eq_ignore_case(host))
            .map_or(&[], |(_, vs)| vs.as_slice())
    }

    /// One cell per declared fact: the value, `-` when the probe found nothing, `?` when it
    /// could not be read (the reason is a note under the row).
    fn cells(&self, host: &str) -> Vec<String> {
        let vs = self.of(host);
        self.names
            .iter()
            .map(|n| match vs.iter().find(|(k, _)| k == n).map(|(_, v)| v) {
                Some(Ok(FactValue::Missing)) | None => "-".to_owned(),
                Some(Ok(v)) => v.to_string(),
                Some(Err(_)) => "?".to_owned(),
            })
            .collect()
    }

    fn to_facts(&self, at_ms: u64) -> Vec<lockstep_core::Fact> {
        let mut out = Vec::new();
        for (host, vs) in &self.values {
            for (n, v) in vs {
                if let Ok(v) = v {
                    if *v != FactValue::Missing {
                        out.push(lockstep_core::Fact {
                            host: host.clone(),
                            key: format!("fact.{n}"),
                            value: v.to_string(),
                            at_ms,
                        });
                    }
                }
            }
        }
        out
    }
}

/// A declared fact's value as JSON: a string, a boolean, `null` when the probe found nothing.
fn fact_json(v: &FactValue) -> Value {
    match v {
        FactValue::Missing => Value::Null,
        FactValue::Bool(b) => json!(b),
        FactValue::Text(t) => json!(t),
    }
}

/// The hosts of one cluster (`Some`) or a site's standalone hosts (`None`).
type Part<'a> = (Option<&'a str>, Vec<&'a Host>);

/// What `lockstep facts` shows, in display order.
struct Report<'a> {
    fleet: &'a Fleet,
    /// Site -> its clusters' hosts, then its standalone hosts.
    groups: Vec<(&'a str, Vec<Part<'a>>)>,
    d: &'a Discovery,
    declared: &'a Declared,
    drift: BTreeMap<String, Vec<String>>,
    at_ms: u64,
}

impl<'a> Report<'a> {
    fn new(
        fleet: &'a Fleet,
        hosts: &[Name],
        d: &'a Discovery,
        declared: &'a Declared,
        at_ms: u64,
    ) -> Self {
        let mut groups = Vec::new();
        for site in &fleet.sites {
            let in_site: Vec<&Host> = hosts
                .iter()
                .filter_map(|h| fleet.host(h.as_str()))
                .filter(|h| h.site == site.name)
                .collect();
            if in_site.is_empty() {
                continue;
            }
            let mut parts: Vec<Part<'_>> = Vec::new();
            for c in fleet.clusters.iter().filter(|c| c.site == site.name) {
                let nodes: Vec<&Host> = in_site
                    .iter()
                    .copied()
                    .filter(|h| h.cluster.as_ref() == Some(&c.name))
                    .collect();
                if !nodes.is_empty() {
                    parts.push((Some(c.name.as_str()), nodes));
                }
            }
            let standalone: Vec<&Host> = in_site
                .iter()
                .copied()
                .filter(|h| h.cluster.is_none())
                .collect();
            if !standalone.is_empty() {
                parts.push((None, standalone));
            }
            groups.push((site.name.as_str(), parts));
        }
        Report {
            fleet,
            groups,
            d,
            declared,
            drift: d.drift(fleet, hosts),
            at_ms,
        }
    }

    fn unreachable(&self, name: &str) -> Option<(&'static str, &'a str)> {
        self.d
            .unreachable
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(name))
            .map(|(h, why)| {
                let kind = self
                    .d
                    .unreachable_kinds
                    .get(h)
                    .map_or("unreadable", |k| k.as_str());
                (kind, why.as_str())
            })
    }

    fn unreachable_hosts(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|(_, parts)| parts.iter().flat_map(|(_, hs)| hs.iter()))
            .filter(|h| self.unreachable(h.name.as_str()).is_some())
            .count()
    }

    fn owners(&self, cluster: &str) -> Vec<(String, String)> {
        self.d
            .owners
            .iter()
            .filter_map(|(k, node)| {
                let (c, g) = k.split_once('/')?;
                c.eq_ignore_ascii_case(cluster)
                    .then(|| (g.to_owned(), node.clone()))
            })
            .collect()
    }

    fn exchange(&self, h: &Host, f: &NodeFacts) -> String {
        match (f.build, h.product()) {
            (Some(b), None) => b.to_string(),
            (Some(b), Some(product)) => {
                let sp = product
                    .service_packs()
                    .iter()
                    .rev()
                    .find(|(_, v)| v.build == b.build)
                    .map(|(n, _)| format!(" {n}"))
                    .unwrap_or_else(|| {
                        if product.rtm().build == b.build {
                            " RTM".into()
                        } else {
                            String::new()
                        }
                    });
                format!("{b}{sp}")
            }
            (None, _) => "-".into(),
        }
    }

    fn text(&self) -> String {
        let header: Vec<String> = [
            "HOST", "WINDOWS", "EXCHANGE", "EDITION", "CLUSSVC", "RESTART", "FREE", "HOTFIXES",
            "BOOTED",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain(self.declared.names.iter().map(|n| n.to_uppercase()))
        .collect();
        let mut out = String::new();
        let mut rows: Vec<(usize, Vec<String>, Vec<String>)> = Vec::new(); // (indent, cells, notes)
        let mut lines: Vec<Line> = Vec::new();
        for (site, parts) in &self.groups {
            let locale = self
                .fleet
                .site(site)
                .map(|s| s.locale.tag())
                .unwrap_or_default();
            lines.push(Line::Title(format!("site {site} ({locale})")));
            for (cluster, hosts) in parts {
                match cluster {
                    Some(c) => {
                        let owners = self
                            .owners(c)
                            .into_iter()
                            .map(|(g, n)| format!("{g} on {n}"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let owners = if owners.is_empty() {
                            String::new()
                        } else {
                            format!(": {owners}")
                        };
                        lines.push(Line::Title(format!("  cluster {c}{owners}")));
                        for note in self.drift.get(*c).into_iter().flatten() {
                            lines.push(Line::Title(format!("    drift: {note}")));
                        }
                        if let Some((kind, why)) = self.unreachable(c) {
                            lines.push(Line::Title(format!("    unreadable ({kind}): {why}")));
                        }
                    }
                    None => lines.push(Line::Title("  standalone".into())),
                }
                lines.push(Line::Row(rows.len()));
                rows.push((4, header.clone(), Vec::new()));
                for h in hosts {
                    lines.push(Line::Row(rows.len()));
                    rows.push((4, self.cells(h), self.notes(h)));
                }
            }
        }
        let mut widths = vec![0usize; header.len()];
        for (_, cells, _) in &rows {
            for (i, c) in cells.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        for line in lines {
            match line {
                Line::Title(t) => {
                    out.push_str(&t);
                    out.push('\n');
                }
                Line::Row(i) => {
                    let (indent, cells, notes) = &rows[i];
                    let mut l = " ".repeat(*indent);
                    for (j, c) in cells.iter().enumerate() {
                        if j + 1 == cells.len() {
                            l.push_str(c);
                        } else {
                            l.push_str(&format!("{c:<w$}  ", w = widths[j]));
                        }
                    }
                    out.push_str(l.trim_end());
                    out.push('\n');
                    for n in notes {
                        out.push_str(&format!("{}  {n}\n", " ".repeat(*indent)));
                    }
                }
            }
        }
        out.push_str(&format!("read at {}\n", utc(self.at_ms)));
        out
    }

    fn cells(&self, h: &Host) -> Vec<String> {
        let mut cells = self.builtin_cells(h);
        cells.extend(self.declared.cells(h.name.as_str()));
        cells
    }

    fn builtin_cells(&self, h: &Host) -> Vec<String> {
        let name = h.name.to_string();
        if let Some((kind, _)) = self.unreachable(h.name.as_str()) {
            return vec![name, format!("UNREACHABLE ({kind})")]
                .into_iter()
                .chain(std::iter::repeat_n(String::new(), 7))
                .collect();
        }
        let Some(f) = self.d.nodes.get(h.name.as_str()) else {
            return vec![name, "-".into()]
                .into_iter()
                .chain(std::iter::repeat_n(String::new(), 7))
                .collect();
        };
        let yes_no = |b: Option<bool>, yes: &str, no: &str| match b {
            Some(true) => yes.to_owned(),
            Some(false) => no.to_owned(),
            None => "-".to_owned(),
        };
        let free = match &f.disks {
            Some(ds) if !ds.is_empty() => ds
                .iter()
                .map(|d| format!("{} {}", d.device, gib(d.free_bytes)))
                .collect::<Vec<_>>()
                .join(" "),
            _ => "-".into(),
        };
        vec![
            name,
            f.windows.as_ref().map_or("-".into(), |w| w.full()),
            self.exchange(h, f),
            f.edition.map_or("-".into(), |e| e.to_string()),
            yes_no(f.cluster_service, "running", "stopped"),
            yes_no(f.pending_restart, "pending", "no"),
            free,
            f.hotfixes
                .as_ref()
                .map_or("-".into(), |h| h.len().to_string()),
            f.boot_time.as_deref().map_or("-".into(), cim_short),
        ]
    }

    /// Lines under a host's row: why it is unreachable, its drift, probes that could not be read.
    fn notes(&self, h: &Host) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((_, why)) = self.unreachable(h.name.as_str()) {
            out.push(format!("  {why}"));
        }
        for d in self.drift.get(h.name.as_str()).into_iter().flatten() {
            out.push(format!("  drift: {d}"));
        }
        if let Some(f) = self.d.nodes.get(h.name.as_str()) {
            for (p, why) in &f.unread {
                out.push(format!("  {p} unreadable: {why}"));
            }
        }
        for (n, v) in self.declared.of(h.name.as_str()) {
            if let Err(why) = v {
                out.push(format!("  fact {n} unreadable: {why}"));
            }
        }
        out
    }

    fn host_json(&self, h: &Host) -> Value {
        let mut v = json!({
            "host": h.name.as_str(),
            "site": h.site.as_str(),
            "cluster": h.cluster.as_ref().map(|c| c.as_str()),
            "drift": self.drift.get(h.name.as_str()).cloned().unwrap_or_default(),
        });
        if let Some((kind, why)) = self.unreachable(h.name.as_str()) {
            v["reachable"] = json!(false);
            v["unreachable"] = json!({ "kind": kind, "reason": why });
            return v;
        }
        v["reachable"] = json!(true);
        let Some(f) = self.d.nodes.get(h.name.as_str()) else {
            return v;
        };
        v["windows"] = f.windows.as_ref().map_or(Value::Null, |w| {
            json!({ "product": w.product, "version": w.full(), "build": w.build, "ubr": w.ubr })
        });
        v["exchange"] = f.build.map_or(Value::Null, |b| {
            json!({
                "build": b.to_string(),
                "edition": f.edition.map(|e| e.to_string()),
                "version": h.product().map(|p| p.describe(b)),
            })
        });
        v["cluster_service"] = f.cluster_service.map_or(Value::Null, |c| {
            json!(if c { "running" } else { "stopped" })
        });
        v["boot_time"] = json!(f.boot_time);
        v["pending_restart"] = json!(f.pending_restart);
        v["disks"] = f.disks.as_ref().map_or(Value::Null, |ds| {
            ds.iter()
                .map(|d| {
                    json!({ "device": d.device, "free_bytes": d.free_bytes, "size_bytes": d.size_bytes })
                })
                .collect()
        });
        v["hotfixes"] = json!(f.hotfixes);
        v["unread"] = json!(f.unread);
        if !self.declared.names.is_empty() {
            let vs = self.declared.of(h.name.as_str());
            v["declared"] = vs
                .iter()
                .map(|(n, v)| (n.clone(), v.as_ref().map_or(Value::Null, fact_json)))
                .collect::<serde_json::Map<_, _>>()
                .into();
            v["declared_unread"] = vs
                .iter()
                .filter_map(|(n, v)| v.as_ref().err().map(|e| (n.clone(), json!(e))))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        v
    }

    fn json(&self) -> Value {
        let mut hosts = Vec::new();
        let mut clusters = Vec::new();
        for (_, parts) in &self.groups {
            for (cluster, hs) in parts {
                if let Some(c) = cluster {
                    let mut cv = json!({
                        "cluster": c,
                        "owners": self.owners(c).into_iter().collect::<BTreeMap<_, _>>(),
                        "drift": self.drift.get(*c).cloned().unwrap_or_default(),
                    });
                    if let Some((kind, why)) = self.unreachable(c) {
                        cv["unreadable"] = json!({ "kind": kind, "reason": why });
                    }
                    clusters.push(cv);
                }
                hosts.extend(hs.iter().map(|h| self.host_json(h)));
            }
        }
        json!({
            "read_at_ms": self.at_ms,
            "read_at": utc(self.at_ms),
            "hosts": hosts,
            "clusters": clusters,
        })
    }

    fn csv(&self) -> String {
        let mut out = String::from(
            "host,site,cluster,reachable,unreachable_kind,windows_version,windows_product,exchange_build,exchange_edition,cluster_service,pending_restart,free_bytes,hotfixes,boot_time,drift,reason",
        );
        for n in &self.declared.names {
            out.push_str(&format!(",fact_{n}"));
        }
        out.push('\n');
        for (_, parts) in &self.groups {
            for (cluster, hs) in parts {
                for h in hs {
                    let un = self.unreachable(h.name.as_str());
                    let f = self.d.nodes.get(h.name.as_str());
                    let opt = |s: Option<String>| s.unwrap_or_default();
                    let cells = [
                        h.name.to_string(),
                        h.site.to_string(),
                        cluster.unwrap_or_default().to_owned(),
                        un.is_none().to_string(),
                        un.map(|(k, _)| k.to_owned()).unwrap_or_default(),
                        opt(f.and_then(|f| f.windows.as_ref().map(|w| w.full()))),
                        opt(f.and_then(|f| f.windows.as_ref().and_then(|w| w.product.clone()))),
                        opt(f.and_then(|f| f.build.map(|b| b.to_string()))),
                        opt(f.and_then(|f| f.edition.map(|e| e.to_string()))),
                        opt(f.and_then(|f| {
                            f.cluster_service
                                .map(|c| if c { "running" } else { "stopped" }.to_owned())
                        })),
                        opt(f.and_then(|f| f.pending_restart.map(|p| p.to_string()))),
                        opt(f.and_then(|f| {
                            f.disks.as_ref().map(|ds| {
                                ds.iter()
                                    .map(|d| format!("{}={}", d.device, d.free_bytes))
                                    .collect::<Vec<_>>()
                                    .join(";")
                            })
                        })),
                        opt(f.and_then(|f| f.hotfixes.as_ref().map(|h| h.join(";")))),
                        opt(f.and_then(|f| f.boot_time.clone())),
                        self.drift
                            .get(h.name.as_str())
                            .map(|d| d.join("; "))
                            .unwrap_or_default(),
                        un.map(|(_, w)| w.to_owned()).unwrap_or_default(),
                    ];
                    let declared = self.declared.of(h.name.as_str());
                    let line: Vec<String> = cells
                        .iter()
                        .map(|c| csv_field(c))
                        .chain(self.declared.names.iter().map(|n| {
                            match declared.iter().find(|(k, _)| k == n).map(|(_, v)| v) {
                                Some(Ok(FactValue::Missing)) | Some(Err(_)) | None => String::new(),
                                Some(Ok(v)) => csv_field(&v.to_string()),
                            }
                        }))
                        .collect();
                    out.push_str(&line.join(","));
                    out.push('\n');
                }
            }
        }
        out
    }
}

enum Line {
    Title(String),
    Row(usize),
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Bytes as GiB with one decimal.
fn gib(bytes: u64) -> String {
    format!("{:.1}G", bytes as f64 / (1u64 << 30) as f64)
}

/// A CIM datetime (`20261121081131.000000+000`) as `2026-11-21 08:11`.
fn cim_short(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 12 && b[..12].iter().all(u8::is_ascii_digit) {
        format!(
            "{}-{}-{} {}:{}",
            &s[0..4],
            &s[4..6],
            &s[6..8],
            &s[8..10],
            &s[10..12]
        )
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_are_checked_all_at_once() {
        assert_eq!(probes(&[]).unwrap().len(), BuiltinProbe::ALL.len());
        assert_eq!(
            probes(&["hotfixes".into(), "Windows".into(), "hotfixes".into()]).unwrap(),
            [BuiltinProbe::Windows, BuiltinProbe::Hotfixes]
        );
        let e = probes(&["disk".into(), "exchange".into(), "kb".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`--probe disk`") && e.contains("`--probe kb`"),
            "{e}"
        );
    }

    #[test]
    fn times_and_fields() {
        assert_eq!(cim_short("20261121081131.000000+000"), "2026-11-21 08:11");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(gib(21_474_836_480), "20.0G");
    }
}
