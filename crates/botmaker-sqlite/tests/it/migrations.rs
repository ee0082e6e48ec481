//! Migrating, the migration status, and every refusal of openers and `migrate`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use botmaker_domain::BotRepository as _;
use botmaker_sqlite::{
    LATEST_VERSION, MigrationInfo, SchemaState, SqliteStore, StoreError, migrate, migration_status,
    shipped_migrations,
};
use refinery::{Migration, Runner};
use rusqlite::Connection;

use botmaker_testkit::conformance::new_bot;

use crate::support::{bytes, dir_entries, migrated_db, wal_connection};

const V1_SQL: &str = include_str!("../../migrations/V1__create_bots.sql");
const V2_SQL: &str = include_str!("../../migrations/V2__bots_checks_without_in_lists.sql");
const V3_SQL: &str = include_str!("../../migrations/V3__bots_secrets_root.sql");

/// Every shipped migration: file name, refinery checksum, byte length.
/// Shipped migrations never change; add a new one.
const SHIPPED: &[(&str, u64, usize)] = &[
    ("V1__create_bots.sql", 15_473_874_698_871_672_115, 1670),
    (
        "V2__bots_checks_without_in_lists.sql",
        9_664_004_282_047_742_592,
        2806,
    ),
    ("V3__bots_secrets_root.sql", 16_318_361_090_585_274_086, 621),
];

#[test]
fn shipped_migrations_never_change() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let files = dir_entries(&dir);
    let pinned: Vec<&str> = SHIPPED.iter().map(|(f, _, _)| *f).collect();
    assert_eq!(
        files, pinned,
        "every migration file is pinned here (add the new one to SHIPPED)"
    );
    let shipped = shipped_migrations();
    assert_eq!(shipped.len(), SHIPPED.len());
    for ((file, checksum, len), info) in SHIPPED.iter().zip(&shipped) {
        assert_eq!(
            format!("V{}__{}.sql", info.version, info.name),
            *file,
            "migration order"
        );
        let actual_len = std::fs::metadata(dir.join(file)).unwrap().len();
        assert!(
            info.checksum == *checksum && actual_len == u64::try_from(*len).unwrap(),
            "{file} changed (checksum {}, {actual_len} bytes; pinned {checksum}, {len} bytes): \
             shipped migrations never change; add a new one",
            info.checksum
        );
    }
}

fn journal_mode(path: &Path) -> String {
    let conn = Connection::open(path).unwrap();
    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

fn history(path: &Path) -> Vec<(i64, String)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT version, name FROM refinery_schema_history ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn v1() -> MigrationInfo {
    shipped_migrations().remove(0)
}

#[test]
fn a_fresh_migrate_creates_the_database_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("deeper").join("botmaker.db");
    let report = migrate(&path).unwrap();
    assert_eq!(report.applied, shipped_migrations());
    assert_eq!(report.applied[0].name, "create_bots");
    assert_eq!(report.applied[1].name, "bots_checks_without_in_lists");
    assert_eq!(report.applied[2].name, "bots_secrets_root");
    assert_eq!(
        (report.from_version, report.to_version),
        (0, LATEST_VERSION)
    );
    assert!(!report.was_up_to_date());

    assert_eq!(report.path, path);
    let shown = report.to_string();
    assert!(
        shown.starts_with(
            "applied V1__create_bots\napplied V2__bots_checks_without_in_lists\n\
             applied V3__bots_secrets_root\n"
        ) && shown.ends_with("schema version 0 -> 3\n"),
        "{shown}"
    );

    assert_eq!(journal_mode(&path), "wal");
    assert_eq!(
        history(&path),
        vec![
            (1, "create_bots".to_owned()),
            (2, "bots_checks_without_in_lists".to_owned()),
            (3, "bots_secrets_root".to_owned())
        ]
    );
    // Modes are set explicitly, whatever the umask: nothing for group or others.
    for p in [
        path.parent().unwrap(),
        path.parent().unwrap().parent().unwrap(),
    ] {
        let mode = std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", p.display());
    }
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "database mode {mode:o}");

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version(), LATEST_VERSION);
    assert_eq!(store.path(), path);
    assert_eq!(store.quick_check().unwrap(), Vec::<String>::new());
    assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());
}

