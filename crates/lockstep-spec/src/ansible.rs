//! Ansible YAML inventories, read as Ansible reads them: groups, children, hosts and variable
//! precedence, before anything Lockstep-specific is looked at.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Hash maps keyed by inventory names: foldhash (seeded per process) is several times faster
/// than SipHash on short names, and the inventory is the operator's own file.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

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

/// A variable after the precedence merge: `rank` grows with precedence (host vars highest). The
/// variable is borrowed from the group or host that set it (a group's variables reach each of
/// its hosts without a copy), and owned only once rendered for the host.
#[derive(Debug, Clone)]
pub(crate) struct MergedVar<'a> {
    pub var: Cow<'a, Var>,
    pub rank: usize,
}

/// Which of a group's variable sets a merge level reads.
type VarsOf = fn(&RawGroup) -> &VarMap;

/// A host's merged variables, by name (the names borrowed from the inventory).
pub(crate) type MergedVars<'a> = BTreeMap<&'a str, MergedVar<'a>>;

/// Variables by name: a vector sorted by name, compact for the few variables of most hosts
/// (a tree map would take a kilobyte and more per host).
#[derive(Debug, Clone, Default)]
pub(crate) struct VarMap(Vec<(String, Var)>);

impl VarMap {
    /// The variables `entries`, in any order; of the same name, the last wins.
    fn from_entries(mut entries: Vec<(String, Var)>) -> Self {
        // Stable: of equal names the last written stays last, and is the one kept.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, Var)> = Vec::with_capacity(entries.len());
        for e in entries {
            match out.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => out.push(e),
            }
        }
        VarMap(out)
    }

    /// The variable `k`.
    pub fn get(&self, k: &str) -> Option<&Var> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(k))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Every variable, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Sets every variable of `other` (its values win).
    pub fn extend(&mut self, other: VarMap) {
        if self.0.is_empty() {
            self.0 = other.0;
            return;
        }
        if other.0.is_empty() {
            return;
        }
        let mine = std::mem::take(&mut self.0);
        let mut out = Vec::with_capacity(mine.len() + other.0.len());
        let mut a = mine.into_iter().peekable();
        let mut b = other.0.into_iter().peekable();
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                    std::cmp::Ordering::Less => a.next(),
                    std::cmp::Ordering::Greater => b.next(),
                    std::cmp::Ordering::Equal => {
                        a.next();
                        b.next()
                    }
                },
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            out.extend(next);
        }
        self.0 = out;
    }
}

#[derive(Debug, Default)]
pub(crate) struct RawGroup {
    pub pos: Option<Pos>,
    /// Hosts listed under the group itself, in inventory order, as positions in
    /// [`Raw::host_order`].
    pub direct_hosts: Vec<usize>,
    /// The same hosts, for constant-time membership tests.
    pub direct_set: FastSet<usize>,
    pub children: Vec<(String, Pos)>,
    /// The same children, for constant-time membership tests.
    pub child_set: FastSet<String>,
    /// Variables written in the inventory file.
    pub vars: VarMap,
    /// Variables from `group_vars/NAME.yml` beside an inventory source (they win over the
    /// inventory file's).
    pub file_vars: VarMap,
    /// Variables from `group_vars/NAME.yml` beside the playbook.
    pub play_vars: VarMap,
}

impl RawGroup {
    /// The group's own variables: inventory file, then `group_vars/` over it (the playbook's
    /// over the inventory's).
    pub fn own_vars(&self) -> VarMap {
        let mut v = self.vars.clone();
        v.extend(self.file_vars.clone());
        v.extend(self.play_vars.clone());
        v
    }
}

#[derive(Debug)]
pub(crate) struct RawHost {
    pub pos: Pos,
    pub vars: VarMap,
    /// Variables from `host_vars/NAME.yml` beside an inventory source.
    pub file_vars: VarMap,
    /// Variables from `host_vars/NAME.yml` beside the playbook.
    pub play_vars: VarMap,
}

