//! The node's files and the double hop.
//!
//! Files: what a controller stages onto a node (`stage`) lives in the node's state with its
//! bytes, so a copy killed halfway is found again by the next controller. The cmd.exe subset
//! that writes and reads them: `>>"FILE" echo TEXT` (and `>`), `for %F in ("FILE") do @echo
//! %~zF` (the length), `mkdir`/`md`, `type FILE`, `certutil -hashfile FILE [ALGORITHM]`,
//! `certutil [-f] -decode IN OUT`, `cscript //nologo //B SCRIPT ARGS` (Lockstep's staging
//! script only), `move [/y]`, `del [/f] [/q]`, `copy [/y]`.
//!
//! Per Windows release, as `stage` meets them: Server 2008 R2 and later hash with the algorithm
//! given (`SHA256`; SHA-1 without one); Server 2003 (R2) and 2008 take `-hashfile InFile` only
//! and hash SHA-1 (the algorithm argument came with Windows 7 / Server 2008 R2: Microsoft's
//! certutil reference of those releases; ReactOS's certutil, written to match the older one,
//! takes exactly one file, reactos/reactos PR 2879; an XP-era CryptoAPI has no SHA-256 without
//! the AES provider, NTE_BAD_ALGID, charonn0/VT-Hash issue 9), and print the bytes separated by
//! spaces (certutil before Windows 10, sagishahar-zz/lpeworkshop issue 5); an algorithm argument
//! is a usage error there (exit 0x800700a0 ERROR_BAD_ARGUMENTS: the lab's rendering of it; only
//! its non-zero exit is relied on). Windows 2000 and NT 4.0 have no certutil: cmd's "is not
//! recognized" on stderr, exit 9009. cscript runs one script: the text of Lockstep's
//! `STAGE_SCRIPT` whose SHA-256 is [`MODELLED_SCRIPT_SHA256`] (written to the node with `echo`;
//! the lab keeps only its fingerprint, not the client's code), whose effect the lab performs on
//! its files: each `TAG INDEX BASE64` line decoded in order into `OUT`, with the
//! script's exit codes; any other script is refused (the lab does not interpret VBScript).
//!
//! The double hop: a process started in a WinRM session without delegable credentials (Basic,
//! NTLM, Negotiate-NTLM, Kerberos without delegation) cannot open a UNC path: cmd answers
//! "Access is denied." (exit 1), `wusa.exe` and `certutil` exit 0x80070005 (`E_ACCESSDENIED`).
//! `double_hop: allow` in the lab config rehearses a CredSSP-like setup where it works; a
//! console process (the model's own tests) has its credentials.

use super::cmdline::{switch, CmdLine};
use lockstep_core::WindowsRelease;

use super::config::{sha256_hex, DoubleHop};

/// SHA-256 of the lines (joined by `\n`) of the one staging script the lab models: Lockstep's
/// `STAGE_SCRIPT`. A changed script is refused until its effect is modelled again here.
pub const MODELLED_SCRIPT_SHA256: &str =
    "c679c6f51997466924a5e33c23c9c14536f206cdbfb9c520412207c718d274ec";
use super::state::{Out, State};
use super::world::Action;

/// `E_ACCESSDENIED` as a process exit code.
pub(crate) const E_ACCESS_DENIED: i32 = 0x8007_0005_u32 as i32;
/// `HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)`.
pub(crate) const E_FILE_NOT_FOUND: i32 = 0x8007_0002_u32 as i32;
/// `HRESULT_FROM_WIN32(ERROR_FILE_EXISTS)`.
const E_FILE_EXISTS: i32 = 0x8007_0050_u32 as i32;
/// `NTE_BAD_ALGID`.
const NTE_BAD_ALGID: i32 = 0x8009_0008_u32 as i32;
/// `HRESULT_FROM_WIN32(ERROR_BAD_ARGUMENTS)`.
const E_BAD_ARGUMENTS: i32 = 0x8007_00a0_u32 as i32;
/// cmd.exe's exit code for a program it cannot find.
const NOT_FOUND_9009: i32 = 9009;

/// Whether certutil of `r` takes a hash algorithm after `-hashfile FILE` (see the module doc).
fn certutil_takes_algorithm(r: WindowsRelease) -> bool {
    r >= WindowsRelease::Windows2008R2
}

/// Whether `path` names a share (`\\server\share\...`).
pub(crate) fn is_unc(path: &str) -> bool {
    path.starts_with("\\\\") || path.starts_with("//")
}