#[test]
fn migrating_twice_is_a_no_op() {
    let (_dir, path) = migrated_db();
    let report = migrate(&path).unwrap();
    assert!(report.was_up_to_date());
    assert_eq!(report.applied, vec![]);
    assert_eq!(
        (report.from_version, report.to_version),
        (LATEST_VERSION, LATEST_VERSION)
    );
    let shown = report.to_string();
    assert!(
        shown.contains("up to date") && shown.ends_with('\n'),
        "{shown}"
    );
    assert_eq!(history(&path).len(), shipped_migrations().len());
}

#[test]
fn status_reports_without_touching_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");

    let status = migration_status(&path).unwrap();
    assert_eq!(status.state, SchemaState::Missing);
    assert_eq!(
        (status.db_version, status.code_version),
        (0, LATEST_VERSION)
    );
    assert_eq!(status.pending, shipped_migrations());
    assert!(!path.exists(), "status must not create the database");
    let shown = status.to_string();
    assert!(
        shown.contains("missing")
            && shown.contains("pending V1__create_bots\n")
            && shown.contains("pending V2__bots_checks_without_in_lists\n")
            && shown.contains("pending V3__bots_secrets_root\n"),
        "{shown}"
    );
    assert_eq!(dir_entries(dir.path()), Vec::<String>::new());

    migrate(&path).unwrap();
    let before = bytes(&path);
    let status = migration_status(&path).unwrap();
    assert_eq!(status.state, SchemaState::UpToDate);
    assert_eq!(status.db_version, LATEST_VERSION);
    assert_eq!(status.pending, vec![]);
    assert_eq!(status.applied.len(), shipped_migrations().len());
    assert_eq!(status.applied[0].version, 1);
    assert_eq!(status.applied[1].version, 2);
    assert_eq!(status.applied[1].name, "bots_checks_without_in_lists");
    assert_eq!(status.applied[0].name, "create_bots");
    assert_eq!(status.applied[0].checksum, Some(v1().checksum));
    assert!(status.applied[0].applied_on.is_some());
    let shown = status.to_string();
    assert!(
        shown.contains("up to date\n") && shown.contains("applied V1__create_bots ("),
        "{shown}"
    );
    assert!(!shown.contains("pending"), "{shown}");
    assert_eq!(bytes(&path), before);
}

/// A database as newer code would leave it: V1 to V3 and a V4 this code does not know.
fn too_new_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, path) = migrated_db();
    let mut conn = Connection::open(&path).unwrap();
    Runner::new(&[
        Migration::unapplied("V1__create_bots", V1_SQL).unwrap(),
        Migration::unapplied("V2__bots_checks_without_in_lists", V2_SQL).unwrap(),
        Migration::unapplied("V3__bots_secrets_root", V3_SQL).unwrap(),
        Migration::unapplied("V4__add_future", "CREATE TABLE future (x INTEGER) STRICT;").unwrap(),
    ])
    .run(&mut conn)
    .unwrap();
    conn.execute(
        "INSERT INTO bots (id, name, ai_provider, model, channel_type, status, created_at, \
         updated_at) VALUES ('00000000-0000-4000-8000-000000000001', 'alpha', 'openai', 'm', \
         'slack', 'created', 1, 1)",
        [],
    )
    .unwrap();
    drop(conn);
    (dir, path)
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let (dir, path) = too_new_db();
    let before = bytes(&path);
    let entries = dir_entries(dir.path());

    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { db: 4, code: 3, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("version 4") && message.contains("version 3"),
        "{message}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");

    let err = migrate(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { db: 4, code: 3, .. }),
        "{err:?}"
    );
    let status = migration_status(&path).unwrap();
    assert_eq!(status.state, SchemaState::TooNew);
    assert_eq!(status.db_version, 4);

    assert_eq!(bytes(&path), before, "the database is untouched");
    // Not even the -wal/-shm companions of a WAL database appear.
    assert_eq!(dir_entries(dir.path()), entries);
    let conn = Connection::open(&path).unwrap();
    let bots: i64 = conn
        .query_row("SELECT count(*) FROM bots", [], |r| r.get(0))
        .unwrap();
    assert_eq!(bots, 1);
}

