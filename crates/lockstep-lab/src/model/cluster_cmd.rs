//! cluster.exe (`cluster group|res|node ...`) and the lab's stand-in for Cluster
//! Administrator's "Upgrade Exchange Virtual Server" (`labctl evs upgrade "G"`, T2).

use super::cmdline::switch;
use super::fault::Fault;
use super::state::{GroupState, NodeState, Out, ResKind, ResState, State};
use super::text::{pad, system_error, text, width};
use crate::record::RecordEvent;

/// The T2 message of Exchange's Cluster Administrator extension.
pub(crate) fn t2_message(server: &str) -> String {
    format!(
        "The version of Exchange on this computer does not match the version of Exchange on server '{server}'. ID no: c1037b44\n"
    )
}

impl State {
    fn sys_err(&self, h: usize, code: u32) -> Out {
        Out::err(code as i32, system_error(self.hosts[h].locale, code))
    }

    /// `cluster [/cluster:NAME] group|res|node ...`, run on host `h`.
    pub(crate) fn cmd_cluster(&mut self, h: usize, args: &[String]) -> Out {
        let Some(c) = self.hosts[h].cluster else {
            return self.sys_err(h, 1722);
        };
        let mut args: &[String] = args;
        while let Some(first) = args.first() {
            if switch(first, "cluster").is_some()
                || first.eq_ignore_ascii_case(&self.clusters[c].name)
                || first == "."
            {
                args = &args[1..];
            } else {
                break;
            }
        }
        if !self.clussvc_running(h) {
            return self.sys_err(h, 1722);
        }
        let object = args
            .first()
            .map(|a| a.to_ascii_lowercase())
            .unwrap_or_default();
        let rest = args.get(1..).unwrap_or(&[]);
        // The object name is the first word that is not a switch.
        let name = rest.first().filter(|a| !a.starts_with('/')).cloned();
        let switches: Vec<&String> = rest.iter().filter(|a| a.starts_with('/')).collect();
        let has = |s: &str| switches.iter().find_map(|a| switch(a, s));
        match object.as_str() {
            "group" | "g" => {
                let Some(name) = name else {
                    return Out::ok(self.list_groups(h, c, None));
                };
                let Some(g) = self.find_group(c, &name) else {
                    return self.sys_err(h, 5013);
                };
                if let Some(to) = has("moveto").or_else(|| has("move")) {
                    return self.cmd_move(h, c, g, to.filter(|t| !t.is_empty()));
                }
                if has("online").is_some() {
                    return match self.group_online(c, g) {
                        Ok(()) => Out::ok(self.list_groups(h, c, Some(g))),
                        Err(code) => self.sys_err(h, code),
                    };
                }
                if has("offline").is_some() {
                    self.group_offline(c, g);
                    return Out::ok(self.list_groups(h, c, Some(g)));
                }
                Out::ok(self.list_groups(h, c, Some(g)))
            }
            "res" | "resource" => {
                let Some(name) = name else {
                    return Out::ok(self.list_resources(h, c, None));
                };
                let Some((g, r)) = self.find_resource(c, &name) else {
                    return self.sys_err(h, 5007);
                };
                if has("online").is_some() {
                    return match self.res_online(c, g, r) {
                        Ok(()) => Out::ok(self.list_resources(h, c, Some((g, r)))),
                        Err(code) => self.sys_err(h, code),
                    };
                }
                if has("offline").is_some() {
                    self.res_offline(c, g, r);
                }
                Out::ok(self.list_resources(h, c, Some((g, r))))
            }
            "node" | "n" => {
                let target = match &name {
                    Some(n) => match self.find(n).filter(|&i| self.hosts[i].cluster == Some(c)) {
                        Some(i) => i,
                        None => return self.sys_err(h, 5042),
                    },
                    None => h,
                };
                if has("stop").is_some() {
                    self.stop_clussvc(target);
                } else if has("start").is_some() {
                    if self.start_clussvc(target).is_err() {
                        return self.sys_err(h, 1067);
                    }
                } else if has("pause").is_some() {
                    if self.node_state(target) == NodeState::Down {
                        return self.sys_err(h, 5050);
                    }
                    self.set_paused(target, true);
                } else if has("resume").is_some() {
                    self.set_paused(target, false);
                } else if name.is_none() {
                    return Out::ok(self.list_nodes(h, c, None));
                }
                Out::ok(self.list_nodes(h, c, Some(target)))
            }
            _ => Out::err(87, system_error(self.hosts[h].locale, 87)),
        }
    }

