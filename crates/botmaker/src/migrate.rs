//! Migrating: the one code path behind `cargo xtask migrate` and `botmaker migrate`,
//! for the registry the configuration selects.

use std::fmt;

#[cfg(feature = "sqlite")]
use botmaker_sqlite::StoreError;

use botmaker_domain::{BotId, SecretsRootId};

use crate::{Config, Result, registry};

/// What [`migrate`] did: the backend's report of the schema, and the bots this
/// host's secrets root adopted. Its `Display` is what the commands print: one line per
/// migration applied, or `up to date`, then a line for the adopted bots, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// The backend's own report of the schema.
    pub schema: SchemaReport,
    /// Bots registered before schema V3 recorded placements whose secrets directory is
    /// in this host's secrets root: the registry now records that root for them.
    pub adopted: Vec<BotId>,
    /// This host's secrets root, when there were bots to adopt (`None` when no bot
    /// lacked a root, or the secrets root does not exist yet).
    pub secrets_root: Option<SecretsRootId>,
}

impl MigrationReport {
    /// Whether nothing needed applying (the schema was up to date).
    pub fn was_up_to_date(&self) -> bool {
        self.schema.was_up_to_date()
    }

    /// The schema version now.
    pub fn to_version(&self) -> u32 {
        self.schema.to_version()
    }
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.schema.fmt(f)?;
        match (self.adopted.len(), self.secrets_root) {
            (0, _) | (_, None) => Ok(()),
            (n, Some(root)) => writeln!(
                f,
                "adopted {n} bots from before secrets placement into this secrets root ({root})"
            ),
        }
    }
}

/// The backend's report of a migration of the schema.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaReport {
    /// The SQLite file's.
    #[cfg(feature = "sqlite")]
    Sqlite(botmaker_sqlite::MigrationReport),
    /// The PostgreSQL database's.
    #[cfg(feature = "postgres")]
    Postgres(botmaker_postgres::MigrationReport),
}

impl SchemaReport {
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

impl fmt::Display for SchemaReport {
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
/// folder; PostgreSQL: the schema, in an existing database) and applies every pending
/// migration, under a cross-process lock.
///
/// Then (with the `secrets` feature) it adopts the bots registered before schema V3
/// recorded which secrets root holds each bot's secrets: every such bot whose
/// directory is in this host's secrets root gets that root recorded
/// ([`BotRepository::adopt_secrets_root`](botmaker_domain::BotRepository)), so an
/// upgraded installation needs no manual step. A bot without a directory here stays
/// without a root (treated as local by every host) until the host that holds it runs
/// `migrate` or the doctor's `fix`. The secrets root is opened only when some bot lacks
/// a root, and never created here when it does not exist.
pub fn migrate(config: &Config) -> Result<MigrationReport> {
    #[allow(unreachable_patterns)] // the last arm: only builds without a backend's feature
    let schema = match config.database()? {
        #[cfg(feature = "sqlite")]
        crate::Database::Sqlite => {
            SchemaReport::Sqlite(botmaker_sqlite::migrate(&config.database_path())?)
        }
        #[cfg(feature = "postgres")]
        crate::Database::Postgres(url) => SchemaReport::Postgres(botmaker_postgres::migrate(
            &botmaker_postgres::DatabaseUrl::parse(url.expose())?,
        )?),
        other => return Err(registry::unsupported(config, other)),
    };
    #[cfg(feature = "secrets")]
    let (adopted, secrets_root) = adopt_legacy(config)?;
    #[cfg(not(feature = "secrets"))]
    let (adopted, secrets_root) = (Vec::new(), None);
    Ok(MigrationReport {
        schema,
        adopted,
        secrets_root,
    })
}

/// The adoption step of [`migrate`]: the bots adopted, and this root's id when it was
/// opened.
#[cfg(feature = "secrets")]
pub(crate) fn adopt_legacy(config: &Config) -> Result<(Vec<BotId>, Option<SecretsRootId>)> {
    use std::collections::BTreeSet;

    use botmaker_domain::RepoError;

    let (registry, _backend) = registry::open(config, crate::RegistryOptions::default())?;
    let legacy: Vec<_> = registry
        .list(None)?
        .into_iter()
        .filter(|b| b.secrets_root.is_none())
        .collect();
    // No secrets root yet: no directory to adopt (and `migrate` creates none).
    if legacy.is_empty() || std::fs::symlink_metadata(config.secrets_dir()).is_err() {
        return Ok((Vec::new(), None));
    }
    let secrets =
        botmaker_secrets::SecretsStore::open_with(config.secrets_dir(), config.secrets_options()?)?;
    let here = secrets.root_id();
    let dirs: BTreeSet<BotId> = secrets.bots()?.into_iter().collect();
    let mut adopted = Vec::new();
    for bot in legacy.iter().filter(|b| dirs.contains(&b.id)) {
        match registry.adopt_secrets_root(&bot.id, &here) {
            Ok(stored) if stored.secrets_root == Some(here) => adopted.push(bot.id),
            // Adopted by another host meanwhile, or deleted: nothing to do here.
            Ok(_) | Err(RepoError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !adopted.is_empty() {
        tracing::info!(
            adopted = adopted.len(),
            root_id = %here,
            "adopted bots registered before secrets placement"
        );
    }
    Ok((adopted, Some(here)))
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
