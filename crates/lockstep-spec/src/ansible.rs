//! Ansible YAML inventories, read as Ansible reads them: groups, children, hosts and variable
//! precedence, before anything Lockstep-specific is looked at.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use lockstep_core::Name;

use crate::diag::{did_you_mean, hint, q, Diagnostics, Pos, Sink, SourceFile};
use crate::tree::{self, Kind, Node};

/// A group as the inventory declares it (merged over every file and every mention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsibleGroup {
    /// Group name.
    pub name: String,
    /// Groups this group is a child of (`all` for top-level groups), sorted.
    pub parents: Vec<String>,
    /// Child groups, sorted.
    pub children: Vec<String>,
    /// Hosts listed directly under the group, in inventory order.
    pub direct_hosts: Vec<String>,
    /// Every host of the group and of its descendants, sorted.
    pub hosts: Vec<String>,
    /// Ansible's group depth (`all` is 0; a child is one deeper than its deepest parent).
    pub depth: usize,
    /// `ansible_group_priority` (default 1).
    pub priority: i64,
    /// The group's own variables, as text.
    pub vars: BTreeMap<String, String>,
}

/// A host with its variables merged exactly as Ansible merges them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsibleHost {
    /// Host name (the inventory key).
    pub name: String,
    /// Every group the host is in, direct or inherited, `all` included, sorted.
    pub groups: Vec<String>,
    /// Merged variables as text: `all` < parent groups < child groups (same depth: by
    /// `ansible_group_priority`, then by name) < host variables. Password variables are left out.
    pub vars: BTreeMap<String, String>,
}

/// A whole Ansible inventory, before Lockstep's own variables are interpreted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnsibleInventory {
    /// Groups by name (`all` and `ungrouped` always present).
    pub groups: BTreeMap<String, AnsibleGroup>,
    /// Hosts by name.
    pub hosts: BTreeMap<String, AnsibleHost>,
}

/// Keys a group may have.
const GROUP_KEYS: &[&str] = &["hosts", "vars", "children"];

/// Variables that hold a password: never kept, never printed.
pub(crate) const PASSWORD_VARS: &[&str] = &[
    "ansible_password",
    "ansible_winrm_password",
    "ansible_pass",
    "ansible_ssh_pass",
    "ansible_become_password",
    "ansible_become_pass",
];

/// Lockstep variables allowed on hosts and groups.
pub(crate) const LOCKSTEP_HOST_VARS: &[&str] = &[
    "lockstep_password_env",
    "lockstep_password_file",
    "lockstep_password_prompt",
    "lockstep_allow_basic_over_http",
    "lockstep_codepage",
];
/// Lockstep variables that define what a group is; read from the group's own `vars` only.
pub(crate) const LOCKSTEP_GROUP_VARS: &[&str] =
    &["lockstep_site", "lockstep_cluster", "lockstep_pool"];
/// Lockstep variables of the `all` group only.
pub(crate) const LOCKSTEP_ALL_VARS: &[&str] =
    &["lockstep_organisation", "lockstep_front_end_scope"];

/// A variable as written: its value node (with position) and the key's position.
#[derive(Debug, Clone)]
pub(crate) struct Var {
    pub key_pos: Pos,
    pub value: Node,
}

/// A variable after the precedence merge: `rank` grows with precedence (host vars highest).
#[derive(Debug, Clone)]
pub(crate) struct MergedVar {
    pub var: Var,
    pub rank: usize,
}

#[derive(Debug, Default)]
pub(crate) struct RawGroup {
    pub pos: Option<Pos>,
    pub direct_hosts: Vec<String>,
    /// The same hosts, for constant-time membership tests.
    pub direct_set: HashSet<String>,
    pub children: Vec<(String, Pos)>,
    /// Variables written in the inventory file.
    pub vars: BTreeMap<String, Var>,
    /// Variables from `group_vars/NAME.yml` (they win over the inventory file's).
    pub file_vars: BTreeMap<String, Var>,
}

impl RawGroup {
    /// The group's own variables: inventory file, then `group_vars/` over it.
    pub fn own_vars(&self) -> BTreeMap<String, Var> {
        let mut v = self.vars.clone();
        v.extend(self.file_vars.clone());
        v
    }
}

