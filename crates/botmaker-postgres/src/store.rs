//! [`PgStore`]: the [`BotRepository`] on a PostgreSQL database shared by several hosts.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use botmaker_domain::{
    AiProvider, Bot, BotId, BotName, BotRef, BotRepository, BotStatus, ChannelType, Clock,
    ContainerId, ModelName, NewBot, PageCursor, RepoError, SecretsRootId, Timestamp, observe,
    op_span,
};
use postgres::Row;
use postgres::error::SqlState;
use postgres::types::ToSql;

use crate::error::{is_conflict, is_connection_lost};
use crate::migrate::{DbState, connect, inspect, pg_err, status_on};
use crate::pool::{Checkout, Conn, Pool};
use crate::schema::shipped_migrations;
use crate::{BACKEND, DatabaseUrl, LATEST_VERSION, PgError, SchemaState};

/// How a [`PgStore`] is opened. `PgOptions::default()` suits a service.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// At most this many connections are open at once. At least 1 is used. Default: 8.
    pub pool_size: usize,
    /// How long an operation waits for a free connection before failing with
    /// [`RepoError::Busy`]. Default: 30 s.
    pub checkout_timeout: Duration,
    /// How many times an operation runs again after a serialization failure
    /// (SQLSTATE 40001), a deadlock (40P01) or, for a status change, another host's
    /// change of the same bot in between, before it fails with [`RepoError::Busy`].
    /// Default: 16.
    pub conflict_retries: u32,
    /// Where `created_at`/`updated_at` come from. Default: [`Clock::system`].
    pub clock: Clock,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            checkout_timeout: Duration::from_secs(30),
            conflict_retries: 16,
            clock: Clock::system(),
        }
    }
}

impl PgOptions {
    /// The defaults with this clock (tests drive time by hand).
    pub fn with_clock(clock: Clock) -> Self {
        Self {
            clock,
            ..Self::default()
        }
    }
}

/// The columns of a bot, in the order `decode` reads them.
macro_rules! bot_columns {
    () => {
        "id, name, ai_provider, model, channel_type, container_id, status, created_at, updated_at, \
         secrets_root"
    };
}

/// Listing order: newest first, ties broken by id (unique, compared bytewise), so it is
/// total and the same as SQLite's.
macro_rules! newest_first {
    () => {
        " ORDER BY created_at DESC, id DESC"
    };
}

const GET_BY_ID: &str = concat!("SELECT ", bot_columns!(), " FROM bots WHERE id = $1");
const GET_BY_NAME: &str = concat!("SELECT ", bot_columns!(), " FROM bots WHERE name = $1");
const LIST_ALL: &str = concat!("SELECT ", bot_columns!(), " FROM bots", newest_first!());
const LIST_BY_STATUS: &str = concat!(
    "SELECT ",
    bot_columns!(),
    " FROM bots WHERE status = $1",
    newest_first!()
);
const PAGE_ALL: &str = concat!(
    "SELECT ",
    bot_columns!(),
    " FROM bots",
    newest_first!(),
    " LIMIT $1"
);
const PAGE_ALL_AFTER: &str = concat!(
    "SELECT ",
    bot_columns!(),
    " FROM bots WHERE (created_at, id) < ($1, $2)",
    newest_first!(),
    " LIMIT $3"
);
const PAGE_BY_STATUS: &str = concat!(
    "SELECT ",
    bot_columns!(),
    " FROM bots WHERE status = $1",
    newest_first!(),
    " LIMIT $2"
);
const PAGE_BY_STATUS_AFTER: &str = concat!(
    "SELECT ",
    bot_columns!(),
    " FROM bots WHERE status = $1 AND (created_at, id) < ($2, $3)",
    newest_first!(),
    " LIMIT $4"
);
/// Whether a bot has this id; the failure path of `create` asks it after a unique
/// violation on the name, so that a bot that collides on both keys gets `IdTaken`
/// whatever order the server checked the two indexes in.
const ID_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM bots WHERE id = $1)";
/// The stored status, read only when a status change changed nothing, to name the
/// error.
const STATUS_OF: &str = "SELECT status FROM bots WHERE id = $1";
const INSERT: &str = concat!(
    "INSERT INTO bots (",
    bot_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);
