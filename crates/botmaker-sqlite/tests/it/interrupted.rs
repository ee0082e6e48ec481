//! A write interrupted by a crash: the first `migrate` killed at random points, and a
//! hot rollback journal planted by a writer killed inside its transaction. Every later
//! `migration_status` answers without touching a file, `open` accepts the database or
//! refuses it clearly, and `migrate` recovers.
//!
//! The children are this test binary run again: a worker is an ordinary test that acts
//! on the database named by `WORKER_DB` when that variable is set, and otherwise does
//! its work once in this process, so it is never a no-op.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use botmaker_sqlite::{
    LATEST_VERSION, SchemaState, SqliteStore, StoreError, migrate, migration_status,
};
use botmaker_testkit::rng::Rng;
use rusqlite::Connection;

use crate::support::dir_entries;

const WORKER_DB: &str = "BOTMAKER_SQLITE_IT_INTERRUPTED_DB";
const SEED: &str = "BOTMAKER_SQLITE_IT_KILL_SEED";

/// Every file of a folder and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    dir_entries(dir)
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            (name, bytes)
        })
        .collect()
}

/// Asserts that the folder still holds `before` (names and bytes), naming what changed.
fn unchanged(dir: &Path, before: &BTreeMap<String, Vec<u8>>, what: &str) {
    let after = snapshot(dir);
    let names = |s: &BTreeMap<String, Vec<u8>>| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&after),
        names(before),
        "{what}: the folder's names changed"
    );
    for (name, bytes) in before {
        assert!(after[name] == *bytes, "{what}: {name} changed");
    }
}

/// Runs the test `name` of this binary as a worker on `path`, and waits for its first
/// line on stdout (`GO` or `WROTE`): from then on it is doing, or has done, its work.
fn start_worker(name: &str, path: &Path) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(WORKER_DB, path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        assert_ne!(out.read_line(&mut line).unwrap(), 0, "{name} said nothing");
        // libtest prints `test <name> ... ` before the test's own output, on its line.
        if line.ends_with("GO\n") || line.ends_with("WROTE\n") {
            break;
        }
    }
    child
}

fn kill(mut child: Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Waits for the parent to kill this worker (stdin stays open until then).
fn wait_to_be_killed() {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
}

#[test]
fn process_worker_first_migrate() {
    if let Some(path) = std::env::var_os(WORKER_DB) {
        println!("GO");
        std::io::stdout().flush().unwrap();
        migrate(Path::new(&path)).unwrap();
        wait_to_be_killed();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        migrate(&dir.path().join("botmaker.db")).unwrap().to_version,
        LATEST_VERSION
    );
}

/// What a kill left, to say which points the campaign reached.
fn stage(dir: &Path) -> &'static str {
    let len = |name: &str| std::fs::metadata(dir.join(name)).ok().map(|m| m.len());
    match (
        len("botmaker.db"),
        len("botmaker.db-journal"),
        len("botmaker.db-wal"),
    ) {
        (None, _, _) => "no file",
        (Some(0), None | Some(0), None) => "empty file",
        (Some(_), Some(j), _) if j > 0 => "hot journal",
        (Some(_), _, Some(w)) if w > 0 => "frames in the WAL",
        _ => "main file only",
    }
}

/// After a kill: the status answers and changes nothing, open accepts or refuses
/// clearly (and changes nothing when it refuses), and migrate recovers.
fn recovers(dir: &Path, path: &Path, what: &str) {
    let before = snapshot(dir);
    let status = migration_status(path).unwrap_or_else(|e| panic!("{what}: status: {e}"));
    unchanged(dir, &before, &format!("{what}: status"));
    assert!(
        matches!(
            status.state,
            SchemaState::Missing | SchemaState::Pending | SchemaState::UpToDate
        ),
        "{what}: {status:?}"
    );
    match SqliteStore::open(path) {
        Ok(store) => {
            assert_eq!(status.state, SchemaState::UpToDate, "{what}");
            drop(store);
        }
        Err(
            StoreError::Missing { .. }
            | StoreError::MigrationsPending { .. }
            | StoreError::HotJournal { .. },
        ) => unchanged(dir, &before, &format!("{what}: a refused open")),
        Err(e) => panic!("{what}: open: {e:?}"),
    }
    let report = migrate(path).unwrap_or_else(|e| panic!("{what}: migrate: {e}"));
    assert_eq!(report.to_version, LATEST_VERSION, "{what}");
    let store = SqliteStore::open(path).unwrap_or_else(|e| panic!("{what}: open: {e}"));
    assert_eq!(
        store.integrity_check().unwrap(),
        Vec::<String>::new(),
        "{what}"
    );
    drop(store);
    assert!(
        !dir.join("botmaker.db-journal").exists(),
        "{what}: a journal is left"
    );
}

