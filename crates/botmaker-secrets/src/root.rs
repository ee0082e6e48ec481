//! The store's root directory: created `0700` if missing, opened once
//! (`O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC`), checked like OpenSSH StrictModes, and the one
//! place that knows how to open beneath it without following a symlink ([`Resolver`]).
//! Every other module reaches the filesystem through a [`Root`].

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use botmaker_domain::{BotId, SecretName};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fsync, unlinkat};

use crate::fsutil::{Kind, Meta, open_new_dir};
use crate::store::Owner;
use crate::{Result, SecretsError};

/// The mode of the root and of every directory the store makes.
pub(crate) const DIR_MODE: u32 = 0o700;

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

/// The opened root: its descriptor, the path it was opened at (for messages only),
/// how to resolve beneath it, and whose files the store expects.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
    path: PathBuf,
    resolver: Resolver,
    euid: u32,
    owner: Option<Owner>,
}

impl Root {
    /// Creates the root (`0700`) if it is missing, opens it without following a
    /// symlink at its last component, and applies the StrictModes check. `force`
    /// picks the resolver instead of probing the kernel (tests run both).
    pub(crate) fn open(path: &Path, owner: Option<Owner>, force: Option<Resolver>) -> Result<Self> {
        let euid = nix::unistd::geteuid().as_raw();
        let created = create_root(path)?;
        let fd = match open_root(path, owner, euid, created) {
            Ok(fd) => fd,
            Err(e) => {
                // A root this call made and could not use is not left behind (it is
                // empty; `rmdir` removes nothing else, and nothing through a symlink).
                if created
                    && Meta::of_entry(nix::fcntl::AT_FDCWD, path.as_os_str())
                        .is_ok_and(|m| m.kind == Kind::Dir && m.uid == euid)
                {
                    let _ = std::fs::remove_dir(path);
                }
                return Err(e);
            }
        };
        let resolver = force.unwrap_or_else(|| Resolver::probe(fd.as_fd()));
        Ok(Self {
            fd,
            path: path.to_path_buf(),
            resolver,
            euid,
            owner,
        })
    }

    /// The root's descriptor: every operation of the store is relative to it.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The path the root was opened at, for messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn resolver(&self) -> Resolver {
        self.resolver
    }

    /// The effective user of this process: the owner of entries it creates before
    /// any `fchown`.
    pub(crate) fn euid(&self) -> u32 {
        self.euid
    }

    /// Who must own bot directories and secret files: the configured owner, else the
    /// effective user.
    pub(crate) fn expected_uid(&self) -> u32 {
        self.owner.map_or(self.euid, |o| o.uid)
    }

    /// Whether the root itself may be owned by `uid` (the StrictModes rule: us, the
    /// configured owner, or root).
    pub(crate) fn root_owner_ok(&self, uid: u32) -> bool {
        uid == self.euid || uid == 0 || uid == self.expected_uid()
    }

    /// Sets the root's mode to 0700 through its descriptor, if the root (`meta` is its
    /// `fstat`) belongs to the effective user or the expected owner; a root that
    /// StrictModes accepts as root's, while we are not root, is left to root. `true`
    /// if done.
    pub(crate) fn repair_mode(&self, meta: &Meta) -> bool {
        (meta.uid == self.euid || meta.uid == self.expected_uid())
            && fchmod(&self.fd, Mode::from_bits_truncate(DIR_MODE)).is_ok()
    }

    /// Hands a descriptor the store just made to the configured owner (no-op without
    /// one).
    pub(crate) fn chown_new(&self, fd: BorrowedFd<'_>) -> nix::Result<()> {
        match self.owner {
            Some(o) => chown_fd(fd, o),
            None => Ok(()),
        }
    }

    /// `fsync` of the root, so that a made, renamed or removed bot directory is durable.
    pub(crate) fn fsync(&self) -> Result<()> {
        fsync(self.fd.as_fd()).map_err(|e| SecretsError::io("fsync", self.path.clone(), e))
    }

    /// `<root>/<bot>[/<name>]`, for messages only (I/O never goes through a path).
    pub(crate) fn display_path(&self, bot: &BotId, name: Option<&SecretName>) -> PathBuf {
        let mut p = self.path.join(bot.to_string());
        if let Some(n) = name {
            p.push(n.as_str());
        }
        p
    }
}

fn chown_fd(fd: BorrowedFd<'_>, owner: Owner) -> nix::Result<()> {
    fchown(
        fd,
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
    )
}

