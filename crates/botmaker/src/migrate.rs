//! Migrating: the one code path behind `cargo xtask migrate` and `botmaker migrate`,
//! for the registry the configuration selects.

use std::fmt;

#[cfg(feature = "sqlite")]
use botmaker_sqlite::StoreError;

use crate::{Config, Result, registry};

/// What [`migrate`] did: the backend's own report. Its `Display` is what the commands
/// print: one line per migration applied, or `up to date`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationReport {
    /// The SQLite file's.
    #[cfg(feature = "sqlite")]
    Sqlite(botmaker_sqlite::MigrationReport),
    /// The PostgreSQL database's.
    #[cfg(feature = "postgres")]
    Postgres(botmaker_postgres::MigrationReport),
}

impl MigrationReport {
    /// Whether nothing needed applying.
    pub fn was_up_to_date(&self) -> bool {
        match *self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(ref r) => r.was_up_to_date(),
            #[cfg(feature = "postgres")]
            Self::Postgres(ref r) => r.was_up_to_date(),
        }
    }

    /// The schema version now.
    pub fn to_version(&self) -> u32 {
        match *self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(ref r) => r.to_version,
            #[cfg(feature = "postgres")]
            Self::Postgres(ref r) => r.to_version,
        }
    }
}

impl fmt::Display for MigrationReport {
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres")),
        allow(unused_variables)
    )] // no backend: no variant
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(ref r) => r.fmt(f),
            #[cfg(feature = "postgres")]
            Self::Postgres(ref r) => r.fmt(f),
        }
    }
}

/// Where the registry stands, as [`migration_status`] reports it: the backend's own
/// status. Its `Display` is what `migrate --status` prints: the applied and the
/// pending migrations.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationStatus {
    /// The SQLite file's.
    #[cfg(feature = "sqlite")]
    Sqlite(botmaker_sqlite::MigrationStatus),
    /// The PostgreSQL database's.
    #[cfg(feature = "postgres")]
    Postgres(botmaker_postgres::MigrationStatus),
}

impl fmt::Display for MigrationStatus {
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres")),
        allow(unused_variables)
    )] // no backend: no variant
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(ref s) => s.fmt(f),
            #[cfg(feature = "postgres")]
            Self::Postgres(ref s) => s.fmt(f),
        }
    }
}

/// Creates the registry when missing (SQLite: `<data dir>/botmaker.db` and its
/// folder; PostgreSQL: the schema, in an existing database) and applies every pending migration, under a cross-process lock.
pub fn migrate(config: &Config) -> Result<MigrationReport> {
    #[allow(unreachable_patterns)] // the last arm: only builds without a backend's feature
    match config.database()? {
        #[cfg(feature = "sqlite")]
        crate::Database::Sqlite => Ok(MigrationReport::Sqlite(botmaker_sqlite::migrate(
            &config.database_path(),
        )?)),
        #[cfg(feature = "postgres")]
        crate::Database::Postgres(url) => Ok(MigrationReport::Postgres(
            botmaker_postgres::migrate(&botmaker_postgres::DatabaseUrl::parse(url.expose())?)?,
        )),
        other => Err(registry::unsupported(config, other)),
    }
}

/// The applied and pending migrations of the registry, without changing anything.
pub fn migration_status(config: &Config) -> Result<MigrationStatus> {
    #[allow(unreachable_patterns)] // the last arm: only builds without a backend's feature
    match config.database()? {
        #[cfg(feature = "sqlite")]
        crate::Database::Sqlite => Ok(MigrationStatus::Sqlite(botmaker_sqlite::migration_status(
            &config.database_path(),
        )?)),
        #[cfg(feature = "postgres")]
        crate::Database::Postgres(url) => Ok(MigrationStatus::Postgres(
            botmaker_postgres::migration_status(&botmaker_postgres::DatabaseUrl::parse(
                url.expose(),
            )?)?,
        )),
        other => Err(registry::unsupported(config, other)),
    }
}

/// The suffix that names the commands resolving a store error (`; run `cargo xtask
/// migrate` or `botmaker migrate``), for the binaries and the doctor's report: the
/// sqlite crate's messages name no command, since a library cannot know which binary
/// runs it.
#[cfg(feature = "sqlite")]
pub fn migrate_hint(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::Missing { .. } => {
            Some("; create it with `cargo xtask migrate` or `botmaker migrate`")
        }
        StoreError::MigrationsPending { .. } | StoreError::HotJournal { .. } => {
            Some("; run `cargo xtask migrate` or `botmaker migrate`")
        }
        _ => None,
    }
}

/// [`migrate_hint`] for a PostgreSQL registry: the suffix that names the commands
/// which apply pending migrations, for the binaries and the doctor's report.
#[cfg(feature = "postgres")]
pub fn postgres_migrate_hint(e: &botmaker_postgres::PgError) -> Option<&'static str> {
    match e {
        botmaker_postgres::PgError::MigrationsPending { .. } => {
            Some("; run `cargo xtask migrate` or `botmaker migrate`")
        }
        _ => None,
    }
}
