//! The same workload through bare rusqlite (same schema and pragmas, `prepare_cached`,
//! rows decoded into a plain struct) and bare descriptor-relative syscalls with the
//! same durability (temp file, fsync, rename, fsync of the directory): the limit the
//! API is held to.

use std::hint::black_box;
use std::ops::Range;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};
use rusqlite::{Connection, params};

use botmaker_testkit::scratch::Scratch;

use super::{LIST_PAGE, Rows, SECRET_NAMES, SecretsInput, join_all, visit};
use botmaker::domain::{BotId, NewBot};

const S_IFMT: u32 = SFlag::S_IFMT.bits();
const S_IFREG: u32 = SFlag::S_IFREG.bits();

/// A bot decoded into plain values.
#[allow(dead_code)] // fields are read through black_box only
struct RawBot {
    id: String,
    name: String,
    ai_provider: String,
    model: String,
    channel_type: String,
    container_id: Option<String>,
    status: String,
    created_at: i64,
    updated_at: i64,
    secrets_root: Option<String>,
}

// The same statements the store runs (keyset pages on the same index, the lifecycle
// checked in the UPDATE's WHERE), as constants: no SQL is formatted per operation.
const INSERT: &str = concat!(
    "INSERT INTO bots (",
    cols!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, NULL, 'created', ?6, ?6, NULL)"
);
const GET_BY_ID: &str = concat!("SELECT ", cols!(), " FROM bots WHERE id = ?1");
const GET_BY_NAME: &str = concat!("SELECT ", cols!(), " FROM bots WHERE name = ?1");
const PAGE_FIRST: &str = concat!(
    "SELECT ",
    cols!(),
    " FROM bots ORDER BY created_at DESC, id DESC LIMIT ?1"
);
const PAGE_AFTER: &str = concat!(
    "SELECT ",
    cols!(),
    " FROM bots WHERE (created_at, id) < (?1, ?2) ORDER BY created_at DESC, id DESC LIMIT ?3"
);
/// Only `starting` may become `running` (the lifecycle), checked in the statement.
const SET_RUNNING: &str =
    "UPDATE bots SET status = 'running', updated_at = ?1 WHERE id = ?2 AND status = 'starting'";
const SET_STARTING: &str = "UPDATE bots SET status = 'starting', updated_at = ?1 \
     WHERE id = ?2 AND status IN ('created', 'stopped', 'failed')";
const DELETE: &str = "DELETE FROM bots WHERE id = ?1";

