//! A consistent copy of a live database, for backups: SQLite's online backup API
//! copies every page of one read transaction of the source (WAL readers never block
//! the writer, nor it them), into a new file that is then a self-contained database
//! (`journal_mode=DELETE`: no `-wal` or `-shm` beside it).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use botmaker_domain::BotId;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::connection::{self, Role, sqlite_err};
use crate::{StoreError, store};

/// How long a copy waits, in total, for a source that is momentarily busy or locked.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// Switches a self-contained database file (`journal_mode=DELETE`, open nowhere) to
/// WAL, closes it and makes it durable, for a restore to link in place afterwards.
///
/// The first open of a database in another journal mode switches it to WAL, and that
/// switch writes the file's header through a rollback journal: a crash in it leaves a
/// hot `-journal` beside the database, which openers refuse until `migrate` rolls it
/// back. Switching the copy before it is linked keeps that window away from the live
/// name. Leaves no `-wal` or `-shm` behind (SQLite removes both when the last
/// connection closes).
pub fn switch_to_wal(path: &Path) -> Result<(), StoreError> {
    let conn = connection::open(path, Role::Migrate, connection::CHECK_BUSY_TIMEOUT)?;
    connection::configure(&conn, path, Role::Migrate)?;
    close_and_sync(conn, path)
}

/// Closes the connection to a copy, then `fsync`s the file.
fn close_and_sync(conn: Connection, path: &Path) -> Result<(), StoreError> {
    conn.close()
        .map_err(|(_, e)| sqlite_err(path, "closing the copy", e))?;
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| StoreError::Io {
            operation: "syncing",
            path: path.to_owned(),
            source,
        })
}

/// For a restore: forgets which secrets root held each bot's secrets
/// (`bots.secrets_root`, schema V3) in the database file at `path`, a copy that no
/// process has open yet. The restored secrets are in another root (the restoring
/// host's) than the one the backup recorded; with the roots forgotten, the facade's
/// `migrate` adopts every bot whose directory the restore wrote into that root.
/// Returns how many rows had a root; a file of an older schema (no such column) is
/// left as it is (0). The file is `fsync`ed.
pub fn forget_secrets_roots(path: &Path) -> Result<usize, StoreError> {
    let conn = connection::open(path, Role::Migrate, connection::CHECK_BUSY_TIMEOUT)?;
    let err = |e| sqlite_err(path, "forgetting the secrets roots of the copy", e);
    let has_column: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('bots') WHERE name = 'secrets_root'",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    let forgotten = if has_column {
        conn.execute(
            "UPDATE bots SET secrets_root = NULL WHERE secrets_root IS NOT NULL",
            [],
        )
        .map_err(err)?
    } else {
        0
    };
    close_and_sync(conn, path)?;
    Ok(forgotten)
}

/// The copy [`PendingSnapshot::copy`] made: a database file of its own, open until [`finish`], to
/// read its bot ids and drop the rows of bots that must be left out.
///
/// [`finish`]: RegistrySnapshot::finish
pub struct RegistrySnapshot {
    conn: Connection,
    path: PathBuf,
    schema_version: u32,
}

impl std::fmt::Debug for RegistrySnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySnapshot")
            .field("path", &self.path)
            .field("schema_version", &self.schema_version)
            .finish_non_exhaustive()
    }
}

/// A copy being prepared by [`snapshot`]: the source checked and opened, the new file
/// created; [`copy`](PendingSnapshot::copy) copies the pages. Split so that a caller
/// holding a lock around the copy holds it for the copy alone.
pub struct PendingSnapshot {
    src: Connection,
    source: PathBuf,
    dest: Connection,
    path: PathBuf,
    schema_version: u32,
}

