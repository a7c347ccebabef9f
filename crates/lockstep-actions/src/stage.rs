//! `stage`: copies a package from the controller to the node over WinRM before an install.
//!
//! Why: a process started in a WinRM session authenticated with NTLM, Basic, Negotiate-NTLM or
//! Kerberos without delegation holds no credentials for a second server, so an installer run
//! from `\\server\share\...` gets "Access is denied" (the double hop). The package travels in
//! the WinRM session itself instead, with cmd.exe and what the node's Windows release ships (no
//! PowerShell needed). [`StageTools::for_release`] is the one home of "how this release decodes
//! and checks a copy" (the host's inventory `windows_release`):
//!
//! | release | decode | checked on the node |
//! |---|---|---|
//! | Server 2008 R2 and later | `certutil -f -decode` | `certutil -hashfile F SHA256` = the playbook's SHA-256 |
//! | Server 2003 (R2), 2008 | `certutil -f -decode` | `certutil -hashfile F` (SHA-1, its only algorithm) = the SHA-1 the controller computed of the source whose SHA-256 it verified |
//! | Windows 2000, NT 4.0 | [`STAGE_SCRIPT`] (cscript, MSXML `bin.base64`, ADODB.Stream) | every line is this package's, in order, none missing; the byte count |
//!
//! Server 2003's certutil takes no hash algorithm (`-hashfile InFile`, SHA-1; the argument came
//! with Windows 7 / Server 2008 R2: Microsoft's certutil reference of those releases, and
//! ReactOS's re-implementation of `-hashfile`, which takes exactly one file, reactos/reactos PR
//! 2879); whether Server 2008's takes one is not documented, so 2008 uses the SHA-1 form too,
//! which every certutil accepts. Windows 2000 and NT 4.0 have no certutil (cmd: "is not
//! recognized", exit 9009).
//!
//! 1. the source's SHA-256 is checked on the controller against the playbook's: a different
//!    file is refused before anything is sent;
//! 2. the "already done?" probe: the node's file has the hash above (2000/NT 4.0: the receipt
//!    `DEST.sha256` written after a checked copy names the playbook's SHA-256 and `DEST`'s
//!    length, and `DEST` has that length);
//! 3. base64 lines of [`CHUNK_BYTES`] bytes are appended with `>>"DEST.b64" echo LINE` (one
//!    command line, under cmd's 8,191 characters and far under WinRM's `MaxEnvelopeSize`;
//!    2000/NT 4.0: `TAG INDEX BASE64`, TAG the first 16 hex digits of the package's SHA-256);
//!    `for %F in ("DEST.b64") do @echo %~zF` gives its length, so a copy killed halfway
//!    continues at the next whole line (a length that is no whole number of lines restarts it);
//! 4. decoded into `DEST.part`, checked as above before `move /y "DEST.part" "DEST"` puts it in
//!    place: `DEST` is never a partial file.
//!
//! What the 2000/NT 4.0 check is worth: no hash tool ships there, and a hash in VBScript (one
//! interpreted loop turn per byte) takes minutes for a 100 MB service pack. It is enough because
//! the bytes are the controller's, SHA-256-verified in step 1, and every line reaches the node
//! inside a WinRM message whose integrity NTLM/Kerberos sealing (or TLS) checks, `echo`'s exit
//! code confirming the append: what remains to catch is the assembly of the lines: a `.b64`
//! left by another package or another attempt (resume trusts its length), a missing, repeated
//! or truncated line, a line that does not decode, a short write. The tag, the index and the
//! counts catch those. It does not catch a change made to the file on the node by something
//! else after the check (the receipt vouches for what Lockstep wrote; a file of the same length
//! put there later passes the probe); and with Basic over HTTP nothing protects a line in
//! transit: reach these nodes with NTLM or Kerberos (sealed) or HTTPS.
//!
//! Judged by exit codes and by the digits printed (hex digits of a hash, the decimal byte
//! count): no localised text.

use std::time::Duration;

use base64::Engine as _;
use lockstep_core::{Name, WindowsRelease};
use sha1::Digest as _;
use sha2::{Digest, Sha256};

use crate::remote::joined;
use crate::{Ctx, Outcome, Probe};
use lockstep_core::StepError;

/// Package bytes per command: 4,608 bytes are 6,144 base64 characters, a command line of about
/// 6,200 characters with its path (cmd.exe's limit is 8,191).
pub const CHUNK_BYTES: usize = 4608;
/// Base64 characters of a full line.
#[cfg(test)]
const LINE: usize = CHUNK_BYTES / 3 * 4;
/// Progress is logged about every tenth of a copy of at least this many chunks.
const PROGRESS_FROM_CHUNKS: usize = 20;
/// Hex digits of the package's SHA-256 that tag each line on 2000/NT 4.0.
const TAG_DIGITS: usize = 16;