/// A status change in one statement: only from a status the lifecycle allows (`$4`,
/// see [`allowed_from`]). Under READ COMMITTED a row another transaction changed
/// meanwhile is re-checked against this `WHERE` in its new version once that
/// transaction commits, so no transition is lost and none the lifecycle forbids is
/// made.
const UPDATE_STATUS: &str = concat!(
    "UPDATE bots SET status = $2, updated_at = $3 WHERE id = $1 AND status = ANY($4) RETURNING ",
    bot_columns!()
);
const UPDATE_CONTAINER: &str = concat!(
    "UPDATE bots SET container_id = $2, updated_at = $3 WHERE id = $1 RETURNING ",
    bot_columns!()
);
/// Records a secrets root for a bot that has none. When it changes no row (the bot
/// has a root already, or is missing), the store reads the row with `GET_BY_ID` in a
/// statement of its own: one statement with a CTE would read the row from the snapshot
/// taken before it waited for another host's adoption of the same bot, and return the
/// root as NULL.
const ADOPT_ROOT: &str = concat!(
    "UPDATE bots SET secrets_root = $2 WHERE id = $1 AND secrets_root IS NULL RETURNING ",
    bot_columns!()
);
const DELETE: &str = "DELETE FROM bots WHERE id = $1";

/// For each status `to` (in [`BotStatus::ALL`] order), the statuses the lifecycle
/// allows a change to `to` from, as stored: derived once from
/// [`BotStatus::can_transition_to`], so the statement and the domain cannot disagree.
static ALLOWED_FROM: LazyLock<Vec<(BotStatus, Vec<&'static str>)>> = LazyLock::new(|| {
    BotStatus::ALL
        .iter()
        .map(|&to| {
            let from = BotStatus::ALL
                .iter()
                .filter(|from| from.can_transition_to(to))
                .map(|from| from.as_str())
                .collect();
            (to, from)
        })
        .collect()
});

/// The statuses a bot may be in for a change to `to` (empty when none may).
fn allowed_from(to: BotStatus) -> &'static [&'static str] {
    ALLOWED_FROM
        .iter()
        .find(|(status, _)| *status == to)
        .map_or(&[], |(_, from)| from.as_slice())
}

/// The constraint names of V1 (`migrations/V1__create_bots.sql`).
const ID_KEY: &str = "bots_pkey";
const NAME_KEY: &str = "bots_name_key";

/// The bot registry in a PostgreSQL database, shared by every host that opens it.
///
/// A pool of connections (see [`PgOptions`]), each with its own prepared statements;
/// every operation is one statement in its own transaction (autocommit), so a write
/// that succeeds is one round trip. A status change is one `UPDATE … WHERE status =
/// ANY(<the statuses the lifecycle allows the change from>)`, so two hosts changing
/// one bot never lose a change or make a transition the lifecycle forbids; only a
/// write that changed nothing reads the row afterwards, to name its error
/// (`NotFound`, `InvalidTransition`, or for a create whose name was taken, whether its
/// id is taken too). Cheap to clone (an `Arc` inside), `Send + Sync`.
///
/// Opening never migrates: see [`PgStore::open`].
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    url: DatabaseUrl,
    options: PgOptions,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.inner.url)
            .field("pool_size", &self.inner.options.pool_size)
            .finish_non_exhaustive()
    }
}

/// How an operation failed inside [`PgStore::run`].
enum Failure {
    Repo(RepoError),
    Pg(postgres::Error),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Self::Pg(e)
    }
}

impl From<RepoError> for Failure {
    fn from(e: RepoError) -> Self {
        Self::Repo(e)
    }
}