impl std::fmt::Debug for PendingSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSnapshot")
            .field("source", &self.source)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Prepares a copy of the database at `source` (which must be openable: migrated to
/// this code's version, as [`SqliteStore::open`](crate::SqliteStore::open) requires)
/// into a new file `dest` (created `0600`; it must not exist). Nothing is written to
/// the source, then or during [`copy`](PendingSnapshot::copy).
pub fn snapshot(source: &Path, dest: &Path) -> Result<PendingSnapshot, StoreError> {
    let schema_version = store::check_openable(source)?;
    let src = connection::open(source, Role::Read, BUSY_WAIT)?;
    create_private(dest)?;
    let conn = Connection::open_with_flags(
        dest,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sqlite_err(dest, "opening the copy", e))?;
    conn.pragma_update(None, "synchronous", "OFF")
        .map_err(|e| sqlite_err(dest, "setting synchronous=OFF", e))?;
    Ok(PendingSnapshot {
        src,
        source: source.to_owned(),
        dest: conn,
        path: dest.to_owned(),
        schema_version,
    })
}

impl PendingSnapshot {
    /// Copies every page of the source in one step of SQLite's online backup API: the
    /// copy is the database as one read transaction saw it, while writers in other
    /// connections and processes go on (WAL). The copy is written without `fsync`
    /// (`synchronous=OFF`): [`finish`](RegistrySnapshot::finish) makes it durable, and
    /// a caller holding a lock around this call holds it for the page copy alone.
    pub fn copy(self) -> Result<RegistrySnapshot, StoreError> {
        let Self {
            src,
            source,
            dest: mut conn,
            path,
            schema_version,
        } = self;
        copy_all(&src, &mut conn, &source)?;
        Ok(RegistrySnapshot {
            conn,
            path,
            schema_version,
        })
    }
}

/// Creates `path` empty, `0600` whatever the umask (set on the descriptor); an empty
/// file is an empty database to SQLite.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let io = |operation, source| StoreError::Io {
        operation,
        path: path.to_owned(),
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io("creating", e))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("setting the mode of", e))
}

/// Every page of `src` into `dest`, in one step (one read transaction of the source),
/// retried while the source is momentarily busy.
fn copy_all(src: &Connection, dest: &mut Connection, source: &Path) -> Result<(), StoreError> {
    let backup = Backup::new(src, dest).map_err(|e| sqlite_err(source, "starting a backup", e))?;
    let mut waited = Duration::ZERO;
    let pause = Duration::from_millis(5);
    loop {
        match backup
            .step(-1)
            .map_err(|e| sqlite_err(source, "backing up", e))?
        {
            StepResult::Done => return Ok(()),
            StepResult::More | StepResult::Busy | StepResult::Locked if waited < BUSY_WAIT => {
                std::thread::sleep(pause);
                waited += pause;
            }
            _ => {
                return Err(failure(
                    source,
                    rusqlite::ffi::SQLITE_BUSY,
                    "backing up",
                    format!("the source stayed busy for {} ms", BUSY_WAIT.as_millis()),
                ));
            }
        }
    }
}

/// An SQLite error that SQLite did not report itself (a refused pragma answer, a
/// source that stays busy).
fn failure(path: &Path, code: i32, operation: &'static str, detail: String) -> StoreError {
    StoreError::Sqlite {
        path: path.to_owned(),
        operation,
        source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(detail)),
    }
}

impl RegistrySnapshot {
    /// The copy's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the copy (that of the source).
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }

    /// Every bot id in the copy, sorted.
    pub fn bot_ids(&self) -> Result<Vec<BotId>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM bots ORDER BY id")
            .map_err(|e| sqlite_err(&self.path, "listing bots", e))?;
        let ids = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(|e| sqlite_err(&self.path, "listing bots", e))?;
        let mut out = Vec::new();
        for id in ids {
            let id = id.map_err(|e| sqlite_err(&self.path, "listing bots", e))?;
            let parsed = BotId::from_str(&id).map_err(|_| StoreError::NotADatabase {
                path: self.path.clone(),
                reason: "a bot id that is not a canonical UUID",
            })?;
            out.push(parsed);
        }
        Ok(out)
    }

    /// Deletes the bots `ids` from the copy (never the source), in one transaction.
    pub fn remove_bots(&mut self, ids: &[BotId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction()
            .map_err(|e| sqlite_err(&self.path, "removing bots from the copy", e))?;
        for id in ids {
            tx.execute("DELETE FROM bots WHERE id = ?1", [id.to_string()])
                .map_err(|e| sqlite_err(&self.path, "removing bots from the copy", e))?;
        }
        tx.commit()
            .map_err(|e| sqlite_err(&self.path, "removing bots from the copy", e))
    }

    /// Switches the copy to `journal_mode=DELETE` (so that it is one file, with no
    /// `-wal` or `-shm` beside it), closes it and makes it durable (`fsync`).
    pub fn finish(self) -> Result<(), StoreError> {
        let path = self.path;
        let mode: String = self
            .conn
            .pragma_update_and_check(None, "journal_mode", "DELETE", |row| row.get(0))
            .map_err(|e| sqlite_err(&path, "setting journal_mode=DELETE", e))?;
        if !mode.eq_ignore_ascii_case("delete") {
            return Err(failure(
                &path,
                rusqlite::ffi::SQLITE_ERROR,
                "setting journal_mode=DELETE",
                format!("SQLite kept journal_mode={mode}"),
            ));
        }
        self.conn
            .close()
            .map_err(|(_, e)| sqlite_err(&path, "closing the copy", e))?;
        File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|source| StoreError::Io {
                operation: "syncing",
                path: path.clone(),
                source,
            })
    }
}
