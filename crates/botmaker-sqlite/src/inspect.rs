//! Inspecting a database file without modifying it: [`inspect`] says where the file
//! stands ([`DbState`]) and is the one sequence (file kind, then history, then the
//! comparison with the shipped migrations) behind [`SqliteStore::open`],
//! [`migrate`] and [`migration_status`].
//!
//! [`SqliteStore::open`]: crate::SqliteStore::open
//! [`migrate`]: crate::migrate

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::connection::{
    self, CHECK_BUSY_TIMEOUT, NOT_A_DATABASE, Role, is_not_a_database, sqlite_err,
};
use crate::schema::{AppliedMigration, MigrationInfo, shipped_migrations};
use crate::{LATEST_VERSION, StoreError};

/// refinery's history table.
const HISTORY_TABLE: &str = "refinery_schema_history";

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Where a database file stands relative to this code's migrations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DbState {
    /// There is no file.
    Missing,
    /// The file is empty: a database with every migration pending.
    Empty,
    /// Every shipped migration is applied; the schema version is `version`.
    Current { version: u32 },
    /// The history is a prefix of the shipped migrations: `pending` (oldest first)
    /// are missing, and the schema version is `db`.
    Pending {
        db: u32,
        pending: Vec<MigrationInfo>,
    },
    /// Nothing in this crate may write to the file.
    Refused(Refusal),
}

/// Why nothing in this crate may write to a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not an SQLite database, or one that is not botmaker's.
    NotADatabase { reason: &'static str },
    /// Migrated by newer code, to version `db`.
    TooNew { db: u32 },
    /// The history does not match the shipped migrations from `version` on.
    Diverged { version: u32, detail: String },
    /// The history cannot even be read as migrations (a version that is not a
    /// migration number). Unlike a divergence, `migration_status` has no history to
    /// list for it, so it is an error there too.
    UnreadableHistory { detail: String },
}

impl Refusal {
    /// The error that refuses the file at `path`.
    pub(crate) fn into_error(self, path: &Path) -> StoreError {
        let path = path.to_owned();
        match self {
            Self::NotADatabase { reason } => StoreError::NotADatabase { path, reason },
            Self::TooNew { db } => StoreError::SchemaTooNew {
                path,
                db,
                code: LATEST_VERSION,
            },
            Self::Diverged { version, detail } => StoreError::MigrationsDiverged {
                path,
                version,
                detail,
            },
            Self::UnreadableHistory { detail } => StoreError::MigrationsDiverged {
                path,
                version: 0,
                detail,
            },
        }
    }
}

/// What [`inspect`] found.
#[derive(Clone, Debug)]
pub(crate) struct Inspection {
    pub(crate) state: DbState,
    /// The history as recorded, oldest first (empty when there is none, or when the
    /// file is refused before its history is read).
    pub(crate) applied: Vec<AppliedMigration>,
}

/// Looks at the database at `path` without writing to it: the file's first bytes
/// (without SQLite), then, for an SQLite file, its migration history through a
/// read-only connection, compared with the shipped migrations. (SQLite may create
/// the `-wal`/`-shm` companions of a WAL database to read it.)
///
/// `Err` only when the file cannot be looked at (I/O, SQLite failing); anything the
/// file itself says is a [`DbState`].
pub(crate) fn inspect(path: &Path) -> Result<Inspection, StoreError> {
    let found = |state| {
        Ok(Inspection {
            state,
            applied: Vec::new(),
        })
    };
    match file_kind(path)? {
        FileKind::Missing => return found(DbState::Missing),
        FileKind::Empty => return found(DbState::Empty),
        FileKind::NotSqlite(reason) => {
            return found(DbState::Refused(Refusal::NotADatabase { reason }));
        }
        FileKind::Sqlite => {}
    }
    let conn = connection::open(path, Role::Inspect, CHECK_BUSY_TIMEOUT)?;
    let history = match read_history(&conn) {
        Ok(history) => history,
        Err(e) if is_not_a_database(&e) => {
            return found(DbState::Refused(Refusal::NotADatabase {
                reason: NOT_A_DATABASE,
            }));
        }
        Err(e) => return Err(sqlite_err(path, "reading the migration history", e)),
    };
    drop(conn);
    match history {
        Ok(applied) => Ok(Inspection {
            state: judge(&applied),
            applied,
        }),
        Err(refusal) => found(DbState::Refused(refusal)),
    }
}

