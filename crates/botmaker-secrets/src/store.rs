//! The per-bot secrets store.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use botmaker_domain::{BotId, SecretName};
use nix::errno::Errno;
use nix::fcntl::{OFlag, renameat};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fsync, unlinkat};
use secrecy::SecretString;

use crate::fsutil::{
    Kind, Meta, QUARANTINE_DIR, Resolver, TEMP_PREFIX, TRASH_PREFIX, is_stale, is_stale_trash,
    list_names, read_bounded, read_exact_size, remove_tree, unique_name,
};
use crate::{Result, SecretValue, SecretsError, trim_trailing_newline};

/// The mode of the root and of every bot directory.
pub(crate) const DIR_MODE: u32 = 0o700;
/// The mode of every secret file.
pub(crate) const FILE_MODE: u32 = 0o600;

/// A user and group that files and directories are handed to with `fchown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
}

impl Owner {
    /// The effective user and group of this process.
    pub fn current() -> Self {
        Self {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }
}

/// How a [`SecretsStore`] is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretsOptions {
    /// The largest value accepted by writes and reads, in bytes (default 64 KiB).
    pub max_secret_size: usize,
    /// Who owns the bot directories and secret files the store creates (`fchown`).
    /// `None` (the default): the current effective user, and no `fchown` is done.
    /// Reads then expect files owned by this user; with `None`, by the effective user.
    pub owner: Option<Owner>,
}

impl SecretsOptions {
    /// The default [`max_secret_size`](Self::max_secret_size): 64 KiB.
    pub const DEFAULT_MAX_SECRET_SIZE: usize = 64 * 1024;
}

impl Default for SecretsOptions {
    fn default() -> Self {
        Self {
            max_secret_size: Self::DEFAULT_MAX_SECRET_SIZE,
            owner: None,
        }
    }
}

/// What [`SecretsStore::list`] tells about a secret: metadata only, never the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretMeta {
    /// The secret's name.
    pub name: SecretName,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub modified: SystemTime,
    /// Its permission bits (`0o600` normally).
    pub mode: u32,
}

/// Per-bot secrets in a directory: `<root>/<bot id>/<secret name>`, files `0600` in
/// directories `0700`, written atomically and durably, never following a symlink.
///
/// The root is opened once and held as a directory descriptor; every later operation
/// is relative to it (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, or
/// `O_NOFOLLOW` on each component where the kernel lacks `openat2`). The components
/// of the root path *above* its final one are trusted, as OpenSSH trusts the parents
/// of `~/.ssh`; the final component must not be a symlink.
///
/// The store is `Send + Sync`: share one behind an `Arc`. Writers of the same secret
/// race benignly (the last rename wins, every reader sees one whole value).
#[derive(Debug)]
pub struct SecretsStore {
    pub(crate) root: OwnedFd,
    pub(crate) root_path: PathBuf,
    pub(crate) max: usize,
    pub(crate) owner: Option<Owner>,
    pub(crate) euid: u32,
    pub(crate) expected_uid: u32,
    pub(crate) resolver: Resolver,
    swept: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DirUse {
    /// Refuse a group- or world-writable directory.
    Read,
    /// As `Read`, through an `O_PATH` descriptor: only to `fstat` it and open a file
    /// beneath it (a secret being read).
    Lookup,
    /// Tighten the directory to 0700 (it is owned by the expected owner).
    Write,
}

impl SecretsStore {
    /// Opens (creating it `0700` if missing) the store at `root` with default options.
    pub fn open(root: &Path) -> Result<Self> {
        Self::open_with(root, SecretsOptions::default())
    }

    /// Opens (creating it `0700` if missing) the store at `root`.
    ///
    /// The root must be a directory (not a symlink) owned by the effective user (or by
    /// root, or by the configured [`Owner`]) and not writable by group or others;
    /// otherwise [`SecretsError::InsecureRoot`] says how to fix it. Temporary files
    /// of interrupted writes and leftovers of interrupted bot deletions are removed
    /// ([`swept`](Self::swept) tells how many).
    pub fn open_with(root: &Path, options: SecretsOptions) -> Result<Self> {
        Self::open_inner(root, options, None)
    }