#[derive(Debug)]
pub(crate) struct RawHost {
    pub pos: Pos,
    pub vars: BTreeMap<String, Var>,
    /// Variables from `host_vars/NAME.yml`.
    pub file_vars: BTreeMap<String, Var>,
}

/// The parsed inventory with positions kept, for the Lockstep layer.
#[derive(Debug, Default)]
pub(crate) struct Raw {
    pub groups: BTreeMap<String, RawGroup>,
    pub hosts: BTreeMap<String, RawHost>,
    /// Host order of first appearance.
    pub host_order: Vec<String>,
    pub parents: BTreeMap<String, BTreeSet<String>>,
    pub members: BTreeMap<String, BTreeSet<String>>,
    pub depth: BTreeMap<String, usize>,
    pub priority: BTreeMap<String, i64>,
    /// Every group of each host (the inverse of `members`).
    pub host_groups: HashMap<String, Vec<String>>,
    /// Position of each host in `host_order`.
    pub host_index: HashMap<String, usize>,
}

impl Raw {
    /// The groups of `host` (all, direct and inherited), in Ansible's merge order.
    pub fn merge_order(&self, host: &str) -> Vec<&str> {
        let mut gs: Vec<&str> = self
            .host_groups
            .get(host)
            .map(|g| g.iter().map(String::as_str).collect())
            .unwrap_or_default();
        gs.sort_by_key(|g| {
            (
                self.depth.get(*g).copied().unwrap_or(0),
                self.priority.get(*g).copied().unwrap_or(1),
                g.to_string(),
            )
        });
        gs
    }

    /// The members of group `g` in inventory order.
    pub fn members_in_order(&self, g: &str) -> Vec<&String> {
        let mut m: Vec<&String> = self
            .members
            .get(g)
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        m.sort_by_key(|h| self.host_index.get(*h).copied().unwrap_or(usize::MAX));
        m
    }

    /// The merged variables of `host`, in Ansible's precedence: inventory-file group vars (by
    /// group order) < `group_vars/` files (by group order) < inventory-file host vars <
    /// `host_vars/` files.
    pub fn merged_vars(&self, host: &str) -> BTreeMap<String, MergedVar> {
        self.merged_vars_with(host, false)
    }

    /// [`Raw::merged_vars`], with the group-defining `lockstep_*` variables kept when
    /// `everything` (as Ansible itself would show them).
    pub fn merged_vars_with(&self, host: &str, everything: bool) -> BTreeMap<String, MergedVar> {
        let mut out = BTreeMap::new();
        let order = self.merge_order(host);
        let mut rank = 0;
        let layer =
            |vars: &BTreeMap<String, Var>, rank: usize, out: &mut BTreeMap<String, MergedVar>| {
                for (k, v) in vars {
                    // Ansible reads it as the group's priority, never as a variable.
                    if k == "ansible_group_priority" {
                        continue;
                    }
                    if !everything
                        && (LOCKSTEP_GROUP_VARS.contains(&k.as_str())
                            || LOCKSTEP_ALL_VARS.contains(&k.as_str()))
                    {
                        continue;
                    }
                    out.insert(
                        k.clone(),
                        MergedVar {
                            var: v.clone(),
                            rank,
                        },
                    );
                }
            };
        for file_level in [false, true] {
            for g in &order {
                if let Some(group) = self.groups.get(*g) {
                    layer(
                        if file_level {
                            &group.file_vars
                        } else {
                            &group.vars
                        },
                        rank,
                        &mut out,
                    );
                }
                rank += 1;
            }
        }
        if let Some(h) = self.hosts.get(host) {
            layer(&h.vars, rank, &mut out);
            layer(&h.file_vars, rank + 1, &mut out);
        }
        out
    }

