//! Integration tests: the real `lockstep` binary against the lab, a separate `lockstep lab`
//! process serving the simulated fleet over real WinRM on loopback (the same transport that
//! talks to Windows). Rule ids of KB 328839 are cited where a test proves one.

#[path = "it/util.rs"]
mod util;

#[path = "../crates/lockstep-store/tests/common/pg.rs"]
mod pg;

#[path = "it/certificate.rs"]
mod certificate;
#[path = "it/cli_input.rs"]
mod cli_input;
#[path = "it/codepages.rs"]
mod codepages;
#[path = "it/completions.rs"]
mod completions;
#[path = "it/crash.rs"]
mod crash;
#[path = "it/e2e.rs"]
mod e2e;
#[path = "it/exec.rs"]
mod exec;
#[path = "it/facts.rs"]
mod facts;
#[path = "it/faults.rs"]
mod faults;
#[path = "it/generic.rs"]
mod generic;
#[path = "it/inventory_cli.rs"]
mod inventory_cli;
#[path = "it/inventory_hostile.rs"]
mod inventory_hostile;
#[path = "it/inventory_oracle.rs"]
mod inventory_oracle;
#[path = "it/kb_rules.rs"]
mod kb_rules;
#[path = "it/kerberos.rs"]
mod kerberos;
#[path = "it/leases.rs"]
mod leases;
#[path = "it/new_playbooks.rs"]
mod new_playbooks;
#[path = "it/operator.rs"]
mod operator;
#[path = "it/plan_snapshots.rs"]
mod plan_snapshots;
#[path = "it/portable.rs"]
mod portable;
#[path = "it/resume.rs"]
mod resume;
#[path = "it/safety.rs"]
mod safety;
#[path = "it/secrets.rs"]
mod secrets;
#[path = "it/shells.rs"]
mod shells;
#[path = "it/stage.rs"]
mod stage;
#[path = "it/takeover.rs"]
mod takeover;
#[path = "it/terminal.rs"]
mod terminal;
#[path = "it/vault.rs"]
mod vault;
