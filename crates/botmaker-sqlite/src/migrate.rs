//! The schema: the shipped migrations, [`migrate`], [`migration_status`], and the
//! checks every opener runs before it touches a database.

use std::ffi::OsString;
use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read as _};
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use refinery::Migration;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{LATEST_VERSION, StoreError};

/// The migrations in `migrations/`, embedded at build time.
mod embedded {
    #![allow(unreachable_pub, missing_docs, clippy::unwrap_used)]
    refinery::embed_migrations!("migrations");
}

/// refinery's history table.
const HISTORY_TABLE: &str = "refinery_schema_history";

/// How long `migrate` and the openers' checks wait for other connections.
pub(crate) const CHECK_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// One migration this code ships.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationInfo {
    /// Its version, the `{n}` of `V{n}__{name}.sql`.
    pub version: u32,
    /// Its name, the `{name}` of `V{n}__{name}.sql`.
    pub name: String,
    /// refinery's checksum of its version, name and SQL (what the history records).
    pub checksum: u64,
}

impl fmt::Display for MigrationInfo {
    /// `V{version}__{name}`, as the file is named.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "V{}__{}", self.version, self.name)
    }
}

/// One migration recorded in a database's history.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedMigration {
    /// Its version.
    pub version: u32,
    /// Its name as recorded.
    pub name: String,
    /// When it was applied (RFC 3339, as refinery recorded it), if recorded.
    pub applied_on: Option<String>,
    /// The checksum recorded, if it is a number.
    pub checksum: Option<u64>,
}

/// What [`migrate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// The database.
    pub path: PathBuf,
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

fn shipped_migrations_raw() -> &'static [Migration] {
    static SHIPPED: LazyLock<Vec<Migration>> = LazyLock::new(|| {
        let mut migrations = embedded::migrations::runner().get_migrations().clone();
        migrations.sort_by_key(Migration::version);
        migrations
    });
    &SHIPPED
}

fn info(m: &Migration) -> MigrationInfo {
    MigrationInfo {
        version: u32::try_from(m.version()).unwrap_or(0),
        name: m.name().to_owned(),
        checksum: m.checksum(),
    }
}

/// The migrations this code ships, oldest first.
pub fn shipped_migrations() -> Vec<MigrationInfo> {
    shipped_migrations_raw().iter().map(info).collect()
}

/// What is at a path, judged without opening it with SQLite.
pub(crate) enum FileKind {
    Missing,
    Empty,
    Sqlite,
}

/// Looks at the file without modifying it: missing, empty, or starting with the
/// SQLite header; anything else is refused.
pub(crate) fn file_kind(path: &Path) -> Result<FileKind, StoreError> {
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
    let not_a_db = |reason| StoreError::NotADatabase {
        path: path.to_owned(),
        reason,
    };
    if !meta.is_file() {
        return Err(not_a_db("not a regular file"));
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
        Ok(()) => Err(not_a_db("no SQLite header")),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            Err(not_a_db("shorter than an SQLite header"))
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

/// Maps an SQLite error met while inspecting or opening a database.
pub(crate) fn sqlite_err(path: &Path, operation: &'static str, e: rusqlite::Error) -> StoreError {
    if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
        StoreError::NotADatabase {
            path: path.to_owned(),
            reason: "SQLite says the file is not a database",
        }
    } else {
        StoreError::Sqlite {
            path: path.to_owned(),
            operation,
            source: e,
        }
    }
}

/// Opens a connection with `flags` and sets its busy timeout first.
pub(crate) fn connect(
    path: &Path,
    flags: OpenFlags,
    busy_timeout: Duration,
) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| sqlite_err(path, "opening", e))?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| sqlite_err(path, "setting busy_timeout", e))?;
    Ok(conn)
}

/// A read-only connection for inspecting: never creates the file or writes to it.
pub(crate) fn connect_read_only(path: &Path) -> Result<Connection, StoreError> {
    connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY, CHECK_BUSY_TIMEOUT)
}