    pub(crate) fn open_inner(
        root: &Path,
        options: SecretsOptions,
        force: Option<Resolver>,
    ) -> Result<Self> {
        let euid = nix::unistd::geteuid().as_raw();
        let created = create_root(root)?;
        let fd = nix::fcntl::open(
            root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| root_open_error(root, e))?;
        let io = |op, e| SecretsError::io(op, root.to_path_buf(), e);
        let mut meta = Meta::of_fd(fd.as_fd()).map_err(|e| io("stat", e))?;
        if created {
            // Make the new root's own directory entry durable (best effort: the
            // parent may not be ours to open).
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty())
                && let Ok(pfd) = nix::fcntl::open(
                    parent,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
            {
                let _ = fsync(pfd.as_fd());
            }
        }
        if created && meta.uid == euid {
            fchmod(&fd, Mode::from_bits_truncate(DIR_MODE)).map_err(|e| io("chmod", e))?;
            if let Some(o) = options.owner {
                chown_fd(fd.as_fd(), o).map_err(|e| io("chown", e))?;
            }
            meta = Meta::of_fd(fd.as_fd()).map_err(|e| io("stat", e))?;
        }
        check_root(root, &meta, euid, options.owner)?;
        let resolver = force.unwrap_or_else(|| Resolver::probe(fd.as_fd()));
        let mut store = Self {
            root: fd,
            root_path: root.to_path_buf(),
            max: options.max_secret_size,
            owner: options.owner,
            euid,
            expected_uid: options.owner.map_or(euid, |o| o.uid),
            resolver,
            swept: 0,
        };
        store.swept = store.sweep();
        Ok(store)
    }

    /// How many leftover temporary files and trash directories were removed when the
    /// store was opened.
    pub fn swept(&self) -> usize {
        self.swept
    }

    /// The root path the store was opened at (for messages; I/O uses the descriptor).
    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    /// The size cap for values, in bytes.
    pub fn max_secret_size(&self) -> usize {
        self.max
    }

    /// Whether the kernel's `openat2` (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`) is in
    /// use; `false` means the per-component `O_NOFOLLOW` fallback.
    pub fn uses_openat2(&self) -> bool {
        self.resolver == Resolver::Openat2
    }

    /// Creates the bot's directory (`0700`) if it is missing; `true` if it was made.
    /// A new directory is `fsync`ed into the root.
    pub fn create_bot(&self, bot: &BotId) -> Result<bool> {
        self.bot_dir_for_write(bot).map(|(_, created)| created)
    }

