//! [`PgError`]: why opening, migrating or checking a PostgreSQL registry failed.

use botmaker_domain::RepoError;
use postgres::error::SqlState;

use crate::MigrationInfo;

/// Why parsing a connection string, opening, migrating or checking a registry failed.
/// Repository operations return the domain's [`RepoError`] instead.
///
/// Every message names the server and database (`host=… dbname=…`, as
/// [`DatabaseUrl`](crate::DatabaseUrl)'s `Display` prints them), never the password.
/// Every refusal happens before anything is written: the schema is left untouched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The connection string is not one this crate reads.
    #[error("invalid postgresql connection string: {reason}")]
    InvalidUrl {
        /// What is wrong (never the string itself, which may hold a password).
        reason: String,
    },

    /// The connection string has another scheme than `postgres` or `postgresql`.
    #[error(
        "unsupported database url scheme \"{scheme}\": use postgres://…, postgresql://… \
         or the key=value form (host=<socket dir or server> dbname=<database>)"
    )]
    UnsupportedScheme {
        /// The scheme given.
        scheme: String,
    },

    /// The server could not be reached, or refused the login.
    #[error("cannot connect to postgresql database {dbname} on {host} ({database}): {source}")]
    Connect {
        /// The server or socket directory.
        host: String,
        /// The database.
        dbname: String,
        /// The redacted connection string.
        database: String,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },

    /// The database holds tables but no migration history: it is not botmaker's (or
    /// was made by hand). It was left untouched.
    #[error("{database} is not a botmaker database ({reason}); it was left untouched")]
    NotABotmakerDatabase {
        /// The redacted connection string.
        database: String,
        /// What was found.
        reason: String,
    },

    /// The schema was migrated by newer code. It was left untouched.
    #[error(
        "database {database} has schema version {db}, newer than this code's version \
         {code}; upgrade botmaker (the database was left untouched)"
    )]
    SchemaTooNew {
        /// The redacted connection string.
        database: String,
        /// Its schema version.
        db: u32,
        /// The newest version this code knows ([`LATEST_VERSION`](crate::LATEST_VERSION)).
        code: u32,
    },

    /// The schema needs migrations before this code can use it. Openers never migrate;
    /// [`migrate`](crate::migrate) applies them.
    #[error(
        "database {database} has schema version {db}, this code needs version {code} \
         ({count} migration(s) pending; run `migrate`)",
        count = pending.len()
    )]
    MigrationsPending {
        /// The redacted connection string.
        database: String,
        /// Its schema version (0: never migrated).
        db: u32,
        /// The version this code needs.
        code: u32,
        /// The migrations `migrate` would apply, oldest first.
        pending: Vec<MigrationInfo>,
    },

    /// The migration history does not match the migrations this code ships. Not
    /// fixable by migrating; the database was left untouched.
    #[error(
        "database {database}: migration history diverged at version {version}: {detail}; \
         shipped migrations never change (the database was left untouched)"
    )]
    MigrationsDiverged {
        /// The redacted connection string.
        database: String,
        /// The first version that differs.
        version: u32,
        /// What differs.
        detail: String,
    },

    /// A statement failed.
    #[error("database {database}: {operation} failed: {source}")]
    Postgres {
        /// The redacted connection string.
        database: String,
        /// What was attempted.
        operation: &'static str,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },

    /// refinery failed to apply a migration. Migrations that completed before it stay
    /// applied; the failed one was rolled back.
    #[error("database {database}: migrating failed: {source}")]
    Migration {
        /// The redacted connection string.
        database: String,
        /// refinery's error.
        #[source]
        source: Box<refinery::Error>,
    },

    /// A repository operation failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl PgError {
    /// Whether trying the same call again, unchanged, can succeed: the server was
    /// unreachable or went away, or PostgreSQL reported a serialization failure or a
    /// deadlock (or, for [`PgError::Repo`], what [`RepoError::is_retryable`] says).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Postgres { source, .. } => is_transient(source),
            Self::Migration { source, .. } => {
                let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&**source);
                while let Some(e) = next {
                    if e.downcast_ref::<postgres::Error>()
                        .is_some_and(is_transient)
                    {
                        return true;
                    }
                    next = e.source();
                }
                false
            }
            Self::Repo(e) => e.is_retryable(),
            Self::InvalidUrl { .. }
            | Self::UnsupportedScheme { .. }
            | Self::NotABotmakerDatabase { .. }
            | Self::SchemaTooNew { .. }
            | Self::MigrationsPending { .. }
            | Self::MigrationsDiverged { .. } => false,
        }
    }
}

/// A conflict with another transaction that running it again resolves: a
/// serialization failure (40001) or a deadlock (40P01).
pub(crate) fn is_conflict(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// The connection is gone or unusable (the server stopped, restarted, or killed this
/// session), or the server is starting or shutting down: a new connection, later, can
/// succeed.
pub(crate) fn is_connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(c) => {
            // Class 08: connection exception; 57P01..57P03: admin shutdown, crash
            // shutdown, cannot connect now (starting up or shutting down).
            c.code().starts_with("08")
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
        }
        // No SQLSTATE: an I/O error on the socket (reset, broken pipe, refused).
        None => std::error::Error::source(e)
            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some()),
    }
}

/// Whether a retry can cure `e`.
pub(crate) fn is_transient(e: &postgres::Error) -> bool {
    is_conflict(e) || is_connection_lost(e)
}
