//! `lockstep exec` against the lab: per-host exit codes, `--forks` proven by the lab record's
//! concurrency (not by timing), the refusal on several nodes of one cluster, PowerShell sent as
//! `-EncodedCommand`.

use serde_json::Value;

use crate::util::{code, lab_inventory, text, Lab};

fn exec(lab: &Lab, args: &[&str]) -> (i32, Value, String) {
    let inv = lab_inventory();
    let mut all = vec![
        "exec",
        "-i",
        inv.to_str().unwrap(),
        "-i",
        "overlay.yml",
        "--format",
        "json",
    ];
    all.extend_from_slice(args);
    let o = lab.run(&all);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (code(&o), v, text(&o))
}

/// The most commands whose line starts with `prefix` running at once, by the record's order of
/// `command` and `command-finished` events.
fn max_concurrent(lab: &Lab, prefix: &str) -> (usize, usize) {
    let (mut now, mut max, mut started) = (0usize, 0usize, 0usize);
    for r in lab.records() {
        let line = r["line"].as_str().unwrap_or_default();
        if !line.starts_with(prefix) {
            continue;
        }
        match r["event"].as_str() {
            Some("command") => {
                now += 1;
                started += 1;
                max = max.max(now);
            }
            Some("command-finished") => now -= 1,
            _ => {}
        }
    }
    assert_eq!(now, 0, "every started command finished");
    (max, started)
}

#[test]
fn per_host_exit_codes_and_forks_by_the_record() {
    let lab = Lab::start(None);
    // Cluster nodes answer `sc query clussvc` with 0, the others with 1060; one host refuses.
    lab.fault("PRG-FE02", "refuse", None);
    let (c, v, t) = exec(
        &lab,
        &["-l", "prague", "--yes", "--", "sc", "query", "clussvc"],
    );
    assert_eq!(c, 5, "not every host returned 0: {t}");
    let got: Vec<(String, Value)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_owned(),
                h["exit_code"].clone(),
            )
        })
        .collect();
    let want: Vec<(String, Value)> = [
        ("BRN-SBS01", Value::from(1060)),
        ("PRG-EXC01", 1060.into()),
        ("PRG-EXC02", 1060.into()),
        ("PRG-FE01", 1060.into()),
        ("PRG-FE02", Value::Null),
        ("PRG-N1", 0.into()),
        ("PRG-N2", 0.into()),
    ]
    .into_iter()
    .map(|(h, c)| (h.to_owned(), c))
    .collect();
    assert_eq!(got, want, "{t}");
    let fe02 = v
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "PRG-FE02")
        .unwrap();
    assert_eq!(fe02["unreachable"]["kind"], "refused", "{fe02}");
    lab.clear("PRG-FE02");

    // Exit 0 only when every host returned 0; the text groups identical outputs.
    let inv = lab_inventory();
    let inv = inv.to_str().unwrap();
    let o = lab.run(&[
        "exec",
        "-i",
        inv,
        "-i",
        "overlay.yml",
        "-l",
        "PRG-FE01,PRG-FE02",
        "--",
        "exit",
        "0",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("PRG-FE01, PRG-FE02 | exit 0"),
        "{}",
        text(&o)
    );

    // --forks 3 on 12 hosts, each command lasting two seconds: the lab saw at most three at
    // once, and three did run together.
    let (c, v, t) = exec(
        &lab,
        &[
            "-l",
            "prague,milan",
            "--yes",
            "--forks",
            "3",
            "--",
            "ping",
            "-n",
            "3",
            "127.0.0.1",
        ],
    );
    assert_eq!(c, 0, "{t}");
    let n = v.as_array().unwrap().len();
    assert!(n >= 10, "{n} hosts: {t}");
    assert!(
        v.as_array().unwrap().iter().all(|h| h["exit_code"] == 0),
        "{t}"
    );
    assert_eq!(max_concurrent(&lab, "ping -n 3"), (3, n), "{t}");
}

