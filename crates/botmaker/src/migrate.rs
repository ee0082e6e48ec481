//! Migrating: the one code path behind `cargo xtask migrate` and `botmaker migrate`.

use botmaker_sqlite::{MigrationReport, MigrationStatus, StoreError};

use crate::{Config, Result};

/// Creates `<data dir>/botmaker.db` (and the folder) when missing and applies every
/// pending migration, under a cross-process lock. The report's `Display` is what the
/// commands print: one line per migration applied, or `up to date`.
pub fn migrate(config: &Config) -> Result<MigrationReport> {
    Ok(botmaker_sqlite::migrate(&config.database_path())?)
}

/// The applied and pending migrations of `<data dir>/botmaker.db`, without changing
/// anything. Its `Display` is what `migrate --status` prints.
pub fn migration_status(config: &Config) -> Result<MigrationStatus> {
    Ok(botmaker_sqlite::migration_status(&config.database_path())?)
}

/// The suffix that names the commands resolving a store error (`; run `cargo xtask
/// migrate` or `botmaker migrate``), for the binaries and the doctor's report: the
/// sqlite crate's messages name no command, since a library cannot know which binary
/// runs it.
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