/// What is at a path, judged without opening it with SQLite.
enum FileKind {
    Missing,
    Empty,
    Sqlite,
    NotSqlite(&'static str),
}

/// Looks at the file without modifying it: missing, empty, starting with the SQLite
/// header, or something else.
fn file_kind(path: &Path) -> Result<FileKind, StoreError> {
    let io_err = |operation| {
        move |source| StoreError::Io {
            path: path.to_owned(),
            operation,
            source,
        }
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(FileKind::Missing),
        Err(e) => return Err(io_err("reading the metadata of")(e)),
    };
    if !meta.is_file() {
        return Ok(FileKind::NotSqlite("not a regular file"));
    }
    if meta.len() == 0 {
        // A WAL database whose pages were never checkpointed (its writer died before
        // closing) is an empty file next to a non-empty `-wal`: SQLite must read it.
        return Ok(if wal_has_content(path) {
            FileKind::Sqlite
        } else {
            FileKind::Empty
        });
    }
    let mut header = [0u8; 16];
    let mut file = File::open(path).map_err(io_err("opening"))?;
    match file.read_exact(&mut header) {
        Ok(()) if &header == SQLITE_MAGIC => Ok(FileKind::Sqlite),
        Ok(()) => Ok(FileKind::NotSqlite("no SQLite header")),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            Ok(FileKind::NotSqlite("shorter than an SQLite header"))
        }
        Err(e) => Err(io_err("reading the header of")(e)),
    }
}

/// Whether `<path>-wal` exists and is not empty.
fn wal_has_content(path: &Path) -> bool {
    let mut wal = OsString::from(path.as_os_str());
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.is_file() && m.len() > 0)
}

/// Reads the migration history (empty when there is no history table). The outer
/// error is SQLite's; the inner one refuses a database that has tables but no
/// history (it is not ours) or a history whose versions are not migrations.
fn read_history(
    conn: &Connection,
) -> Result<Result<Vec<AppliedMigration>, Refusal>, rusqlite::Error> {
    let (history, others): (i64, i64) = conn.query_row(
        "SELECT count(*) FILTER (WHERE name = ?1), count(*) FILTER (WHERE name <> ?1) \
         FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        [HISTORY_TABLE],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if history == 0 {
        if others > 0 {
            return Ok(Err(Refusal::NotADatabase {
                reason: "an SQLite database without botmaker's migration history",
            }));
        }
        return Ok(Ok(Vec::new()));
    }
    let mut stmt = conn.prepare(
        "SELECT version, CAST(name AS TEXT), CAST(applied_on AS TEXT), CAST(checksum AS TEXT) \
         FROM refinery_schema_history ORDER BY version",
    )?;
    let mut rows = stmt.query([])?;
    let mut applied = Vec::new();
    while let Some(row) = rows.next()? {
        let version: i64 = row.get(0)?;
        let Ok(version) = u32::try_from(version) else {
            return Ok(Err(Refusal::UnreadableHistory {
                detail: format!("the history records version {version}, which is not a migration"),
            }));
        };
        let checksum: Option<String> = row.get(3)?;
        applied.push(AppliedMigration {
            version,
            name: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
            applied_on: row.get(2)?,
            checksum: checksum.and_then(|c| c.parse().ok()),
        });
    }
    Ok(Ok(applied))
}

