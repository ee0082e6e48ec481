use std::path::PathBuf;

use botmaker_domain::{BotId, BotName, DomainError, RepoError, SecretsRootId};

/// Why a facade operation failed: the error of the layer that failed, or one of the
/// few that only the facade can see.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value was refused by the domain crate.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A repository operation failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The configuration holds a malformed value (read leniently by
    /// [`Config::from_env`](crate::Config::from_env)).
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// Opening or migrating the database failed.
    #[cfg(feature = "sqlite")]
    #[error(transparent)]
    Store(#[from] botmaker_sqlite::StoreError),
    /// Opening, migrating or checking a PostgreSQL registry failed (its messages name
    /// the server and database, never the password).
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Postgres(#[from] botmaker_postgres::PgError),
    /// A secrets operation failed.
    #[cfg(feature = "secrets")]
    #[error(transparent)]
    Secrets(#[from] botmaker_secrets::SecretsError),
    /// A backup, verification or restore was refused or failed.
    #[cfg(feature = "backup")]
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    /// The configuration selects a registry whose backend this build does not
    /// include (its feature is off); nothing was opened. The database is named with
    /// its password redacted.
    #[error(
        "this build has no {backend} support for the registry {database}: enable the `{feature}` feature of the `botmaker` crate"
    )]
    Unsupported {
        /// The backend (`SQLite`, `PostgreSQL`).
        backend: &'static str,
        /// The `botmaker` feature that adds it.
        feature: &'static str,
        /// The registry: a path, or a connection string without its password.
        database: String,
    },
    /// A new bot's id already has a secrets directory (left over from an earlier bot
    /// or a crash); nothing was changed. The doctor's `fix` quarantines it. The
    /// message names no command: which one applies is the caller's to say (the CLI
    /// adds it).
    #[error("bot {id} already has a secrets directory but no database row")]
    OrphanSecrets {
        /// The id.
        id: BotId,
    },
    /// The registry places the bot's secrets in another secrets root (another host
    /// sharing the registry): nothing was read, written or deleted, here or in the
    /// registry. Run the operation on the host whose secrets root is `held_by`.
    #[error(
        "bot \"{name}\" ({id}): its secrets are held by secrets root {held_by}, not by this \
         host's root {here} at {path}; run this on the host whose secrets root is {held_by}",
        path = path.display()
    )]
    SecretsElsewhere {
        /// The bot's id.
        id: BotId,
        /// The bot's name.
        name: BotName,
        /// The secrets root the registry records for the bot.
        held_by: SecretsRootId,
        /// This host's secrets root.
        here: SecretsRootId,
        /// Where this host's secrets root is.
        path: PathBuf,
    },
    /// The async runtime shut down before an operation of `botmaker::aio` (feature `tokio`) could
    /// start on its blocking pool: it did not run at all and changed nothing.
    #[error("the async runtime shut down before the operation started; nothing was changed")]
    RuntimeShutDown,
    /// Creating a bot failed and undoing its partial effects failed too: the doctor
    /// reports (and its `fix` repairs) what is left.
    #[error("{cause}; cleaning up also failed ({cleanup})")]
    Compensation {
        /// The first failure.
        cause: Box<Error>,
        /// The failure of the clean-up.
        cleanup: Box<Error>,
    },
}

impl Error {
    /// Whether retrying the same call, unchanged, can succeed: the failing layer's own
    /// answer. The facade's own errors are not retryable: an orphan directory stays
    /// until the doctor quarantines it, and a failed clean-up leaves one behind.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Domain(e) => e.is_retryable(),
            Self::Repo(e) => e.is_retryable(),
            #[cfg(feature = "sqlite")]
            Self::Store(e) => e.is_retryable(),
            #[cfg(feature = "postgres")]
            Self::Postgres(e) => e.is_retryable(),
            #[cfg(feature = "secrets")]
            Self::Secrets(e) => e.is_retryable(),
            Self::Config(_)
            | Self::Unsupported { .. }
            | Self::OrphanSecrets { .. }
            | Self::SecretsElsewhere { .. }
            | Self::Compensation { .. }
            | Self::RuntimeShutDown => false,
            #[cfg(feature = "backup")]
            Self::Backup(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_is_the_failing_layers_answer() {
        let busy = Error::from(RepoError::Busy {
            operation: "create",
            waited_ms: 5000,
        });
        assert!(busy.is_retryable());
        let refused = Error::from(DomainError::InvalidBotRef {
            value: "../x".to_owned(),
        });
        assert!(!refused.is_retryable());
        let missing = Error::from(RepoError::NotFound {
            bot: botmaker_domain::BotRef::Id(BotId::generate()),
        });
        assert!(!missing.is_retryable());
    }
}