    fn cmd_move(&mut self, h: usize, c: usize, g: usize, to: Option<&str>) -> Out {
        let owner = self.clusters[c].groups[g].owner;
        let dest = match to {
            Some(t) => match self.find(t).filter(|&i| self.hosts[i].cluster == Some(c)) {
                Some(i) => i,
                None => return self.sys_err(h, 5042),
            },
            None => match self.clusters[c]
                .nodes
                .iter()
                .copied()
                .find(|&n| n != owner && self.node_state(n) == NodeState::Up)
            {
                Some(n) => n,
                None => return self.sys_err(h, 5005),
            },
        };
        match self.node_state(dest) {
            NodeState::Down => return self.sys_err(h, 5050),
            NodeState::Paused => return self.sys_err(h, 5005),
            NodeState::Up => {}
        }
        let gname = self.clusters[c].groups[g].name.clone();
        let blocked = [h, dest, owner].iter().any(|&n| {
            self.has_fault(n, |f| matches!(f, Fault::GroupMoveFails { group } if group.eq_ignore_ascii_case(&gname)))
        });
        if blocked {
            return self.sys_err(h, 5038);
        }
        let mut out = format!("Moving resource group '{gname}'...\n\n");
        if dest != owner {
            if let Err(code) = self.relocate(c, g, dest, "move") {
                return self.sys_err(h, code);
            }
        }
        out.push_str(&self.group_table(h, c, &[g]));
        Out::ok(out)
    }

    fn group_table(&self, h: usize, c: usize, groups: &[usize]) -> String {
        let t = text(self.hosts[h].locale);
        let cols = [t.h_group, t.h_node, t.h_status];
        let w = [
            20.max(width(cols[0])),
            15.max(width(cols[1])),
            6.max(width(cols[2])),
        ];
        let mut out = table_head(&cols, &w);
        for &g in groups {
            let grp = &self.clusters[c].groups[g];
            let state = t.group_states[match grp.state() {
                GroupState::Online => 0,
                GroupState::Offline => 1,
                GroupState::Failed => 2,
                GroupState::Partial => 3,
            }];
            out.push_str(&format!(
                "{} {} {}\n",
                pad(&grp.name, w[0]),
                pad(&self.hosts[grp.owner].name, w[1]),
                state
            ));
        }
        out
    }

    /// `cluster group` listing (all groups, or one).
    pub(crate) fn list_groups(&self, h: usize, c: usize, one: Option<usize>) -> String {
        let t = text(self.hosts[h].locale);
        let groups: Vec<usize> = match one {
            Some(g) => vec![g],
            None => (0..self.clusters[c].groups.len()).collect(),
        };
        let title = match one {
            Some(g) => format!(
                "{} '{}':",
                t.list_groups.trim_end_matches(':'),
                self.clusters[c].groups[g].name
            ),
            None => t.list_groups.to_owned(),
        };
        format!("{title}\n\n{}", self.group_table(h, c, &groups))
    }

    /// `cluster res` listing (all resources, or one).
    pub(crate) fn list_resources(&self, h: usize, c: usize, one: Option<(usize, usize)>) -> String {
        let t = text(self.hosts[h].locale);
        let cols = [t.h_resource, t.h_group, t.h_node, t.h_status];
        let w = [
            20.max(width(cols[0])),
            20.max(width(cols[1])),
            15.max(width(cols[2])),
            6.max(width(cols[3])),
        ];
        let mut out = format!("{}\n\n{}", t.list_resources, table_head(&cols, &w));
        for (gi, grp) in self.clusters[c].groups.iter().enumerate() {
            for (ri, r) in grp.resources.iter().enumerate() {
                if one.is_some_and(|o| o != (gi, ri)) {
                    continue;
                }
                let state = t.group_states[match r.state {
                    ResState::Online => 0,
                    ResState::Offline => 1,
                    ResState::Failed => 2,
                }];
                out.push_str(&format!(
                    "{} {} {} {}\n",
                    pad(&r.name, w[0]),
                    pad(&grp.name, w[1]),
                    pad(&self.hosts[grp.owner].name, w[2]),
                    state
                ));
            }
        }
        out
    }

