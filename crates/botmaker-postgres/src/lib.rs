#![doc = include_str!("../README.md")]

mod error;
mod migrate;
mod pool;
mod schema;
mod store;
mod url;

pub use error::PgError;
pub use migrate::{
    MIGRATE_LOCK_KEY, MigrationReport, MigrationStatus, SchemaState, migrate, migration_status,
};
pub use schema::{AppliedMigration, MigrationInfo, shipped_migrations};
pub use store::{PgOptions, PgStore};
pub use url::DatabaseUrl;

/// The `backend` field of this crate's spans (see `botmaker_domain::observe`).
pub const BACKEND: &str = "postgres";

/// The newest schema version this code ships: the `{n}` of the last
/// `migrations/V{n}__{name}.sql`, the same as the sqlite crate's. Openers require
/// exactly this version.
pub const LATEST_VERSION: u32 = 3;
