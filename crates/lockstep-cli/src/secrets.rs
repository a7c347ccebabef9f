//! Resolving passwords from where the inventory says they are: an environment variable, a file
//! readable by its owner only, or a prompt. Never inline, never printed, never logged.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;

use lockstep_core::SecretSource;
use secrecy::SecretString;

use crate::exit::BadInput;

/// Resolves each distinct source once (one prompt per user, not per host).
#[derive(Default)]
pub struct SecretResolver {
    cache: HashMap<(String, SecretSource), SecretString>,
    failed: std::collections::HashSet<(String, SecretSource)>,
    asked: Option<SecretString>,
    ask_pass: bool,
}

impl std::fmt::Debug for SecretResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretResolver")
            .field("resolved", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl SecretResolver {
    /// A resolver that asks once (`--ask-pass`) instead of reading the configured sources.
    pub fn asking() -> Self {
        SecretResolver {
            ask_pass: true,
            ..SecretResolver::default()
        }
    }

    /// The password of `user` from `source`; `host` only names the first host that needs it in
    /// error messages. A source that failed fails again with an empty message (already said).
    pub fn resolve(
        &mut self,
        user: &str,
        source: &SecretSource,
        host: &str,
    ) -> Result<SecretString, BadInput> {
        if self.ask_pass {
            if self.asked.is_none() {
                self.asked = Some(from_prompt(user)?);
            }
            return Ok(self.asked.clone().expect("asked above"));
        }
        let key = (user.to_owned(), source.clone());
        if let Some(s) = self.cache.get(&key) {
            return Ok(s.clone());
        }
        if self.failed.contains(&key) {
            return Err(BadInput(String::new())); // reported with the first host that needed it
        }
        let secret = match source {
            SecretSource::Env(var) => from_env(var, user, host),
            SecretSource::File(path) => from_file(Path::new(path), user, host),
            SecretSource::Prompt => from_prompt(user),
            SecretSource::Vault(envelope) => from_vault(envelope, user, host),
        }
        .inspect_err(|_| {
            self.failed.insert(key.clone());
        })?;
        self.cache.insert(key, secret.clone());
        Ok(secret)
    }
}

/// A vaulted `ansible_password`, opened with the operator's vault passwords.
fn from_vault(envelope: &str, user: &str, host: &str) -> Result<SecretString, BadInput> {
    let plain =
        lockstep_spec::vault_decrypt(envelope, crate::inputs::vault_secrets()).map_err(|e| {
            BadInput(format!(
                "error: the vaulted password of `{user}` (host `{host}`): {e}"
            ))
        })?;
    let text = String::from_utf8(plain).map_err(|_| {
        BadInput(format!(
            "error: the vaulted password of `{user}` (host `{host}`) is not UTF-8 text"
        ))
    })?;
    Ok(SecretString::from(text))
}

fn from_env(var: &str, user: &str, host: &str) -> Result<SecretString, BadInput> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
        _ => Err(BadInput(format!(
            "error: the password of user `{user}` (first needed for host `{host}`) comes from environment variable `{var}`, which is not set"
        ))),
    }
}

fn from_file(path: &Path, user: &str, host: &str) -> Result<SecretString, BadInput> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        BadInput(format!(
            "error: password file `{shown}` (user `{user}`, host `{host}`) cannot be read: {e}"
        ))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(BadInput(format!(
                "error: password file `{shown}` is readable by group or others (mode {mode:04o}); run `chmod 600 {shown}`"
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(|e| {
        BadInput(format!(
            "error: password file `{shown}` cannot be read: {e}"
        ))
    })?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(BadInput(format!("error: password file `{shown}` is empty")));
    }
    Ok(SecretString::from(line.to_owned()))
}

fn from_prompt(user: &str) -> Result<SecretString, BadInput> {
    if !std::io::stdin().is_terminal() {
        return Err(BadInput(format!(
            "error: the password of user `{user}` is to be asked for, but standard input is not a terminal; use `lockstep_password_env` or `lockstep_password_file`"
        )));
    }
    rpassword::prompt_password(format!("Password for {user}: "))
        .map(SecretString::from)
        .map_err(|e| BadInput(format!("error: cannot read the password of `{user}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\nignored\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = from_file(&p, "u", "H1").unwrap_err();
            assert!(err.0.contains("chmod 600"), "{}", err.0);
            assert!(!err.0.contains("s3cret"));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(from_file(&p, "u", "H1").unwrap().expose_secret(), "s3cret");
    }

    #[test]
    fn a_vaulted_password_without_a_vault_password_is_bad_input() {
        // No `--vault-*` option in unit tests: the vault secrets are empty.
        let envelope = "$ANSIBLE_VAULT;1.1;AES256\n6162\n";
        let err = from_vault(envelope, "svc", "PRG-N1").unwrap_err();
        assert!(
            err.0.contains("`svc`") && err.0.contains("PRG-N1"),
            "{}",
            err.0
        );
        let mut r = SecretResolver::default();
        let src = SecretSource::Vault(envelope.into());
        assert!(r.resolve("svc", &src, "PRG-N1").is_err());
    }

    #[test]
    fn missing_env_names_the_variable_not_a_value() {
        let err = from_env("LOCKSTEP_TEST_SURELY_UNSET_VAR", "svc", "PRG-N1").unwrap_err();
        assert!(err.0.contains("LOCKSTEP_TEST_SURELY_UNSET_VAR"));
        assert!(err.0.contains("PRG-N1"));
    }

    #[test]
    fn resolver_debug_never_shows_secrets() {
        let mut r = SecretResolver::default();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "hunter2").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let src = SecretSource::File(p.display().to_string());
        r.resolve("u", &src, "h").unwrap();
        assert!(!format!("{r:?}").contains("hunter2"));
    }
}
