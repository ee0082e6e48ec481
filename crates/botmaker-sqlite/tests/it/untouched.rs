//! Inspecting or refusing a database never creates, changes or deletes a file: the
//! folder that holds it (every name and every byte: the main file, `-wal`, `-shm`,
//! `-journal`, and nothing new) is the same before and after `SqliteStore::open`,
//! `migration_status`, and a `migrate` that refuses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use botmaker_sqlite::{SchemaState, SqliteStore, StoreError, migrate, migration_status};
use refinery::{Migration, Runner};
use rusqlite::Connection;

use crate::support::wal_connection;

const V1_SQL: &str = include_str!("../../migrations/V1__create_bots.sql");
const V2_SQL: &str = include_str!("../../migrations/V2__bots_checks_without_in_lists.sql");

/// Every entry of a folder: its name and, for a file, its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = e
                .file_type()
                .unwrap()
                .is_file()
                .then(|| std::fs::read(e.path()).unwrap());
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

fn names(snap: &BTreeMap<String, Option<Vec<u8>>>) -> Vec<&str> {
    snap.keys().map(String::as_str).collect()
}

/// Asserts that `f` left the folder as it was.
fn untouched<T>(dir: &Path, what: &str, f: impl FnOnce() -> T) -> T {
    let before = snapshot(dir);
    let out = f();
    let after = snapshot(dir);
    assert_eq!(
        names(&after),
        names(&before),
        "{what}: the folder's names changed"
    );
    for (name, bytes) in &before {
        assert!(after[name] == *bytes, "{what}: {name} changed");
    }
    out
}

/// A migration newer than this code's newest.
const V3_SQL: &str = include_str!("../../migrations/V3__bots_secrets_root.sql");
const V4_FUTURE: &str = "CREATE TABLE future (x INTEGER) STRICT;";

fn run(conn: &mut Connection, migrations: &[(&str, &str)]) {
    let migrations: Vec<Migration> = migrations
        .iter()
        .map(|(name, sql)| Migration::unapplied(name, sql).unwrap())
        .collect();
    Runner::new(&migrations).run(conn).unwrap();
}

fn too_new(conn: &mut Connection) {
    run(
        conn,
        &[
            ("V1__create_bots", V1_SQL),
            ("V2__bots_checks_without_in_lists", V2_SQL),
            ("V3__bots_secrets_root", V3_SQL),
            ("V4__add_future", V4_FUTURE),
        ],
    );
}

fn diverged(conn: &mut Connection) {
    run(conn, &[("V1__create_bots", "CREATE TABLE bots (id TEXT);")]);
}

fn damaged_applied_on(conn: &mut Connection) {
    run(conn, &[("V1__create_bots", V1_SQL)]);
    conn.execute(
        "UPDATE refinery_schema_history SET applied_on = 'yesterday'",
        [],
    )
    .unwrap();
}

fn current(conn: &mut Connection) {
    run(
        conn,
        &[
            ("V1__create_bots", V1_SQL),
            ("V2__bots_checks_without_in_lists", V2_SQL),
            ("V3__bots_secrets_root", V3_SQL),
        ],
    );
}

/// A database built by `build` in WAL mode and closed cleanly: only the main file.
fn closed_wal_db(build: fn(&mut Connection)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    let mut conn = wal_connection(&path);
    build(&mut conn);
    drop(conn);
    assert_eq!(names(&snapshot(dir.path())), vec!["botmaker.db"]);
    (dir, path)
}

/// The image a crash leaves of a WAL database built by `build`: everything `build`
/// wrote is committed but still in the `-wal` (never checkpointed); the main file has
/// only what switching to WAL wrote. With `shm`, the `-shm` is there too.
fn crashed_wal_image(build: fn(&mut Connection), shm: bool) -> (tempfile::TempDir, PathBuf) {
    let live = tempfile::tempdir().unwrap();
    let live_path = live.path().join("botmaker.db");
    let mut conn = wal_connection(&live_path);
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    build(&mut conn);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    let suffixes: &[&str] = if shm {
        &["", "-wal", "-shm"]
    } else {
        &["", "-wal"]
    };
    for suffix in suffixes {
        std::fs::copy(
            format!("{}{suffix}", live_path.display()),
            format!("{}{suffix}", path.display()),
        )
        .unwrap();
    }
    drop(conn);
    (dir, path)
}

/// Open and `migrate` refuse `path` as `refused` says, `migration_status` answers as
/// `status` says, and none of them changes a file.
fn all_refuse(
    dir: &Path,
    path: &Path,
    what: &str,
    refused: fn(&StoreError) -> bool,
    status: fn(&Result<botmaker_sqlite::MigrationStatus, StoreError>) -> bool,
) {
    let err = untouched(dir, &format!("{what}: open"), || {
        SqliteStore::open(path).unwrap_err()
    });
    assert!(refused(&err), "{what}: open: {err:?}");
    let answer = untouched(dir, &format!("{what}: status"), || migration_status(path));
    assert!(status(&answer), "{what}: status: {answer:?}");
    let err = untouched(dir, &format!("{what}: migrate"), || {
        migrate(path).unwrap_err()
    });
    assert!(refused(&err), "{what}: migrate: {err:?}");
}