/// The VBScript that decodes `DEST.b64` on Windows 2000 and NT 4.0, run as
/// `cscript //nologo //B "DEST.vbs" "DEST.b64" "DEST.part" TAG LINES BYTES` (see
/// [`StageLines::run_script`]). Each line of `DEST.b64` must be `TAG INDEX BASE64` with TAG
/// this package's and INDEX 0, 1, 2... in order; it decodes each line with MSXML's `bin.base64`
/// data type, writes the bytes with ADODB.Stream, checks the line count and the byte count and
/// prints the byte count. Exit codes: 0 done; 2 arguments; 3 `IN` unreadable; 4 MSXML or
/// ADODB.Stream missing; 5 a line of another package, out of order, or a line count not
/// `LINES`; 6 a line that does not decode; 7 a byte count not `BYTES`; 8 `OUT` not written.
///
/// Written to the node with one `echo` per line: no line holds a character cmd would read
/// (`& | < > ^ %`), none is empty. `On Error Resume Next`: a failing statement in an `If`'s
/// condition runs its `Then` (VBScript's rule), so every failure below quits non-zero. MSXML2's
/// ProgID first, then `Microsoft.XMLDOM` (MSXML 2.x, Windows 2000 as shipped and NT 4.0 with
/// Internet Explorer 5); ADODB.Stream needs MDAC 2.5 (Windows 2000; NT 4.0 once MDAC 2.5 or
/// later is installed).
pub const STAGE_SCRIPT: &str = r#"' Lockstep stage: decodes a package where certutil is missing (Windows 2000, NT 4.0)
On Error Resume Next
Set a = WScript.Arguments
If Not a.Count = 5 Then WScript.Quit 2
Set fso = CreateObject("Scripting.FileSystemObject")
Set inp = fso.OpenTextFile(a(0), 1)
If Err.Number Then WScript.Quit 3
Set doc = CreateObject("MSXML2.DOMDocument")
If Err.Number Then Err.Clear : Set doc = CreateObject("Microsoft.XMLDOM")
Set el = doc.createElement("b")
el.dataType = "bin.base64"
Set st = CreateObject("ADODB.Stream")
If Err.Number Then WScript.Quit 4
st.Type = 1
st.Open
If Err.Number Then WScript.Quit 4
n = 0
Do While Not inp.AtEndOfStream
t = Split(inp.ReadLine, " ")
If Not UBound(t) = 2 Then WScript.Quit 5
If Not t(0) = a(2) Then WScript.Quit 5
If Not CStr(n) = t(1) Then WScript.Quit 5
el.text = t(2)
st.Write el.nodeTypedValue
If Err.Number Then WScript.Quit 6
n = n + 1
Loop
If Err.Number Then WScript.Quit 3
inp.Close
If Not CStr(n) = a(3) Then WScript.Quit 5
If Not CStr(st.Size) = a(4) Then WScript.Quit 7
st.SaveToFile a(1), 2
If Err.Number Then WScript.Quit 8
WScript.StdOut.WriteLine CStr(st.Size)
st.Close
WScript.Quit 0"#;

/// How a Windows release decodes a staged copy and checks it: the one home of that knowledge
/// (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageTools {
    /// Server 2008 R2 and later: `certutil -decode`, `certutil -hashfile F SHA256`.
    CertutilSha256,
    /// Server 2003 (R2) and 2008: `certutil -decode`, `certutil -hashfile F` (SHA-1).
    CertutilSha1,
    /// Windows 2000 and NT 4.0: no certutil; [`STAGE_SCRIPT`] under cscript.
    Script,
}

impl StageTools {
    /// The tools of `release`; a host whose release the inventory does not give is taken to be
    /// a current one (the inventory's `windows_release` is what makes an old node work).
    pub fn for_release(release: Option<WindowsRelease>) -> StageTools {
        use WindowsRelease::*;
        match release {
            Some(Nt4 | Windows2000) => StageTools::Script,
            Some(Windows2003 | Windows2003R2 | Windows2008) => StageTools::CertutilSha1,
            _ => StageTools::CertutilSha256,
        }
    }

    fn of(ctx: &Ctx<'_>) -> StageTools {
        StageTools::for_release(ctx.fleet.host(ctx.host().as_str()).and_then(|h| h.windows))
    }
}

/// What the controller knows of a package it verified: the playbook's SHA-256, its SHA-1 and
/// its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// SHA-256, lower-case hex (the playbook's).
    pub sha256: String,
    /// SHA-1, lower-case hex.
    pub sha1: String,
    /// Length in bytes.
    pub len: u64,
}

impl Digests {
    /// Of `bytes`.
    pub fn of(bytes: &[u8]) -> Digests {
        Digests {
            sha256: sha256_hex(bytes),
            sha1: hex(&sha1::Sha1::digest(bytes)),
            len: bytes.len() as u64,
        }
    }

