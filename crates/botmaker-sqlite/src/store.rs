//! [`SqliteStore`]: the [`BotRepository`] on an SQLite file.

use std::fmt;
use std::path::{Path, PathBuf};
#[cfg(test)]
use std::sync::MutexGuard;
use std::time::Duration;

use botmaker_domain::{
    Bot, BotId, BotName, BotRef, BotRepository, BotStatus, Clock, ContainerId, NewBot, PageCursor,
    RepoError, SecretsRootId, observe, op_span,
};
use rusqlite::{Connection, ErrorCode, params};

use crate::connection::{self, ConnectionSettings, Role, sqlite_err};
use crate::error::is_busy;
use crate::group::{Failure, Writer};
use crate::inspect::{DbState, inspect};
use crate::reader::ReaderPool;
use crate::row::{collect, corrupt, decode_with, first, text_ref};
use crate::schema::shipped_migrations;
use crate::{BACKEND, LATEST_VERSION, StoreError, WriteStats};

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

/// The columns of a bot, in the order `row::decode` reads them.
macro_rules! bot_columns {
    () => {
        "id, name, ai_provider, model, channel_type, container_id, status, created_at, updated_at, \
         secrets_root"
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
/// A bot and its rowid, for a change in the same transaction.
const GET_FOR_UPDATE: &str = concat!("SELECT ", bot_columns!(), ", rowid FROM bots WHERE id = ?1");
const INSERT: &str = concat!(
    "INSERT INTO bots (",
    bot_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
);
const UPDATE_STATUS: &str = "UPDATE bots SET status = ?2, updated_at = ?3 WHERE rowid = ?1";
const UPDATE_CONTAINER: &str = concat!(
    "UPDATE bots SET container_id = ?2, updated_at = ?3 WHERE id = ?1 RETURNING ",
    bot_columns!()
);
/// Records a secrets root for a bot that has none; the bot is then read with
/// `GET_BY_ID` in the same transaction.
const ADOPT_ROOT: &str = "UPDATE bots SET secrets_root = ?2 WHERE id = ?1 AND secrets_root IS NULL";
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
    GET_FOR_UPDATE,
    INSERT,
    UPDATE_STATUS,
    UPDATE_CONTAINER,
    ADOPT_ROOT,
    DELETE,
    crate::group::BEGIN_IMMEDIATE,
    crate::group::COMMIT,
    crate::group::SAVEPOINT,
    crate::group::RELEASE,
    crate::group::ROLLBACK_TO,
    QUICK_CHECK,
    INTEGRITY_CHECK,
];

/// The bot registry in an SQLite file: one writer connection, whose queue of writes
/// commits concurrent writes together (group commit), and a pool of read-only
/// connections that read in parallel with it (WAL). `Send + Sync`: share one per
/// process (for example in an `Arc`); threads writing through one store batch their
/// writes, where separate stores would take turns at SQLite's write lock.
///
/// Opening never migrates and never modifies a database it refuses: see
/// [`SqliteStore::open_with`].
pub struct SqliteStore {
    // Field order is drop order: the readers close before the writer, so the last
    // connection to close is the writer, which checkpoints and removes the WAL.
    readers: ReaderPool,
    writer: Writer,
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
        observe::run(op_span!("open", BACKEND), || {
            let schema_version = check_openable(path)?;
            let mut writer = connection::open(path, Role::Write, options.busy_timeout)?;
            connection::configure(&writer, path, Role::Write)?;
            connection::checkpoint_with_events(&mut writer, path)?;
            let readers = (0..options.readers.max(1))
                .map(|_| {
                    let reader = connection::open(path, Role::Read, options.busy_timeout)?;
                    connection::configure(&reader, path, Role::Read)?;
                    Ok(reader)
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Self {
                readers: ReaderPool::new(readers),
                writer: Writer::new(writer),
                path: path.to_owned(),
                schema_version,
                busy_timeout: options.busy_timeout,
                clock: options.clock,
            })
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

    /// How many writes this store has run since it opened, and in how many
    /// transactions (group commit batches the writes of concurrent threads).
    pub fn write_stats(&self) -> WriteStats {
        self.writer.stats()
    }

    /// Makes every transaction this store has committed durable, for an operation that
    /// must not go on before its change is on disk (the facade deletes a bot's row,
    /// then its secrets: a power cut must not bring the row back without them).
    ///
    /// The store commits with `synchronous=NORMAL`: a commit is in the WAL, which is
    /// fsynced only before a checkpoint. `PRAGMA wal_checkpoint` is not enough here:
    /// it fsyncs the WAL only when it can copy frames back, which a reader holding an
    /// older snapshot prevents. So this fsyncs the WAL file itself (every frame a
    /// commit wrote is in it, through any descriptor), then its directory (a new WAL
    /// file's name must be durable too). If a checkpoint has already reset the WAL,
    /// its frames are in the main file, which the checkpoint fsynced before. The
    /// main file is never opened here: closing a second descriptor of it would drop
    /// SQLite's POSIX locks. Writes of the store's own methods never call this: they
    /// stay without an fsync.
    pub fn sync(&self) -> Result<(), StoreError> {
        observe::run(op_span!("sync", BACKEND), || {
            // SQLite's own absolute name of the file (the path given may be relative to a
            // working directory that has changed since).
            let db = self
                .readers
                .take()
                .path()
                .filter(|p| !p.is_empty())
                .map_or_else(|| self.path.clone(), PathBuf::from);
            let mut wal = db.clone().into_os_string();
            wal.push("-wal");
            let wal = PathBuf::from(wal);
            let io = |operation, path: &Path| {
                let path = path.to_path_buf();
                move |source| StoreError::Io {
                    path,
                    operation,
                    source,
                }
            };
            std::fs::File::open(&wal)
                .and_then(|f| f.sync_all())
                .map_err(io("fsync", &wal))?;
            let dir = match db.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            std::fs::File::open(dir)
                .and_then(|f| f.sync_all())
                .map_err(io("fsync", dir))
        })
    }

    /// The settings of every connection of this store as SQLite reports them: the
    /// writer first, then each reader. For tests, which check that every connection
    /// (not only the first) has WAL, `synchronous=NORMAL`, `foreign_keys=ON` and the
    /// busy timeout.
    #[doc(hidden)]
    pub fn connection_settings(&self) -> Result<Vec<ConnectionSettings>, StoreError> {
        let mut all = vec![connection::read_back(&self.writer.lock_conn(), &self.path)?];
        for settings in self
            .readers
            .each(|conn| connection::read_back(conn, &self.path))
        {
            all.push(settings?);
        }
        Ok(all)
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
        let conn = self.readers.take();
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
        if is_busy(&e) {
            // Busy after the whole busy_timeout: another process held the lock.
            tracing::warn!(
                operation,
                waited_ms = self.busy_ms(),
                "database busy; the operation is retryable"
            );
            return RepoError::Busy {
                operation,
                waited_ms: self.busy_ms(),
            };
        }
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => RepoError::Corrupt {
                detail: format!("{}: {operation}: {e}", self.path.display()),
            },
            _ => RepoError::Backend {
                operation,
                source: Box::new(AtDatabase {
                    path: self.path.clone(),
                    source: e,
                }),
            },
        }
    }

    /// Runs `f` on a reader connection.
    fn read<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, RepoError> {
        let conn = self.readers.take();
        f(&conn).map_err(|e| self.repo_err(operation, e))
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer and commits when it
    /// returns `Ok`; rolls its changes back otherwise (also when the commit fails).
    /// Writes from other threads that wait for the writer at the same time share the
    /// transaction, each in its own savepoint (group commit, see `group.rs`), so `f`
    /// owns what it captures and may run again after SQLite undid a transaction.
    /// `BEGIN IMMEDIATE`, `COMMIT` and the savepoints are cached statements like every
    /// other, not parsed again for every write.
    fn write<T: Send + 'static>(
        &self,
        operation: &'static str,
        f: impl FnMut(&Connection) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, RepoError> {
        self.writer.submit(f).map_err(|failure| match failure {
            Failure::Repo(e) => e,
            Failure::Sqlite(e) => self.repo_err(operation, e),
        })
    }

    #[cfg(test)]
    fn lock_writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock_conn()
    }
}

/// Refuses what openers must not open; `Ok(schema version)` otherwise.
pub(crate) fn check_openable(path: &Path) -> Result<u32, StoreError> {
    let pending = |db, pending| StoreError::MigrationsPending {
        path: path.to_owned(),
        db,
        code: LATEST_VERSION,
        pending,
    };
    let inspection = inspect(path)?;
    // Rolling a hot journal back writes to the file: `migrate` does it, under its
    // lock; an opener refuses, whatever the database would be once rolled back
    // (unless that is refused anyway).
    if inspection.hot_journal && !matches!(inspection.state, DbState::Refused(_)) {
        return Err(StoreError::HotJournal {
            path: path.to_owned(),
        });
    }
    match inspection.state {
        DbState::Current { version } => Ok(version),
        DbState::Missing => Err(StoreError::Missing {
            path: path.to_owned(),
        }),
        DbState::Empty => Err(pending(0, shipped_migrations())),
        DbState::Pending {
            db,
            pending: missing,
        } => Err(pending(db, missing)),
        DbState::Refused(refusal) => Err(refusal.into_error(path)),
    }
}

/// An SQLite failure of a store operation, with the database it happened to: "database
/// or disk is full" or "attempt to write a readonly database" alone do not say where.
#[derive(Debug)]
struct AtDatabase {
    path: PathBuf,
    source: rusqlite::Error,
}

impl fmt::Display for AtDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = crate::error::hint(&self.source);
        write!(f, "{}: {}{hint}", self.path.display(), self.source)
    }
}

impl std::error::Error for AtDatabase {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn not_found(bot: impl Into<BotRef>) -> RepoError {
    RepoError::NotFound { bot: bot.into() }
}

fn page_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl BotRepository for SqliteStore {
    fn create(&self, new: &NewBot) -> Result<Bot, RepoError> {
        observe::run(op_span!("create", BACKEND, bot_id = new.id), || {
            let new = new.clone();
            // The clock once per call, before the store is touched (the trait's
            // contract); the writer may run the closure more than once.
            let now = self.clock.now();
            self.write("create", move |conn| {
                let mut buf = [0u8; BotId::LEN];
                let id = new.id.encode(&mut buf);
                let bot = Bot::from_new(new.clone(), now);
                let inserted = conn.prepare_cached(INSERT)?.execute(params![
                    id,
                    bot.name.as_str(),
                    bot.ai_provider.as_str(),
                    bot.model.as_str(),
                    bot.channel_type.as_str(),
                    None::<&str>,
                    bot.status.as_str(),
                    bot.created_at.as_unix_micros(),
                    bot.updated_at.as_unix_micros(),
                    bot.secrets_root.as_ref().map(ToString::to_string),
                ]);
                // No check before the insert: the UNIQUE constraints refuse a taken key,
                // and only then is it worth a lookup. SQLite names one violated
                // constraint; the id is named first when both are taken.
                match inserted {
                    Ok(_) => Ok(bot),
                    Err(e) => match unique_violation(&e, &new) {
                        Some(RepoError::NameTaken { .. })
                            if conn.prepare_cached(ID_EXISTS)?.exists([id])? =>
                        {
                            Err(RepoError::IdTaken { id: new.id }.into())
                        }
                        Some(taken) => Err(taken.into()),
                        None => Err(Failure::Sqlite(e)),
                    },
                }
            })
        })
    }

    fn get(&self, id: &BotId) -> Result<Bot, RepoError> {
        observe::run(op_span!("get", BACKEND, bot_id = id), || {
            let mut buf = [0u8; BotId::LEN];
            let key = id.encode(&mut buf);
            self.read("get", |conn| {
                first(&mut conn.prepare_cached(GET_BY_ID)?, [key])
            })?
            .unwrap_or_else(|| Err(not_found(id)))
        })
    }

    fn get_by_name(&self, name: &BotName) -> Result<Bot, RepoError> {
        observe::run(op_span!("get_by_name", BACKEND), || {
            self.read("get_by_name", |conn| {
                first(&mut conn.prepare_cached(GET_BY_NAME)?, [name.as_str()])
            })?
            .unwrap_or_else(|| Err(not_found(name)))
        })
    }

    fn list(&self, status: Option<BotStatus>) -> Result<Vec<Bot>, RepoError> {
        observe::run(op_span!("list", BACKEND), || {
            self.read("list", |conn| match status {
                None => collect(&mut conn.prepare_cached(LIST_ALL)?, []),
                Some(s) => collect(&mut conn.prepare_cached(LIST_BY_STATUS)?, [s.as_str()]),
            })?
        })
    }

    fn list_page(
        &self,
        status: Option<BotStatus>,
        after: Option<PageCursor>,
        limit: usize,
    ) -> Result<Vec<Bot>, RepoError> {
        observe::run(op_span!("list_page", BACKEND), || {
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
        })
    }

    fn set_status(&self, id: &BotId, to: BotStatus) -> Result<Bot, RepoError> {
        observe::run(op_span!("set_status", BACKEND, bot_id = id), || {
            let id = *id;
            let now = self.clock.now();
            self.write("set_status", move |conn| {
                let mut buf = [0u8; BotId::LEN];
                let key = id.encode(&mut buf);
                // One lookup for the check and the result: the row as it is (and its rowid),
                // checked in the order the conformance suite expects (missing, then the
                // stored status, then the lifecycle), then one UPDATE of that rowid, which the
                // transaction keeps stable. The bot returned is that row with the two
                // columns the UPDATE writes: exactly what the row now holds. (An
                // `UPDATE … RETURNING` costs SQLite a temporary b-tree per statement.)
                let mut stmt = conn.prepare_cached(GET_FOR_UPDATE)?;
                let mut rows = stmt.query([key])?;
                let row = rows.next()?.ok_or_else(|| not_found(id))?;
                let rowid: i64 = row.get(10)?;
                let from = match text_ref(row, 6) {
                    Some(text) => BotStatus::parse(text),
                    None => BotStatus::parse(&row.get::<_, String>(6)?),
                };
                let from = from.map_err(|e| corrupt(format!("bot {id}: {e}")))?;
                if !from.can_transition_to(to) {
                    return Err(RepoError::InvalidTransition { id, from, to }.into());
                }
                let bot = decode_with(row, Some(now))?;
                drop(rows);
                drop(stmt);
                let changed = conn.prepare_cached(UPDATE_STATUS)?.execute(params![
                    rowid,
                    to.as_str(),
                    now.as_unix_micros()
                ])?;
                if changed == 0 {
                    return Err(not_found(id).into());
                }
                Ok(Bot { status: to, ..bot })
            })
        })
    }

    fn set_container_id(
        &self,
        id: &BotId,
        container: Option<&ContainerId>,
    ) -> Result<Bot, RepoError> {
        observe::run(op_span!("set_container_id", BACKEND, bot_id = id), || {
            let id = *id;
            let container = container.cloned();
            let now = self.clock.now().as_unix_micros();
            self.write("set_container_id", move |conn| {
                let mut buf = [0u8; BotId::LEN];
                let key = id.encode(&mut buf);
                if !conn.prepare_cached(ID_EXISTS)?.exists([key])? {
                    return Err(not_found(id).into());
                }
                let bot = first(
                    &mut conn.prepare_cached(UPDATE_CONTAINER)?,
                    params![key, container.as_ref().map(ContainerId::as_str), now],
                )?;
                Ok(bot.ok_or_else(|| not_found(id))??)
            })
        })
    }

    fn adopt_secrets_root(&self, id: &BotId, root: &SecretsRootId) -> Result<Bot, RepoError> {
        observe::run(op_span!("adopt_secrets_root", BACKEND, bot_id = id), || {
            let id = *id;
            let root = root.to_string();
            self.write("adopt_secrets_root", move |conn| {
                let mut buf = [0u8; BotId::LEN];
                let key = id.encode(&mut buf);
                conn.prepare_cached(ADOPT_ROOT)?
                    .execute([key, root.as_str()])?;
                Ok(first(&mut conn.prepare_cached(GET_BY_ID)?, [key])?
                    .ok_or_else(|| not_found(id))??)
            })
        })
    }

    fn delete(&self, id: &BotId) -> Result<(), RepoError> {
        observe::run(op_span!("delete", BACKEND, bot_id = id), || {
            let id = *id;
            self.write("delete", move |conn| {
                let mut buf = [0u8; BotId::LEN];
                let key = id.encode(&mut buf);
                match conn.prepare_cached(DELETE)?.execute([key])? {
                    0 => Err(not_found(id).into()),
                    _ => Ok(()),
                }
            })
        })
    }
}

/// A UNIQUE violation of the insert as the repository error it means (`create` looks
/// no key up before its insert), so that a constraint is never reported as a backend
/// failure.
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
    use crate::connection::STATEMENT_CACHE;
    use crate::migrate;
    use botmaker_domain::{AiProvider, ChannelType, ModelName};

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

    fn new_bot(name: &str) -> NewBot {
        NewBot::with_id(
            BotId::generate(),
            BotName::parse(name).unwrap(),
            AiProvider::parse("openai").unwrap(),
            ModelName::parse("gpt-4o").unwrap(),
            ChannelType::parse("slack").unwrap(),
        )
    }

    #[test]
    fn refused_writes_leave_no_transaction_open() {
        let (_dir, store) = store();
        let bot = store.create(&new_bot("alpha")).unwrap();
        assert!(matches!(
            store.create(&new_bot("alpha")),
            Err(RepoError::NameTaken { .. })
        ));
        assert!(matches!(
            store.set_status(&bot.id, BotStatus::Running),
            Err(RepoError::InvalidTransition { .. })
        ));
        assert!(matches!(
            store.delete(&BotId::generate()),
            Err(RepoError::NotFound { .. })
        ));
        assert!(store.lock_writer().is_autocommit());
        // The writer still writes.
        store.create(&new_bot("beta")).unwrap();
        assert_eq!(store.list(None).unwrap().len(), 2);
    }

    #[test]
    fn sync_finds_the_wal_and_names_it_when_it_is_gone() {
        let (dir, store) = store();
        let bot = store.create(&new_bot("alpha")).unwrap();
        store.delete(&bot.id).unwrap();
        store.sync().unwrap();
        // A WAL removed behind SQLite's back is an error naming it, not a silent
        // success: nothing is then known to be durable.
        std::fs::remove_file(dir.path().join("botmaker.db-wal")).unwrap();
        match store.sync() {
            Err(StoreError::Io { path, .. }) => assert!(path.ends_with("botmaker.db-wal")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_status_returns_exactly_the_stored_row() {
        let (_dir, store) = store();
        let bot = store.create(&new_bot("alpha")).unwrap();
        let started = store.set_status(&bot.id, BotStatus::Starting).unwrap();
        assert_eq!(started, store.get(&bot.id).unwrap());
        assert_eq!(started.status, BotStatus::Starting);
        assert_eq!(started.created_at, bot.created_at);
        let running = store.set_status(&bot.id, BotStatus::Running).unwrap();
        assert_eq!(running, store.get(&bot.id).unwrap());
    }

    #[test]
    fn concurrent_writers_each_get_their_own_result() {
        let (_dir, store) = store();
        let threads = 4;
        let per_thread = 50;
        let outcomes: Vec<Vec<Result<(), RepoError>>> = std::thread::scope(|s| {
            let store = &store;
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        let mut seen = Vec::new();
                        for i in 0..per_thread {
                            let bot = store.create(&new_bot(&format!("t{t}-{i}"))).unwrap();
                            store.set_status(&bot.id, BotStatus::Starting).unwrap();
                            // Refused writes in between: each caller gets its own error.
                            assert!(matches!(
                                store.set_status(&bot.id, BotStatus::Created),
                                Err(RepoError::InvalidTransition { .. })
                            ));
                            if i % 2 == 0 {
                                store.delete(&bot.id).unwrap();
                            }
                            // Every thread races for the same name: one create wins.
                            seen.push(store.create(&new_bot("contested")).map(drop));
                        }
                        seen
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = outcomes.iter().flatten().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1);
        for refused in outcomes.iter().flatten().filter_map(|r| r.as_ref().err()) {
            assert!(matches!(refused, RepoError::NameTaken { .. }), "{refused}");
        }
        let bots = store.list(None).unwrap();
        assert_eq!(bots.len(), threads * per_thread / 2 + 1);
        for bot in bots.iter().filter(|b| b.name.as_str() != "contested") {
            assert_eq!(bot.status, BotStatus::Starting);
            let i: usize = bot
                .name
                .as_str()
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(i % 2, 1, "{} was deleted", bot.name);
        }
        let stats = store.write_stats();
        // create, two status changes, a delete every other time, the contested create.
        let writes = threads * per_thread * 4 + threads * per_thread / 2;
        assert_eq!(stats.writes, writes as u64);
        assert!(stats.transactions <= stats.writes && stats.transactions > 0);
        assert!(store.lock_writer().is_autocommit());
        assert!(store.integrity_check().unwrap().is_empty());
    }

    #[test]
    fn a_failed_write_names_the_database() {
        let (_dir, store) = store();
        // The writer refuses to write, as a read-only database file would.
        store
            .lock_writer()
            .pragma_update(None, "query_only", true)
            .unwrap();
        let err = store.create(&new_bot("alpha")).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                err,
                RepoError::Backend {
                    operation: "create",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(text.contains(store.path().to_str().unwrap()), "{text}");
        assert!(text.contains("not writable"), "{text}");
        store
            .lock_writer()
            .pragma_update(None, "query_only", false)
            .unwrap();
        store.create(&new_bot("alpha")).unwrap();
    }

    #[test]
    fn the_store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SqliteStore>();
    }

    #[test]
    fn debug_names_the_file_the_schema_and_the_busy_timeout() {
        let (dir, store) = store();
        let shown = format!("{store:?}");
        let path = dir.path().join("botmaker.db");
        assert!(
            shown.starts_with(&format!(
                "SqliteStore {{ path: {path:?}, schema_version: {LATEST_VERSION}, busy_timeout: "
            )),
            "{shown}"
        );
        assert!(shown.ends_with(", .. }"), "{shown}");
    }

    /// `sync` fsyncs the WAL by SQLite's own absolute name of the file: a store opened
    /// by a relative path still finds it after the working directory changed (each
    /// test runs in a process of its own under nextest).
    #[test]
    fn sync_finds_the_wal_after_the_working_directory_changed() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_current_dir(dir.path()).unwrap();
        let path = Path::new("botmaker.db");
        migrate(path).unwrap();
        let store = SqliteStore::open(path).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::env::set_current_dir(elsewhere.path()).unwrap();
        store.sync().unwrap();
        assert!(!elsewhere.path().join("botmaker.db-wal").exists());
    }

    #[test]
    fn sqlite_errors_are_mapped_by_meaning() {
        let (dir, store) = store();
        let path = dir.path().join("botmaker.db");
        let failure = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        // Damaged data: corrupt, naming the file and the operation.
        for code in [rusqlite::ffi::SQLITE_CORRUPT, rusqlite::ffi::SQLITE_NOTADB] {
            match store.repo_err("get", failure(code)) {
                RepoError::Corrupt { detail } => {
                    assert!(
                        detail.starts_with(&format!("{}: get: ", path.display())),
                        "{detail}"
                    );
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        // Anything else: a backend error whose chain reaches SQLite's own error.
        match store.repo_err("create", failure(rusqlite::ffi::SQLITE_FULL)) {
            RepoError::Backend { operation, source } => {
                assert_eq!(operation, "create");
                let shown = source.to_string();
                assert!(
                    shown.starts_with(&format!("{}: ", path.display())),
                    "{shown}"
                );
                assert!(
                    shown.ends_with("(the file system holding the database has no space left)"),
                    "{shown}"
                );
                let cause = source.source().expect("the SQLite error as the source");
                assert_eq!(
                    cause
                        .downcast_ref::<rusqlite::Error>()
                        .and_then(rusqlite::Error::sqlite_error_code),
                    Some(ErrorCode::DiskFull)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_unique_violation_of_the_insert_is_the_key_it_names() {
        let new = new_bot("taken");
        let failure = |code, message: Option<&str>| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                message.map(str::to_owned),
            )
        };
        let unique = rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE;
        assert!(matches!(
            unique_violation(&failure(unique, Some("UNIQUE constraint failed: bots.name")), &new),
            Some(RepoError::NameTaken { name }) if name == new.name
        ));
        assert!(matches!(
            unique_violation(&failure(unique, Some("UNIQUE constraint failed: bots.id")), &new),
            Some(RepoError::IdTaken { id }) if id == new.id
        ));
        // Another constraint, another error, or no message: not a taken key.
        for other in [
            failure(
                rusqlite::ffi::SQLITE_CONSTRAINT_CHECK,
                Some("CHECK constraint failed: x"),
            ),
            failure(rusqlite::ffi::SQLITE_FULL, Some("bots.name")),
            failure(unique, None),
        ] {
            assert!(unique_violation(&other, &new).is_none(), "{other}");
        }
    }

    /// A page of the bots table damaged on disk: both checks report it, naming the
    /// page (and neither fails the call).
    #[test]
    fn the_checks_report_a_damaged_page() {
        let (dir, store) = store();
        let path = dir.path().join("botmaker.db");
        store.create(&new_bot("on-the-damaged-page")).unwrap();
        // The last connection to close checkpoints the WAL into the file.
        drop(store);
        let (root, page_size): (i64, i64) = {
            let conn = Connection::open(&path).unwrap();
            let root = conn
                .query_row(
                    "SELECT rootpage FROM sqlite_schema WHERE name = 'bots'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let size = conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .unwrap();
            (root, size)
        };
        assert!(root > 1);
        // Its header (a table leaf, 13) says 5 of its bytes are fragments: there are
        // none, which only a check sees.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = usize::try_from((root - 1) * page_size).unwrap();
        assert_eq!((bytes[at], bytes[at + 7]), (13, 0));
        bytes[at + 7] = 5;
        std::fs::write(&path, bytes).unwrap();
        let store = SqliteStore::open(&path).unwrap();
        for (check, problems) in [
            ("quick_check", store.quick_check().unwrap()),
            ("integrity_check", store.integrity_check().unwrap()),
        ] {
            assert!(
                problems.iter().any(|p| p.contains(&format!("page {root}"))),
                "{check} did not report page {root}: {problems:?}"
            );
        }
    }
}
