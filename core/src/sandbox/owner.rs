//! Which containers are whose: the installation id and the live-owner lock.
//!
//! Every container is labelled with the installation id (one per
//! `PINCER_HOME`) and with the token of the host process that created it.
//! That process holds an exclusive lock on `run/owners/<token>.lock` for as
//! long as it lives; the kernel drops the lock when the process dies, even by
//! `kill -9`. A container whose owner's lock can be taken is an orphan. So
//! several `pincer` processes of one installation can run side by side, and
//! none removes a container that another one is still using.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// An owner lock or the installation id could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up {path}: {source}")]
pub struct OwnerError {
    path: PathBuf,
    source: std::io::Error,
}

fn fail(path: &Path) -> impl FnOnce(std::io::Error) -> OwnerError + '_ {
    move |source| OwnerError {
        path: path.to_owned(),
        source,
    }
}

/// Random lowercase hex from the OS's generator.
pub fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The installation id stored in `home`, created on first use.
pub(crate) fn installation_id(home: &Path) -> Result<String, OwnerError> {
    let path = home.join("installation-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if is_hex_id(id.trim()) => return Ok(id.trim().to_owned()),
        Ok(_) => {
            return Err(OwnerError {
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a Pincer installation id (expected 32 hex digits); delete it to start afresh",
                ),
                path,
            });
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(fail(&path)(err)),
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .map_err(fail(home))?;
    let id = random_hex(16).map_err(fail(&path))?;
    // create_new: if another process raced us, its id wins and we read it.
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            file.write_all(id.as_bytes()).map_err(fail(&path))?;
            Ok(id)
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            // The racing writer may not have written yet.
            std::thread::sleep(std::time::Duration::from_millis(50));
            let id = std::fs::read_to_string(&path).map_err(fail(&path))?;
            Ok(id.trim().to_owned())
        }
        Err(err) => Err(fail(&path)(err)),
    }
}

fn is_hex_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// This process's claim on the containers it creates; released when dropped
/// or when the process dies.
#[derive(Debug)]
pub(crate) struct OwnerLock {
    token: String,
    path: PathBuf,
    _file: File,
}

impl OwnerLock {
    pub(crate) fn acquire(owners_dir: &Path) -> Result<Self, OwnerError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(owners_dir)
            .map_err(fail(owners_dir))?;
        let token = random_hex(8).map_err(fail(owners_dir))?;
        let path = owners_dir.join(format!("{token}.lock"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(fail(&path))?;
        file.lock().map_err(fail(&path))?;
        Ok(Self {
            token,
            path,
            _file: file,
        })
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether the owner `token` is gone: its lock file is missing or unlocked.
/// A gone owner's lock file is removed.
pub(crate) fn owner_is_gone(owners_dir: &Path, token: &str) -> bool {
    if !token.bytes().all(|b| b.is_ascii_hexdigit()) || token.is_empty() {
        // Not a token we wrote: nobody can hold it.
        return true;
    }
    let path = owners_dir.join(format!("{token}.lock"));
    let Ok(file) = OpenOptions::new().write(true).open(&path) else {
        return true;
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = std::fs::remove_file(&path);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installation_id_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = installation_id(dir.path()).unwrap();
        assert!(is_hex_id(&first));
        assert_eq!(installation_id(dir.path()).unwrap(), first);
        std::fs::write(dir.path().join("installation-id"), "junk").unwrap();
        let err = installation_id(dir.path()).unwrap_err();
        assert!(err.to_string().contains("installation-id"), "{err}");
    }

    #[test]
    fn a_held_lock_is_alive_and_a_dropped_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let lock = OwnerLock::acquire(dir.path()).unwrap();
        let token = lock.token().to_owned();
        assert!(!owner_is_gone(dir.path(), &token));
        drop(lock);
        assert!(owner_is_gone(dir.path(), &token));
        assert!(owner_is_gone(dir.path(), "../../etc/passwd"));
    }
}
