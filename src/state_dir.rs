//! The local state directory, held under an exclusive lock while a mirror runs.
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

const LOCK_FILE: &str = "kmirror.lock";
const MIN_FREE_BYTES: u64 = 16 * 1024 * 1024;

/// Holds the lock until dropped (the OS also drops it if the process dies).
#[derive(Debug)]
pub(crate) struct StateDir {
    path: PathBuf,
    _lock: Flock<File>,
}

/// RocksDB aborts the process when a write fails for lack of space (measured with Debian's 7.8:
/// an assertion in its error path), so the state dir's room is checked before it is written:
/// at open, and before the local map takes records while running. Short of room, the mirror
/// stops cleanly (committed transactions are exact) instead of crashing mid-write.
pub(crate) fn ensure_room(path: &Path) -> Result<()> {
    let Ok(stat) = nix::sys::statvfs::statvfs(path) else { return Ok(()) };
    let free = stat.blocks_available().saturating_mul(stat.fragment_size());
    if free >= MIN_FREE_BYTES {
        return Ok(());
    }
    Err(Error::StateDir {
        path: path.to_path_buf(),
        message: format!(
            "only {} KiB free on its file system; kmirror needs at least {} MiB there: free some space or use another --state-dir (the next run resumes exactly)",
            free / 1024,
            MIN_FREE_BYTES / (1024 * 1024)
        ),
    })
}

impl StateDir {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let err = |message: String| Error::StateDir { path: path.to_path_buf(), message };
        if path.as_os_str().is_empty() {
            return Err(err("is empty; point --state-dir at a directory".into()));
        }
        if path.exists() && !path.is_dir() {
            return Err(err("is a file, not a directory; point --state-dir at a directory".into()));
        }
        std::fs::create_dir_all(path).map_err(|e| err(format!("cannot create it: {e}")))?;
        ensure_room(path)?;
        let lock_path = path.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| err(format!("cannot open {}: {e}", lock_path.display())))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, _)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(err(format!(
                    "is locked by another kmirror ({}, lock file {}); stop it or use another --state-dir",
                    if holder.is_empty() { "pid unknown".to_string() } else { format!("pid {holder}") },
                    lock_path.display()
                )));
            }
        };
        let _ = lock.set_len(0);
        let _ = lock.rewind();
        let _ = write!(lock, "{}", std::process::id());
        Ok(Self { path: path.to_path_buf(), _lock: lock })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_refused_and_a_second_holder_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"x").expect("write");
        let err = StateDir::open(&file).expect_err("file refused").to_string();
        assert!(err.contains("is a file"), "{err}");
        // An empty value (an unset variable) is no "here": the lock and map went into the
        // working directory, with the disk-room check off.
        let err = StateDir::open(Path::new("")).expect_err("empty refused").to_string();
        assert!(err.contains("is empty"), "{err}");

        let state = dir.path().join("state");
        let held = StateDir::open(&state).expect("first lock");
        let err = StateDir::open(&state).expect_err("second lock refused").to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop(held);
        StateDir::open(&state).expect("free again after drop");
    }
}
