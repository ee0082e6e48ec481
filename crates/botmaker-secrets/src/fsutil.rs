//! Descriptor-relative filesystem helpers shared by the store and the platform module.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use zeroize::Zeroizing;

/// How paths beneath a directory descriptor are resolved without following symlinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolver {
    /// `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`.
    Openat2,
    /// `openat` with `O_NOFOLLOW` on each component (kernels before 5.6, or seccomp
    /// filters that refuse `openat2`).
    NoFollow,
}

impl Resolver {
    /// Asks the kernel once whether `openat2` works here.
    pub(crate) fn probe(dir: BorrowedFd<'_>) -> Self {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        match openat2(dir, ".", how) {
            Ok(_) => Self::Openat2,
            // ENOSYS: old kernel; EPERM: a seccomp filter (older Docker profiles).
            // Anything else unexpected: the fallback is equally safe.
            Err(_) => Self::NoFollow,
        }
    }

    /// Opens `components` (plain names, already validated) beneath `dir` without
    /// following a symlink anywhere: `ELOOP` if any component is one.
    pub(crate) fn open(
        self,
        dir: BorrowedFd<'_>,
        components: &[&OsStr],
        flags: OFlag,
        mode: Mode,
    ) -> nix::Result<OwnedFd> {
        let flags = flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        match self {
            Self::Openat2 => {
                let mut how = OpenHow::new()
                    .flags(flags)
                    .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
                if flags.contains(OFlag::O_CREAT) {
                    how = how.mode(mode);
                }
                // One component (every hot path): no path to assemble.
                if let [only] = components {
                    return openat2(dir, *only, how);
                }
                let mut path = OsString::new();
                for (i, c) in components.iter().enumerate() {
                    if i > 0 {
                        path.push("/");
                    }
                    path.push(c);
                }
                openat2(dir, path.as_os_str(), how)
            }
            Self::NoFollow => {
                let Some((last, parents)) = components.split_last() else {
                    return Err(Errno::EINVAL);
                };
                let mut held: Option<OwnedFd> = None;
                for c in parents {
                    let at = held.as_ref().map_or(dir, AsFd::as_fd);
                    let next = openat(
                        at,
                        *c,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )?;
                    held = Some(next);
                }
                let at = held.as_ref().map_or(dir, AsFd::as_fd);
                openat(at, *last, flags, mode)
            }
        }
    }

    /// Opens a directory beneath `dir` as an `O_PATH` descriptor: enough for `fstat`
    /// and for opening beneath it, cheaper to open than a readable one (no `fsync`,
    /// no listing). A symlink at the last component is refused (`ENOTDIR`) like any
    /// other non-directory.
    pub(crate) fn open_dir_path(
        self,
        dir: BorrowedFd<'_>,
        components: &[&OsStr],
    ) -> nix::Result<OwnedFd> {
        self.open(
            dir,
            components,
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
    }

    /// Opens a directory beneath `dir` (read-only, for `fstat`, `fsync`, `*at` calls).
    pub(crate) fn open_dir(
        self,
        dir: BorrowedFd<'_>,
        components: &[&OsStr],
    ) -> nix::Result<OwnedFd> {
        self.open(
            dir,
            components,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
    }
}

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

/// Fills `buf` from the start of `file` with `pread`s (the file's offset does not move)
/// and checks that the file ends there: `Ok(true)` when it holds exactly `buf.len()`
/// bytes, `Ok(false)` when it turned out shorter or longer (it changed after its
/// `fstat`: the caller reads it again with [`read_bounded`]). The same two syscalls as
/// a read and its end-of-file read, without a buffer to copy from and zero.
pub(crate) fn read_exact_size(file: &File, buf: &mut [u8]) -> std::io::Result<bool> {
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

/// Removes the entry `name` in `dir` and, if it is a directory, everything beneath it,
/// descriptor-relative and without following symlinks (a symlink is unlinked as a
/// link). Entries that vanish meanwhile are fine. Returns the number of entries removed.
pub(crate) fn remove_tree(
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

/// Whether a trash entry (`.trash-<bot id>-<pid>-<token>-<seq>`) was left by a deletion
/// that is no longer running: its process is gone (see [`is_stale`]). A deletion in
/// progress in another process or thread must not have its trash removed under it.
/// Names of any other shape count as stale (we never made them).
pub(crate) fn is_stale_trash(name: &str) -> bool {
    const ID_AND_DASH: usize = botmaker_domain::BotId::LEN + 1;
    match name.strip_prefix(TRASH_PREFIX) {
        Some(rest) => rest
            .get(ID_AND_DASH..)
            .is_none_or(|tail| is_stale(tail, "")),
        None => false,
    }
}

/// Prefix of the store's temporary files (no [`SecretName`](botmaker_domain::SecretName)
/// can start with `.`).
pub(crate) const TEMP_PREFIX: &str = ".tmp-";
/// Prefix of bot directories being deleted.
pub(crate) const TRASH_PREFIX: &str = ".trash-";
/// The directory quarantined bots are moved into.
pub(crate) const QUARANTINE_DIR: &str = ".quarantine";

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
