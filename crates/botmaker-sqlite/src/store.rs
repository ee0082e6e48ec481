//! [`SqliteStore`]: the [`BotRepository`] on an SQLite file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use botmaker_domain::{
    AiProvider, Bot, BotId, BotName, BotRepository, BotStatus, ChannelType, Clock, ContainerId,
    DomainError, ModelName, NewBot, PageCursor, RepoError, Timestamp,
};
use rusqlite::{Connection, ErrorCode, OpenFlags, Row, Transaction, TransactionBehavior, params};

use crate::migrate::{
    FileKind, connect, connect_read_only, file_kind, plan, read_history, set_wal, sqlite_err,
};
use crate::{LATEST_VERSION, StoreError};

/// How a [`SqliteStore`] is opened. `StoreOptions::default()` is what
/// [`SqliteStore::open`] uses.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// How long a statement waits for other writers (other processes, or a
    /// checkpoint) before failing with [`RepoError::Busy`]. Default: 5 s.
    pub busy_timeout: Duration,
    /// How many reader connections run reads in parallel with the writer and with
    /// each other. At least 1 is used. Default: 4.
    pub readers: usize,
    /// Where `created_at`/`updated_at` come from. Default: [`Clock::system`].
    pub clock: Clock,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            clock: Clock::system(),
        }
    }
}

/// The columns of a bot, in the order [`decode`] reads them.
macro_rules! bot_columns {
    () => {
        "id, name, ai_provider, model, channel_type, container_id, status, created_at, updated_at"
    };
}

/// Listing order: newest first, ties broken by id (unique), so it is total.
macro_rules! newest_first {
    () => {
        " ORDER BY created_at DESC, id DESC"
    };
}

const GET_BY_ID: &str = concat!("SELECT ", bot_columns!(), " FROM bots WHERE id = ?1");
const GET_BY_NAME: &str = concat!("SELECT ", bot_columns!(), " FROM bots WHERE name = ?1");
const LIST_ALL: &str = concat!("SELECT ", bot_columns!(), " FROM bots", newest_first!());
const LIST_BY_STATUS: &str = concat!(
    "SELECT ",
    bot_columns!(),
    " FROM bots WHERE status = ?1",
    newest_first!()
);
const PAGE_ALL: &str = concat!(
    "SELECT ",
    bot_columns!(),
    " FROM bots",
    newest_first!(),
    " LIMIT ?1"
);
const PAGE_ALL_AFTER: &str = concat!(
    "SELECT ",
    bot_columns!(),
    " FROM bots WHERE (created_at, id) < (?1, ?2)",
    newest_first!(),
    " LIMIT ?3"
);
const PAGE_BY_STATUS: &str = concat!(
    "SELECT ",
    bot_columns!(),
    " FROM bots WHERE status = ?1",
    newest_first!(),
    " LIMIT ?2"
);
const PAGE_BY_STATUS_AFTER: &str = concat!(
    "SELECT ",
    bot_columns!(),
    " FROM bots WHERE status = ?1 AND (created_at, id) < (?2, ?3)",
    newest_first!(),
    " LIMIT ?4"
);
const ID_EXISTS: &str = "SELECT 1 FROM bots WHERE id = ?1";
const NAME_EXISTS: &str = "SELECT 1 FROM bots WHERE name = ?1";
const INSERT: &str = concat!(
    "INSERT INTO bots (",
    bot_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
);
const GET_STATUS: &str = "SELECT status FROM bots WHERE id = ?1";
const UPDATE_STATUS: &str = concat!(
    "UPDATE bots SET status = ?2, updated_at = ?3 WHERE id = ?1 RETURNING ",
    bot_columns!()
);
const UPDATE_CONTAINER: &str = concat!(
    "UPDATE bots SET container_id = ?2, updated_at = ?3 WHERE id = ?1 RETURNING ",
    bot_columns!()
);
const DELETE: &str = "DELETE FROM bots WHERE id = ?1";
const QUICK_CHECK: &str = "PRAGMA quick_check";
const INTEGRITY_CHECK: &str = "PRAGMA integrity_check";

