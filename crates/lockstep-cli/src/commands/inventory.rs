//! `lockstep inventory --list|--graph`: what Lockstep understood of an inventory, printed in
//! `ansible-inventory`'s JSON and graph forms so the two can be compared.

use std::io::Write as _;

use anyhow::Result;

use crate::args::InventoryArgs;
use crate::exit::ExitStatus;
use crate::inputs;

/// Loads the sources (files, directories, `group_vars/`, `host_vars/`) and prints them.
pub fn run(args: &InventoryArgs) -> Result<ExitStatus> {
    let dirs: Vec<_> = args.playbook_dir.iter().cloned().collect();
    let files = inputs::inventory_files(&args.inventories, &dirs, &args.vault)?;
    let out = if args.list {
        let list = lockstep_spec::inventory_list(&files).map_err(inputs::bad)?;
        serde_json::to_string_pretty(&list)? + "\n"
    } else {
        lockstep_spec::inventory_graph(&files).map_err(inputs::bad)?
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitStatus::Success)
}
