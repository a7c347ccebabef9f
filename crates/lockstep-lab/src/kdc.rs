//! A throwaway MIT Kerberos KDC for tests: the domain controller of a lab fleet.
//!
//! [`LabKdc::start`] makes a temporary directory with `krb5.conf` and `kdc.conf`, creates a
//! realm database (`kdb5_util create -s` with a random master password), adds user principals
//! (password, pre-authentication required, as Active Directory does) and the
//! `HTTP/<host>@REALM` and `host/<host>@REALM` service principals of each WinRM host, exports the service keys to a keytab
//! (what a Windows computer account holds), and runs `krb5kdc -n` on a free loopback TCP port.
//! Dropping it stops the KDC and removes the directory; so does the death of the process that
//! started it (the KDC runs under a shell that watches a pipe from it).
//!
//! The binaries are Debian's `krb5-kdc` and `krb5-admin-server` (`.ci/run` installs them).
//! [`LabKdc::require`] tells a test whether they are there: missing binaries are a failure under
//! `CI=true`, a reason to skip elsewhere.
//!
//! Children that speak Kerberos (kinit, pywinrm, pypsrp) get the realm through
//! [`LabKdc::env`] (`KRB5_CONFIG`, and `KRB5CCNAME` after [`LabKdc::kinit`]); nothing here
//! changes the environment of the calling process.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng as _;

/// Why the KDC could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KdcError {
    /// A binary of MIT Kerberos is not installed.
    #[error("`{0}` not found (install Debian's krb5-kdc, krb5-admin-server and krb5-user)")]
    Missing(&'static str),
    /// A file or process could not be created.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A Kerberos tool failed.
    #[error("`{command}` failed: {output}")]
    Tool {
        /// The tool and its first argument (never a password).
        command: String,
        /// What it printed.
        output: String,
    },
    /// The KDC did not listen in time.
    #[error("krb5kdc did not listen on {0} within 20 s: {1}")]
    NotListening(SocketAddr, String),
}

/// A user principal of the realm.
#[derive(Debug, Clone)]
pub struct KdcUser {
    /// Name without the realm (`labadmin`).
    pub name: String,
    /// Its password.
    pub password: String,
}

/// A running throwaway KDC.
#[derive(Debug)]
pub struct LabKdc {
    dir: PathBuf,
    realm: String,
    addr: SocketAddr,
    /// `sh` watching the parent: closing `lifeline` stops `krb5kdc` and removes `dir`.
    child: Child,
    lifeline: Option<std::process::ChildStdin>,
}

/// Runs `krb5kdc` ($0) for realm $1 under a shell that stops it and removes the realm's
/// directory ($2) when its stdin reaches end of file: when the [`LabKdc`] is dropped, and also
/// when the process that started it dies without dropping it (a killed `lockstep lab`), so no
/// KDC outlives its lab. The shell exits when `krb5kdc` does (a failed start is seen). (fd 3:
/// a background job's own stdin is `/dev/null`.)
const SUPERVISOR: &str =
    "exec 3<&0; \"$0\" -n -r \"$1\" & k=$!; (cat <&3 >/dev/null; kill $k 2>/dev/null; rm -rf \"$2\") & wait $k";

const SEARCH: &[&str] = &[
    "/usr/sbin",
    "/usr/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
    "/sbin",
];

/// Where a Kerberos binary is (they live in `/usr/sbin`, often not in a test's `PATH`).
pub fn find_binary(name: &'static str) -> Result<PathBuf, KdcError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SEARCH.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or(KdcError::Missing(name))
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KdcError {
    let what = what.into();
    move |source| KdcError::Io { what, source }
}

fn run_tool(mut command: Command, shown: String) -> Result<String, KdcError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("running {shown}")))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(KdcError::Tool {
            command: shown,
            output: text.trim().to_owned(),
        })
    }
}

fn free_port() -> Result<u16, KdcError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port())
}

fn random_secret() -> String {
    let mut rng = rand::thread_rng();
    (0..24)
        .map(|_| {
            char::from(
                b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"[rng.gen_range(0..56)],
            )
        })
        .collect()
}

