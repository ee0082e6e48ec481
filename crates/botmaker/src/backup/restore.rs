//! Restoring a verified backup into an empty installation.

use std::collections::HashSet;
use std::fs::{self, DirBuilder};
use std::io::{self, Read as _};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use botmaker_domain::BotId;
use botmaker_secrets::SecretsStore;
use botmaker_sqlite::MigrationReport;
use zeroize::Zeroizing;

use super::manifest::{self, Entry, REGISTRY_FILE};
use super::verify::{Open, open_regular, verify};
use super::{BackupError, Phase, Progress, create_private_file, sync_dir};
use crate::{Botmaker, Config, DoctorReport, Error, Result};

/// What [`restore`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The bots restored (with a secrets folder).
    pub bots: usize,
    /// The secret files restored.
    pub secrets: usize,
    /// The backup's schema version.
    pub schema_version: u32,
    /// The migrations applied after the restore, when the backup's schema was older
    /// than this code's.
    pub migrated: Option<MigrationReport>,
    /// The doctor's report on the restored installation.
    pub doctor: DoctorReport,
}

/// The temporary name the registry is written under in the data folder before it is
/// linked to `botmaker.db` (a name only the restore uses).
const TEMP_DB: &str = ".botmaker.db.restore-tmp";

/// Restores the backup at `dir` into the installation `config` describes, which must
/// be empty: no database file, and no bot folder in the secrets folder (else
/// [`BackupError::TargetNotEmpty`], and nothing is written).
///
/// First the whole backup is verified ([`verify_backup`](super::verify_backup)); a
/// damaged one is refused, naming the first bad file, and nothing is written. Then
/// the secrets are written through [`SecretsStore`] (each one atomic and durable, its
/// bytes checked against the manifest again as they are read; a few threads write in
/// parallel), then the registry: a
/// temporary file in the data folder, `fsync`, switched to WAL (so that the first open
/// of the live database has no journal mode to switch, a write a crash could leave
/// half done), linked to `botmaker.db` (never over an existing file), `fsync` of the
/// folder. The registry comes last, so a restore killed
/// at any moment leaves bot folders without a database (a rerun refuses, naming
/// them) or the whole installation. A backup with an older schema is then migrated
/// (the sqlite crate's `migrate`, the one [`migrate`](crate::migrate) calls), and the doctor runs (without fixing).
///
/// `progress` is called after each file verified and each secret restored.
pub fn restore(
    config: &Config,
    dir: &Path,
    mut progress: impl FnMut(Progress),
) -> Result<RestoreReport> {
    super::require_sqlite(config)?;
    // Refused before the (long) verification, and again after it.
    check_empty(config)?;
    let (verified, manifest) = verify(dir, &mut progress)?;
    let options = config.secrets_options()?;
    check_empty(config)?;

    let secrets = SecretsStore::open_with(config.secrets_dir(), options)?;
    // A write makes its bot's folder; only folders without files need their own call.
    let with_files: HashSet<&str> = manifest
        .files
        .iter()
        .filter_map(|f| f.path.rsplit_once('/').map(|(parent, _)| parent))
        .collect();
    for d in manifest
        .dirs
        .iter()
        .filter(|d| !with_files.contains(d.as_str()))
    {
        if let Some(Entry::BotDir(bot)) = Entry::parse(d) {
            secrets.create_bot(&bot)?;
        }
    }
    write_secrets(&secrets, dir, &manifest.files, &mut progress)?;
    drop(secrets);

    let tmp = copy_registry(config, dir, &manifest.files[..])?;
    // The backup recorded the secrets root of the host it was made on; the secrets
    // are now in this one's. Forgotten here, and adopted below by the root that holds
    // their directories (the same step as `migrate`'s).
    botmaker_sqlite::forget_secrets_roots(&tmp)?;
    // In WAL mode before it has the live name (see `switch_to_wal`).
    botmaker_sqlite::switch_to_wal(&tmp)?;
    link_registry(config, &tmp)?;
    let migrated = if verified.needs_migration {
        Some(botmaker_sqlite::migrate(&config.database_path())?)
    } else {
        None
    };
    crate::migrate::adopt_legacy(config)?;
    Ok(RestoreReport {
        bots: verified.bots,
        secrets: verified.secrets,
        schema_version: verified.schema_version,
        migrated,
        doctor: Botmaker::doctor(config, false),
    })
}

/// How many threads write secrets: each write waits for two `fsync`s (the file, its
/// folder), so a few writers in parallel keep the disk busy.
const WRITERS: usize = 4;

/// Writes every secret of the manifest through the store (atomic, durable), with
/// [`WRITERS`] threads taking files in turn; the calling thread reports progress.
/// The first failure stops the others and is returned.
fn write_secrets(
    secrets: &SecretsStore,
    dir: &Path,
    files: &[manifest::FileEntry],
    progress: &mut impl FnMut(Progress),
) -> Result<()> {
    let total = files.len() - 1;
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let max = secrets.max_secret_size();
    let work = || {
        while !failed.load(Ordering::Relaxed) {
            let Some(entry) = files.get(next.fetch_add(1, Ordering::Relaxed)) else {
                return;
            };
            let Some(Entry::Secret(bot, name)) = Entry::parse(&entry.path) else {
                continue;
            };
            let written = read_checked(dir, entry, max)
                .map_err(Error::from)
                .and_then(|value| Ok(secrets.write(&bot, &name, &value)?));
            match written {
                Ok(()) => {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    if let Ok(mut slot) = first_error.lock() {
                        slot.get_or_insert(e);
                    }
                    return;
                }
            }
        }
    };
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..WRITERS).map(|_| s.spawn(work)).collect();
        let mut reported = 0;
        while workers.iter().any(|w| !w.is_finished()) {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let now = done.load(Ordering::Relaxed);
            if now > reported {
                reported = now;
                progress(Progress {
                    phase: Phase::Restore,
                    done: now,
                    total,
                });
            }
        }
        let now = done.load(Ordering::Relaxed);
        if now > reported {
            progress(Progress {
                phase: Phase::Restore,
                done: now,
                total,
            });
        }
    });
    match first_error.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        // A writer panicked while holding the slot: the scope has already re-raised
        // that panic, so this is not reached.
        Err(_) => Err(BackupError::Io {
            op: "restore",
            path: dir.to_owned(),
            source: io::Error::other("a writer thread failed"),
        }
        .into()),
    }
}