    /// The public view.
    pub fn to_inventory(&self) -> AnsibleInventory {
        let text = |vars: &BTreeMap<String, Var>| -> BTreeMap<String, String> {
            vars.iter()
                .filter(|(k, _)| !PASSWORD_VARS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.value.to_text()))
                .collect()
        };
        let mut inv = AnsibleInventory::default();
        for (name, g) in &self.groups {
            let children: BTreeSet<String> = g.children.iter().map(|(c, _)| c.clone()).collect();
            inv.groups.insert(
                name.clone(),
                AnsibleGroup {
                    name: name.clone(),
                    parents: self
                        .parents
                        .get(name)
                        .map(|p| p.iter().cloned().collect())
                        .unwrap_or_default(),
                    children: children.into_iter().collect(),
                    direct_hosts: g.direct_hosts.clone(),
                    hosts: self
                        .members
                        .get(name)
                        .map(|m| m.iter().cloned().collect())
                        .unwrap_or_default(),
                    depth: self.depth.get(name).copied().unwrap_or(0),
                    priority: self.priority.get(name).copied().unwrap_or(1),
                    vars: text(&g.own_vars()),
                },
            );
        }
        for name in self.hosts.keys() {
            let merged = self.merged_vars(name);
            let vars = merged
                .into_iter()
                .filter(|(k, _)| !PASSWORD_VARS.contains(&k.as_str()))
                .map(|(k, v)| (k, v.var.value.to_text()))
                .collect();
            let mut groups: Vec<String> = self
                .merge_order(name)
                .into_iter()
                .map(str::to_owned)
                .collect();
            groups.sort();
            inv.hosts.insert(
                name.clone(),
                AnsibleHost {
                    name: name.clone(),
                    groups,
                    vars,
                },
            );
        }
        inv
    }
}

/// Loads Ansible YAML inventories (several files merge as `ansible -i a -i b` does).
pub fn load_ansible_inventory(files: &[SourceFile]) -> Result<AnsibleInventory, Diagnostics> {
    let mut sink = Sink::default();
    let raw = read_raw(files, &mut sink);
    sink.finish(raw.to_inventory())
}

/// Reads and links every file; errors go to `sink`, what could be read is returned.
pub(crate) fn read_raw(files: &[SourceFile], sink: &mut Sink) -> Raw {
    let mut raw = Raw::default();
    raw.groups.entry("all".into()).or_default();
    let mut vars_files = Vec::new();
    for file in files {
        if let Some(which) = vars_file(&file.path) {
            vars_files.push((which, file));
            continue;
        }
        let root = match parse_inventory(file) {
            Ok(n) => n,
            Err(d) => {
                sink.extend(d);
                continue;
            }
        };
        if root.is_null() {
            continue;
        }
        let Some(entries) = root.as_map() else {
            sink.error(
                &root.pos,
                format!(
                    "an inventory must be a mapping of groups (`all:`), found {}",
                    root.describe()
                ),
            );
            continue;
        };
        for (k, v) in entries {
            let Some(name) = group_name(k, sink) else {
                continue;
            };
            // A top-level group is a child of `all` only if nothing else claims it (`link`).
            read_group(&mut raw, &name, k, v, sink);
        }
    }
    // `group_vars/` and `host_vars/` files, once every group and host is known.
    for (which, file) in vars_files {
        let root = match tree::parse(file) {
            Ok(n) => n,
            Err(d) => {
                sink.extend(d);
                continue;
            }
        };
        match which {
            VarsFile::Group(g) => {
                let vars = read_vars(&root, VarPlace::Group(&g), sink);
                match raw.groups.get_mut(&g) {
                    Some(group) => group.file_vars.extend(vars),
                    None => {
                        tracing::debug!(group = %g, file = %file.path, "group_vars for a group the inventory does not have")
                    }
                }
            }
            VarsFile::Host(h) => {
                let vars = read_vars(&root, VarPlace::Host, sink);
                match raw.hosts.get_mut(&h) {
                    Some(host) => host.file_vars.extend(vars),
                    None => {
                        tracing::debug!(host = %h, file = %file.path, "host_vars for a host the inventory does not have")
                    }
                }
            }
        }
    }
    link(&mut raw, sink);
    raw
}

/// Reads an inventory file as Ansible's plugins would: `.ini` files as INI; `.yml`, `.yaml` and
/// `.json` as YAML; any other file as YAML if it is a YAML mapping, else as INI.
fn parse_inventory(file: &SourceFile) -> Result<Node, Diagnostics> {
    let ext = std::path::Path::new(&file.path)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("ini") => crate::ini::parse(file),
        Some("yml" | "yaml" | "json") => tree::parse(file),
        _ => match tree::parse(file) {
            Ok(n) if n.as_map().is_some() => Ok(n),
            yaml => match crate::ini::parse(file) {
                Ok(n) => Ok(n),
                Err(ini) => match yaml {
                    // Neither: the INI errors say more about a file that is not a YAML mapping.
                    Ok(_) => Err(ini),
                    Err(y) => Err(y),
                },
            },
        },
    }
}