impl PgStore {
    /// Opens the registry in the database `url` names, which [`migrate`](crate::migrate)
    /// must have brought to this code's version. Connects once to check, and keeps
    /// that connection in the pool.
    ///
    /// Refuses, writing nothing: a server that cannot be reached
    /// ([`PgError::Connect`], naming host and database), a database that is not
    /// botmaker's, a schema newer than the code, a diverged history, and pending
    /// migrations ([`PgError::MigrationsPending`]).
    pub fn open(url: &DatabaseUrl, options: PgOptions) -> Result<Self, PgError> {
        observe::run(op_span!("open", BACKEND), || {
            let mut client = connect(url)?;
            let inspection =
                inspect(&mut client).map_err(pg_err(url, "reading the migration history"))?;
            let pending = |db, pending| PgError::MigrationsPending {
                database: url.to_string(),
                db,
                code: LATEST_VERSION,
                pending,
            };
            match inspection.state {
                DbState::Current { .. } => {}
                DbState::Empty => return Err(pending(0, shipped_migrations())),
                DbState::Pending { db, pending: p } => return Err(pending(db, p)),
                refused => {
                    return Err(refused.refusal(url).unwrap_or_else(|| {
                        PgError::MigrationsPending {
                            database: url.to_string(),
                            db: 0,
                            code: LATEST_VERSION,
                            pending: shipped_migrations(),
                        }
                    }));
                }
            }
            // The connection that checked the schema is the pool's first.
            let pool = Pool::new(url.clone(), options.pool_size, options.checkout_timeout);
            pool.adopt(client);
            let store = Self {
                inner: Arc::new(Inner {
                    pool,
                    url: url.clone(),
                    options,
                }),
            };
            Ok(store)
        })
    }

    /// The database (its redacted connection string).
    pub fn database(&self) -> &DatabaseUrl {
        &self.inner.url
    }

    /// How many connections the pool holds open now (idle or in use).
    pub fn open_connections(&self) -> usize {
        self.inner.pool.open_count()
    }

    /// How many of them are idle.
    pub fn idle_connections(&self) -> usize {
        self.inner.pool.idle_count()
    }

    /// The doctor's check, in place of SQLite's `integrity_check`: the problems found,
    /// empty when the registry is healthy. It checks that the migration history is
    /// this code's, that the tables, indexes and constraints the migrations make are
    /// there and valid (an index left invalid by a failed build, a constraint added
    /// `NOT VALID`), and that every row decodes into a bot.
    pub fn consistency_check(&self) -> Result<Vec<String>, PgError> {
        observe::run(op_span!("consistency_check", BACKEND), || {
            let url = &self.inner.url;
            let mut lease = self.inner.pool.get().map_err(|e| match e {
                Checkout::Connect(source) => PgError::Connect {
                    host: url.host(),
                    dbname: url.dbname().to_owned(),
                    database: url.to_string(),
                    source,
                },
                Checkout::Timeout(waited) => PgError::Repo(RepoError::Busy {
                    operation: "consistency_check",
                    waited_ms: millis(waited),
                }),
            })?;
            let result = consistency(lease.conn(), url);
            if let Err(PgError::Postgres { source, .. }) = &result
                && is_connection_lost(source)
            {
                lease.discard();
            }
            result
        })
    }

