//! The harness: a lab process, and the `lockstep` binary run against it with its own state file.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The password the test labs accept (never a real one; the secrets test looks for it).
pub const LAB_PASSWORD: &str = "Lab-Test-Pa55word-7f3e9";

/// The `lockstep` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lockstep")
}

/// A file of the repository.
pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The shipped lab inventory.
pub fn lab_inventory() -> PathBuf {
    repo("inventory/lab.yml")
}

/// A `lockstep` invocation with the test's state file and the lab password in the environment.
pub fn lockstep(dir: &Path) -> Command {
    let mut c = Command::new(bin());
    c.current_dir(dir)
        .env("LOCKSTEP_STATE", dir.join("state.db"))
        .env("LOCKSTEP_LAB_PASSWORD", LAB_PASSWORD)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

/// Runs to the end; returns the output.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    lockstep(dir).args(args).output().expect("lockstep runs")
}

/// Text of stdout and stderr together, for assertions and failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "--- exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A `lockstep lab` process serving the built-in inventory, with an overlay for `-i`.
pub struct Lab {
    child: Child,
    /// The test's folder (state file, overlay, record).
    pub dir: tempfile::TempDir,
}

impl Lab {
    /// Starts a lab (optionally with a config file's YAML) and waits for its endpoints.
    pub fn start(config_yaml: Option<&str>) -> Lab {
        Self::launch(&[], config_yaml)
    }

    /// A lab serving `inventory` (`lockstep lab -i INVENTORY`) instead of the built-in one; drive
    /// it with [`Lab::rollout_on`].
    pub fn start_inventory(inventory: &Path, config_yaml: Option<&str>) -> Lab {
        let inv = inventory.to_str().unwrap().to_owned();
        Self::launch(&["-i".to_owned(), inv], config_yaml)
    }

    /// A lab of the built-in inventory started with extra `lockstep lab` options (`--kerberos`).
    pub fn start_with_options(options: &[&str]) -> Lab {
        let extra: Vec<String> = options.iter().map(|o| (*o).to_owned()).collect();
        Self::launch(&extra, None)
    }