    /// Of the file at `path`, streamed (a service pack is hundreds of MB).
    pub fn of_file(path: &str) -> std::io::Result<Digests> {
        struct Both(Sha256, sha1::Sha1, u64);
        impl std::io::Write for Both {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                Digest::update(&mut self.0, b);
                sha1::Digest::update(&mut self.1, b);
                self.2 += b.len() as u64;
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut both = Both(Sha256::new(), sha1::Sha1::new(), 0);
        std::io::copy(&mut std::fs::File::open(path)?, &mut both)?;
        Ok(Digests {
            sha256: hex(&both.0.finalize()),
            sha1: hex(&both.1.finalize()),
            len: both.2,
        })
    }

    /// The tag of each line on 2000/NT 4.0.
    fn tag(&self) -> &str {
        &self.sha256[..TAG_DIGITS.min(self.sha256.len())]
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The command lines of a stage to `dest`.
#[derive(Debug, Clone)]
pub struct StageLines {
    dest: String,
    tools: StageTools,
}

impl StageLines {
    /// For destination `dest` (a validated local path), on a current release.
    pub fn new(dest: &Name) -> Self {
        StageLines::with_tools(dest, StageTools::CertutilSha256)
    }

    /// For destination `dest` (a validated local path), with `tools`.
    pub fn with_tools(dest: &Name, tools: StageTools) -> Self {
        StageLines {
            dest: dest.as_str().to_owned(),
            tools,
        }
    }

    fn q(&self, suffix: &str) -> String {
        format!("\"{}{suffix}\"", self.dest)
    }

    fn hash_of(&self, suffix: &str) -> String {
        match self.tools {
            StageTools::CertutilSha256 => format!("certutil -hashfile {} SHA256", self.q(suffix)),
            _ => format!("certutil -hashfile {}", self.q(suffix)),
        }
    }

    /// `certutil -hashfile "DEST" SHA256` (Server 2003/2008: without the algorithm, SHA-1).
    pub fn hash(&self) -> String {
        self.hash_of("")
    }

    /// The hash of the decoded copy before it is moved into place.
    pub fn hash_part(&self) -> String {
        self.hash_of(".part")
    }

    /// `mkdir "DIR"` (exit 1 when it exists: ignored, the append says whether it is usable).
    pub fn mkdir(&self) -> Option<String> {
        let (dir, _) = self.dest.rsplit_once('\\')?;
        (dir.len() > 2).then(|| format!("mkdir \"{dir}\""))
    }

    /// The length of the base64 file so far (empty output: no file).
    pub fn size(&self) -> String {
        self.size_of(".b64")
    }

    fn size_of(&self, suffix: &str) -> String {
        format!("for %F in ({}) do @echo %~zF", self.q(suffix))
    }

    /// Appends one line (base64; 2000/NT 4.0: `TAG INDEX BASE64`, see [`StageLines::lines`]).
    pub fn append(&self, line: &str) -> String {
        format!(">>{} echo {line}", self.q(".b64"))
    }

    /// The lines of `bytes` as they are appended.
    pub fn lines(&self, bytes: &[u8], d: &Digests) -> Vec<String> {
        bytes
            .chunks(CHUNK_BYTES)
            .enumerate()
            .map(|(i, c)| self.line(i, c, d))
            .collect()
    }

    /// Line `i`, of the package's bytes `chunk` (at most [`CHUNK_BYTES`]).
    pub fn line(&self, i: usize, chunk: &[u8], d: &Digests) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(chunk);
        match self.tools {
            StageTools::Script => format!("{} {i} {b64}", d.tag()),
            _ => b64,
        }
    }

    /// The length of line `i` of a chunk of `chunk_len` bytes, without encoding it.
    fn line_len(&self, i: usize, chunk_len: usize, d: &Digests) -> usize {
        let b64 = chunk_len.div_ceil(3) * 4;
        match self.tools {
            StageTools::Script => d.tag().len() + 1 + i.to_string().len() + 1 + b64,
            _ => b64,
        }
    }

    /// Decodes the base64 file into `DEST.part` (certutil).
    pub fn decode(&self) -> String {
        format!("certutil -f -decode {} {}", self.q(".b64"), self.q(".part"))
    }

    /// Writes [`STAGE_SCRIPT`] to `DEST.vbs`, one `echo` a line (2000/NT 4.0).
    pub fn write_script(&self) -> Vec<String> {
        STAGE_SCRIPT
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let op = if i == 0 { ">" } else { ">>" };
                format!("{op}{} echo {l}", self.q(".vbs"))
            })
            .collect()
    }

    /// Runs [`STAGE_SCRIPT`]: decodes and checks `DEST.b64` of `lines` lines into `DEST.part`.
    pub fn run_script(&self, d: &Digests, lines: usize) -> String {
        format!(
            "cscript //nologo //B {} {} {} {} {lines} {}",
            self.q(".vbs"),
            self.q(".b64"),
            self.q(".part"),
            d.tag(),
            d.len
        )
    }

