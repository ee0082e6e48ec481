//! Filesystem helpers shared by the store's modules and the platform module: what
//! `fstat` says about an entry ([`Meta`]), directory listings, bounded reads, and the
//! unique names of the store's own short-lived entries (temporary files, trash).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use zeroize::Zeroizing;

/// What kind of filesystem object an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl Kind {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::File => "regular file",
            Self::Dir => "directory",
            Self::Symlink => "symlink",
            Self::Fifo => "fifo",
            Self::Socket => "socket",
            Self::CharDevice => "character device",
            Self::BlockDevice => "block device",
            Self::Unknown => "special file",
        }
    }
}

/// The parts of `stat` the store looks at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta {
    pub(crate) kind: Kind,
    /// Permission bits (`mode & 0o7777`).
    pub(crate) perm: u32,
    pub(crate) uid: u32,
    pub(crate) nlink: u64,
    pub(crate) size: u64,
    pub(crate) modified: SystemTime,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl Meta {
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)] // field widths differ by target
    fn from_stat(st: &FileStat) -> Self {
        let fmt = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let kind = if fmt == SFlag::S_IFREG {
            Kind::File
        } else if fmt == SFlag::S_IFDIR {
            Kind::Dir
        } else if fmt == SFlag::S_IFLNK {
            Kind::Symlink
        } else if fmt == SFlag::S_IFIFO {
            Kind::Fifo
        } else if fmt == SFlag::S_IFSOCK {
            Kind::Socket
        } else if fmt == SFlag::S_IFCHR {
            Kind::CharDevice
        } else if fmt == SFlag::S_IFBLK {
            Kind::BlockDevice
        } else {
            Kind::Unknown
        };
        let secs = st.st_mtime as i64;
        let nanos = u32::try_from(st.st_mtime_nsec).unwrap_or(0);
        let modified = if secs >= 0 {
            SystemTime::UNIX_EPOCH + Duration::new(secs.unsigned_abs(), nanos)
        } else {
            SystemTime::UNIX_EPOCH
                .checked_sub(Duration::from_secs(secs.unsigned_abs()))
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        Self {
            kind,
            perm: u32::from(st.st_mode) & 0o7777,
            uid: st.st_uid,
            nlink: u64::from(st.st_nlink),
            size: u64::try_from(st.st_size).unwrap_or(0),
            modified,
            dev: u64::from(st.st_dev),
            ino: u64::from(st.st_ino),
        }
    }

    pub(crate) fn of_fd(fd: BorrowedFd<'_>) -> nix::Result<Self> {
        fstat(fd).map(|st| Self::from_stat(&st))
    }

    /// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: a symlink is described, not followed.
    pub(crate) fn of_entry(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<Self> {
        fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map(|st| Self::from_stat(&st))
    }
}

/// Opens, for reading, a directory this process has just made, even when the umask
/// took the owner's read bit away: `mkdirat(0700)` under umask 0477 or 0777 makes a
/// directory (`0300`, `0000`) that its owner cannot open, and a failed open would
/// leave it behind. `open` opens the entry with the flags it is given, adding
/// `O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC` its own way (a path, or a name beneath a
/// descriptor).
///
/// On `EACCES` only (every other umask costs nothing more): the entry is opened
/// `O_PATH`, which needs no permission on it; checked to be a directory owned by
/// `euid` (the one we made, not one swapped in); its mode set to `0700` through
/// `/proc/self/fd/N`, because `fchmod` refuses an `O_PATH` descriptor with `EBADF`
/// (checked on 6.x kernels too; `fchmodat2(AT_EMPTY_PATH)` would need 6.6 and a raw
/// syscall); and reopened through the same link, so the readable descriptor is of the
/// very inode that was checked. Without `/proc` the `EACCES` is returned and the
/// caller removes what it made. The caller sets the mode with `fchmod` as always.
pub(crate) fn open_new_dir(
    euid: u32,
    open: impl Fn(OFlag) -> nix::Result<OwnedFd>,
) -> nix::Result<OwnedFd> {
    match open(OFlag::O_RDONLY) {
        Err(Errno::EACCES) => {}
        other => return other,
    }
    let handle = open(OFlag::O_PATH)?;
    let meta = Meta::of_fd(handle.as_fd())?;
    if meta.kind != Kind::Dir || meta.uid != euid {
        return Err(Errno::EACCES);
    }
    let link = format!("/proc/self/fd/{}", handle.as_raw_fd());
    // chmod(2) follows the magic link to the inode the descriptor holds.
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o700))
        .map_err(|_| Errno::EACCES)?;
    nix::fcntl::open(
        link.as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The names in a directory (without `.` and `..`), read through a fresh descriptor so
/// that concurrent listings do not share a file offset.
pub(crate) fn list_names(dir: BorrowedFd<'_>) -> nix::Result<Vec<OsString>> {
    let fresh = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(fresh)?;
    let mut names = Vec::new();
    for entry in d.iter() {
        let entry = entry?;
        let bytes = entry.file_name().to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        names.push(OsStr::from_bytes(bytes).to_owned());
    }
    names.sort();
    Ok(names)
}

/// Reads at most `limit + 1` bytes into a zeroizing buffer, starting with room for
/// `hint` bytes. `Err(n)` means the file holds more than `limit` bytes (`n` read).
pub(crate) fn read_bounded(
    file: &mut File,
    hint: usize,
    limit: usize,
) -> std::io::Result<Result<Zeroizing<Vec<u8>>, u64>> {
    let cap = limit.saturating_add(1);
    let mut buf = Zeroizing::new(vec![0u8; hint.saturating_add(1).min(cap).max(1)]);
    let mut filled = 0usize;
    loop {
        if filled == buf.len() {
            if buf.len() >= cap {
                return Ok(Err(filled as u64));
            }
            // Grow by copying into a new zeroizing buffer; the old one is zeroed on drop.
            let mut bigger = Zeroizing::new(vec![0u8; buf.len().saturating_mul(2).min(cap)]);
            bigger[..filled].copy_from_slice(&buf[..filled]);
            buf = bigger;
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if filled > limit {
        return Ok(Err(filled as u64));
    }
    buf.truncate(filled);
    Ok(Ok(buf))
}

/// A random number chosen once per process, so that names made by a process that has
/// since died (even one that had the same pid, as pid 1 in a container does) can be
/// told apart from names made by this one.
fn process_token() -> u64 {
    static TOKEN: OnceLock<u64> = OnceLock::new();
    *TOKEN.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        if let Ok(d) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
            h.write_u128(d.as_nanos());
        }
        h.finish()
    })
}

