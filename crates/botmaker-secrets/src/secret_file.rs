//! Secret files, `<root>/<bot id>/<name>`: the one file policy ([`FilePolicy`]) and
//! the file I/O that applies it: write (and replace), read, list, remove, and the mode
//! repair used by the audit.
//!
//! # The file policy
//!
//! A secret file is acceptable when the `fstat` of it shows all of:
//! - a regular file (a FIFO could block a reader; a directory or a device holds no
//!   value);
//! - owned by the expected owner (the configured [`Owner`](crate::Owner), else the
//!   effective user);
//! - one hard link (another name could reach the contents, possibly from outside the
//!   store); a link count of 0 means the file was removed after it was opened;
//! - a size not over the store's cap;
//! - permission bits (`mode & 0o7777`) exactly `0600` or `0400`: owner read(-write),
//!   nothing for group or others, no execute, no setuid, setgid or sticky bit.
//!
//! `0400` is accepted everywhere: it is an operator's deliberate read-only hardening,
//! and takes nothing away from the owner's secrecy. A later write replaces the file
//! with a new `0600` one (the rename replaces the inode; the old mode does not carry
//! over). Every other mode is refused by `read`
//! ([`SecretsError::InsecureMode`], expecting `0600`), reported by the audit, and set
//! to `0600` by the repair, only through `fchmod` on a descriptor opened without
//! following a link and checked again.
//!
//! [`FilePolicy::judge`] is the only place that decides: `read` refuses what it finds,
//! `write` refuses to replace what is not a regular file (the other points do not
//! matter to a rename that puts a new inode in place), the audit reports every point it
//! finds, and the repair fixes the mode only when the mode is all that is wrong among
//! type, owner and links.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;

use botmaker_domain::{BotId, SecretName};
use nix::errno::Errno;
use nix::fcntl::{OFlag, renameat};
use nix::sys::stat::{Mode, fchmod};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};
use zeroize::Zeroizing;

use crate::bot_dir::{self, DirUse};
use crate::fsutil::{Kind, Meta, is_stale, list_names, read_bounded, unique_name};
use crate::root::{Root, classify_open_error};
use crate::store::SecretMeta;
use crate::{Result, SecretValue, SecretsError};

/// The mode the store gives every secret file it writes, and the one the repair sets.
pub(crate) const FILE_MODE: u32 = 0o600;
/// The read-only mode an operator may give a secret file; accepted like [`FILE_MODE`].
pub(crate) const READ_ONLY_MODE: u32 = 0o400;
/// Prefix of the store's temporary files (no [`SecretName`] can start with `.`).
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// Decides whether a secret file, as `fstat` shows it, is acceptable (see the
/// [module documentation](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FilePolicy {
    expected_uid: u32,
    max: usize,
}

/// What [`FilePolicy::judge`] found wrong with one file, point by point; every field
/// `None` is an acceptable file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Not a regular file: what it is instead. Nothing else is judged then.
    pub(crate) not_regular: Option<Kind>,
    /// The owner found, when it is not the expected one.
    pub(crate) wrong_owner: Option<u32>,
    /// The permission bits found, when they are not an accepted mode.
    pub(crate) bad_mode: Option<u32>,
    /// The link count found, when it is not 1.
    pub(crate) links: Option<u64>,
    /// The size found, when it is over the cap.
    pub(crate) too_large: Option<u64>,
}

impl FilePolicy {
    pub(crate) fn new(expected_uid: u32, max: usize) -> Self {
        Self { expected_uid, max }
    }

    /// The size cap, in bytes.
    pub(crate) fn max(self) -> usize {
        self.max
    }

    /// Who must own a secret file.
    pub(crate) fn expected_uid(self) -> u32 {
        self.expected_uid
    }

    /// Whether `perm` (`mode & 0o7777`) is an accepted mode: `0600` or `0400`.
    pub(crate) fn mode_ok(perm: u32) -> bool {
        perm == FILE_MODE || perm == READ_ONLY_MODE
    }

