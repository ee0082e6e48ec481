//! Inspecting a database file without modifying it: [`inspect`] says where the file
//! stands ([`DbState`]) and is the one sequence (file kind, then history, then the
//! comparison with the shipped migrations) behind [`SqliteStore::open`],
//! [`migrate`] and [`migration_status`].
//!
//! [`SqliteStore::open`]: crate::SqliteStore::open
//! [`migrate`]: crate::migrate

use std::ffi::OsString;
use std::fs::{DirBuilder, File};
use std::io::{self, Read as _};
#[cfg(unix)]
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

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
    /// Whether a hot rollback journal lies beside the database: `state` and `applied`
    /// are then what SQLite will see once it is rolled back (they were read from a
    /// rolled-back copy), which only a read-write connection does. Openers refuse it
    /// ([`StoreError::HotJournal`]); `migrate` rolls it back under its lock.
    pub(crate) hot_journal: bool,
}

/// Looks at the database at `path` without creating, changing or deleting any file
/// of it (main file, `-wal`, `-shm`, `-journal`) or anything beside it: the file's
/// first bytes (without SQLite), then, for an SQLite file, its migration history,
/// compared with the shipped migrations.
///
/// SQLite itself is never pointed at the files in a way that lets it write: a main
/// file that holds the whole database (no `-wal`, no `-journal`) is read with
/// `immutable=1`; otherwise the history is read from a private copy of the files (see
/// [`read_history_of`]).
///
/// `Err` only when the file cannot be looked at (I/O, SQLite failing); anything the
/// file itself says is a [`DbState`].
pub(crate) fn inspect(path: &Path) -> Result<Inspection, StoreError> {
    let found = |state| {
        Ok(Inspection {
            state,
            applied: Vec::new(),
            hot_journal: false,
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
    let history = read_history_of(path)?;
    let hot_journal = has_hot_journal(path);
    match history {
        Ok(applied) => Ok(Inspection {
            state: judge(&applied),
            applied,
            hot_journal,
        }),
        Err(refusal) => found(DbState::Refused(refusal)),
    }
}

/// Whether `<path>-journal` is hot as SQLite judges it (without its lock test): it
/// starts with a non-zero byte and the main file is not empty. SQLite rolls such a
/// journal back on the next read-write open, and fails every read-only one with
/// `SQLITE_READONLY_ROLLBACK`. A crash leaves one when it interrupts a write in
/// rollback-journal mode: in botmaker's databases, only the switch to WAL of the
/// first migration (the file is empty before it, so rolling back empties it again).
fn has_hot_journal(path: &Path) -> bool {
    let main_has_pages = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
    let mut first = [0u8; 1];
    main_has_pages
        && File::open(companion(path, "-journal"))
            .and_then(|mut j| j.read_exact(&mut first))
            .is_ok_and(|()| first[0] != 0)
}

/// How many times [`read_history_of`] reads again when the files changed under it.
const READ_ATTEMPTS: usize = 3;

/// Reads the history of the SQLite file at `path` without writing to any of its files.
///
/// SQLite, even read-only, writes beside a database: it creates the `-wal` and `-shm`
/// of a WAL database that has none, rebuilds a `-shm`, and deletes a `-wal` whose main
/// file has no pages. So:
/// - no `-wal` and no `-journal`: the main file holds the whole database, and SQLite
///   reads it with `immutable=1` (no lock, no companion file);
/// - otherwise the history may live only in the `-wal` (committed, not yet
///   checkpointed), or the main file may be half-written under a hot `-journal`: the
///   main file, `-wal` and `-journal` are copied, in that order, into a private
///   folder, and SQLite reads the copy read-write, replaying its WAL or rolling back
///   its journal there, as it would the original. The `-shm` is never read: SQLite
///   rebuilds it from the copied WAL.
///
/// A writer in another process may checkpoint into the main file while it is read or
/// copied: the main file's size and modification time, and which companions exist,
/// are compared before and after, and the read is made again when they changed (main
/// file first, then the WAL, so a copy made while nothing wrote to the main file is a
/// consistent snapshot: a WAL restarted meanwhile holds only frames newer than the
/// main file, and a torn frame fails its checksum).
fn read_history_of(path: &Path) -> Result<History, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let before = Stamp::take(path)?;
        let read = read_once(path, &before);
        let after = Stamp::take(path)?;
        if before == after || attempt >= READ_ATTEMPTS {
            return read;
        }
    }
}

/// The history, or why the file is refused.
type History = Result<Vec<AppliedMigration>, Refusal>;

fn read_once(path: &Path, stamp: &Stamp) -> Result<History, StoreError> {
    let copy;
    let conn = if stamp.wal.is_none() && stamp.journal.is_none() {
        connection::open(path, Role::Inspect, CHECK_BUSY_TIMEOUT)?
    } else {
        copy = PrivateCopy::of(path)?;
        connection::open(&copy.db, Role::InspectCopy, CHECK_BUSY_TIMEOUT)
            .map_err(|e| of_original(e, path))?
    };
    let history = match read_history(&conn) {
        Ok(history) => history,
        Err(e) if is_not_a_database(&e) => Err(Refusal::NotADatabase {
            reason: NOT_A_DATABASE,
        }),
        Err(e) => return Err(sqlite_err(path, "reading the migration history", e)),
    };
    drop(conn);
    Ok(history)
}

/// An error met on the private copy, naming the original database instead.
fn of_original(e: StoreError, path: &Path) -> StoreError {
    let path = path.to_owned();
    match e {
        StoreError::Sqlite {
            operation, source, ..
        } => StoreError::Sqlite {
            path,
            operation,
            source,
        },
        StoreError::NotADatabase { reason, .. } => StoreError::NotADatabase { path, reason },
        other => other,
    }
}

/// What [`read_history_of`] compares before and after a read: the main file's size
/// and modification time, and the size and time of the `-wal` and `-journal` that
/// exist.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    main: Option<(u64, Option<SystemTime>)>,
    wal: Option<(u64, Option<SystemTime>)>,
    journal: Option<(u64, Option<SystemTime>)>,
}

