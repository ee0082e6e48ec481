//! [`migrate`] and [`migration_status`]: the one code path for migrating a PostgreSQL
//! registry, and how its schema stands against this code's migrations.

use std::fmt;

use postgres::{Client, NoTls};
use refinery::{SchemaVersion, Target};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::schema::{AppliedMigration, MigrationInfo, embedded, info, shipped_migrations};
use crate::{DatabaseUrl, LATEST_VERSION, PgError};

/// The key of the session-level advisory lock `migrate` holds: the bytes of
/// `"botmaker"` as a big-endian `i64`. Every host that migrates one database takes
/// it, so two cannot migrate at once; the second waits, then finds nothing to do.
pub const MIGRATE_LOCK_KEY: i64 = i64::from_be_bytes(*b"botmaker");

/// refinery's history table.
const HISTORY: &str = "refinery_schema_history";

/// What [`migrate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// The database (its redacted connection string).
    pub database: String,
    /// The migrations applied, oldest first. Empty: the database was up to date.
    pub applied: Vec<MigrationInfo>,
    /// The schema version before (0: a new database).
    pub from_version: u32,
    /// The schema version now.
    pub to_version: u32,
}

impl MigrationReport {
    /// Whether nothing needed applying.
    pub fn was_up_to_date(&self) -> bool {
        self.applied.is_empty()
    }
}

/// Where a database stands relative to this code's migrations.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaState {
    /// Every shipped migration is applied: openers accept it.
    UpToDate,
    /// Some shipped migrations are not applied yet (all of them, in an empty
    /// database); `migrate` applies them.
    Pending,
    /// The database was migrated by newer code; this code refuses it.
    TooNew,
    /// The history does not match the shipped migrations; nothing can fix that
    /// automatically.
    Diverged {
        /// The first version that differs.
        version: u32,
        /// What differs.
        detail: String,
    },
}

/// A database's migration status, as [`migration_status`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStatus {
    /// The database (its redacted connection string).
    pub database: String,
    /// Where it stands.
    pub state: SchemaState,
    /// Its schema version: the highest version applied (0: none).
    pub db_version: u32,
    /// The newest version this code ships ([`LATEST_VERSION`]).
    pub code_version: u32,
    /// The migrations its history records, oldest first.
    pub applied: Vec<AppliedMigration>,
    /// The shipped migrations it has not applied, oldest first.
    pub pending: Vec<MigrationInfo>,
}

/// What a database's history says, read without writing anything.
pub(crate) struct Inspection {
    pub(crate) state: DbState,
    pub(crate) applied: Vec<AppliedMigration>,
}

pub(crate) enum DbState {
    /// No history and no `bots` table: every migration is pending.
    Empty,
    /// Some migrations are pending.
    Pending {
        db: u32,
        pending: Vec<MigrationInfo>,
    },
    /// Up to date.
    Current { version: u32 },
    /// Too new.
    TooNew { db: u32 },
    /// Diverged history (or one refinery could not read).
    Diverged { version: u32, detail: String },
    /// Not botmaker's.
    Foreign { reason: String },
}

impl DbState {
    /// The error an opener (or, for refusals, `migrate`) returns.
    pub(crate) fn refusal(self, url: &DatabaseUrl) -> Option<PgError> {
        let database = url.to_string();
        match self {
            Self::TooNew { db } => Some(PgError::SchemaTooNew {
                database,
                db,
                code: LATEST_VERSION,
            }),
            Self::Diverged { version, detail } => Some(PgError::MigrationsDiverged {
                database,
                version,
                detail,
            }),
            Self::Foreign { reason } => Some(PgError::NotABotmakerDatabase { database, reason }),
            Self::Empty | Self::Pending { .. } | Self::Current { .. } => None,
        }
    }
}

/// Opens one plain connection (for migrating and inspecting; the store has its pool).
pub(crate) fn connect(url: &DatabaseUrl) -> Result<Client, PgError> {
    url.config()
        .connect(NoTls)
        .map_err(|source| PgError::Connect {
            host: url.host(),
            dbname: url.dbname().to_owned(),
            database: url.to_string(),
            source,
        })
}

pub(crate) fn pg_err(
    url: &DatabaseUrl,
    operation: &'static str,
) -> impl Fn(postgres::Error) -> PgError {
    let database = url.to_string();
    move |source| PgError::Postgres {
        database: database.clone(),
        operation,
        source,
    }
}

