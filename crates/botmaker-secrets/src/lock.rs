//! An advisory lock on the secrets root, so that operations spanning the registry and
//! this store (the facade's create and delete) and a repair that judges one against
//! the other (the doctor quarantining orphan directories) do not interleave.
//!
//! The lock is `flock(2)` on `<root>/.lock`: a regular file (`0600`, empty) whose name
//! no bot id or secret can have, never swept, and accepted by the audit. `flock` locks
//! belong to the open file description, so two threads of one process that each take
//! the lock exclude each other like two processes do, and a crashed holder's lock goes
//! away with its descriptors. Each [`SecretsStore::lock`](crate::SecretsStore::lock)
//! opens the file anew: the lock is taken only by the rare cross-store operations,
//! never by reads or writes of a secret.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::{Mode, fchmod};

use crate::fsutil::{Kind, Meta};
use crate::root::Root;
use crate::{Result, SecretsError};

/// The lock file's name in the root: a dot name, which no bot id or secret name can be.
pub(crate) const LOCK_FILE: &str = ".lock";

/// The lock file's mode: only the owner may open it.
const LOCK_MODE: u32 = 0o600;

/// How a [`RootLock`] is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Held by the operations that change both stores (create and delete a bot):
    /// any number of them run together.
    Shared,
    /// Held by a repair that compares the two stores and moves directories (the
    /// doctor's fix step): it waits for the shared holders, and they wait for it.
    Exclusive,
}

/// The advisory lock on the secrets root, held until dropped. Hold it for the few
/// system calls of one operation, never across user input.
#[derive(Debug)]
pub struct RootLock {
    _held: Flock<OwnedFd>,
}

/// Opens (creating it `0600` if missing) the root's lock file and locks it, waiting
/// for conflicting holders.
pub(crate) fn acquire(root: &Root, mode: LockMode) -> Result<RootLock> {
    let path = || root.path().join(LOCK_FILE);
    let fd = open_lock_file(root).map_err(|e| match e {
        // O_NOFOLLOW (or RESOLVE_NO_SYMLINKS): a symlink planted at the name.
        Errno::ELOOP => SecretsError::Symlink { path: path() },
        e => SecretsError::io("open", path(), e),
    })?;
    let meta = Meta::of_fd(fd.as_fd()).map_err(|e| SecretsError::io("stat", path(), e))?;
    if meta.kind != Kind::File {
        return Err(SecretsError::NotRegularFile {
            path: path(),
            kind: meta.kind.describe(),
        });
    }
    let arg = match mode {
        LockMode::Shared => FlockArg::LockShared,
        LockMode::Exclusive => FlockArg::LockExclusive,
    };
    let mut fd = fd;
    loop {
        match Flock::lock(fd, arg) {
            Ok(held) => return Ok(RootLock { _held: held }),
            // A signal interrupted the wait: wait again.
            Err((back, Errno::EINTR)) => fd = back,
            Err((_, e)) => return Err(SecretsError::io("lock", path(), e)),
        }
    }
}

/// The lock file, opened read-only (`flock` needs no more) without following a
/// symlink and without blocking on a FIFO planted there. Created when missing: its
/// mode is set with `fchmod` (a umask must not leave it unreadable to the next
/// opener) and it is handed to the configured owner.
fn open_lock_file(root: &Root) -> nix::Result<OwnedFd> {
    let name = [OsStr::new(LOCK_FILE)];
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK;
    loop {
        match root.resolver().open(root.fd(), &name, flags, Mode::empty()) {
            Err(Errno::ENOENT) => {}
            other => return other,
        }
        match root.resolver().open(
            root.fd(),
            &name,
            flags | OFlag::O_CREAT | OFlag::O_EXCL,
            Mode::from_bits_truncate(LOCK_MODE),
        ) {
            Ok(fd) => {
                fchmod(&fd, Mode::from_bits_truncate(LOCK_MODE))?;
                root.chown_new(fd.as_fd())?;
                return Ok(fd);
            }
            // Another opener created it in between: open theirs.
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::{Issue, LockMode, SecretsError, SecretsStore};

    #[test]
    fn the_lock_file_is_a_0600_file_the_audit_accepts_and_the_sweep_keeps() {
        let dir = tempfile::tempdir().unwrap();
        // The store makes its root 0700 (a temp dir may be 0755).
        let root = dir.path().join("secrets");
        let store = SecretsStore::open(&root).unwrap();
        drop(store.lock(LockMode::Shared).unwrap());
        let meta = std::fs::symlink_metadata(root.join(".lock")).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o7777, 0o600);
        let audit = store.audit().unwrap();
        assert!(audit.is_clean(), "{audit}");
        let reopened = SecretsStore::open(&root).unwrap();
        assert_eq!(reopened.swept(), 0);
        assert!(reopened.repair().unwrap().is_clean());
        assert!(root.join(".lock").exists());
    }

    #[test]
    fn shared_holders_share_and_exclusive_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        // The store makes its root 0700 (a temp dir may be 0755).
        let root = dir.path().join("secrets");
        let store = SecretsStore::open(&root).unwrap();
        let a = store.lock(LockMode::Shared).unwrap();
        // A second shared holder (another descriptor) does not wait.
        let b = store.lock(LockMode::Shared).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let held = store.lock(LockMode::Exclusive).unwrap();
                tx.send(()).unwrap();
                drop(held);
            });
            assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
            drop(a);
            assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
            drop(b);
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
        });
    }

    #[test]
    fn a_symlink_or_a_directory_at_the_lock_name_is_refused_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        // The store makes its root 0700 (a temp dir may be 0755).
        let root = dir.path().join("secrets");
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("target");
        std::fs::write(&target, b"canary").unwrap();
        let store = SecretsStore::open(&root).unwrap();
        std::os::unix::fs::symlink(&target, root.join(".lock")).unwrap();
        assert!(matches!(
            store.lock(LockMode::Shared),
            Err(SecretsError::Symlink { .. })
        ));
        let audit = store.audit().unwrap();
        assert_eq!(audit.findings.len(), 1);
        assert_eq!(audit.findings[0].issue, Issue::Symlink);
        std::fs::remove_file(root.join(".lock")).unwrap();
        std::fs::create_dir(root.join(".lock")).unwrap();
        assert!(matches!(
            store.lock(LockMode::Exclusive),
            Err(SecretsError::NotRegularFile { .. })
        ));
        assert_eq!(std::fs::read(&target).unwrap(), b"canary");
    }
}