    /// Judges a file by its `fstat`: pure computation, no system call.
    pub(crate) fn judge(self, meta: &Meta) -> Verdict {
        if meta.kind != Kind::File {
            return Verdict {
                not_regular: Some(meta.kind),
                ..Verdict::default()
            };
        }
        Verdict {
            not_regular: None,
            wrong_owner: (meta.uid != self.expected_uid).then_some(meta.uid),
            bad_mode: (!Self::mode_ok(meta.perm)).then_some(meta.perm),
            links: (meta.nlink != 1).then_some(meta.nlink),
            too_large: (meta.size > self.max as u64).then_some(meta.size),
        }
    }
}

impl Verdict {
    /// Whether the policy accepts the file.
    pub(crate) fn is_acceptable(&self) -> bool {
        *self == Self::default()
    }

    /// Whether the repair may set the mode to `0600`: the mode is wrong, and the file
    /// is a regular file, owned by the expected owner, with one link (so the `fchmod`
    /// cannot reach another name or another user's file).
    pub(crate) fn mode_is_repairable(&self) -> bool {
        self.bad_mode.is_some()
            && self.not_regular.is_none()
            && self.wrong_owner.is_none()
            && self.links.is_none()
    }

    /// The error a read refuses the file with, the first point in this order: type,
    /// owner, mode, links (0 links: removed after it was opened, so not found), size.
    fn refuse_read(
        self,
        policy: FilePolicy,
        path: &dyn Fn() -> PathBuf,
        bot: &BotId,
        name: &SecretName,
    ) -> Result<()> {
        if self.is_acceptable() {
            return Ok(());
        }
        if let Some(kind) = self.not_regular {
            return Err(not_regular_error(kind, path()));
        }
        if let Some(uid) = self.wrong_owner {
            return Err(SecretsError::WrongOwner {
                path: path(),
                uid,
                expected: policy.expected_uid,
            });
        }
        if let Some(mode) = self.bad_mode {
            return Err(SecretsError::InsecureMode {
                path: path(),
                mode,
                expected: FILE_MODE,
            });
        }
        match self.links {
            Some(0) => {
                return Err(SecretsError::NotFound {
                    bot: *bot,
                    name: name.clone(),
                    path: path(),
                });
            }
            Some(nlink) => {
                return Err(SecretsError::HardLinked {
                    path: path(),
                    nlink,
                });
            }
            None => {}
        }
        if let Some(size) = self.too_large {
            return Err(SecretsError::TooLarge {
                bot: *bot,
                name: name.clone(),
                size,
                max: policy.max,
            });
        }
        Ok(())
    }

    /// The error a write refuses to replace the entry with: only its type matters (the
    /// rename puts a new `0600` inode in place, whatever the old one's owner, mode,
    /// links or size).
    fn refuse_replace(self, path: impl FnOnce() -> PathBuf) -> Result<()> {
        match self.not_regular {
            Some(kind) => Err(not_regular_error(kind, path())),
            None => Ok(()),
        }
    }
}

fn not_regular_error(kind: Kind, path: PathBuf) -> SecretsError {
    if kind == Kind::Symlink {
        SecretsError::Symlink { path }
    } else {
        SecretsError::NotRegularFile {
            path,
            kind: kind.describe(),
        }
    }
}

/// Whether a write may create the secret or must find it in place.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Create the secret (and the bot's directory) if missing.
    CreateOrReplace,
    /// Refuse with [`SecretsError::NotFound`] if the secret (or the bot's directory)
    /// is missing; create nothing.
    ReplaceOnly,
}

