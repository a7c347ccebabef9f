//! Ansible Vault: values and files made by the real `ansible-vault` (ansible-core from PyPI)
//! open to the same plaintext in Lockstep, formats 1.1 and 1.2 (vault ids), through every way
//! of giving the password; a missing or wrong password is bad input (exit 2) that never shows
//! a plaintext.

use std::path::Path;

use crate::inventory_oracle::{ansible_command, ansible_tool};
use crate::util::{code, lockstep, run, text};

/// `ansible-vault encrypt_string` of `value` with the given vault id option(s): the envelope.
fn encrypt_string(tool: &Path, home: &Path, id_args: &[&str], value: &str) -> String {
    let out = ansible_command(tool, home)
        .arg("encrypt_string")
        .args(id_args)
        .arg(value)
        .output()
        .expect("ansible-vault runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    // `!vault |` then the indented envelope.
    s.lines()
        .skip_while(|l| !l.contains("$ANSIBLE_VAULT"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn values_made_by_ansible_vault_open_to_the_same_plaintext() {
    let Some(tool) = ansible_tool("ansible-vault") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::create_dir_all(h.join("tmp")).unwrap();
    std::fs::write(h.join("pw-default"), "first vault password\n").unwrap();
    std::fs::write(h.join("pw-prod"), "Prod-Vault-2026!\n").unwrap();
    let values = [
        "Inline-Pa55",
        "x",
        "exactly-16-bytes",
        "Žluťoučký kůň 大阪 – a longer value that spans several AES blocks of sixteen bytes",
        "quote\"back\\slash'",
    ];
    let mut secrets = lockstep_spec::VaultSecrets::new();
    secrets.add("default", b"first vault password\n");
    secrets.add("prod", b"Prod-Vault-2026!");
    for v in values {
        let v11 = encrypt_string(&tool, h, &["--vault-password-file", "pw-default"], v);
        assert!(v11.starts_with("$ANSIBLE_VAULT;1.1;AES256"), "{v11}");
        let v12 = encrypt_string(&tool, h, &["--vault-id", "prod@pw-prod"], v);
        assert!(v12.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod"), "{v12}");
        for env in [&v11, &v12] {
            let plain = lockstep_spec::vault_decrypt(env, &secrets).expect("opens");
            assert_eq!(String::from_utf8(plain).unwrap(), v);
        }
        // Only the right password opens it.
        let mut wrong = lockstep_spec::VaultSecrets::new();
        wrong.add("prod", b"not it");
        assert!(lockstep_spec::vault_decrypt(&v12, &wrong).is_err());
    }
}

#[test]
fn vaulted_files_and_values_read_as_ansible_reads_them() {
    let Some(vault) = ansible_tool("ansible-vault") else {
        return;
    };
    let Some(inventory) = ansible_tool("ansible-inventory") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::create_dir_all(h.join("tmp")).unwrap();
    std::fs::create_dir_all(h.join("inv/group_vars/windows")).unwrap();
    std::fs::write(h.join("pw"), "Prod-Vault-2026!\n").unwrap();
    let secret = "Sup3r-Secret-Exchange-Pw";
    let envelope = encrypt_string(&vault, h, &["--vault-id", "prod@pw"], secret);
    let indented: String = envelope.lines().map(|l| format!("        {l}\n")).collect();
    std::fs::write(
        h.join("inv/hosts.yml"),
        format!(
            "windows:\n  hosts:\n    ex01.contoso.com:\n      ansible_password: !vault |\n{indented}    ex02.contoso.com:\n"
        ),
    )
    .unwrap();
    std::fs::write(
        h.join("inv/group_vars/windows/vault.yml"),
        "vault_domain_password: Domain-Pw-42\nansible_user: CONTOSO\\svc\nshare_count: 3\n",
    )
    .unwrap();
    let enc = ansible_command(&vault, h)
        .args([
            "encrypt",
            "--vault-id",
            "prod@pw",
            "inv/group_vars/windows/vault.yml",
        ])
        .output()
        .unwrap();
    assert!(
        enc.status.success(),
        "{}",
        String::from_utf8_lossy(&enc.stderr)
    );
    let on_disk = std::fs::read_to_string(h.join("inv/group_vars/windows/vault.yml")).unwrap();
    assert!(
        on_disk.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod"),
        "{on_disk}"
    );

    let theirs = ansible_command(&inventory, h)
        .args(["--list", "-i", "inv", "--vault-id", "prod@pw"])
        .output()
        .unwrap();
    assert!(
        theirs.status.success(),
        "{}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&theirs.stdout).unwrap();

    // Each way of giving the password.
    let by_id = run(
        h,
        &["inventory", "--list", "-i", "inv", "--vault-id", "prod@pw"],
    );
    let by_file = run(
        h,
        &[
            "inventory",
            "--list",
            "-i",
            "inv",
            "--vault-password-file",
            "pw",
        ],
    );
    let by_env = lockstep(h)
        .args(["inventory", "--list", "-i", "inv"])
        .env("ANSIBLE_VAULT_PASSWORD_FILE", h.join("pw"))
        .output()
        .unwrap();
    for out in [&by_id, &by_file, &by_env] {
        assert_eq!(code(out), 0, "{}", text(out));
        let ours: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            ours["_meta"]["hostvars"],
            theirs["_meta"]["hostvars"],
            "{}",
            text(out)
        );
        let ex01 = &ours["_meta"]["hostvars"]["ex01.contoso.com"];
        assert_eq!(ex01["vault_domain_password"], "Domain-Pw-42");
        assert_eq!(ex01["share_count"], 3);
        assert!(ex01["ansible_password"]["__ansible_vault"]
            .as_str()
            .unwrap()
            .starts_with("$ANSIBLE_VAULT;1.2;AES256;prod"));
        assert!(
            !text(out).contains(secret),
            "a plaintext password was printed"
        );
    }

    // No password, a wrong one: exit 2, the file named, no plaintext.
    let none = lockstep(h)
        .args(["inventory", "--list", "-i", "inv"])
        .env_remove("ANSIBLE_VAULT_PASSWORD_FILE")
        .output()
        .unwrap();
    assert_eq!(code(&none), 2, "{}", text(&none));
    assert!(text(&none).contains("vault.yml"), "{}", text(&none));
    std::fs::write(h.join("bad"), "wrong\n").unwrap();
    let wrong = run(
        h,
        &["inventory", "--list", "-i", "inv", "--vault-id", "prod@bad"],
    );
    assert_eq!(code(&wrong), 2, "{}", text(&wrong));
    assert!(
        text(&wrong).contains("no vault password given opens"),
        "{}",
        text(&wrong)
    );
    assert!(!text(&wrong).contains("Domain-Pw-42"));
}