/// Every statement the store prepares (each through `prepare_cached`).
#[cfg(test)]
const STATEMENTS: &[&str] = &[
    GET_BY_ID,
    GET_BY_NAME,
    LIST_ALL,
    LIST_BY_STATUS,
    PAGE_ALL,
    PAGE_ALL_AFTER,
    PAGE_BY_STATUS,
    PAGE_BY_STATUS_AFTER,
    ID_EXISTS,
    NAME_EXISTS,
    INSERT,
    GET_STATUS,
    UPDATE_STATUS,
    UPDATE_CONTAINER,
    DELETE,
    QUICK_CHECK,
    INTEGRITY_CHECK,
];

/// Prepared-statement cache size of every connection: room for all statements.
const STATEMENT_CACHE: usize = 32;

/// A pool of read-only connections. A read takes one for the duration of one
/// statement; the pool's mutex is held only to take or give back a connection.
struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

/// A connection borrowed from the pool; given back on drop (also on unwind).
struct Reader<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

impl ReaderPool {
    fn take(&self) -> Reader<'_> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(conn) = idle.pop() {
                return Reader {
                    pool: self,
                    conn: Some(conn),
                };
            }
            idle = self
                .returned
                .wait(idle)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            self.pool.returned.notify_one();
        }
    }
}

