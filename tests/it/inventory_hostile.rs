//! Hostile inventory input ends quickly in a clear error (exit 2, the file named) instead of
//! exhausting the machine: an alias bomb, `/dev/zero`, a 50 MB file, a FIFO, a NUL byte. Each
//! run is confined to 1 GB of address space (`ulimit -v`), so a regression that grows memory is
//! killed and fails the test instead of the machine; time is bounded by a generous timeout only
//! (speed is measured in the benchmark, never asserted here).

use std::path::Path;
use std::process::Command;

use crate::util::{bin, text};

/// `lockstep ARGS` under `ulimit -v` (1 GB), with a 120 s timeout.
fn confined(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut c = Command::new("timeout");
    c.current_dir(dir)
        .args([
            "120",
            "sh",
            "-c",
            "ulimit -v 1048576 && exec \"$0\" \"$@\"",
            bin(),
        ])
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("ANSIBLE_VAULT_PASSWORD_FILE");
    c.output().expect("lockstep runs")
}

fn assert_refused(dir: &Path, args: &[&str], needle: &str) {
    let o = confined(dir, args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(needle), "expected `{needle}` in\n{}", text(&o));
}

#[test]
fn hostile_inventories_end_in_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    // Billion laughs: nine levels of ten aliases.
    let mut bomb = String::from(
        "all:\n  vars:\n    a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("    a{i}: &a{i} [{refs}]\n"));
    }
    std::fs::write(p.join("bomb.yml"), &bomb).unwrap();
    // 50 MB of valid-looking YAML.
    let line = "        h: {ansible_host: 192.0.2.1, note: padding-padding-padding}\n";
    let big: String = std::iter::once("all:\n  hosts:\n".to_owned())
        .chain(std::iter::repeat_n(
            line.to_owned(),
            50_000_000 / line.len(),
        ))
        .collect();
    std::fs::write(p.join("big.yml"), big).unwrap();
    std::fs::write(p.join("nul.yml"), "all:\n  hosts:\n    a:\0\n    b: [\n").unwrap();
    let fifo = p.join("fifo.yml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());

    for cmd in [&["inventory", "--list"][..], &["check"][..]] {
        let with = |f: &str| {
            let mut a: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
            a.extend(["-i".into(), f.into()]);
            a
        };
        let run = |f: &str, needle: &str| {
            let a = with(f);
            assert_refused(p, &a.iter().map(String::as_str).collect::<Vec<_>>(), needle);
        };
        run("bomb.yml", "bomb.yml:");
        run("bomb.yml", "aliases expand to more than");
        run("/dev/zero", "not a regular file");
        run("big.yml", "are limited to 16 MiB");
        run("nul.yml", "nul.yml:3:7: error: a NUL byte");
        run("fifo.yml", "not a regular file");
    }
}