/// Refuses an installation that has a database or any bot folder; reads only.
fn check_empty(config: &Config) -> Result<(), BackupError> {
    let db = config.database_path();
    match fs::symlink_metadata(&db) {
        Ok(_) => {
            return Err(BackupError::TargetNotEmpty {
                path: db,
                what: "a database already exists".to_owned(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(BackupError::io("stat", &db, e)),
    }
    let root = config.secrets_dir();
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BackupError::io("list", root, e)),
    };
    let mut bots = 0usize;
    let mut first = None;
    for entry in entries {
        let entry = entry.map_err(|e| BackupError::io("list", root, e))?;
        let name = entry.file_name();
        if let Some(id) = name.to_str().and_then(|n| BotId::parse(n).ok()) {
            bots += 1;
            first.get_or_insert(id);
        }
    }
    match first {
        None => Ok(()),
        Some(id) => Err(BackupError::TargetNotEmpty {
            path: root.to_owned(),
            what: format!(
                "it already holds {bots} bot folder(s), such as {id} (after an interrupted \
                 restore, remove them and run the restore again)"
            ),
        }),
    }
}

/// Reads a secret of the backup, at most `max` bytes, and checks it against its
/// manifest entry again (the backup may have changed since it was verified).
fn read_checked(
    dir: &Path,
    entry: &manifest::FileEntry,
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    let damaged = |detail: &str| BackupError::Damaged {
        dir: dir.to_owned(),
        file: entry.path.clone(),
        detail: detail.to_owned(),
    };
    let path = dir.join(&entry.path);
    let file = match open_regular(dir, &entry.path) {
        Ok(f) => f,
        Err(Open::Missing) => return Err(damaged("is missing")),
        Err(Open::Bad(detail)) => return Err(damaged(detail)),
        Err(Open::Io(e)) => return Err(BackupError::io("open", &path, e)),
    };
    let mut value = Zeroizing::new(Vec::new());
    file.take(max as u64 + 1)
        .read_to_end(&mut value)
        .map_err(|e| BackupError::io("read", &path, e))?;
    if value.len() as u64 != entry.size || manifest::sha256(&value) != entry.sha256 {
        return Err(damaged("changed since it was verified"));
    }
    Ok(value)
}

/// The registry's copy: a temporary file in the data folder (`0600`), checked against
/// the manifest while it is copied, `fsync`ed; its path.
fn copy_registry(
    config: &Config,
    dir: &Path,
    files: &[manifest::FileEntry],
) -> Result<PathBuf, BackupError> {
    let Some(entry) = files.iter().find(|f| f.path == REGISTRY_FILE) else {
        return Err(BackupError::InvalidManifest {
            path: dir.join(manifest::MANIFEST_FILE),
            detail: format!("{REGISTRY_FILE} is not listed"),
        });
    };
    let data = config.data_dir();
    if !data.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data)
            .map_err(|e| BackupError::io("create", data, e))?;
        if let Some(parent) = data.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    let tmp = data.join(TEMP_DB);
    // What an interrupted restore may have left: the copy, and the journal or WAL of
    // its switch to WAL.
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let leftover = data.join(format!("{TEMP_DB}{suffix}"));
        match fs::remove_file(&leftover) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(BackupError::io("remove", &leftover, e)),
        }
    }
    let src_path = dir.join(REGISTRY_FILE);
    let mut src = match open_regular(dir, REGISTRY_FILE) {
        Ok(f) => f,
        Err(Open::Io(e)) => return Err(BackupError::io("open", &src_path, e)),
        Err(Open::Missing | Open::Bad(_)) => {
            return Err(BackupError::Damaged {
                dir: dir.to_owned(),
                file: REGISTRY_FILE.to_owned(),
                detail: "changed since it was verified".to_owned(),
            });
        }
    };
    let mut out = create_private_file(&tmp)?;
    let (size, sha256) = manifest::hash_stream(&mut src, Some(&mut out), entry.size)
        .map_err(|e| BackupError::io("copy", &src_path, e))?;
    if size != entry.size || sha256 != entry.sha256 {
        let _ = fs::remove_file(&tmp);
        return Err(BackupError::Damaged {
            dir: dir.to_owned(),
            file: REGISTRY_FILE.to_owned(),
            detail: "changed since it was verified".to_owned(),
        });
    }
    out.sync_all()
        .map_err(|e| BackupError::io("fsync", &tmp, e))?;
    drop(out);
    Ok(tmp)
}

/// Links the copy `tmp` to `botmaker.db` (refused if that exists), removes `tmp`,
/// `fsync` of the folder.
fn link_registry(config: &Config, tmp: &Path) -> Result<(), BackupError> {
    let data = config.data_dir();
    let db = config.database_path();
    match fs::hard_link(tmp, &db) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(tmp);
            return Err(BackupError::TargetNotEmpty {
                path: db,
                what: "a database appeared while restoring".to_owned(),
            });
        }
        Err(e) => return Err(BackupError::io("link", &db, e)),
    }
    fs::remove_file(tmp).map_err(|e| BackupError::io("remove", tmp, e))?;
    sync_dir(data)
}