/// The bot registry in an SQLite file: one writer connection behind a mutex, and a
/// pool of read-only connections that read in parallel with it (WAL). `Send + Sync`:
/// share one per process (for example in an `Arc`).
///
/// Opening never migrates and never modifies a database it refuses: see
/// [`SqliteStore::open_with`].
pub struct SqliteStore {
    // Field order is drop order: the readers close before the writer, so the last
    // connection to close is the writer, which checkpoints and removes the WAL.
    readers: ReaderPool,
    writer: Mutex<Connection>,
    path: PathBuf,
    schema_version: u32,
    busy_timeout: Duration,
    clock: Clock,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("schema_version", &self.schema_version)
            .field("busy_timeout", &self.busy_timeout)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path` with [`StoreOptions::default`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens the database at `path`, which [`migrate`](crate::migrate) must have
    /// brought to this code's version.
    ///
    /// Before anything is written (through a read-only connection, and for the
    /// header without SQLite at all), it refuses:
    /// a missing file ([`StoreError::Missing`]; it is not created),
    /// a file that is not a botmaker database ([`StoreError::NotADatabase`]),
    /// a schema newer than the code ([`StoreError::SchemaTooNew`]),
    /// a diverged history ([`StoreError::MigrationsDiverged`]) and
    /// pending migrations ([`StoreError::MigrationsPending`]; an empty file is a
    /// database with every migration pending).
    ///
    /// Then it opens the writer and the readers with `busy_timeout` first, then
    /// `journal_mode=WAL` (checked), `synchronous=NORMAL` and `foreign_keys=ON`,
    /// outside any transaction.
    pub fn open_with(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        let schema_version = check_openable(path)?;
        let writer = connect(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE,
            options.busy_timeout,
        )?;
        set_wal(&writer, path)?;
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            .and_then(|()| writer.pragma_update(None, "foreign_keys", "ON"))
            .map_err(|e| sqlite_err(path, "setting pragmas", e))?;
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut idle = Vec::new();
        for _ in 0..options.readers.max(1) {
            let reader = connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY, options.busy_timeout)?;
            reader
                .pragma_update(None, "foreign_keys", "ON")
                .map_err(|e| sqlite_err(path, "setting pragmas", e))?;
            reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            idle.push(reader);
        }
        Ok(Self {
            readers: ReaderPool {
                idle: Mutex::new(idle),
                returned: Condvar::new(),
            },
            writer: Mutex::new(writer),
            path: path.to_owned(),
            schema_version,
            busy_timeout: options.busy_timeout,
            clock: options.clock,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the database when it was opened (equal to
    /// [`LATEST_VERSION`]: openers refuse any other).
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }

    /// SQLite's `PRAGMA quick_check`: the problems found, empty when the database is
    /// sound. Faster than [`SqliteStore::integrity_check`]; skips index contents.
    pub fn quick_check(&self) -> Result<Vec<String>, StoreError> {
        self.check(QUICK_CHECK)
    }

    /// SQLite's `PRAGMA integrity_check`: the problems found, empty when the database
    /// is sound.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        self.check(INTEGRITY_CHECK)
    }

    fn check(&self, pragma: &'static str) -> Result<Vec<String>, StoreError> {
        let reader = self.readers.take();
        let Some(conn) = reader.conn.as_ref() else {
            return Err(StoreError::Repo(lost_reader()));
        };
        let err = |e| sqlite_err(&self.path, pragma, e);
        let mut stmt = conn.prepare_cached(pragma).map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        let mut problems = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let line: String = row.get(0).map_err(err)?;
            if line != "ok" {
                problems.push(line);
            }
        }
        Ok(problems)
    }

    fn busy_ms(&self) -> u64 {
        u64::try_from(self.busy_timeout.as_millis()).unwrap_or(u64::MAX)
    }

    /// Maps an SQLite error by meaning.
    fn repo_err(&self, operation: &'static str, e: rusqlite::Error) -> RepoError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => RepoError::Busy {
                operation,
                waited_ms: self.busy_ms(),
            },
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => RepoError::Corrupt {
                detail: format!("{}: {operation}: {e}", self.path.display()),
            },
            _ => RepoError::Backend {
                operation,
                source: Box::new(e),
            },
        }
    }

    /// Runs `f` on a reader connection.
    fn read<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, RepoError> {
        let reader = self.readers.take();
        let Some(conn) = reader.conn.as_ref() else {
            return Err(lost_reader());
        };
        f(conn).map_err(|e| self.repo_err(operation, e))
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer and commits when it
    /// returns `Ok`; rolls back otherwise.
    fn write<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T, RepoError> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.repo_err(operation, e))?;
        let value = f(&tx).map_err(|failure| match failure {
            Failure::Repo(e) => e,
            Failure::Sqlite(e) => self.repo_err(operation, e),
        })?;
        tx.commit().map_err(|e| self.repo_err(operation, e))?;
        Ok(value)
    }

    #[cfg(test)]
    fn lock_writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Refuses what openers must not open; `Ok(schema version)` otherwise.
fn check_openable(path: &Path) -> Result<u32, StoreError> {
    let applied = match file_kind(path)? {
        FileKind::Missing => {
            return Err(StoreError::Missing {
                path: path.to_owned(),
            });
        }
        FileKind::Empty => Vec::new(),
        FileKind::Sqlite => {
            let conn = connect_read_only(path)?;
            read_history(&conn, path)?
        }
    };
    let db = applied.iter().map(|a| a.version).max().unwrap_or(0);
    let pending = plan(path, &applied)?;
    if pending.is_empty() {
        Ok(db)
    } else {
        Err(StoreError::MigrationsPending {
            path: path.to_owned(),
            db,
            code: LATEST_VERSION,
            pending,
        })
    }
}

/// A reader guard always holds its connection until it is dropped; this error only
/// exists so that the impossible case is not a panic.
fn lost_reader() -> RepoError {
    RepoError::Backend {
        operation: "taking a reader connection",
        source: "the reader pool handed out an empty guard".into(),
    }
}

/// Why a write closure failed: a decided repository error, or SQLite.
enum Failure {
    Repo(RepoError),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl From<RepoError> for Failure {
    fn from(e: RepoError) -> Self {
        Self::Repo(e)
    }
}

fn corrupt(detail: String) -> RepoError {
    RepoError::Corrupt { detail }
}

/// A row of the `bots` table as a [`Bot`]; anything undecodable is corruption.
fn decode(row: &Row<'_>) -> Result<Bot, RepoError> {
    let text = |i: usize| {
        row.get::<_, String>(i)
            .map_err(|e| corrupt(format!("bots row, column {i}: {e}")))
    };
    let id = BotId::parse(&text(0)?).map_err(|e| corrupt(format!("bots row: {e}")))?;
    let bad = |e: DomainError| corrupt(format!("bot {id}: {e}"));
    let micros = |i: usize| {
        row.get::<_, i64>(i)
            .map_err(|e| corrupt(format!("bot {id}, column {i}: {e}")))
            .and_then(|m| Timestamp::from_unix_micros(m).map_err(bad))
    };
    let container: Option<String> = row
        .get(5)
        .map_err(|e| corrupt(format!("bot {id}, container_id: {e}")))?;
    Ok(Bot {
        id,
        name: BotName::parse(&text(1)?).map_err(bad)?,
        ai_provider: AiProvider::parse(&text(2)?).map_err(bad)?,
        model: ModelName::parse(&text(3)?).map_err(bad)?,
        channel_type: ChannelType::parse(&text(4)?).map_err(bad)?,
        container_id: container
            .as_deref()
            .map(ContainerId::parse)
            .transpose()
            .map_err(bad)?,
        status: BotStatus::parse(&text(6)?).map_err(bad)?,
        created_at: micros(7)?,
        updated_at: micros(8)?,
    })
}

/// Runs a prepared query and decodes every row. The outer error is SQLite's, the inner
/// one a row that does not decode.
fn collect(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Result<Vec<Bot>, RepoError>, rusqlite::Error> {
    let mut rows = stmt.query(params)?;
    let mut bots = Vec::new();
    while let Some(row) = rows.next()? {
        match decode(row) {
            Ok(bot) => bots.push(bot),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(bots))
}

/// The first row of a query, decoded; `None` when there is none.
fn first(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Option<Result<Bot, RepoError>>, rusqlite::Error> {
    let mut rows = stmt.query(params)?;
    Ok(rows.next()?.map(decode))
}

fn not_found(bot: impl fmt::Display) -> RepoError {
    RepoError::NotFound {
        bot: bot.to_string(),
    }
}

fn page_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl BotRepository for SqliteStore {
    fn create(&self, new: &NewBot) -> Result<Bot, RepoError> {
        let mut buf = [0u8; BotId::LEN];
        let id = new.id.encode(&mut buf);
        self.write("create", |tx| {
            if tx.prepare_cached(ID_EXISTS)?.exists([id])? {
                return Err(RepoError::IdTaken { id: new.id }.into());
            }
            if tx
                .prepare_cached(NAME_EXISTS)?
                .exists([new.name.as_str()])?
            {
                return Err(RepoError::NameTaken {
                    name: new.name.clone(),
                }
                .into());
            }
            let bot = Bot::from_new(new.clone(), self.clock.now());
            let inserted = tx.prepare_cached(INSERT)?.execute(params![
                id,
                bot.name.as_str(),
                bot.ai_provider.as_str(),
                bot.model.as_str(),
                bot.channel_type.as_str(),
                None::<&str>,
                bot.status.as_str(),
                bot.created_at.as_unix_micros(),
                bot.updated_at.as_unix_micros(),
            ]);
            match inserted {
                Ok(_) => Ok(bot),
                Err(e) => Err(unique_violation(&e, new).map_or(Failure::Sqlite(e), Failure::Repo)),
            }
        })
    }

    fn get(&self, id: &BotId) -> Result<Bot, RepoError> {
        let mut buf = [0u8; BotId::LEN];
        let key = id.encode(&mut buf);
        self.read("get", |conn| {
            first(&mut conn.prepare_cached(GET_BY_ID)?, [key])
        })?
        .unwrap_or_else(|| Err(not_found(id)))
    }

    fn get_by_name(&self, name: &BotName) -> Result<Bot, RepoError> {
        self.read("get_by_name", |conn| {
            first(&mut conn.prepare_cached(GET_BY_NAME)?, [name.as_str()])
        })?
        .unwrap_or_else(|| Err(not_found(name)))
    }

    fn list(&self, status: Option<BotStatus>) -> Result<Vec<Bot>, RepoError> {
        self.read("list", |conn| match status {
            None => collect(&mut conn.prepare_cached(LIST_ALL)?, []),
            Some(s) => collect(&mut conn.prepare_cached(LIST_BY_STATUS)?, [s.as_str()]),
        })?
    }

    fn list_page(
        &self,
        status: Option<BotStatus>,
        after: Option<PageCursor>,
        limit: usize,
    ) -> Result<Vec<Bot>, RepoError> {
        let limit = page_limit(limit);
        let mut buf = [0u8; BotId::LEN];
        let after = after.map(|c| (c.created_at.as_unix_micros(), c.id.encode(&mut buf)));
        self.read("list_page", |conn| match (status, after) {
            (None, None) => collect(&mut conn.prepare_cached(PAGE_ALL)?, [limit]),
            (None, Some((at, id))) => collect(
                &mut conn.prepare_cached(PAGE_ALL_AFTER)?,
                params![at, id, limit],
            ),
            (Some(s), None) => collect(
                &mut conn.prepare_cached(PAGE_BY_STATUS)?,
                params![s.as_str(), limit],
            ),
            (Some(s), Some((at, id))) => collect(
                &mut conn.prepare_cached(PAGE_BY_STATUS_AFTER)?,
                params![s.as_str(), at, id, limit],
            ),
        })?
    }

    fn set_status(&self, id: &BotId, to: BotStatus) -> Result<Bot, RepoError> {
        let mut buf = [0u8; BotId::LEN];
        let key = id.encode(&mut buf);
        self.write("set_status", |tx| {
            let from: Option<String> = tx
                .prepare_cached(GET_STATUS)?
                .query([key])?
                .next()?
                .map(|row| row.get(0))
                .transpose()?;
            let from = from.ok_or_else(|| not_found(id))?;
            let from = BotStatus::parse(&from).map_err(|e| corrupt(format!("bot {id}: {e}")))?;
            if !from.can_transition_to(to) {
                return Err(RepoError::InvalidTransition { id: *id, from, to }.into());
            }
            let now = self.clock.now().as_unix_micros();
            let bot = first(
                &mut tx.prepare_cached(UPDATE_STATUS)?,
                params![key, to.as_str(), now],
            )?;
            Ok(bot.ok_or_else(|| not_found(id))??)
        })
    }

    fn set_container_id(
        &self,
        id: &BotId,
        container: Option<&ContainerId>,
    ) -> Result<Bot, RepoError> {
        let mut buf = [0u8; BotId::LEN];
        let key = id.encode(&mut buf);
        self.write("set_container_id", |tx| {
            if !tx.prepare_cached(ID_EXISTS)?.exists([key])? {
                return Err(not_found(id).into());
            }
            let now = self.clock.now().as_unix_micros();
            let bot = first(
                &mut tx.prepare_cached(UPDATE_CONTAINER)?,
                params![key, container.map(ContainerId::as_str), now],
            )?;
            Ok(bot.ok_or_else(|| not_found(id))??)
        })
    }

    fn delete(&self, id: &BotId) -> Result<(), RepoError> {
        let mut buf = [0u8; BotId::LEN];
        let key = id.encode(&mut buf);
        self.write("delete", |tx| {
            match tx.prepare_cached(DELETE)?.execute([key])? {
                0 => Err(not_found(id).into()),
                _ => Ok(()),
            }
        })
    }
}

/// A UNIQUE violation of the insert as the repository error it means. Unreachable
/// while `create` checks both keys first in the same transaction; kept so that a
/// constraint is never reported as a backend failure.
fn unique_violation(e: &rusqlite::Error, new: &NewBot) -> Option<RepoError> {
    let rusqlite::Error::SqliteFailure(err, Some(message)) = e else {
        return None;
    };
    if err.code != ErrorCode::ConstraintViolation {
        return None;
    }
    if message.contains("bots.name") {
        Some(RepoError::NameTaken {
            name: new.name.clone(),
        })
    } else if message.contains("bots.id") {
        Some(RepoError::IdTaken { id: new.id })
    } else {
        None
    }
}

impl SqliteStore {
    /// The query plan SQLite chose for each statement, for tests.
    #[cfg(test)]
    pub(crate) fn plans(&self) -> Vec<(&'static str, String)> {
        let conn = self.lock_writer();
        STATEMENTS
            .iter()
            .filter(|sql| !sql.starts_with("PRAGMA"))
            .map(|sql| {
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
                let details: Vec<String> = stmt
                    .query_map(rusqlite::params_from_iter(nulls), |row| {
                        row.get::<_, String>(3)
                    })
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                (*sql, details.join("; "))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("botmaker.db");
        migrate(&path).unwrap();
        let store = SqliteStore::open(&path).unwrap();
        (dir, store)
    }

    #[test]
    fn the_statement_cache_holds_every_statement() {
        assert!(STATEMENT_CACHE >= STATEMENTS.len());
        let (_dir, store) = store();
        // Every statement compiles against the shipped schema.
        let conn = store.lock_writer();
        for sql in STATEMENTS {
            conn.prepare_cached(sql).unwrap();
        }
    }

    #[test]
    fn listings_use_indexes_and_never_sort() {
        let (_dir, store) = store();
        for (sql, plan) in store.plans() {
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
            let scans_table = plan.contains("SCAN bots") && !plan.contains("INDEX");
            assert!(!scans_table, "{sql}: {plan}");
        }
    }

    #[test]
    fn the_store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SqliteStore>();
    }
}