    /// Prints the receipt of a checked copy (2000/NT 4.0): `SHA256 LENGTH`.
    pub fn read_receipt(&self) -> String {
        format!("type {}", self.q(".sha256"))
    }

    /// The length of `DEST` (empty output: no file).
    pub fn dest_size(&self) -> String {
        self.size_of("")
    }

    /// Writes the receipt after the checked copy is in place (2000/NT 4.0).
    pub fn write_receipt(&self, d: &Digests) -> String {
        format!(">{} echo {} {}", self.q(".sha256"), d.sha256, d.len)
    }

    /// Removes the receipt before a copy (2000/NT 4.0): it vouches for `DEST` only as written.
    pub fn forget(&self) -> String {
        format!("del /f /q {}", self.q(".sha256"))
    }

    /// Moves the verified copy into place.
    pub fn install(&self) -> String {
        format!("move /y {} {}", self.q(".part"), self.q(""))
    }

    /// Removes the work files.
    pub fn clean(&self) -> String {
        match self.tools {
            StageTools::Script => format!(
                "del /f /q {} {} {}",
                self.q(".b64"),
                self.q(".part"),
                self.q(".vbs")
            ),
            _ => format!("del /f /q {} {}", self.q(".b64"), self.q(".part")),
        }
    }
}

/// The hash certutil printed (`-hashfile`): the line that is `digits` hex digits once spaces are
/// removed (certutil before Windows 10 separates the bytes), lower-cased.
fn digest_in(output: &str, digits: usize) -> Option<String> {
    output.lines().find_map(|l| {
        let h: String = l.chars().filter(|c| !c.is_whitespace()).collect();
        (h.len() == digits && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| h.to_ascii_lowercase())
    })
}

/// The SHA-256 certutil printed (`-hashfile ... SHA256`).
pub fn hash_in(output: &str) -> Option<String> {
    digest_in(output, 64)
}

/// The SHA-1 certutil printed (`-hashfile` without an algorithm, Server 2003).
pub fn sha1_in(output: &str) -> Option<String> {
    digest_in(output, 40)
}

