//! Bot directories: `<root>/<bot id>`, `0700`, owned by the expected owner. Opening
//! one for a given use (checked), creating, quarantining and deleting one, listing the
//! bots, and sweeping what interrupted writes and deletions leave behind.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::SystemTime;

use botmaker_domain::BotId;
use nix::errno::Errno;
use nix::fcntl::{OFlag, renameat};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};

use crate::fsutil::{Kind, Meta, is_stale, list_names, open_new_dir, unique_name};
use crate::root::{DIR_MODE, Resolver, Root, classify_open_error};
use crate::secret_file;
use crate::{Result, SecretsError};

/// Prefix of bot directories being deleted (no bot id starts with `.`).
pub(crate) const TRASH_PREFIX: &str = ".trash-";
/// The directory quarantined bots are moved into.
pub(crate) const QUARANTINE_DIR: &str = ".quarantine";

/// What a bot directory is opened for; decides what is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirUse {
    /// Refuse a group- or world-writable directory.
    Read,
    /// As `Read`, through an `O_PATH` descriptor: only to `fstat` it and open a file
    /// beneath it (a secret being read).
    Lookup,
    /// Tighten the directory to 0700 (it is owned by the expected owner).
    Write,
}

/// Opens the bot's directory for `usage`: refuses a symlink, a non-directory, a
/// directory owned by someone else, and (to read) one that group or others can write.
pub(crate) fn open(root: &Root, bot: &BotId, usage: DirUse) -> Result<OwnedFd> {
    let fd = open_fd(root, bot, usage == DirUse::Lookup)?;
    let path = || root.display_path(bot, None);
    let meta = Meta::of_fd(fd.as_fd()).map_err(|e| SecretsError::io("stat", path(), e))?;
    let expected = root.expected_uid();
    if meta.uid != expected {
        return Err(SecretsError::WrongOwner {
            path: path(),
            uid: meta.uid,
            expected,
        });
    }
    match usage {
        DirUse::Write if meta.perm != DIR_MODE => {
            fchmod(&fd, Mode::from_bits_truncate(DIR_MODE))
                .map_err(|e| SecretsError::io("chmod", path(), e))?;
        }
        // Readable by group or others leaks only names (the files are 0600/0400);
        // writable would let another user plant or swap entries.
        DirUse::Read | DirUse::Lookup if meta.perm & 0o022 != 0 => {
            return Err(SecretsError::InsecureMode {
                path: path(),
                mode: meta.perm,
                expected: DIR_MODE,
            });
        }
        _ => {}
    }
    Ok(fd)
}

/// Opens the bot's directory, refusing a symlink or a non-directory, with no owner or
/// mode checks; an `O_PATH` descriptor when `path_only`.
fn open_fd(root: &Root, bot: &BotId, path_only: bool) -> Result<OwnedFd> {
    let mut buf = [0u8; BotId::LEN];
    let name = OsStr::new(bot.encode(&mut buf));
    let opened = if path_only {
        root.resolver().open_dir_path(root.fd(), &[name])
    } else {
        root.resolver().open_dir(root.fd(), &[name])
    };
    match opened {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOENT) => Err(SecretsError::BotNotFound {
            bot: *bot,
            path: root.display_path(bot, None),
        }),
        Err(e) => Err(classify_open_error(
            root.fd(),
            name,
            root.display_path(bot, None),
            "open",
            e,
        )),
    }
}

/// The bot's directory opened to write in, created (0700, owner, root fsynced) if
/// missing; `true` if this call made it.
pub(crate) fn open_or_create(root: &Root, bot: &BotId) -> Result<(OwnedFd, bool)> {
    match open(root, bot, DirUse::Write) {
        Err(SecretsError::BotNotFound { .. }) => {}
        other => return other.map(|fd| (fd, false)),
    }
    let id = bot.to_string();
    let name = OsStr::new(&id);
    let path = root.display_path(bot, None);
    match mkdirat(root.fd(), name, Mode::from_bits_truncate(DIR_MODE)) {
        Ok(()) => {}
        // Made by someone else since we looked.
        Err(Errno::EEXIST) => return Ok((open(root, bot, DirUse::Write)?, false)),
        Err(e) => return Err(SecretsError::io("create", path, e)),
    }
    match finish_made(root, bot, name, &path) {
        Ok(fd) => Ok((fd, true)),
        Err(e) => {
            // Not left behind: an empty directory of ours that nothing can use.
            if !matches!(e, SecretsError::Raced { .. }) {
                remove_made_dir(root, name);
            }
            Err(e)
        }
    }
}

