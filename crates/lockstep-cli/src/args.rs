//! Command-line arguments as clap parses them (the "low" arguments): no validation beyond
//! types. [`crate::settings`] checks the rest and derives what commands read; then `inputs`
//! (inventories, playbooks, variables) and `wiring` (store, transport) load and build from them.
//! Every refusal on the way exits 2 (`exit::BadInput`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCandidates;

/// Lockstep: staged, resumable changes to Windows fleets over WinRM (service packs, hotfixes,
/// cluster patching), one cluster node out of service at a time.
#[derive(Debug, Parser)]
#[command(name = "lockstep", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Less output: errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,

    /// The state file (SQLite) holding runs and checkpoints.
    #[arg(
        long,
        env = "LOCKSTEP_STATE",
        default_value = ".lockstep/state.db",
        global = true
    )]
    pub state: PathBuf,

    /// WinRM commands running at once across the fleet (each node runs at most 2): a long silent
    /// installer holds one for its whole run.
    #[arg(
        long,
        env = "LOCKSTEP_MAX_CONNECTIONS",
        default_value_t = 256,
        global = true,
        value_parser = clap::value_parser!(u32).range(1..=65536)
    )]
    pub max_connections: u32,

    /// Seconds a controller's lease on a run and its hosts lasts unless renewed (renewed every
    /// third): another controller takes a run over only after it lapsed.
    #[arg(
        long,
        env = "LOCKSTEP_LEASE_SECS",
        default_value_t = 30,
        global = true,
        value_parser = clap::value_parser!(u64).range(1..=86400)
    )]
    pub lease_secs: u64,

    /// Ask once for the password of the inventory's users instead of their configured sources.
    #[arg(long, global = true)]
    pub ask_pass: bool,

    /// Progress of runs on standard error for people, or a stream of newline-delimited JSON
    /// events on standard output for other tools (one object per line; `event` names the kind,
    /// `at` is when it happened).
    #[arg(long, value_enum, default_value_t = Output::Human, global = true)]
    pub output: Output,

    /// Plain progress lines instead of live progress bars (the default when standard error is
    /// not a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,

    /// Vault passwords for `!vault` values and vault-encrypted files.
    #[command(flatten)]
    pub vault: VaultArgs,
}

/// How run progress is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Lines on standard error.
    Human,
    /// One JSON object per event on standard output.
    Json,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people.
    Human,
    /// One JSON object per line.
    Json,
}

/// Output format of `plan` and `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For scripts.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate inventories and playbooks; print nothing but errors.
    Check(CheckArgs),
    /// Print the ordered plan of a playbook on an inventory.
    Plan(PlanArgs),
    /// Start a rollout.
    Run(RunArgs),
    /// Continue a stopped, halted or waiting run where it stopped.
    Resume(ResumeArgs),
    /// Watch a shared state store for runs whose controller stopped renewing its lease, take
    /// each over and resume it exactly like `lockstep resume` (run one on several machines).
    Controller(ControllerArgs),
    /// Show where runs stand.
    Status(StatusArgs),
    /// Approve a waiting gate or operator step, so that `resume` continues past it.
    Approve(ApproveArgs),
    /// Write a run's report: one self-contained HTML file, or Markdown for a change ticket.
    Report(ReportArgs),
    /// Rehearse the whole KB 328839 rollout on the built-in lab fleet (in-process).
    Demo(DemoArgs),
    /// Run the lab: a simulated Windows/Exchange fleet speaking WinRM on loopback.
    Lab(LabArgs),
    /// Show the inventory as Lockstep understood it, in `ansible-inventory`'s forms.
    Inventory(InventoryArgs),
    /// Read the fleet as it is (Windows and Exchange builds, Cluster service, group owners,
    /// pending restart, free disk, hotfixes), with the drift from the inventory.
    Facts(FactsArgs),
    /// Run one command on the selected hosts, in parallel, and show each host's exit code and
    /// output.
    Exec(ExecArgs),
    /// Print the shell's completion script (it asks `lockstep` for playbook names and run ids
    /// as you type): `source <(lockstep completions bash)`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// Where the inventory and playbook come from.
#[derive(Debug, Args, Clone)]
pub struct SpecArgs {
    /// Inventory sources, merged in order: Ansible YAML or INI files, or directories of them
    /// (with `group_vars/` and `host_vars/` beside). Default: the built-in lab inventory.
    #[arg(short, long = "inventory", value_name = "PATH")]
    pub inventories: Vec<PathBuf>,