fn key(path: &str) -> String {
    path.trim_end_matches('\\').to_ascii_lowercase()
}

/// cmd's answer when a process may not open a share.
pub(crate) fn access_denied() -> Out {
    Out::err(1, "Access is denied.\n")
}

impl State {
    /// Whether the current command may read a UNC path (see the module doc).
    pub(crate) fn unc_refused(&self, path: &str) -> bool {
        is_unc(path) && !self.delegable && self.config.double_hop == DoubleHop::Refuse
    }

    /// The bytes of a local file of host `h`.
    pub(crate) fn file(&self, h: usize, path: &str) -> Option<&[u8]> {
        self.hosts[h]
            .files
            .get(&key(path))
            .map(|(_, b)| b.as_slice())
    }

    fn dir_exists(&self, h: usize, dir: &str) -> bool {
        let k = key(dir);
        (k.len() == 2 && k.ends_with(':')) || self.hosts[h].dirs.contains(&k)
    }

    fn parent_exists(&self, h: usize, path: &str) -> bool {
        match path.trim_end_matches('\\').rsplit_once('\\') {
            Some((dir, _)) => self.dir_exists(h, dir),
            None => true,
        }
    }

    fn write_file(&mut self, h: usize, path: &str, bytes: Vec<u8>) {
        self.hosts[h]
            .files
            .insert(key(path), (path.to_owned(), bytes));
    }