    /// Runs `f` on a pooled connection; runs it again (a bounded number of times) after
    /// a serialization failure or a deadlock; maps errors by meaning.
    fn run<T>(
        &self,
        operation: &'static str,
        mut f: impl FnMut(&mut Conn) -> Result<T, Failure>,
    ) -> Result<T, RepoError> {
        let start = Instant::now();
        let mut attempt = 0u32;
        loop {
            let mut lease = self.inner.pool.get().map_err(|e| match e {
                Checkout::Timeout(waited) => {
                    tracing::warn!(
                        operation,
                        waited_ms = millis(waited),
                        "connection pool exhausted; the operation is retryable"
                    );
                    RepoError::Busy {
                        operation,
                        waited_ms: millis(waited),
                    }
                }
                // Refused, reset, or the server starting or stopping: retryable. A
                // login the server refuses (bad password, no such database) is not.
                Checkout::Connect(e) if is_connection_lost(&e) || e.as_db_error().is_none() => {
                    self.unavailable(operation, &e)
                }
                Checkout::Connect(e) => self.backend(operation, e),
            })?;
            match f(lease.conn()) {
                Ok(v) => return Ok(v),
                Err(Failure::Repo(e)) => return Err(e),
                Err(Failure::Pg(e)) if is_conflict(&e) => {
                    attempt += 1;
                    tracing::debug!(
                        operation,
                        attempt,
                        sqlstate = e.code().map_or("", |c| c.code()),
                        "conflict with another transaction; retrying"
                    );
                    if attempt > self.inner.options.conflict_retries {
                        return Err(busy(operation, start));
                    }
                    drop(lease);
                    backoff(attempt);
                }
                Err(Failure::Pg(e)) if is_connection_lost(&e) => {
                    lease.discard();
                    drop(lease);
                    self.inner.pool.clear_idle();
                    return Err(self.unavailable(operation, &e));
                }
                Err(Failure::Pg(e)) => {
                    if lease.conn().client.is_closed() {
                        lease.discard();
                    }
                    return Err(self.backend(operation, e));
                }
            }
        }
    }
}

fn busy(operation: &'static str, start: Instant) -> RepoError {
    let waited_ms = millis(start.elapsed());
    tracing::warn!(
        operation,
        waited_ms,
        "conflicts with other transactions persisted; the operation is retryable"
    );
    RepoError::Busy {
        operation,
        waited_ms,
    }
}

impl PgStore {
    fn unavailable(&self, operation: &'static str, e: &postgres::Error) -> RepoError {
        let url = &self.inner.url;
        let detail = format!(
            "postgresql database {} on {}: {e}",
            url.dbname(),
            url.host()
        );
        tracing::warn!(operation, database = %url, error = %e, "database unavailable; the operation is retryable");
        RepoError::Unavailable { operation, detail }
    }

