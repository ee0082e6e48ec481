//! Opening connections: the open flags and the per-connection pragmas of each kind of
//! connection, set here and nowhere else.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::StoreError;

/// How long `migrate` and the inspection before every open wait for other
/// connections.
pub(crate) const CHECK_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The page cache of the store's connections, in KiB (SQLite's `cache_size` takes it
/// negated). SQLite's default, 2 MiB, holds the registry only up to about 10 000 bots;
/// past that every lookup reads its leaf pages back from the OS and the cost per
/// lookup grows with the registry. 32 MiB holds about 100 000 bots. It is a ceiling,
/// not an allocation: a connection holds only the pages it has read.
const PAGE_CACHE_KIB: i64 = 32 * 1024;

/// Prepared-statement cache size of the store's connections: room for every
/// statement (a test checks it against the list of statements).
pub(crate) const STATEMENT_CACHE: usize = 32;

/// What a connection is for, which decides how it is opened and set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Reading a file's schema and history before anything else touches it, when
    /// the main file holds the whole database (no `-wal`, no `-journal`): SQLite's
    /// `immutable=1`, read only and without locks, so that it neither creates the
    /// `-wal`/`-shm` of a WAL database nor deletes anything; and no pragma (some,
    /// like `journal_mode`, would write to the file).
    Inspect,
    /// Reading the schema and history of a private copy of a database (main file,
    /// `-wal`, `-journal`): read-write, so that SQLite may recover the copy (replay
    /// its WAL, roll back its journal) as it would the original; no pragma.
    InspectCopy,
    /// Applying migrations: read-write; WAL, `synchronous`, `foreign_keys`.
    Migrate,
    /// The store's one writer: as [`Role::Migrate`], plus the page and statement
    /// caches.
    Write,
    /// One of the store's readers: read only; `foreign_keys` and the page and
    /// statement caches.
    Read,
}

/// Opens a connection for `role` with its busy timeout set first, and nothing else:
/// the caller may still look at the file before [`configure`] changes anything.
pub(crate) fn open(
    path: &Path,
    role: Role,
    busy_timeout: Duration,
) -> Result<Connection, StoreError> {
    let access = match role {
        Role::Inspect | Role::Read => OpenFlags::SQLITE_OPEN_READ_ONLY,
        Role::InspectCopy | Role::Migrate | Role::Write => OpenFlags::SQLITE_OPEN_READ_WRITE,
    };
    // Never `SQLITE_OPEN_CREATE`: only `migrate` creates a database, and it creates
    // the file itself (0600) first.
    let flags = access | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = if role == Role::Inspect {
        Connection::open_with_flags(immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)
    } else {
        Connection::open_with_flags(path, flags)
    }
    .map_err(|e| sqlite_err(path, "opening", e))?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| sqlite_err(path, "setting busy_timeout", e))?;
    if matches!(role, Role::Migrate | Role::Write | Role::Read) {
        let expected = i64::try_from(busy_timeout.as_millis()).unwrap_or(i64::MAX);
        let actual = read_back(&conn, path)?.busy_timeout_ms;
        expect(path, "busy_timeout", expected, actual)?;
    }
    Ok(conn)
}

/// Sets the pragmas of `role` on a connection [`open`] made with the same role,
/// outside any transaction (SQLite ignores some of them inside one).
pub(crate) fn configure(conn: &Connection, path: &Path, role: Role) -> Result<(), StoreError> {
    let pragmas = |f: &dyn Fn() -> rusqlite::Result<()>| {
        f().map_err(|e| sqlite_err(path, "setting pragmas", e))
    };
    match role {
        // Nothing to set, nor to read back.
        Role::Inspect | Role::InspectCopy => return Ok(()),
        Role::Migrate => {
            set_wal(conn, path)?;
            pragmas(&|| {
                conn.pragma_update(None, "synchronous", "NORMAL")?;
                conn.pragma_update(None, "foreign_keys", "ON")
            })?;
        }
        Role::Write => {
            set_wal(conn, path)?;
            pragmas(&|| {
                conn.pragma_update(None, "synchronous", "NORMAL")?;
                conn.pragma_update(None, "foreign_keys", "ON")?;
                conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)
            })?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        }
        Role::Read => {
            // No journal mode: the writer sets WAL in the file, and a read-only
            // connection cannot. `synchronous` as on the writer, so that every
            // connection of the store reads back the same settings.
            pragmas(&|| {
                conn.pragma_update(None, "synchronous", "NORMAL")?;
                conn.pragma_update(None, "foreign_keys", "ON")?;
                conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)
            })?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        }
    }
    verify(conn, path)
}

/// Reads the settings of a connection [`configure`]d for the store or `migrate` back,
/// and refuses one that did not take: SQLite ignores a pragma it does not accept (or
/// one set inside a transaction) without an error, so the answer is checked, not
/// assumed.
fn verify(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let got = read_back(conn, path)?;
    if !got.journal_mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NotWal {
            path: path.to_owned(),
            mode: got.journal_mode,
        });
    }
    expect(path, "synchronous", SYNCHRONOUS_NORMAL, got.synchronous)?;
    expect(path, "foreign_keys", 1, i64::from(got.foreign_keys))
}