/// Stores `value` as the bot's secret `name`: a new `0600` temporary file in the bot's
/// directory, written, `fsync`ed, renamed over the secret, and the directory `fsync`ed.
pub(crate) fn write(
    root: &Root,
    policy: FilePolicy,
    bot: &BotId,
    name: &SecretName,
    value: &[u8],
    target: Target,
) -> Result<()> {
    if value.len() > policy.max {
        return Err(SecretsError::TooLarge {
            bot: *bot,
            name: name.clone(),
            size: value.len() as u64,
            max: policy.max,
        });
    }
    // Paths are for error messages only: made when an error needs one.
    let path = || root.display_path(bot, Some(name));
    let not_found = || SecretsError::NotFound {
        bot: *bot,
        name: name.clone(),
        path: path(),
    };
    let dir = match target {
        Target::CreateOrReplace => bot_dir::open_or_create(root, bot)?.0,
        Target::ReplaceOnly => match bot_dir::open(root, bot, DirUse::Write) {
            Err(SecretsError::BotNotFound { .. }) => return Err(not_found()),
            other => other?,
        },
    };
    // Checked in the directory the rename below goes into (the descriptor, not a path
    // looked up again), so a replace cannot be moved to another directory meanwhile.
    let dest = OsStr::new(name.as_str());
    match Meta::of_entry(dir.as_fd(), dest) {
        Ok(m) => policy.judge(&m).refuse_replace(path)?,
        Err(Errno::ENOENT) if target == Target::ReplaceOnly => return Err(not_found()),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(SecretsError::io("stat", path(), e)),
    }
    let (mut file, tmp) = create_temp(root, dir.as_fd(), bot)?;
    let tmp_name = OsStr::new(tmp.as_str());
    let result = (|| {
        let io = |op, e| SecretsError::io(op, path(), e);
        // The open's mode is filtered by the umask; the mode is set on the descriptor.
        fchmod(&file, Mode::from_bits_truncate(FILE_MODE)).map_err(|e| io("chmod", e))?;
        root.chown_new(file.as_fd()).map_err(|e| io("chown", e))?;
        file.write_all(value).map_err(|e| SecretsError::Io {
            op: "write",
            path: path(),
            source: e,
        })?;
        file.sync_all().map_err(|e| SecretsError::Io {
            op: "fsync",
            path: path(),
            source: e,
        })?;
        renameat(dir.as_fd(), tmp_name, dir.as_fd(), dest).map_err(|e| match e {
            // The directory was deleted (and emptied) under us by a delete_bot.
            Errno::ENOENT => SecretsError::Raced { path: path() },
            e => io("rename", e),
        })
    })();
    drop(file);
    if let Err(e) = result {
        let _ = unlinkat(dir.as_fd(), tmp_name, UnlinkatFlags::NoRemoveDir);
        return Err(e);
    }
    fsync(dir.as_fd()).map_err(|e| SecretsError::io("fsync", root.display_path(bot, None), e))
}

/// Reads the bot's secret `name`: opened without following a link and without blocking,
/// judged by its `fstat` before a byte is read, then read into the value's own
/// zeroizing allocation.
pub(crate) fn read(
    root: &Root,
    policy: FilePolicy,
    bot: &BotId,
    name: &SecretName,
) -> Result<SecretValue> {
    let dir = open_dir_to_read(root, bot, name)?;
    read_in(root, policy, dir.as_fd(), bot, name)
}

/// `NotFound` of the bot's secret `name`; its path (for the message only) is made now,
/// when an error needs one.
fn not_found(root: &Root, bot: &BotId, name: &SecretName) -> SecretsError {
    SecretsError::NotFound {
        bot: *bot,
        name: name.clone(),
        path: root.display_path(bot, Some(name)),
    }
}

/// The bot's directory, looked up to read secrets beneath it; a bot without one has
/// no secret `name`, so that is `NotFound` of `name`, as a missing file is.
fn open_dir_to_read(root: &Root, bot: &BotId, name: &SecretName) -> Result<OwnedFd> {
    match bot_dir::open(root, bot, DirUse::Lookup) {
        Err(SecretsError::BotNotFound { .. }) => Err(not_found(root, bot, name)),
        other => other,
    }
}

/// Reads the secrets `names` of one bot, in that order, through one descriptor of its
/// directory (opened and checked once); each file gets exactly the checks of [`read`].
/// The first secret that cannot be read ends the call with its error.
pub(crate) fn read_many(
    root: &Root,
    policy: FilePolicy,
    bot: &BotId,
    names: &[SecretName],
) -> Result<Vec<SecretValue>> {
    let Some(first) = names.first() else {
        return Ok(Vec::new());
    };
    let dir = open_dir_to_read(root, bot, first)?;
    names
        .iter()
        .map(|name| read_in(root, policy, dir.as_fd(), bot, name))
        .collect()
}

