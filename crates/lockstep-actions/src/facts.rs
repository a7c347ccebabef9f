//! Reading the facts a playbook declares ([`FactProbe`]): the one home of each probe's command
//! line or query and of its reader. Every read is locale-independent: registry data, WQL
//! properties, JSON printed by `ConvertTo-Json`.

use lockstep_core::{Condition, FactDef, FactProbe, FactValue, Name, Transport};

use crate::parse;
use crate::remote::{joined, QUERY_TIMEOUT};
use crate::render::NS_CIMV2;
use crate::Ctx;
use lockstep_core::StepError;

/// The script that prints a PowerShell expression's value as one line of JSON.
pub fn json_script(expression: &str) -> String {
    format!(
        "$ProgressPreference = 'SilentlyContinue'; ConvertTo-Json -Compress -Depth 4 -InputObject ({expression})"
    )
}

/// `reg query "KEY" /v VALUE` (the probe validated the key and value name).
pub fn registry_line(key: &str, value: &str) -> String {
    format!(r#"reg query "{key}" /v "{value}""#)
}

/// WQL of a file's version resource (backslashes doubled, as WQL string literals need).
pub fn file_version_wql(path: &str) -> String {
    format!(
        "SELECT Version FROM CIM_DataFile WHERE Name = '{}'",
        path.replace('\\', "\\\\")
    )
}

/// WQL of one installed hotfix.
pub fn hotfix_wql(id: &str) -> String {
    format!("SELECT HotFixID FROM Win32_QuickFixEngineering WHERE HotFixID = '{id}'")
}

/// What a probe sends, for `--check` and the docs.
pub fn render_probe(probe: &FactProbe) -> String {
    match probe {
        FactProbe::Registry { key, value } => registry_line(key, value),
        FactProbe::FileVersion { path } => format!("WQL root/cimv2: {}", file_version_wql(path)),
        FactProbe::Wql {
            query, namespace, ..
        } => format!("WQL {namespace}: {query}"),
        FactProbe::Powershell { expression } => {
            format!("powershell -EncodedCommand <{}>", json_script(expression))
        }
        FactProbe::Hotfix { id } => format!("WQL root/cimv2: {}", hotfix_wql(id)),
        FactProbe::ExchangeBuild => crate::render::REG_EXCHANGE_SETUP.to_owned(),
    }
}

/// A JSON value as a fact: `null` missing, booleans as booleans, everything else as text
/// (strings unquoted, numbers as written, arrays/objects as compact JSON).
pub fn json_fact(v: &serde_json::Value) -> FactValue {
    match v {
        serde_json::Value::Null => FactValue::Missing,
        serde_json::Value::Bool(b) => FactValue::Bool(*b),
        serde_json::Value::String(s) => FactValue::Text(s.clone()),
        serde_json::Value::Number(n) => FactValue::Text(n.to_string()),
        other => FactValue::Text(other.to_string()),
    }
}

/// The value at a dotted path in a JSON object (`State`, `node.State`), field names compared
/// case-insensitively as PowerShell does.
pub fn json_path<'v>(root: &'v serde_json::Value, path: &str) -> Option<&'v serde_json::Value> {
    let mut cur = root;
    for part in path.split('.') {
        cur = cur
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(part))
            .map(|(_, v)| v)?;
    }
    Some(cur)
}

/// Reads one fact on the step's host.
pub(crate) async fn read(ctx: &Ctx<'_>, def: &FactDef) -> Result<FactValue, StepError> {
    read_on(ctx.transport, ctx.host(), def).await
}

/// Reads every declared fact on every host, [`crate::DISCOVERY_CONCURRENCY`] hosts at once
/// (`lockstep facts --playbook`): host -> each fact's value or why it could not be read, in
/// `defs` order. A host's facts are read one after the other, as a step reads them.
pub async fn read_all(
    t: &dyn Transport,
    hosts: &[Name],
    defs: &[FactDef],
) -> Vec<(Name, Vec<(String, Result<FactValue, StepError>)>)> {
    use futures::stream::{self, StreamExt};
    type HostRead<'a> = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = (Name, Vec<(String, Result<FactValue, StepError>)>)>
                + Send
                + 'a,
        >,
    >;
    let reads: Vec<HostRead<'_>> = hosts
        .iter()
        .map(|host| {
            Box::pin(async move {
                let mut values = Vec::with_capacity(defs.len());
                for def in defs {
                    values.push((def.name.clone(), read_on(t, host, def).await));
                }
                (host.clone(), values)
            }) as HostRead<'_>
        })
        .collect();
    stream::iter(reads)
        .buffered(crate::DISCOVERY_CONCURRENCY)
        .collect()
        .await
}