/// A `group_vars/` or `host_vars/` file, and whose variables it holds.
enum VarsFile {
    Group(String),
    Host(String),
}

/// `…/group_vars/NAME.yml`, `…/group_vars/NAME/any.yml` (and `host_vars/`), as Ansible lays
/// them out next to an inventory.
fn vars_file(path: &str) -> Option<VarsFile> {
    let parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let i = parts
        .iter()
        .rposition(|p| *p == "group_vars" || *p == "host_vars")?;
    let name = match parts.len() - i {
        2 => {
            let f = parts[i + 1];
            f.strip_suffix(".yml")
                .or_else(|| f.strip_suffix(".yaml"))
                .or_else(|| f.strip_suffix(".json"))
                .unwrap_or(f)
        }
        n if n >= 3 => parts[i + 1],
        _ => return None,
    };
    Some(if parts[i] == "group_vars" {
        VarsFile::Group(name.to_owned())
    } else {
        VarsFile::Host(name.to_owned())
    })
}

fn group_name(k: &Node, sink: &mut Sink) -> Option<String> {
    let Some(s) = k.as_str() else {
        sink.error(
            &k.pos,
            format!("a group name must be a string, found {}", k.describe()),
        );
        return None;
    };
    if let Err(e) = Name::ident(s) {
        sink.error(&k.pos, format!("group {}: {e}", q(s)));
        return None;
    }
    Some(s.to_owned())
}

fn add_child(raw: &mut Raw, parent: &str, child: &str, pos: &Pos) {
    raw.groups.entry(child.to_owned()).or_default();
    let g = raw.groups.entry(parent.to_owned()).or_default();
    if !g.children.iter().any(|(c, _)| c == child) {
        g.children.push((child.to_owned(), pos.clone()));
    }
}

fn read_group(raw: &mut Raw, name: &str, key: &Node, node: &Node, sink: &mut Sink) {
    {
        let g = raw.groups.entry(name.to_owned()).or_default();
        if g.pos.is_none() {
            g.pos = Some(key.pos.clone());
        }
    }
    if node.is_null() {
        return;
    }
    let Some(entries) = node.as_map() else {
        sink.error(
            &node.pos,
            format!(
                "group {} must be a mapping with `hosts`, `vars` or `children`, found {}",
                q(name),
                node.describe()
            ),
        );
        return;
    };
    for (k, v) in entries {
        match k.as_str() {
            Some("hosts") => read_hosts(raw, name, v, sink),
            Some("vars") => {
                let vars = read_vars(v, VarPlace::Group(name), sink);
                let g = raw.groups.entry(name.to_owned()).or_default();
                g.vars.extend(vars);
            }
            Some("children") => {
                if v.is_null() {
                    continue;
                }
                let Some(children) = v.as_map() else {
                    sink.error(
                        &v.pos,
                        format!(
                            "`children` of group {} must be a mapping of groups, found {}",
                            q(name),
                            v.describe()
                        ),
                    );
                    continue;
                };
                for (ck, cv) in children {
                    let Some(child) = group_name(ck, sink) else {
                        continue;
                    };
                    add_child(raw, name, &child, &ck.pos);
                    read_group(raw, &child, ck, cv, sink);
                }
            }
            other => {
                let word = other.unwrap_or("");
                if did_you_mean(word, GROUP_KEYS).is_some() || v.as_map().is_some() {
                    sink.error(
                        &k.pos,
                        format!(
                            "unknown key {} in group {} (a group has `hosts`, `vars` and \
                             `children`){}",
                            q(word),
                            q(name),
                            hint(word, GROUP_KEYS)
                        ),
                    );
                } else {
                    // Ansible skips such keys with a warning (a top-level YAML anchor holder
                    // such as `x-defaults: &d {port: 5986}` becomes an empty group).
                    tracing::warn!(
                        "{}:{}: skipping key {} of group {}: not `hosts`, `vars` or `children`",
                        k.pos.file,
                        k.pos.line,
                        q(word),
                        q(name)
                    );
                }
            }
        }
    }
}