/// Reads the history of the database `client` is connected to, and compares it with
/// the shipped migrations. Reads only.
pub(crate) fn inspect(client: &mut Client) -> Result<Inspection, postgres::Error> {
    let row = client.query_one(
        "SELECT to_regclass($1::text) IS NOT NULL, to_regclass('bots') IS NOT NULL",
        &[&HISTORY],
    )?;
    let (has_history, has_bots): (bool, bool) = (row.try_get(0)?, row.try_get(1)?);
    if !has_history {
        let state = if has_bots {
            DbState::Foreign {
                reason: "a bots table without a migration history".to_owned(),
            }
        } else {
            DbState::Empty
        };
        return Ok(Inspection {
            state,
            applied: Vec::new(),
        });
    }
    // Every column as text: a damaged row is a refusal here, not a panic in refinery
    // (which unwraps the checksum and the time it reads back).
    let rows = client.query(
        "SELECT version::text, name::text, applied_on::text, checksum::text \
         FROM refinery_schema_history ORDER BY version",
        &[],
    )?;
    let mut applied = Vec::with_capacity(rows.len());
    for row in &rows {
        let version: Option<String> = row.try_get(0)?;
        let name: Option<String> = row.try_get(1)?;
        let applied_on: Option<String> = row.try_get(2)?;
        let checksum: Option<String> = row.try_get(3)?;
        let version = version.as_deref().and_then(|v| v.parse::<u32>().ok());
        let checksum_value = checksum.as_deref().and_then(|c| c.parse::<u64>().ok());
        let time_ok = applied_on
            .as_deref()
            .is_some_and(|t| OffsetDateTime::parse(t, &Rfc3339).is_ok());
        let Some(version) = version.filter(|_| checksum_value.is_some() && time_ok) else {
            return Ok(Inspection {
                state: DbState::Diverged {
                    version: version.unwrap_or(0),
                    detail: "the history has a row refinery cannot read (version, time or \
                             checksum)"
                        .to_owned(),
                },
                applied,
            });
        };
        applied.push(AppliedMigration {
            version,
            name: name.unwrap_or_default(),
            applied_on,
            checksum: checksum_value,
        });
    }
    let state = compare(&applied);
    Ok(Inspection { state, applied })
}

/// The history against the shipped migrations.
fn compare(applied: &[AppliedMigration]) -> DbState {
    let shipped = shipped_migrations();
    let db = applied.iter().map(|m| m.version).max().unwrap_or(0);
    if db > LATEST_VERSION {
        return DbState::TooNew { db };
    }
    for m in applied {
        let Some(s) = shipped.iter().find(|s| s.version == m.version) else {
            return DbState::Diverged {
                version: m.version,
                detail: format!("V{} is not a migration this code ships", m.version),
            };
        };
        if s.name != m.name || Some(s.checksum) != m.checksum {
            return DbState::Diverged {
                version: m.version,
                detail: format!(
                    "applied V{}__{} (checksum {}) differs from shipped {s} (checksum {})",
                    m.version,
                    m.name,
                    m.checksum
                        .map_or_else(|| "none".to_owned(), |c| c.to_string()),
                    s.checksum
                ),
            };
        }
    }
    // A shipped migration missing below the newest applied one.
    if let Some(s) = shipped
        .iter()
        .find(|s| s.version < db && !applied.iter().any(|m| m.version == s.version))
    {
        return DbState::Diverged {
            version: s.version,
            detail: format!("{s} is missing from the history below version {db}"),
        };
    }
    let pending: Vec<MigrationInfo> = shipped.into_iter().filter(|s| s.version > db).collect();
    match (db, pending.is_empty()) {
        (_, true) => DbState::Current { version: db },
        (0, false) => DbState::Empty,
        (_, false) => DbState::Pending { db, pending },
    }
}

/// Reports where the database stands: its applied migrations, the pending ones, and
/// this code's newest version (for `migrate --status` and the doctor). Reads only; a
/// schema too new or diverged is reported in [`MigrationStatus::state`], a database
/// that is not botmaker's is [`PgError::NotABotmakerDatabase`].
pub fn migration_status(url: &DatabaseUrl) -> Result<MigrationStatus, PgError> {
    botmaker_domain::observe::run(
        botmaker_domain::op_span!("migration_status", crate::BACKEND),
        || {
            let mut client = connect(url)?;
            status_on(&mut client, url)
        },
    )
}

pub(crate) fn status_on(
    client: &mut Client,
    url: &DatabaseUrl,
) -> Result<MigrationStatus, PgError> {
    let Inspection { state, applied } =
        inspect(client).map_err(pg_err(url, "reading the migration history"))?;
    let db_version = applied.iter().map(|m| m.version).max().unwrap_or(0);
    let pending: Vec<MigrationInfo> = shipped_migrations()
        .into_iter()
        .filter(|s| !applied.iter().any(|m| m.version == s.version))
        .collect();
    let state = match state {
        DbState::Empty | DbState::Pending { .. } => SchemaState::Pending,
        DbState::Current { .. } => SchemaState::UpToDate,
        DbState::TooNew { .. } => SchemaState::TooNew,
        DbState::Diverged { version, detail } => SchemaState::Diverged { version, detail },
        foreign @ DbState::Foreign { .. } => {
            return Err(foreign
                .refusal(url)
                .unwrap_or_else(|| unreachable_refusal(url)));
        }
    };
    Ok(MigrationStatus {
        database: url.to_string(),
        state,
        db_version,
        code_version: LATEST_VERSION,
        applied,
        pending,
    })
}