#[test]
fn a_diverged_history_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    let mut conn = Connection::open(&path).unwrap();
    Runner::new(&[
        Migration::unapplied("V1__create_bots", "CREATE TABLE bots (id TEXT);").unwrap(),
    ])
    .run(&mut conn)
    .unwrap();
    drop(conn);
    let before = bytes(&path);

    let err = refused_as_diverged_at_v1(&path, &before, "a changed V1");
    assert!(err.contains("never change"), "{err}");
}

/// Opening, migrating and asking the status of `path` all say its history diverged at
/// V1, and the file still holds `before`. The opener's message, for more checks.
fn refused_as_diverged_at_v1(path: &std::path::Path, before: &[u8], what: &str) -> String {
    let err = SqliteStore::open(path).unwrap_err();
    assert!(
        matches!(err, StoreError::MigrationsDiverged { version: 1, .. }),
        "{what}: open: {err:?}"
    );
    let refused = migrate(path).unwrap_err();
    assert!(
        matches!(refused, StoreError::MigrationsDiverged { version: 1, .. }),
        "{what}: migrate: {refused:?}"
    );
    assert!(matches!(
        migration_status(path).unwrap().state,
        SchemaState::Diverged { version: 1, .. }
    ));
    assert_eq!(bytes(path), before, "{what}");
    err.to_string()
}

#[test]
fn a_history_with_a_damaged_applied_on_is_refused_not_a_panic() {
    // refinery's driver unwraps its parse of `applied_on`: these would panic in it.
    for (what, value) in [
        ("text", Some("yesterday")),
        ("a date without a time", Some("2026-11-27")),
        ("NULL", None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("botmaker.db");
        migrate(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE refinery_schema_history SET applied_on = ?1",
            [value],
        )
        .unwrap();
        drop(conn);
        let before = bytes(&path);

        let err = refused_as_diverged_at_v1(&path, &before, what);
        assert!(err.contains("RFC 3339"), "{what}: {err}");
    }
}

#[test]
fn a_history_version_that_is_no_migration_is_refused_by_open_migrate_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    migrate(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "DELETE FROM refinery_schema_history WHERE version > 1; \
         UPDATE refinery_schema_history SET version = -1;",
    )
    .unwrap();
    drop(conn);
    let before = bytes(&path);

    let diverged = |e: &StoreError| {
        matches!(e, StoreError::MigrationsDiverged { version: 0, detail, .. }
            if detail.contains("version -1, which is not a migration"))
    };
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(diverged(&err), "open: {err:?}");
    let err = migrate(&path).unwrap_err();
    assert!(diverged(&err), "migrate: {err:?}");
    // There is no history to list, so the status is an error too, not a state.
    let err = migration_status(&path).unwrap_err();
    assert!(diverged(&err), "status: {err:?}");
    assert_eq!(bytes(&path), before);
}

/// Deterministic pseudo-random bytes, from the test kit's seeded generator.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = botmaker_testkit::rng::Rng::new(seed);
    (0..len).map(|_| rng.byte()).collect()
}

#[test]
fn a_file_that_is_not_a_database_is_refused_byte_for_byte_untouched() {
    let mut header_then_noise = b"SQLite format 3\0".to_vec();
    header_then_noise.extend(noise(8192, 7));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", noise(4096, 42)),
        ("text", b"this is a text file, not a database\n".repeat(50)),
        ("short text", b"x".to_vec()),
        ("sqlite header, then noise", header_then_noise),
    ];
    for (what, content) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("botmaker.db");
        std::fs::write(&path, &content).unwrap();

        let err = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::NotADatabase { .. }),
            "{what}: open: {err:?}"
        );
        assert!(err.to_string().contains("botmaker.db"), "{err}");
        let err = migrate(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::NotADatabase { .. }),
            "{what}: migrate: {err:?}"
        );
        let err = migration_status(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::NotADatabase { .. }),
            "{what}: status: {err:?}"
        );
        assert_eq!(bytes(&path), content, "{what}: byte for byte untouched");
        assert_eq!(dir_entries(dir.path()), vec!["botmaker.db"], "{what}");
    }
}

#[test]
fn a_folder_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
    let err = migrate(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
}

