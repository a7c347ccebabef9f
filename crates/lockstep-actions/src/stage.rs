//! `stage`: copies a package from the controller to the node over WinRM before an install.
//!
//! Why: a process started in a WinRM session authenticated with NTLM, Basic, Negotiate-NTLM or
//! Kerberos without delegation holds no credentials for a second server, so an installer run
//! from `\\server\share\...` gets "Access is denied" (the double hop). The package travels in
//! the WinRM session itself instead, with cmd.exe and `certutil` only (no PowerShell needed):
//!
//! 1. the source's SHA-256 is checked on the controller against the playbook's: a different
//!    file is refused before anything is sent;
//! 2. `certutil -hashfile "DEST" SHA256`: the node already has it (the "already done?" probe);
//! 3. base64 lines of [`CHUNK_BYTES`] bytes are appended with `>>"DEST.b64" echo LINE` (one
//!    command line, under cmd's 8,191 characters and far under WinRM's `MaxEnvelopeSize`);
//!    `for %F in ("DEST.b64") do @echo %~zF` gives its length, so a copy killed halfway
//!    continues at the next whole line (a length that is no whole number of lines restarts it);
//! 4. `certutil -f -decode` into `DEST.part`, whose SHA-256 must match before
//!    `move /y "DEST.part" "DEST"` puts it in place: `DEST` is never a partial file.
//!
//! Judged by exit codes and by the hash certutil prints (hex digits): no localised text.

use std::time::Duration;

use base64::Engine as _;
use lockstep_core::Name;
use sha2::{Digest, Sha256};

use crate::error::ActionError;
use crate::remote::joined;
use crate::{Ctx, Outcome, Probe};

/// Package bytes per command: 4,608 bytes are 6,144 base64 characters, a command line of about
/// 6,200 characters with its path (cmd.exe's limit is 8,191).
pub const CHUNK_BYTES: usize = 4608;
const LINE: usize = CHUNK_BYTES / 3 * 4;
/// What one line takes in the `.b64` file: `echo` ends it with CR LF.
const LINE_ON_DISK: u64 = LINE as u64 + 2;
/// Progress is logged about every tenth of a copy of at least this many chunks.
const PROGRESS_FROM_CHUNKS: usize = 20;

/// The command lines of a stage to `dest`.
#[derive(Debug, Clone)]
pub struct StageLines {
    dest: String,
}

impl StageLines {
    /// For destination `dest` (a validated local path).
    pub fn new(dest: &Name) -> Self {
        StageLines {
            dest: dest.as_str().to_owned(),
        }
    }

    fn q(&self, suffix: &str) -> String {
        format!("\"{}{suffix}\"", self.dest)
    }

    /// `certutil -hashfile "DEST" SHA256`.
    pub fn hash(&self) -> String {
        format!("certutil -hashfile {} SHA256", self.q(""))
    }

    /// The hash of the decoded copy before it is moved into place.
    pub fn hash_part(&self) -> String {
        format!("certutil -hashfile {} SHA256", self.q(".part"))
    }

    /// `mkdir "DIR"` (exit 1 when it exists: ignored, the append says whether it is usable).
    pub fn mkdir(&self) -> Option<String> {
        let (dir, _) = self.dest.rsplit_once('\\')?;
        (dir.len() > 2).then(|| format!("mkdir \"{dir}\""))
    }

    /// The length of the base64 file so far (empty output: no file).
    pub fn size(&self) -> String {
        format!("for %F in ({}) do @echo %~zF", self.q(".b64"))
    }

    /// Appends one base64 line.
    pub fn append(&self, line: &str) -> String {
        format!(">>{} echo {line}", self.q(".b64"))
    }

    /// Decodes the base64 file into `DEST.part`.
    pub fn decode(&self) -> String {
        format!("certutil -f -decode {} {}", self.q(".b64"), self.q(".part"))
    }

    /// Moves the verified copy into place.
    pub fn install(&self) -> String {
        format!("move /y {} {}", self.q(".part"), self.q(""))
    }

    /// Removes the work files.
    pub fn clean(&self) -> String {
        format!("del /f /q {} {}", self.q(".b64"), self.q(".part"))
    }
}

