//! Online backup and restore of a whole installation: [`backup`], [`verify_backup`],
//! [`restore`].
//!
//! A backup folder holds `registry.db` (a copy made with SQLite's online backup API),
//! `secrets/<bot id>/<secret name>` (files `0600`, folders `0700`, the folder itself
//! `0700`) and, written last, `manifest.json` (format, schema version, creation time,
//! every folder, and every file's size and SHA-256; never a value). A folder without
//! a manifest is an incomplete backup.
//!
//! # Consistency
//! The registry is copied under the secrets root's lock held **exclusive**, as
//! `doctor --fix` holds it, so no create (directory, then row) or delete (row, then
//! directory) is half done; the lock is held only for that copy (milliseconds), not
//! for the secrets. Each bot of the copy then has its secrets copied, without the
//! lock, from one descriptor of its directory, each value one completed write (writes
//! are atomic renames). A bot deleted meanwhile (its directory renamed to the trash,
//! or gone) is left out: its row is deleted from the copy and its copied folder
//! removed. Bots created after the copy are in neither. So every bot in the snapshot
//! has exactly its secrets, and no other folder is there.

mod manifest;
mod restore;
mod verify;

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use botmaker_domain::{BotId, BotRepository as _, RepoError, Timestamp};
use botmaker_secrets::{LockMode, SecretsStore};
use botmaker_sqlite::{SqliteStore, StoreOptions};

use crate::{Config, Error, Result};
use manifest::{FileEntry, Manifest};
pub use manifest::{MANIFEST_FILE, REGISTRY_FILE, SECRETS_DIR};
pub use restore::{RestoreReport, restore};
pub use verify::{VerifyReport, verify_backup};

/// The version of the backup format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What a backup, verification or restore is doing, for [`Progress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Copying the bots' secrets (`done` of `total` bots).
    Secrets,
    /// Checking files against the manifest (`done` of `total` files).
    Verify,
    /// Writing the bots' secrets into the installation (`done` of `total` bots).
    Restore,
}

/// Progress of a long operation, passed to the caller's callback after each bot or
/// file. Counts only: never a name of a secret, never a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What is being done.
    pub phase: Phase,
    /// How many are done.
    pub done: usize,
    /// How many there are.
    pub total: usize,
}

/// Why a backup, a verification or a restore was refused or failed (the stores'
/// own errors are [`Error::Store`] and [`Error::Secrets`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The backup folder exists and is not an empty folder; nothing was written.
    #[error("backup folder {path} is not empty (or not a folder); choose a new or empty one", path = path.display())]
    NotEmpty {
        /// The folder.
        path: PathBuf,
    },
    /// The folder has no manifest: the backup was interrupted before it finished.
    #[error("{path} is an incomplete backup: it has no {MANIFEST_FILE}", path = path.display())]
    Incomplete {
        /// The backup folder.
        path: PathBuf,
    },
    /// The manifest cannot be read as one.
    #[error("backup manifest {path} is invalid: {detail}", path = path.display())]
    InvalidManifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The backup was written by a format this code does not read.
    #[error("backup manifest {path} has format version {version}; this code reads version {supported}", path = path.display())]
    UnsupportedFormat {
        /// The manifest.
        path: PathBuf,
        /// Its version.
        version: u32,
        /// The one this code reads.
        supported: u32,
    },
    /// A file or folder of the backup differs from its manifest (the first one found).
    #[error("backup {dir} is damaged: {file}: {detail}", dir = dir.display())]
    Damaged {
        /// The backup folder.
        dir: PathBuf,
        /// The file or folder, relative to it.
        file: String,
        /// How it differs.
        detail: String,
    },
    /// The backup's registry has a schema newer than this code.
    #[error("backup {path} has schema version {backup}, newer than this code's version {code}; restore it with a newer botmaker", path = path.display())]
    SchemaTooNew {
        /// The backup folder.
        path: PathBuf,
        /// Its schema version.
        backup: u32,
        /// This code's newest version.
        code: u32,
    },
    /// The installation's registry is not an SQLite file (its configuration selects
    /// PostgreSQL): these copy an SQLite registry; nothing was read or written.
    #[error(
        "backup and restore copy an SQLite registry, and this installation's registry is {database}; back up a PostgreSQL registry with its own tools (pg_dump)"
    )]
    NotSqlite {
        /// The registry, its password redacted.
        database: String,
    },
    /// The installation to restore into is not empty; nothing was written.
    #[error("cannot restore into {path}: {what}; restore only into an empty installation", path = path.display())]
    TargetNotEmpty {
        /// The database or secrets folder.
        path: PathBuf,
        /// What is there.
        what: String,
    },
    /// A file operation failed.
    #[error("cannot {op} {path}: {source}", path = path.display())]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl BackupError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }
}