#[test]
fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE customers (name TEXT); INSERT INTO customers VALUES ('x');")
        .unwrap();
    drop(conn);
    let before = bytes(&path);
    for err in [
        SqliteStore::open(&path).unwrap_err(),
        migrate(&path).unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
    }
    assert_eq!(bytes(&path), before);
}

#[test]
fn a_missing_file_is_refused_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("botmaker.db");
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
    // The hint naming a command to run is the CLI's to add, not this library's.
    assert_eq!(
        err.to_string(),
        format!("database {} does not exist", path.display())
    );
    assert_eq!(dir_entries(dir.path()), Vec::<String>::new());
}

fn assert_pending(path: &Path, db: u32) {
    let before = bytes(path);
    let err = SqliteStore::open(path).unwrap_err();
    match &err {
        StoreError::MigrationsPending {
            db: d,
            code,
            pending,
            ..
        } => {
            assert_eq!((*d, *code), (db, LATEST_VERSION));
            assert_eq!(pending, &shipped_migrations());
        }
        other => panic!("expected MigrationsPending, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "database {} has schema version {db}, this code needs version {LATEST_VERSION} \
             ({} migration(s) pending)",
            path.display(),
            shipped_migrations().len()
        )
    );
    assert_eq!(bytes(path), before, "openers never migrate");
    assert_eq!(migration_status(path).unwrap().state, SchemaState::Pending);
    // `migrate` then makes it usable.
    assert_eq!(migrate(path).unwrap().applied, shipped_migrations());
    SqliteStore::open(path).unwrap();
}

#[test]
fn an_empty_file_has_every_migration_pending() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    std::fs::write(&path, b"").unwrap();
    assert_pending(&path, 0);
}

#[test]
fn an_empty_database_has_every_migration_pending() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE t (x); DROP TABLE t;")
        .unwrap();
    drop(conn);
    assert!(bytes(&path).len() > 100);
    assert_pending(&path, 0);
}

#[test]
fn a_database_with_an_empty_history_has_every_migration_pending() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    let mut conn = Connection::open(&path).unwrap();
    Runner::new(&[]).run(&mut conn).unwrap();
    drop(conn);
    assert_eq!(history(&path), vec![]);
    assert_pending(&path, 0);
}

/// Puts a migrated database back in rollback-journal mode (`DELETE`), as a file
/// copied from elsewhere or set up by hand may be: `migrate` having stored WAL in the
/// file must not be what makes the store's WAL test pass.
fn back_to_delete_mode(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    drop(conn);
    assert_eq!(journal_mode(path), "delete");
}

#[test]
fn open_sets_wal_and_the_store_works() {
    let (_dir, path) = migrated_db();
    back_to_delete_mode(&path);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        journal_mode(&path),
        "wal",
        "open did not switch the file to WAL"
    );
    let bot = store
        .create(&botmaker_testkit::conformance::new_bot("after-delete-mode"))
        .unwrap();
    assert_eq!(store.get(&bot.id).unwrap(), bot);
    drop(store);
}

/// Every connection the store opens (the writer and each reader, not only the first)
/// reads back WAL, `synchronous=NORMAL`, `foreign_keys=ON` and the busy timeout it was
/// given, starting from a file in another journal mode.
#[test]
fn every_connection_reads_back_its_pragmas() {
    let (_dir, path) = migrated_db();
    back_to_delete_mode(&path);
    for (readers, timeout_ms) in [(1, 1234), (4, 5000), (7, 250)] {
        let options = botmaker_sqlite::StoreOptions {
            readers,
            busy_timeout: std::time::Duration::from_millis(timeout_ms),
            ..botmaker_sqlite::StoreOptions::default()
        };
        let store = SqliteStore::open_with(&path, options).unwrap();
        let all = store.connection_settings().unwrap();
        assert_eq!(all.len(), 1 + readers, "the writer and {readers} readers");
        for (i, got) in all.iter().enumerate() {
            let which = if i == 0 {
                "writer".to_owned()
            } else {
                format!("reader {i}")
            };
            assert_eq!(got.journal_mode, "wal", "{which}: journal_mode");
            assert_eq!(got.synchronous, 1, "{which}: synchronous is not NORMAL (1)");
            assert!(got.foreign_keys, "{which}: foreign_keys is off");
            assert_eq!(
                got.busy_timeout_ms,
                i64::try_from(timeout_ms).unwrap(),
                "{which}: busy_timeout"
            );
            // 32 MiB of page cache (in KiB, negated), which holds about 100 000 bots.
            assert_eq!(got.cache_size, -32 * 1024, "{which}: cache_size");
        }
    }
}