    /// A line that starts with `>>"FILE"` or `>"FILE"`: runs the rest and appends (or writes)
    /// its standard output to the file, lines ending in CR LF as cmd writes them.
    pub(crate) fn cmd_redirect(&mut self, h: usize, line: &str) -> Action {
        let t = line.trim_start();
        let (append, rest) = match t.strip_prefix(">>") {
            Some(r) => (true, r),
            None => (false, t.strip_prefix('>').unwrap_or(t)),
        };
        let rest = rest.trim_start();
        let (target, command) = match rest.strip_prefix('"') {
            Some(r) => match r.split_once('"') {
                Some((p, c)) => (p.to_owned(), c),
                None => {
                    return Action::Done(Out::err(1, "The syntax of the command is incorrect.\n"))
                }
            },
            None => match rest.split_once(char::is_whitespace) {
                Some((p, c)) => (p.to_owned(), c),
                None => (rest.to_owned(), ""),
            },
        };
        if is_unc(&target) {
            return Action::Done(if self.unc_refused(&target) {
                access_denied()
            } else {
                Out::err(1, "The lab models no writable share.\n")
            });
        }
        if !self.parent_exists(h, &target) {
            return Action::Done(Out::err(1, "The system cannot find the path specified.\n"));
        }
        let out = match self.run_line(h, command) {
            Action::Done(out) => out,
            _ => {
                return Action::Done(Out::err(
                    1,
                    "The lab redirects the output of console commands only.\n",
                ))
            }
        };
        let text = out.stdout.replace("\r\n", "\n").replace('\n', "\r\n");
        let mut bytes = if append {
            self.file(h, &target)
                .map(<[u8]>::to_vec)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        bytes.extend_from_slice(text.as_bytes());
        self.write_file(h, &target, bytes);
        Action::Done(Out {
            stdout: String::new(),
            stderr: out.stderr,
            code: out.code,
        })
    }

    /// `for %F in ("FILE") do @echo %~zF`: the file's length in bytes (nothing when it does not
    /// exist). The only `for` the lab models.
    pub(crate) fn cmd_for(&self, h: usize, cl: &CmdLine) -> Out {
        let w = &cl.words;
        let var = w.get(1).and_then(|v| v.strip_prefix('%')).unwrap_or("");
        let ok = w.len() == 7
            && var.len() == 1
            && w[2].eq_ignore_ascii_case("in")
            && w[3].starts_with('(')
            && w[3].ends_with(')')
            && w[4].eq_ignore_ascii_case("do")
            && (w[5].eq_ignore_ascii_case("@echo") || w[5].eq_ignore_ascii_case("echo"))
            && w[6].eq_ignore_ascii_case(&format!("%~z{var}"));
        if !ok {
            return Out::err(
                1,
                "The lab's cmd models `for %F in (\"FILE\") do @echo %~zF` only.\n",
            );
        }
        let path = &w[3][1..w[3].len() - 1];
        Out::ok(match self.file(h, path) {
            Some(b) => format!("{}\n", b.len()),
            None => "\n".to_owned(),
        })
    }

    /// `mkdir "DIR"` / `md`: makes the directory and its parents.
    pub(crate) fn cmd_mkdir(&mut self, h: usize, args: &[String]) -> Out {
        let Some(dir) = args.first() else {
            return Out::err(1, "The syntax of the command is incorrect.\n");
        };
        if is_unc(dir) {
            return if self.unc_refused(dir) {
                access_denied()
            } else {
                Out::err(1, "The lab models no writable share.\n")
            };
        }
        if self.dir_exists(h, dir) || self.file(h, dir).is_some() {
            return Out::err(1, format!("A subdirectory or file {dir} already exists.\n"));
        }
        let k = key(dir);
        let mut at = 0;
        while let Some(i) = k[at..].find('\\') {
            at += i + 1;
            let d = &k[..at - 1];
            if d.len() > 2 {
                self.hosts[h].dirs.insert(d.to_owned());
            }
        }
        self.hosts[h].dirs.insert(k);
        Out::ok("")
    }

    /// `certutil -hashfile FILE [ALGORITHM]` and `certutil [-f] -decode IN OUT`, per release
    /// (see the module doc).
    pub(crate) fn cmd_certutil(&mut self, h: usize, args: &[String]) -> Out {
        let release = self.hosts[h].windows;
        if release < WindowsRelease::Windows2003 {
            // Windows 2000 and NT 4.0 ship no certutil.exe.
            return Out {
                code: NOT_FOUND_9009,
                ..self.not_recognized(h, "certutil")
            };
        }
        let force = args.iter().any(|a| switch(a, "f").is_some());
        let rest: Vec<&String> = args.iter().filter(|a| switch(a, "f").is_none()).collect();
        let failed = |verb: &str, code: i32, what: &str| {
            Out::err(
                code,
                format!(
                    "CertUtil: -{verb} command FAILED: 0x{:08x} ({what})\nCertUtil: {}\n",
                    code as u32,
                    match code {
                        E_ACCESS_DENIED => "Access is denied.",
                        E_FILE_NOT_FOUND => "The system cannot find the file specified.",
                        E_FILE_EXISTS => "The file exists.",
                        _ => "Invalid algorithm specified.",
                    }
                ),
            )
        };
        match rest.first().map(|a| a.to_ascii_lowercase()).as_deref() {
            Some("-hashfile") => {
                let Some(path) = rest.get(1) else {
                    return Out::err(1, "CertUtil: -hashfile expects a file name.\n");
                };
                let alg = rest.get(2).map(|a| a.to_ascii_uppercase());
                let takes = certutil_takes_algorithm(release);
                if !takes && (alg.is_some() || rest.len() > 3) {
                    return Out::err(
                        E_BAD_ARGUMENTS,
                        format!(
                            "CertUtil: Expected no more than 1 args, received {}\nCertUtil: -hashfile command FAILED: 0x800700a0 (WIN32: 160 ERROR_BAD_ARGUMENTS)\nCertUtil: One or more arguments are not correct.\n",
                            rest.len() - 1
                        ),
                    );
                }
                let sha256 = match alg.as_deref() {
                    None | Some("SHA1") => false,
                    Some("SHA256") => true,
                    // The lab models SHA-1 and SHA-256 (certutil knows MD2...SHA512).
                    Some(_) => {
                        return failed("hashfile", NTE_BAD_ALGID, "-2146893816 NTE_BAD_ALGID")
                    }
                };
                if self.unc_refused(path) {
                    return failed("hashfile", E_ACCESS_DENIED, "WIN32: 5 ERROR_ACCESS_DENIED");
                }
                let Some(bytes) = self.read_any(h, path) else {
                    return failed(
                        "hashfile",
                        E_FILE_NOT_FOUND,
                        "WIN32: 2 ERROR_FILE_NOT_FOUND",
                    );
                };
                if sha256 {
                    return Out::ok(format!(
                        "SHA256 hash of {path}:\n{}\nCertUtil: -hashfile command completed successfully.\n",
                        sha256_hex(&bytes)
                    ));
                }
                use sha1::Digest as _;
                let spaced: Vec<String> = sha1::Sha1::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let label = if takes { "SHA1 hash of" } else { "SHA-1 hash of file" };
                Out::ok(format!(
                    "{label} {path}:\n{}\nCertUtil: -hashfile command completed successfully.\n",
                    spaced.join(" ")
                ))
            }
            Some("-decode") => {
                let (Some(input), Some(output)) = (rest.get(1), rest.get(2)) else {
                    return Out::err(1, "CertUtil: -decode expects InFile OutFile.\n");
                };
                if self.unc_refused(input) || is_unc(output) {
                    return failed("decode", E_ACCESS_DENIED, "WIN32: 5 ERROR_ACCESS_DENIED");
                }
                let Some(text) = self.file(h, input).map(<[u8]>::to_vec) else {
                    return failed("decode", E_FILE_NOT_FOUND, "WIN32: 2 ERROR_FILE_NOT_FOUND");
                };
                if !force && self.file(h, output).is_some() {
                    return failed("decode", E_FILE_EXISTS, "WIN32: 80 ERROR_FILE_EXISTS");
                }
                if !self.parent_exists(h, output) {
                    return Out::err(
                        0x8007_0003_u32 as i32,
                        "CertUtil: -decode command FAILED: 0x80070003 (WIN32: 3 ERROR_PATH_NOT_FOUND)\n",
                    );
                }
                let clean: Vec<u8> = String::from_utf8_lossy(&text)
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .flat_map(|l| l.bytes().filter(|b| !b.is_ascii_whitespace()))
                    .collect();
                use base64::Engine as _;
                let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&clean) else {
                    return Out::err(
                        0x8009_3004_u32 as i32,
                        "CertUtil: -decode command FAILED: 0x80093004 (ASN: 260 CRYPT_E_ASN1_BADTAG)\n",
                    );
                };
                let out = format!(
                    "Input Length = {}\nOutput Length = {}\nCertUtil: -decode command completed successfully.\n",
                    text.len(),
                    bytes.len()
                );
                self.write_file(h, output, bytes);
                Out::ok(out)
            }
            _ => Out::err(
                1,
                "CertUtil: the lab models -hashfile FILE [ALGORITHM] and [-f] -decode IN OUT only.\n",
            ),
        }
    }