/// The SHA-256 certutil printed (`-hashfile`): the line that is 64 hex digits once spaces are
/// removed (older certutil separates the bytes), lower-cased.
pub fn hash_in(output: &str) -> Option<String> {
    output.lines().find_map(|l| {
        let h: String = l.chars().filter(|c| !c.is_whitespace()).collect();
        (h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())).then(|| h.to_ascii_lowercase())
    })
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The chunk to continue at, from the `.b64` file's length: `Some(n)` when it holds `n` whole
/// lines of this package (all of them: complete), `None` when it must be started over.
pub fn resume_at(len_on_node: u64, lines: &[&str]) -> Option<usize> {
    let full: u64 = lines.iter().map(|l| l.len() as u64 + 2).sum();
    if len_on_node == full {
        return Some(lines.len());
    }
    (len_on_node.is_multiple_of(LINE_ON_DISK) && len_on_node < full)
        .then_some((len_on_node / LINE_ON_DISK) as usize)
}

async fn remote_hash(ctx: &Ctx<'_>, line: &str) -> Result<Option<String>, ActionError> {
    let out = ctx.node().run(line, per_command(ctx)).await?;
    Ok(if out.exit_code == 0 {
        hash_in(&out.stdout)
    } else {
        None
    })
}

fn per_command(ctx: &Ctx<'_>) -> Duration {
    ctx.timeout.min(Duration::from_secs(300))
}

/// Reads `source` and checks it against `sha256`: nothing reaches the node otherwise.
/// Why the controller's copy of `source` must not be sent (unreadable, or not the SHA-256 the
/// playbook gives), from what reading it gave; `None`: it may be sent. One wording for the step
/// and for discovery.
fn source_refusal(source: &str, sha256: &str, read: Result<&str, &str>) -> Option<String> {
    match read {
        Err(e) => Some(format!(
            "cannot read package `{source}` on the controller: {e}; nothing was sent"
        )),
        Ok(actual) if actual != sha256 => Some(format!(
            "package `{source}` has SHA-256 {actual}, the playbook expects {sha256}: refused before anything was sent"
        )),
        Ok(_) => None,
    }
}

fn read_source(ctx: &Ctx<'_>, source: &str, sha256: &str) -> Result<Vec<u8>, ActionError> {
    let read = std::fs::read(source).map_err(|e| e.to_string());
    let actual = read.as_ref().map(|b| sha256_hex(b));
    let refusal = source_refusal(source, sha256, actual.as_deref().map_err(|e| e.as_str()));
    match (refusal, read) {
        (None, Ok(bytes)) => Ok(bytes),
        (Some(why), _) => Err(ActionError::precondition(ctx.host(), why)),
        (None, Err(_)) => unreachable!("an unreadable source is refused"),
    }
}

