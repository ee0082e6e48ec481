//! The identity of a secrets root: `<root>/.root-id`, a regular file (`0600`, owned by
//! the store's owner, one link) holding a [`SecretsRootId`] and a newline.
//!
//! Hosts that share one registry (PostgreSQL) each keep their own secrets root; the
//! registry records, for every bot, the id of the root that holds its secrets, so a
//! host can tell "this bot's secrets are elsewhere" from "this bot's secrets are
//! missing".
//!
//! The file is made by the first [`SecretsStore::open`](crate::SecretsStore::open) of a
//! root that has none, atomically and durably: the id is written to a temporary file
//! (`O_CREAT | O_EXCL`, `0600` set with `fchmod` whatever the umask), `fsync`ed, then
//! moved to its name with `renameat2(RENAME_NOREPLACE)` (or, on a filesystem without
//! it, `linkat` and `unlinkat` of the temporary name), which fails when the name
//! exists, and the root is `fsync`ed. Two processes opening a fresh root at once
//! therefore agree on one id: the loser finds the winner's file and reads it.
//!
//! The file is read with the checks of a secret (opened without following a symlink
//! and without blocking, then `fstat`: a regular file, the expected owner, mode `0600`
//! or `0400`, one link, a few bytes). A file that fails them, or does not hold one
//! canonical id and a newline, is an error naming its path: it is never replaced,
//! because the registry may record that id for bots whose secrets are here.
//!
//! The name is a dot name, like `.lock`: no bot id or secret name can be it, the sweep
//! keeps it, and the audit accepts it (and reports what is wrong with it).

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use botmaker_domain::SecretsRootId;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, fchmod};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};

use crate::fsutil::{Kind, Meta, read_bounded, unique_name};
use crate::root::{Root, classify_open_error};
use crate::secret_file::{FILE_MODE, FilePolicy, TEMP_PREFIX};
use crate::{Result, SecretsError};

/// The id file's name in the root.
pub(crate) const ROOT_ID_FILE: &str = ".root-id";

/// The most bytes the id file may hold: an id and a newline.
const MAX_LEN: usize = SecretsRootId::LEN + 1;

/// The root's id: read from its id file, made first when there is none.
pub(crate) fn load_or_create(root: &Root) -> Result<SecretsRootId> {
    // A few rounds: a file that vanished between a failed create and the read
    // (removed by hand) is created again.
    for _ in 0..4 {
        if let Some(id) = read(root)? {
            return Ok(id);
        }
        if let Some(id) = create(root)? {
            return Ok(id);
        }
    }
    Err(SecretsError::io("create", path(root), Errno::EAGAIN))
}

fn path(root: &Root) -> PathBuf {
    root.path().join(ROOT_ID_FILE)
}

/// Reads and checks the id file; `None` when there is none.
pub(crate) fn read(root: &Root) -> Result<Option<SecretsRootId>> {
    let name = OsStr::new(ROOT_ID_FILE);
    let fd = match root.resolver().open(
        root.fd(),
        &[name],
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(classify_open_error(root.fd(), name, path(root), "open", e)),
    };
    check(root, &fd)?;
    let mut file = File::from(fd);
    let bytes = match read_bounded(&mut file, MAX_LEN, MAX_LEN) {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return Err(invalid(root, "longer than an id and a newline")),
        Err(source) => {
            return Err(SecretsError::Io {
                op: "read",
                path: path(root),
                source,
            });
        }
    };
    let Some(text) = bytes.strip_suffix(b"\n") else {
        return Err(invalid(root, "expected one secrets root id and a newline"));
    };
    let text = std::str::from_utf8(text).map_err(|_| invalid(root, "not UTF-8 text"))?;
    SecretsRootId::parse(text)
        .map(Some)
        .map_err(|e| SecretsError::InvalidRootId {
            path: path(root),
            reason: e.to_string(),
        })
}

fn invalid(root: &Root, reason: &str) -> SecretsError {
    SecretsError::InvalidRootId {
        path: path(root),
        reason: reason.to_owned(),
    }
}