/// Reads one fact on `host`.
pub async fn read_on(
    t: &dyn Transport,
    host: &Name,
    def: &FactDef,
) -> Result<FactValue, StepError> {
    let node = crate::remote::Node::new(t, host);
    Ok(match &def.probe {
        FactProbe::Registry { key, value } => {
            let out = node.run(&registry_line(key, value), QUERY_TIMEOUT).await?;
            if out.exit_code != 0 {
                return Ok(FactValue::Missing);
            }
            let values = parse::reg_values(&out.stdout);
            match parse::reg_value(&values, value) {
                None => FactValue::Missing,
                Some(v) if v.kind == "REG_DWORD" || v.kind == "REG_QWORD" => {
                    let d = v.data.trim();
                    match d.strip_prefix("0x").or_else(|| d.strip_prefix("0X")) {
                        Some(hex) => u64::from_str_radix(hex, 16)
                            .map(|n| FactValue::Text(n.to_string()))
                            .unwrap_or(FactValue::Text(d.to_owned())),
                        None => FactValue::Text(d.to_owned()),
                    }
                }
                Some(v) => FactValue::Text(v.data.clone()),
            }
        }
        FactProbe::FileVersion { path } => {
            first_prop(&node, NS_CIMV2, &file_version_wql(path), "Version").await?
        }
        FactProbe::Wql {
            query,
            property,
            namespace,
        } => first_prop(&node, namespace, query, property).await?,
        FactProbe::Hotfix { id } => {
            let rows = node.wql(NS_CIMV2, &hotfix_wql(id)).await?;
            FactValue::Bool(rows.iter().any(|r| {
                crate::remote::get_ci(r, "HotFixID").is_some_and(|v| v.eq_ignore_ascii_case(id))
            }))
        }
        FactProbe::Powershell { expression } => {
            let out = node
                .run(
                    &crate::render::powershell(&json_script(expression)),
                    QUERY_TIMEOUT,
                )
                .await?;
            if out.exit_code != 0 {
                return Err(StepError::step_failed(
                    host,
                    format!(
                        "fact `{}`: the PowerShell probe exited {} on `{host}`",
                        def.name, out.exit_code
                    ),
                )
                .with_output(joined(&out), Some(out.exit_code)));
            }
            let text = out.stdout.trim();
            if text.is_empty() {
                FactValue::Missing
            } else {
                match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(v) => json_fact(&v),
                    Err(e) => {
                        return Err(StepError::step_failed(
                            host,
                            format!(
                                "fact `{}`: the PowerShell probe on `{host}` printed no JSON ({e})",
                                def.name
                            ),
                        )
                        .with_output(joined(&out), Some(out.exit_code)))
                    }
                }
            }
        }
        FactProbe::ExchangeBuild => match crate::build::read_build(t, host).await {
            Ok(b) => FactValue::Text(b.build.to_string()),
            Err(_) => FactValue::Missing,
        },
    })
}

async fn first_prop(
    node: &crate::remote::Node<'_>,
    ns: &str,
    query: &str,
    property: &str,
) -> Result<FactValue, StepError> {
    let rows = node.wql(ns, query).await?;
    Ok(rows
        .first()
        .and_then(|r| crate::remote::get_ci(r, property))
        .map(|v| FactValue::Text(v.clone()))
        .unwrap_or(FactValue::Missing))
}

/// Reads the facts `cond` uses (each once) and evaluates it. Returns the verdict and the values
/// read, `name = value` for messages and stored facts.
pub(crate) async fn check(
    ctx: &Ctx<'_>,
    cond: &Condition,
    defs: &[FactDef],
) -> Result<(bool, Vec<(String, FactValue)>), StepError> {
    let mut values: Vec<(String, FactValue)> = Vec::new();
    for name in cond.facts() {
        let Some(def) = defs.iter().find(|d| d.name == name) else {
            return Err(StepError::precondition(
                ctx.host(),
                format!("condition `{cond}` reads fact `{name}`, which no probe gives"),
            ));
        };
        values.push((name.to_owned(), read(ctx, def).await?));
    }
    let ok = cond.eval(&mut |n| {
        values
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or(FactValue::Missing)
    });
    Ok((ok, values))
}

/// `a = 1, b = (missing)`.
pub(crate) fn shown(values: &[(String, FactValue)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