/// Every secret of one bot, sorted by name: the directory opened once (to list it),
/// then every entry under a valid secret name read with the checks of [`read`], which
/// refuse what is not an acceptable file there (a symlink, a FIFO, a directory, a bad
/// mode) as `read` would. Other entries (temporary files, invalid names) are not
/// secrets and are left out; a bot without a directory has none.
pub(crate) fn read_all(
    root: &Root,
    policy: FilePolicy,
    bot: &BotId,
) -> Result<Vec<(SecretName, SecretValue)>> {
    let dir = match bot_dir::open(root, bot, DirUse::Read) {
        Err(SecretsError::BotNotFound { .. }) => return Ok(Vec::new()),
        other => other?,
    };
    let raw_names = list_names(dir.as_fd())
        .map_err(|e| SecretsError::io("list", root.display_path(bot, None), e))?;
    let mut names: Vec<SecretName> = raw_names
        .iter()
        .filter_map(|raw| raw.to_str().and_then(|s| SecretName::parse(s).ok()))
        .collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        match read_in(root, policy, dir.as_fd(), bot, &name) {
            Ok(value) => out.push((name, value)),
            // Removed between the listing and the read: it is no longer a secret.
            Err(SecretsError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Reads secret `name` beneath `dir`, the bot's directory (already opened and checked
/// by [`bot_dir::open`]): the shared part of [`read`], [`read_many`] and [`read_all`].
pub(crate) fn read_in(
    root: &Root,
    policy: FilePolicy,
    dir: BorrowedFd<'_>,
    bot: &BotId,
    name: &SecretName,
) -> Result<SecretValue> {
    let path = || root.display_path(bot, Some(name));
    let not_found = || not_found(root, bot, name);
    let target = OsStr::new(name.as_str());
    let fd = match root.resolver().open(
        dir,
        &[target],
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Err(not_found()),
        Err(e) => return Err(classify_open_error(dir, target, path(), "open", e)),
    };
    let meta = Meta::of_fd(fd.as_fd()).map_err(|e| SecretsError::io("stat", path(), e))?;
    policy.judge(&meta).refuse_read(policy, &path, bot, name)?;
    let mut file = File::from(fd);
    let hint = usize::try_from(meta.size).unwrap_or(policy.max);
    // Straight into the value's own allocation (the policy bounded the size); a file
    // that changed size since its fstat is read again below, from its start.
    let mut value = SecretValue::zeroed(hint);
    match read_exact_size(&file, value.expose_mut()) {
        Ok(true) => return Ok(value),
        Ok(false) => {}
        Err(source) => {
            return Err(SecretsError::Io {
                op: "read",
                path: path(),
                source,
            });
        }
    }
    match read_bounded(&mut file, hint, policy.max) {
        Ok(Ok(buf)) => Ok(SecretValue::from_bytes(&buf)),
        Ok(Err(size)) => Err(SecretsError::TooLarge {
            bot: *bot,
            name: name.clone(),
            size,
            max: policy.max,
        }),
        Err(source) => Err(SecretsError::Io {
            op: "read",
            path: path(),
            source,
        }),
    }
}

/// The bot's secrets, sorted by name: metadata of every regular file under a valid
/// secret name. A bot without a directory has none.
pub(crate) fn list(root: &Root, bot: &BotId) -> Result<Vec<SecretMeta>> {
    let dir = match bot_dir::open(root, bot, DirUse::Read) {
        Err(SecretsError::BotNotFound { .. }) => return Ok(Vec::new()),
        other => other?,
    };
    let names = list_names(dir.as_fd())
        .map_err(|e| SecretsError::io("list", root.display_path(bot, None), e))?;
    let mut out = Vec::new();
    for raw in names {
        let Some(name) = raw.to_str().and_then(|s| SecretName::parse(s).ok()) else {
            continue;
        };
        match Meta::of_entry(dir.as_fd(), &raw) {
            Ok(m) if m.kind == Kind::File => out.push(SecretMeta {
                name,
                size: m.size,
                modified: m.modified,
                mode: m.perm,
            }),
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(e) => {
                return Err(SecretsError::io(
                    "stat",
                    root.display_path(bot, Some(&name)),
                    e,
                ));
            }
        }
    }
    Ok(out)
}

/// Removes the bot's secret `name` (`unlinkat`, then `fsync` of the directory),
/// refusing anything that is not a regular file under that name.
pub(crate) fn remove(root: &Root, bot: &BotId, name: &SecretName) -> Result<()> {
    let path = root.display_path(bot, Some(name));
    let not_found = || SecretsError::NotFound {
        bot: *bot,
        name: name.clone(),
        path: path.clone(),
    };
    let dir = match bot_dir::open(root, bot, DirUse::Read) {
        Err(SecretsError::BotNotFound { .. }) => return Err(not_found()),
        other => other?,
    };
    let target = OsStr::new(name.as_str());
    match Meta::of_entry(dir.as_fd(), target) {
        Ok(m) if m.kind == Kind::File => {}
        Ok(m) => return Err(not_regular_error(m.kind, path)),
        Err(Errno::ENOENT) => return Err(not_found()),
        Err(e) => return Err(SecretsError::io("stat", path, e)),
    }
    // If something were swapped in between the check and here, unlinkat removes
    // that entry itself (a link, never its target).
    match unlinkat(dir.as_fd(), target, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Err(not_found()),
        Err(e) => return Err(SecretsError::io("remove", path, e)),
    }
    fsync(dir.as_fd()).map_err(|e| SecretsError::io("fsync", root.display_path(bot, None), e))
}

/// Sets a secret file's mode to `0600` when the policy says the mode is all that is
/// wrong with it: opened without following a link, and judged again by the `fstat`
/// of that descriptor (the same inode as `seen`), then `fsync`ed. `true` if done.
pub(crate) fn repair_mode(
    root: &Root,
    policy: FilePolicy,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    seen: &Meta,
) -> bool {
    let Ok(fd) = root.resolver().open(
        dir,
        &[name],
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        Mode::empty(),
    ) else {
        return false;
    };
    let Ok(now) = Meta::of_fd(fd.as_fd()) else {
        return false;
    };
    now.dev == seen.dev
        && now.ino == seen.ino
        && policy.judge(&now).mode_is_repairable()
        && fchmod(&fd, Mode::from_bits_truncate(FILE_MODE)).is_ok()
        // A mode is inode metadata: durable only once the inode itself is fsynced.
        && fsync(fd.as_fd()).is_ok()
}

/// Whether a bot directory's entry is one of the store's temporary files.
pub(crate) fn is_temp(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
}

/// Whether a temporary file was left by a write that is no longer running.
pub(crate) fn is_leftover_temp(name: &str) -> bool {
    is_stale(name, TEMP_PREFIX)
}

/// Unlinks a leftover temporary file; `true` if it went.
pub(crate) fn remove_temp(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).is_ok()
}

fn create_temp(root: &Root, dir: BorrowedFd<'_>, bot: &BotId) -> Result<(File, String)> {
    let mut last = Errno::EEXIST;
    for _ in 0..16 {
        let tmp = unique_name(TEMP_PREFIX);
        match root.resolver().open(
            dir,
            &[OsStr::new(&tmp)],
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
            Mode::from_bits_truncate(FILE_MODE),
        ) {
            Ok(fd) => return Ok((File::from(fd), tmp)),
            Err(Errno::EEXIST) => last = Errno::EEXIST,
            Err(Errno::ENOENT) => {
                return Err(SecretsError::Raced {
                    path: root.display_path(bot, None),
                });
            }
            Err(e) => {
                last = e;
                break;
            }
        }
    }
    Err(SecretsError::io(
        "create a temporary file in",
        root.display_path(bot, None),
        last,
    ))
}

/// Fills `buf` from the start of `file` with `pread`s (the file's offset does not move)
/// and checks that the file ends there: `Ok(true)` when it holds exactly `buf.len()`
/// bytes, `Ok(false)` when it turned out shorter or longer (it changed after its
/// `fstat`: the caller reads it again with [`read_bounded`]). The same two syscalls as
/// a read and its end-of-file read, without a buffer to copy from and zero.
fn read_exact_size(file: &File, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0usize;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut probe = Zeroizing::new([0u8; 1]);
    loop {
        match file.read_at(&mut probe[..], filled as u64) {
            Ok(0) => return Ok(true),
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn file(perm: u32) -> Meta {
        Meta {
            kind: Kind::File,
            perm,
            uid: 1000,
            nlink: 1,
            size: 10,
            modified: SystemTime::UNIX_EPOCH,
            dev: 1,
            ino: 2,
        }
    }

    const POLICY: FilePolicy = FilePolicy {
        expected_uid: 1000,
        max: 100,
    };

    /// The repair opens the entry without blocking: a FIFO swapped in after the audit
    /// saw a regular file (no writer on it) must not hang the doctor, and is left
    /// alone (another inode than the one judged). Run in a thread so that a blocking
    /// open fails the test instead of hanging it.
    #[test]
    fn repair_mode_never_blocks_on_a_fifo_swapped_in() {
        let tmp = tempfile::tempdir().unwrap();
        for resolver in [
            crate::root::Resolver::Openat2,
            crate::root::Resolver::NoFollow,
        ] {
            let dir = tmp.path().join(format!("{resolver:?}"));
            let root = Root::open(&dir, None, Some(resolver)).unwrap();
            std::fs::write(dir.join("ai_api_key"), b"v").unwrap();
            let seen = Meta::of_entry(root.fd(), OsStr::new("ai_api_key")).unwrap();
            std::fs::remove_file(dir.join("ai_api_key")).unwrap();
            nix::unistd::mkfifo(&dir.join("ai_api_key"), Mode::from_bits_truncate(0o644)).unwrap();
            let policy = FilePolicy::new(root.expected_uid(), 100);
            let (done, finished) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let fixed = repair_mode(&root, policy, root.fd(), OsStr::new("ai_api_key"), &seen);
                let _ = done.send(fixed);
            });
            let fixed = finished
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{resolver:?}: repair_mode blocked opening a FIFO"));
            assert!(!fixed, "{resolver:?}: a FIFO was repaired");
            let mode = std::os::unix::fs::MetadataExt::mode(
                &std::fs::symlink_metadata(dir.join("ai_api_key")).unwrap(),
            );
            assert_eq!(
                mode & 0o7777,
                0o644,
                "{resolver:?}: the FIFO's mode changed"
            );
        }
    }

    #[test]
    fn exactly_0600_and_0400_are_accepted_among_every_mode() {
        for perm in 0..=0o7777 {
            let verdict = POLICY.judge(&file(perm));
            let accepted = perm == 0o600 || perm == 0o400;
            assert_eq!(verdict.is_acceptable(), accepted, "mode {perm:04o}");
            assert_eq!(verdict.bad_mode.is_some(), !accepted, "mode {perm:04o}");
            assert_eq!(verdict.mode_is_repairable(), !accepted, "mode {perm:04o}");
        }
    }

    #[test]
    fn every_point_of_the_policy_is_judged() {
        assert!(POLICY.judge(&file(0o600)).is_acceptable());
        let fifo = Meta {
            kind: Kind::Fifo,
            perm: 0o644,
            ..file(0o600)
        };
        assert_eq!(
            POLICY.judge(&fifo),
            Verdict {
                not_regular: Some(Kind::Fifo),
                ..Verdict::default()
            },
            "nothing else is judged on a non-file"
        );
        let all = Meta {
            uid: 0,
            nlink: 2,
            size: 101,
            ..file(0o640)
        };
        assert_eq!(
            POLICY.judge(&all),
            Verdict {
                not_regular: None,
                wrong_owner: Some(0),
                bad_mode: Some(0o640),
                links: Some(2),
                too_large: Some(101),
            }
        );
        // The mode of a hard-linked or foreign file is never repaired.
        assert!(!POLICY.judge(&all).mode_is_repairable());
        let at_cap = Meta {
            size: 100,
            ..file(0o400)
        };
        assert!(POLICY.judge(&at_cap).is_acceptable());
    }

    #[test]
    fn an_exact_size_read_checks_the_end_and_leaves_the_offset() {
        use std::io::{Read as _, Write as _};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut file = File::open(&path).unwrap();
        // Exactly the size: read, and the file ends there.
        let mut buf = [0u8; 10];
        assert!(read_exact_size(&file, &mut buf).unwrap());
        assert_eq!(&buf, b"0123456789");
        // The file grew or shrank since its size was taken: not a value.
        assert!(!read_exact_size(&file, &mut [0u8; 9]).unwrap());
        assert!(!read_exact_size(&file, &mut [0u8; 11]).unwrap());
        // An empty file of size 0.
        File::create(dir.path().join("e")).unwrap();
        let empty = File::open(dir.path().join("e")).unwrap();
        assert!(read_exact_size(&empty, &mut []).unwrap());
        // The offset did not move: a read from the start still sees everything.
        let mut all = Vec::new();
        file.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"0123456789");
        // Appended after the size was taken: the probe sees it.
        let mut appending = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        appending.write_all(b"x").unwrap();
        assert!(!read_exact_size(&file, &mut [0u8; 10]).unwrap());
    }
}