/// WAL pages from which a commit checkpoints: SQLite's own auto-checkpoint threshold.
pub(crate) const CHECKPOINT_PAGES: i32 = 1000;

/// From how long a checkpoint is reported at warn (it runs inside a commit, so every
/// write of that batch waited for it): 100 ms.
pub(crate) const SLOW_CHECKPOINT_US: u64 = 100_000;

/// Replaces SQLite's auto-checkpoint on the writer with the same policy, timed: when a
/// commit leaves [`CHECKPOINT_PAGES`] or more pages in the WAL, a `PASSIVE`
/// checkpoint runs right after it (as `sqlite3_wal_autocheckpoint` does), and a
/// `tracing` event reports its pages, what it copied and how long it took: at debug,
/// at warn from [`SLOW_CHECKPOINT_US`]. A checkpoint that cannot finish (readers still
/// on old frames) or fails is reported and is not the commit's failure: the commit
/// is durable in the WAL either way, and SQLite's own hook ignores it the same way.
pub(crate) fn checkpoint_with_events(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    checkpoint_with_events_from(conn, path, SLOW_CHECKPOINT_US)
}

/// [`checkpoint_with_events`] with the warn threshold given (tests make every
/// checkpoint slow, or none).
fn checkpoint_with_events_from(
    conn: &mut Connection,
    path: &Path,
    slow_us: u64,
) -> Result<(), StoreError> {
    conn.wal_hook(Some(
        move |wal: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
            if pages < CHECKPOINT_PAGES {
                return Ok(());
            }
            let began = std::time::Instant::now();
            let result = wal.checkpoint_v2(rusqlite::wal::CheckpointMode::PASSIVE);
            let elapsed_us = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
            match result {
                Ok((wal_frames, copied)) if elapsed_us >= slow_us => {
                    tracing::warn!(pages, wal_frames, copied, elapsed_us, "slow WAL checkpoint");
                }
                Ok((wal_frames, copied)) => {
                    tracing::debug!(pages, wal_frames, copied, elapsed_us, "WAL checkpoint");
                }
                Err(e) => tracing::warn!(
                    pages,
                    elapsed_us,
                    error = %e,
                    "WAL checkpoint did not run"
                ),
            }
            Ok(())
        },
    ))
    .map_err(|e| sqlite_err(path, "installing the WAL hook", e))
}

/// `PRAGMA synchronous`'s answer for `NORMAL`.
const SYNCHRONOUS_NORMAL: i64 = 1;

/// The settings of one connection as SQLite reports them (`PRAGMA journal_mode`,
/// `synchronous`, `foreign_keys`, `busy_timeout`): what the store checks after setting
/// them on each connection it opens, and what tests read back from every connection.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `PRAGMA journal_mode`, lowercase (`wal`).
    pub journal_mode: String,
    /// `PRAGMA synchronous`: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
    pub synchronous: i64,
    /// `PRAGMA foreign_keys`.
    pub foreign_keys: bool,
    /// `PRAGMA busy_timeout`, in milliseconds.
    pub busy_timeout_ms: i64,
    /// `PRAGMA cache_size`: negative, in KiB (`-32768`: 32 MiB); positive, in pages.
    pub cache_size: i64,
}

/// Reads a connection's settings back from SQLite.
pub(crate) fn read_back(conn: &Connection, path: &Path) -> Result<ConnectionSettings, StoreError> {
    let get = |pragma: &'static str| {
        conn.pragma_query_value(None, pragma, |row| row.get::<_, rusqlite::types::Value>(0))
            .map_err(|e| sqlite_err(path, "reading pragmas", e))
    };
    let int = |v: rusqlite::types::Value| match v {
        rusqlite::types::Value::Integer(i) => i,
        _ => -1,
    };
    let journal_mode = match get("journal_mode")? {
        rusqlite::types::Value::Text(t) => t.to_ascii_lowercase(),
        other => format!("{other:?}"),
    };
    Ok(ConnectionSettings {
        journal_mode,
        synchronous: int(get("synchronous")?),
        foreign_keys: int(get("foreign_keys")?) == 1,
        busy_timeout_ms: int(get("busy_timeout")?),
        cache_size: int(get("cache_size")?),
    })
}

/// Refuses a setting SQLite reports with another value than the one set.
fn expect(path: &Path, pragma: &'static str, expected: i64, actual: i64) -> Result<(), StoreError> {
    if expected == actual {
        Ok(())
    } else {
        Err(StoreError::PragmaNotSet {
            path: path.to_owned(),
            pragma,
            expected,
            actual,
        })
    }
}

