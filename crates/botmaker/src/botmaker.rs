//! [`Botmaker`]: the registry and the secrets store, kept consistent with each other.

use std::fmt;
use std::sync::Arc;

use botmaker_domain::{
    Bot, BotRef, BotRepository, BotStatus, ContainerId, NewBot, RepoError, SecretName, observe,
    op_span,
};
use botmaker_secrets::{
    LockMode, SecretMeta, SecretValue, SecretsError, SecretsOptions, SecretsStore,
};
#[cfg(feature = "sqlite")]
use botmaker_sqlite::SqliteStore;

use crate::registry::{self, Backend};
use crate::{Config, Error, RegistryOptions, Result};

/// An installation: the bot registry and the secrets store, opened together.
///
/// The registry is any [`BotRepository`], held as an `Arc<dyn BotRepository>`: the
/// SQLite file or a PostgreSQL server as the [`Config`] selects
/// ([`Config::database`]), or a store of the caller's ([`Botmaker::new`]: the
/// in-memory `MemoryRepository` in tests, say). Every bot operation is one call
/// through the port, the same code for every backend.
///
/// Operations that touch both keep them consistent: creating a bot writes its secrets
/// directory first and the row second, and removes the directory again if the row
/// cannot be written; deleting removes the row first and the directory second. A crash
/// in between can therefore only leave a secrets directory without a row, which
/// [`Botmaker::doctor`] reports and `fix` quarantines (credentials are never deleted
/// by the doctor). Both hold the secrets root's advisory lock
/// ([`SecretsStore::lock`]) shared while they run, and the doctor's fix step holds it
/// exclusive, so a repair never takes a bot being created (directory written, row
/// not yet) for an orphan.
///
/// # Bots are looked up once
/// [`Botmaker::resolve`] is the one lookup: it turns a [`BotRef`] (an id or a name, as
/// a user types it) into the [`Bot`] row. Every operation on an existing bot then
/// takes that `&Bot` (not a `BotRef`), so a caller that resolved once pays no second
/// lookup, and nothing can change between two lookups of the same command. A `&Bot`
/// rather than a bare `BotId` because it shows the bot was looked up (an id alone
/// could be a typo that `set_secret` would turn into an orphan directory) and because
/// it carries the provider that [`Bot::required_secrets`] depends on. A caller holding
/// a `BotRef` calls `resolve` first: `bm.set_secret(&bm.resolve(&r)?, &name, value)`.
pub struct Botmaker {
    registry: Arc<dyn BotRepository>,
    /// The same registry's own handle, for what the port does not express.
    backend: Backend,
    secrets: SecretsStore,
}