/// What [`backup`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// The backup folder.
    pub dir: PathBuf,
    /// The bots in the snapshot.
    pub bots: usize,
    /// The secret files copied.
    pub secrets: usize,
    /// Bots left out because they were deleted while the backup ran.
    pub left_out: usize,
    /// Bytes written (secrets and registry).
    pub bytes: u64,
    /// The registry's schema version.
    pub schema_version: u32,
    /// How long the secrets root's lock was held (exclusive), for the registry copy.
    pub lock_held: Duration,
    /// How long the whole backup took.
    pub elapsed: Duration,
}

/// Takes a consistent snapshot of the installation into `dir`, which must not exist
/// or be an empty folder (else [`BackupError::NotEmpty`], and nothing is written). It
/// is created `0700` (missing parents too).
///
/// Services may keep running: the registry is copied with SQLite's online backup API
/// under the secrets root's exclusive lock, held for that copy only; the secrets are
/// copied afterwards without it (see the [module docs](self) for why the result is
/// consistent). Everything is made durable (one `syncfs` of the backup's filesystem,
/// after the registry's own `fsync`), and the manifest is written last (temporary
/// file, `fsync`, rename, `fsync` of the folder): a folder without one is an
/// incomplete backup. Memory stays bounded: one secret at a time, plus about a
/// hundred bytes of manifest per file.
///
/// `progress` is called after each bot.
pub fn backup(
    config: &Config,
    dir: &Path,
    mut progress: impl FnMut(Progress),
) -> Result<BackupReport> {
    let started = Instant::now();
    require_sqlite(config)?;
    prepare_dir(dir)?;
    let secrets = SecretsStore::open_with(config.secrets_dir(), config.secrets_options()?)?;
    let registry = dir.join(REGISTRY_FILE);

    let pending = botmaker_sqlite::snapshot(&config.database_path(), &registry)?;
    // The one step under the lock: no create or delete is half done while the pages
    // are copied.
    let lock = secrets.lock(LockMode::Exclusive)?;
    let locked_at = Instant::now();
    let copied = pending.copy();
    drop(lock);
    let lock_held = locked_at.elapsed();
    let mut snapshot = copied?;

    let ids = snapshot.bot_ids()?;
    let secrets_dir = dir.join(SECRETS_DIR);
    make_private_dir(&secrets_dir)?;
    let mut live: Option<SqliteStore> = None;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut left_out = Vec::new();
    let mut bytes = 0u64;
    for (i, bot) in ids.iter().enumerate() {
        match copy_bot(&secrets, bot, &secrets_dir)? {
            Copied::Kept(mut entries) => {
                bytes += entries.iter().map(|e| e.size).sum::<u64>();
                dirs.push(manifest::bot_dir_path(bot));
                files.append(&mut entries);
            }
            Copied::NoDirectory => {
                // A bot without a directory: created without one, or deleted since
                // the copy. The live registry tells which.
                if !still_registered(config, &mut live, bot)? {
                    left_out.push(*bot);
                }
            }
            Copied::Deleted => left_out.push(*bot),
        }
        progress(Progress {
            phase: Phase::Secrets,
            done: i + 1,
            total: ids.len(),
        });
    }
    drop(live);
    snapshot.remove_bots(&left_out)?;
    let schema_version = snapshot.schema_version();
    snapshot.finish()?;
    let mut db = File::open(&registry).map_err(|e| BackupError::io("open", &registry, e))?;
    let (size, sha256) = manifest::hash_stream(&mut db, None, u64::MAX)
        .map_err(|e| BackupError::io("read", &registry, e))?;
    bytes += size;
    let secret_count = files.len();
    files.insert(
        0,
        FileEntry {
            path: REGISTRY_FILE.to_owned(),
            size,
            sha256,
        },
    );
    // Every file and folder written above, durable in one call before the manifest:
    // `syncfs` flushes the backup's filesystem (data, inodes, directory entries) and,
    // since Linux 5.8, reports a writeback error of any file on it. One call instead
    // of an `fsync` per file and folder: 30 000 of those cost most of a backup's time.
    nix::unistd::syncfs(&open_dir(dir)?).map_err(|e| BackupError::io("syncfs", dir, e.into()))?;
    write_manifest(
        dir,
        &Manifest {
            format: manifest::FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            schema_version,
            created_at: Timestamp::from_system_time(SystemTime::now()).to_string(),
            dirs,
            files,
        },
    )?;
    Ok(BackupReport {
        dir: dir.to_owned(),
        bots: ids.len() - left_out.len(),
        secrets: secret_count,
        left_out: left_out.len(),
        bytes,
        schema_version,
        lock_held,
        elapsed: started.elapsed(),
    })
}

/// What copying one bot's directory came to.
enum Copied {
    /// Its files, as manifest entries (sorted by name).
    Kept(Vec<FileEntry>),
    /// It has no directory.
    NoDirectory,
    /// Its directory was deleted (or replaced) while it was copied; nothing is kept.
    Deleted,
}