/// Opens the directory `name` just made in the root (readable even if the umask took
/// the owner's read bit away), sets its mode and owner, and makes it durable.
fn finish_made(root: &Root, bot: &BotId, name: &OsStr, path: &std::path::Path) -> Result<OwnedFd> {
    let io = |op, e| SecretsError::io(op, path.to_path_buf(), e);
    let fd = open_new_dir(root.euid(), |flags| {
        root.resolver().open(
            root.fd(),
            &[name],
            flags | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
    })
    .map_err(|e| match e {
        Errno::ENOENT => SecretsError::BotNotFound {
            bot: *bot,
            path: path.to_path_buf(),
        },
        e => classify_open_error(root.fd(), name, path.to_path_buf(), "open", e),
    })?;
    let meta = Meta::of_fd(fd.as_fd()).map_err(|e| io("stat", e))?;
    // What we opened is not what we made: someone swapped an entry in at the name.
    if meta.uid != root.euid() {
        return Err(SecretsError::Raced {
            path: path.to_path_buf(),
        });
    }
    // mkdirat's mode is filtered by the umask; the mode is set on the descriptor.
    fchmod(&fd, Mode::from_bits_truncate(DIR_MODE)).map_err(|e| io("chmod", e))?;
    root.chown_new(fd.as_fd()).map_err(|e| io("chown", e))?;
    root.fsync()?;
    Ok(fd)
}

/// Removes the empty directory `name` of the root that this process made and could
/// not finish, if it is still a directory of ours (best effort).
fn remove_made_dir(root: &Root, name: &OsStr) {
    if Meta::of_entry(root.fd(), name).is_ok_and(|m| m.kind == Kind::Dir && m.uid == root.euid()) {
        let _ = unlinkat(root.fd(), name, UnlinkatFlags::RemoveDir);
    }
}

/// Deletes the bot's directory and everything in it.
///
/// The directory is first renamed to a trash name in the root and the root is
/// `fsync`ed, so the bot is gone at once even if removal is interrupted (the next
/// open's [`sweep`] finishes it). Removal is descriptor-relative and never follows a
/// symlink: a link inside is removed as a link.
pub(crate) fn delete(root: &Root, bot: &BotId) -> Result<()> {
    let path = root.display_path(bot, None);
    let before = {
        let dir = open_fd(root, bot, false)?;
        Meta::of_fd(dir.as_fd()).map_err(|e| SecretsError::io("stat", path.clone(), e))?
    };
    let id = bot.to_string();
    let trash = unique_name(&format!("{TRASH_PREFIX}{id}-"));
    let trash = OsStr::new(trash.as_str());
    match renameat(root.fd(), id.as_str(), root.fd(), trash) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Err(SecretsError::BotNotFound { bot: *bot, path }),
        Err(e) => return Err(SecretsError::io("rename", path, e)),
    }
    root.fsync()?;
    let same = Meta::of_entry(root.fd(), trash)
        .is_ok_and(|after| after.dev == before.dev && after.ino == before.ino);
    remove_tree(root.resolver(), root.fd(), trash, 0)
        .map_err(|e| SecretsError::io("remove", path.clone(), e))?;
    root.fsync()?;
    if same {
        Ok(())
    } else {
        // Something else had been swapped in at the bot's name; what we removed was
        // that entry (as a link, if it was one), inside the store.
        Err(SecretsError::Raced { path })
    }
}

