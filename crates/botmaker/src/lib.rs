#![doc = include_str!("../README.md")]

pub use botmaker_domain as domain;
#[cfg(feature = "postgres")]
pub use botmaker_postgres as postgres;
#[cfg(feature = "secrets")]
pub use botmaker_secrets as secrets;
#[cfg(feature = "sqlite")]
pub use botmaker_sqlite as sqlite;

#[cfg(feature = "tokio")]
pub mod aio;
#[cfg(feature = "backup")]
pub mod backup;
#[cfg(feature = "secrets")]
mod botmaker;
mod config;
mod database;
#[cfg(feature = "secrets")]
mod doctor;
mod error;
mod migrate;
mod registry;

#[cfg(feature = "backup")]
pub use backup::{
    BackupError, BackupReport, Progress, RestoreReport, VerifyReport, backup, restore,
    verify_backup,
};
#[cfg(feature = "secrets")]
pub use botmaker::Botmaker;
/// How a caller names a bot (an id or a name), for `Botmaker::resolve`; defined in
/// the domain crate, whose `RepoError::NotFound` carries one.
pub use botmaker_domain::BotRef;
#[cfg(feature = "secrets")]
pub use config::parse_secrets_owner;
pub use config::{Config, ConfigError, DATABASE_FILE, SECRETS_OWNER_FORMAT, SECRETS_OWNER_VAR};
pub use database::{DATABASE_URL_FORMAT, DATABASE_URL_VAR, Database, PostgresUrl};
#[cfg(feature = "secrets")]
pub use doctor::{DoctorReport, Finding, FindingKind};
pub use error::Error;
#[cfg(feature = "sqlite")]
pub use migrate::migrate_hint;
#[cfg(feature = "postgres")]
pub use migrate::postgres_migrate_hint;
pub use migrate::{MigrationReport, MigrationStatus, SchemaReport, migrate, migration_status};
pub use registry::RegistryOptions;

/// Result with the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
