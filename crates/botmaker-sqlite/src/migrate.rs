//! [`migrate`]: creating or upgrading a database, the one code path for migrating.

use std::ffi::OsString;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use refinery::{SchemaVersion, Target};

use crate::StoreError;
use crate::connection::{self, CHECK_BUSY_TIMEOUT, Role};
use crate::inspect::{DbState, inspect};
use crate::schema::{MigrationInfo, embedded, info, shipped_migrations};

/// What [`migrate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// The database.
    pub path: PathBuf,
    /// The migrations applied, oldest first. Empty: the database was up to date.
    pub applied: Vec<MigrationInfo>,
    /// The schema version before (0: a new database).
    pub from_version: u32,
    /// The schema version now.
    pub to_version: u32,
}

impl MigrationReport {
    /// Whether nothing needed applying.
    pub fn was_up_to_date(&self) -> bool {
        self.applied.is_empty()
    }
}

/// The lock file next to the database: `<file>.migrate-lock`.
fn lock_path(path: &Path) -> Result<PathBuf, StoreError> {
    let Some(name) = path.file_name() else {
        return Err(StoreError::Io {
            path: path.to_owned(),
            operation: "finding the file name of",
            source: io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
        });
    };
    let mut lock_name = OsString::from(name);
    lock_name.push(".migrate-lock");
    Ok(path.with_file_name(lock_name))
}

fn create_parent(path: &Path) -> Result<(), StoreError> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    // The folders made here (the missing ones, deepest first): a new folder's entry
    // is durable only once the folder holding it is fsynced, or a power cut after
    // `migrate` returns can lose the folder and the database in it. SQLite fsyncs
    // the database's own folder, not the ones above it.
    let missing: Vec<&Path> = parent
        .ancestors()
        .take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists())
        .collect();
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(parent).map_err(|source| StoreError::Io {
        path: parent.to_owned(),
        operation: "creating the folder",
        source,
    })?;
    for made in missing {
        let holder = made
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        sync_folder(holder)?;
    }
    Ok(())
}

/// Makes the entries of a folder durable (an fsync of the folder).
#[cfg(unix)]
fn sync_folder(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            operation: "syncing the folder",
            source,
        })
}

/// Folders cannot be opened to be synced here; the file system keeps its entries.
#[cfg(not(unix))]
#[allow(clippy::unnecessary_wraps)]
fn sync_folder(_dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

fn create_new_file(path: &Path) -> Result<(), StoreError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: path.to_owned(),
            operation: "creating the database",
            source,
        }),
    }
}

/// Takes the cross-process migration lock (an exclusive `flock` on
/// `<file>.migrate-lock`, created 0600 and never removed). Released when the file
/// closes, also when the process dies.
fn take_lock(path: &Path) -> Result<File, StoreError> {
    let lock_path = lock_path(path)?;
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    options.mode(0o600);
    let file = options.open(&lock_path).map_err(|source| StoreError::Io {
        path: lock_path.clone(),
        operation: "opening the migration lock",
        source,
    })?;
    file.lock().map_err(|source| StoreError::Io {
        path: lock_path,
        operation: "taking the migration lock",
        source,
    })?;
    Ok(file)
}

/// Creates or upgrades the database at `path`; the one code path for migrating.
///
/// - Creates the parent folder (0700) and the file (0600) when missing.
/// - Takes a cross-process lock (`<file>.migrate-lock`), so two processes never
///   migrate at once: the second waits, then finds nothing to do.
/// - Refuses, without writing anything, a file that is not a database (or not
///   botmaker's), a schema newer than the code, and a diverged history.
/// - Rolls back a hot rollback journal left by an interrupted write (SQLite does, as
///   the first read-write connection under the lock).
/// - Sets the journal mode to WAL and applies the pending migrations, each in its own
///   transaction with the history row that records it.
///
/// Returns the migrations applied; an empty list means the database was up to date.
pub fn migrate(path: &Path) -> Result<MigrationReport, StoreError> {
    botmaker_domain::observe::run(botmaker_domain::op_span!("migrate", crate::BACKEND), || {
        // Refuse what must be refused before creating anything next to the file; then
        // look again under the lock, as another process may have migrated it meanwhile.
        if let DbState::Refused(refusal) = inspect(path)?.state {
            return Err(refusal.into_error(path));
        }
        create_parent(path)?;
        let _lock = take_lock(path)?;
        let (from_version, pending) = match inspect(path)?.state {
            DbState::Missing => {
                create_new_file(path)?;
                (0, shipped_migrations())
            }
            DbState::Empty => (0, shipped_migrations()),
            DbState::Pending { db, pending } => (db, pending),
            DbState::Current { version } => (version, Vec::new()),
            DbState::Refused(refusal) => return Err(refusal.into_error(path)),
        };
        // Pragmas only now: `journal_mode=WAL` writes to the file, which a refused
        // database must never see.
        let mut conn = connection::open(path, Role::Migrate, CHECK_BUSY_TIMEOUT)?;
        connection::configure(&conn, path, Role::Migrate)?;
        if pending.is_empty() {
            return Ok(MigrationReport {
                path: path.to_owned(),
                applied: Vec::new(),
                from_version,
                to_version: from_version,
            });
        }
        // One run per migration, each `grouped`: refinery then commits the migration and
        // its history row in one transaction. Ungrouped, it commits them one after the
        // other, and a crash between the two leaves the tables of a migration that the
        // history says never ran, which every later `migrate` runs again and fails on.
        let mut applied: Vec<MigrationInfo> = Vec::new();
        for migration in &pending {
            let report = embedded::migrations::runner()
                // Shipped versions are small: the fallback (every migration) never happens.
                .set_target(Target::Version(
                    SchemaVersion::try_from(migration.version).unwrap_or(SchemaVersion::MAX),
                ))
                .set_grouped(true)
                .set_abort_divergent(true)
                .set_abort_missing(true)
                .run(&mut conn)
                .map_err(|e| StoreError::Migration {
                    path: path.to_owned(),
                    source: Box::new(e),
                })?;
            for m in report.applied_migrations().iter().map(info) {
                tracing::info!(
                    path = %path.display(),
                    version = m.version,
                    name = %m.name,
                    "migration applied"
                );
                applied.push(m);
            }
        }
        let to_version = applied
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(from_version);
        Ok(MigrationReport {
            path: path.to_owned(),
            applied,
            from_version,
            to_version,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_path_is_a_sibling() {
        assert_eq!(
            lock_path(Path::new("/a/b/botmaker.db")).unwrap(),
            Path::new("/a/b/botmaker.db.migrate-lock")
        );
        assert!(lock_path(Path::new("/")).is_err());
    }

    #[test]
    fn create_new_file_keeps_an_existing_file_and_reports_other_failures() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("fresh.db");
        create_new_file(&fresh).unwrap();
        let meta = std::fs::metadata(&fresh).unwrap();
        assert_eq!(meta.len(), 0);
        #[cfg(unix)]
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077,
            0
        );
        // Made meanwhile by another process: left as it is.
        let existing = dir.path().join("botmaker.db");
        std::fs::write(&existing, b"kept").unwrap();
        create_new_file(&existing).unwrap();
        assert_eq!(std::fs::read(&existing).unwrap(), b"kept");
        // Any other failure is an error that names the file.
        let lost = dir.path().join("missing").join("botmaker.db");
        match create_new_file(&lost) {
            Err(StoreError::Io {
                path,
                operation: "creating the database",
                source,
            }) => {
                assert_eq!(path, lost);
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
        assert!(!lost.exists());
    }
}