/// Compares a history with the shipped migrations.
fn judge(applied: &[AppliedMigration]) -> DbState {
    let db = db_version(applied);
    if db > LATEST_VERSION {
        return DbState::Refused(Refusal::TooNew { db });
    }
    let shipped = shipped_migrations();
    let diverged = |version, detail| DbState::Refused(Refusal::Diverged { version, detail });
    for a in applied {
        // refinery's rusqlite driver parses every `applied_on` as RFC 3339 and panics
        // on anything else: such a history is refused here, before refinery reads it.
        let when = a.applied_on.as_deref();
        if when.is_none_or(|w| OffsetDateTime::parse(w, &Rfc3339).is_err()) {
            return diverged(
                a.version,
                format!(
                    "the history records V{}__{} as applied on {}, which is not an RFC 3339 time",
                    a.version,
                    a.name,
                    when.map_or_else(|| "nothing (NULL)".to_owned(), |w| format!("{w:?}"))
                ),
            );
        }
        match shipped.iter().find(|m| m.version == a.version) {
            None => {
                return diverged(
                    a.version,
                    format!(
                        "the database applied V{}__{}, which this code does not ship",
                        a.version, a.name
                    ),
                );
            }
            Some(m) if m.name != a.name || Some(m.checksum) != a.checksum => {
                return diverged(
                    a.version,
                    format!(
                        "the database applied V{}__{} (checksum {}), this code ships V{}__{} \
                         (checksum {})",
                        a.version,
                        a.name,
                        a.checksum
                            .map_or_else(|| "unreadable".to_owned(), |c| c.to_string()),
                        m.version,
                        m.name,
                        m.checksum
                    ),
                );
            }
            Some(_) => {}
        }
    }
    let pending: Vec<MigrationInfo> = shipped
        .into_iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .collect();
    if let Some(skipped) = pending.iter().find(|m| m.version < db) {
        return diverged(
            skipped.version,
            format!(
                "V{}__{} was never applied but later versions were",
                skipped.version, skipped.name
            ),
        );
    }
    if pending.is_empty() {
        DbState::Current { version: db }
    } else {
        DbState::Pending { db, pending }
    }
}

/// The schema version a history reaches: the highest version applied (0: none).
fn db_version(applied: &[AppliedMigration]) -> u32 {
    applied.iter().map(|a| a.version).max().unwrap_or(0)
}

/// Where a database stands relative to this code's migrations.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaState {
    /// There is no database file yet; `migrate` creates it.
    Missing,
    /// Every shipped migration is applied: openers accept it.
    UpToDate,
    /// Some shipped migrations are not applied yet; `migrate` applies them.
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
    /// The database.
    pub path: PathBuf,
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

/// Reports where the database at `path` stands: its applied migrations, the pending
/// ones, and this code's newest version (for `migrate --status`).
///
/// Never creates or modifies the database file: a missing file is reported as
/// [`SchemaState::Missing`], and the file is only read, through a read-only
/// connection. (SQLite may create the `-wal`/`-shm` companions of a WAL database.)
/// A file that is not a database is an error ([`StoreError::NotADatabase`]); a
/// schema that is too new or diverged is reported in [`MigrationStatus::state`].
pub fn migration_status(path: &Path) -> Result<MigrationStatus, StoreError> {
    let Inspection { state, applied } = inspect(path)?;
    let state = match state {
        DbState::Missing => SchemaState::Missing,
        DbState::Empty | DbState::Pending { .. } => SchemaState::Pending,
        DbState::Current { .. } => SchemaState::UpToDate,
        DbState::Refused(Refusal::TooNew { .. }) => SchemaState::TooNew,
        DbState::Refused(Refusal::Diverged { version, detail }) => {
            SchemaState::Diverged { version, detail }
        }
        DbState::Refused(
            refusal @ (Refusal::NotADatabase { .. } | Refusal::UnreadableHistory { .. }),
        ) => {
            return Err(refusal.into_error(path));
        }
    };
    // Every shipped migration the history lacks, whatever the state: a diverged or
    // too new history still shows what this code would have applied.
    let mut pending = shipped_migrations();
    pending.retain(|m| !applied.iter().any(|a| a.version == m.version));
    Ok(MigrationStatus {
        path: path.to_owned(),
        state,
        db_version: db_version(&applied),
        code_version: LATEST_VERSION,
        applied,
        pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_with_a_wal_is_left_to_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("botmaker.db");
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(file_kind(&path).unwrap(), FileKind::Empty));
        std::fs::write(dir.path().join("botmaker.db-wal"), b"").unwrap();
        assert!(matches!(file_kind(&path).unwrap(), FileKind::Empty));
        std::fs::write(dir.path().join("botmaker.db-wal"), b"frames").unwrap();
        assert!(matches!(file_kind(&path).unwrap(), FileKind::Sqlite));
    }
}
