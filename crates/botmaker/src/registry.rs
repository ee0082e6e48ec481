//! The registry behind the port: opening the configured backend, and the closed set
//! of backend handles for the work the port does not express.
//!
//! [`Botmaker`](crate::Botmaker) holds the registry as an `Arc<dyn BotRepository>`:
//! every operation on bots is one virtual call, whatever the backend. What differs
//! between backends (opening, making a delete durable, the doctor's checks,
//! migrating) is matched on [`Backend`], one variant per backend feature, and on
//! [`Database`], what the configuration selects. Adding a backend is one variant
//! here, one feature, and the match arms the compiler then asks for.

#[cfg(feature = "secrets")]
use std::sync::Arc;

#[cfg(feature = "secrets")]
use botmaker_domain::BotRepository;
#[cfg(all(feature = "postgres", feature = "secrets"))]
use botmaker_postgres::{DatabaseUrl, PgStore};
#[cfg(all(feature = "sqlite", feature = "secrets"))]
use botmaker_sqlite::SqliteStore;

#[cfg(feature = "secrets")]
use crate::Result;
use crate::{Config, Database, Error};

/// How [`Botmaker::open_with`](crate::Botmaker::open_with) opens the registry: each
/// backend's options, used when the configuration selects that backend.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RegistryOptions {
    /// The SQLite store's options (busy timeout, readers, clock).
    #[cfg(feature = "sqlite")]
    pub sqlite: botmaker_sqlite::StoreOptions,
    /// The PostgreSQL store's options (pool size, retries, clock).
    #[cfg(feature = "postgres")]
    pub postgres: botmaker_postgres::PgOptions,
}

/// The backend name of a registry injected with
/// [`Botmaker::new`](crate::Botmaker::new), in the facade's spans: the store's own
/// spans carry its real one.
#[cfg(feature = "secrets")] // used by `Botmaker`
const INJECTED: &str = "injected";

/// The registry's own handle beside the port (the same store as the `Arc<dyn
/// BotRepository>`), for what the port does not express.
#[cfg(feature = "secrets")] // used by `Botmaker`
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    /// The SQLite file: a delete is made durable with [`SqliteStore::sync`].
    #[cfg(feature = "sqlite")]
    Sqlite(Arc<SqliteStore>),
    /// A PostgreSQL server: a commit is durable when it returns (`synchronous_commit`
    /// on, the server's default), so there is nothing to sync.
    #[cfg(feature = "postgres")]
    Postgres(Arc<PgStore>),
    /// A store injected with [`Botmaker::new`](crate::Botmaker::new): nothing beyond
    /// the port, so its acknowledged writes must be durable on their own.
    Injected,
}

#[cfg(feature = "secrets")] // used by `Botmaker`
impl Backend {
    /// The `backend` field of the facade's spans.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => botmaker_sqlite::BACKEND,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => botmaker_postgres::BACKEND,
            Self::Injected => INJECTED,
        }
    }

    /// Makes every write the registry acknowledged durable, before the facade acts on
    /// it outside the registry (removing a deleted bot's secrets).
    #[cfg_attr(not(feature = "sqlite"), allow(clippy::unnecessary_wraps))] // only SQLite's sync fails
    pub(crate) fn sync(&self) -> Result<()> {
        match self {
            // Commits with synchronous=NORMAL are in the WAL, not yet on disk.
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => Ok(store.sync()?),
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Ok(()),
            Self::Injected => Ok(()),
        }
    }
}

#[cfg(feature = "secrets")] // used by `Botmaker`
/// Opens the registry `config` selects (never migrating): the port for every
/// operation and the backend's handle.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(clippy::needless_pass_by_value)
)] // no backend
pub(crate) fn open(
    config: &Config,
    options: RegistryOptions,
) -> Result<(Arc<dyn BotRepository>, Backend)> {
    #[allow(unreachable_patterns)] // the last arm: only builds without a backend's feature
    match config.database()? {
        #[cfg(feature = "sqlite")]
        Database::Sqlite => {
            let store = Arc::new(SqliteStore::open_with(
                &config.database_path(),
                options.sqlite,
            )?);
            Ok((store.clone(), Backend::Sqlite(store)))
        }
        #[cfg(feature = "postgres")]
        Database::Postgres(url) => {
            let url = DatabaseUrl::parse(url.expose())?;
            let store = Arc::new(PgStore::open(&url, options.postgres)?);
            Ok((store.clone(), Backend::Postgres(store)))
        }
        other => {
            let _ = options;
            Err(unsupported(config, other))
        }
    }
}

/// The error for a registry this build cannot open: its feature is off.
pub(crate) fn unsupported(config: &Config, database: &Database) -> Error {
    let (backend, feature) = match database {
        Database::Sqlite => ("SQLite", "sqlite"),
        Database::Postgres(_) => ("PostgreSQL", "postgres"),
    };
    Error::Unsupported {
        backend,
        feature,
        database: describe(config, database),
    }
}

/// The registry as messages name it: the SQLite file, or the PostgreSQL connection
/// string with its password redacted.
pub(crate) fn describe(config: &Config, database: &Database) -> String {
    match database {
        Database::Sqlite => config.database_path().display().to_string(),
        Database::Postgres(url) => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_this_build_lacks_is_named_with_its_feature_and_no_password() {
        let config = Config::new("/data", "/secrets");
        let database =
            Database::parse("postgres://alice:hunter2@db.example/botmaker", "test").unwrap();
        let err = unsupported(&config, &database);
        assert_eq!(
            err.to_string(),
            "this build has no PostgreSQL support for the registry \
             postgres://alice:***@db.example/botmaker: enable the `postgres` feature of \
             the `botmaker` crate"
        );
        assert!(!format!("{err:?}").contains("hunter2"));
        assert!(!err.is_retryable());
        let err = unsupported(&config, &Database::Sqlite);
        assert_eq!(
            err.to_string(),
            "this build has no SQLite support for the registry /data/botmaker.db: enable \
             the `sqlite` feature of the `botmaker` crate"
        );
    }
}