/// Reads the migration history (empty when there is no history table). Refuses an
/// SQLite database that has tables but no history: it is not ours.
pub(crate) fn read_history(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<AppliedMigration>, StoreError> {
    let err = |e| sqlite_err(path, "reading the migration history", e);
    let (history, others): (i64, i64) = conn
        .query_row(
            "SELECT count(*) FILTER (WHERE name = ?1), count(*) FILTER (WHERE name <> ?1) \
             FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            [HISTORY_TABLE],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(err)?;
    if history == 0 {
        if others > 0 {
            return Err(StoreError::NotADatabase {
                path: path.to_owned(),
                reason: "an SQLite database without botmaker's migration history",
            });
        }
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare(
            "SELECT version, CAST(name AS TEXT), CAST(applied_on AS TEXT), CAST(checksum AS TEXT) \
             FROM refinery_schema_history ORDER BY version",
        )
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    let mut applied = Vec::new();
    while let Some(row) = rows.next().map_err(err)? {
        let version: i64 = row.get(0).map_err(err)?;
        let version = u32::try_from(version).map_err(|_| StoreError::MigrationsDiverged {
            path: path.to_owned(),
            version: 0,
            detail: format!("the history records version {version}, which is not a migration"),
        })?;
        let checksum: Option<String> = row.get(3).map_err(err)?;
        applied.push(AppliedMigration {
            version,
            name: row
                .get::<_, Option<String>>(1)
                .map_err(err)?
                .unwrap_or_default(),
            applied_on: row.get(2).map_err(err)?,
            checksum: checksum.and_then(|c| c.parse().ok()),
        });
    }
    Ok(applied)
}

/// Compares a history with the shipped migrations: `Ok(pending)` or why this code
/// must not touch the database.
pub(crate) fn plan(
    path: &Path,
    applied: &[AppliedMigration],
) -> Result<Vec<MigrationInfo>, StoreError> {
    let db = db_version(applied);
    if db > LATEST_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            db,
            code: LATEST_VERSION,
        });
    }
    let shipped = shipped_migrations();
    let diverged = |version, detail| StoreError::MigrationsDiverged {
        path: path.to_owned(),
        version,
        detail,
    };
    for a in applied {
        // refinery's rusqlite driver parses every `applied_on` as RFC 3339 and panics
        // on anything else: such a history is refused here, before refinery reads it.
        let when = a.applied_on.as_deref();
        if when.is_none_or(|w| OffsetDateTime::parse(w, &Rfc3339).is_err()) {
            return Err(diverged(
                a.version,
                format!(
                    "the history records V{}__{} as applied on {}, which is not an RFC 3339 time",
                    a.version,
                    a.name,
                    when.map_or_else(|| "nothing (NULL)".to_owned(), |w| format!("{w:?}"))
                ),
            ));
        }
        match shipped.iter().find(|m| m.version == a.version) {
            None => {
                return Err(diverged(
                    a.version,
                    format!(
                        "the database applied V{}__{}, which this code does not ship",
                        a.version, a.name
                    ),
                ));
            }
            Some(m) if m.name != a.name || Some(m.checksum) != a.checksum => {
                return Err(diverged(
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
                ));
            }
            Some(_) => {}
        }
    }
    let pending: Vec<MigrationInfo> = shipped
        .into_iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .collect();
    if let Some(skipped) = pending.iter().find(|m| m.version < db) {
        return Err(diverged(
            skipped.version,
            format!(
                "V{}__{} was never applied but later versions were",
                skipped.version, skipped.name
            ),
        ));
    }
    Ok(pending)
}

fn db_version(applied: &[AppliedMigration]) -> u32 {
    applied.iter().map(|a| a.version).max().unwrap_or(0)
}