/// The checks of a secret file, by `fstat` of the open descriptor.
fn check(root: &Root, fd: &OwnedFd) -> Result<()> {
    let meta = Meta::of_fd(fd.as_fd()).map_err(|e| SecretsError::io("stat", path(root), e))?;
    let verdict = FilePolicy::new(root.expected_uid(), MAX_LEN).judge(&meta);
    if let Some(kind) = verdict.not_regular {
        return Err(if kind == Kind::Symlink {
            SecretsError::Symlink { path: path(root) }
        } else {
            SecretsError::NotRegularFile {
                path: path(root),
                kind: kind.describe(),
            }
        });
    }
    if let Some(uid) = verdict.wrong_owner {
        return Err(SecretsError::WrongOwner {
            path: path(root),
            uid,
            expected: root.expected_uid(),
        });
    }
    if let Some(mode) = verdict.bad_mode {
        return Err(SecretsError::InsecureMode {
            path: path(root),
            mode,
            expected: FILE_MODE,
        });
    }
    if let Some(nlink) = verdict.links {
        return Err(SecretsError::HardLinked {
            path: path(root),
            nlink,
        });
    }
    if verdict.too_large.is_some() {
        return Err(invalid(root, "longer than an id and a newline"));
    }
    Ok(())
}

/// Writes a new id to a temporary file and moves it to the id file's name unless that
/// name exists: `Some(id)` when this call's file is now the root's, `None` when another
/// opener's won (the caller reads it).
fn create(root: &Root) -> Result<Option<SecretsRootId>> {
    let id = SecretsRootId::generate();
    let tmp = unique_name(TEMP_PREFIX);
    let tmp_name = OsStr::new(&tmp);
    let io = |op, e| SecretsError::io(op, path(root), e);
    let fd = root
        .resolver()
        .open(
            root.fd(),
            &[tmp_name],
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
            Mode::from_bits_truncate(FILE_MODE),
        )
        .map_err(|e| io("create a temporary file for", e))?;
    let written = (|| {
        // The open's mode is filtered by the umask; the mode is set on the descriptor.
        fchmod(&fd, Mode::from_bits_truncate(FILE_MODE)).map_err(|e| io("chmod", e))?;
        root.chown_new(fd.as_fd()).map_err(|e| io("chown", e))?;
        let mut file = File::from(fd);
        let mut line = id.to_string();
        line.push('\n');
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|source| SecretsError::Io {
                op: "write",
                path: path(root),
                source,
            })
    })();
    let outcome = written.and_then(|()| match publish(root, tmp_name) {
        Ok(()) => Ok(Some(id)),
        Err(Errno::EEXIST) => Ok(None),
        Err(e) => Err(io("create", e)),
    });
    // Gone after a rename; left after a refused one, a link, or a failure.
    match unlinkat(root.fd(), tmp_name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => tracing::warn!(
            root = %root.path().display(),
            error = %e,
            "could not remove a temporary file; the next open sweeps it"
        ),
    }
    if matches!(outcome, Ok(Some(_))) {
        fsync(root.fd()).map_err(|e| SecretsError::io("fsync", root.path().to_owned(), e))?;
        tracing::info!(root = %root.path().display(), root_id = %id, "made the secrets root's id");
    }
    outcome
}

/// Gives the temporary file the id file's name, failing with `EEXIST` when the name
/// exists (never replacing it).
fn publish(root: &Root, tmp: &OsStr) -> nix::Result<()> {
    let dest = OsStr::new(ROOT_ID_FILE);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    match nix::fcntl::renameat2(
        root.fd(),
        tmp,
        root.fd(),
        dest,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    ) {
        // A filesystem without RENAME_NOREPLACE: link instead.
        Err(Errno::EINVAL | Errno::ENOSYS) => {}
        other => return other,
    }
    nix::unistd::linkat(
        root.fd(),
        tmp,
        root.fd(),
        dest,
        nix::fcntl::AtFlags::empty(),
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use crate::{SecretsError, SecretsStore};

    use super::ROOT_ID_FILE;

    #[test]
    fn the_first_open_makes_a_0600_id_file_and_later_opens_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("secrets");
        let store = SecretsStore::open(&root).unwrap();
        let file = root.join(ROOT_ID_FILE);
        let meta = std::fs::symlink_metadata(&file).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(meta.nlink(), 1);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("{}\n", store.root_id())
        );
        let again = SecretsStore::open(&root).unwrap();
        assert_eq!(again.root_id(), store.root_id());
        assert_eq!(again.swept(), 0);
        assert!(again.audit().unwrap().is_clean());
        // Only the id file (and no temporary file) is left in the root.
        let names: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [ROOT_ID_FILE]);
    }

    #[test]
    fn a_bad_mode_is_refused_naming_the_file_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("secrets");
        drop(SecretsStore::open(&root).unwrap());
        let file = root.join(ROOT_ID_FILE);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let before = std::fs::read(&file).unwrap();
        let err = SecretsStore::open(&root).unwrap_err();
        assert!(
            matches!(&err, SecretsError::InsecureMode { path, mode: 0o644, .. } if *path == file),
            "{err:?}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), before);
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o644);
    }
}