impl Stamp {
    fn take(path: &Path) -> Result<Self, StoreError> {
        let of = |p: &Path| match std::fs::metadata(p) {
            Ok(m) => Ok(Some((m.len(), m.modified().ok()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io {
                path: p.to_owned(),
                operation: "reading the metadata of",
                source,
            }),
        };
        Ok(Self {
            main: of(path)?,
            wal: of(&companion(path, "-wal"))?,
            // An empty journal is not hot: SQLite ignores it.
            journal: of(&companion(path, "-journal"))?.filter(|(len, _)| *len > 0),
        })
    }
}

/// `<path><suffix>`: SQLite's name for a companion file of the database.
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// A private folder (0700, in the system's temporary folder, never beside the
/// database) holding a copy of a database's main file, `-wal` and `-journal`;
/// removed when dropped.
struct PrivateCopy {
    dir: PathBuf,
    db: PathBuf,
}

impl PrivateCopy {
    fn of(path: &Path) -> Result<Self, StoreError> {
        let dir = private_dir()?;
        let copy = Self {
            db: dir.join("db"),
            dir,
        };
        let io_err = |p: &Path| {
            let p = p.to_owned();
            move |source| StoreError::Io {
                path: p,
                operation: "copying, to inspect it,",
                source,
            }
        };
        std::fs::copy(path, &copy.db).map_err(io_err(path))?;
        for suffix in ["-journal", "-wal"] {
            let from = companion(path, suffix);
            match std::fs::copy(&from, companion(&copy.db, suffix)) {
                Ok(_) => {}
                // Gone since it was seen (checkpointed, committed): the stamp taken
                // after the read sees it and the read is made again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&from)(e)),
            }
        }
        Ok(copy)
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        // Best effort: a leftover copy in the temporary folder harms nothing.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates a new folder only this user can enter, in the system's temporary folder.
fn private_dir() -> Result<PathBuf, StoreError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut builder = DirBuilder::new();
    #[cfg(unix)]
    builder.mode(0o700);
    let mut tries = 0;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!(
            "botmaker-inspect-{}-{nanos:x}-{n}",
            std::process::id()
        ));
        match builder.create(&dir) {
            Ok(()) => return Ok(dir),
            // Another process's folder of the same name: a new name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 16 => tries += 1,
            Err(source) => {
                return Err(StoreError::Io {
                    path: dir,
                    operation: "creating a private folder to inspect a database in",
                    source,
                });
            }
        }
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
        // SQLite never leaves frames in a WAL beside a main file without pages (it
        // writes the main file's first page, synced, before the first frame), and
        // every SQLite connection deletes such a WAL on sight. Its pages are the
        // only copy of whatever was there: refuse, so that nothing here (not even
        // `migrate`) hands it to SQLite, and leave both files to a person.
        return Ok(if wal_has_content(path) {
            FileKind::NotSqlite(EMPTY_BESIDE_WAL)
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

/// Why an empty main file beside a non-empty `-wal` is refused.
const EMPTY_BESIDE_WAL: &str = "an empty file beside a non-empty -wal, which SQLite would \
     delete; restore the database file or move the -wal aside";

/// Whether `<path>-wal` exists and is not empty.
fn wal_has_content(path: &Path) -> bool {
    std::fs::metadata(companion(path, "-wal")).is_ok_and(|m| m.is_file() && m.len() > 0)
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
/// Never creates, changes or deletes a file of the database (main file, `-wal`,
/// `-shm`, `-journal`) or anything beside it: a missing file is reported as
/// [`SchemaState::Missing`], and the files are only read. A database beside a hot
/// rollback journal is reported as it will be once [`migrate`](crate::migrate) has
/// rolled the journal back.
/// A file that is not a database is an error ([`StoreError::NotADatabase`]); a
/// schema that is too new or diverged is reported in [`MigrationStatus::state`].
pub fn migration_status(path: &Path) -> Result<MigrationStatus, StoreError> {
    let Inspection { state, applied, .. } = inspect(path)?;
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
    fn an_empty_file_with_a_wal_with_frames_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("botmaker.db");
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(file_kind(&path).unwrap(), FileKind::Empty));
        std::fs::write(dir.path().join("botmaker.db-wal"), b"").unwrap();
        assert!(matches!(file_kind(&path).unwrap(), FileKind::Empty));
        std::fs::write(dir.path().join("botmaker.db-wal"), b"frames").unwrap();
        assert!(matches!(
            file_kind(&path).unwrap(),
            FileKind::NotSqlite(EMPTY_BESIDE_WAL)
        ));
    }
}