fn is_too_new(e: &StoreError) -> bool {
    matches!(e, StoreError::SchemaTooNew { db: 4, code: 3, .. })
}

fn is_diverged(e: &StoreError) -> bool {
    matches!(e, StoreError::MigrationsDiverged { version: 1, .. })
}

fn status_too_new(s: &Result<botmaker_sqlite::MigrationStatus, StoreError>) -> bool {
    matches!(s, Ok(s) if s.state == SchemaState::TooNew && s.db_version == 4)
}

fn status_diverged(s: &Result<botmaker_sqlite::MigrationStatus, StoreError>) -> bool {
    matches!(s, Ok(s) if matches!(s.state, SchemaState::Diverged { version: 1, .. }))
}

#[test]
fn a_missing_database_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    let err = untouched(dir.path(), "open", || SqliteStore::open(&path).unwrap_err());
    assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
    let status = untouched(dir.path(), "status", || migration_status(&path).unwrap());
    assert_eq!(status.state, SchemaState::Missing);
    assert_eq!(names(&snapshot(dir.path())), Vec::<&str>::new());
}

#[test]
fn refused_databases_get_no_companions() {
    for (what, build) in [
        ("too new", too_new as fn(&mut Connection)),
        ("diverged", diverged),
        ("damaged applied_on", damaged_applied_on),
    ] {
        let (dir, path) = closed_wal_db(build);
        let (refused, status): (fn(&StoreError) -> bool, _) = if what == "too new" {
            (is_too_new, status_too_new as fn(&_) -> bool)
        } else {
            (is_diverged, status_diverged as fn(&_) -> bool)
        };
        all_refuse(dir.path(), &path, what, refused, status);
    }
}

#[test]
fn a_history_that_lives_only_in_the_wal_is_seen_and_nothing_changes() {
    for shm in [false, true] {
        let what = format!("crashed image, -shm {shm}");
        let (dir, path) = crashed_wal_image(too_new, shm);
        all_refuse(dir.path(), &path, &what, is_too_new, status_too_new);

        let (dir, path) = crashed_wal_image(current, shm);
        let status = untouched(dir.path(), &what, || migration_status(&path).unwrap());
        assert_eq!(status.state, SchemaState::UpToDate, "{what}");
        // An accepted open may use (and recover) the WAL; it still sees the history.
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version(), botmaker_sqlite::LATEST_VERSION);
        assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());
    }
}

#[test]
fn a_file_that_is_not_a_database_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    std::fs::write(&path, b"not a database\n".repeat(300)).unwrap();
    std::fs::write(dir.path().join("botmaker.db-wal"), b"frames").unwrap();
    let not_a_db = |e: &StoreError| matches!(e, StoreError::NotADatabase { .. });
    all_refuse(dir.path(), &path, "not a database", not_a_db, |s| {
        matches!(s, Err(StoreError::NotADatabase { .. }))
    });
}

#[test]
fn a_status_of_a_current_database_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    migrate(&path).unwrap();
    let status = untouched(dir.path(), "status", || migration_status(&path).unwrap());
    assert_eq!(status.state, SchemaState::UpToDate);
}

/// A WAL whose frames hold a whole migrated database, beside an empty main file.
fn empty_main_beside(wal: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    std::fs::write(&path, b"").unwrap();
    std::fs::write(dir.path().join("botmaker.db-wal"), wal).unwrap();
    (dir, path)
}

#[test]
fn an_empty_main_file_beside_a_wal_with_frames_keeps_its_wal() {
    // SQLite deletes a WAL whose main file has no pages: it is a database whose pages
    // are only in the WAL, which nothing here can read without losing them, so every
    // entry point refuses it and leaves both files for a person to restore.
    let (image, image_path) = crashed_wal_image(current, false);
    let wal = std::fs::read(format!("{}-wal", image_path.display())).unwrap();
    assert!(wal.len() > 4096);
    drop(image);
    let (dir, path) = empty_main_beside(&wal);
    let refused = |e: &StoreError| matches!(e, StoreError::NotADatabase { reason, .. } if reason.contains("-wal"));
    all_refuse(
        dir.path(),
        &path,
        "empty main, WAL with frames",
        refused,
        |s| matches!(s, Err(StoreError::NotADatabase { reason, .. }) if reason.contains("-wal")),
    );
    assert_eq!(
        std::fs::read(dir.path().join("botmaker.db-wal")).unwrap(),
        wal,
        "migrate kept the WAL"
    );
}

#[test]
fn an_empty_main_file_beside_an_empty_wal_is_pending_and_untouched() {
    let (dir, path) = empty_main_beside(b"");
    let err = untouched(dir.path(), "open", || SqliteStore::open(&path).unwrap_err());
    assert!(
        matches!(err, StoreError::MigrationsPending { db: 0, .. }),
        "{err:?}"
    );
    let status = untouched(dir.path(), "status", || migration_status(&path).unwrap());
    assert_eq!(status.state, SchemaState::Pending);
    // Not a refusal: migrate makes it a database.
    migrate(&path).unwrap();
    SqliteStore::open(&path).unwrap();
}