    /// Stores `value` as the bot's secret `name`, exactly as given (no trimming),
    /// creating the bot's directory if needed.
    ///
    /// Atomic and durable: the bytes go to a new `0600` temporary file in the bot's
    /// directory, which is `fsync`ed, renamed over the secret, and the directory is
    /// `fsync`ed. A reader sees the whole old value or the whole new one; after a crash
    /// the secret holds one of the two. A value over the size cap is refused
    /// ([`SecretsError::TooLarge`]) and nothing changes. If the secret's name is taken
    /// by something other than a regular file (a symlink, a directory, a FIFO), the
    /// write is refused.
    pub fn write(&self, bot: &BotId, name: &SecretName, value: &[u8]) -> Result<()> {
        if value.len() > self.max {
            return Err(SecretsError::TooLarge {
                bot: *bot,
                name: name.clone(),
                size: value.len() as u64,
                max: self.max,
            });
        }
        let (dir, _) = self.bot_dir_for_write(bot)?;
        // Paths are for error messages only: made when an error needs one.
        let path = || self.display_path(bot, Some(name));
        let target = OsStr::new(name.as_str());
        match Meta::of_entry(dir.as_fd(), target) {
            Ok(m) if m.kind == Kind::Symlink => return Err(SecretsError::Symlink { path: path() }),
            Ok(m) if m.kind != Kind::File => {
                return Err(SecretsError::NotRegularFile {
                    path: path(),
                    kind: m.kind.describe(),
                });
            }
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(SecretsError::io("stat", path(), e)),
        }
        let (mut file, tmp) = self.create_temp(dir.as_fd(), bot)?;
        let tmp_name = OsStr::new(tmp.as_str());
        let result = (|| {
            let io = |op, e| SecretsError::io(op, path(), e);
            fchmod(&file, Mode::from_bits_truncate(FILE_MODE)).map_err(|e| io("chmod", e))?;
            if let Some(o) = self.owner {
                chown_fd(file.as_fd(), o).map_err(|e| io("chown", e))?;
            }
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
            renameat(dir.as_fd(), tmp_name, dir.as_fd(), target).map_err(|e| match e {
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
        fsync(dir.as_fd()).map_err(|e| SecretsError::io("fsync", self.display_path(bot, None), e))
    }

    /// Stores text: exactly one trailing line ending (`"\n"` or `"\r\n"`) is removed
    /// first ([`trim_trailing_newline`]), so `echo key | …` and `echo -n key | …`
    /// store the same value. Use [`write`](Self::write) to store bytes exactly.
    pub fn write_str(&self, bot: &BotId, name: &SecretName, value: &str) -> Result<()> {
        self.write(bot, name, trim_trailing_newline(value.as_bytes()))
    }

    /// Reads the bot's secret `name`.
    ///
    /// The file is opened without following symlinks and without blocking (a FIFO
    /// cannot hang the reader), then checked with `fstat` before a byte is read: a
    /// regular file, owned by the expected owner, no group or other permission bits,
    /// one hard link, not over the size cap. The bytes go straight into a zeroizing
    /// buffer.
    pub fn read(&self, bot: &BotId, name: &SecretName) -> Result<SecretValue> {
        // Paths are for error messages only: made when an error needs one.
        let path = || self.display_path(bot, Some(name));
        let not_found = || SecretsError::NotFound {
            bot: *bot,
            name: name.clone(),
            path: path(),
        };
        let dir = match self.open_bot_dir(bot, DirUse::Lookup) {
            Err(SecretsError::BotNotFound { .. }) => return Err(not_found()),
            other => other?,
        };
        let target = OsStr::new(name.as_str());
        let fd = match self.resolver.open(
            dir.as_fd(),
            &[target],
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Err(not_found()),
            Err(e) => return Err(classify_open_error(dir.as_fd(), target, path(), "open", e)),
        };
        let meta = Meta::of_fd(fd.as_fd()).map_err(|e| SecretsError::io("stat", path(), e))?;
        self.check_secret_file(&meta, &path, bot, name)?;
        let mut file = File::from(fd);
        let hint = usize::try_from(meta.size).unwrap_or(self.max);
        // Straight into the value's own allocation (`check_secret_file` bounded the
        // size); a file that changed size since its fstat is read again below, from
        // its start.
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
        match read_bounded(&mut file, hint, self.max) {
            Ok(Ok(buf)) => Ok(SecretValue::from_bytes(&buf)),
            Ok(Err(size)) => Err(SecretsError::TooLarge {
                bot: *bot,
                name: name.clone(),
                size,
                max: self.max,
            }),
            Err(source) => Err(SecretsError::Io {
                op: "read",
                path: path(),
                source,
            }),
        }
    }

    /// Reads the bot's secret `name` as UTF-8 text ([`SecretsError::NotUtf8`] names the
    /// bot and secret, never the content). The text is returned as stored.
    pub fn read_string(&self, bot: &BotId, name: &SecretName) -> Result<SecretString> {
        let value = self.read(bot, name)?;
        match value.expose_str() {
            Some(s) => Ok(SecretString::from(s)),
            None => Err(SecretsError::NotUtf8 {
                bot: *bot,
                name: name.clone(),
            }),
        }
    }

    /// The bot's secrets, sorted by name: metadata only. Entries whose names are not
    /// valid [`SecretName`]s, temporary files, and anything that is not a regular
    /// file are left out ([`audit`](Self::audit) reports them). A bot without a
    /// directory has no secrets.
    pub fn list(&self, bot: &BotId) -> Result<Vec<SecretMeta>> {
        let dir = match self.open_bot_dir(bot, DirUse::Read) {
            Err(SecretsError::BotNotFound { .. }) => return Ok(Vec::new()),
            other => other?,
        };
        let names = list_names(dir.as_fd())
            .map_err(|e| SecretsError::io("list", self.display_path(bot, None), e))?;
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
                        self.display_path(bot, Some(&name)),
                        e,
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Removes the bot's secret `name` (`unlinkat`, then `fsync` of the directory).
    /// A symlink or anything else that is not a regular file under that name is
    /// refused, not removed.
    pub fn remove(&self, bot: &BotId, name: &SecretName) -> Result<()> {
        let path = self.display_path(bot, Some(name));
        let not_found = || SecretsError::NotFound {
            bot: *bot,
            name: name.clone(),
            path: path.clone(),
        };
        let dir = match self.open_bot_dir(bot, DirUse::Read) {
            Err(SecretsError::BotNotFound { .. }) => return Err(not_found()),
            other => other?,
        };
        let target = OsStr::new(name.as_str());
        match Meta::of_entry(dir.as_fd(), target) {
            Ok(m) if m.kind == Kind::File => {}
            Ok(m) if m.kind == Kind::Symlink => return Err(SecretsError::Symlink { path }),
            Ok(m) => {
                return Err(SecretsError::NotRegularFile {
                    path,
                    kind: m.kind.describe(),
                });
            }
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
        fsync(dir.as_fd()).map_err(|e| SecretsError::io("fsync", self.display_path(bot, None), e))
    }

    /// Deletes the bot's directory and every secret in it.
    ///
    /// The directory is first renamed to a trash name in the root and the root is
    /// `fsync`ed, so the bot is gone at once even if removal is interrupted (the next
    /// [`open`](Self::open) finishes it). Removal is descriptor-relative and never
    /// follows a symlink: a link inside is removed as a link.
    pub fn delete_bot(&self, bot: &BotId) -> Result<()> {
        let path = self.display_path(bot, None);
        let before = {
            let dir = self.open_bot_dir_unchecked(bot)?;
            Meta::of_fd(dir.as_fd()).map_err(|e| SecretsError::io("stat", path.clone(), e))?
        };
        let id = bot.to_string();
        let trash = unique_name(&format!("{TRASH_PREFIX}{id}-"));
        let trash = OsStr::new(trash.as_str());
        match renameat(self.root.as_fd(), id.as_str(), self.root.as_fd(), trash) {
            Ok(()) => {}
            Err(Errno::ENOENT) => return Err(SecretsError::BotNotFound { bot: *bot, path }),
            Err(e) => return Err(SecretsError::io("rename", path, e)),
        }
        self.fsync_root()?;
        let same = Meta::of_entry(self.root.as_fd(), trash)
            .is_ok_and(|after| after.dev == before.dev && after.ino == before.ino);
        remove_tree(self.resolver, self.root.as_fd(), trash, 0)
            .map_err(|e| SecretsError::io("remove", path.clone(), e))?;
        self.fsync_root()?;
        if same {
            Ok(())
        } else {
            // Something else had been swapped in at the bot's name; what we removed was
            // that entry (as a link, if it was one), inside the store.
            Err(SecretsError::Raced { path })
        }
    }

    /// The bots that have a directory in the store, sorted. Entries whose names are
    /// not canonical bot ids are left out ([`audit`](Self::audit) reports them).
    pub fn bots(&self) -> Result<Vec<BotId>> {
        let names = list_names(self.root.as_fd())
            .map_err(|e| SecretsError::io("list", self.root_path.clone(), e))?;
        let mut out = Vec::new();
        for raw in names {
            let Some(id) = canonical_bot_id(&raw) else {
                continue;
            };
            if Meta::of_entry(self.root.as_fd(), &raw).is_ok_and(|m| m.kind == Kind::Dir) {
                out.push(id);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Which of the required secrets ([`SecretName::REQUIRED`]) the bot lacks, in
    /// that order.
    pub fn missing_required(&self, bot: &BotId) -> Result<Vec<SecretName>> {
        let present = self.list(bot)?;
        Ok(SecretName::required()
            .into_iter()
            .filter(|r| !present.iter().any(|m| &m.name == r))
            .collect())
    }

    /// Moves the bot's directory (whatever is at its name, without following it) into
    /// `<root>/.quarantine/<id>-<unix seconds>.<nanoseconds>`, deleting nothing, and
    /// returns that path relative to the root. For orphan directories found by a
    /// doctor: the operator decides later what to keep.
    pub fn quarantine_bot(&self, bot: &BotId) -> Result<String> {
        let id = bot.to_string();
        let path = self.display_path(bot, None);
        match Meta::of_entry(self.root.as_fd(), OsStr::new(&id)) {
            Ok(_) => {}
            Err(Errno::ENOENT) => return Err(SecretsError::BotNotFound { bot: *bot, path }),
            Err(e) => return Err(SecretsError::io("stat", path, e)),
        }
        let qpath = self.root_path.join(QUARANTINE_DIR);
        let q = OsStr::new(QUARANTINE_DIR);
        let created = match mkdirat(self.root.as_fd(), q, Mode::from_bits_truncate(DIR_MODE)) {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(e) => return Err(SecretsError::io("create", qpath, e)),
        };
        let qfd = self
            .resolver
            .open_dir(self.root.as_fd(), &[q])
            .map_err(|e| classify_open_error(self.root.as_fd(), q, qpath.clone(), "open", e))?;
        if created {
            fchmod(&qfd, Mode::from_bits_truncate(DIR_MODE))
                .map_err(|e| SecretsError::io("chmod", qpath.clone(), e))?;
            if let Some(o) = self.owner {
                chown_fd(qfd.as_fd(), o)
                    .map_err(|e| SecretsError::io("chown", qpath.clone(), e))?;
            }
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let mut dest = format!("{id}-{}.{:09}", now.as_secs(), now.subsec_nanos());
        if Meta::of_entry(qfd.as_fd(), OsStr::new(&dest)).is_ok() {
            dest = unique_name(&format!("{dest}-"));
        }
        match renameat(self.root.as_fd(), id.as_str(), qfd.as_fd(), dest.as_str()) {
            Ok(()) => {}
            Err(Errno::ENOENT) => return Err(SecretsError::BotNotFound { bot: *bot, path }),
            Err(e) => return Err(SecretsError::io("rename", path, e)),
        }
        fsync(qfd.as_fd()).map_err(|e| SecretsError::io("fsync", qpath, e))?;
        self.fsync_root()?;
        Ok(format!("{QUARANTINE_DIR}/{dest}"))
    }

    // ---- internals -------------------------------------------------------------

    pub(crate) fn display_path(&self, bot: &BotId, name: Option<&SecretName>) -> PathBuf {
        let mut p = self.root_path.join(bot.to_string());
        if let Some(n) = name {
            p.push(n.as_str());
        }
        p
    }

    fn fsync_root(&self) -> Result<()> {
        fsync(self.root.as_fd()).map_err(|e| SecretsError::io("fsync", self.root_path.clone(), e))
    }

    /// Opens the bot's directory, refusing a symlink or a non-directory, with no
    /// owner or mode checks.
    fn open_bot_dir_unchecked(&self, bot: &BotId) -> Result<OwnedFd> {
        self.open_bot_dir_fd(bot, false)
    }

    /// [`open_bot_dir_unchecked`](Self::open_bot_dir_unchecked), as an `O_PATH`
    /// descriptor when `path_only`.
    fn open_bot_dir_fd(&self, bot: &BotId, path_only: bool) -> Result<OwnedFd> {
        let mut buf = [0u8; BotId::LEN];
        let name = OsStr::new(bot.encode(&mut buf));
        let opened = if path_only {
            self.resolver.open_dir_path(self.root.as_fd(), &[name])
        } else {
            self.resolver.open_dir(self.root.as_fd(), &[name])
        };
        match opened {
            Ok(fd) => Ok(fd),
            Err(Errno::ENOENT) => Err(SecretsError::BotNotFound {
                bot: *bot,
                path: self.display_path(bot, None),
            }),
            Err(e) => Err(classify_open_error(
                self.root.as_fd(),
                name,
                self.display_path(bot, None),
                "open",
                e,
            )),
        }
    }

    fn open_bot_dir(&self, bot: &BotId, usage: DirUse) -> Result<OwnedFd> {
        let fd = self.open_bot_dir_fd(bot, usage == DirUse::Lookup)?;
        let path = || self.display_path(bot, None);
        let meta = Meta::of_fd(fd.as_fd()).map_err(|e| SecretsError::io("stat", path(), e))?;
        if meta.uid != self.expected_uid {
            return Err(SecretsError::WrongOwner {
                path: path(),
                uid: meta.uid,
                expected: self.expected_uid,
            });
        }
        match usage {
            DirUse::Write if meta.perm != DIR_MODE => {
                fchmod(&fd, Mode::from_bits_truncate(DIR_MODE))
                    .map_err(|e| SecretsError::io("chmod", path(), e))?;
            }
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

    /// The bot's directory, created (0700, owner, root fsynced) if missing.
    fn bot_dir_for_write(&self, bot: &BotId) -> Result<(OwnedFd, bool)> {
        match self.open_bot_dir(bot, DirUse::Write) {
            Err(SecretsError::BotNotFound { .. }) => {}
            other => return other.map(|fd| (fd, false)),
        }
        let id = bot.to_string();
        let name = OsStr::new(&id);
        let path = self.display_path(bot, None);
        match mkdirat(self.root.as_fd(), name, Mode::from_bits_truncate(DIR_MODE)) {
            Ok(()) => {}
            // Made by someone else since we looked.
            Err(Errno::EEXIST) => return Ok((self.open_bot_dir(bot, DirUse::Write)?, false)),
            Err(e) => return Err(SecretsError::io("create", path, e)),
        }
        let fd = self.open_bot_dir_unchecked(bot)?;
        let io = |op, e| SecretsError::io(op, path.clone(), e);
        let meta = Meta::of_fd(fd.as_fd()).map_err(|e| io("stat", e))?;
        if meta.uid != self.euid {
            return Err(SecretsError::Raced { path });
        }
        fchmod(&fd, Mode::from_bits_truncate(DIR_MODE)).map_err(|e| io("chmod", e))?;
        if let Some(o) = self.owner {
            chown_fd(fd.as_fd(), o).map_err(|e| io("chown", e))?;
        }
        self.fsync_root()?;
        Ok((fd, true))
    }

    fn create_temp(&self, dir: BorrowedFd<'_>, bot: &BotId) -> Result<(File, String)> {
        let mut last = Errno::EEXIST;
        for _ in 0..16 {
            let tmp = unique_name(TEMP_PREFIX);
            match self.resolver.open(
                dir,
                &[OsStr::new(&tmp)],
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
                Mode::from_bits_truncate(FILE_MODE),
            ) {
                Ok(fd) => return Ok((File::from(fd), tmp)),
                Err(Errno::EEXIST) => last = Errno::EEXIST,
                Err(Errno::ENOENT) => {
                    return Err(SecretsError::Raced {
                        path: self.display_path(bot, None),
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
            self.display_path(bot, None),
            last,
        ))
    }

    fn check_secret_file(
        &self,
        meta: &Meta,
        path: &dyn Fn() -> PathBuf,
        bot: &BotId,
        name: &SecretName,
    ) -> Result<()> {
        if meta.kind != Kind::File {
            return Err(SecretsError::NotRegularFile {
                path: path(),
                kind: meta.kind.describe(),
            });
        }
        if meta.uid != self.expected_uid {
            return Err(SecretsError::WrongOwner {
                path: path(),
                uid: meta.uid,
                expected: self.expected_uid,
            });
        }
        if meta.perm & 0o077 != 0 {
            return Err(SecretsError::InsecureMode {
                path: path(),
                mode: meta.perm,
                expected: FILE_MODE,
            });
        }
        if meta.nlink == 0 {
            // Removed (or replaced and removed) after we opened it.
            return Err(SecretsError::NotFound {
                bot: *bot,
                name: name.clone(),
                path: path(),
            });
        }
        if meta.nlink != 1 {
            return Err(SecretsError::HardLinked {
                path: path(),
                nlink: meta.nlink,
            });
        }
        if meta.size > self.max as u64 {
            return Err(SecretsError::TooLarge {
                bot: *bot,
                name: name.clone(),
                size: meta.size,
                max: self.max,
            });
        }
        Ok(())
    }

    /// Removes leftover trash directories and stale temporary files; best effort
    /// (anything left is reported by `audit`). Returns how many entries went.
    fn sweep(&self) -> usize {
        let Ok(names) = list_names(self.root.as_fd()) else {
            return 0;
        };
        let mut swept = 0;
        for raw in names {
            let Some(s) = raw.to_str() else { continue };
            if s.starts_with(TRASH_PREFIX) {
                // Only the trash of deletions whose process is gone: another process
                // (or store) may be deleting a bot right now.
                if is_stale_trash(s)
                    && remove_tree(self.resolver, self.root.as_fd(), &raw, 0).is_ok_and(|n| n > 0)
                {
                    swept += 1;
                }
            } else if canonical_bot_id(&raw).is_some() {
                let Ok(dir) = self
                    .resolver
                    .open_dir(self.root.as_fd(), &[raw.as_os_str()])
                else {
                    continue;
                };
                let Ok(entries) = list_names(dir.as_fd()) else {
                    continue;
                };
                let mut removed = false;
                for e in entries {
                    if e.to_str().is_some_and(|t| is_stale(t, TEMP_PREFIX))
                        && unlinkat(dir.as_fd(), e.as_os_str(), UnlinkatFlags::NoRemoveDir).is_ok()
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
            let _ = fsync(self.root.as_fd());
        }
        swept
    }
}

/// The bot id a directory name is the canonical rendering of.
pub(crate) fn canonical_bot_id(raw: &OsStr) -> Option<BotId> {
    let s = raw.to_str()?;
    let id = BotId::parse(s).ok()?;
    (id.to_string() == s).then_some(id)
}

pub(crate) fn chown_fd(fd: BorrowedFd<'_>, owner: Owner) -> nix::Result<()> {
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

/// Makes the root directory if it is missing (parents with `create_dir_all`);
/// `true` if this call made it.
fn create_root(root: &Path) -> Result<bool> {
    let mode = Mode::from_bits_truncate(DIR_MODE);
    match nix::unistd::mkdir(root, mode) {
        Ok(()) => return Ok(true),
        Err(Errno::EEXIST) => return Ok(false),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(SecretsError::io("create", root.to_path_buf(), e)),
    }
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| SecretsError::Io {
            op: "create",
            path: parent.to_path_buf(),
            source,
        })?;
    }
    match nix::unistd::mkdir(root, mode) {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST) => Ok(false),
        Err(e) => Err(SecretsError::io("create", root.to_path_buf(), e)),
    }
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

/// The StrictModes check of the root.
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

    fn both(root: &Path) -> Vec<SecretsStore> {
        vec![
            SecretsStore::open_inner(
                &root.join("a"),
                SecretsOptions::default(),
                Some(Resolver::Openat2),
            )
            .unwrap(),
            SecretsStore::open_inner(
                &root.join("b"),
                SecretsOptions::default(),
                Some(Resolver::NoFollow),
            )
            .unwrap(),
        ]
    }

    #[test]
    fn both_resolvers_write_read_and_refuse_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("ai_api_key"), b"canary").unwrap();
        for store in both(tmp.path()) {
            let bot = BotId::generate();
            let name = SecretName::parse("ai_api_key").unwrap();
            store.write(&bot, &name, b"v1").unwrap();
            assert_eq!(store.read(&bot, &name).unwrap().expose(), b"v1");

            // A symlinked secret.
            let link = store.display_path(&bot, Some(&SecretName::parse("channel_token").unwrap()));
            std::os::unix::fs::symlink(outside.join("ai_api_key"), &link).unwrap();
            let ct = SecretName::parse("channel_token").unwrap();
            assert!(matches!(
                store.read(&bot, &ct),
                Err(SecretsError::Symlink { .. })
            ));

            // A symlinked bot directory.
            let other = BotId::generate();
            std::os::unix::fs::symlink(&outside, store.display_path(&other, None)).unwrap();
            assert!(matches!(
                store.read(&other, &name),
                Err(SecretsError::Symlink { .. })
            ));
            assert!(matches!(
                store.write(&other, &name, b"x"),
                Err(SecretsError::Symlink { .. })
            ));
            assert!(matches!(
                store.list(&other),
                Err(SecretsError::Symlink { .. })
            ));
            assert!(matches!(
                store.delete_bot(&other),
                Err(SecretsError::Symlink { .. })
            ));
        }
        assert_eq!(
            std::fs::read(outside.join("ai_api_key")).unwrap(),
            b"canary"
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    }

    #[test]
    fn both_resolvers_run_the_whole_lifecycle() {
        let tmp = tempfile::tempdir().unwrap();
        for store in both(tmp.path()) {
            let bot = BotId::generate();
            let other = BotId::generate();
            let key = SecretName::parse("ai_api_key").unwrap();
            assert!(store.create_bot(&bot).unwrap());
            store.write_str(&bot, &key, "k\n").unwrap();
            store.write(&other, &key, b"o").unwrap();
            assert_eq!(store.read(&bot, &key).unwrap().expose(), b"k");
            assert_eq!(store.list(&bot).unwrap().len(), 1);
            assert_eq!(store.missing_required(&bot).unwrap().len(), 2);
            let mut bots = vec![bot, other];
            bots.sort();
            assert_eq!(store.bots().unwrap(), bots);
            std::fs::write(store.display_path(&bot, None).join(".tmp-x"), b"").unwrap();
            std::fs::create_dir(store.root_path().join(".trash-y")).unwrap();
            let reopened = SecretsStore::open_inner(
                store.root_path(),
                SecretsOptions::default(),
                Some(store.resolver),
            )
            .unwrap();
            assert_eq!(reopened.swept(), 2);
            store.remove(&bot, &key).unwrap();
            assert!(matches!(
                store.remove(&bot, &key),
                Err(SecretsError::NotFound { .. })
            ));
            store.delete_bot(&bot).unwrap();
            assert!(matches!(
                store.delete_bot(&bot),
                Err(SecretsError::BotNotFound { .. })
            ));
            assert!(
                store
                    .quarantine_bot(&other)
                    .unwrap()
                    .starts_with(".quarantine/")
            );
            assert!(store.audit().unwrap().is_clean());
        }
    }

    #[test]
    fn store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SecretsStore>();
    }

    #[test]
    fn probe_picks_openat2_on_this_kernel_or_falls_back() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SecretsStore::open(tmp.path()).unwrap();
        // Either is acceptable; the call must not fail.
        let _ = store.uses_openat2();
    }
}