fn unreachable_refusal(url: &DatabaseUrl) -> PgError {
    PgError::NotABotmakerDatabase {
        database: url.to_string(),
        reason: "unreadable".to_owned(),
    }
}

/// Creates or upgrades the registry's schema in the database `url` names; the one
/// code path for migrating. The database itself must exist (`createdb`).
///
/// - Refuses, without writing anything, a database that holds a `bots` table but no
///   history, a schema newer than the code, and a diverged history.
/// - Takes the session-level `pg_advisory_lock(MIGRATE_LOCK_KEY)`, so two hosts never
///   migrate at once: the second waits, then finds nothing to do. The lock is released
///   at the end, and by the server if this process dies.
/// - Applies each pending migration in its own transaction with the history row that
///   records it.
///
/// Returns the migrations applied; an empty list means the schema was up to date.
pub fn migrate(url: &DatabaseUrl) -> Result<MigrationReport, PgError> {
    botmaker_domain::observe::run(botmaker_domain::op_span!("migrate", crate::BACKEND), || {
        let mut client = connect(url)?;
        // Refuse before waiting for the lock, then look again under it: another host
        // may have migrated meanwhile.
        if let Some(e) = inspect(&mut client)
            .map_err(pg_err(url, "reading the migration history"))?
            .state
            .refusal(url)
        {
            return Err(e);
        }
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK_KEY])
            .map_err(pg_err(url, "taking the migration lock"))?;
        let result = migrate_locked(&mut client, url);
        // Released by the server when the session ends anyway; an error here changes
        // nothing that happened.
        let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK_KEY]);
        result
    })
}

fn migrate_locked(client: &mut Client, url: &DatabaseUrl) -> Result<MigrationReport, PgError> {
    let inspection = inspect(client).map_err(pg_err(url, "reading the migration history"))?;
    let (from_version, pending) = match inspection.state {
        DbState::Empty => (0, shipped_migrations()),
        DbState::Pending { db, pending } => (db, pending),
        DbState::Current { version } => (version, Vec::new()),
        refused => {
            return Err(refused
                .refusal(url)
                .unwrap_or_else(|| unreachable_refusal(url)));
        }
    };
    let mut applied: Vec<MigrationInfo> = Vec::new();
    // One run per migration, each `grouped`: refinery commits the migration and its
    // history row in one transaction.
    for migration in &pending {
        let report = embedded::migrations::runner()
            .set_target(Target::Version(
                SchemaVersion::try_from(migration.version).unwrap_or(SchemaVersion::MAX),
            ))
            .set_grouped(true)
            .set_abort_divergent(true)
            .set_abort_missing(true)
            .run(client)
            .map_err(|e| PgError::Migration {
                database: url.to_string(),
                source: Box::new(e),
            })?;
        for m in report.applied_migrations().iter().map(info) {
            tracing::info!(
                database = %url,
                version = m.version,
                name = %m.name,
                "migration applied"
            );
            applied.push(m);
        }
    }
    let to_version = applied
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(from_version);
    Ok(MigrationReport {
        database: url.to_string(),
        applied,
        from_version,
        to_version,
    })
}

impl fmt::Display for MigrationReport {
    /// One line per migration applied (`applied V1__create_bots`), or `up to date`,
    /// then the schema version: the sqlite crate's lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.applied.is_empty() {
            return writeln!(f, "up to date (schema version {})", self.to_version);
        }
        for m in &self.applied {
            writeln!(f, "applied V{}__{}", m.version, m.name)?;
        }
        writeln!(
            f,
            "schema version {} -> {}",
            self.from_version, self.to_version
        )
    }
}

impl fmt::Display for MigrationStatus {
    /// The database, its state, then one line per applied and per pending migration:
    /// the sqlite crate's lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            SchemaState::UpToDate => "up to date".to_owned(),
            SchemaState::Pending => "migrations pending (run `migrate`)".to_owned(),
            SchemaState::TooNew => "newer than this code (refused)".to_owned(),
            SchemaState::Diverged { version, detail } => {
                format!("history diverged at V{version}: {detail}")
            }
        };
        writeln!(f, "database: {}", self.database)?;
        writeln!(f, "state: {state}")?;
        writeln!(
            f,
            "schema version: {} (code: {})",
            self.db_version, self.code_version
        )?;
        for m in &self.applied {
            let on = m.applied_on.as_deref().unwrap_or("unknown time");
            writeln!(f, "applied V{}__{} ({on})", m.version, m.name)?;
        }
        for m in &self.pending {
            writeln!(f, "pending V{}__{}", m.version, m.name)?;
        }
        Ok(())
    }
}