#[test]
fn a_database_still_in_its_wal_is_a_database() {
    // The image a crash leaves when a new database's writer dies before its first
    // checkpoint: the main file has only its header page, the schema is in the -wal.
    let live = tempfile::tempdir().unwrap();
    let live_path = live.path().join("botmaker.db");
    let mut conn = wal_connection(&live_path);
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    Runner::new(&[
        Migration::unapplied("V1__create_bots", V1_SQL).unwrap(),
        Migration::unapplied("V2__bots_checks_without_in_lists", V2_SQL).unwrap(),
        Migration::unapplied("V3__bots_secrets_root", V3_SQL).unwrap(),
    ])
    .run(&mut conn)
    .unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let path = crashed.path().join("botmaker.db");
    for suffix in ["", "-wal"] {
        let from = format!("{}{suffix}", live_path.display());
        std::fs::copy(from, format!("{}{suffix}", path.display())).unwrap();
    }
    drop(conn);

    // The main file alone holds no schema yet: everything is in the -wal.
    let main_only = tempfile::tempdir().unwrap();
    let main_only_path = main_only.path().join("botmaker.db");
    std::fs::copy(&path, &main_only_path).unwrap();
    assert_eq!(
        migration_status(&main_only_path).unwrap().state,
        SchemaState::Pending
    );

    let status = migration_status(&path).unwrap();
    assert_eq!(status.state, SchemaState::UpToDate);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version(), LATEST_VERSION);
    assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());
    drop(store);
    assert!(migrate(&path).unwrap().was_up_to_date());
}

/// Every column of every row, as SQLite stores it (types included), in id order.
fn raw_rows(path: &Path) -> Vec<Vec<rusqlite::types::Value>> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT id, name, ai_provider, model, channel_type, container_id, status, \
             created_at, updated_at FROM bots ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        (0..9)
            .map(|i| r.get::<_, rusqlite::types::Value>(i))
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// A database of the V1 schema, as released code made it, holding bots with every
/// provider, channel and status, with and without a container, and timestamps at the
/// edges of their range.
fn v1_db_with_bots() -> (tempfile::TempDir, std::path::PathBuf) {
    db_with_bots(&[Migration::unapplied("V1__create_bots", V1_SQL).unwrap()])
}

/// [`v1_db_with_bots`], at V2: as the release before secrets placement left it.
fn v2_db_with_bots() -> (tempfile::TempDir, std::path::PathBuf) {
    db_with_bots(&[
        Migration::unapplied("V1__create_bots", V1_SQL).unwrap(),
        Migration::unapplied("V2__bots_checks_without_in_lists", V2_SQL).unwrap(),
    ])
}

fn db_with_bots(migrations: &[Migration]) -> (tempfile::TempDir, std::path::PathBuf) {
    use botmaker_domain::{AiProvider, BotStatus, ChannelType};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    let mut conn = wal_connection(&path);
    Runner::new(migrations).run(&mut conn).unwrap();
    let mut k = 0u32;
    for provider in AiProvider::ALL {
        for channel in ChannelType::ALL {
            for status in BotStatus::ALL {
                k += 1;
                let container = k.is_multiple_of(2).then(|| format!("container-{k}"));
                let created = if k == 1 { 0 } else { i64::from(k) * 1_000_003 };
                // 9999-12-31T23:59:59.999999Z, the domain's last instant.
                let updated = if k == 2 {
                    253_402_300_799_999_999
                } else {
                    created + i64::from(k)
                };
                conn.execute(
                    "INSERT INTO bots (id, name, ai_provider, model, channel_type, \
                     container_id, status, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    rusqlite::params![
                        format!("00000000-0000-4000-8000-{k:012}"),
                        format!("bot-{k}"),
                        provider.as_str(),
                        format!("model-{}", k % 5),
                        channel.as_str(),
                        container,
                        status.as_str(),
                        created,
                        updated
                    ],
                )
                .unwrap();
            }
        }
    }
    drop(conn);
    (dir, path)
}