impl LabKdc {
    /// Whether the KDC binaries are installed. Under `CI=true` their absence panics (the
    /// Kerberos tests are required there); elsewhere it returns `false` and says so on stderr.
    #[allow(clippy::print_stderr)]
    pub fn require() -> bool {
        for name in ["krb5kdc", "kdb5_util", "kadmin.local", "kinit"] {
            if let Err(e) = find_binary(name) {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI=true but {e}: .ci/run must install the Kerberos KDC"
                );
                eprintln!("{e}: Kerberos NOT checked");
                return false;
            }
        }
        true
    }

    /// Creates realm `realm` with `users` and one `HTTP/<name>` service principal per name of
    /// `service_hosts` (all exported to [`LabKdc::keytab`]), and starts the KDC.
    pub fn start(
        realm: &str,
        users: &[KdcUser],
        service_hosts: &[String],
    ) -> Result<LabKdc, KdcError> {
        let kdb5_util = find_binary("kdb5_util")?;
        let kadmin = find_binary("kadmin.local")?;
        let krb5kdc = find_binary("krb5kdc")?;
        let dir = std::env::temp_dir().join(format!(
            "lockstep-kdc-{}-{}",
            std::process::id(),
            random_secret()
        ));
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        // Once the directory exists, a failure below removes it (Drop of a half-built KDC).
        let mut guard = DirGuard(Some(dir.clone()));
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let d = dir.display();
        let krb5_conf = format!(
            "[libdefaults]\n  default_realm = {realm}\n  dns_lookup_realm = false\n  \
             dns_lookup_kdc = false\n  rdns = false\n  dns_canonicalize_hostname = false\n  \
             udp_preference_limit = 1\n  forwardable = false\n\n[realms]\n  {realm} = {{\n    \
             kdc = {addr}\n  }}\n"
        );
        let kdc_conf = format!(
            "[kdcdefaults]\n  kdc_listen = {addr}\n  kdc_tcp_listen = {addr}\n\n[realms]\n  \
             {realm} = {{\n    database_name = {d}/principal\n    key_stash_file = {d}/stash\n    \
             acl_file = {d}/kadm5.acl\n    kdc_listen = {addr}\n    kdc_tcp_listen = {addr}\n  \
             }}\n\n[logging]\n  kdc = FILE:{d}/kdc.log\n"
        );
        for (name, text) in [
            ("krb5.conf", krb5_conf),
            ("kdc.conf", kdc_conf),
            ("kadm5.acl", String::new()),
        ] {
            std::fs::write(dir.join(name), text).map_err(io(format!("writing {name}")))?;
        }
        let env = |cmd: &mut Command| {
            cmd.env("KRB5_CONFIG", dir.join("krb5.conf"))
                .env("KRB5_KDC_PROFILE", dir.join("kdc.conf"));
        };
        let mut create = Command::new(&kdb5_util);
        env(&mut create);
        create.args(["create", "-s", "-r", realm, "-P", &random_secret()]);
        run_tool(create, "kdb5_util create".to_owned())?;
        let kadmin_query = |query: String, shown: String| -> Result<String, KdcError> {
            let mut cmd = Command::new(&kadmin);
            env(&mut cmd);
            cmd.args(["-r", realm, "-q", &query]);
            let out = run_tool(cmd, shown.clone())?;
            // kadmin.local exits 0 even when the query failed: look at what it said.
            if out.contains("while ") || out.contains("error") {
                return Err(KdcError::Tool {
                    command: shown,
                    output: out.trim().to_owned(),
                });
            }
            Ok(out)
        };
        for user in users {
            kadmin_query(
                format!(
                    "addprinc -pw {} +requires_preauth {}@{realm}",
                    user.password, user.name
                ),
                format!("kadmin.local addprinc {}", user.name),
            )?;
        }
        let keytab = dir.join("http.keytab");
        // A computer account holds HOST/<name>; Active Directory maps HTTP/ to it, and pypsrp
        // asks for host/ by default: both go in the keytab.
        let spns = service_hosts
            .iter()
            .flat_map(|h| [format!("HTTP/{h}@{realm}"), format!("host/{h}@{realm}")]);
        for spn in spns {
            kadmin_query(
                format!("addprinc -randkey {spn}"),
                format!("kadmin.local addprinc {spn}"),
            )?;
            kadmin_query(
                format!("ktadd -k {} {spn}", keytab.display()),
                format!("kadmin.local ktadd {spn}"),
            )?;
        }
        let log = std::fs::File::create(dir.join("krb5kdc.out")).map_err(io("krb5kdc log"))?;
        let log2 = log.try_clone().map_err(io("krb5kdc log"))?;
        let mut cmd = Command::new("sh");
        env(&mut cmd);
        let mut child = cmd
            .arg("-c")
            .arg(SUPERVISOR)
            .arg(&krb5kdc)
            .arg(realm)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io("starting krb5kdc"))?;
        let lifeline = child.stdin.take();
        let started = Instant::now();
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                break;
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() > Duration::from_secs(20) {
                let out = std::fs::read_to_string(dir.join("krb5kdc.out")).unwrap_or_default();
                drop(lifeline);
                let _ = child.wait();
                return Err(KdcError::NotListening(addr, out.trim().to_owned()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        guard.0 = None;
        Ok(LabKdc {
            dir,
            realm: realm.to_owned(),
            addr,
            child,
            lifeline,
        })
    }

    /// The realm (`LAB.TEST`).
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Where the KDC listens (TCP, loopback).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `krb5.conf` clients of this realm use.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// The keytab with every `HTTP/<host>` service key.
    pub fn keytab(&self) -> PathBuf {
        self.dir.join("http.keytab")
    }

    /// The temporary directory (for ccaches and the like; removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A credentials cache path in the KDC's directory, named `name`.
    pub fn ccache(&self, name: &str) -> PathBuf {
        self.dir.join(format!("ccache-{name}"))
    }

    /// Environment for a child that speaks Kerberos in this realm (`KRB5_CONFIG`), with
    /// `KRB5CCNAME` when `ccache` is given.
    pub fn env(&self, ccache: Option<&Path>) -> Vec<(&'static str, String)> {
        let mut env = vec![(
            "KRB5_CONFIG",
            self.krb5_conf().to_string_lossy().into_owned(),
        )];
        if let Some(cc) = ccache {
            env.push(("KRB5CCNAME", format!("FILE:{}", cc.display())));
        }
        env
    }

    /// `kinit user@REALM` into `ccache` (the password goes through stdin, never argv).
    pub fn kinit(&self, user: &str, password: &str, ccache: &Path) -> Result<(), KdcError> {
        use std::io::Write as _;
        let kinit = find_binary("kinit")?;
        let mut cmd = Command::new(kinit);
        for (k, v) in self.env(Some(ccache)) {
            cmd.env(k, v);
        }
        let mut child = cmd
            .arg(format!("{user}@{}", self.realm))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io("running kinit"))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = writeln!(stdin, "{password}");
        }
        let output = child.wait_with_output().map_err(io("running kinit"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(KdcError::Tool {
                command: format!("kinit {user}"),
                output: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }
}

struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for LabKdc {
    fn drop(&mut self) {
        // End of file on the supervisor's stdin: it stops krb5kdc, then exits.
        drop(self.lifeline.take());
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_a_ticket_for_a_host_and_a_wrong_password_none() {
        if !LabKdc::require() {
            return;
        }
        let kdc = LabKdc::start(
            "LAB.TEST",
            &[KdcUser {
                name: "alice".into(),
                password: "Alice-Pass-1".into(),
            }],
            &["node1.lab.test".to_owned()],
        )
        .unwrap();
        assert!(kdc.keytab().is_file());
        let cc = kdc.ccache("alice");
        kdc.kinit("alice", "Alice-Pass-1", &cc).unwrap();
        assert!(cc.is_file());
        let wrong = kdc.kinit("alice", "nope", &kdc.ccache("bad"));
        assert!(matches!(wrong, Err(KdcError::Tool { .. })), "{wrong:?}");
        let dir = kdc.dir().to_owned();
        drop(kdc);
        assert!(!dir.exists());
    }
}