fn read_hosts(raw: &mut Raw, group: &str, node: &Node, sink: &mut Sink) {
    if node.is_null() {
        return;
    }
    let Some(entries) = node.as_map() else {
        sink.error(
            &node.pos,
            format!(
                "`hosts` of group {} must be a mapping of host names, found {}",
                q(group),
                node.describe()
            ),
        );
        return;
    };
    for (k, v) in entries {
        let Some(pattern) = k.as_str() else {
            sink.error(
                &k.pos,
                format!("a host name must be a string, found {}", k.describe()),
            );
            continue;
        };
        let names = match expand_range(pattern) {
            Ok(n) => n,
            Err(msg) => {
                sink.error(&k.pos, msg);
                continue;
            }
        };
        let mut vars = if v.is_null() {
            BTreeMap::new()
        } else if v.as_map().is_some() {
            read_vars(v, VarPlace::Host, sink)
        } else {
            sink.error(
                &v.pos,
                format!(
                    "host {} must map to its variables or to nothing, found {}",
                    q(pattern),
                    v.describe()
                ),
            );
            BTreeMap::new()
        };
        for full in names {
            // `host:port` is Ansible shorthand for `ansible_port`.
            let (name, port) = match full.rsplit_once(':') {
                Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                    (h.to_owned(), Some(p.to_owned()))
                }
                _ => (full.clone(), None),
            };
            if let Err(e) = Name::ident(&name) {
                sink.error(&k.pos, format!("host {}: {e}", q(&name)));
                continue;
            }
            if let Some(p) = port {
                vars.entry("ansible_port".into()).or_insert(Var {
                    key_pos: k.pos.clone(),
                    value: Node {
                        pos: k.pos.clone(),
                        tag: None,
                        kind: Kind::Scalar {
                            value: p,
                            plain: true,
                        },
                    },
                });
            }
            if !raw.hosts.contains_key(&name) {
                raw.host_order.push(name.clone());
            }
            let h = raw.hosts.entry(name.clone()).or_insert_with(|| RawHost {
                pos: k.pos.clone(),
                vars: BTreeMap::new(),
                file_vars: BTreeMap::new(),
            });
            // The same host under several groups: its variables merge, later ones win.
            h.vars.extend(vars.clone());
            let g = raw.groups.entry(group.to_owned()).or_default();
            if g.direct_set.insert(name.clone()) {
                g.direct_hosts.push(name);
            }
        }
    }
}

/// The most hosts one pattern may expand to.
const MAX_RANGE_HOSTS: usize = 100_000;

