//! Loads and validates Lockstep's YAML inputs, the inventory and the playbooks, into the
//! `lockstep-core` types ([`lockstep_core::Fleet`], [`lockstep_core::Playbook`]).
//!
//! Inventories are ordinary Ansible inventories, YAML or INI (`ini`), files or directories found
//! by [`read_inventory_sources`] with the `group_vars/` and `host_vars/` beside them, read as
//! Ansible reads them (`all`, `hosts`,
//! `vars`, `children` to any depth, host ranges, `ungrouped`, Ansible's variable precedence:
//! `all` < parent groups < child groups, same depth by `ansible_group_priority` then by name <
//! host vars; `group_vars/NAME.yml` and `host_vars/NAME.yml` files passed among the sources
//! sit above the inventory file's group and host vars, as in Ansible) by
//! [`load_ansible_inventory`]; [`load_inventory`] then reads the Windows and Exchange variables
//! and the namespaced `lockstep_*` ones into a fleet. A host is in the fleet when it is a Windows
//! host reached over WinRM (`ansible_connection: winrm`, or `windows_release`/`windows_build`/
//! `exchange_version` set); it is an Exchange server too when `exchange_version` is set. Other
//! hosts (Linux, network gear) are checked but left out of the fleet and of `Fleet::groups`. A
//! host named by its DNS name is the computer of its first label. Sites take any Windows locale
//! (MS-LCID); plain hosts in no site group join the implicit site `default` (en-US). Clusters
//! declare Exchange `virtual_servers` and/or other `groups` (file server, SQL, generic).
//! Defaults: `exchange_role` standalone, `exchange_edition` standard (small-business for
//! `sbs`), `windows_release` from `windows_build`, else by Exchange product (2003, 2000, nt4),
//! else unknown; password source `prompt`, WinRM scheme by Ansible's rule (https unless the port
//! is 5985).
//!
//! [`load_playbook`] reads `playbooks/*.yml` and checks it against the fleet it will run on.
//! Both loaders collect every error, each a [`Diagnostic`] with file, line and column, rendered
//! by [`Diagnostics`] as `file:line:col: error: message`. Positions come from a marked YAML tree
//! built with `yaml-rust2` (serde_yaml cannot place values); typed parts (action steps, failure
//! budgets) are then read by `serde_yaml`, and templates are compiled (syntax only) by
//! `minijinja`. [`embedded`] holds the shipped inventory and playbooks.
//!
//! [`inventory_list`] and [`inventory_graph`] show what was understood in the forms of
//! `ansible-inventory --list` and `--graph`.
//!
//! Main types: [`SourceFile`], [`Diagnostic`], [`Diagnostics`], [`AnsibleInventory`]. The crate
//! depends on `lockstep-core` only among the workspace crates, does no I/O beyond
//! [`SourceFile::read`] (bounded: regular files only, size cap, no NUL bytes) and
//! [`read_inventory_sources`] (directory listings), never stores or prints a password, and must not depend on the planner,
//! engine, transport or lab.
#![deny(missing_docs)]

mod ansible;
mod diag;
pub mod embedded;
mod ini;
mod inventory;
mod list;
mod playbook;
mod rules;
mod sources;
mod tree;

pub use ansible::{load_ansible_inventory, AnsibleGroup, AnsibleHost, AnsibleInventory};
pub use diag::{Diagnostic, Diagnostics, SourceFile, MAX_FILE_BYTES};
pub use inventory::load_inventory;
pub use list::{inventory_graph, inventory_list};
pub use playbook::load_playbook;
pub use sources::read_inventory_sources;