/// The receipt `type "DEST.sha256"` printed: (SHA-256, length).
pub fn receipt_in(output: &str) -> Option<(String, u64)> {
    let mut w = output.split_whitespace();
    let sha = w.next()?;
    let len = w.next()?.parse().ok()?;
    (w.next().is_none() && digest_in(sha, 64).is_some()).then(|| (sha.to_ascii_lowercase(), len))
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The line to continue at, from the `.b64` file's length: `Some(n)` when it holds exactly the
/// first `n` lines' length (all of them: complete), `None` when it must be started over.
pub fn resume_at<S: AsRef<str>>(len_on_node: u64, lines: &[S]) -> Option<usize> {
    resume_at_lens(len_on_node, lines.iter().map(|l| l.as_ref().len()))
}

/// [`resume_at`] from the lines' lengths (each line is followed by CRLF on the node).
fn resume_at_lens(len_on_node: u64, lens: impl IntoIterator<Item = usize>) -> Option<usize> {
    let mut at = 0u64;
    let mut n = 0;
    for (i, len) in lens.into_iter().enumerate() {
        if at == len_on_node {
            return Some(i);
        }
        at += len as u64 + 2;
        n = i + 1;
    }
    (at == len_on_node).then_some(n)
}

/// The byte length of chunk `i` of a package of `total` bytes.
fn chunk_len(i: usize, total: u64) -> usize {
    (total - (i * CHUNK_BYTES) as u64).min(CHUNK_BYTES as u64) as usize
}

fn per_command(ctx: &Ctx<'_>) -> Duration {
    ctx.timeout.min(Duration::from_secs(300))
}

/// What the node's check of `DEST` (or `DEST.part`) must print, and its name for messages.
fn expected(tools: StageTools, d: &Digests) -> (&'static str, &str) {
    match tools {
        StageTools::CertutilSha1 => ("SHA-1", d.sha1.as_str()),
        _ => ("SHA-256", d.sha256.as_str()),
    }
}

/// The hash of `line`'s file as the node's certutil prints it (`None`: no file, or no hash).
async fn remote_hash(
    ctx: &Ctx<'_>,
    tools: StageTools,
    line: &str,
) -> Result<Option<String>, StepError> {
    let out = ctx.node().run(line, per_command(ctx)).await?;
    Ok(if out.exit_code != 0 {
        None
    } else if tools == StageTools::CertutilSha1 {
        sha1_in(&out.stdout)
    } else {
        hash_in(&out.stdout)
    })
}

/// Whether the node's `DEST` is the package: its hash (certutil), or the receipt of a checked
/// copy and `DEST`'s length (2000/NT 4.0). `sha1`: the package's SHA-1 (needed on 2003/2008
/// only; `None` there: not known, so not done).
async fn node_has(
    ctx: &Ctx<'_>,
    l: &StageLines,
    sha256: &str,
    sha1: Option<&str>,
) -> Result<bool, StepError> {
    match l.tools {
        StageTools::CertutilSha256 => {
            Ok(remote_hash(ctx, l.tools, &l.hash()).await?.as_deref() == Some(sha256))
        }
        StageTools::CertutilSha1 => Ok(match sha1 {
            Some(sha1) => remote_hash(ctx, l.tools, &l.hash()).await?.as_deref() == Some(sha1),
            None => false,
        }),
        StageTools::Script => {
            let t = per_command(ctx);
            let r = ctx.node().run(&l.read_receipt(), t).await?;
            let Some((sha, len)) = (r.exit_code == 0).then(|| receipt_in(&r.stdout)).flatten()
            else {
                return Ok(false);
            };
            if sha != sha256 {
                return Ok(false);
            }
            let s = ctx.node().run(&l.dest_size(), t).await?;
            Ok(s.exit_code == 0 && s.stdout.trim().parse::<u64>().ok() == Some(len))
        }
    }
}

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

/// Hashes `source` (streamed, off the async runtime: a package is hundreds of MB) and checks it
/// against `sha256`: nothing reaches the node otherwise.
async fn verify_source(ctx: &Ctx<'_>, source: &str, sha256: &str) -> Result<Digests, StepError> {
    let path = source.to_owned();
    let read = tokio::task::spawn_blocking(move || Digests::of_file(&path))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let refusal = source_refusal(
        source,
        sha256,
        read.as_ref()
            .map(|d| d.sha256.as_str())
            .map_err(|e| e.as_str()),
    );
    match (refusal, read) {
        (None, Ok(d)) => Ok(d),
        (Some(why), _) => Err(StepError::precondition(ctx.host(), why)),
        (None, Err(_)) => unreachable!("an unreadable source is refused"),
    }
}

/// What a non-zero exit of [`STAGE_SCRIPT`] means, and whether the copy is bad (deleted).
fn script_failure(code: i32) -> (&'static str, bool) {
    match code {
        3 => ("it could not read the base64 file", false),
        4 => (
            "MSXML or ADODB.Stream is missing (Windows Script Host 5.6, MSXML and MDAC 2.5 or later are needed)",
            false,
        ),
        5 => (
            "a line is not this package's, is out of order, or lines are missing (a copy of another package, or of another attempt)",
            true,
        ),
        6 => ("a line does not decode as base64", true),
        7 => ("the decoded length is not the package's", true),
        8 => ("it could not write the decoded copy", false),
        9009 => ("cscript.exe (Windows Script Host) is not on the node", false),
        _ => ("it failed", false),
    }
}

/// `stage`.
pub(crate) async fn execute(
    ctx: &Ctx<'_>,
    source: &str,
    sha256: &str,
    dest: &Name,
) -> Result<Outcome, StepError> {
    let host = ctx.host();
    let d = verify_source(ctx, source, sha256).await?;
    let tools = StageTools::of(ctx);
    let l = StageLines::with_tools(dest, tools);
    let t = per_command(ctx);
    let (alg, want) = expected(tools, &d);
    if node_has(ctx, &l, sha256, Some(&d.sha1)).await? {
        let by = match tools {
            StageTools::Script => format!("its receipt names SHA-256 {sha256} and its length"),
            _ => format!("it has {alg} {want}"),
        };
        return Ok(Outcome::Done {
            output: String::new(),
            exit_code: None,
            facts: Vec::new(),
            message: format!("`{dest}` on `{host}` is already the package ({by}): nothing copied"),
        });
    }
    if tools == StageTools::Script {
        ctx.node().run(&l.forget(), t).await?;
    }
    if let Some(mkdir) = l.mkdir() {
        ctx.node().run(&mkdir, t).await?;
    }
    let n = (d.len as usize).div_ceil(CHUNK_BYTES);
    let size = ctx.node().run(&l.size(), t).await?;
    let len_on_node: u64 = size.stdout.trim().parse().unwrap_or(0);
    let lens = (0..n).map(|i| l.line_len(i, chunk_len(i, d.len), &d));
    let start = match resume_at_lens(len_on_node, lens) {
        Some(n) => n,
        None => {
            ctx.node().run(&l.clean(), t).await?;
            0
        }
    };
    append_chunks(ctx, &l, source, &d, start, dest).await?;
    let checked = match tools {
        StageTools::Script => check_by_script(ctx, &l, &d, n, dest).await?,
        _ => check_by_hash(ctx, tools, &l, source, dest, alg, want).await?,
    };
    install(ctx, tools, &l, &d, dest).await?;
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
            "staged `{source}` to `{dest}` on `{host}`: {} bytes in {n} chunk(s){resumed}, SHA-256 {sha256} verified on the controller, {checked}",
            d.len
        ),
    })
}