#[test]
fn the_first_migrate_killed_at_random_points_always_recovers() {
    // Up to KILLS kills in BUDGET, but never fewer than MIN_KILLS: under a loaded test
    // run an iteration can take ten times longer, and the campaign must still mean
    // something rather than time out (HARD_CAP bounds it all the same).
    const KILLS: usize = 200;
    const MIN_KILLS: usize = 50;
    const BUDGET: Duration = Duration::from_secs(30);
    const HARD_CAP: Duration = Duration::from_mins(4);
    let mut rng = Rng::new(Rng::seed_from_env(SEED));
    // How long a first migrate takes here: kills land in [0, 2 × that].
    let probe = tempfile::tempdir().unwrap();
    let took = (0..3)
        .map(|k| {
            let start = Instant::now();
            migrate(&probe.path().join(format!("probe-{k}.db"))).unwrap();
            start.elapsed()
        })
        .max()
        .unwrap();
    let window = u64::try_from(took.as_micros()).unwrap().max(200) * 2;
    let started = Instant::now();
    let mut stages: BTreeMap<&str, usize> = BTreeMap::new();
    let mut kills = 0;
    while kills < KILLS
        && (kills < MIN_KILLS || started.elapsed() < BUDGET)
        && started.elapsed() < HARD_CAP
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("botmaker.db");
        let child = start_worker("interrupted::process_worker_first_migrate", &path);
        std::thread::sleep(Duration::from_micros(rng.below(window)));
        kill(child);
        kills += 1;
        let stage = stage(dir.path());
        *stages.entry(stage).or_default() += 1;
        recovers(dir.path(), &path, &format!("kill {kills} ({stage})"));
    }
    eprintln!(
        "{kills} kills in {:?} (window {window} µs): {stages:?}",
        started.elapsed()
    );
    assert!(
        kills >= MIN_KILLS,
        "only {kills} kills in {:?}",
        started.elapsed()
    );
    assert!(
        stages.len() >= 2,
        "the kills all landed at one point, so they prove little: {stages:?}"
    );
}

/// In a database in rollback-journal mode: a transaction that writes more pages than
/// its cache holds (so the main file is written too, not only the journal), left open.
fn write_without_committing(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "cache_size", 2).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    for i in 0..300 {
        conn.execute(
            "INSERT INTO bots (id, name, ai_provider, model, channel_type, status, \
             created_at, updated_at) VALUES (?1, ?2, 'openai', 'm', 'slack', 'created', 1, 1)",
            (
                format!("00000000-0000-4000-8000-{i:012}"),
                format!("bot-{i}-{}", "x".repeat(40)),
            ),
        )
        .unwrap();
    }
    conn
}

#[test]
fn process_worker_writes_then_waits() {
    if let Some(path) = std::env::var_os(WORKER_DB) {
        let _conn = write_without_committing(Path::new(&path));
        println!("WROTE");
        std::io::stdout().flush().unwrap();
        wait_to_be_killed();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    migrate(&path).unwrap();
    let conn = write_without_committing(&path);
    conn.execute_batch("ROLLBACK").unwrap();
}

/// A migrated database switched to rollback-journal mode.
fn delete_mode_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    migrate(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    drop(conn);
    (dir, path)
}

fn bots(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("SELECT count(*) FROM bots", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_hot_journal_is_refused_by_open_and_rolled_back_by_migrate() {
    let (dir, path) = delete_mode_db();
    let clean = std::fs::read(&path).unwrap();
    kill(start_worker(
        "interrupted::process_worker_writes_then_waits",
        &path,
    ));
    let journal = dir.path().join("botmaker.db-journal");
    assert!(
        std::fs::metadata(&journal).unwrap().len() > 0,
        "the killed writer left a journal"
    );
    assert!(
        std::fs::read(&path).unwrap() != clean,
        "the killed writer wrote to the main file too"
    );
    let before = snapshot(dir.path());

    // The status reads the database as SQLite will once the journal is rolled back.
    let status = migration_status(&path).unwrap();
    assert_eq!(status.state, SchemaState::UpToDate);
    unchanged(dir.path(), &before, "status");

    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::HotJournal { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("journal") && message.contains("migrat"),
        "{message}"
    );
    unchanged(dir.path(), &before, "a refused open");

    assert!(migrate(&path).unwrap().was_up_to_date());
    assert!(!journal.exists(), "migrate rolled the journal back");
    assert_eq!(bots(&path), 0, "the uncommitted rows are gone");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());
}

#[test]
fn a_migration_and_its_history_row_commit_together() {
    // A crash between a migration's commit and its history row's would leave its
    // tables without the row that says it ran: every later migrate would run it again
    // and fail (`table bots already exists`). Here the history row cannot be written
    // (a trigger refuses it), which must undo the migration too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE refinery_schema_history (version INT4 PRIMARY KEY, name VARCHAR(255), \
         applied_on VARCHAR(255), checksum VARCHAR(255)); \
         CREATE TRIGGER no_history BEFORE INSERT ON refinery_schema_history \
         BEGIN SELECT RAISE(ABORT, 'no history today'); END;",
    )
    .unwrap();
    drop(conn);
    let err = migrate(&path).unwrap_err();
    assert!(err.to_string().contains("no history today"), "{err}");
    let tables: Vec<String> = {
        let conn = Connection::open(&path).unwrap();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        tables,
        vec!["refinery_schema_history"],
        "V1 was rolled back with its history row"
    );
}
