use botmaker_domain::{BotId, DomainError, RepoError};

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
    /// Opening or migrating the database failed.
    #[cfg(feature = "sqlite")]
    #[error(transparent)]
    Store(#[from] botmaker_sqlite::StoreError),
    /// A secrets operation failed.
    #[cfg(feature = "secrets")]
    #[error(transparent)]
    Secrets(#[from] botmaker_secrets::SecretsError),
    /// A new bot's id already has a secrets directory (left over from an earlier bot
    /// or a crash); nothing was changed. `botmaker doctor --fix` quarantines it.
    #[error(
        "bot {id} already has a secrets directory but no database row; run `botmaker doctor --fix`"
    )]
    OrphanSecrets {
        /// The id.
        id: BotId,
    },
    /// Creating a bot failed and undoing its partial effects failed too: the doctor
    /// reports (and `--fix` repairs) what is left.
    #[error("{cause}; cleaning up also failed ({cleanup}); run `botmaker doctor`")]
    Compensation {
        /// The first failure.
        cause: Box<Error>,
        /// The failure of the clean-up.
        cleanup: Box<Error>,
    },
}