/// Turns a failed no-follow open into the most telling error: `ELOOP` (or a
/// `ENOTDIR`/`ENXIO` on what turns out to be a symlink or special file) names the kind.
pub(crate) fn classify_open_error(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    path: PathBuf,
    op: &'static str,
    e: Errno,
) -> SecretsError {
    match e {
        Errno::ELOOP => SecretsError::Symlink { path },
        Errno::ENOTDIR | Errno::ENXIO | Errno::EISDIR => match Meta::of_entry(dir, name) {
            Ok(m) if m.kind == Kind::Symlink => SecretsError::Symlink { path },
            // A directory open failed with ENOTDIR, yet a directory is there now: it
            // was swapped meanwhile.
            Ok(m) if m.kind == Kind::Dir && e == Errno::ENOTDIR => SecretsError::Raced { path },
            Ok(m) if m.kind == Kind::Dir => SecretsError::NotRegularFile {
                path,
                kind: m.kind.describe(),
            },
            Ok(m) if e == Errno::ENOTDIR => SecretsError::NotADirectory {
                path,
                kind: m.kind.describe(),
            },
            Ok(m) => SecretsError::NotRegularFile {
                path,
                kind: m.kind.describe(),
            },
            Err(Errno::ENOENT) => SecretsError::Raced { path },
            Err(_) => SecretsError::io(op, path, e),
        },
        _ => SecretsError::io(op, path, e),
    }
}

/// Opens the root (made by this call when `created`), without following a symlink at
/// its last component, sets a new root's mode and owner, and applies the StrictModes
/// check.
fn open_root(path: &Path, owner: Option<Owner>, euid: u32, created: bool) -> Result<OwnedFd> {
    let open = |flags: OFlag| {
        nix::fcntl::open(
            path,
            flags | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let opened = if created {
        // Readable even if the umask took the owner's read bit away.
        open_new_dir(euid, open)
    } else {
        open(OFlag::O_RDONLY)
    };
    let fd = opened.map_err(|e| root_open_error(path, e))?;
    let io = |op, e| SecretsError::io(op, path.to_path_buf(), e);
    let mut meta = Meta::of_fd(fd.as_fd()).map_err(|e| io("stat", e))?;
    if created {
        // Make the new root's own directory entry durable (best effort: the
        // parent may not be ours to open).
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(pfd) = nix::fcntl::open(
                parent,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        {
            let _ = fsync(pfd.as_fd());
        }
    }
    // Only a root this process made and still owns gets its mode and owner set: an
    // existing root is the operator's, and is checked, not changed.
    if created && meta.uid == euid {
        fchmod(&fd, Mode::from_bits_truncate(DIR_MODE)).map_err(|e| io("chmod", e))?;
        if let Some(o) = owner {
            chown_fd(fd.as_fd(), o).map_err(|e| io("chown", e))?;
        }
        meta = Meta::of_fd(fd.as_fd()).map_err(|e| io("stat", e))?;
    }
    check_root(path, &meta, euid, owner)?;
    Ok(fd)
}

/// Makes the root directory if it is missing (and its missing parents, see
/// [`create_parents`]); `true` if this call made the root.
fn create_root(root: &Path) -> Result<bool> {
    let mode = Mode::from_bits_truncate(DIR_MODE);
    match nix::unistd::mkdir(root, mode) {
        Ok(()) => return Ok(true),
        Err(Errno::EEXIST) => return Ok(false),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(SecretsError::io("create", root.to_path_buf(), e)),
    }
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_parents(parent)?;
    }
    match nix::unistd::mkdir(root, mode) {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST) => Ok(false),
        Err(e) => Err(SecretsError::io("create", root.to_path_buf(), e)),
    }
}

/// Makes the missing directories of `path`, each `0700` whatever the umask
/// (`create_dir_all` would give them `0777 & !umask`: world-writable under umask 000,
/// a place where another user could swap the root). Each is made with `mkdirat` in
/// its parent's descriptor and its mode set on a descriptor of the new directory; a
/// directory that already exists, or that another process makes meanwhile, is the
/// operator's and keeps its mode.
fn create_parents(path: &Path) -> Result<()> {
    let io = |p: &Path, op, e| SecretsError::io(op, p.to_path_buf(), e);
    let search = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    // The deepest ancestor that exists (followed like any path: it is the operator's),
    // and the names below it to make, deepest first.
    let mut missing = Vec::new();
    let mut base = path;
    let mut dir = loop {
        let opened = if base.as_os_str().is_empty() {
            nix::fcntl::open(".", search, Mode::empty())
        } else {
            nix::fcntl::open(base, search, Mode::empty())
        };
        match opened {
            Ok(fd) => break fd,
            Err(Errno::ENOENT) => {
                // A path ending in `..` has no name to make.
                let Some(name) = base.file_name() else {
                    return Err(io(base, "create", Errno::ENOENT));
                };
                missing.push((name, base));
                base = base.parent().unwrap_or_else(|| Path::new(""));
            }
            Err(e) => return Err(io(base, "open", e)),
        }
    };
    let euid = nix::unistd::geteuid().as_raw();
    for (name, full) in missing.into_iter().rev() {
        match mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(DIR_MODE)) {
            Ok(()) => {
                let finished = open_new_dir(euid, |flags| {
                    openat(
                        dir.as_fd(),
                        name,
                        flags | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                })
                .map_err(|e| io(full, "open", e))
                .and_then(|fd| {
                    // Only what is still the directory we made (ours) gets its mode set.
                    let meta = Meta::of_fd(fd.as_fd()).map_err(|e| io(full, "stat", e))?;
                    if meta.uid == euid {
                        fchmod(&fd, Mode::from_bits_truncate(DIR_MODE))
                            .map_err(|e| io(full, "chmod", e))?;
                    }
                    Ok(fd)
                });
                match finished {
                    Ok(fd) => dir = fd,
                    Err(e) => {
                        // A directory made here and left unusable (say `0000`, without
                        // /proc to fix it) is not left behind; the ones made before it
                        // are finished, `0700`, and stay.
                        if Meta::of_entry(dir.as_fd(), name)
                            .is_ok_and(|m| m.kind == Kind::Dir && m.uid == euid)
                        {
                            let _ = unlinkat(dir.as_fd(), name, UnlinkatFlags::RemoveDir);
                        }
                        return Err(e);
                    }
                }
            }
            Err(Errno::EEXIST) => {
                dir = openat(dir.as_fd(), name, search, Mode::empty())
                    .map_err(|e| io(full, "open", e))?;
            }
            Err(e) => return Err(io(full, "create", e)),
        }
    }
    Ok(())
}

fn root_open_error(root: &Path, e: Errno) -> SecretsError {
    let is_link = root
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink());
    if e == Errno::ELOOP || is_link {
        return SecretsError::InsecureRoot {
            path: root.to_path_buf(),
            reason: "the root path is a symlink".to_owned(),
            fix: "point the store at the real directory; the final path component must not be a symlink".to_owned(),
        };
    }
    if e == Errno::ENOTDIR {
        return SecretsError::InsecureRoot {
            path: root.to_path_buf(),
            reason: "not a directory".to_owned(),
            fix: format!(
                "move {} aside and let the store create the directory",
                root.display()
            ),
        };
    }
    SecretsError::io("open", root.to_path_buf(), e)
}