impl fmt::Debug for Botmaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Botmaker")
            .field("backend", &self.backend.name())
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl Botmaker {
    /// An installation over any registry and an open secrets store: for services
    /// that build their own store, and for tests (the in-memory `MemoryRepository`).
    ///
    /// The facade does nothing backend-specific for such a registry, so its
    /// acknowledged writes must be durable on their own: a bot's secrets are removed
    /// right after its row's delete returns. An SQLite store, which commits to its
    /// WAL without an fsync, is injected with [`Botmaker::from_sqlite`] instead,
    /// which makes the delete durable first.
    pub fn new(registry: Arc<dyn BotRepository>, secrets: SecretsStore) -> Self {
        Self {
            registry,
            backend: Backend::Injected,
            secrets,
        }
    }

    /// An installation over an open SQLite store (what [`Botmaker::open`] builds when
    /// the configuration selects SQLite), with the SQLite-specific work it needs: a
    /// delete is made durable ([`SqliteStore::sync`]) before the secrets go.
    #[cfg(feature = "sqlite")]
    pub fn from_sqlite(store: SqliteStore, secrets: SecretsStore) -> Self {
        let store = Arc::new(store);
        Self {
            registry: store.clone(),
            backend: Backend::Sqlite(store),
            secrets,
        }
    }

    /// Opens the registry the configuration selects ([`Config::database`]; it must
    /// exist and be fully migrated: run [`migrate`](crate::migrate) first) and the
    /// secrets store (created 0700 when missing), with the default registry options
    /// and the installation's secrets options ([`Config::secrets_options`]: its
    /// owner). A registry whose backend this build lacks is
    /// [`Error::Unsupported`].
    pub fn open(config: &Config) -> Result<Self> {
        Self::open_with(
            config,
            RegistryOptions::default(),
            config.secrets_options()?,
        )
    }

    /// Opens with explicit registry options (those of the backend the configuration
    /// selects are used); `secrets` replaces the config's secrets options, owner
    /// included.
    pub fn open_with(
        config: &Config,
        registry: RegistryOptions,
        secrets: SecretsOptions,
    ) -> Result<Self> {
        let backend = config
            .database()
            .map_or("unknown", crate::Database::backend);
        observe::run(op_span!("open", backend), || {
            let (registry, backend) = registry::open(config, registry)?;
            let secrets = SecretsStore::open_with(config.secrets_dir(), secrets)?;
            Ok(Self {
                registry,
                backend,
                secrets,
            })
        })
    }

    /// The registry's backend, the `backend` field of the facade's spans
    /// (`botmaker_domain::observe`): `sqlite`, `postgres`, or `injected` for [`Botmaker::new`].
    fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// The bot registry, for operations that need only it (and to share it, e.g.
    /// with `aio::AsyncRegistry::from_arc`).
    pub fn registry(&self) -> &Arc<dyn BotRepository> {
        &self.registry
    }

    /// The SQLite store, when the registry is one (opened from a configuration that
    /// selects SQLite, or [`Botmaker::from_sqlite`]): for what only SQLite has, such
    /// as its integrity check or write statistics.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(&self) -> Option<&SqliteStore> {
        match &self.backend {
            Backend::Sqlite(store) => Some(store),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => None,
            Backend::Injected => None,
        }
    }

    /// The PostgreSQL store, when the registry is one (opened from a configuration
    /// that selects PostgreSQL): for what only PostgreSQL has, such as its
    /// consistency check or its pool's counts.
    #[cfg(feature = "postgres")]
    pub fn postgres(&self) -> Option<&botmaker_postgres::PgStore> {
        match &self.backend {
            Backend::Postgres(store) => Some(store),
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(_) => None,
            Backend::Injected => None,
        }
    }

    /// The secrets store, for operations that need only it.
    pub fn secrets(&self) -> &SecretsStore {
        &self.secrets
    }

    /// The bot a reference names, or [`RepoError::NotFound`]: the one lookup, whose
    /// result the operations below take.
    pub fn resolve(&self, bot: &BotRef) -> Result<Bot> {
        observe::run(op_span!("resolve", self.backend()), || {
            Ok(match bot {
                BotRef::Id(id) => self.registry.get(id)?,
                BotRef::Name(name) => self.registry.get_by_name(name)?,
            })
        })
    }

    /// Registers a bot and writes its initial secrets. Afterwards both the row and the
    /// secrets directory exist, or neither does. The row records this host's secrets
    /// root ([`SecretsStore::root_id`]) as the one holding the bot's secrets, whatever
    /// `new.secrets_root` says: they are written here.
    pub fn create_bot(&self, new: &NewBot, secrets: &[(SecretName, &[u8])]) -> Result<Bot> {
        observe::run(
            op_span!("create_bot", self.backend(), bot_id = new.id),
            || {
                // Refuse before touching the disk when the registry already says no: a taken id
                // or name would otherwise write secrets only to remove them again.
                match self.registry.get(&new.id) {
                    Ok(_) => return Err(RepoError::IdTaken { id: new.id }.into()),
                    Err(RepoError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                match self.registry.get_by_name(&new.name) {
                    Ok(_) => {
                        return Err(RepoError::NameTaken {
                            name: new.name.clone(),
                        }
                        .into());
                    }
                    Err(RepoError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                // Held until the row is in: the doctor's fix step (exclusive) must not see the
                // directory without its row and quarantine the secrets of a bot being created.
                let _lock = self.secrets.lock(LockMode::Shared)?;
                // A directory that already exists belongs to something else (an orphan of an
                // earlier crash): refuse, and leave it alone.
                if !self.secrets.create_bot(&new.id)? {
                    return Err(Error::OrphanSecrets { id: new.id });
                }
                let written = secrets
                    .iter()
                    .try_for_each(|(name, value)| Ok(self.secrets.write(&new.id, name, value)?));
                let placed = new.clone().with_secrets_root(self.secrets.root_id());
                let created = written.and_then(|()| Ok(self.registry.create(&placed)?));
                created.map_err(|cause| match self.secrets.delete_bot(&new.id) {
                    Ok(()) | Err(SecretsError::BotNotFound { .. }) => cause,
                    Err(cleanup) => Error::Compensation {
                        cause: Box::new(cause),
                        cleanup: Box::new(cleanup.into()),
                    },
                })
            },
        )
    }

    /// All bots (or those with `status`), newest first.
    pub fn list_bots(&self, status: Option<BotStatus>) -> Result<Vec<Bot>> {
        observe::run(op_span!("list_bots", self.backend()), || {
            Ok(self.registry.list(status)?)
        })
    }

    /// Changes a bot's status, if the lifecycle allows it. Returns the updated bot.
    pub fn set_status(&self, bot: &Bot, to: BotStatus) -> Result<Bot> {
        observe::run(
            op_span!("set_status", self.backend(), bot_id = bot.id),
            || Ok(self.registry.set_status(&bot.id, to)?),
        )
    }

    /// Sets or clears a bot's container id. Returns the updated bot.
    pub fn set_container_id(&self, bot: &Bot, container: Option<&ContainerId>) -> Result<Bot> {
        observe::run(
            op_span!("set_container_id", self.backend(), bot_id = bot.id),
            || Ok(self.registry.set_container_id(&bot.id, container)?),
        )
    }

    /// Deletes a bot: its row, then its secrets directory. Returns the bot as the
    /// caller resolved it: the store's delete does not return the row, and reading it
    /// again would cost the second lookup this signature exists to avoid.
    ///
    /// The row goes first, and its delete is made durable (SQLite's commit is
    /// fsynced: `SqliteStore::sync`) before the directory is touched, so that a crash in between, power loss
    /// included, leaves only an orphan directory, which the doctor quarantines; the
    /// reverse order would leave a registered bot without its credentials.
    pub fn delete_bot(&self, bot: &Bot) -> Result<Bot> {
        observe::run(
            op_span!("delete_bot", self.backend(), bot_id = bot.id),
            || {
                // Another host's bot: its row and its directory (there) stay.
                self.held_here(bot)?;
                // Between the two steps the directory is an orphan: the doctor's fix step
                // (exclusive) waits until it is gone instead of quarantining it.
                let _lock = self.secrets.lock(LockMode::Shared)?;
                self.registry.delete(&bot.id)?;
                // The commit is in the WAL but not yet on disk (synchronous=NORMAL): make it
                // durable before the directory goes to the trash, which the next open sweeps,
                // or a power cut could bring the row back without its secrets. If this fails,
                // the directory stays: an orphan at worst, which the doctor quarantines.
                self.backend.sync()?;
                match self.secrets.delete_bot(&bot.id) {
                    // No directory: a bot created without secrets, or a crash of an earlier
                    // delete after this step; either way there is nothing left to remove.
                    Ok(()) | Err(SecretsError::BotNotFound { .. }) => Ok(bot.clone()),
                    Err(e) => Err(e.into()),
                }
            },
        )
    }

    /// Writes (or rotates: the same atomic replace) one secret of a registered bot.
    pub fn set_secret(&self, bot: &Bot, name: &SecretName, value: &[u8]) -> Result<()> {
        observe::run(
            op_span!("set_secret", self.backend(), bot_id = bot.id),
            || {
                self.held_here(bot)?;
                Ok(self.secrets.write(&bot.id, name, value)?)
            },
        )
    }

    /// Replaces an existing secret of a registered bot with a new value (atomic and
    /// durable: readers see the old or the new value, never a mix). Unlike
    /// [`Botmaker::set_secret`] it refuses, with `SecretsError::NotFound`, a secret the bot
    /// does not have yet, so a typo in the name does not create a new secret.
    pub fn rotate_secret(&self, bot: &Bot, name: &SecretName, value: &[u8]) -> Result<()> {
        observe::run(
            op_span!("rotate_secret", self.backend(), bot_id = bot.id),
            || {
                self.held_here(bot)?;
                Ok(self.secrets.replace(&bot.id, name, value)?)
            },
        )
    }

    /// Reads one secret of a registered bot.
    pub fn get_secret(&self, bot: &Bot, name: &SecretName) -> Result<SecretValue> {
        observe::run(
            op_span!("get_secret", self.backend(), bot_id = bot.id),
            || {
                self.held_here(bot)?;
                Ok(self.secrets.read(&bot.id, name)?)
            },
        )
    }

    /// Reads several secrets of a registered bot in one call, in the order of `names`
    /// ([`SecretsStore::read_many`]: its directory opened once, every file checked as
    /// [`get_secret`](Self::get_secret) checks it). What a bot's runtime calls at start,
    /// e.g. with [`Bot::required_secrets`].
    pub fn get_secrets(&self, bot: &Bot, names: &[SecretName]) -> Result<Vec<SecretValue>> {
        observe::run(
            op_span!("get_secrets", self.backend(), bot_id = bot.id),
            || {
                self.held_here(bot)?;
                Ok(self.secrets.read_many(&bot.id, names)?)
            },
        )
    }

    /// Every secret of a registered bot, sorted by name, in one call
    /// ([`SecretsStore::read_all`]); a bot created without secrets has none.
    pub fn get_all_secrets(&self, bot: &Bot) -> Result<Vec<(SecretName, SecretValue)>> {
        observe::run(
            op_span!("get_all_secrets", self.backend(), bot_id = bot.id),
            || {
                self.held_here(bot)?;
                Ok(self.secrets.read_all(&bot.id)?)
            },
        )
    }

    /// The secrets of a registered bot: names, sizes, modes; never values.
    pub fn list_secrets(&self, bot: &Bot) -> Result<Vec<SecretMeta>> {
        observe::run(
            op_span!("list_secrets", self.backend(), bot_id = bot.id),
            || {
                self.held_here(bot)?;
                match self.secrets.list(&bot.id) {
                    // A bot created without secrets has no directory yet: it has none.
                    Err(SecretsError::BotNotFound { .. }) => Ok(Vec::new()),
                    other => Ok(other?),
                }
            },
        )
    }

    /// Removes one secret of a registered bot.
    pub fn remove_secret(&self, bot: &Bot, name: &SecretName) -> Result<()> {
        observe::run(
            op_span!("remove_secret", self.backend(), bot_id = bot.id),
            || {
                self.held_here(bot)?;
                Ok(self.secrets.remove(&bot.id, name)?)
            },
        )
    }

    /// The secrets a registered bot needs ([`Bot::required_secrets`], which depends
    /// on its provider) and lacks, in [`SecretName::REQUIRED`] order.
    pub fn missing_secrets(&self, bot: &Bot) -> Result<Vec<SecretName>> {
        observe::run(
            op_span!("missing_secrets", self.backend(), bot_id = bot.id),
            || {
                self.held_here(bot)?;
                match missing_secrets(&self.secrets, bot) {
                    // A bot created without secrets has no directory yet: it lacks them all.
                    Err(SecretsError::BotNotFound { .. }) => Ok(bot.required_secrets()),
                    other => Ok(other?),
                }
            },
        )
    }
}

impl Botmaker {
    /// This host's secrets root's id ([`SecretsStore::root_id`]).
    pub fn secrets_root(&self) -> botmaker_domain::SecretsRootId {
        self.secrets.root_id()
    }

    /// `Ok` when this host's secrets root holds the bot's secrets: the registry
    /// records this root, or none (a bot registered before placements were recorded,
    /// treated as local until adopted). [`Error::SecretsElsewhere`] otherwise, before
    /// anything is touched.
    pub fn held_here(&self, bot: &Bot) -> Result<()> {
        let here = self.secrets.root_id();
        match bot.secrets_root {
            Some(held_by) if held_by != here => Err(Error::SecretsElsewhere {
                id: bot.id,
                name: bot.name.clone(),
                held_by,
                here,
                path: self.secrets.root_path().to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

/// The bot's required secrets that its directory does not hold; shared by
/// [`Botmaker::missing_secrets`] and the doctor, which reports a missing directory
/// differently.
pub(crate) fn missing_secrets(
    secrets: &SecretsStore,
    bot: &Bot,
) -> Result<Vec<SecretName>, SecretsError> {
    secrets.missing(&bot.id, &bot.required_secrets())
}
