use std::path::PathBuf;

use botmaker_domain::RepoError;

use crate::MigrationInfo;

/// Why opening, migrating or checking a database failed. Repository operations return
/// the domain's [`RepoError`] instead; [`StoreError::Repo`] carries one where a store
/// function needs both.
///
/// Every refusal happens before anything is written: the database is never modified,
/// deleted or "repaired" to recover.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// There is no database at this path (openers never create one; [`migrate`]
    /// does).
    ///
    /// [`migrate`]: crate::migrate
    #[error("database {path} does not exist", path = path.display())]
    Missing {
        /// The path that was opened.
        path: PathBuf,
    },

    /// The file is not an SQLite database, or an SQLite database that is not
    /// botmaker's (it has tables but no migration history). It was left untouched.
    #[error(
        "{path} is not a botmaker database ({reason}); it was left untouched",
        path = path.display()
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: &'static str,
    },

    /// The database was migrated by newer code. It was left untouched.
    #[error(
        "database {path} has schema version {db}, newer than this code's version {code}; \
         upgrade botmaker (the database was left untouched)",
        path = path.display()
    )]
    SchemaTooNew {
        /// The database.
        path: PathBuf,
        /// Its schema version.
        db: u32,
        /// The newest version this code knows ([`LATEST_VERSION`](crate::LATEST_VERSION)).
        code: u32,
    },

    /// The database needs migrations before this code can use it. Openers never
    /// migrate; [`migrate`] applies them.
    ///
    /// [`migrate`]: crate::migrate
    #[error(
        "database {path} has schema version {db}, this code needs version {code} \
         ({count} migration(s) pending)",
        path = path.display(),
        count = pending.len()
    )]
    MigrationsPending {
        /// The database.
        path: PathBuf,
        /// Its schema version (0: never migrated).
        db: u32,
        /// The version this code needs ([`LATEST_VERSION`](crate::LATEST_VERSION)).
        code: u32,
        /// The migrations `migrate` would apply, oldest first.
        pending: Vec<MigrationInfo>,
    },

    /// The database's migration history does not match the migrations this code
    /// ships (a shipped migration was changed, or one is missing). Not fixable by
    /// migrating; the database was left untouched.
    #[error(
        "database {path}: migration history diverged at version {version}: {detail}; \
         shipped migrations never change (the database was left untouched)",
        path = path.display()
    )]
    MigrationsDiverged {
        /// The database.
        path: PathBuf,
        /// The first version that differs.
        version: u32,
        /// What differs.
        detail: String,
    },

    /// A rollback journal (`-journal`) beside the database holds the undo of a write
    /// that a crash interrupted (the switch to WAL mode of the first migration is one),
    /// or that another process is making in rollback-journal mode. Openers refuse it
    /// without touching a file; [`migrate`] rolls an interrupted write back.
    ///
    /// [`migrate`]: crate::migrate
    #[error(
        "database {path} has a rollback journal left by an interrupted write; migrating \
         rolls it back (the database was left untouched)",
        path = path.display()
    )]
    HotJournal {
        /// The database.
        path: PathBuf,
    },

    /// The journal mode could not be set to WAL.
    #[error(
        "database {path}: journal mode is \"{mode}\" instead of \"wal\"",
        path = path.display()
    )]
    NotWal {
        /// The database.
        path: PathBuf,
        /// The journal mode SQLite reported.
        mode: String,
    },

    /// A per-connection setting did not take: SQLite reports another value than the
    /// one the store set (`synchronous`, `foreign_keys`, `busy_timeout`).
    #[error(
        "database {path}: pragma {pragma} is {actual} instead of {expected}",
        path = path.display()
    )]
    PragmaNotSet {
        /// The database.
        path: PathBuf,
        /// The pragma.
        pragma: &'static str,
        /// The value set.
        expected: i64,
        /// The value SQLite reported.
        actual: i64,
    },

    /// SQLite failed.
    #[error("database {path}: {operation} failed: {source}{hint}", path = path.display(), hint = hint(source))]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// What was attempted.
        operation: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },

    /// A file operation failed (creating the folder, the lock file, reading the header).
    #[error("{operation} {path}: {source}", path = path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was attempted.
        operation: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// refinery failed to apply a migration. Migrations that completed before it stay
    /// applied; the failed one was rolled back.
    #[error("database {path}: migrating failed: {source}", path = path.display())]
    Migration {
        /// The database.
        path: PathBuf,
        /// refinery's error.
        #[source]
        source: Box<refinery::Error>,
    },

    /// A repository operation failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl StoreError {
    /// Whether trying the same call again, unchanged, can succeed.
    ///
    /// - [`StoreError::Repo`]: as [`RepoError::is_retryable`] says (only `Busy`).
    /// - [`StoreError::Sqlite`] and [`StoreError::Migration`]: when SQLite said the
    ///   database was busy or locked (another connection held it past the busy
    ///   timeout); nothing was changed by the failed statement.
    /// - Every other variant: no. A missing file, a file that is not ours, a schema too
    ///   new, pending migrations, a diverged history, a rollback journal to roll back
    ///   (only `migrate` does), a journal mode that is not WAL and a failed file
    ///   operation all say something about the file that waiting does
    ///   not change.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Repo(e) => e.is_retryable(),
            Self::Sqlite { source, .. } => is_busy(source),
            // refinery wraps the driver's error; look for SQLite's answer in the chain.
            Self::Migration { source, .. } => {
                let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&**source);
                while let Some(e) = next {
                    if e.downcast_ref::<rusqlite::Error>().is_some_and(is_busy) {
                        return true;
                    }
                    next = e.source();
                }
                false
            }
            Self::Missing { .. }
            | Self::NotADatabase { .. }
            | Self::SchemaTooNew { .. }
            | Self::MigrationsPending { .. }
            | Self::MigrationsDiverged { .. }
            | Self::HotJournal { .. }
            | Self::NotWal { .. }
            | Self::PragmaNotSet { .. }
            | Self::Io { .. } => false,
        }
    }
}

