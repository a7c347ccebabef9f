//! Loads and validates Lockstep's YAML inputs into `lockstep-core` types.
#![deny(missing_docs)]

mod diag;
mod tree;

pub use diag::{Diagnostic, Diagnostics, SourceFile};
mod ansible;
pub use ansible::{load_ansible_inventory, AnsibleGroup, AnsibleHost, AnsibleInventory};
mod inventory;
pub use inventory::load_inventory;
mod playbook;
mod rules;
pub use playbook::load_playbook;
pub mod embedded;