fn next_seq() -> u64 {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// A fresh unique name `<prefix><pid>-<token>-<seq>` (the caller creates it with
/// `O_EXCL` or `RENAME_NOREPLACE`-like checks and retries on a clash).
pub(crate) fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}{}-{:016x}-{}",
        std::process::id(),
        process_token(),
        next_seq()
    )
}

/// Whether a temporary or trash entry was left behind by a writer that is gone: made
/// by an earlier incarnation of this pid, or by a pid that no longer exists. Names we
/// cannot parse count as stale (we never made them).
pub(crate) fn is_stale(name: &str, prefix: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    let mut parts = rest.split('-');
    let pid = parts.next().and_then(|p| p.parse::<i32>().ok());
    let token = parts.next().and_then(|t| u64::from_str_radix(t, 16).ok());
    let (Some(pid), Some(token)) = (pid, token) else {
        return true;
    };
    if u32::try_from(pid).ok() == Some(std::process::id()) {
        return token != process_token();
    }
    if pid <= 0 {
        return true;
    }
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Ok(()) | Err(Errno::EPERM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_file::TEMP_PREFIX;

    #[test]
    fn own_names_are_live_and_foreign_ones_stale() {
        let mine = unique_name(TEMP_PREFIX);
        assert!(!is_stale(&mine, TEMP_PREFIX));
        let old_me = format!(
            "{TEMP_PREFIX}{}-{:016x}-1",
            std::process::id(),
            process_token() ^ 1
        );
        assert!(is_stale(&old_me, TEMP_PREFIX));
        assert!(is_stale(".tmp-garbage", TEMP_PREFIX));
        assert!(is_stale(".tmp-0-00-1", TEMP_PREFIX));
        assert!(!is_stale("ai_api_key", TEMP_PREFIX));
    }
}