/// `file:<path>?immutable=1`, the path percent-encoded (a `?`, `#` or `%` in it would
/// otherwise end or change the URI).
fn immutable_uri(path: &Path) -> String {
    #[cfg(unix)]
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().into_owned().into_bytes();
    let mut uri = String::from("file:");
    for b in bytes {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            uri.push('%');
            uri.push(char::from(HEX[usize::from(b >> 4)]));
            uri.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Sets the journal mode to WAL (persistent in the file) and checks SQLite's answer:
/// SQLite reports the mode it kept instead of failing when it cannot switch.
fn set_wal(conn: &Connection, path: &Path) -> Result<(), StoreError> {
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

/// Whether SQLite found that the file is not a database.
pub(crate) fn is_not_a_database(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::NotADatabase)
}

/// Maps an SQLite error met while opening, inspecting or checking a database.
pub(crate) fn sqlite_err(path: &Path, operation: &'static str, e: rusqlite::Error) -> StoreError {
    if is_not_a_database(&e) {
        StoreError::NotADatabase {
            path: path.to_owned(),
            reason: NOT_A_DATABASE,
        }
    } else {
        StoreError::Sqlite {
            path: path.to_owned(),
            operation,
            source: e,
        }
    }
}

/// The reason given when SQLite itself refuses the file.
pub(crate) const NOT_A_DATABASE: &str = "SQLite says the file is not a database";

#[cfg(test)]
mod tests {
    use super::*;

    /// The level of the event a checkpoint sends: warn from the threshold, debug
    /// below it (a checkpoint takes more than 0 µs and less than `u64::MAX`).
    #[test]
    fn a_checkpoint_is_reported_at_warn_from_the_threshold_and_at_debug_below() {
        use tracing_subscriber::layer::SubscriberExt as _;
        for (slow_us, level) in [(0, "WARN"), (u64::MAX, "DEBUG")] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c.db");
            let mut conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch("CREATE TABLE t (b BLOB)").unwrap();
            checkpoint_with_events_from(&mut conn, &path, slow_us).unwrap();
            let events = crate::group::tests::Events::default();
            let subscriber = tracing_subscriber::registry().with(events.clone());
            tracing::subscriber::with_default(subscriber, || {
                // One commit of about 1 200 pages: past CHECKPOINT_PAGES.
                let tx = conn.transaction().unwrap();
                for _ in 0..1200 {
                    tx.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                        .unwrap();
                }
                tx.commit().unwrap();
            });
            let lines = events.0.lock().unwrap().clone();
            let checkpoints: Vec<&String> =
                lines.iter().filter(|l| l.contains("checkpoint")).collect();
            assert_eq!(checkpoints.len(), 1, "slow_us {slow_us}: {lines:?}");
            assert!(
                checkpoints[0].starts_with(level),
                "slow_us {slow_us}: {checkpoints:?}"
            );
        }
    }

    #[test]
    fn the_immutable_uri_escapes_what_a_uri_would_read() {
        assert_eq!(
            immutable_uri(Path::new("/a b/x?y#z%_~.db")),
            "file:/a%20b/x%3Fy%23z%25_~.db?immutable=1"
        );
    }

    /// Only SQLite's "file is not a database" is reported as one; any other failure
    /// (busy, I/O, a constraint) keeps its own error.
    #[test]
    fn only_notadb_is_not_a_database() {
        let failure = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        assert!(is_not_a_database(&failure(rusqlite::ffi::SQLITE_NOTADB)));
        for code in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_IOERR,
            rusqlite::ffi::SQLITE_CONSTRAINT,
            rusqlite::ffi::SQLITE_CORRUPT,
        ] {
            let e = failure(code);
            assert!(!is_not_a_database(&e), "{e}");
            let path = Path::new("/x/botmaker.db");
            assert!(
                matches!(sqlite_err(path, "opening", e), StoreError::Sqlite { .. }),
                "code {code}"
            );
        }
    }

    /// The read-back after `configure` refuses a connection whose journal mode,
    /// `synchronous` or `foreign_keys` is not what the store sets: each is put wrong
    /// in turn on a plain connection, the others right.
    #[test]
    fn verify_refuses_each_setting_that_did_not_take() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let conn = Connection::open(&path).unwrap();
        let set = |mode: &str, sync: &str, fk: &str| {
            conn.pragma_update_and_check(None, "journal_mode", mode, |_| Ok(()))
                .unwrap();
            conn.pragma_update(None, "synchronous", sync).unwrap();
            conn.pragma_update(None, "foreign_keys", fk).unwrap();
        };
        set("WAL", "NORMAL", "ON");
        verify(&conn, &path).unwrap();
        set("DELETE", "NORMAL", "ON");
        match verify(&conn, &path) {
            Err(StoreError::NotWal { mode, .. }) => assert_eq!(mode, "delete"),
            other => panic!("journal_mode=DELETE: {other:?}"),
        }
        for (sync, fk, pragma, expected, actual) in [
            ("FULL", "ON", "synchronous", 1, 2),
            ("OFF", "ON", "synchronous", 1, 0),
            ("NORMAL", "OFF", "foreign_keys", 1, 0),
        ] {
            set("WAL", sync, fk);
            match verify(&conn, &path) {
                Err(StoreError::PragmaNotSet {
                    pragma: p,
                    expected: e,
                    actual: a,
                    ..
                }) => assert_eq!((p, e, a), (pragma, expected, actual)),
                other => panic!("synchronous={sync} foreign_keys={fk}: {other:?}"),
            }
        }
    }
}