    /// Limit to hosts, groups, sites or clusters (patterns, comma-separated, `!` excludes,
    /// `~REGEX`, `@FILE` for a file of names one per line such as a retry file).
    #[arg(short, long, value_name = "PATTERN")]
    pub limit: Option<String>,

    /// Extra variables for the playbook, above inventory and playbook variables (repeatable):
    /// `NAME=VALUE ...`, a JSON or YAML mapping, or `@FILE` (YAML or JSON).
    #[arg(short = 'e', long = "extra-var", value_name = "VARS")]
    pub extra_vars: Vec<String>,
}

/// Where Ansible Vault passwords come from (as `ansible-playbook` takes them).
#[derive(Debug, Args, Clone, Default)]
pub struct VaultArgs {
    /// A file holding the vault password (read as text, never run).
    #[arg(
        long,
        env = "ANSIBLE_VAULT_PASSWORD_FILE",
        value_name = "FILE",
        global = true
    )]
    pub vault_password_file: Option<PathBuf>,

    /// Ask for the vault password on the terminal.
    #[arg(long, global = true)]
    pub ask_vault_pass: bool,

    /// A labelled vault password: `LABEL@FILE` or `LABEL@prompt` (repeatable).
    #[arg(long = "vault-id", value_name = "LABEL@SOURCE", global = true)]
    pub vault_ids: Vec<String>,
}

/// `lockstep inventory`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("action").required(true).args(["list", "graph"]))]
pub struct InventoryArgs {
    /// Inventory sources, merged in order (files or directories).
    #[arg(short, long = "inventory", value_name = "PATH")]
    pub inventories: Vec<PathBuf>,

    /// Print every group and host with its variables, as `ansible-inventory --list` (JSON).
    #[arg(long)]
    pub list: bool,

    /// Print the group tree, as `ansible-inventory --graph`.
    #[arg(long)]
    pub graph: bool,

    /// Also read `group_vars/` and `host_vars/` beside the playbooks in this folder.
    #[arg(long, value_name = "DIR")]
    pub playbook_dir: Option<PathBuf>,
}

/// `lockstep check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Inventory and targeting.
    #[command(flatten)]
    pub spec: SpecArgs,

    /// Playbooks to validate. Default: every built-in playbook.
    #[arg(add = ArgValueCandidates::new(crate::complete::playbooks))]
    pub playbooks: Vec<PathBuf>,
}

/// `lockstep plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Inventory and targeting.
    #[command(flatten)]
    pub spec: SpecArgs,

    /// The playbook (a file, or the name of a built-in playbook such as `e3-cluster`).
    #[arg(add = ArgValueCandidates::new(crate::complete::playbooks))]
    pub playbook: String,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `lockstep run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Inventory and targeting.
    #[command(flatten)]
    pub spec: SpecArgs,

    /// The playbook (a file, or the name of a built-in playbook such as `e3-cluster`).
    #[arg(add = ArgValueCandidates::new(crate::complete::playbooks))]
    pub playbook: String,

    /// Approve every gate and operator step as it comes (unattended rehearsal only).
    #[arg(long)]
    pub yes: bool,

    /// Multiply soak times by this factor (0 skips them; for rehearsals).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub soak_scale: f64,

    /// Skip live discovery and plan from the inventory as written.
    #[arg(long)]
    pub no_discovery: bool,

    /// Change nothing: discover, run every read-only check and probe, and print exactly what
    /// each step would send (exit 3 if a check fails).
    #[arg(long)]
    pub check: bool,
}

/// `lockstep resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run (default: the latest).
    #[arg(add = ArgValueCandidates::new(crate::complete::runs))]
    pub run: Option<String>,

    /// Inventory file(s) the run was planned from, to re-plan with `--replan`.
    #[arg(short, long = "inventory", value_name = "FILE")]
    pub inventories: Vec<PathBuf>,

    /// Re-plan from the current inventory and playbook, keeping finished steps.
    #[arg(long)]
    pub replan: bool,

    /// Approve every gate and operator step as it comes.
    #[arg(long)]
    pub yes: bool,

    /// Multiply soak times by this factor.
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub soak_scale: f64,
}

/// `lockstep controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Approve every gate and operator step of the runs taken over, as `resume --yes` does.
    #[arg(long)]
    pub yes: bool,

    /// Multiply soak times by this factor.
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub soak_scale: f64,

    /// Exit once the first run taken over ends (finished, halted or waiting).
    #[arg(long)]
    pub once: bool,
}