    fn backend(&self, operation: &'static str, e: postgres::Error) -> RepoError {
        let database = self.inner.url.to_string();
        match e.code() {
            Some(c) if *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED => {
                RepoError::Corrupt {
                    detail: format!("{database}: {operation}: {e}"),
                }
            }
            _ => RepoError::Backend {
                operation,
                source: Box::new(AtDatabase {
                    database,
                    source: e,
                }),
            },
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A short, growing pause between attempts after a conflict (1, 2, 4 … 64 ms), with
/// the sub-millisecond part of the time as jitter so contenders drift apart.
fn backoff(attempt: u32) {
    let base = Duration::from_millis(1 << attempt.min(6));
    let jitter = Duration::from_micros(u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_micros() % 1000),
    ));
    std::thread::sleep(base + jitter);
}

/// The consistency queries (see [`PgStore::consistency_check`]).
fn consistency(conn: &mut Conn, url: &DatabaseUrl) -> Result<Vec<String>, PgError> {
    let client = &mut conn.client;
    let mut problems = Vec::new();
    let status = status_on(client, url)?;
    if status.state != SchemaState::UpToDate {
        problems.push(format!(
            "migration state: {:?} (schema version {}, code {})",
            status.state, status.db_version, status.code_version
        ));
        return Ok(problems);
    }
    let e = pg_err(url, "checking indexes and constraints");
    for index in [
        "bots_pkey",
        "bots_name_key",
        "bots_by_created",
        "bots_by_status",
    ] {
        let row = client
            .query_opt(
                "SELECT i.indisvalid AND i.indisready FROM pg_catalog.pg_index i \
                 JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
                 WHERE c.relname = $1 AND i.indrelid = to_regclass('bots')",
                &[&index],
            )
            .map_err(&e)?;
        match row
            .map(|r| r.try_get::<_, bool>(0))
            .transpose()
            .map_err(&e)?
        {
            None => problems.push(format!("index {index} is missing")),
            Some(false) => problems.push(format!(
                "index {index} is not valid (rebuild it with REINDEX)"
            )),
            Some(true) => {}
        }
    }
    let rows = client
        .query(
            "SELECT conname::text, convalidated FROM pg_catalog.pg_constraint \
             WHERE conrelid = to_regclass('bots') ORDER BY conname",
            &[],
        )
        .map_err(&e)?;
    let mut found = Vec::new();
    for row in &rows {
        let name: String = row.try_get(0).map_err(&e)?;
        let valid: bool = row.try_get(1).map_err(&e)?;
        if !valid {
            problems.push(format!("constraint {name} is not validated"));
        }
        found.push(name);
    }
    for expected in [
        "bots_pkey",
        "bots_name_key",
        "bots_id_check",
        "bots_name_check",
        "bots_ai_provider_check",
        "bots_model_check",
        "bots_channel_type_check",
        "bots_container_id_check",
        "bots_status_check",
        "bots_secrets_root_check",
    ] {
        if !found.iter().any(|n| n == expected) {
            problems.push(format!("constraint {expected} is missing"));
        }
    }
    // Every row decodes (the constraints do not cover everything the domain checks,
    // such as the characters of a name or a timestamp's range). Read in keyset pages.
    let e = pg_err(url, "reading every bot");
    let mut after: Option<(i64, String)> = None;
    loop {
        let rows = match &after {
            None => client.query(PAGE_ALL, &[&1000i64]),
            Some((at, id)) => client.query(PAGE_ALL_AFTER, &[at, id, &1000i64]),
        }
        .map_err(&e)?;
        for row in &rows {
            if let Err(RepoError::Corrupt { detail }) = decode(row) {
                problems.push(detail);
            }
        }
        let Some(last) = rows.last() else { break };
        after = Some((
            last.try_get::<_, i64>(7).map_err(&e)?,
            last.try_get::<_, String>(0).map_err(&e)?,
        ));
        if rows.len() < 1000 {
            break;
        }
    }
    Ok(problems)
}

/// A PostgreSQL failure of a store operation, with the database it happened to.
#[derive(Debug)]
struct AtDatabase {
    database: String,
    source: postgres::Error,
}

impl fmt::Display for AtDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.database, self.source)
    }
}