/// Expands Ansible's host ranges: `web[01:10].contoso.com`, `db-[a:c]`, `n[0:20:5]`, several in
/// one pattern.
fn expand_range(pattern: &str) -> Result<Vec<String>, String> {
    let (Some(open), Some(close)) = (pattern.find('['), pattern.find(']')) else {
        return Ok(vec![pattern.to_owned()]);
    };
    let bad = || format!("host pattern {} has a malformed range", q(pattern));
    if close < open {
        return Err(bad());
    }
    let (head, inner, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let mut parts = inner.split(':');
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    let step: usize = match parts.next() {
        Some(s) => s.parse().map_err(|_| bad())?,
        None => 1,
    };
    if step == 0 || parts.next().is_some() {
        return Err(bad());
    }
    let mut items = Vec::new();
    if let (Ok(x), Ok(y)) = (a.parse::<u32>(), b.parse::<u32>()) {
        if x > y || (y - x) as usize / step >= MAX_RANGE_HOSTS {
            return Err(bad());
        }
        let width = if a.starts_with('0') { a.len() } else { 0 };
        for i in (x..=y).step_by(step) {
            items.push(format!("{i:0width$}"));
        }
    } else if a.len() == 1 && b.len() == 1 && a <= b {
        let (x, y) = (a.as_bytes()[0], b.as_bytes()[0]);
        for c in (x..=y).step_by(step) {
            items.push((c as char).to_string());
        }
    } else {
        return Err(bad());
    }
    let tails = expand_range(tail)?;
    if items.len().saturating_mul(tails.len()) > MAX_RANGE_HOSTS {
        return Err(format!(
            "host pattern {} expands to more than {MAX_RANGE_HOSTS} hosts",
            q(pattern)
        ));
    }
    let mut out = Vec::with_capacity(items.len() * tails.len());
    for i in &items {
        for t in &tails {
            out.push(format!("{head}{i}{t}"));
        }
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum VarPlace<'a> {
    Group(&'a str),
    Host,
}

fn read_vars(node: &Node, place: VarPlace<'_>, sink: &mut Sink) -> BTreeMap<String, Var> {
    let mut out = BTreeMap::new();
    if node.is_null() {
        return out;
    }
    let Some(entries) = node.as_map() else {
        sink.error(
            &node.pos,
            format!("`vars` must be a mapping, found {}", node.describe()),
        );
        return out;
    };
    for (k, v) in entries {
        let Some(key) = k.as_str() else {
            sink.error(
                &k.pos,
                format!("a variable name must be a string, found {}", k.describe()),
            );
            continue;
        };
        check_var(key, k, v, place, sink);
        out.insert(
            key.to_owned(),
            Var {
                key_pos: k.pos.clone(),
                value: v.clone(),
            },
        );
    }
    out
}

/// Checks a variable where it is written: Lockstep keys known and in their place, no inline
/// password.
fn check_var(key: &str, k: &Node, v: &Node, place: VarPlace<'_>, sink: &mut Sink) {
    if key.starts_with("lockstep_") {
        let all: Vec<&str> = LOCKSTEP_HOST_VARS
            .iter()
            .chain(LOCKSTEP_GROUP_VARS)
            .chain(LOCKSTEP_ALL_VARS)
            .copied()
            .collect();
        if !all.contains(&key) {
            sink.error(
                &k.pos,
                format!("unknown Lockstep variable {}{}", q(key), hint(key, &all)),
            );
        } else if LOCKSTEP_GROUP_VARS.contains(&key) && matches!(place, VarPlace::Host) {
            sink.error(
                &k.pos,
                format!(
                    "{} describes a group; set it in a group's `vars`, not on a host",
                    q(key)
                ),
            );
        } else if LOCKSTEP_ALL_VARS.contains(&key) && !matches!(place, VarPlace::Group("all")) {
            sink.error(
                &k.pos,
                format!("{} may only be set in the vars of `all`", q(key)),
            );
        } else if LOCKSTEP_GROUP_VARS.contains(&key) && matches!(place, VarPlace::Group("all")) {
            sink.error(
                &k.pos,
                format!(
                    "{} cannot be set on `all`; set it on the site, cluster or pool group",
                    q(key)
                ),
            );
        }
    }
    if PASSWORD_VARS.contains(&key) && is_inline_secret(v) {
        // The value is never quoted back: it may be a real password.
        sink.error(
            &v.pos,
            format!(
                "inline password in {} is refused; use `\"{{{{ lookup('env', 'VAR') }}}}\"` or \
                 `lockstep_password_env`",
                q(key)
            ),
        );
    }
}

/// A password written in clear in the file: not an Ansible Vault value (`!vault`), not a
/// template (`{{ lookup('env', 'X') }}`, `{{ vault_password }}`), not empty.
pub(crate) fn is_inline_secret(v: &Node) -> bool {
    if v.tag.as_deref().is_some_and(|t| t.ends_with("vault")) || v.is_null() {
        return false;
    }
    match v.as_str() {
        Some(s) => !s.contains("{{"),
        None => false,
    }
}

/// `"{{ lookup('env', 'VAR') }}"` → `VAR`.
pub(crate) fn env_lookup(v: &Node) -> Option<String> {
    if v.tag.is_some() {
        return None;
    }
    let s = v.as_str()?.trim();
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let args = inner
        .strip_prefix("lookup")?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')?;
    let mut parts = args.split(',').map(|p| p.trim());
    let unq = |p: &str| -> Option<String> {
        let p = p.trim();
        let p = p
            .strip_prefix('\'')
            .and_then(|x| x.strip_suffix('\''))
            .or_else(|| p.strip_prefix('"').and_then(|x| x.strip_suffix('"')))?;
        Some(p.to_owned())
    };
    let plugin = unq(parts.next()?)?;
    let var = unq(parts.next()?)?;
    if parts.next().is_some() || !matches!(plugin.as_str(), "env" | "ansible.builtin.env") {
        return None;
    }
    let ok = var
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some(var)
}

/// Cycles, depths, flattened membership, `ungrouped`, group/host name clashes.
fn link(raw: &mut Raw, sink: &mut Sink) {
    // Every child mentioned exists as a group.
    let names: Vec<String> = raw.groups.keys().cloned().collect();
    for g in &names {
        let children = raw.groups[g].children.clone();
        for (c, _) in children {
            raw.groups.entry(c).or_default();
        }
    }
    // Cycle detection (DFS, colours), dropping the edge that closes a cycle.
    let mut state: HashMap<String, u8> = HashMap::new();
    let mut cut: BTreeSet<(String, String)> = BTreeSet::new();
    fn dfs(
        g: &str,
        raw: &Raw,
        state: &mut HashMap<String, u8>,
        path: &mut Vec<String>,
        cut: &mut BTreeSet<(String, String)>,
        sink: &mut Sink,
    ) {
        state.insert(g.to_owned(), 1);
        path.push(g.to_owned());
        if let Some(group) = raw.groups.get(g) {
            for (c, pos) in &group.children {
                match state.get(c.as_str()).copied().unwrap_or(0) {
                    0 => dfs(c, raw, state, path, cut, sink),
                    1 => {
                        let start = path.iter().position(|p| p == c).unwrap_or(0);
                        let mut cycle: Vec<String> = path[start..].to_vec();
                        cycle.push(c.clone());
                        sink.error(
                            pos,
                            format!(
                                "cycle in `children`: {}",
                                cycle.iter().map(|s| q(s)).collect::<Vec<_>>().join(" -> ")
                            ),
                        );
                        cut.insert((g.to_owned(), c.clone()));
                    }
                    _ => {}
                }
            }
        }
        path.pop();
        state.insert(g.to_owned(), 2);
    }
    let mut roots = vec!["all".to_owned()];
    roots.extend(names.iter().cloned());
    for g in roots {
        if state.get(&g).copied().unwrap_or(0) == 0 {
            dfs(&g, raw, &mut state, &mut Vec::new(), &mut cut, sink);
        }
    }
    for (g, c) in &cut {
        if let Some(group) = raw.groups.get_mut(g) {
            group.children.retain(|(x, _)| x != c);
        }
    }
    // A group nobody names as a child is a child of `all` (covers cut cycles).
    let all_children: BTreeSet<String> = raw
        .groups
        .values()
        .flat_map(|g| g.children.iter().map(|(c, _)| c.clone()))
        .collect();
    let orphan: Vec<String> = raw
        .groups
        .keys()
        .filter(|g| *g != "all" && !all_children.contains(*g))
        .cloned()
        .collect();
    for g in orphan {
        let pos = raw.groups[&g].pos.clone().unwrap_or(Pos {
            file: "".into(),
            line: 1,
            col: 1,
        });
        add_child(raw, "all", &g, &pos);
    }
    // `ungrouped`: hosts in no group but `all`.
    let grouped: BTreeSet<String> = raw
        .groups
        .iter()
        .filter(|(g, _)| *g != "all" && *g != "ungrouped")
        .flat_map(|(_, g)| g.direct_hosts.iter().cloned())
        .collect();
    let ungrouped: Vec<String> = raw
        .host_order
        .iter()
        .filter(|h| !grouped.contains(*h))
        .cloned()
        .collect();
    if !raw.groups.contains_key("ungrouped") {
        add_child(
            raw,
            "all",
            "ungrouped",
            &Pos {
                file: "".into(),
                line: 1,
                col: 1,
            },
        );
    }
    raw.groups
        .get_mut("ungrouped")
        .map(|g| {
            for h in ungrouped {
                if g.direct_set.insert(h.clone()) {
                    g.direct_hosts.push(h);
                }
            }
        })
        .unwrap_or_default();
    // Parents, depth (longest path from `all`), priority.
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (g, group) in &raw.groups {
        for (c, _) in &group.children {
            parents.entry(c.clone()).or_default().insert(g.clone());
        }
    }
    fn depth_of(
        g: &str,
        parents: &BTreeMap<String, BTreeSet<String>>,
        memo: &mut BTreeMap<String, usize>,
    ) -> usize {
        if let Some(d) = memo.get(g) {
            return *d;
        }
        let d = parents
            .get(g)
            .map(|ps| {
                ps.iter()
                    .map(|p| depth_of(p, parents, memo) + 1)
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        memo.insert(g.to_owned(), d);
        d
    }
    let mut depth = BTreeMap::new();
    for g in raw.groups.keys() {
        depth_of(g, &parents, &mut depth);
    }
    let mut priority = BTreeMap::new();
    for (g, group) in &raw.groups {
        if let Some(v) = group.own_vars().get("ansible_group_priority") {
            match v.value.as_str().and_then(|s| s.parse::<i64>().ok()) {
                Some(p) => {
                    priority.insert(g.clone(), p);
                }
                None => sink.error(
                    &v.value.pos,
                    format!(
                        "`ansible_group_priority` of group {} must be an integer, found {}",
                        q(g),
                        q(&v.value.to_text())
                    ),
                ),
            }
        }
    }
    // Flattened membership.
    fn members_of(
        g: &str,
        raw: &Raw,
        memo: &mut BTreeMap<String, BTreeSet<String>>,
    ) -> BTreeSet<String> {
        if let Some(m) = memo.get(g) {
            return m.clone();
        }
        let mut m: BTreeSet<String> = BTreeSet::new();
        if let Some(group) = raw.groups.get(g) {
            m.extend(group.direct_hosts.iter().cloned());
            for (c, _) in &group.children {
                m.extend(members_of(c, raw, memo));
            }
        }
        memo.insert(g.to_owned(), m.clone());
        m
    }
    let mut members = BTreeMap::new();
    for g in raw.groups.keys() {
        members_of(g, raw, &mut members);
    }
    members.insert("all".into(), raw.hosts.keys().cloned().collect());
    // A group that is also a host.
    for (g, group) in &raw.groups {
        if let Some(h) = raw.hosts.keys().find(|h| h.eq_ignore_ascii_case(g)) {
            let pos = group
                .pos
                .clone()
                .unwrap_or_else(|| raw.hosts[h].pos.clone());
            sink.error(
                &pos,
                format!("group {} has the same name as host {}", q(g), q(h)),
            );
        }
    }
    let mut host_groups: HashMap<String, Vec<String>> = HashMap::new();
    for (g, m) in &members {
        for h in m {
            host_groups.entry(h.clone()).or_default().push(g.clone());
        }
    }
    raw.host_index = raw
        .host_order
        .iter()
        .enumerate()
        .map(|(i, h)| (h.clone(), i))
        .collect();
    raw.host_groups = host_groups;
    raw.parents = parents;
    raw.depth = depth;
    raw.priority = priority;
    raw.members = members;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_ranges() {
        assert_eq!(
            expand_range("web[01:03]").unwrap(),
            vec!["web01", "web02", "web03"]
        );
        assert_eq!(
            expand_range("db-[a:c]").unwrap(),
            vec!["db-a", "db-b", "db-c"]
        );
        assert!(expand_range("x[3:1]").is_err());
        assert_eq!(
            expand_range("web[1:2]-[a:b].contoso.com").unwrap(),
            vec![
                "web1-a.contoso.com",
                "web1-b.contoso.com",
                "web2-a.contoso.com",
                "web2-b.contoso.com"
            ]
        );
        assert_eq!(expand_range("n[0:10:5]").unwrap(), vec!["n0", "n5", "n10"]);
        assert!(expand_range("x[0:99999][0:99999]").is_err());
    }

    #[test]
    fn reads_env_lookups() {
        let src = SourceFile::new(
            "t.yml",
            "a: \"{{ lookup('env', 'PW') }}\"\nb: '{{lookup(\"ansible.builtin.env\",\"X_1\")}}'\nc: hunter2\n",
        );
        let n = tree::parse(&src).unwrap();
        assert_eq!(env_lookup(n.get("a").unwrap()).as_deref(), Some("PW"));
        assert_eq!(env_lookup(n.get("b").unwrap()).as_deref(), Some("X_1"));
        assert_eq!(env_lookup(n.get("c").unwrap()), None);
    }
}