    /// `type FILE`: the file's text.
    pub(crate) fn cmd_type(&self, h: usize, args: &[String]) -> Out {
        let Some(path) = args.first() else {
            return Out::err(1, "The syntax of the command is incorrect.\n");
        };
        if self.unc_refused(path) {
            return access_denied();
        }
        match self.read_any(h, path) {
            Some(b) => Out::ok(String::from_utf8_lossy(&b).replace("\r\n", "\n")),
            None => Out::err(1, "The system cannot find the file specified.\n"),
        }
    }

    /// `cscript [//nologo] [//B] SCRIPT ARGS...`: runs Lockstep's staging script (see the
    /// module doc) and nothing else.
    pub(crate) fn cmd_cscript(&mut self, h: usize, args: &[String]) -> Out {
        let mut words = args.iter().filter(|a| !a.starts_with("//"));
        let Some(script) = words.next() else {
            return Out::err(
                1,
                "Usage: CScript scriptname.extension [option...] [arguments...]\n",
            );
        };
        let Some(text) = self.file(h, script) else {
            return Out::err(
                1,
                format!("Input Error: Can not find script file \"{script}\".\n"),
            );
        };
        let text = String::from_utf8_lossy(text).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        if sha256_hex(lines.join("\n").as_bytes()) != MODELLED_SCRIPT_SHA256 {
            return Out::err(
                1,
                "The lab runs one script: the staging script whose effect it models (SHA-256 of its lines MODELLED_SCRIPT_SHA256).\n",
            );
        }
        let a: Vec<&String> = words.collect();
        self.stage_script(h, &a)
    }