impl std::error::Error for AtDatabase {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn corrupt(detail: String) -> RepoError {
    RepoError::Corrupt { detail }
}

fn not_found(bot: impl Into<BotRef>) -> RepoError {
    RepoError::NotFound { bot: bot.into() }
}

/// A row of the `bots` table (columns in `bot_columns!` order) as a [`Bot`];
/// anything undecodable is corruption.
fn decode(row: &Row) -> Result<Bot, RepoError> {
    let text = |i: usize| {
        row.try_get::<_, &str>(i)
            .map_err(|e| corrupt(format!("bots row, column {i}: {e}")))
    };
    let id = BotId::parse(text(0)?).map_err(|e| corrupt(format!("bots row: {e}")))?;
    let bad = |e: botmaker_domain::DomainError| corrupt(format!("bot {id}: {e}"));
    let micros = |i: usize| {
        row.try_get::<_, i64>(i)
            .map_err(|e| corrupt(format!("bot {id}, column {i}: {e}")))
            .and_then(|m| Timestamp::from_unix_micros(m).map_err(bad))
    };
    let container = row
        .try_get::<_, Option<&str>>(5)
        .map_err(|e| corrupt(format!("bot {id}, container_id: {e}")))?
        .map(ContainerId::parse)
        .transpose()
        .map_err(bad)?;
    Ok(Bot {
        id,
        name: BotName::parse(text(1)?).map_err(bad)?,
        ai_provider: AiProvider::parse(text(2)?).map_err(bad)?,
        model: ModelName::parse(text(3)?).map_err(bad)?,
        channel_type: ChannelType::parse(text(4)?).map_err(bad)?,
        container_id: container,
        status: BotStatus::parse(text(6)?).map_err(bad)?,
        created_at: micros(7)?,
        updated_at: micros(8)?,
        secrets_root: row
            .try_get::<_, Option<&str>>(9)
            .map_err(|e| corrupt(format!("bot {id}, secrets_root: {e}")))?
            .map(SecretsRootId::parse)
            .transpose()
            .map_err(bad)?,
    })
}

fn query_bots(
    conn: &mut Conn,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Bot>, Failure> {
    let stmt = conn.prepare(sql)?;
    let rows = conn.client.query(&stmt, params)?;
    Ok(rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?)
}

fn query_bot(
    conn: &mut Conn,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Bot>, Failure> {
    let stmt = conn.prepare(sql)?;
    let row = conn.client.query_opt(&stmt, params)?;
    Ok(row.as_ref().map(decode).transpose()?)
}

fn id_exists(conn: &mut Conn, id: &str) -> Result<bool, Failure> {
    let stmt = conn.prepare(ID_EXISTS)?;
    Ok(conn
        .client
        .query_one(&stmt, &[&id])?
        .try_get::<_, bool>(0)?)
}

/// A unique violation (SQLSTATE 23505) by the constraint it hit; `None` for any other
/// error or constraint.
fn unique_violation(e: &postgres::Error, new: &NewBot) -> Option<RepoError> {
    let db = e.as_db_error()?;
    if *db.code() != SqlState::UNIQUE_VIOLATION {
        return None;
    }
    match db.constraint()? {
        ID_KEY => Some(RepoError::IdTaken { id: new.id }),
        NAME_KEY => Some(RepoError::NameTaken {
            name: new.name.clone(),
        }),
        _ => None,
    }
}

fn page_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl BotRepository for PgStore {
    fn create(&self, new: &NewBot) -> Result<Bot, RepoError> {
        observe::run(op_span!("create", BACKEND, bot_id = new.id), || {
            let id = new.id.to_string();
            // The clock once per call, before the store is touched (the trait's
            // contract): one round trip then both writes and checks the keys.
            let bot = Bot::from_new(new.clone(), self.inner.options.clock.now());
            self.run("create", |conn| {
                let stmt = conn.prepare(INSERT)?;
                let inserted = conn.client.execute(
                    &stmt,
                    &[
                        &id,
                        &bot.name.as_str(),
                        &bot.ai_provider.as_str(),
                        &bot.model.as_str(),
                        &bot.channel_type.as_str(),
                        &None::<&str>,
                        &bot.status.as_str(),
                        &bot.created_at.as_unix_micros(),
                        &bot.updated_at.as_unix_micros(),
                        &bot.secrets_root.as_ref().map(ToString::to_string),
                    ],
                );
                let Err(e) = inserted else {
                    return Ok(bot.clone());
                };
                match unique_violation(&e, new) {
                    // The server checks the keys in its own index order: a bot whose
                    // name is taken may have a taken id too, and the id comes first.
                    Some(RepoError::NameTaken { .. }) if id_exists(conn, &id)? => {
                        Err(RepoError::IdTaken { id: new.id }.into())
                    }
                    Some(refused) => Err(refused.into()),
                    None => Err(Failure::Pg(e)),
                }
            })
        })
    }

    fn get(&self, id: &BotId) -> Result<Bot, RepoError> {
        observe::run(op_span!("get", BACKEND, bot_id = id), || {
            let key = id.to_string();
            self.run("get", |conn| query_bot(conn, GET_BY_ID, &[&key]))?
                .ok_or_else(|| not_found(*id))
        })
    }

    fn get_by_name(&self, name: &BotName) -> Result<Bot, RepoError> {
        observe::run(op_span!("get_by_name", BACKEND), || {
            self.run("get_by_name", |conn| {
                query_bot(conn, GET_BY_NAME, &[&name.as_str()])
            })?
            .ok_or_else(|| not_found(name))
        })
    }

    fn list(&self, status: Option<BotStatus>) -> Result<Vec<Bot>, RepoError> {
        observe::run(op_span!("list", BACKEND), || {
            self.run("list", |conn| match status {
                None => query_bots(conn, LIST_ALL, &[]),
                Some(s) => query_bots(conn, LIST_BY_STATUS, &[&s.as_str()]),
            })
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
            let after = after.map(|c| (c.created_at.as_unix_micros(), c.id.to_string()));
            self.run("list_page", |conn| match (status, &after) {
                (None, None) => query_bots(conn, PAGE_ALL, &[&limit]),
                (None, Some((at, id))) => query_bots(conn, PAGE_ALL_AFTER, &[at, id, &limit]),
                (Some(s), None) => query_bots(conn, PAGE_BY_STATUS, &[&s.as_str(), &limit]),
                (Some(s), Some((at, id))) => {
                    query_bots(conn, PAGE_BY_STATUS_AFTER, &[&s.as_str(), at, id, &limit])
                }
            })
        })
    }

    fn set_status(&self, id: &BotId, to: BotStatus) -> Result<Bot, RepoError> {
        observe::run(op_span!("set_status", BACKEND, bot_id = id), || {
            let key = id.to_string();
            let allowed = allowed_from(to);
            let now = self.inner.options.clock.now().as_unix_micros();
            let mut raced = 0u32;
            self.run("set_status", |conn| {
                loop {
                    // One statement changes the row if its status allows it; only when
                    // it changed nothing does a second one name the error: missing, or
                    // the stored status.
                    if !allowed.is_empty()
                        && let Some(bot) =
                            query_bot(conn, UPDATE_STATUS, &[&key, &to.as_str(), &now, &allowed])?
                    {
                        return Ok(bot);
                    }
                    let stmt = conn.prepare(STATUS_OF)?;
                    let Some(row) = conn.client.query_opt(&stmt, &[&key])? else {
                        return Err(not_found(*id).into());
                    };
                    let from = BotStatus::parse(row.try_get::<_, &str>(0)?)
                        .map_err(|e| corrupt(format!("bot {id}: {e}")))?;
                    if !from.can_transition_to(to) {
                        return Err(RepoError::InvalidTransition { id: *id, from, to }.into());
                    }
                    // Another host moved the bot, between the two statements, to a
                    // status the change is allowed from: try the change again.
                    raced += 1;
                    if raced > self.inner.options.conflict_retries {
                        return Err(RepoError::Busy {
                            operation: "set_status",
                            waited_ms: 0,
                        }
                        .into());
                    }
                }
            })
        })
    }

    fn set_container_id(
        &self,
        id: &BotId,
        container: Option<&ContainerId>,
    ) -> Result<Bot, RepoError> {
        observe::run(op_span!("set_container_id", BACKEND, bot_id = id), || {
            let key = id.to_string();
            let container = container.map(ContainerId::as_str);
            let now = self.inner.options.clock.now().as_unix_micros();
            self.run("set_container_id", |conn| {
                query_bot(conn, UPDATE_CONTAINER, &[&key, &container, &now])?
                    .ok_or_else(|| not_found(*id).into())
            })
        })
    }

    fn adopt_secrets_root(&self, id: &BotId, root: &SecretsRootId) -> Result<Bot, RepoError> {
        observe::run(op_span!("adopt_secrets_root", BACKEND, bot_id = id), || {
            let key = id.to_string();
            let root = root.to_string();
            self.run("adopt_secrets_root", |conn| {
                match query_bot(conn, ADOPT_ROOT, &[&key, &root])? {
                    Some(bot) => Ok(Some(bot)),
                    // A root once recorded never changes: this read sees the one
                    // that made the UPDATE match nothing, or no row.
                    None => query_bot(conn, GET_BY_ID, &[&key]),
                }
            })?
            .ok_or_else(|| not_found(*id))
        })
    }

    fn delete(&self, id: &BotId) -> Result<(), RepoError> {
        observe::run(op_span!("delete", BACKEND, bot_id = id), || {
            let key = id.to_string();
            self.run("delete", |conn| {
                let stmt = conn.prepare(DELETE)?;
                match conn.client.execute(&stmt, &[&key])? {
                    0 => Err(not_found(*id).into()),
                    _ => Ok(()),
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botmaker_testkit::conformance::new_bot_with_id;

    /// The error a raw INSERT of `new` gets on the server.
    fn insert_error(client: &mut postgres::Client, new: &NewBot) -> postgres::Error {
        client
            .execute(
                INSERT,
                &[
                    &new.id.to_string(),
                    &new.name.as_str(),
                    &"openai",
                    &"gpt-4o",
                    &"slack",
                    &None::<&str>,
                    &"created",
                    &1i64,
                    &1i64,
                    &None::<&str>,
                ],
            )
            .unwrap_err()
    }

    #[test]
    fn unique_violations_map_by_constraint_name() {
        let db = botmaker_testkit::pg::shared().database("unique");
        let url = DatabaseUrl::parse(db.url()).unwrap();
        crate::migrate(&url).unwrap();
        let store = PgStore::open(&url, PgOptions::default()).unwrap();
        store.create(&new_bot_with_id(1, "taken")).unwrap();
        let mut client = db.client();

        let same_name = new_bot_with_id(2, "taken");
        let e = insert_error(&mut client, &same_name);
        assert_eq!(e.code(), Some(&SqlState::UNIQUE_VIOLATION));
        assert!(matches!(
            unique_violation(&e, &same_name),
            Some(RepoError::NameTaken { name }) if name.as_str() == "taken"
        ));

        let same_id = new_bot_with_id(1, "other");
        let e = insert_error(&mut client, &same_id);
        assert!(matches!(
            unique_violation(&e, &same_id),
            Some(RepoError::IdTaken { id }) if id == same_id.id
        ));

        // Both taken, by two different bots: the server names the index it checked
        // first (here the primary key, the older index).
        store.create(&new_bot_with_id(3, "other")).unwrap();
        let both = new_bot_with_id(1, "other");
        let e = insert_error(&mut client, &both);
        assert_eq!(e.as_db_error().and_then(|d| d.constraint()), Some(ID_KEY));

        // Another constraint, or another error: not a repository refusal.
        let e = client
            .execute("INSERT INTO bots (id) VALUES ('x')", &[])
            .unwrap_err();
        assert!(unique_violation(&e, &same_id).is_none());
    }

    /// A create whose id and name are both taken (by two bots) is `IdTaken` even when
    /// the server checks the name's index first: rebuilding the primary key's index
    /// gives it a newer OID, and PostgreSQL checks unique indexes in OID order.
    #[test]
    fn both_keys_taken_is_id_taken_whatever_index_the_server_checks_first() {
        let db = botmaker_testkit::pg::shared().database("both_taken");
        let url = DatabaseUrl::parse(db.url()).unwrap();
        crate::migrate(&url).unwrap();
        let store = PgStore::open(&url, PgOptions::default()).unwrap();
        let first = store.create(&new_bot_with_id(1, "alpha")).unwrap();
        let second = store.create(&new_bot_with_id(2, "beta")).unwrap();
        let mut client = db.client();
        client
            .batch_execute("REINDEX INDEX CONCURRENTLY bots_pkey")
            .unwrap();
        let both = new_bot_with_id(1, "beta");
        let e = insert_error(&mut client, &both);
        assert_eq!(e.as_db_error().and_then(|d| d.constraint()), Some(NAME_KEY));

        assert!(matches!(
            store.create(&both),
            Err(RepoError::IdTaken { id }) if id == both.id
        ));
        assert!(matches!(
            store.create(&new_bot_with_id(3, "beta")),
            Err(RepoError::NameTaken { name }) if name.as_str() == "beta"
        ));
        assert!(matches!(
            store.create(&new_bot_with_id(2, "gamma")),
            Err(RepoError::IdTaken { id }) if id == second.id
        ));
        assert_eq!(store.list(None).unwrap(), vec![second, first]);
        assert!(store.consistency_check().unwrap().is_empty());
    }
}