/// The parsed inventory with positions kept, for the Lockstep layer.
///
/// Hosts and groups are linked once, by index, so that each host's groups and each group's
/// hosts are found without a search: loading stays linear in the number of hosts.
#[derive(Debug, Default)]
pub(crate) struct Raw {
    pub groups: BTreeMap<String, RawGroup>,
    /// Host names in order of first appearance; a host's position here is its number.
    pub host_order: Vec<String>,
    /// The hosts, by number.
    pub hosts: Vec<RawHost>,
    /// Each host's number.
    pub host_index: FastMap<String, usize>,
    pub parents: BTreeMap<String, BTreeSet<String>>,
    pub depth: BTreeMap<String, usize>,
    pub priority: BTreeMap<String, i64>,
    /// Every group in Ansible's merge order: by depth, then `ansible_group_priority`, then name.
    pub group_order: Vec<String>,
    /// Each host's groups (`all`, direct and inherited) as positions in `group_order`,
    /// ascending (so in merge order); indexed like `host_order`.
    pub host_groups: Vec<Vec<u32>>,
    /// Each group's hosts (direct and inherited) as positions in `host_order`, sorted by host
    /// name.
    pub members: FastMap<String, Vec<u32>>,
}

impl Raw {
    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&RawHost> {
        self.host_index.get(name).map(|i| &self.hosts[*i])
    }

