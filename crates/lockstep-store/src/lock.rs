//! The OS file lock that marks a run as driven by one controller.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use lockstep_core::{RunId, RunLock, StoreError};

/// Held while a controller drives a run: an exclusive `flock`/`LockFileEx` on
/// `<state file>.<run id>.lock`, which holds the holder's pid and host name. Dropping the guard
/// releases the run; so does the OS when the process dies, even by `SIGKILL`.
#[derive(Debug)]
pub struct RunGuard {
    file: File,
    path: PathBuf,
}

impl RunLock for RunGuard {}

impl RunGuard {
    /// Takes the lock file of `run` next to `state`, or fails with [`StoreError::Locked`] naming
    /// the holder.
    pub(crate) fn acquire(state: &Path, run: &RunId) -> Result<Self, StoreError> {
        let path = lock_path(state, run);
        let backend = |what: &str, e: std::io::Error| StoreError::Backend {
            path: path.display().to_string(),
            detail: format!("{what}: {e}"),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| backend("cannot open the run lock file", e))?;
        // A `status` probes the lock for an instant (`RunGuard::is_held`): a lock found held is
        // tried again for half a second before it counts as another controller's.
        let mut taken = false;
        for attempt in 0..10 {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            taken = FileExt::try_lock_exclusive(&file)
                .map_err(|e| backend("cannot lock the run lock file", e))?;
            if taken {
                break;
            }
        }
        if !taken {
            let mut holder = String::new();
            // The holder writes its identity right after locking; an empty file means it is
            // between the two.
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(StoreError::Locked {
                run: run.clone(),
                holder: if holder.is_empty() {
                    "holder unknown".to_owned()
                } else {
                    holder.to_owned()
                },
            });
        }
        let me = format!("pid {} on host {}", std::process::id(), host_name());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| file.write_all(me.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(|e| backend("cannot write the run lock file", e))?;
        tracing::debug!(lock = %path.display(), "run `{run}` locked");
        Ok(RunGuard { file, path })
    }

    /// Whether a controller holds the lock of `run` now, found by trying it for an instant and
    /// letting it go at once: nothing is written, no lease is touched. `None` when there is no
    /// lock file (no controller ever drove the run here).
    pub(crate) fn is_held(state: &Path, run: &RunId) -> Result<Option<bool>, StoreError> {
        let path = lock_path(state, run);
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::Backend {
                    path: path.display().to_string(),
                    detail: format!("cannot open the run lock file: {e}"),
                })
            }
        };
        let taken = FileExt::try_lock_exclusive(&file).map_err(|e| StoreError::Backend {
            path: path.display().to_string(),
            detail: format!("cannot probe the run lock file: {e}"),
        })?;
        if taken {
            let _ = FileExt::unlock(&file);
        }
        Ok(Some(!taken))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        // Clear the identity while still holding the lock, then release; the file stays (deleting
        // it would race with a controller that has it open and is about to lock it).
        let _ = self.file.set_len(0);
        let _ = FileExt::unlock(&self.file);
    }
}

/// `<state file>.<run id>.lock`.
pub(crate) fn lock_path(state: &Path, run: &RunId) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(format!(".{run}.lock"));
    PathBuf::from(name)
}

/// This machine's name, as far as the environment tells without a system call crate.
/// The OS user of this process (`USER`, `USERNAME`), `unknown` when neither is set: who started
/// a run, who gave an approval.
pub fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) fn host_name() -> String {
    for var in ["COMPUTERNAME", "HOSTNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return v.trim().to_owned();
            }
        }
    }
    for file in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(v) = std::fs::read_to_string(file) {
            if !v.trim().is_empty() {
                return v.trim().to_owned();
            }
        }
    }
    "unknown host".to_owned()
}