/// Moves whatever is at the bot's name (without following it) into
/// `<root>/.quarantine/<id>-<unix seconds>.<nanoseconds>`, deleting nothing, and
/// returns that path relative to the root.
pub(crate) fn quarantine(root: &Root, bot: &BotId) -> Result<String> {
    let id = bot.to_string();
    let path = root.display_path(bot, None);
    match Meta::of_entry(root.fd(), OsStr::new(&id)) {
        Ok(_) => {}
        Err(Errno::ENOENT) => return Err(SecretsError::BotNotFound { bot: *bot, path }),
        Err(e) => return Err(SecretsError::io("stat", path, e)),
    }
    let qpath = root.path().join(QUARANTINE_DIR);
    let q = OsStr::new(QUARANTINE_DIR);
    let created = match mkdirat(root.fd(), q, Mode::from_bits_truncate(DIR_MODE)) {
        Ok(()) => true,
        Err(Errno::EEXIST) => false,
        Err(e) => return Err(SecretsError::io("create", qpath, e)),
    };
    let qfd = if created {
        let made = open_new_dir(root.euid(), |flags| {
            root.resolver()
                .open(root.fd(), &[q], flags | OFlag::O_DIRECTORY, Mode::empty())
        })
        .map_err(|e| classify_open_error(root.fd(), q, qpath.clone(), "open", e))
        .and_then(|fd| {
            fchmod(&fd, Mode::from_bits_truncate(DIR_MODE))
                .map_err(|e| SecretsError::io("chmod", qpath.clone(), e))?;
            root.chown_new(fd.as_fd())
                .map_err(|e| SecretsError::io("chown", qpath.clone(), e))?;
            Ok(fd)
        });
        match made {
            Ok(fd) => fd,
            Err(e) => {
                remove_made_dir(root, q);
                return Err(e);
            }
        }
    } else {
        root.resolver()
            .open_dir(root.fd(), &[q])
            .map_err(|e| classify_open_error(root.fd(), q, qpath.clone(), "open", e))?
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let mut dest = format!("{id}-{}.{:09}", now.as_secs(), now.subsec_nanos());
    if Meta::of_entry(qfd.as_fd(), OsStr::new(&dest)).is_ok() {
        dest = unique_name(&format!("{dest}-"));
    }
    match renameat(root.fd(), id.as_str(), qfd.as_fd(), dest.as_str()) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Err(SecretsError::BotNotFound { bot: *bot, path }),
        Err(e) => return Err(SecretsError::io("rename", path, e)),
    }
    fsync(qfd.as_fd()).map_err(|e| SecretsError::io("fsync", qpath, e))?;
    root.fsync()?;
    Ok(format!("{QUARANTINE_DIR}/{dest}"))
}

/// The bots that have a directory in the root, sorted; names that are not canonical
/// bot ids are left out.
pub(crate) fn bots(root: &Root) -> Result<Vec<BotId>> {
    let names = list_names(root.fd())
        .map_err(|e| SecretsError::io("list", root.path().to_path_buf(), e))?;
    let mut out = Vec::new();
    for raw in names {
        let Some(id) = canonical_bot_id(&raw) else {
            continue;
        };
        if Meta::of_entry(root.fd(), &raw).is_ok_and(|m| m.kind == Kind::Dir) {
            out.push(id);
        }
    }
    out.sort();
    Ok(out)
}

/// Removes leftover trash directories and stale temporary files; best effort
/// (anything left is reported by the audit). Returns how many entries went.
pub(crate) fn sweep(root: &Root) -> usize {
    let Ok(names) = list_names(root.fd()) else {
        return 0;
    };
    let mut swept = 0;
    for raw in names {
        let Some(s) = raw.to_str() else { continue };
        if s.starts_with(TRASH_PREFIX) {
            // Only the trash of deletions whose process is gone: another process (or
            // store) may be deleting a bot right now.
            if is_stale_trash(s) && remove_trash(root, &raw).is_ok_and(|n| n > 0) {
                swept += 1;
            }
        } else if secret_file::is_leftover_temp(s) && secret_file::remove_temp(root.fd(), &raw) {
            // The temporary file of an interrupted creation of the root's id file.
            swept += 1;
        } else if canonical_bot_id(&raw).is_some() {
            let Ok(dir) = open_entry(root, &raw) else {
                continue;
            };
            let Ok(entries) = list_names(dir.as_fd()) else {
                continue;
            };
            let mut removed = false;
            for e in entries {
                if e.to_str().is_some_and(secret_file::is_leftover_temp)
                    && secret_file::remove_temp(dir.as_fd(), &e)
                {
                    swept += 1;
                    removed = true;
                }
            }
            if removed {
                let _ = fsync(dir.as_fd());
            }
        }
    }
    if swept > 0 {
        let _ = fsync(root.fd());
    }
    swept
}