/// `stage`.
pub(crate) async fn execute(
    ctx: &Ctx<'_>,
    source: &str,
    sha256: &str,
    dest: &Name,
) -> Result<Outcome, ActionError> {
    let host = ctx.host();
    let bytes = read_source(ctx, source, sha256)?;
    let l = StageLines::new(dest);
    let t = per_command(ctx);
    if remote_hash(ctx, &l.hash()).await?.as_deref() == Some(sha256) {
        return Ok(Outcome::Done {
            output: String::new(),
            exit_code: None,
            facts: Vec::new(),
            message: format!("`{dest}` on `{host}` already has SHA-256 {sha256}: nothing copied"),
        });
    }
    if let Some(mkdir) = l.mkdir() {
        ctx.node().run(&mkdir, t).await?;
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(LINE)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let size = ctx.node().run(&l.size(), t).await?;
    let len_on_node: u64 = size.stdout.trim().parse().unwrap_or(0);
    let start = match resume_at(len_on_node, &lines) {
        Some(n) => n,
        None => {
            ctx.node().run(&l.clean(), t).await?;
            0
        }
    };
    let n = lines.len();
    let every = (n / 10).max(1);
    for (i, line) in lines.iter().enumerate().skip(start) {
        let out = ctx.node().run(&l.append(line), t).await?;
        if out.exit_code != 0 {
            return Err(ActionError::step_failed(
                host,
                format!(
                    "appending chunk {} of {n} to `{dest}.b64` on `{host}` exited {}",
                    i + 1,
                    out.exit_code
                ),
            )
            .with_output(joined(&out), Some(out.exit_code)));
        }
        if n >= PROGRESS_FROM_CHUNKS && ((i + 1) % every == 0 || i + 1 == n) {
            tracing::info!(
                step = %ctx.step.id,
                host = %host,
                "staging `{dest}`: {} of {} bytes ({}%)",
                ((i + 1) * CHUNK_BYTES).min(bytes.len()),
                bytes.len(),
                (i + 1) * 100 / n
            );
        }
    }
    let out = ctx.node().run(&l.decode(), t).await?;
    if out.exit_code != 0 {
        return Err(ActionError::step_failed(
            host,
            format!("decoding `{dest}.b64` on `{host}` exited {}", out.exit_code),
        )
        .with_output(joined(&out), Some(out.exit_code)));
    }
    let got = remote_hash(ctx, &l.hash_part()).await?;
    if got.as_deref() != Some(sha256) {
        ctx.node().run(&l.clean(), t).await?;
        return Err(ActionError::step_failed(
            host,
            format!(
                "the copy of `{source}` on `{host}` has SHA-256 {}, expected {sha256}: deleted; running the step again copies it anew",
                got.as_deref().unwrap_or("(none)")
            ),
        ));
    }
    let out = ctx.node().run(&l.install(), t).await?;
    if out.exit_code != 0 {
        return Err(ActionError::step_failed(
            host,
            format!(
                "moving the verified copy into `{dest}` on `{host}` exited {}",
                out.exit_code
            ),
        )
        .with_output(joined(&out), Some(out.exit_code)));
    }
    ctx.node().run(&l.clean(), t).await?;
    let resumed = if start > 0 {
        format!(", resumed at chunk {}", start + 1)
    } else {
        String::new()
    };
    Ok(Outcome::Done {
        output: String::new(),
        exit_code: Some(0),
        facts: Vec::new(),
        message: format!(
            "staged `{source}` to `{dest}` on `{host}`: {} bytes in {n} chunk(s){resumed}, SHA-256 {sha256} verified",
            bytes.len()
        ),
    })
}

/// Done when the node's file has the playbook's SHA-256; otherwise not done (running the step
/// again continues a partial copy).
pub(crate) async fn probe(ctx: &Ctx<'_>, sha256: &str, dest: &Name) -> Result<Probe, ActionError> {
    let l = StageLines::new(dest);
    Ok(
        if remote_hash(ctx, &l.hash()).await?.as_deref() == Some(sha256) {
            Probe::Done
        } else {
            Probe::NotDone
        },
    )
}

/// `n` bytes as an operator reads them (`1.5 GiB`, `300.0 MiB`).
fn bytes_text(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let mib = n as f64 / MIB;
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

/// Disk space, knowable before the first change: for every host with `stage` steps in `plan`,
/// the packages not on the node yet (the stage's own probe) must fit on their destination
/// drive, with room for the base64 copy of the largest while it is decoded (1.4 times its size).
/// A package that cannot be read on the controller, or whose SHA-256 is not the playbook's, is a
/// halt too (before any command about it reaches a node). One sentence per host, class
/// precondition; a host or drive whose free space cannot be read is left to the run (discovery
/// reports unreachable hosts).
pub async fn space_halts(
    t: &dyn lockstep_core::Transport,
    fleet: &lockstep_core::Fleet,
    plan: &lockstep_core::Plan,
) -> Vec<(lockstep_core::HaltClass, String)> {
    use futures::StreamExt as _;
    use lockstep_core::{Action, HaltClass};
    let mut out: Vec<(HaltClass, String)> = Vec::new();
    let mut by_host: Vec<(Name, Vec<&lockstep_core::PlannedStep>)> = Vec::new();
    // Each package is read once, streamed through SHA-256 (a service pack is hundreds of MB).
    let mut sources: std::collections::BTreeMap<&str, Result<(u64, String), String>> =
        std::collections::BTreeMap::new();
    for step in &plan.steps {
        let Action::Stage { source, sha256, .. } = &step.action else {
            continue;
        };
        let read = sources.entry(source.as_str()).or_insert_with(|| {
            let mut hasher = Sha256::new();
            std::fs::File::open(source)
                .and_then(|mut f| std::io::copy(&mut f, &mut hasher))
                .map(|n| {
                    let hex = hasher
                        .finalize()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    (n, hex)
                })
                .map_err(|e| e.to_string())
        });
        let why = source_refusal(
            source,
            sha256,
            read.as_ref()
                .map(|(_, actual)| actual.as_str())
                .map_err(String::as_str),
        );
        if let Some(why) = why {
            if !out.iter().any(|(_, w)| *w == why) {
                out.push((HaltClass::Precondition, why));
            }
            continue;
        }
        match by_host.iter_mut().find(|(h, _)| *h == step.host) {
            Some((_, v)) => v.push(step),
            None => by_host.push((step.host.clone(), vec![step])),
        }
    }
    let sources = &sources;
    let checks = futures::stream::iter(by_host.iter().map(|(host, steps)| async move {
        let node = crate::remote::Node::new(t, host);
        let disks = node.fixed_disks().await.ok()?;
        // (drive, bytes still to stage, largest, packages)
        let mut need: Vec<(String, u64, u64, Vec<String>)> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for step in steps {
            let Action::Stage {
                source,
                sha256,
                dest,
            } = &step.action
            else {
                continue;
            };
            if seen.contains(&dest.as_str()) {
                continue;
            }
            seen.push(dest.as_str());
            let ctx = Ctx {
                transport: t,
                fleet,
                step,
                timeout: Duration::from_secs(60),
                reboot_poll: Duration::from_millis(500),
            };
            if matches!(probe(&ctx, sha256, dest).await, Ok(Probe::Done)) {
                continue;
            }
            let size = match sources.get(source.as_str()) {
                Some(Ok((n, _))) => *n,
                _ => 0,
            };
            let drive = dest.as_str().get(..2).unwrap_or("").to_ascii_uppercase();
            match need.iter_mut().find(|(d, ..)| *d == drive) {
                Some((_, total, largest, names)) => {
                    *total += size;
                    *largest = (*largest).max(size);
                    names.push(source.clone());
                }
                None => need.push((drive, size, size, vec![source.clone()])),
            }
        }
        let mut halts = Vec::new();
        for (drive, total, largest, names) in need {
            let Some(disk) = disks.iter().find(|d| d.device.eq_ignore_ascii_case(&drive)) else {
                continue;
            };
            let wanted = total.saturating_add(largest / 5 * 7);
            if disk.free_bytes < wanted {
                halts.push(format!(
                    "host `{host}` has {} free on {drive}; staging {} package(s) there ({}) needs {}: free space on {drive}, then `lockstep resume` (nothing was changed)",
                    bytes_text(disk.free_bytes),
                    names.len(),
                    names.join(", "),
                    bytes_text(wanted)
                ));
            }
        }
        Some(halts)
    }))
    .buffered(crate::discovery::DISCOVERY_CONCURRENCY)
    .collect::<Vec<_>>()
    .await;
    out.extend(
        checks
            .into_iter()
            .flatten()
            .flatten()
            .map(|w| (HaltClass::Precondition, w)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_an_operator_reads_them() {
        assert_eq!(bytes_text(300 * 1024 * 1024), "300.0 MiB");
        assert_eq!(bytes_text(3 * 512 * 1024 * 1024), "1.5 GiB");
    }

    #[test]
    fn hashes_as_certutil_prints_them() {
        let new = "SHA256 hash of C:\\x\\u.exe:\r\n9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\r\nCertUtil: -hashfile command completed successfully.\r\n";
        assert_eq!(
            hash_in(new).as_deref(),
            Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
        );
        let spaced = "SHA256 hash of file u.exe:\n9f 86 d0 81 88 4c 7d 65 9a 2f ea a0 c5 5a d0 15 a3 bf 4f 1b 2b 0b 82 2c d1 5d 6c 15 b0 f0 0a 08\n";
        assert_eq!(hash_in(spaced), hash_in(new));
        assert_eq!(
            hash_in("CertUtil: -hashfile command FAILED: 0x80070002\n"),
            None
        );
        assert_eq!(sha256_hex(b"test"), hash_in(new).unwrap());
    }

    #[test]
    fn resumes_at_whole_lines_only() {
        let a = "A".repeat(LINE);
        let b = "B".repeat(10);
        let lines = [a.as_str(), a.as_str(), b.as_str()];
        assert_eq!(resume_at(0, &lines), Some(0));
        assert_eq!(resume_at(LINE_ON_DISK, &lines), Some(1));
        assert_eq!(resume_at(2 * LINE_ON_DISK, &lines), Some(2));
        assert_eq!(resume_at(2 * LINE_ON_DISK + 12, &lines), Some(3));
        assert_eq!(resume_at(LINE_ON_DISK + 7, &lines), None);
        assert_eq!(resume_at(3 * LINE_ON_DISK, &lines), None);
    }

    #[test]
    fn command_lines_fit_cmd() {
        let dest = Name::new(
            lockstep_core::NameKind::Path,
            r"C:\Lockstep\packages\E2K3SP2\update.exe",
        )
        .unwrap();
        let l = StageLines::new(&dest);
        assert_eq!(
            l.append("QUJD"),
            r#">>"C:\Lockstep\packages\E2K3SP2\update.exe.b64" echo QUJD"#
        );
        assert!(l.append(&"A".repeat(LINE)).len() < 8191);
        assert_eq!(
            l.mkdir().as_deref(),
            Some(r#"mkdir "C:\Lockstep\packages\E2K3SP2""#)
        );
    }
}