/// The V2 table refuses what V1's refused: values outside the enumerations, ids not
/// canonical, empty names, and taken ids or names.
fn assert_v2_constraints(conn: &Connection) {
    let insert = |id: &str, name: &str, provider: &str, channel: &str, status: &str| {
        conn.execute(
            "INSERT INTO bots (id, name, ai_provider, model, channel_type, status, \
             created_at, updated_at) VALUES (?1, ?2, ?3, 'm', ?4, ?5, 1, 1)",
            rusqlite::params![id, name, provider, channel, status],
        )
    };
    let good = "00000000-0000-4000-8000-999999999999";
    for (what, result) in [
        (
            "an unknown provider",
            insert(good, "new", "openai2", "slack", "created"),
        ),
        (
            "an unknown channel",
            insert(good, "new", "openai", "irc", "created"),
        ),
        (
            "an unknown status",
            insert(good, "new", "openai", "slack", "paused"),
        ),
        (
            "an upper-case id",
            insert(
                &good.to_uppercase().replace('0', "A"),
                "new",
                "openai",
                "slack",
                "created",
            ),
        ),
        (
            "a short id",
            insert("0000", "new", "openai", "slack", "created"),
        ),
        (
            "an empty name",
            insert(good, "", "openai", "slack", "created"),
        ),
    ] {
        let err = result.unwrap_err();
        assert!(
            err.to_string().contains("CHECK constraint failed"),
            "{what}: {err}"
        );
    }
    let err = insert(
        "00000000-0000-4000-8000-000000000001",
        "other",
        "openai",
        "slack",
        "created",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("UNIQUE constraint failed: bots.id"),
        "{err}"
    );
    let err = insert(good, "bot-1", "openai", "slack", "created").unwrap_err();
    assert!(
        err.to_string()
            .contains("UNIQUE constraint failed: bots.name"),
        "{err}"
    );
}

#[test]
fn a_v1_database_holding_bots_migrates_to_v3_with_every_row_and_constraint_kept() {
    use botmaker_domain::{BotRepository, BotStatus};

    let (_dir, path) = v1_db_with_bots();
    let before = raw_rows(&path);
    assert_eq!(before.len(), 6 * 6 * 6);

    // Openers refuse it and leave it alone; `migrate` applies V2 and V3 only.
    let bytes_before = bytes(&path);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::MigrationsPending { db: 1, code: 3, pending, .. }
            if pending.len() == 2 && pending[0].version == 2),
        "{err:?}"
    );
    assert_eq!(bytes(&path), bytes_before);
    let report = migrate(&path).unwrap();
    assert_eq!((report.from_version, report.to_version), (1, 3));
    assert_eq!(report.applied.len(), 2);
    assert_eq!(report.applied[0].name, "bots_checks_without_in_lists");
    assert_eq!(report.applied[1].name, "bots_secrets_root");

    // Every row, byte for byte and type for type.
    assert_eq!(raw_rows(&path), before);

    // The new table: the same indexes, the same constraints.
    let conn = Connection::open(&path).unwrap();
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'bots'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sql.contains("STRICT") && !sql.contains(" IN ("), "{sql}");
    let mut indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'bots' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    indexes.sort();
    assert_eq!(
        indexes,
        [
            "bots_by_created",
            "bots_by_status",
            "sqlite_autoindex_bots_1",
            "sqlite_autoindex_bots_2"
        ],
        "the unique id and name indexes, and the listing indexes"
    );
    assert!(
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE '%bots_v2%'",
            [],
            |r| r.get::<_, i64>(0)
        )
        .unwrap()
            == 0
    );
    assert_v2_constraints(&conn);
    drop(conn);

    // The store works on it: every bot reads back, lists newest first, changes status.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());
    let listed = store.list(None).unwrap();
    assert_eq!(listed.len(), before.len());
    assert!(
        listed
            .windows(2)
            .all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id))
    );
    let created = listed
        .iter()
        .find(|b| b.status == BotStatus::Created)
        .unwrap();
    let started = store.set_status(&created.id, BotStatus::Starting).unwrap();
    assert_eq!(store.get(&created.id).unwrap(), started);
}