/// Appends the base64 lines from `start` on, reading the package a chunk at a time (memory
/// stays one chunk per copy, whatever the package's size and however many nodes are staged at
/// once) and logging progress on long copies. Every chunk, sent or skipped by a resume, is
/// hashed again: a package that changed on the controller since it was verified is caught
/// here, before anything is decoded (the 2000/NT 4.0 script checks no hash on the node).
async fn append_chunks(
    ctx: &Ctx<'_>,
    l: &StageLines,
    source: &str,
    d: &Digests,
    start: usize,
    dest: &Name,
) -> Result<(), StepError> {
    use tokio::io::AsyncReadExt as _;
    let host = ctx.host();
    let t = per_command(ctx);
    let n = (d.len as usize).div_ceil(CHUNK_BYTES);
    let every = (n / 10).max(1);
    let unreadable = |e: std::io::Error| {
        StepError::step_failed(
            host,
            format!("reading package `{source}` on the controller while copying it: {e}"),
        )
    };
    let mut file = tokio::fs::File::open(source).await.map_err(unreadable)?;
    let mut sha = Sha256::new();
    let mut chunk = vec![0u8; CHUNK_BYTES];
    for i in 0..n {
        let c = &mut chunk[..chunk_len(i, d.len)];
        file.read_exact(c).await.map_err(unreadable)?;
        Digest::update(&mut sha, &*c);
        if i < start {
            continue;
        }
        let out = ctx.node().run(&l.append(&l.line(i, c, d)), t).await?;
        if out.exit_code != 0 {
            return Err(StepError::step_failed(
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
                ((i + 1) * CHUNK_BYTES).min(d.len as usize),
                d.len,
                (i + 1) * 100 / n
            );
        }
    }
    let sent = hex(&sha.finalize());
    if sent != d.sha256 {
        ctx.node().run(&l.clean(), t).await?;
        return Err(StepError::step_failed(
            host,
            format!(
                "package `{source}` changed on the controller while it was copied to `{host}` (SHA-256 {sent}, verified as {}): the partial copy was deleted; nothing was installed",
                d.sha256
            ),
        ));
    }
    Ok(())
}

/// Windows 2000/NT 4.0 (no hash tool): the staging script checks the lines and decodes them;
/// returns what was checked. A copy found bad is deleted.
async fn check_by_script(
    ctx: &Ctx<'_>,
    l: &StageLines,
    d: &Digests,
    n: usize,
    dest: &Name,
) -> Result<String, StepError> {
    let host = ctx.host();
    let t = per_command(ctx);
    for line in l.write_script() {
        let out = ctx.node().run(&line, t).await?;
        if out.exit_code != 0 {
            return Err(StepError::step_failed(
                host,
                format!(
                    "writing the staging script `{dest}.vbs` on `{host}` exited {}",
                    out.exit_code
                ),
            )
            .with_output(joined(&out), Some(out.exit_code)));
        }
    }
    let out = ctx.node().run(&l.run_script(d, n), t).await?;
    let printed = out.stdout.trim().parse::<u64>().ok();
    if out.exit_code != 0 || printed != Some(d.len) {
        let (why, bad) = if out.exit_code == 0 {
            ("it printed no byte count or another one", true)
        } else {
            script_failure(out.exit_code)
        };
        if bad {
            ctx.node().run(&l.clean(), t).await?;
        }
        let then = if bad {
            "the copy was deleted; running the step again copies it anew"
        } else {
            "running the step again continues the copy"
        };
        return Err(StepError::step_failed(
            host,
            format!(
                "checking and decoding `{dest}.b64` on `{host}` (cscript) exited {}: {why}; {then}",
                out.exit_code
            ),
        )
        .with_output(joined(&out), Some(out.exit_code)));
    }
    Ok(format!(
        "{n} lines of this package in order, {} bytes, checked on the node (Windows 2000/NT 4.0 ship no hash tool)",
        d.len
    ))
}

/// The node decodes the copy and hashes it with its own tool; returns what was checked. A copy
/// with another hash is deleted.
async fn check_by_hash(
    ctx: &Ctx<'_>,
    tools: StageTools,
    l: &StageLines,
    source: &str,
    dest: &Name,
    alg: &str,
    want: &str,
) -> Result<String, StepError> {
    let host = ctx.host();
    let t = per_command(ctx);
    let out = ctx.node().run(&l.decode(), t).await?;
    if out.exit_code != 0 {
        return Err(StepError::step_failed(
            host,
            format!("decoding `{dest}.b64` on `{host}` exited {}", out.exit_code),
        )
        .with_output(joined(&out), Some(out.exit_code)));
    }
    let got = remote_hash(ctx, tools, &l.hash_part()).await?;
    if got.as_deref() != Some(want) {
        ctx.node().run(&l.clean(), t).await?;
        return Err(StepError::step_failed(
            host,
            format!(
                "the copy of `{source}` on `{host}` has {alg} {}, expected {want}: deleted; running the step again copies it anew",
                got.as_deref().unwrap_or("(none)")
            ),
        ));
    }
    Ok(format!("{alg} {want} verified on the node"))
}

/// Moves the checked copy into `dest`, deletes the staging files and, for the script, writes the
/// receipt.
async fn install(
    ctx: &Ctx<'_>,
    tools: StageTools,
    l: &StageLines,
    d: &Digests,
    dest: &Name,
) -> Result<(), StepError> {
    let host = ctx.host();
    let t = per_command(ctx);
    let out = ctx.node().run(&l.install(), t).await?;
    if out.exit_code != 0 {
        return Err(StepError::step_failed(
            host,
            format!(
                "moving the verified copy into `{dest}` on `{host}` exited {}",
                out.exit_code
            ),
        )
        .with_output(joined(&out), Some(out.exit_code)));
    }
    ctx.node().run(&l.clean(), t).await?;
    if tools == StageTools::Script {
        let out = ctx.node().run(&l.write_receipt(d), t).await?;
        if out.exit_code != 0 {
            return Err(StepError::step_failed(
                host,
                format!(
                    "writing the receipt `{dest}.sha256` on `{host}` exited {} (the copy is in place; the next run copies it again)",
                    out.exit_code
                ),
            )
            .with_output(joined(&out), Some(out.exit_code)));
        }
    }
    Ok(())
}

/// Done when the node's file is the package (see [`node_has`]); otherwise not done (running
/// the step again continues a partial copy). On 2003/2008 the package's SHA-1 is computed from
/// `source`, and only if `source` has the playbook's SHA-256.
pub(crate) async fn probe(
    ctx: &Ctx<'_>,
    source: &str,
    sha256: &str,
    dest: &Name,
) -> Result<Probe, StepError> {
    let tools = StageTools::of(ctx);
    let sha1 = match tools {
        StageTools::CertutilSha1 => Digests::of_file(source)
            .ok()
            .filter(|d| d.sha256 == sha256)
            .map(|d| d.sha1),
        _ => None,
    };
    probe_with(ctx, tools, sha256, sha1.as_deref(), dest).await
}

async fn probe_with(
    ctx: &Ctx<'_>,
    tools: StageTools,
    sha256: &str,
    sha1: Option<&str>,
    dest: &Name,
) -> Result<Probe, StepError> {
    let l = StageLines::with_tools(dest, tools);
    Ok(if node_has(ctx, &l, sha256, sha1).await? {
        Probe::Done
    } else {
        Probe::NotDone
    })
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
    // (SHA-1 too: Server 2003's certutil checks with it.)
    let mut sources: std::collections::BTreeMap<&str, Result<Digests, String>> =
        std::collections::BTreeMap::new();
    for step in &plan.steps {
        let Action::Stage { source, sha256, .. } = &step.action else {
            continue;
        };
        let read = sources
            .entry(source.as_str())
            .or_insert_with(|| Digests::of_file(source).map_err(|e| e.to_string()));
        let why = source_refusal(
            source,
            sha256,
            read.as_ref()
                .map(|d| d.sha256.as_str())
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
            let known = sources.get(source.as_str()).and_then(|r| r.as_ref().ok());
            let sha1 = known.map(|d| d.sha1.as_str());
            let tools = StageTools::of(&ctx);
            if matches!(
                probe_with(&ctx, tools, sha256, sha1, dest).await,
                Ok(Probe::Done)
            ) {
                continue;
            }
            let size = known.map_or(0, |d| d.len);
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
    fn each_release_has_its_tools() {
        use WindowsRelease::*;
        assert_eq!(StageTools::for_release(Some(Nt4)), StageTools::Script);
        assert_eq!(
            StageTools::for_release(Some(Windows2000)),
            StageTools::Script
        );
        for r in [Windows2003, Windows2003R2, Windows2008] {
            assert_eq!(
                StageTools::for_release(Some(r)),
                StageTools::CertutilSha1,
                "{r}"
            );
        }
        for r in WindowsRelease::ALL
            .into_iter()
            .filter(|r| *r >= Windows2008R2)
        {
            assert_eq!(
                StageTools::for_release(Some(r)),
                StageTools::CertutilSha256,
                "{r}"
            );
        }
        assert_eq!(StageTools::for_release(None), StageTools::CertutilSha256);
    }

    #[test]
    fn server_2003_hashes_without_an_algorithm_and_compares_sha1() {
        let dest = Name::new(lockstep_core::NameKind::Path, r"C:\p\update.exe").unwrap();
        let l = StageLines::with_tools(&dest, StageTools::CertutilSha1);
        assert_eq!(l.hash(), r#"certutil -hashfile "C:\p\update.exe""#);
        assert_eq!(
            l.hash_part(),
            r#"certutil -hashfile "C:\p\update.exe.part""#
        );
        // As certutil before Windows 10 prints it: bytes separated by spaces.
        let out = "SHA-1 hash of file C:\\p\\update.exe:\r\na9 4a 8f e5 cc b1 9b a6 1c 4c 08 73 d3 91 e9 87 98 2f bb d3\r\nCertUtil: -hashfile command completed successfully.\r\n";
        let d = Digests::of(b"test");
        assert_eq!(sha1_in(out).as_deref(), Some(d.sha1.as_str()));
        assert_eq!(d.sha256, sha256_hex(b"test"));
        assert_eq!(hash_in(out), None, "no SHA-256 in a SHA-1 answer");
        assert_eq!(expected(StageTools::CertutilSha1, &d).1, d.sha1);
        assert_eq!(expected(StageTools::CertutilSha256, &d).1, d.sha256);
    }

    #[test]
    fn file_digests_stream_as_memory_digests() {
        let path = std::env::temp_dir().join(format!("lockstep-stage-{}", std::process::id()));
        let bytes: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let d = Digests::of_file(path.to_str().unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(d, Digests::of(&bytes));
        assert_eq!(d.len, 20_000);
    }

    /// The script travels in `echo` lines: nothing in it may be read by cmd.
    #[test]
    fn the_staging_script_survives_echo() {
        let dest = Name::new(lockstep_core::NameKind::Path, r"C:\p\update.exe").unwrap();
        let l = StageLines::with_tools(&dest, StageTools::Script);
        let lines = l.write_script();
        assert_eq!(lines.len(), STAGE_SCRIPT.lines().count());
        assert!(lines[0].starts_with(r#">"C:\p\update.exe.vbs" echo '"#));
        assert!(lines[1..]
            .iter()
            .all(|w| w.starts_with(r#">>"C:\p\update.exe.vbs" echo "#)));
        for line in STAGE_SCRIPT.lines() {
            assert!(
                !line.trim().is_empty(),
                "an empty line echoes `ECHO is on.`"
            );
            assert!(
                !line.contains(['&', '|', '<', '>', '^', '%']),
                "cmd would read: {line}"
            );
            assert!(!matches!(
                line.trim().to_ascii_lowercase().as_str(),
                "on" | "off"
            ));
            assert_eq!(line, line.trim_end(), "trailing blanks: {line:?}");
        }
        let d = Digests::of(&[7u8; 10_000]);
        let lines = l.lines(&[7u8; 10_000], &d);
        assert_eq!(lines.len(), 3);
        let tag = &d.sha256[..16];
        assert!(lines[0].starts_with(&format!("{tag} 0 ")));
        assert!(lines[2].starts_with(&format!("{tag} 2 ")));
        assert!(l.append(&lines[0]).len() < 8191);
        assert_eq!(
            l.run_script(&d, 3),
            format!(
                r#"cscript //nologo //B "C:\p\update.exe.vbs" "C:\p\update.exe.b64" "C:\p\update.exe.part" {tag} 3 10000"#
            )
        );
        assert_eq!(
            l.write_receipt(&d),
            format!(r#">"C:\p\update.exe.sha256" echo {} 10000"#, d.sha256)
        );
        assert_eq!(
            receipt_in(&format!("{} 10000\r\n", d.sha256)),
            Some((d.sha256.clone(), 10_000))
        );
        assert_eq!(
            receipt_in("The system cannot find the file specified."),
            None
        );
        assert_eq!(receipt_in(&format!("{} 10000 x", d.sha256)), None);
    }

    #[test]
    fn resumes_at_whole_lines_only() {
        const LINE_ON_DISK: u64 = LINE as u64 + 2;
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

    /// The resume point is computed from line lengths without encoding the package: they must
    /// be the lengths of the lines sent.
    #[test]
    fn line_lengths_are_the_lengths_of_the_lines_sent() {
        let bytes: Vec<u8> = (0..3 * CHUNK_BYTES as u32 + 5).map(|i| i as u8).collect();
        let d = Digests::of(&bytes);
        let dest = Name::new(lockstep_core::NameKind::Path, r"C:\p\update.exe").unwrap();
        for tools in [
            StageTools::CertutilSha256,
            StageTools::CertutilSha1,
            StageTools::Script,
        ] {
            let l = StageLines::with_tools(&dest, tools);
            let lines = l.lines(&bytes, &d);
            assert_eq!(lines.len(), 4);
            for (i, line) in lines.iter().enumerate() {
                assert_eq!(
                    l.line_len(i, chunk_len(i, d.len), &d),
                    line.len(),
                    "{tools:?} {i}"
                );
            }
        }
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