/// `lockstep status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run (default: a list of every run).
    #[arg(add = ArgValueCandidates::new(crate::complete::runs))]
    pub run: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `lockstep approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The run (default: the latest).
    #[arg(add = ArgValueCandidates::new(crate::complete::runs))]
    pub run: Option<String>,

    /// The operator step you performed (its id), or a gate (`gate:STAGE`); as `--what`.
    pub step: Option<String>,

    /// The gate (`gate:STAGE`) or step id to approve (default: everything waiting).
    #[arg(long)]
    pub what: Option<String>,
}

/// `lockstep report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run (default: the latest).
    #[arg(add = ArgValueCandidates::new(crate::complete::runs))]
    pub run: Option<String>,

    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,

    /// Write the report here instead of standard output (`--out`: the global `--output` picks
    /// how run progress is reported).
    #[arg(short = 'o', long = "out", id = "report_file", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// One self-contained HTML file with an SVG timeline.
    Html,
    /// Markdown, for pasting into a change ticket.
    Md,
}

/// `lockstep demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the lab's record (JSON lines) of everything the fleet did.
    #[arg(
        long,
        default_value = ".lockstep/demo-record.jsonl",
        value_name = "FILE"
    )]
    pub record: PathBuf,

    /// Slow the simulated fleet down (1.0 = real durations; the default rehearses in seconds).
    #[arg(long, default_value_t = 0.002, value_name = "FACTOR")]
    pub time_scale: f64,

    /// Built-in playbooks to roll, in order (default: every shipped procedure).
    #[arg(long, value_delimiter = ',')]
    pub playbooks: Vec<String>,
}

/// `lockstep facts`.
#[derive(Debug, Args)]
pub struct FactsArgs {
    /// Inventory and targeting.
    #[command(flatten)]
    pub spec: SpecArgs,

    /// Read only these probes (repeatable or comma-separated): windows, exchange,
    /// cluster-service, boot-time, pending-restart, free-disk, hotfixes, owners. Default: all.
    #[arg(long = "probe", value_name = "NAME", value_delimiter = ',')]
    pub probes: Vec<String>,

    /// Read the hosts this playbook would touch (a file or a built-in name), within `--limit`,
    /// and the facts it declares (`facts:`), shown as extra columns.
    #[arg(long, value_name = "PLAYBOOK", add = ArgValueCandidates::new(crate::complete::playbooks))]
    pub playbook: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FactsFormat::Text)]
    pub format: FactsFormat,
}

/// Output format of `facts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FactsFormat {
    /// A table grouped by site and cluster.
    Text,
    /// One JSON document.
    Json,
    /// One line per host.
    Csv,
}

/// `lockstep exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Inventory and targeting (`--limit` is required).
    #[command(flatten)]
    pub spec: SpecArgs,

    /// Hosts running the command at once.
    #[arg(short, long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub forks: u32,

    /// Run even when the selection holds several nodes of one cluster.
    #[arg(long)]
    pub yes: bool,

    /// Run this PowerShell script instead of a cmd.exe command (sent with -EncodedCommand).
    #[arg(long, value_name = "SCRIPT", conflicts_with = "command")]
    pub powershell: Option<String>,

    /// Seconds a host's command may run before it is terminated.
    #[arg(long, default_value_t = 600, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// The cmd.exe command line, after `--`.
    #[arg(
        last = true,
        value_name = "COMMAND",
        required_unless_present = "powershell"
    )]
    pub command: Vec<String>,
}