/// Copies the bot's secrets into `<secrets_dir>/<bot>/`, one at a time; removes the
/// copy again when the directory turned out to be deleted meanwhile.
fn copy_bot(secrets: &SecretsStore, bot: &BotId, secrets_dir: &Path) -> Result<Copied> {
    let export = match secrets.export_bot(bot) {
        Ok(Some(export)) => export,
        // No directory (none made, or renamed to the trash by a delete already).
        Ok(None) => return Ok(Copied::NoDirectory),
        Err(e) => return Err(e.into()),
    };
    let target = secrets_dir.join(bot.to_string());
    make_private_dir(&target)?;
    let mut entries = Vec::with_capacity(export.names().len());
    for name in export.names() {
        let Some(value) = export.read(name)? else {
            continue;
        };
        let path = target.join(name.as_str());
        // Made durable with the rest, by one `syncfs` before the manifest.
        write_private_file(&path, value.expose())?;
        entries.push(FileEntry {
            path: manifest::secret_path(bot, name),
            size: value.len() as u64,
            sha256: manifest::sha256(value.expose()),
        });
    }
    if export.is_current()? {
        Ok(Copied::Kept(entries))
    } else {
        fs::remove_dir_all(&target).map_err(|e| BackupError::io("remove", &target, e))?;
        Ok(Copied::Deleted)
    }
}

/// Backup and restore copy the SQLite file: refused, before anything is touched, for
/// a registry elsewhere.
fn require_sqlite(config: &Config) -> Result<()> {
    match config.database()? {
        crate::Database::Sqlite => Ok(()),
        other => Err(BackupError::NotSqlite {
            database: crate::registry::describe(config, other),
        }
        .into()),
    }
}

/// Whether the bot is still in the live registry (opened once, on first need).
fn still_registered(config: &Config, live: &mut Option<SqliteStore>, bot: &BotId) -> Result<bool> {
    let store = match live {
        Some(store) => store,
        None => live.insert(SqliteStore::open_with(
            &config.database_path(),
            StoreOptions::default(),
        )?),
    };
    match store.get(bot) {
        Ok(_) => Ok(true),
        Err(RepoError::NotFound { .. }) => Ok(false),
        Err(e) => Err(Error::Repo(e)),
    }
}

/// `dir` must not exist (it is created `0700`, its parent `fsync`ed) or be an empty
/// folder (its mode is set to `0700`); a symlink is refused.
fn prepare_dir(dir: &Path) -> Result<(), BackupError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(dir).map_err(|e| BackupError::io("list", dir, e))?;
            if entries.next().is_some() {
                return Err(BackupError::NotEmpty {
                    path: dir.to_owned(),
                });
            }
            set_dir_mode(dir)
        }
        Ok(_) => Err(BackupError::NotEmpty {
            path: dir.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            // Missing parents are made too (`0700`, like `mkdir -p -m 700`).
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| BackupError::io("create", parent, e))?;
            make_private_dir(dir)?;
            sync_dir(parent)
        }
        Err(e) => Err(BackupError::io("stat", dir, e)),
    }
}

/// Creates a folder `0700` (the mode set on a descriptor, whatever the umask).
pub(crate) fn make_private_dir(path: &Path) -> Result<(), BackupError> {
    DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| BackupError::io("create", path, e))?;
    set_dir_mode(path)
}

/// Sets a folder's mode to `0700` through a descriptor opened without following a
/// symlink.
fn set_dir_mode(path: &Path) -> Result<(), BackupError> {
    let dir = open_dir(path)?;
    dir.set_permissions(fs::Permissions::from_mode(0o700))
        .map_err(|e| BackupError::io("chmod", path, e))
}

/// Opens a folder (not through a symlink) for `fchmod`/`fsync`.
fn open_dir(path: &Path) -> Result<File, BackupError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| BackupError::io("open", path, e))
}

/// `fsync` of a folder.
pub(crate) fn sync_dir(path: &Path) -> Result<(), BackupError> {
    open_dir(path)?
        .sync_all()
        .map_err(|e| BackupError::io("fsync", path, e))
}

/// Creates a new file `0600` (set on the descriptor) and writes `bytes` (the caller
/// makes it durable).
fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    create_private_file(path)?
        .write_all(bytes)
        .map_err(|e| BackupError::io("write", path, e))
}

/// A new file, `0600` whatever the umask, never through a symlink.
pub(crate) fn create_private_file(path: &Path) -> Result<File, BackupError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| BackupError::io("create", path, e))?;
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| BackupError::io("chmod", path, e))?;
    Ok(file)
}

/// The manifest, last and atomically: a temporary file, `fsync`, rename, `fsync` of
/// the folder.
fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let tmp = dir.join(".manifest.json.tmp");
    let path = dir.join(MANIFEST_FILE);
    let mut file = create_private_file(&tmp)?;
    let mut out = io::BufWriter::new(&mut file);
    serde_json::to_writer_pretty(&mut out, manifest)
        .map_err(io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| BackupError::io("write", &tmp, e))?;
    drop(out);
    file.sync_all()
        .map_err(|e| BackupError::io("fsync", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| BackupError::io("rename", &tmp, e))?;
    sync_dir(dir)
}