/// Reports where the database at `path` stands: its applied migrations, the pending
/// ones, and this code's newest version (for `cargo xtask migrate --status`).
///
/// Never creates or modifies the database file: a missing file is reported as
/// [`SchemaState::Missing`], and the file is only read, through a read-only
/// connection. (SQLite may create the `-wal`/`-shm` companions of a WAL database.)
/// A file that is not a database is an error ([`StoreError::NotADatabase`]); a
/// schema that is too new or diverged is reported in [`MigrationStatus::state`].
pub fn migration_status(path: &Path) -> Result<MigrationStatus, StoreError> {
    let mut status = MigrationStatus {
        path: path.to_owned(),
        state: SchemaState::Missing,
        db_version: 0,
        code_version: LATEST_VERSION,
        applied: Vec::new(),
        pending: shipped_migrations(),
    };
    match file_kind(path)? {
        FileKind::Missing => return Ok(status),
        FileKind::Empty => {
            status.state = SchemaState::Pending;
            return Ok(status);
        }
        FileKind::Sqlite => {}
    }
    let conn = connect_read_only(path)?;
    status.applied = read_history(&conn, path)?;
    drop(conn);
    status.db_version = db_version(&status.applied);
    status
        .pending
        .retain(|m| !status.applied.iter().any(|a| a.version == m.version));
    status.state = match plan(path, &status.applied) {
        Ok(pending) if pending.is_empty() => SchemaState::UpToDate,
        Ok(_) => SchemaState::Pending,
        Err(StoreError::SchemaTooNew { .. }) => SchemaState::TooNew,
        Err(StoreError::MigrationsDiverged {
            version, detail, ..
        }) => SchemaState::Diverged { version, detail },
        Err(e) => return Err(e),
    };
    Ok(status)
}

/// The lock file next to the database: `<file>.migrate-lock`.
fn lock_path(path: &Path) -> Result<PathBuf, StoreError> {
    let Some(name) = path.file_name() else {
        return Err(StoreError::Io {
            path: path.to_owned(),
            operation: "finding the file name of",
            source: io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
        });
    };
    let mut lock_name = OsString::from(name);
    lock_name.push(".migrate-lock");
    Ok(path.with_file_name(lock_name))
}

fn create_parent(path: &Path) -> Result<(), StoreError> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(parent).map_err(|source| StoreError::Io {
        path: parent.to_owned(),
        operation: "creating the folder",
        source,
    })
}

fn create_new_file(path: &Path) -> Result<(), StoreError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: path.to_owned(),
            operation: "creating the database",
            source,
        }),
    }
}

/// Takes the cross-process migration lock (an exclusive `flock` on
/// `<file>.migrate-lock`, created 0600 and never removed). Released when the file
/// closes, also when the process dies.
fn take_lock(path: &Path) -> Result<File, StoreError> {
    let lock_path = lock_path(path)?;
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    options.mode(0o600);
    let file = options.open(&lock_path).map_err(|source| StoreError::Io {
        path: lock_path.clone(),
        operation: "opening the migration lock",
        source,
    })?;
    file.lock().map_err(|source| StoreError::Io {
        path: lock_path,
        operation: "taking the migration lock",
        source,
    })?;
    Ok(file)
}

/// Sets the journal mode to WAL (persistent in the file) and checks SQLite's answer.
pub(crate) fn set_wal(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| sqlite_err(path, "setting journal_mode=WAL", e))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(StoreError::NotWal {
            path: path.to_owned(),
            mode,
        })
    }
}