/// Opens a directory of the root by the name found in a listing (the audit and the
/// sweep walk names, not bot ids), without following a symlink.
pub(crate) fn open_entry(root: &Root, raw: &OsStr) -> nix::Result<OwnedFd> {
    root.resolver().open_dir(root.fd(), &[raw])
}

/// Removes the trash entry `raw` of the root and everything beneath it (the caller
/// checked [`is_stale_trash`]); the number of entries removed.
pub(crate) fn remove_trash(root: &Root, raw: &OsStr) -> nix::Result<usize> {
    remove_tree(root.resolver(), root.fd(), raw, 0)
}

/// Whether `meta` (a bot directory's) has the mode a bot directory must have.
pub(crate) fn mode_ok(meta: &Meta) -> bool {
    meta.perm == DIR_MODE
}

/// Sets a bot directory's mode to 0700 through its descriptor, if it is a directory
/// owned by the expected owner, then `fsync`s it (a mode is inode metadata); `true`
/// if done.
pub(crate) fn repair_mode(root: &Root, dir: BorrowedFd<'_>, meta: &Meta) -> bool {
    meta.kind == Kind::Dir
        && meta.uid == root.expected_uid()
        && fchmod(dir, Mode::from_bits_truncate(DIR_MODE)).is_ok()
        && fsync(dir).is_ok()
}

/// The bot id a directory name is the canonical rendering of.
pub(crate) fn canonical_bot_id(raw: &OsStr) -> Option<BotId> {
    let s = raw.to_str()?;
    let id = BotId::parse(s).ok()?;
    (id.to_string() == s).then_some(id)
}

/// Whether a trash entry (`.trash-<bot id>-<pid>-<token>-<seq>`) was left by a deletion
/// that is no longer running: its process is gone (see [`is_stale`]). A deletion in
/// progress in another process or thread must not have its trash removed under it.
/// Names of any other shape count as stale (we never made them).
pub(crate) fn is_stale_trash(name: &str) -> bool {
    const ID_AND_DASH: usize = BotId::LEN + 1;
    match name.strip_prefix(TRASH_PREFIX) {
        Some(rest) => rest
            .get(ID_AND_DASH..)
            .is_none_or(|tail| is_stale(tail, "")),
        None => false,
    }
}

/// Removes the entry `name` in `dir` and, if it is a directory, everything beneath it,
/// descriptor-relative and without following symlinks (a symlink is unlinked as a
/// link). Entries that vanish meanwhile are fine. Returns the number of entries removed.
fn remove_tree(
    resolver: Resolver,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    depth: usize,
) -> nix::Result<usize> {
    const MAX_DEPTH: usize = 32;
    // A writer that opened the directory before it was renamed to the trash can still
    // create a temporary file (and rename it into place) in it: empty it again while
    // the removal of the directory finds it not empty, a bounded number of times.
    const MAX_ROUNDS: usize = 64;
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => return Ok(1),
        Err(Errno::ENOENT) => return Ok(0),
        Err(Errno::EISDIR | Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    if depth >= MAX_DEPTH {
        return Err(Errno::ELOOP);
    }
    let sub = match resolver.open_dir(dir, &[name]) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for _ in 0..MAX_ROUNDS {
        for child in list_names(sub.as_fd())? {
            removed += remove_tree(resolver, sub.as_fd(), &child, depth + 1)?;
        }
        match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
            Ok(()) => return Ok(removed + 1),
            Err(Errno::ENOENT) => return Ok(removed),
            Err(Errno::ENOTEMPTY | Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Errno::ENOTEMPTY)
}