    /// The names of the hosts listed under group `g` itself, in inventory order.
    pub fn direct_hosts<'a>(&'a self, g: &'a RawGroup) -> impl Iterator<Item = &'a str> + 'a {
        g.direct_hosts.iter().map(|h| self.host_order[*h].as_str())
    }

    /// The groups of host number `i` (of `host_order`), in merge order.
    fn groups_of(&self, i: usize) -> impl Iterator<Item = &str> {
        self.host_groups
            .get(i)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|g| self.group_order[*g as usize].as_str())
    }

    /// The groups of `host` (all, direct and inherited), in Ansible's merge order.
    pub fn merge_order(&self, host: &str) -> Vec<&str> {
        match self.host_index.get(host) {
            Some(i) => self.groups_of(*i).collect(),
            None => Vec::new(),
        }
    }

    /// The groups of `host` (all, direct and inherited), sorted by name.
    pub fn groups_by_name(&self, host: &str) -> Vec<&str> {
        let mut gs = self.merge_order(host);
        gs.sort_unstable();
        gs
    }

    /// The hosts of group `g` (direct and inherited), sorted by name.
    pub fn members_by_name(&self, g: &str) -> Vec<&str> {
        self.members
            .get(g)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|h| self.host_order[*h as usize].as_str())
            .collect()
    }

    /// The members of group `g` in inventory order.
    pub fn members_in_order(&self, g: &str) -> Vec<&str> {
        let mut m: Vec<u32> = self.members.get(g).cloned().unwrap_or_default();
        m.sort_unstable();
        m.into_iter()
            .map(|h| self.host_order[h as usize].as_str())
            .collect()
    }

    /// The merged variables of `host`, in Ansible's precedence: inventory-file group vars (by
    /// group order) < `group_vars/` files (by group order) < inventory-file host vars <
    /// `host_vars/` files.
    pub fn merged_vars<'a>(&'a self, host: &str) -> MergedVars<'a> {
        self.merged_vars_with(host, false)
    }

    /// [`Raw::merged_vars`], with the group-defining `lockstep_*` variables kept when
    /// `everything` (as Ansible itself would show them).
    pub fn merged_vars_with<'a>(&'a self, host: &str, everything: bool) -> MergedVars<'a> {
        self.merged_vars_in(host, &self.merge_order(host), everything)
    }

    /// [`Raw::merged_vars_with`] for a host whose groups in merge order, `order`, are known.
    pub fn merged_vars_in<'a>(
        &'a self,
        host: &str,
        order: &[&str],
        everything: bool,
    ) -> MergedVars<'a> {
        let mut out = BTreeMap::new();
        let mut rank = 0;
        let layer = |vars: &'a VarMap, rank: usize, out: &mut MergedVars<'a>| {
            for (k, v) in vars.iter() {
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
                    k.as_str(),
                    MergedVar {
                        var: Cow::Borrowed(v),
                        rank,
                    },
                );
            }
        };
        // Ansible's order: inventory-file group vars (every group) < `group_vars/all` beside the
        // inventory < beside the playbook < the other `group_vars/` beside the inventory <
        // beside the playbook. `all` comes first in `order` (it alone has depth 0).
        let (all, others) = match order.split_first() {
            Some((first, rest)) if *first == "all" => (Some(*first), rest),
            _ => (None, order),
        };
        let levels: [(&[&str], VarsOf); 5] = [
            (order, |g| &g.vars),
            (all.as_slice(), |g| &g.file_vars),
            (all.as_slice(), |g| &g.play_vars),
            (others, |g| &g.file_vars),
            (others, |g| &g.play_vars),
        ];
        for (groups, vars_of) in levels {
            for g in groups {
                if let Some(group) = self.groups.get(*g) {
                    layer(vars_of(group), rank, &mut out);
                }
                rank += 1;
            }
        }
        if let Some(h) = self.host(host) {
            layer(&h.vars, rank, &mut out);
            layer(&h.file_vars, rank + 1, &mut out);
            layer(&h.play_vars, rank + 2, &mut out);
        }
        out
    }

    /// The public view.
    pub fn to_inventory(&self) -> AnsibleInventory {
        let text = |vars: &VarMap| -> BTreeMap<String, String> {
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
                    direct_hosts: self.direct_hosts(g).map(str::to_owned).collect(),
                    hosts: self
                        .members_by_name(name)
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                    depth: self.depth.get(name).copied().unwrap_or(0),
                    priority: self.priority.get(name).copied().unwrap_or(1),
                    vars: text(&g.own_vars()),
                },
            );
        }
        for name in &self.host_order {
            let merged = self.merged_vars(name);
            let vars = merged
                .into_iter()
                .filter(|(k, _)| !PASSWORD_VARS.contains(k))
                .map(|(k, v)| (k.to_owned(), v.var.value.to_text()))
                .collect();
            let groups: Vec<String> = self
                .groups_by_name(name)
                .into_iter()
                .map(str::to_owned)
                .collect();
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
        // The tree is taken apart as it is read: its values move into the inventory.
        let entries = match root.into_map() {
            Ok(e) => e,
            Err(root) => {
                sink.error(
                    &root.pos,
                    format!(
                        "an inventory must be a mapping of groups (`all:`), found {}",
                        root.describe()
                    ),
                );
                continue;
            }
        };
        for (k, v) in entries {
            let Some(name) = group_name(&k, sink) else {
                continue;
            };
            // A top-level group is a child of `all` only if nothing else claims it (`link`).
            read_group(&mut raw, &name, &k, v, sink);
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
                let vars = read_vars(root, VarPlace::Group(&g), sink);
                match raw.groups.get_mut(&g) {
                    Some(group) if file.beside_playbook => group.play_vars.extend(vars),
                    Some(group) => group.file_vars.extend(vars),
                    None => {
                        tracing::debug!(group = %g, file = %file.path, "group_vars for a group the inventory does not have")
                    }
                }
            }
            VarsFile::Host(h) => {
                let vars = read_vars(root, VarPlace::Host, sink);
                match raw.host_index.get(&h) {
                    Some(&i) if file.beside_playbook => raw.hosts[i].play_vars.extend(vars),
                    Some(&i) => raw.hosts[i].file_vars.extend(vars),
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
    if g.child_set.insert(child.to_owned()) {
        g.children.push((child.to_owned(), pos.clone()));
    }
}

fn read_group(raw: &mut Raw, name: &str, key: &Node, node: Node, sink: &mut Sink) {
    {
        let g = raw.groups.entry(name.to_owned()).or_default();
        if g.pos.is_none() {
            g.pos = Some(key.pos.clone());
        }
    }
    if node.is_null() {
        return;
    }
    let entries = match node.into_map() {
        Ok(e) => e,
        Err(node) => {
            sink.error(
                &node.pos,
                format!(
                    "group {} must be a mapping with `hosts`, `vars` or `children`, found {}",
                    q(name),
                    node.describe()
                ),
            );
            return;
        }
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
                let children = match v.into_map() {
                    Ok(c) => c,
                    Err(v) => {
                        sink.error(
                            &v.pos,
                            format!(
                                "`children` of group {} must be a mapping of groups, found {}",
                                q(name),
                                v.describe()
                            ),
                        );
                        continue;
                    }
                };
                for (ck, cv) in children {
                    let Some(child) = group_name(&ck, sink) else {
                        continue;
                    };
                    if child == "all" {
                        sink.error(
                            &ck.pos,
                            format!("`all` cannot be a child of group {}", q(name)),
                        );
                        continue;
                    }
                    add_child(raw, name, &child, &ck.pos);
                    read_group(raw, &child, &ck, cv, sink);
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

fn read_hosts(raw: &mut Raw, group: &str, node: Node, sink: &mut Sink) {
    if node.is_null() {
        return;
    }
    let entries = match node.into_map() {
        Ok(e) => e,
        Err(node) => {
            sink.error(
                &node.pos,
                format!(
                    "`hosts` of group {} must be a mapping of host names, found {}",
                    q(group),
                    node.describe()
                ),
            );
            return;
        }
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
            VarMap::default()
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
            VarMap::default()
        };
        let last = names.len().saturating_sub(1);
        for (i, full) in names.into_iter().enumerate() {
            // `host:port` is Ansible shorthand for `ansible_port`.
            let (name, port) = match full.rsplit_once(':') {
                Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                    (h.to_owned(), Some(p.to_owned()))
                }
                _ => (full, None),
            };
            if let Err(e) = Name::ident(&name) {
                sink.error(&k.pos, format!("host {}: {e}", q(&name)));
                continue;
            }
            if let Some(p) = port.filter(|_| vars.get("ansible_port").is_none()) {
                vars.extend(VarMap::from_entries(vec![(
                    "ansible_port".into(),
                    Var {
                        key_pos: k.pos.clone(),
                        value: Node {
                            pos: k.pos.clone(),
                            tag: None,
                            kind: Kind::Scalar {
                                value: p,
                                plain: true,
                            },
                        },
                    },
                )]));
            }
            // The variables written for the pattern: the last host takes them, the others a copy.
            let these = if i == last {
                std::mem::take(&mut vars)
            } else {
                vars.clone()
            };
            let index = match raw.host_index.get(&name) {
                Some(&i) => {
                    // The same host under several groups: its variables merge, later ones win.
                    raw.hosts[i].vars.extend(these);
                    i
                }
                None => {
                    let i = raw.host_order.len();
                    raw.host_index.insert(name.clone(), i);
                    raw.host_order.push(name);
                    raw.hosts.push(RawHost {
                        pos: k.pos.clone(),
                        vars: these,
                        file_vars: VarMap::default(),
                        play_vars: VarMap::default(),
                    });
                    i
                }
            };
            let g = match raw.groups.get_mut(group) {
                Some(g) => g,
                None => raw.groups.entry(group.to_owned()).or_default(),
            };
            if g.direct_set.insert(index) {
                g.direct_hosts.push(index);
            }
        }
    }
}

/// How deep groups may nest under `all` (a bound on the loader's recursion).
const MAX_GROUP_NESTING: usize = 500;

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

fn read_vars(node: Node, place: VarPlace<'_>, sink: &mut Sink) -> VarMap {
    let mut out = Vec::new();
    if node.is_null() {
        return VarMap::default();
    }
    let entries = match node.into_map() {
        Ok(e) => e,
        Err(node) => {
            sink.error(
                &node.pos,
                format!("`vars` must be a mapping, found {}", node.describe()),
            );
            return VarMap::default();
        }
    };
    for (k, v) in entries {
        let Some(key) = k.as_str() else {
            sink.error(
                &k.pos,
                format!("a variable name must be a string, found {}", k.describe()),
            );
            continue;
        };
        check_var(key, &k, &v, place, sink);
        let Kind::Scalar { value: key, .. } = k.kind else {
            continue;
        };
        out.push((
            key,
            Var {
                key_pos: k.pos,
                value: v,
            },
        ));
    }
    VarMap::from_entries(out)
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
    cut_cycles(raw, &names, sink);
    adopt_orphans(raw);
    fill_ungrouped(raw);
    // Parents, depth (longest path from `all`), priority.
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (g, group) in &raw.groups {
        for (c, _) in &group.children {
            parents.entry(c.clone()).or_default().insert(g.clone());
        }
    }
    let depth = depths(raw, &parents);
    let priority = priorities(raw, sink);
    // Every group in merge order. A parent is shallower than its children, so this order also
    // lists every group after its parents.
    let mut group_order: Vec<String> = raw.groups.keys().cloned().collect();
    let key = |g: &String| {
        (
            depth.get(g).copied().unwrap_or(0),
            priority.get(g).copied().unwrap_or(1),
        )
    };
    group_order.sort_by(|a, b| (key(a), a).cmp(&(key(b), b)));
    let group_id: FastMap<&str, u32> = group_order
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i as u32))
        .collect();
    // Each group with its ancestors, once per group (not once per host).
    let mut ancestors: Vec<Vec<u32>> = Vec::with_capacity(group_order.len());
    for (i, g) in group_order.iter().enumerate() {
        let mut a = vec![i as u32];
        for p in parents.get(g).into_iter().flatten() {
            if let Some(&pi) = group_id.get(p.as_str()) {
                if (pi as usize) < i {
                    a.extend_from_slice(&ancestors[pi as usize]);
                }
            }
        }
        a.sort_unstable();
        a.dedup();
        ancestors.push(a);
    }
    // Each host's groups: the ancestors of the groups that list it, and `all`.
    let all_id = group_id.get("all").copied();
    let mut host_groups: Vec<Vec<u32>> = vec![Vec::new(); raw.host_order.len()];
    for (g, group) in &raw.groups {
        let gi = group_id[g.as_str()] as usize;
        for h in &group.direct_hosts {
            host_groups[*h].extend_from_slice(&ancestors[gi]);
        }
    }
    for gs in &mut host_groups {
        gs.extend(all_id);
        gs.sort_unstable();
        gs.dedup();
    }
    // Each group's hosts, sorted by host name.
    let mut by_name: Vec<u32> = (0..raw.host_order.len() as u32).collect();
    by_name.sort_unstable_by(|a, b| raw.host_order[*a as usize].cmp(&raw.host_order[*b as usize]));
    let mut member_lists: Vec<Vec<u32>> = vec![Vec::new(); group_order.len()];
    for h in by_name {
        for g in &host_groups[h as usize] {
            member_lists[*g as usize].push(h);
        }
    }
    let members: FastMap<String, Vec<u32>> =
        group_order.iter().cloned().zip(member_lists).collect();
    check_group_host_clash(raw, sink);
    raw.host_groups = host_groups;
    raw.group_order = group_order;
    raw.parents = parents;
    raw.depth = depth;
    raw.priority = priority;
    raw.members = members;
}

/// Cycle detection (DFS, colours), dropping the edge that closes a cycle; an edge nesting groups
/// deeper than [`MAX_GROUP_NESTING`] is dropped too. Each is reported.
fn cut_cycles(raw: &mut Raw, names: &[String], sink: &mut Sink) {
    let mut state: HashMap<String, u8> = HashMap::new();
    let mut cut: BTreeSet<(String, String)> = BTreeSet::new();
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
}

/// One step of [`cut_cycles`]: visits `g` and its children.
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
                0 if path.len() >= MAX_GROUP_NESTING => {
                    sink.error(
                        pos,
                        format!(
                            "groups nest more than {MAX_GROUP_NESTING} levels deep under \
                             `all` (at {})",
                            q(c)
                        ),
                    );
                    cut.insert((g.to_owned(), c.clone()));
                }
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

/// A group nobody names as a child is a child of `all` (covers cut cycles).
fn adopt_orphans(raw: &mut Raw) {
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
}

/// `ungrouped`: hosts in no group but `all`.
fn fill_ungrouped(raw: &mut Raw) {
    let ungrouped: Vec<usize> = {
        let mut grouped = vec![false; raw.host_order.len()];
        for (_, g) in raw
            .groups
            .iter()
            .filter(|(g, _)| *g != "all" && *g != "ungrouped")
        {
            for h in &g.direct_hosts {
                grouped[*h] = true;
            }
        }
        (0..raw.host_order.len()).filter(|h| !grouped[*h]).collect()
    };
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
    if let Some(g) = raw.groups.get_mut("ungrouped") {
        for h in ungrouped {
            if g.direct_set.insert(h) {
                g.direct_hosts.push(h);
            }
        }
    }
}

/// Each group's depth: the longest path from `all`.
fn depths(raw: &Raw, parents: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, usize> {
    let mut depth = BTreeMap::new();
    for g in raw.groups.keys() {
        depth_of(g, parents, &mut depth);
    }
    depth
}

/// Longest path from a root to `g` (iterative: no recursion on deep inventories).
fn depth_of(
    g: &str,
    parents: &BTreeMap<String, BTreeSet<String>>,
    memo: &mut BTreeMap<String, usize>,
) {
    let mut stack = vec![(g.to_owned(), false)];
    while let Some((n, expanded)) = stack.pop() {
        if memo.contains_key(&n) {
            continue;
        }
        let ps = parents.get(&n).filter(|ps| !ps.is_empty());
        match ps {
            Some(ps) if !expanded => {
                stack.push((n.clone(), true));
                stack.extend(
                    ps.iter()
                        .filter(|p| !memo.contains_key(*p))
                        .map(|p| (p.clone(), false)),
                );
            }
            _ => {
                let d = ps
                    .map(|ps| {
                        ps.iter()
                            .map(|p| memo.get(p).copied().unwrap_or(0) + 1)
                            .max()
                            .unwrap_or(0)
                    })
                    .unwrap_or(0);
                memo.insert(n, d);
            }
        }
    }
}

/// Each group's `ansible_group_priority`, when valid; an invalid one is reported.
fn priorities(raw: &Raw, sink: &mut Sink) -> BTreeMap<String, i64> {
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
    priority
}

/// A group that is also a host (the first such host by name) is reported.
fn check_group_host_clash(raw: &Raw, sink: &mut Sink) {
    let mut lower_groups: HashMap<String, Vec<&str>> = HashMap::new();
    for g in raw.groups.keys() {
        lower_groups
            .entry(g.to_ascii_lowercase())
            .or_default()
            .push(g.as_str());
    }
    let mut clash: BTreeMap<&str, &str> = BTreeMap::new();
    for h in &raw.host_order {
        if let Some(gs) = lower_groups.get(h.to_ascii_lowercase().as_str()) {
            for g in gs {
                let e = clash.entry(g).or_insert(h.as_str());
                if h.as_str() < *e {
                    *e = h.as_str();
                }
            }
        }
    }
    for (g, h) in clash {
        let pos = raw.groups[g]
            .pos
            .clone()
            .unwrap_or_else(|| raw.hosts[raw.host_index[h]].pos.clone());
        sink.error(
            &pos,
            format!("group {} has the same name as host {}", q(g), q(h)),
        );
    }
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
    fn all_as_a_child_and_deep_nesting_are_errors_not_crashes() {
        // Found by the mutation test: `all` under another group made a cycle through `all`.
        let e = load_ansible_inventory(&[SourceFile::new("a.yml", "x:\n  children:\n    all:\n")])
            .unwrap_err();
        assert!(e.0[0].message.contains("`all` cannot be a child"), "{e}");
        let mut ini = String::new();
        for i in 0..5000 {
            ini.push_str(&format!("[g{i}:children]\ng{}\n", i + 1));
        }
        ini.push_str("[g5000]\nh1\n");
        let e = load_ansible_inventory(&[SourceFile::new("deep.ini", ini)]).unwrap_err();
        assert!(e.0.iter().any(|d| d.message.contains("levels deep")), "{e}");
        // A legitimate 100-level chain is fine, with the host's depth right.
        let mut ok = String::new();
        for i in 0..100 {
            ok.push_str(&format!("[g{i}:children]\ng{}\n", i + 1));
        }
        ok.push_str("[g100]\nh1\n");
        let inv = load_ansible_inventory(&[SourceFile::new("ok.ini", ok)]).unwrap();
        assert_eq!(inv.groups["g100"].depth, 101);
        assert_eq!(inv.groups["g0"].hosts, vec!["h1"]);
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
