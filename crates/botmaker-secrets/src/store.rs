//! The store's public handle, [`SecretsStore`], and its options. Each operation is a
//! thin call into the module that does that job: [`root`](crate::root) (opening and
//! StrictModes), [`bot_dir`](crate::bot_dir) (bot directory lifecycle),
//! [`secret_file`](crate::secret_file) (the file policy and secret file I/O) and
//! [`audit`](crate::audit).

use std::path::Path;
use std::time::SystemTime;

use botmaker_domain::{BotId, SecretName, SecretsRootId, observe, op_span};
use secrecy::SecretString;
use tracing::Span;

use crate::bot_dir;
use crate::lock::{LockMode, RootLock};
use crate::root::{Resolver, Root};
use crate::secret_file::{self, FilePolicy, Target};
use crate::{AuditReport, Result, SecretValue, SecretsError, trim_trailing_newline};

/// The `backend` field of this crate's spans (`botmaker_domain::observe`).
const BACKEND: &str = "fs";

/// Runs one operation in its span ([`observe::run`]); an entry refused as unsafe (a
/// symlink, a FIFO, a bad mode or owner, a hard link, an escape) is also a `WARN`
/// event: someone may be attacking the store. The error names paths, never a value.
pub(crate) fn traced<T>(span: Span, f: impl FnOnce() -> Result<T>) -> Result<T> {
    observe::run(span, || {
        let result = f();
        if let Err(
            e @ (SecretsError::Symlink { .. }
            | SecretsError::NotRegularFile { .. }
            | SecretsError::NotADirectory { .. }
            | SecretsError::InsecureMode { .. }
            | SecretsError::WrongOwner { .. }
            | SecretsError::HardLinked { .. }
            | SecretsError::InsecureRoot { .. }
            | SecretsError::Escapes { .. }),
        ) = &result
        {
            tracing::warn!(error = %e, "refused an unsafe entry in the secrets store");
        }
        result
    })
}

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
    /// Its permission bits (`0o600` normally; `0o400` is also accepted).
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
    root: Root,
    root_id: SecretsRootId,
    policy: FilePolicy,
    swept: usize,
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
    ///
    /// The root's identity ([`root_id`](Self::root_id)) is read from `<root>/.root-id`,
    /// which is made (`0600`, atomically and durably) when missing; concurrent first
    /// opens agree on one id. An id file that is not a regular `0600` file of the
    /// expected owner, or does not hold one id and a newline, fails the open with an
    /// error naming it ([`SecretsError::InvalidRootId`], [`SecretsError::Symlink`],
    /// [`SecretsError::InsecureMode`], …) and is left as it is.
    pub fn open_with(root: &Path, options: SecretsOptions) -> Result<Self> {
        Self::open_inner(root, options, None)
    }

    /// [`open_with`](Self::open_with), with the resolver chosen by the caller instead
    /// of probed (tests run both).
    pub(crate) fn open_inner(
        root: &Path,
        options: SecretsOptions,
        force: Option<Resolver>,
    ) -> Result<Self> {
        traced(op_span!("open", BACKEND), || {
            let root = Root::open(root, options.owner, force)?;
            let policy = FilePolicy::new(root.expected_uid(), options.max_secret_size);
            let swept = bot_dir::sweep(&root);
            let root_id = crate::root_id::load_or_create(&root)?;
            if swept > 0 {
                tracing::info!(
                    root = %root.path().display(),
                    swept,
                    "swept leftovers of interrupted writes and deletions"
                );
            }
            Ok(Self {
                root,
                root_id,
                policy,
                swept,
            })
        })
    }

    /// How many leftover temporary files and trash directories were removed when the
    /// store was opened.
    pub fn swept(&self) -> usize {
        self.swept
    }

    /// The root path the store was opened at (for messages; I/O uses the descriptor).
    pub fn root_path(&self) -> &Path {
        self.root.path()
    }

    /// This root's identity, read from (or, at the first open, written to)
    /// `<root>/.root-id`. The registry records it for every bot whose secrets are
    /// here, so hosts that share a registry know which of them holds a bot's secrets.
    pub fn root_id(&self) -> SecretsRootId {
        self.root_id
    }

    /// The size cap for values, in bytes.
    pub fn max_secret_size(&self) -> usize {
        self.policy.max()
    }

    /// Whether the kernel's `openat2` (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`) is in
    /// use; `false` means the per-component `O_NOFOLLOW` fallback.
    pub fn uses_openat2(&self) -> bool {
        self.root.resolver() == Resolver::Openat2
    }

    /// Creates the bot's directory (`0700`) if it is missing; `true` if it was made.
    /// A new directory is `fsync`ed into the root.
    pub fn create_bot(&self, bot: &BotId) -> Result<bool> {
        traced(op_span!("create_bot", BACKEND, bot_id = bot), || {
            bot_dir::open_or_create(&self.root, bot).map(|(_, created)| created)
        })
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
        traced(op_span!("write", BACKEND, bot_id = bot), || {
            secret_file::write(
                &self.root,
                self.policy,
                bot,
                name,
                value,
                Target::CreateOrReplace,
            )
        })
    }

    /// Replaces the value of the bot's existing secret `name`: the same atomic,
    /// durable write as [`write`](Self::write), refused with
    /// [`SecretsError::NotFound`] when the secret (or the bot's directory) does not
    /// exist yet, and then nothing is written or created. For rotation, where a
    /// missing secret is a mistake rather than a first write.
    ///
    /// The secret is looked for in the directory descriptor the new value is then
    /// renamed into, so the check and the write are about the same directory. A
    /// [`remove`](Self::remove) of the secret that runs between the check and the
    /// rename does not stop the rename: the secret then holds the new value.
    pub fn replace(&self, bot: &BotId, name: &SecretName, value: &[u8]) -> Result<()> {
        traced(op_span!("replace", BACKEND, bot_id = bot), || {
            secret_file::write(
                &self.root,
                self.policy,
                bot,
                name,
                value,
                Target::ReplaceOnly,
            )
        })
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
    /// regular file, owned by the expected owner, mode `0600` or `0400` (anything else
    /// is [`SecretsError::InsecureMode`]), one hard link, not over the size cap. The
    /// bytes go straight into a zeroizing buffer.
    pub fn read(&self, bot: &BotId, name: &SecretName) -> Result<SecretValue> {
        traced(op_span!("read", BACKEND, bot_id = bot), || {
            secret_file::read(&self.root, self.policy, bot, name)
        })
    }

    /// Reads several secrets of one bot in one call, in the order of `names`: the bot's
    /// directory is opened and checked once, and every file gets exactly the checks of
    /// [`read`](Self::read). What a bot's runtime calls at start to load its
    /// credentials. A secret that is missing or refused ends the call with the error
    /// [`read`](Self::read) would give for it (for a missing bot: `NotFound` of the
    /// first name); no value is returned then.
    pub fn read_many(&self, bot: &BotId, names: &[SecretName]) -> Result<Vec<SecretValue>> {
        traced(op_span!("read_many", BACKEND, bot_id = bot), || {
            secret_file::read_many(&self.root, self.policy, bot, names)
        })
    }

    /// Reads every secret of one bot, sorted by name, in one call: the directory is
    /// opened once, listed, and every secret in it read with the checks of
    /// [`read`](Self::read). Temporary files and names that are not valid secret names
    /// are left out; anything else under a secret's name that `read` would refuse (a
    /// symlink, a FIFO, a directory, a bad mode, a second link) ends the call with
    /// that error. A bot without a directory has none.
    pub fn read_all(&self, bot: &BotId) -> Result<Vec<(SecretName, SecretValue)>> {
        traced(op_span!("read_all", BACKEND, bot_id = bot), || {
            secret_file::read_all(&self.root, self.policy, bot)
        })
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
        traced(op_span!("list", BACKEND, bot_id = bot), || {
            secret_file::list(&self.root, bot)
        })
    }

    /// Removes the bot's secret `name` (`unlinkat`, then `fsync` of the directory).
    /// A symlink or anything else that is not a regular file under that name is
    /// refused, not removed.
    pub fn remove(&self, bot: &BotId, name: &SecretName) -> Result<()> {
        traced(op_span!("remove", BACKEND, bot_id = bot), || {
            secret_file::remove(&self.root, bot, name)
        })
    }

    /// Deletes the bot's directory and every secret in it.
    ///
    /// The directory is first renamed to a trash name in the root and the root is
    /// `fsync`ed, so the bot is gone at once even if removal is interrupted (the next
    /// [`open`](Self::open) finishes it). Removal is descriptor-relative and never
    /// follows a symlink: a link inside is removed as a link.
    pub fn delete_bot(&self, bot: &BotId) -> Result<()> {
        traced(op_span!("delete_bot", BACKEND, bot_id = bot), || {
            bot_dir::delete(&self.root, bot)
        })
    }

    /// The bots that have a directory in the store, sorted. Entries whose names are
    /// not canonical bot ids are left out ([`audit`](Self::audit) reports them).
    pub fn bots(&self) -> Result<Vec<BotId>> {
        traced(op_span!("bots", BACKEND), || bot_dir::bots(&self.root))
    }

    /// Which of `required` the bot lacks, in the given order: a name counts as present
    /// when [`list`](Self::list) shows it (a regular file under that name). Which
    /// secrets a bot requires is the caller's rule (it may depend on the bot's
    /// provider); this only compares names. Errors are those of `list`.
    pub fn missing(&self, bot: &BotId, required: &[SecretName]) -> Result<Vec<SecretName>> {
        let present = self.list(bot)?;
        Ok(required
            .iter()
            .filter(|r| !present.iter().any(|m| &m.name == *r))
            .cloned()
            .collect())
    }

    /// Which of the fixed list [`SecretName::required`] (`ai_api_key`,
    /// `channel_token`, `channel_config`) the bot lacks, in that order:
    /// [`missing`](Self::missing) over that list, for callers that do not know the
    /// bot. A caller that has the bot passes the bot's own required secrets to
    /// `missing` instead.
    pub fn missing_required(&self, bot: &BotId) -> Result<Vec<SecretName>> {
        self.missing(bot, &SecretName::required())
    }

    /// Moves the bot's directory (whatever is at its name, without following it) into
    /// `<root>/.quarantine/<id>-<unix seconds>.<nanoseconds>`, deleting nothing, and
    /// returns that path relative to the root. For orphan directories found by a
    /// doctor: the operator decides later what to keep.
    pub fn quarantine_bot(&self, bot: &BotId) -> Result<String> {
        traced(op_span!("quarantine_bot", BACKEND, bot_id = bot), || {
            bot_dir::quarantine(&self.root, bot)
        })
    }

    /// Walks the store and reports drift: modes, owners, symlinks, special files,
    /// hard links, oversized files, unexpected names, leftovers. Changes nothing.
    /// Secret files are judged by the same policy as [`read`](Self::read), so a file
    /// the audit does not report is one `read` accepts (`0600` or `0400`), and the
    /// reverse.
    pub fn audit(&self) -> Result<AuditReport> {
        traced(op_span!("audit", BACKEND), || {
            crate::audit::walk(&self.root, self.policy, false)
        })
    }

    /// Like [`audit`](Self::audit), and fixes what is safe to fix: permission bits
    /// (with `fchmod` on a descriptor opened without following links, after `fstat`
    /// shows a directory, or a regular file with one link, owned by the expected
    /// owner; a secret file's mode becomes `0600`) and leftover temporary and trash
    /// entries. Symlinks, owners, hard links and unexpected entries are only reported.
    pub fn repair(&self) -> Result<AuditReport> {
        traced(op_span!("repair", BACKEND), || {
            crate::audit::walk(&self.root, self.policy, true)
        })
    }

    /// Takes the advisory lock on the root (`flock` on `<root>/.lock`, created `0600`
    /// when missing), waiting for conflicting holders; it is released when the
    /// returned guard is dropped. Operations that change both the registry and this
    /// store hold it [`Shared`](LockMode::Shared), a repair that compares them and moves
    /// directories holds it [`Exclusive`](LockMode::Exclusive), so the repair never
    /// sees a bot half created or half deleted. Reads and writes of a secret do not
    /// take it. Hold it for one operation, never across user input.
    pub fn lock(&self, mode: LockMode) -> Result<RootLock> {
        traced(op_span!("lock", BACKEND), || {
            crate::lock::acquire(&self.root, mode)
        })
    }

    /// Opens the bot's directory to copy every secret in it (a backup):
    /// [`BotExport`](crate::BotExport) lists the secrets, reads each one from that
    /// directory with the checks of [`read`](Self::read), and tells whether the
    /// directory is still the bot's afterwards. `Ok(None)` when the bot has no
    /// directory. Takes no lock.
    pub fn export_bot(&self, bot: &BotId) -> Result<Option<crate::BotExport<'_>>> {
        crate::export::open(&self.root, self.policy, bot)
    }

    /// `<root>/<bot>[/<name>]`, for messages and tests.
    #[cfg(test)]
    fn display_path(&self, bot: &BotId, name: Option<&SecretName>) -> std::path::PathBuf {
        self.root.display_path(bot, name)
    }
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
                Some(store.root.resolver()),
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
    fn missing_keeps_the_given_order_and_missing_required_is_the_fixed_list() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SecretsStore::open(tmp.path()).unwrap();
        let bot = BotId::generate();
        let n = |s: &str| SecretName::parse(s).unwrap();
        // No directory yet: everything is missing, nothing is created.
        let wanted = [n("channel_config"), n("ai_api_key"), n("extra")];
        assert_eq!(store.missing(&bot, &wanted).unwrap(), wanted);
        assert!(store.bots().unwrap().is_empty());
        store.write(&bot, &n("ai_api_key"), b"k").unwrap();
        store.write(&bot, &n("extra"), b"e").unwrap();
        assert_eq!(store.missing(&bot, &wanted).unwrap(), [n("channel_config")]);
        assert!(store.missing(&bot, &[]).unwrap().is_empty());
        // A name that is not a regular file does not count as present.
        std::fs::create_dir(store.display_path(&bot, Some(&n("channel_token")))).unwrap();
        assert_eq!(
            store.missing_required(&bot).unwrap(),
            store.missing(&bot, &SecretName::required()).unwrap()
        );
        assert_eq!(
            store.missing_required(&bot).unwrap(),
            [n("channel_token"), n("channel_config")]
        );
    }

    #[test]
    fn store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SecretsStore>();
    }

    /// The kernel's own answer, asked directly (not through the store's probe):
    /// `openat2` of a path descriptor of `/` with `RESOLVE_NO_SYMLINKS` (Linux 5.6 and
    /// later; a seccomp filter may answer `ENOSYS` or `EPERM` instead).
    fn kernel_openat2() -> nix::Result<()> {
        let how = nix::fcntl::OpenHow::new()
            .flags(nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC)
            .resolve(nix::fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS);
        nix::fcntl::openat2(nix::fcntl::AT_FDCWD, "/", how).map(drop)
    }

    /// The kernel release's major and minor numbers.
    fn kernel_version() -> (u32, u32) {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }

    #[test]
    fn probe_picks_openat2_on_this_kernel_or_falls_back() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SecretsStore::open(tmp.path()).unwrap();
        let direct = kernel_openat2();
        let version = kernel_version();
        assert_eq!(
            store.uses_openat2(),
            direct.is_ok(),
            "the store's probe disagrees with a direct openat2 call ({direct:?}) on kernel \
             {version:?}"
        );
        match direct {
            // Linux 5.6 brought openat2: an older kernel cannot have it.
            Ok(()) => assert!(version >= (5, 6), "openat2 works on kernel {version:?}"),
            // Without it the store falls back, which only ENOSYS (old kernel) or EPERM
            // (a seccomp filter) explain.
            Err(e) => assert!(
                matches!(e, nix::errno::Errno::ENOSYS | nix::errno::Errno::EPERM),
                "openat2 failed on kernel {version:?} with {e}"
            ),
        }
    }
}
