//! Ansible Vault (formats 1.1 and 1.2 with a vault id), decrypted with RustCrypto's AES-256-CTR,
//! PBKDF2-HMAC-SHA256 and HMAC-SHA256: no hand-written cryptography.
//!
//! An envelope is `$ANSIBLE_VAULT;1.1;AES256` (or `;1.2;AES256;LABEL`) then hex lines of
//! `hex(salt) \n hex(hmac) \n hex(ciphertext)`. The keys come from PBKDF2 (10,000 rounds, 80
//! bytes: cipher key, HMAC key, counter block); the HMAC is checked (in constant time) before
//! anything is decrypted, then PKCS#7 padding is removed. Passwords are held by
//! [`VaultSecrets`], whose `Debug` shows labels only.

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What starts every vault envelope.
pub const VAULT_HEADER: &str = "$ANSIBLE_VAULT;";

/// Vault passwords, each with its vault id label (`default` when none was given).
#[derive(Clone, Default)]
pub struct VaultSecrets {
    secrets: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for VaultSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSecrets")
            .field(
                "labels",
                &self.secrets.iter().map(|(l, _)| l).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl VaultSecrets {
    /// No password.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a password under a vault id label. Trailing line ends and spaces are removed, as
    /// Ansible does with a password file.
    pub fn add(&mut self, label: &str, password: &[u8]) {
        let end = password
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        self.secrets
            .push((label.to_owned(), password[..end].to_vec()));
    }

    /// Whether no password was given.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

/// Why a vault envelope could not be opened. Never holds a password or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// Not a well-formed envelope.
    #[error("malformed vault data: {0}")]
    Malformed(String),
    /// The cipher is not `AES256`.
    #[error("unsupported vault cipher `{0}` (Ansible writes AES256)")]
    Cipher(String),
    /// No vault password was given.
    #[error("vault-encrypted data and no vault password (give `--vault-password-file`, `--vault-id` or `--ask-vault-pass`)")]
    NoPassword,
    /// No password given opens it.
    #[error("no vault password given opens this vault data (vault id `{0}`)")]
    WrongPassword(String),
}

/// Whether `text` is a vault envelope.
pub fn is_vaulted(text: &str) -> bool {
    text.trim_start().starts_with(VAULT_HEADER)
}

/// Decrypts a vault envelope with the first password that opens it (those whose label matches
/// the envelope's vault id first).
pub fn decrypt(envelope: &str, secrets: &VaultSecrets) -> Result<Vec<u8>, VaultError> {
    let mut lines = envelope.trim().lines();
    let header = lines.next().unwrap_or_default().trim();
    let fields: Vec<&str> = header.split(';').collect();
    if fields.len() < 3 || fields[0] != "$ANSIBLE_VAULT" {
        return Err(VaultError::Malformed("no `$ANSIBLE_VAULT;` header".into()));
    }
    let label = match (fields[1], fields.len()) {
        ("1.1", 3) => "default",
        ("1.2", 4) => fields[3].trim(),
        (v, _) => return Err(VaultError::Malformed(format!("unknown format `{v}`"))),
    };
    if fields[2].trim() != "AES256" {
        return Err(VaultError::Cipher(fields[2].trim().to_owned()));
    }
    let hexed: String = lines.flat_map(|l| l.trim().chars()).collect();
    let inner = hex::decode(&hexed).map_err(|_| VaultError::Malformed("not hex".into()))?;
    let inner =
        String::from_utf8(inner).map_err(|_| VaultError::Malformed("bad payload".into()))?;
    let parts: Vec<&str> = inner.split('\n').collect();
    let [salt, mac, data] = parts[..] else {
        return Err(VaultError::Malformed(
            "payload is not salt, hmac, data".into(),
        ));
    };
    let unhex =
        |s: &str| hex::decode(s.trim()).map_err(|_| VaultError::Malformed("not hex".into()));
    let (salt, mac, data) = (unhex(salt)?, unhex(mac)?, unhex(data)?);
    if data.is_empty() || data.len() % 16 != 0 {
        return Err(VaultError::Malformed(
            "ciphertext is not whole AES blocks".into(),
        ));
    }
    if secrets.is_empty() {
        return Err(VaultError::NoPassword);
    }
    let mut order: Vec<&(String, Vec<u8>)> = secrets.secrets.iter().collect();
    order.sort_by_key(|(l, _)| l != label);
    for (_, password) in order {
        let mut keys = [0u8; 80];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, 10_000, &mut keys);
        let (key1, rest) = keys.split_at(32);
        let (key2, iv) = rest.split_at(32);
        let mut hmac = <Hmac<Sha256> as Mac>::new_from_slice(key2).expect("any key length");
        hmac.update(&data);
        if hmac.verify_slice(&mac).is_err() {
            continue;
        }
        let mut plain = data.clone();
        let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new(key1.into(), iv.into());
        cipher.apply_keystream(&mut plain);
        let pad = usize::from(*plain.last().unwrap_or(&0));
        if pad == 0
            || pad > 16
            || pad > plain.len()
            || plain[plain.len() - pad..]
                .iter()
                .any(|b| usize::from(*b) != pad)
        {
            return Err(VaultError::Malformed("bad padding".into()));
        }
        plain.truncate(plain.len() - pad);
        return Ok(plain);
    }
    Err(VaultError::WrongPassword(label.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by `ansible-vault encrypt_string` (ansible-core 2.19), password
    /// `corpus-not-a-secret` (also in tests/inventories/15-vault-inline).
    const V11: &str = "$ANSIBLE_VAULT;1.1;AES256
65333965626636636539366536313037343165323864313431633037316137663732663463396366
3961353836356234613962343262363163336635333265340a323732636436353065363830356364
32363964333562353530373433656263343766383537653632626534646666343632323831353230
3737663265653161630a376564653765393764326635613632373638363635663833376131666366
6664";
    const V12: &str = "$ANSIBLE_VAULT;1.2;AES256;prod
30393237383039393138303663346432653261656334666233633439353861633634653035336239
3963383863626333393032393334623164643237366336370a316334383863666266613539373937
66313032373464626532346635633365323563613164383033326331373533616265626362333766
3030663666356265390a343239646236356166313963623039346261353231633963636365653534
3136";

    fn secrets(pairs: &[(&str, &str)]) -> VaultSecrets {
        let mut s = VaultSecrets::new();
        for (l, p) in pairs {
            s.add(l, p.as_bytes());
        }
        s
    }

    #[test]
    fn opens_both_formats() {
        let s = secrets(&[("other", "nope"), ("default", "corpus-not-a-secret\n")]);
        assert_eq!(decrypt(V11, &s).unwrap(), b"Inline-Pa55");
        assert_eq!(decrypt(V12, &s).unwrap(), b"Other-Secret");
    }

    #[test]
    fn refuses_wrong_passwords_and_tampering() {
        let s = secrets(&[("prod", "wrong")]);
        assert_eq!(
            decrypt(V12, &s).unwrap_err(),
            VaultError::WrongPassword("prod".into())
        );
        assert_eq!(
            decrypt(V11, &VaultSecrets::new()).unwrap_err(),
            VaultError::NoPassword
        );
        let tampered = V11.replacen("6533", "6534", 1);
        let good = secrets(&[("default", "corpus-not-a-secret")]);
        assert!(decrypt(&tampered, &good).is_err());
        assert!(matches!(
            decrypt("$ANSIBLE_VAULT;1.1;AES256\nzz", &good),
            Err(VaultError::Malformed(_))
        ));
        assert!(!format!("{good:?}").contains("corpus"));
    }
}