    fn launch(extra: &[String], config_yaml: Option<&str>) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let mut c = lockstep(dir.path());
        c.args([
            "lab",
            "--overlay",
            "overlay.yml",
            "--endpoints",
            "endpoints.json",
        ])
        .args(["--record", "record.jsonl"])
        .args(extra)
        .stdout(Stdio::from(
            std::fs::File::create(dir.path().join("lab.out")).unwrap(),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("lab.err")).unwrap(),
        ));
        if let Some(y) = config_yaml {
            std::fs::write(dir.path().join("lab-config.yml"), y).unwrap();
            c.args(["--config", "lab-config.yml"]);
        }
        let mut child = c.spawn().expect("lab starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = std::fs::metadata(dir.path().join("overlay.yml"))
                .map(|m| m.len() > 0)
                .unwrap_or(false)
                && std::fs::read_to_string(dir.path().join("lab.out"))
                    .map(|s| !s.is_empty())
                    .unwrap_or(false);
            if ready {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "lab exited early ({status}): {}",
                    std::fs::read_to_string(dir.path().join("lab.err")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "lab did not come up within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Lab { child, dir }
    }

    /// The test folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `lockstep ARGS` in the test folder.
    pub fn run(&self, args: &[&str]) -> Output {
        run(self.path(), args)
    }

    /// The arguments of `lockstep run -i lab.yml -i overlay.yml PLAYBOOK --yes --soak-scale 0`.
    fn rollout_args(playbook: &str) -> Vec<String> {
        let inv = lab_inventory();
        [
            "run",
            "-i",
            inv.to_str().unwrap(),
            "-i",
            "overlay.yml",
            playbook,
        ]
        .into_iter()
        .chain(["--yes", "--soak-scale", "0"])
        .map(str::to_owned)
        .collect()
    }

    /// `lockstep run -i lab.yml -i overlay.yml PLAYBOOK --yes --soak-scale 0 EXTRA...`.
    pub fn rollout(&self, playbook: &str, extra: &[&str]) -> Output {
        let mut args = Self::rollout_args(playbook);
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        lockstep(self.path()).args(&args).output().unwrap()
    }

    /// The same rollout started in the background, its output discarded: for tests that act on
    /// a run while its controller drives it.
    pub fn spawn_rollout(&self, playbook: &str) -> std::process::Child {
        lockstep(self.path())
            .args(Self::rollout_args(playbook))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// `lockstep lab fault ...` against this lab.
    pub fn fault(&self, host: &str, kind: &str, arg: Option<&str>) {
        let mut args = vec!["lab", "fault", "--endpoints", "endpoints.json", host, kind];
        args.extend(arg);
        let o = self.run(&args);
        assert!(o.status.success(), "fault not set: {}", text(&o));
    }

    /// Clears a host's faults.
    pub fn clear(&self, host: &str) {
        let o = self.run(&[
            "lab",
            "fault",
            "--endpoints",
            "endpoints.json",
            "--clear",
            host,
        ]);
        assert!(o.status.success(), "fault not cleared: {}", text(&o));
    }

    /// `lockstep lab verify record.jsonl --playbook PLAYBOOK -i INVENTORY...` for the playbook
    /// and inventories of every run of the test's state file, as the run recorded them: asserts
    /// the invariants each playbook declares held. Where no run is in the state file, or a
    /// playbook declares no invariant a record shows (`e3-nc`), `lockstep lab verify
    /// record.jsonl` asserts every invariant the lab checks.
    pub fn assert_invariants(&self) {
        let status = self.run(&["status", "--format", "json"]);
        let runs: Vec<serde_json::Value> =
            serde_json::from_slice(&status.stdout).unwrap_or_default();
        let mut played: Vec<Vec<String>> = Vec::new();
        for id in runs.iter().filter_map(|r| r["run"].as_str()) {
            let o = self.run(&["status", id, "--format", "json"]);
            assert_eq!(code(&o), 0, "{}", text(&o));
            let run: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let meta = &run["meta"];
            let mut args = vec!["--playbook".to_owned()];
            args.push(meta["playbook"].as_str().unwrap().to_owned());
            for inv in meta["inventory"].as_str().unwrap_or_default().lines() {
                // The built-in inventory is `lab verify`'s default.
                if !inv.starts_with("builtin:") {
                    args.extend(["-i".to_owned(), inv.to_owned()]);
                }
            }
            if !played.contains(&args) {
                played.push(args);
            }
        }
        let mut every = played.is_empty();
        for args in &played {
            let mut all = vec!["lab", "verify", "record.jsonl"];
            all.extend(args.iter().map(String::as_str));
            let o = self.run(&all);
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(
                o.status.success() && out.contains("0 violation"),
                "invariants `{}` declares broken: {}",
                args[1],
                text(&o)
            );
            every |= out.contains("no invariant a record shows");
        }
        if every {
            let o = self.run(&["lab", "verify", "record.jsonl"]);
            assert!(
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains("0 violation"),
                "invariants broken: {}",
                text(&o)
            );
        }
    }

    /// The lab's record, one JSON object per line.
    pub fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path().join("record.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// How many times each (host, package) installer started, from the record.
    pub fn installs(&self) -> std::collections::BTreeMap<(String, String), usize> {
        let mut m = std::collections::BTreeMap::new();
        for r in self.records() {
            if r["event"] == "install-started" {
                let host = r["host"].as_str().unwrap_or_default().to_owned();
                let pkg = r["package"].as_str().unwrap_or_default().to_owned();
                *m.entry((host, pkg)).or_default() += 1;
            }
        }
        m
    }
}

impl Lab {
    /// Asserts that installers ran and that none ran twice on a node (`what` names the test's
    /// seed or case in the message).
    pub fn assert_each_installer_once(&self, what: &str) {
        let installs = self.installs();
        assert!(
            !installs.is_empty(),
            "{what}: the record shows no installer at all"
        );
        for ((host, pkg), n) in installs {
            assert_eq!(
                n, 1,
                "{what}: installer `{pkg}` started {n} times on `{host}`"
            );
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `inventory/windows-lab.yml`: plain Windows servers and a Server 2019 failover cluster.
pub fn windows_lab_inventory() -> PathBuf {
    repo("inventory/windows-lab.yml")
}

impl Lab {
    /// The arguments of `lockstep run -i INVENTORY -i overlay.yml PLAYBOOK --yes --soak-scale 0`.
    pub fn run_args_on(inventory: &Path, playbook: &str) -> Vec<String> {
        let inv = inventory.to_str().unwrap();
        ["run", "-i", inv, "-i", "overlay.yml", playbook]
            .into_iter()
            .chain(["--yes", "--soak-scale", "0"])
            .map(str::to_owned)
            .collect()
    }

    /// `lockstep run -i INVENTORY -i overlay.yml PLAYBOOK --yes --soak-scale 0 EXTRA...`, for a
    /// lab started with [`Lab::start_inventory`].
    pub fn rollout_on(&self, inventory: &Path, playbook: &str, extra: &[&str]) -> Output {
        let mut args = Self::run_args_on(inventory, playbook);
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        lockstep(self.path()).args(&args).output().unwrap()
    }

    /// `lockstep status --format json`: every run of the test's state file, newest first.
    pub fn runs(&self) -> Vec<serde_json::Value> {
        let o = self.run(&["status", "--format", "json"]);
        assert_eq!(code(&o), 0, "{}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// Drives the run that `run_args` starts (a `lockstep run ...` argument list) to its end
    /// through up to `kills` SIGKILLs of its controller, each at a random point 100..`max_ms` ms
    /// after a start, resuming the run after each; a final resume runs undisturbed. Asserts every
    /// attempt that ended by itself succeeded and that the run finished; returns the number of
    /// kills that landed mid-run. `what` names the test and its seed in failure messages.
    pub fn run_through_kills(
        &self,
        run_args: &[String],
        kills: usize,
        max_ms: u64,
        rng: &mut impl rand::Rng,
        what: &str,
    ) -> usize {
        let before = self.runs().len();
        let deadline = Instant::now() + Duration::from_secs(900);
        let mut landed = 0;
        loop {
            assert!(Instant::now() < deadline, "{what}: did not finish");
            let now = self.runs();
            let mut cmd = lockstep(self.path());
            if now.len() == before {
                cmd.args(run_args);
            } else {
                let id = now[0]["run"].as_str().unwrap().to_owned();
                cmd.args(["resume", &id, "--yes", "--soak-scale", "0"]);
            }
            if landed >= kills {
                let o = cmd.output().unwrap();
                assert_eq!(code(&o), 0, "{what}: final resume: {}", text(&o));
                break;
            }
            let log = self.path().join(format!("attempt-{landed}.log"));
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(rng.gen_range(100..max_ms.max(101))));
            match child.try_wait().unwrap() {
                Some(status) => {
                    // A controller killed while starting its run left host leases: this
                    // machine's next controller takes them at once (their holder is gone).
                    let out = std::fs::read_to_string(&log).unwrap_or_default();
                    assert_eq!(
                        status.code(),
                        Some(0),
                        "{what}: ended badly between kills: {out}"
                    );
                    break;
                }
                None => {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    landed += 1;
                }
            }
        }
        let latest = &self.runs()[0];
        assert_eq!(latest["state"], "finished", "{what}: {latest}");
        landed
    }
}

/// The seed of a randomised test: `LOCKSTEP_CRASH_SEED` when set (to replay a failure), else the
/// clock; printed with `what` so that the test log shows how to replay it.
#[allow(clippy::print_stderr)] // the seed must reach the test log to replay a failure
pub fn crash_seed(what: &str) -> u64 {
    let seed = std::env::var("LOCKSTEP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{what} seed: {seed} (LOCKSTEP_CRASH_SEED={seed} replays it)");
    seed
}

/// Exit code of an output.
/// The port of a lab endpoint URL (`http://127.0.0.1:PORT/wsman`).
pub fn port_of(url: &str) -> String {
    url.rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .expect("a lab endpoint names its port")
        .to_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}