/// V3 adds `secrets_root` in place: every row keeps every value and gets NULL
/// (legacy), the store reads them, and adopting sets a root once and only once.
#[test]
fn a_v2_database_holding_bots_migrates_to_v3_and_its_bots_can_be_adopted() {
    use botmaker_domain::SecretsRootId;

    let (_dir, path) = v2_db_with_bots();
    let before = raw_rows(&path);
    assert_eq!(before.len(), 6 * 6 * 6);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::MigrationsPending { db: 2, code: 3, pending, .. }
            if pending.len() == 1 && pending[0].version == 3),
        "{err:?}"
    );
    let report = migrate(&path).unwrap();
    assert_eq!((report.from_version, report.to_version), (2, 3));
    assert_eq!(report.applied.len(), 1);
    assert_eq!(raw_rows(&path), before, "every row, byte for byte");

    let conn = Connection::open(&path).unwrap();
    let nulls: i64 = conn
        .query_row(
            "SELECT count(*) FROM bots WHERE secrets_root IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(usize::try_from(nulls).unwrap(), before.len());
    // The column's CHECK: canonical lowercase ids only.
    for bad in ["ABCDEFAB-1B2C-4D3E-8F40-112233445566", "short"] {
        let err = conn
            .execute("UPDATE bots SET secrets_root = ?1", [bad])
            .unwrap_err();
        assert!(
            err.to_string().contains("CHECK constraint failed"),
            "{bad}: {err}"
        );
    }
    assert_v2_constraints(&conn);
    drop(conn);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());
    let listed = store.list(None).unwrap();
    assert_eq!(listed.len(), before.len());
    assert!(listed.iter().all(|b| b.secrets_root.is_none()));
    let (here, there) = (SecretsRootId::generate(), SecretsRootId::generate());
    let bot = &listed[0];
    let adopted = store.adopt_secrets_root(&bot.id, &here).unwrap();
    assert_eq!(adopted.secrets_root, Some(here));
    assert_eq!(
        adopted.updated_at, bot.updated_at,
        "adopting is not a change"
    );
    assert_eq!(
        adopted,
        botmaker_domain::Bot {
            secrets_root: Some(here),
            ..bot.clone()
        }
    );
    let again = store.adopt_secrets_root(&bot.id, &there).unwrap();
    assert_eq!(again, adopted, "a recorded root never changes");
    assert_eq!(store.get(&bot.id).unwrap(), adopted);
    drop(store);
    assert_eq!(
        raw_rows(&path),
        before,
        "the other columns are untouched by adopting"
    );
}

/// A restore switches its copy to WAL before linking it (`switch_to_wal`): after it
/// the file is in WAL mode on its own (header bytes 18 and 19 are 2), nothing is left
/// beside it, its rows are intact, and the store's first open has no journal mode to
/// switch (so it writes no `-journal` a crash could leave hot).
#[test]
fn switch_to_wal_leaves_one_file_in_wal_mode_with_its_rows() {
    let (dir, path) = migrated_db();
    let store = SqliteStore::open(&path).unwrap();
    let bot = store.create(&new_bot("kept")).unwrap();
    drop(store);
    back_to_delete_mode(&path);
    let header = |p: &Path| {
        let bytes = std::fs::read(p).unwrap();
        (bytes[18], bytes[19])
    };
    assert_eq!(
        header(&path),
        (1, 1),
        "a rollback-journal database to start from"
    );
    botmaker_sqlite::switch_to_wal(&path).unwrap();
    assert_eq!(header(&path), (2, 2), "the header says WAL");
    for suffix in ["-wal", "-shm", "-journal"] {
        let beside = dir.path().join(format!("botmaker.db{suffix}"));
        assert!(
            !beside.exists(),
            "{} left beside the file",
            beside.display()
        );
    }
    let store = SqliteStore::open(&path).unwrap();
    assert!(
        !dir.path().join("botmaker.db-journal").exists(),
        "the first open wrote a rollback journal"
    );
    assert_eq!(store.get(&bot.id).unwrap(), bot);
}
