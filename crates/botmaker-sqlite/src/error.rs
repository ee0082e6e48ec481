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
    /// There is no database at this path (openers never create one).
    #[error(
        "database {path} does not exist; create it with `cargo xtask migrate` or `botmaker migrate`",
        path = path.display()
    )]
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
    /// migrate: run `cargo xtask migrate` or `botmaker migrate`.
    #[error(
        "database {path} has schema version {db}, this code needs version {code} \
         ({count} migration(s) pending); run `cargo xtask migrate` or `botmaker migrate`",
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