fn decode(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawBot> {
    Ok(RawBot {
        id: r.get(0)?,
        name: r.get(1)?,
        ai_provider: r.get(2)?,
        model: r.get(3)?,
        channel_type: r.get(4)?,
        container_id: r.get(5)?,
        status: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        secrets_root: r.get(9)?,
    })
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// A connection with the workload's pragmas.
fn connect(db: &Path) -> Result<Connection> {
    let conn = Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    ensure!(mode == "wal", "journal_mode is {mode}");
    // The store's pragmas, its 32 MiB page cache included.
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-32768;",
    )?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// Ids rendered once, before timing (the bare baseline binds text it already has).
fn render(ids: &[BotId]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

fn insert(conn: &Connection, id: &str, b: &NewBot) -> Result<()> {
    conn.prepare_cached(INSERT)?.execute(params![
        id,
        b.name.as_str(),
        b.ai_provider.as_str(),
        b.model.as_str(),
        b.channel_type.as_str(),
        now_micros()
    ])?;
    Ok(())
}

fn get_by_id(conn: &Connection, id: &str) -> Result<RawBot> {
    Ok(conn.prepare_cached(GET_BY_ID)?.query_row([id], decode)?)
}

/// Which schema and statements a bare database part runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Schema {
    /// Ours (the migrations), with the store's statements.
    Ours,
    /// The original design's (`REFERENCE_SCHEMA`), with its statements.
    Reference,
}

/// A bare database part: its own database, connection and rows, on `schema`.
pub(crate) struct Db {
    schema: Schema,
    conn: Connection,
    rows: Rows,
    ids: Vec<String>,
    _dir: Scratch, // last: removed after the connection is closed
}

impl Db {
    pub(crate) fn new(n: usize, scratch: &Path, schema: Schema) -> Result<Self> {
        let rows = Rows::new(n, |i| format!("bot-{i}"))?;
        let ids = render(&rows.ids);
        let (conn, dir) = match schema {
            Schema::Ours => {
                let dir = Scratch::new_in(scratch, "bench-raw-db")?;
                let db = dir.path().join("botmaker.db");
                botmaker::sqlite::migrate(&db)?; // the same schema and indexes
                (connect(&db)?, dir)
            }
            Schema::Reference => {
                let dir = Scratch::new_in(scratch, "bench-reference-db")?;
                let conn = connect(&dir.path().join("reference.db"))?;
                conn.execute_batch(REFERENCE_SCHEMA)?;
                (conn, dir)
            }
        };
        Ok(Self {
            schema,
            conn,
            rows,
            ids,
            _dir: dir,
        })
    }

    pub(crate) fn insert(&self, k: Range<usize>) -> Result<()> {
        let (ids, news) = (&self.ids[k.clone()], &self.rows.news[k]);
        match self.schema {
            Schema::Ours => raw_insert(&self.conn, ids, news),
            Schema::Reference => ref_insert(&self.conn, ids, news),
        }
    }

    pub(crate) fn get_by_id(&self, k: Range<usize>) -> Result<()> {
        match self.schema {
            Schema::Ours => raw_get_by_id(&self.conn, &self.ids, k),
            Schema::Reference => ref_get_by_id(&self.conn, &self.ids, k),
        }
    }

    pub(crate) fn get_by_name(&self, k: Range<usize>) -> Result<()> {
        match self.schema {
            Schema::Ours => raw_get_by_name(&self.conn, &self.rows.news, k),
            Schema::Reference => ref_get_by_name(&self.conn, &self.rows.news, k),
        }
    }

    pub(crate) fn list_all(&self, k: Range<usize>) -> Result<()> {
        match self.schema {
            Schema::Ours => raw_list_all(&self.conn, self.ids.len(), k.len()),
            Schema::Reference => ref_list_all(&self.conn, self.ids.len(), k.len()),
        }
    }

    /// Untimed, as on the API side: created -> starting first.
    pub(crate) fn all_starting(&self) -> Result<()> {
        for id in &self.ids {
            let changed = match self.schema {
                Schema::Ours => self
                    .conn
                    .prepare_cached(SET_STARTING)?
                    .execute(params![now_micros(), id])?,
                Schema::Reference => self
                    .conn
                    .prepare_cached(REF_SET_STARTING)?
                    .execute(params!["starting", id])?,
            };
            ensure!(changed == 1);
        }
        Ok(())
    }

    pub(crate) fn update_status(&self, k: Range<usize>) -> Result<()> {
        match self.schema {
            Schema::Ours => raw_update_status(&self.conn, &self.ids, k),
            Schema::Reference => ref_update_status(&self.conn, &self.ids, k),
        }
    }

    pub(crate) fn delete(&self, k: Range<usize>) -> Result<()> {
        match self.schema {
            Schema::Ours => raw_delete(&self.conn, &self.ids, k),
            Schema::Reference => ref_delete(&self.conn, &self.ids, k),
        }
    }
}

#[inline(never)]
fn raw_insert(conn: &Connection, ids: &[String], news: &[NewBot]) -> Result<()> {
    ids.iter()
        .zip(news)
        .try_for_each(|(id, b)| insert(conn, id, b))
}

#[inline(never)]
fn raw_get_by_id(conn: &Connection, ids: &[String], ks: Range<usize>) -> Result<()> {
    let n = ids.len();
    for k in ks {
        black_box(get_by_id(conn, &ids[visit(k, n)])?);
    }
    Ok(())
}

#[inline(never)]
fn raw_get_by_name(conn: &Connection, news: &[NewBot], ks: Range<usize>) -> Result<()> {
    let n = news.len();
    for k in ks {
        let mut stmt = conn.prepare_cached(GET_BY_NAME)?;
        black_box(stmt.query_row([news[visit(k, n)].name.as_str()], decode)?);
    }
    Ok(())
}

/// The same keyset walk as the API side: pages of `LIST_PAGE` rows, each decoded.
#[inline(never)]
fn raw_list_all(conn: &Connection, n: usize, times: usize) -> Result<()> {
    let limit = i64::try_from(LIST_PAGE)?;
    for _ in 0..times {
        let mut seen = 0;
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = match &after {
                None => conn
                    .prepare_cached(PAGE_FIRST)?
                    .query_map([limit], decode)?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
                Some((at, id)) => conn
                    .prepare_cached(PAGE_AFTER)?
                    .query_map(params![at, id, limit], decode)?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
            };
            seen += page.len();
            after = page.last().map(|b| (b.created_at, b.id.clone()));
            let full = page.len() == LIST_PAGE;
            black_box(page);
            if !full {
                break;
            }
        }
        ensure!(seen == n, "list_all saw {seen} rows");
    }
    Ok(())
}

#[inline(never)]
fn raw_update_status(conn: &Connection, ids: &[String], ks: Range<usize>) -> Result<()> {
    let n = ids.len();
    for k in ks {
        let changed = conn
            .prepare_cached(SET_RUNNING)?
            .execute(params![now_micros(), ids[visit(k, n)]])?;
        ensure!(changed == 1);
    }
    Ok(())
}

#[inline(never)]
fn raw_delete(conn: &Connection, ids: &[String], ks: Range<usize>) -> Result<()> {
    let n = ids.len();
    for k in ks {
        let changed = conn.prepare_cached(DELETE)?.execute([&ids[visit(k, n)]])?;
        ensure!(changed == 1);
    }
    Ok(())
}

// The reference: the original design's schema and statements
// (`../shared/bench/WORKLOAD.md`, "The reference schema"), verbatim, run the same bare
// way (same pragmas, `prepare_cached`, autocommit, rows decoded into a plain struct).
// The status update carries the lifecycle check in its `WHERE`, as ours does.
const REFERENCE_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS bots (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  ai_provider TEXT NOT NULL,
  model TEXT NOT NULL,
  channel_type TEXT NOT NULL,
  container_id TEXT,
  status TEXT NOT NULL DEFAULT 'created',
  created_at TEXT NOT NULL DEFAULT (datetime('now')),
  updated_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS idx_bots_status ON bots(status);
CREATE INDEX IF NOT EXISTS idx_bots_name ON bots(name);";
const REF_INSERT: &str = "INSERT INTO bots (id, name, ai_provider, model, channel_type, status) \
     VALUES (?, ?, ?, ?, ?, ?)";
const REF_GET_BY_ID: &str = "SELECT * FROM bots WHERE id = ?";
const REF_GET_BY_NAME: &str = "SELECT * FROM bots WHERE name = ?";
const REF_LIST_ALL: &str = "SELECT * FROM bots ORDER BY created_at DESC";
const REF_SET_RUNNING: &str = "UPDATE bots SET status = ?, updated_at = datetime('now') \
     WHERE id = ? AND status = 'starting'";
const REF_SET_STARTING: &str = "UPDATE bots SET status = ?, updated_at = datetime('now') \
     WHERE id = ? AND status IN ('created', 'stopped', 'failed')";
const REF_DELETE: &str = "DELETE FROM bots WHERE id = ?";

/// A reference row decoded into plain values (its timestamps are text).
#[allow(dead_code)] // fields are read through black_box only
struct RefBot {
    id: String,
    name: String,
    ai_provider: String,
    model: String,
    channel_type: String,
    container_id: Option<String>,
    status: String,
    created_at: String,
    updated_at: String,
}

fn ref_decode(r: &rusqlite::Row<'_>) -> rusqlite::Result<RefBot> {
    Ok(RefBot {
        id: r.get(0)?,
        name: r.get(1)?,
        ai_provider: r.get(2)?,
        model: r.get(3)?,
        channel_type: r.get(4)?,
        container_id: r.get(5)?,
        status: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

#[inline(never)]
fn ref_insert(conn: &Connection, ids: &[String], news: &[NewBot]) -> Result<()> {
    for (id, b) in ids.iter().zip(news) {
        conn.prepare_cached(REF_INSERT)?.execute(params![
            id,
            b.name.as_str(),
            b.ai_provider.as_str(),
            b.model.as_str(),
            b.channel_type.as_str(),
            "created"
        ])?;
    }
    Ok(())
}

#[inline(never)]
fn ref_get_by_id(conn: &Connection, ids: &[String], ks: Range<usize>) -> Result<()> {
    let n = ids.len();
    for k in ks {
        let mut stmt = conn.prepare_cached(REF_GET_BY_ID)?;
        black_box(stmt.query_row([&ids[visit(k, n)]], ref_decode)?);
    }
    Ok(())
}

#[inline(never)]
fn ref_get_by_name(conn: &Connection, news: &[NewBot], ks: Range<usize>) -> Result<()> {
    let n = news.len();
    for k in ks {
        let mut stmt = conn.prepare_cached(REF_GET_BY_NAME)?;
        black_box(stmt.query_row([news[visit(k, n)].name.as_str()], ref_decode)?);
    }
    Ok(())
}

/// The reference lists every bot in one statement (it has no pages).
#[inline(never)]
fn ref_list_all(conn: &Connection, n: usize, times: usize) -> Result<()> {
    for _ in 0..times {
        let all = conn
            .prepare_cached(REF_LIST_ALL)?
            .query_map([], ref_decode)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        ensure!(all.len() == n, "list_all saw {} rows", all.len());
        black_box(all);
    }
    Ok(())
}

#[inline(never)]
fn ref_update_status(conn: &Connection, ids: &[String], ks: Range<usize>) -> Result<()> {
    let n = ids.len();
    for k in ks {
        let changed = conn
            .prepare_cached(REF_SET_RUNNING)?
            .execute(params!["running", ids[visit(k, n)]])?;
        ensure!(changed == 1);
    }
    Ok(())
}

#[inline(never)]
fn ref_delete(conn: &Connection, ids: &[String], ks: Range<usize>) -> Result<()> {
    let n = ids.len();
    for k in ks {
        let changed = conn
            .prepare_cached(REF_DELETE)?
            .execute([&ids[visit(k, n)]])?;
        ensure!(changed == 1);
    }
    Ok(())
}

/// The bare parallel part: its own database, loaded with N rows, and one connection
/// per thread for each phase (bare rusqlite connections are not `Sync`), opened
/// untimed.
pub(crate) struct Parallel {
    readers: Vec<Connection>,
    writers: Vec<Connection>,
    ids: Vec<String>,
    extra: Vec<(Vec<String>, Rows)>,
    _dir: Scratch, // last: removed after the connections are closed
}

impl Parallel {
    pub(crate) fn new(n: usize, threads: usize, scratch: &Path) -> Result<Self> {
        let rows = Rows::new(n, |i| format!("bot-{i}"))?;
        let ids = render(&rows.ids);
        let extra: Vec<(Vec<String>, Rows)> = (0..threads)
            .map(|t| Rows::new(n / threads, |i| format!("p{t}-{i}")).map(|r| (render(&r.ids), r)))
            .collect::<Result<_>>()?;
        let dir = Scratch::new_in(scratch, "bench-raw-parallel")?;
        let db = dir.path().join("botmaker.db");
        botmaker::sqlite::migrate(&db)?;
        let conn = connect(&db)?;
        eprintln!("bench: loading {n} rows for the bare parallel part");
        raw_insert(&conn, &ids, &rows.news)?;
        drop(conn);
        Ok(Self {
            readers: (0..threads).map(|_| connect(&db)).collect::<Result<_>>()?,
            writers: (0..threads).map(|_| connect(&db)).collect::<Result<_>>()?,
            ids,
            extra,
            _dir: dir,
        })
    }

    /// Each thread: the lookups `k` of its N, from `t * N / T` in the visiting order.
    pub(crate) fn get_by_id(&mut self, k: Range<usize>) -> Result<()> {
        let (ids, threads) = (&self.ids, self.readers.len());
        let n = ids.len();
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .readers
                .iter_mut()
                .enumerate()
                .map(|(t, conn)| {
                    let k = k.clone();
                    s.spawn(move || raw_parallel_get_by_id(conn, ids, t * n / threads, k))
                })
                .collect();
            join_all(handles)
        })
    }

    /// Each thread: its new bots `k`.
    pub(crate) fn insert(&mut self, k: Range<usize>) -> Result<()> {
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .writers
                .iter_mut()
                .zip(&self.extra)
                .map(|(conn, (ids, rows))| {
                    let k = k.clone();
                    s.spawn(move || raw_insert(conn, &ids[k.clone()], &rows.news[k]))
                })
                .collect();
            join_all(handles)
        })
    }
}

#[inline(never)]
fn raw_parallel_get_by_id(
    conn: &Connection,
    ids: &[String],
    start: usize,
    ks: Range<usize>,
) -> Result<()> {
    let n = ids.len();
    for k in ks {
        black_box(get_by_id(conn, &ids[visit((start + k) % n, n)])?);
    }
    Ok(())
}

const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// The largest value read (the store's default cap).
const MAX_SECRET: usize = 64 * 1024;

// The bare side gives each operation the same guarantees as the store, with the fewest
// syscalls that give them: no symlink followed anywhere (one `O_NOFOLLOW` component at
// a time), the bot directory and every file checked with `fstat` on the descriptor
// actually used (owner, mode, kind, links, size), files created 0600 and `fchmod`ed
// (no reliance on the umask), and every write durable: temp file, `fsync`, rename,
// `fsync` of the directory. Each of the 3M writes and reads is one operation, as a
// service would call it, so each opens the bot's directory.

/// Opens and checks the bot's directory: ours, not writable by group or others.
/// `O_PATH` when it is only looked up (a read), readable when it is `fsync`ed.
fn open_bot_dir(root: &OwnedFd, id: &str, euid: u32, path_only: bool) -> Result<OwnedFd> {
    let access = if path_only {
        OFlag::O_PATH
    } else {
        OFlag::O_RDONLY
    };
    let dir = openat(root, id, DIR_FLAGS | access, Mode::empty())?;
    let st = fstat(&dir)?;
    ensure!(st.st_uid == euid, "bot directory owned by {}", st.st_uid);
    ensure!(
        st.st_mode & 0o022 == 0,
        "bot directory mode {:o}",
        st.st_mode
    );
    Ok(dir)
}

fn write_durably(root: &OwnedFd, id: &str, name: &str, value: &[u8], euid: u32) -> Result<()> {
    let dir = open_bot_dir(root, id, euid, false)?;
    // The target must be a regular file or missing (never replace a symlink or a dir).
    match fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => ensure!(st.st_mode & S_IFMT == S_IFREG, "{name} is not a file"),
        Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let tmp = format!(".tmp-{name}");
    let fd = openat(
        &dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    fchmod(&fd, Mode::from_bits_truncate(0o600))?;
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, value)?;
    fsync(file.as_fd())?;
    renameat(&dir, tmp.as_str(), &dir, name)?;
    drop(file);
    fsync(&dir)?;
    Ok(())
}

/// Reads `name` beneath the bot's directory `dir` (opened and checked once per bot)
/// with the store's checks on the descriptor read: one `fstat`, then kind, owner, mode,
/// links and size.
fn read_checked(dir: &OwnedFd, name: &str, euid: u32) -> Result<Vec<u8>> {
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let st = fstat(&fd)?;
    ensure!(st.st_mode & S_IFMT == S_IFREG, "{name} is not a file");
    ensure!(st.st_uid == euid, "{name} owned by {}", st.st_uid);
    // The store's file policy: permission bits exactly 0600 or 0400.
    ensure!(
        matches!(st.st_mode & 0o7777, 0o600 | 0o400),
        "{name} mode {:o}",
        st.st_mode
    );
    ensure!(st.st_nlink == 1, "{name} has {} links", st.st_nlink);
    let size = usize::try_from(st.st_size)?;
    ensure!(size <= MAX_SECRET, "{name} too large");
    let mut buf = vec![0u8; size + 1];
    let mut filled = 0;
    loop {
        match nix::unistd::read(&fd, &mut buf[filled..])? {
            0 => break,
            k => filled += k,
        }
        ensure!(filled <= MAX_SECRET, "{name} too large");
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// The bare secrets part: its own root (0700, ours), opened once.
pub(crate) struct Secrets {
    root: OwnedFd,
    euid: u32,
    ids: Vec<String>,
    _dir: Scratch, // last
}

impl Secrets {
    pub(crate) fn new(m: usize, scratch: &Path) -> Result<Self> {
        let dir = Scratch::new_in(scratch, "bench-raw-secrets")?;
        let root_path = dir.path().join("secrets");
        std::fs::create_dir(&root_path)?;
        let root = nix::fcntl::open(&root_path, DIR_FLAGS | OFlag::O_RDONLY, Mode::empty())?;
        fchmod(&root, Mode::from_bits_truncate(0o700))?;
        Ok(Self {
            root,
            euid: nix::unistd::geteuid().as_raw(),
            ids: (0..m).map(|_| uuid::Uuid::new_v4().to_string()).collect(),
            _dir: dir,
        })
    }

    pub(crate) fn write(&self, j: Range<usize>, input: &SecretsInput) -> Result<()> {
        raw_secret_write(&self.root, &self.ids[j.clone()], &input.first[j], self.euid)
    }

    pub(crate) fn read(&self, j: Range<usize>, input: &SecretsInput) -> Result<()> {
        raw_secret_read(&self.root, &self.ids[j.clone()], &input.first[j], self.euid)
    }

    pub(crate) fn read_unchecked(&self, j: Range<usize>, input: &SecretsInput) -> Result<()> {
        raw_secret_read_unchecked(&self.root, &self.ids[j.clone()], &input.first[j])
    }

    pub(crate) fn rotate(&self, j: Range<usize>, input: &SecretsInput) -> Result<()> {
        raw_secret_rotate(
            &self.root,
            &self.ids[j.clone()],
            &input.second[j],
            self.euid,
        )
    }

    pub(crate) fn delete(&self, j: Range<usize>, _: &SecretsInput) -> Result<()> {
        raw_secret_delete(&self.root, &self.ids[j])
    }
}

#[inline(never)]
fn raw_secret_write(
    root: &OwnedFd,
    ids: &[String],
    values: &[[Vec<u8>; 3]],
    euid: u32,
) -> Result<()> {
    for (id, values) in ids.iter().zip(values) {
        // A new bot directory: 0700 whatever the umask, ours, and durable in the root.
        mkdirat(root, id.as_str(), Mode::from_bits_truncate(0o700))?;
        let bot = openat(
            root,
            id.as_str(),
            DIR_FLAGS | OFlag::O_RDONLY,
            Mode::empty(),
        )?;
        ensure!(fstat(&bot)?.st_uid == euid, "bot directory not ours");
        fchmod(&bot, Mode::from_bits_truncate(0o700))?;
        fsync(root)?;
        drop(bot);
        for (name, value) in SECRET_NAMES.iter().zip(values) {
            write_durably(root, id, name, value, euid)?;
        }
    }
    Ok(())
}

#[inline(never)]
fn raw_secret_read(
    root: &OwnedFd,
    ids: &[String],
    values: &[[Vec<u8>; 3]],
    euid: u32,
) -> Result<()> {
    // A bot's credentials loaded together: its directory opened (and checked) once.
    for (id, values) in ids.iter().zip(values) {
        let dir = open_bot_dir(root, id, euid, true)?;
        for (name, value) in SECRET_NAMES.iter().zip(values) {
            let read = read_checked(&dir, name, euid)?;
            ensure!(read == *value, "read back wrong");
        }
    }
    Ok(())
}

/// The same reads with no checks at all: the directory and each file opened without
/// following a link, and read to their end; no `fstat`, so nothing about kind, owner,
/// mode, links or size is known. The price of the store's safety is the gap to it.
#[inline(never)]
fn raw_secret_read_unchecked(
    root: &OwnedFd,
    ids: &[String],
    values: &[[Vec<u8>; 3]],
) -> Result<()> {
    for (id, values) in ids.iter().zip(values) {
        let dir = openat(root, id.as_str(), DIR_FLAGS | OFlag::O_PATH, Mode::empty())?;
        for (name, value) in SECRET_NAMES.iter().zip(values) {
            let fd = openat(
                &dir,
                *name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let mut read = Vec::with_capacity(value.len() + 1);
            std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut read)?;
            ensure!(read == *value, "read back wrong");
        }
    }
    Ok(())
}

#[inline(never)]
fn raw_secret_rotate(
    root: &OwnedFd,
    ids: &[String],
    values: &[[Vec<u8>; 3]],
    euid: u32,
) -> Result<()> {
    for (id, values) in ids.iter().zip(values) {
        for (name, value) in SECRET_NAMES.iter().zip(values) {
            write_durably(root, id, name, value, euid)?;
        }
    }
    Ok(())
}

/// Renames the bot's directory to a trash name, makes that durable, then removes
/// everything in it (listed, not assumed) and makes the removal durable.
#[inline(never)]
fn raw_secret_delete(root: &OwnedFd, ids: &[String]) -> Result<()> {
    for id in ids {
        let trash = format!(".trash-{id}");
        renameat(root, id.as_str(), root, trash.as_str())?;
        fsync(root)?;
        let bot = openat(
            root,
            trash.as_str(),
            DIR_FLAGS | OFlag::O_RDONLY,
            Mode::empty(),
        )?;
        let mut listing = nix::dir::Dir::from_fd(bot)?;
        let names: Vec<std::ffi::CString> = listing
            .iter()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect();
        for name in &names {
            unlinkat(&listing, name.as_c_str(), UnlinkatFlags::NoRemoveDir)?;
        }
        drop(listing);
        unlinkat(root, trash.as_str(), UnlinkatFlags::RemoveDir)?;
        fsync(root)?;
    }
    Ok(())
}