/// `lockstep lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// `verify FILE [--playbook P]`: check a lab record against the invariants a playbook declares (all of them without one).
    #[command(subcommand)]
    pub action: Option<LabAction>,

    /// Inventory file(s) describing the fleet to simulate. Default: the built-in lab inventory.
    #[arg(short, long = "inventory", value_name = "FILE")]
    pub inventories: Vec<PathBuf>,

    /// Lab configuration (YAML): installer packages, durations, faults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Write the endpoint map (JSON object: host name to WinRM URL) here.
    #[arg(long, value_name = "FILE")]
    pub endpoints: Option<PathBuf>,

    /// Write an inventory overlay pointing every host at its lab endpoint, for `-i`; the lab's
    /// installer packages go beside it (`NAME.packages/`), the overlay's `package_root`.
    #[arg(long, value_name = "FILE")]
    pub overlay: Option<PathBuf>,

    /// Record every command and state change here (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Serve HTTPS with certificates signed by a generated lab CA; the CA certificate is written
    /// beside the endpoints (or the overlay) as `NAME.ca.pem`, and the overlay trusts it.
    #[arg(long)]
    pub https: bool,

    /// Also run a throwaway Kerberos realm (MIT's `krb5kdc` on loopback, which must be
    /// installed): the lab account gets a principal with the lab password, every host
    /// `HTTP/<host>.<realm>` in the hosts' keytab. The realm is the one of an `ansible_user` of
    /// the form `user@REALM`, else `LAB.TEST`. Its `krb5.conf` is written beside the endpoints
    /// (or the overlay) as `NAME.krb5.conf` and the overlay uses Kerberos; use it by hand with
    /// `KRB5_CONFIG=... kinit user@REALM`.
    #[arg(long)]
    pub kerberos: bool,

    /// Rehearse weakened nodes (`AllowUnencrypted=true`): accept Basic and unsealed NTLM over
    /// plain HTTP, which Windows' default configuration (and the lab's) refuses.
    #[arg(long)]
    pub allow_unencrypted: bool,

    /// Multiply simulated durations (installers, reboots) by this factor.
    #[arg(long, value_name = "FACTOR")]
    pub time_scale: Option<f64>,

    /// Environment variable holding the password the lab accepts (default: `lockstep-lab`).
    #[arg(long, default_value = "LOCKSTEP_LAB_PASSWORD", value_name = "VAR")]
    pub password_env: String,
}

/// `lockstep lab` sub-actions.
#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Check a lab record against invariants (exit 1 on any violation): with `--playbook`, the
    /// invariants that playbook declares, each violation citing the playbook's rule id; without,
    /// every invariant the lab checks (one-node-out-per-cluster, quorum, tier-order,
    /// group-on-upgraded-node, cluster-service-stopped-for-install, exactly-once), citing KB
    /// 328839's rules.
    Verify {
        /// The record file (`lockstep lab --record FILE`).
        file: PathBuf,

        /// Check only the invariants this playbook declares (`invariants:`), citing its rule ids
        /// (a file, or the name of a built-in playbook such as `e3-cluster`).
        #[arg(long, add = ArgValueCandidates::new(crate::complete::playbooks))]
        playbook: Option<String>,

        /// Inventory sources the playbook is read against (as for `lockstep plan`). Default: the
        /// built-in lab inventory.
        #[arg(short, long = "inventory", value_name = "PATH", requires = "playbook")]
        inventories: Vec<PathBuf>,
    },
    /// Inject a fault into a running lab (or clear a host's faults), through its own WinRM.
    Fault(FaultArgs),
}

/// `lockstep lab fault`.
#[derive(Debug, Args)]
pub struct FaultArgs {
    /// The running lab's endpoint map (written by `lockstep lab --endpoints`).
    #[arg(long, value_name = "FILE")]
    pub endpoints: PathBuf,

    /// The host the fault applies to.
    pub host: String,

    /// refuse, http500, slow MS, drop-mid-receive, reboot-never-returns, installer-fails CODE,
    /// wrong-version-after-install BUILD, cluster-service-fails-to-start, group-move-fails GROUP.
    #[arg(required_unless_present = "clear")]
    pub kind: Option<String>,

    /// The fault's argument, where it takes one.
    pub arg: Option<String>,

    /// Clear every fault of the host instead.
    #[arg(long, conflicts_with = "kind")]
    pub clear: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exec_takes_the_command_after_two_dashes() {
        let cli = Cli::try_parse_from([
            "lockstep", "exec", "-l", "prague", "--forks", "3", "--", "sc", "query", "clussvc",
        ])
        .unwrap();
        match cli.command {
            Command::Exec(e) => {
                assert_eq!(e.command, ["sc", "query", "clussvc"]);
                assert_eq!((e.forks, e.yes, e.powershell), (3, false, None));
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["lockstep", "exec", "-l", "x"]).is_err());
        assert!(Cli::try_parse_from([
            "lockstep",
            "exec",
            "-l",
            "x",
            "--powershell",
            "Get-Date",
            "--",
            "hostname"
        ])
        .is_err());
    }

    #[test]
    fn report_file_and_global_output_do_not_collide() {
        let cli = Cli::try_parse_from([
            "lockstep",
            "--output",
            "json",
            "report",
            "-o",
            "r.html",
            "--no-progress",
        ])
        .unwrap();
        assert_eq!(cli.global.output, Output::Json);
        assert!(cli.global.no_progress);
        match cli.command {
            Command::Report(r) => assert_eq!(r.output, Some(PathBuf::from("r.html"))),
            other => panic!("parsed as {other:?}"),
        }
    }
}