    /// `cluster node` listing (all nodes, or one).
    pub(crate) fn list_nodes(&self, h: usize, c: usize, one: Option<usize>) -> String {
        let t = text(self.hosts[h].locale);
        let cols = [t.h_node, t.h_node_id, t.h_status];
        let w = [
            14.max(width(cols[0])),
            7.max(width(cols[1])),
            21.max(width(cols[2])),
        ];
        let mut out = format!("{}\n\n{}", t.list_nodes, table_head(&cols, &w));
        for (i, &n) in self.clusters[c].nodes.iter().enumerate() {
            if one.is_some_and(|o| o != n) {
                continue;
            }
            let state = t.node_states[self.node_state(n) as usize];
            let id = (i + 1).to_string();
            out.push_str(&format!(
                "{} {}{} {}\n",
                pad(&self.hosts[n].name, w[0]),
                " ".repeat(w[1].saturating_sub(id.len())),
                id,
                state
            ));
        }
        out
    }

    /// `labctl evs upgrade "G"`: succeeds only when every T2 precondition holds.
    pub(crate) fn evs_upgrade(&mut self, h: usize, group: &str) -> Out {
        let Some(c) = self.hosts[h].cluster else {
            return self.sys_err(h, 1722);
        };
        if !self.clussvc_running(h) {
            return self.sys_err(h, 1722);
        }
        let Some(g) = self.find_group(c, group) else {
            return Out::err(
                1,
                format!(
                    "labctl: group `{group}` is not in cluster `{}`\n",
                    self.clusters[c].name
                ),
            );
        };
        let grp = &self.clusters[c].groups[g];
        let Some(evs) = grp.evs.clone() else {
            return Out::err(
                1,
                format!("labctl: group `{group}` holds no Exchange virtual server\n"),
            );
        };
        let owner = grp.owner;
        let owner_build = self.hosts[owner].build;
        let here = self.hosts[h].build;
        if evs.version == owner_build && here == owner_build {
            return Out::ok(format!(
                "Exchange virtual server `{}` is already at version {}.\n",
                evs.name, evs.version
            ));
        }
        let mut why = Vec::new();
        if owner_build <= evs.version {
            why.push(format!(
                "group `{}` is on node `{}` at {}, not at a newer build than the virtual server ({})",
                grp.name, self.hosts[owner].name, owner_build, evs.version
            ));
        }
        if here != owner_build {
            why.push(format!(
                "this node `{}` is at {}, the group's node `{}` at {}",
                self.hosts[h].name, here, self.hosts[owner].name, owner_build
            ));
        }
        for r in &grp.resources {
            match (r.kind, r.state) {
                (ResKind::Sa, ResState::Online) => why.push(format!(
                    "the System Attendant resource `{}` is online",
                    r.name
                )),
                (k, ResState::Online)
                    if !matches!(k, ResKind::Ip | ResKind::NetName | ResKind::Disk) =>
                {
                    why.push(format!(
                        "resource `{}` ({}) is online",
                        r.name,
                        k.type_name()
                    ))
                }
                _ => {}
            }
        }
        let dtc_online = self.clusters[c].groups.iter().any(|g| {
            g.resources
                .iter()
                .any(|r| r.kind == ResKind::Dtc && r.state == ResState::Online)
        });
        if !dtc_online {
            why.push("no Distributed Transaction Coordinator resource is online".to_owned());
        }
        if !why.is_empty() {
            let mut err = t2_message(&self.hosts[owner].name);
            for w in why {
                err.push_str(&format!("(lab: {w})\n"));
            }
            return Out::err(1, err);
        }
        let gname = grp.name.clone();
        if let Some(e) = self.clusters[c].groups[g].evs.as_mut() {
            e.version = owner_build;
        }
        self.record(
            Some(owner),
            RecordEvent::EvsUpgraded {
                group: gname,
                evs: evs.name.clone(),
                version: owner_build,
            },
        );
        Out::ok(format!(
            "Exchange virtual server `{}` upgraded to version {}.\n",
            evs.name, owner_build
        ))
    }
}

fn table_head(cols: &[&str], w: &[usize]) -> String {
    let last = cols.len() - 1;
    let mut head = String::new();
    let mut dash = String::new();
    for (i, (c, &wi)) in cols.iter().zip(w).enumerate() {
        if i > 0 {
            head.push(' ');
            dash.push(' ');
        }
        if i == last {
            head.push_str(c);
        } else {
            head.push_str(&pad(c, wi));
        }
        dash.push_str(&"-".repeat(wi));
    }
    format!("{head}\n{dash}\n")
}
