//! SQLite persistence for botmaker's bot registry: [`SqliteStore`] implements the
//! domain's [`BotRepository`](botmaker_domain::BotRepository) on one database file, and
//! [`migrate`] creates or upgrades that file. This crate never sees a secret value.
//!
//! ```
//! use botmaker_domain::{BotRepository, BotStatus, NewBot};
//! use botmaker_sqlite::{LATEST_VERSION, SqliteStore, migrate};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("state").join("botmaker.db");
//!
//! // Once, at install or upgrade time (`cargo xtask migrate`, `botmaker migrate`):
//! let report = migrate(&path)?;
//! assert_eq!(report.to_version, LATEST_VERSION);
//!
//! // In the service: open (never migrates), then use the repository.
//! let store = SqliteStore::open(&path)?;
//! let bot = store.create(&NewBot::new(
//!     "support-bot".parse()?,
//!     "anthropic".parse()?,
//!     "claude-sonnet-4".parse()?,
//!     "slack".parse()?,
//! ))?;
//! assert_eq!(store.get(&bot.id)?, bot);
//! let running = store.set_status(&bot.id, BotStatus::Starting)?;
//! assert_eq!(store.list(Some(BotStatus::Starting))?, vec![running]);
//! assert!(store.integrity_check()?.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! # The database
//!
//! - Journal mode WAL, `synchronous=NORMAL`, `foreign_keys=ON`, an explicit busy
//!   timeout, each read back from SQLite on every connection the store opens (the
//!   writer and each reader): a setting that did not take fails the open with
//!   [`StoreError::NotWal`] or [`StoreError::PragmaNotSet`]. One writer connection
//!   whose every write runs in a `BEGIN IMMEDIATE` transaction, and a pool of
//!   read-only connections that read in parallel with it.
//! - Group commit: writes that threads make while another write runs queue up, and the
//!   thread at the front runs them all in one transaction, each in its own savepoint.
//!   Every call still returns its own result after the commit that holds its change: a
//!   refused write (not found, name taken) changes nothing and does not undo the
//!   others. [`SqliteStore::write_stats`] counts writes and transactions.
//! - One STRICT `bots` table whose CHECK constraints list the domain's enumerations;
//!   ids (lowercase UUIDs) and timestamps (microseconds since the Unix epoch, UTC) are
//!   made in Rust.
//! - Migrations are refinery's, embedded from `migrations/V{n}__{name}.sql`; shipped
//!   migrations never change (a test pins their checksums), so fix forward.
//!
//! # Refusals
//!
//! Openers ([`SqliteStore::open`]) never migrate and never write to a database they
//! refuse: a missing file, a file that is not a botmaker database, a schema newer than
//! the code, a diverged history, pending migrations, or a hot rollback journal left by
//! an interrupted write each have their own [`StoreError`] variant. [`migrate`] refuses
//! the same files, except that it creates a missing one, rolls a hot journal back and
//! applies pending migrations. Inspecting a database (before an open, a migrate, or
//! for [`migration_status`]) never creates, changes or deletes any of its files. Nothing here ever deletes a database to
//! recover. [`StoreError::is_retryable`] tells which failures a retry can cure (only
//! lock contention).
//!
//! # Modules
//!
//! - `connection`: opening a connection and setting its pragmas, for each kind of
//!   connection (inspecting, migrating, the writer, the readers), in one place.
//! - `inspect`: the state of a database file, read without writing to it; behind
//!   [`SqliteStore::open`], [`migrate`] and [`migration_status`].
//! - `schema`: the migrations this code ships.
//! - `migrate`: applying them.
//! - `store`: [`SqliteStore`], the repository's statements; `group`: the writer and
//!   its group commit; `reader`: the pool of reader connections; `row`: decoding a
//!   row into a bot.
//! - `report`: how migration reports print.
//! - `snapshot`: a consistent copy of a live database (SQLite's online backup API),
//!   for backups.

mod connection;
mod error;
mod group;
mod inspect;
mod migrate;
mod reader;
mod report;
mod row;
mod schema;
mod snapshot;
mod store;

#[doc(hidden)]
pub use connection::ConnectionSettings;
pub use error::StoreError;
pub use group::WriteStats;
pub use inspect::{MigrationStatus, SchemaState, migration_status};
pub use migrate::{MigrationReport, migrate};
pub use schema::{AppliedMigration, MigrationInfo, shipped_migrations};
pub use snapshot::{
    PendingSnapshot, RegistrySnapshot, forget_secrets_roots, snapshot, switch_to_wal,
};
pub use store::{SqliteStore, StoreOptions};

/// The `backend` field of this crate's spans (see `botmaker_domain::observe`).
pub const BACKEND: &str = "sqlite";

/// The newest schema version this code ships: the `{n}` of the last
/// `migrations/V{n}__{name}.sql`. Openers require exactly this version.
pub const LATEST_VERSION: u32 = 3;