/// Whether SQLite gave up waiting for another connection's lock: the one test of
/// "busy" behind both [`RepoError::Busy`] and [`StoreError::is_retryable`].
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// What an SQLite error means for an operator, when SQLite's own words do not say it:
/// appended to the messages of [`StoreError::Sqlite`] and of the store's backend errors.
pub(crate) fn hint(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ReadOnly) => {
            " (the database file or its directory is not writable by this user: SQLite \
             writes the -wal and -shm files beside the database)"
        }
        Some(rusqlite::ErrorCode::DiskFull) => {
            " (the file system holding the database has no space left)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::ffi;

    use super::*;

    fn sqlite(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    fn at(source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: "/db".into(),
            operation: "reading",
            source,
        }
    }

    #[test]
    fn only_lock_contention_is_retryable() {
        assert!(at(sqlite(ffi::SQLITE_BUSY)).is_retryable());
        assert!(at(sqlite(ffi::SQLITE_LOCKED)).is_retryable());
        assert!(
            StoreError::Repo(RepoError::Busy {
                operation: "create",
                waited_ms: 5,
            })
            .is_retryable()
        );

        let path = Path::new("/db").to_path_buf();
        let refused = [
            at(sqlite(ffi::SQLITE_CORRUPT)),
            at(sqlite(ffi::SQLITE_READONLY)),
            at(sqlite(ffi::SQLITE_NOTADB)),
            StoreError::Missing { path: path.clone() },
            StoreError::NotADatabase {
                path: path.clone(),
                reason: "no SQLite header",
            },
            StoreError::SchemaTooNew {
                path: path.clone(),
                db: 2,
                code: 1,
            },
            StoreError::MigrationsPending {
                path: path.clone(),
                db: 0,
                code: 1,
                pending: Vec::new(),
            },
            StoreError::MigrationsDiverged {
                path: path.clone(),
                version: 1,
                detail: "changed".into(),
            },
            StoreError::NotWal {
                path: path.clone(),
                mode: "delete".into(),
            },
            StoreError::Io {
                path,
                operation: "opening",
                source: std::io::Error::other("x"),
            },
            StoreError::Repo(RepoError::Corrupt {
                detail: "bad row".into(),
            }),
        ];
        for e in refused {
            assert!(!e.is_retryable(), "{e:?}");
        }
    }

    #[test]
    fn messages_name_no_binary() {
        let missing = StoreError::Missing {
            path: "/data/botmaker.db".into(),
        };
        assert_eq!(
            missing.to_string(),
            "database /data/botmaker.db does not exist"
        );
        let pending = StoreError::MigrationsPending {
            path: "/data/botmaker.db".into(),
            db: 0,
            code: 3,
            pending: crate::shipped_migrations(),
        };
        assert_eq!(
            pending.to_string(),
            "database /data/botmaker.db has schema version 0, this code needs version 3 \
             (3 migration(s) pending)"
        );
    }
}