/// The StrictModes check of the root: a directory, owned by us, the configured owner
/// or root, and not writable by group or others (readable is tolerated, and reported
/// by the audit).
fn check_root(root: &Path, meta: &Meta, euid: u32, owner: Option<Owner>) -> Result<()> {
    let insecure = |reason: String, fix: String| SecretsError::InsecureRoot {
        path: root.to_path_buf(),
        reason,
        fix,
    };
    if meta.kind != Kind::Dir {
        return Err(insecure(
            format!("a {}, not a directory", meta.kind.describe()),
            format!(
                "move {} aside and let the store create the directory",
                root.display()
            ),
        ));
    }
    let owner_ok = meta.uid == euid || meta.uid == 0 || owner.is_some_and(|o| o.uid == meta.uid);
    if !owner_ok {
        return Err(insecure(
            format!(
                "owned by uid {}, not by the current user (uid {euid}) or root",
                meta.uid
            ),
            format!("chown {euid} {}", root.display()),
        ));
    }
    if meta.perm & 0o022 != 0 {
        let who = if meta.perm & 0o002 != 0 {
            "world"
        } else {
            "group"
        };
        return Err(insecure(
            format!("mode {:04o} is {who}-writable", meta.perm),
            format!("chmod 700 {}", root.display()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// Both resolvers refuse a symlink at every position of a path (a parent, the last
    /// component) with `ELOOP` or `ENOTDIR` and never open what it points at, and
    /// both open the plain path: the `O_NOFOLLOW` fallback checked at the level of the
    /// resolver itself, apart from the store-level tests.
    #[test]
    fn both_resolvers_refuse_a_symlink_at_any_component() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        std::fs::create_dir_all(base.join("real/dir")).unwrap();
        std::fs::write(base.join("real/dir/file"), b"ok").unwrap();
        std::fs::create_dir(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/file"), b"canary").unwrap();
        std::os::unix::fs::symlink(base.join("outside"), base.join("real/link_dir")).unwrap();
        std::os::unix::fs::symlink(base.join("outside/file"), base.join("real/dir/link_file"))
            .unwrap();
        let dir = std::fs::File::open(base.join("real")).unwrap();
        let ro = OFlag::O_RDONLY;
        for resolver in [Resolver::Openat2, Resolver::NoFollow] {
            if resolver == Resolver::Openat2 && Resolver::probe(dir.as_fd()) != Resolver::Openat2 {
                continue; // this kernel refuses openat2: the fallback is all there is
            }
            let open = |components: &[&str]| {
                let c: Vec<&OsStr> = components.iter().map(OsStr::new).collect();
                resolver.open(dir.as_fd(), &c, ro, Mode::empty())
            };
            let fd = open(&["dir", "file"]).unwrap();
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut got).unwrap();
            assert_eq!(got, b"ok", "{resolver:?}");
            for (path, what) in [
                (&["link_dir", "file"][..], "a symlinked parent"),
                (&["dir", "link_file"][..], "a symlinked last component"),
                (&["link_dir"][..], "a lone symlink"),
            ] {
                let e = open(path).unwrap_err();
                assert!(
                    matches!(e, Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV),
                    "{resolver:?}: {what} gave {e}"
                );
            }
        }
        assert_eq!(std::fs::read(base.join("outside/file")).unwrap(), b"canary");
    }
}