#[test]
fn several_nodes_of_one_cluster_need_yes_and_powershell_is_encoded() {
    let lab = Lab::start(None);
    let (c, _, t) = exec(&lab, &["-l", "PRGCL1", "--", "net", "stop", "clussvc"]);
    assert_eq!(c, 2, "{t}");
    assert!(
        t.contains("cluster `PRGCL1`: PRG-N1, PRG-N2") && t.contains("--yes"),
        "{t}"
    );
    assert!(
        !lab.records().iter().any(|r| r["event"] == "command"),
        "nothing was sent"
    );
    let (c, _, t) = exec(&lab, &["--", "hostname"]);
    assert_eq!(c, 2, "--limit is required: {t}");

    // One node alone is fine.
    let (c, v, t) = exec(&lab, &["-l", "PRG-N1", "--", "hostname"]);
    assert_eq!(c, 0, "{t}");
    assert_eq!(v[0]["stdout"].as_str().unwrap().trim(), "PRG-N1", "{t}");

    // PowerShell goes as -EncodedCommand (base64 of UTF-16LE). The lab does not model
    // powershell.exe yet: it answers as cmd.exe does for an unknown program (exit 1), and exec
    // reports that exit code.
    let (c, v, t) = exec(&lab, &["-l", "PRG-FE01", "--powershell", "Get-Date"]);
    assert_eq!(c, 5, "{t}");
    assert_eq!(v[0]["exit_code"], 1, "{t}");
    // cmd.exe's refusal in the node's language (cs-CZ) arrives decoded from the shell's code page.
    assert!(
        v[0]["stderr"].as_str().unwrap().contains("není názvem"),
        "{t}"
    );
    let sent: Vec<String> = lab
        .records()
        .iter()
        .filter(|r| r["event"] == "command" && r["host"] == "PRG-FE01")
        .map(|r| r["line"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        sent,
        ["powershell.exe -NoProfile -NonInteractive -EncodedCommand RwBlAHQALQBEAGEAdABlAA=="],
        "{t}"
    );
}

#[test]
fn hosts_of_a_rollout_being_driven_are_not_touched() {
    // Slow installers, so that the rollout is still being driven when exec asks.
    let lab = Lab::start(Some("time_scale: 0.05\n"));
    let mut child = lab.spawn_rollout("e3-nc");
    // Wait for an installer to start: the run is stored and its controller holds it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let host = loop {
        let started = std::fs::read_to_string(lab.path().join("record.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|r| r["event"] == "install-started")
            .map(|r| r["host"].as_str().unwrap().to_owned());
        if let Some(h) = started {
            break h;
        }
        assert!(std::time::Instant::now() < deadline, "no installer started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let before = lab.records().len();
    let (c, _, t) = exec(&lab, &["-l", &host, "--", "hostname"]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(c, 2, "{t}");
    assert!(
        t.contains(&format!("host `{host}` is held by run `r")),
        "{t}"
    );
    assert!(
        !lab.records()[before..]
            .iter()
            .any(|r| r["event"] == "command" && r["line"] == "hostname"),
        "nothing was sent"
    );
}

#[test]
fn an_exec_holds_its_hosts_so_a_run_starting_meanwhile_is_refused() {
    let lab = Lab::start(None);
    // Every response of PRG-FE01 is slow: the exec is still on it when the run asks.
    lab.fault("PRG-FE01", "slow", Some("2000"));
    let inv = lab_inventory();
    let inv = inv.to_str().unwrap();
    let mut child = crate::util::lockstep(lab.path())
        .args([
            "exec",
            "-i",
            inv,
            "-i",
            "overlay.yml",
            "-l",
            "PRG-FE01",
            "--",
            "hostname",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let exec_pid = child.id();
    // The command reached the host: the exec holds its lease.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !lab
        .records()
        .iter()
        .any(|r| r["event"] == "command" && r["line"] == "hostname")
    {
        assert!(std::time::Instant::now() < deadline, "the exec never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let installs = lab.installs().len();
    let o = lab.rollout("e3-fb", &[]);
    let exec_status = child.wait().unwrap();
    assert_eq!(code(&o), 3, "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("REFUSED: one controller per host")
            && err.contains(&format!("controller pid {exec_pid} ")),
        "the refusal names the exec: {}",
        text(&o)
    );
    assert_eq!(lab.installs().len(), installs, "the run changed nothing");
    assert!(exec_status.success(), "the exec finished: {exec_status:?}");
    // Its leases were released at its end: another controller takes the host at once.
    lab.clear("PRG-FE01");
    let (c, v, t) = exec(&lab, &["-l", "PRG-FE01", "--", "hostname"]);
    assert_eq!(c, 0, "{t}");
    assert_eq!(v[0]["exit_code"], 0, "{t}");
}