    /// What `STAGE_SCRIPT` does with `IN OUT TAG LINES BYTES`, with its exit codes (the
    /// script's doc): every line `TAG INDEX BASE64`, this TAG, INDEX 0, 1, 2...; MSXML's
    /// `bin.base64` ignores white space and fails on other characters.
    fn stage_script(&mut self, h: usize, a: &[&String]) -> Out {
        let quit = |code: i32| Out {
            code,
            ..Out::default()
        };
        if a.len() != 5 {
            return quit(2);
        }
        let Some(input) = self.file(h, a[0]).map(<[u8]>::to_vec) else {
            return quit(3);
        };
        let text = String::from_utf8_lossy(&input);
        let mut bytes = Vec::new();
        let mut n = 0u64;
        for line in text.lines() {
            let t: Vec<&str> = line.split(' ').collect();
            if t.len() != 3 || t[0] != a[2].as_str() || t[1] != n.to_string() {
                return quit(5);
            }
            let clean: Vec<u8> = t[2].bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            use base64::Engine as _;
            match base64::engine::general_purpose::STANDARD.decode(&clean) {
                Ok(b) => bytes.extend(b),
                Err(_) => return quit(6),
            }
            n += 1;
        }
        if n.to_string() != *a[3] {
            return quit(5);
        }
        if bytes.len().to_string() != *a[4] {
            return quit(7);
        }
        if is_unc(a[1]) || !self.parent_exists(h, a[1]) {
            return quit(8);
        }
        let len = bytes.len();
        self.write_file(h, a[1], bytes);
        Out::ok(format!("{len}\n"))
    }

    /// A file's bytes: the node's own, or (where the session may) a package on a share.
    fn read_any(&self, h: usize, path: &str) -> Option<Vec<u8>> {
        if is_unc(path) {
            let p = path.to_ascii_lowercase();
            return self
                .config
                .packages
                .iter()
                .find(|pkg| is_unc(&pkg.path) && pkg.path.eq_ignore_ascii_case(&p))
                .map(|pkg| pkg.contents());
        }
        self.file(h, path).map(<[u8]>::to_vec)
    }

    /// `move [/y] FROM TO` (files).
    pub(crate) fn cmd_move_file(&mut self, h: usize, args: &[String]) -> Out {
        let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with('/')).collect();
        let (Some(from), Some(to)) = (paths.first(), paths.get(1)) else {
            return Out::err(1, "The syntax of the command is incorrect.\n");
        };
        if is_unc(from) || is_unc(to) {
            return if self.unc_refused(from) || self.unc_refused(to) {
                access_denied()
            } else {
                Out::err(1, "The lab models no writable share.\n")
            };
        }
        let Some((_, bytes)) = self.hosts[h].files.remove(&key(from)) else {
            return Out::err(1, "The system cannot find the file specified.\n");
        };
        if !self.parent_exists(h, to) {
            self.write_file(h, from, bytes);
            return Out::err(1, "The system cannot find the path specified.\n");
        }
        self.write_file(h, to, bytes);
        Out::ok("        1 file(s) moved.\n")
    }

    /// `del [/f] [/q] FILE...`: a missing file is reported, and del still exits 0.
    pub(crate) fn cmd_del(&mut self, h: usize, args: &[String]) -> Out {
        let mut out = Out::ok("");
        for p in args.iter().filter(|a| !a.starts_with('/')) {
            if is_unc(p) {
                if self.unc_refused(p) {
                    return access_denied();
                }
                continue;
            }
            if self.hosts[h].files.remove(&key(p)).is_none() {
                out.stderr.push_str(&format!("Could Not Find {p}\n"));
            }
        }
        out
    }

    /// `copy [/y] FROM TO`: from the node's files or, where the session may, a package on a
    /// share; to a file or into a directory.
    pub(crate) fn cmd_copy(&mut self, h: usize, args: &[String]) -> Out {
        let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with('/')).collect();
        let (Some(from), Some(to)) = (paths.first(), paths.get(1)) else {
            return Out::err(1, "The syntax of the command is incorrect.\n");
        };
        if self.unc_refused(from) || self.unc_refused(to) {
            return Out {
                stdout: "        0 file(s) copied.\n".to_owned(),
                stderr: "Access is denied.\n".to_owned(),
                code: 1,
            };
        }
        if is_unc(to) {
            return Out::err(1, "The lab models no writable share.\n");
        }
        let Some(bytes) = self.read_any(h, from) else {
            return Out {
                stdout: "        0 file(s) copied.\n".to_owned(),
                stderr: "The system cannot find the file specified.\n".to_owned(),
                code: 1,
            };
        };
        let target = if self.dir_exists(h, to) {
            let name = from.rsplit(['\\', '/']).next().unwrap_or(from);
            format!("{}\\{name}", to.trim_end_matches('\\'))
        } else {
            (*to).clone()
        };
        if !self.parent_exists(h, &target) {
            return Out::err(
                1,
                "The system cannot find the path specified.\n        0 file(s) copied.\n",
            );
        }
        self.write_file(h, &target, bytes);
        Out::ok("        1 file(s) copied.\n")
    }
}