/// Creates or upgrades the database at `path`; the one code path for migrating
/// (`cargo xtask migrate` and `botmaker migrate` call it).
///
/// - Creates the parent folder (0700) and the file (0600) when missing.
/// - Takes a cross-process lock (`<file>.migrate-lock`), so two processes never
///   migrate at once: the second waits, then finds nothing to do.
/// - Refuses, without writing anything, a file that is not a database (or not
///   botmaker's), a schema newer than the code, and a diverged history.
/// - Sets the journal mode to WAL and applies the pending migrations, each in its own
///   transaction.
///
/// Returns the migrations applied; an empty list means the database was up to date.
pub fn migrate(path: &Path) -> Result<MigrationReport, StoreError> {
    // Refuse what must be refused before creating anything next to the file (read
    // only); then look again under the lock, as another process may have changed it.
    if matches!(file_kind(path)?, FileKind::Sqlite) {
        let conn = connect_read_only(path)?;
        plan(path, &read_history(&conn, path)?)?;
    }
    create_parent(path)?;
    let _lock = take_lock(path)?;
    if matches!(file_kind(path)?, FileKind::Missing) {
        create_new_file(path)?;
    }
    let mut conn = connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE, CHECK_BUSY_TIMEOUT)?;
    let applied = read_history(&conn, path)?;
    let from_version = db_version(&applied);
    let pending = plan(path, &applied)?;
    set_wal(&conn, path)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .and_then(|()| conn.pragma_update(None, "foreign_keys", "ON"))
        .map_err(|e| sqlite_err(path, "setting pragmas", e))?;
    if pending.is_empty() {
        return Ok(MigrationReport {
            path: path.to_owned(),
            applied: Vec::new(),
            from_version,
            to_version: from_version,
        });
    }
    let report = embedded::migrations::runner()
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run(&mut conn)
        .map_err(|e| StoreError::Migration {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
    let applied: Vec<MigrationInfo> = report.applied_migrations().iter().map(info).collect();
    let to_version = applied
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(from_version);
    Ok(MigrationReport {
        path: path.to_owned(),
        applied,
        from_version,
        to_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use botmaker_domain::{AiProvider, BotStatus, ChannelType};

    const V1: &str = include_str!("../migrations/V1__create_bots.sql");

    /// The quoted values of `column IN (...)` in the migration.
    fn check_list(sql: &str, column: &str) -> Vec<String> {
        let start = sql
            .find(&format!("CHECK ({column} IN ("))
            .unwrap_or_else(|| panic!("no CHECK list for {column}"));
        let rest = &sql[start..];
        let open = rest.find("IN (").unwrap() + 4;
        let close = rest[open..].find(')').unwrap() + open;
        rest[open..close]
            .split(',')
            .map(|v| v.trim().trim_matches('\'').to_owned())
            .collect()
    }

    #[test]
    fn the_check_lists_are_the_domain_lists() {
        let providers: Vec<String> = AiProvider::ALL.iter().map(|v| v.as_str().into()).collect();
        let channels: Vec<String> = ChannelType::ALL.iter().map(|v| v.as_str().into()).collect();
        let statuses: Vec<String> = BotStatus::ALL.iter().map(|v| v.as_str().into()).collect();
        // The newest migration that defines the `bots` table must list them all; V1 is
        // that migration until one rebuilds the table.
        assert_eq!(check_list(V1, "ai_provider"), providers);
        assert_eq!(check_list(V1, "channel_type"), channels);
        assert_eq!(check_list(V1, "status"), statuses);
        assert!(V1.contains("DEFAULT 'created'"));
        assert_eq!(BotStatus::ALL[0].as_str(), "created");
    }

    #[test]
    fn latest_version_is_the_newest_shipped_migration() {
        let shipped = shipped_migrations();
        assert_eq!(shipped.last().map(|m| m.version), Some(LATEST_VERSION));
        let versions: Vec<u32> = shipped.iter().map(|m| m.version).collect();
        let expected: Vec<u32> = (1..=LATEST_VERSION).collect();
        assert_eq!(versions, expected, "versions are 1, 2, 3, … without gaps");
    }

    #[test]
    fn no_pragma_in_migrations() {
        for m in shipped_raw_sql() {
            assert!(!m.to_ascii_lowercase().contains("pragma"), "{m}");
        }
    }

    fn shipped_raw_sql() -> Vec<String> {
        shipped_migrations_raw()
            .iter()
            .map(|m| m.sql().unwrap_or_default().to_owned())
            .collect()
    }

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

    #[test]
    fn lock_path_is_a_sibling() {
        assert_eq!(
            lock_path(Path::new("/a/b/botmaker.db")).unwrap(),
            Path::new("/a/b/botmaker.db.migrate-lock")
        );
        assert!(lock_path(Path::new("/")).is_err());
    }
}
