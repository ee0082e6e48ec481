//! Threads sharing one store, and processes sharing one file. The multi-process tests
//! run this test binary again as workers: a worker is an ordinary test that acts on
//! the database named by `WORKER_DB` when that variable is set, and otherwise runs a
//! small single-process version of its work, so it is never a no-op.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use botmaker_domain::{BotId, BotRepository, BotStatus, PageCursor};
use botmaker_sqlite::{SqliteStore, StoreOptions, migrate};

use crate::support::{migrated_db, new_bot};

const WORKER_DB: &str = "BOTMAKER_SQLITE_IT_WORKER_DB";
const WORKER_TAG: &str = "BOTMAKER_SQLITE_IT_WORKER_TAG";

#[test]
fn eight_threads_share_one_store() {
    const THREADS: usize = 8;
    const BOTS: usize = 60;
    let (_dir, path) = migrated_db();
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..BOTS {
                    let bot = store
                        .create(&new_bot(&format!("t{t}-bot-{i}")))
                        .unwrap_or_else(|e| panic!("thread {t}: create: {e}"));
                    acked.push(bot.id);
                    assert_eq!(store.get(&bot.id).unwrap(), bot);
                    assert_eq!(store.get_by_name(&bot.name).unwrap(), bot);
                    if i % 3 == 0 {
                        store.set_status(&bot.id, BotStatus::Starting).unwrap();
                    }
                    if i % 5 == 0 {
                        store
                            .set_container_id(&bot.id, Some(&format!("c-{t}-{i}").parse().unwrap()))
                            .unwrap();
                    }
                    if i % 10 == 0 {
                        let page = store.list_page(None, None, 10).unwrap();
                        assert!(!page.is_empty());
                        let next = store
                            .list_page(None, Some(PageCursor::after(&page[page.len() - 1])), 10)
                            .unwrap();
                        assert!(next.iter().all(|b| !page.contains(b)));
                    }
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for handle in handles {
        acked.extend(handle.join().unwrap());
    }
    assert_eq!(acked.len(), THREADS * BOTS);
    let listed: BTreeSet<BotId> = store.list(None).unwrap().iter().map(|b| b.id).collect();
    let acked: BTreeSet<BotId> = acked.into_iter().collect();
    assert_eq!(listed, acked);
    assert_eq!(
        store.list(Some(BotStatus::Starting)).unwrap().len(),
        THREADS * BOTS.div_ceil(3)
    );
    assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());
}

#[test]
fn threads_wait_their_turn_for_a_single_reader() {
    let (_dir, path) = migrated_db();
    // `readers: 0` still gets one reader: every read below shares it.
    let store = Arc::new(
        SqliteStore::open_with(
            &path,
            StoreOptions {
                readers: 0,
                ..StoreOptions::default()
            },
        )
        .unwrap(),
    );
    let bot = store.create(&new_bot("alpha")).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            let bot = bot.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    assert_eq!(store.get(&bot.id).unwrap(), bot);
                    assert_eq!(store.list(None).unwrap().len(), 1);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(store.quick_check().unwrap(), Vec::<String>::new());
}

/// Creates `count` bots in the database at `path`, printing `ACK <id>` for each one
/// acknowledged. Any error fails the worker.
fn create_bots(path: &Path, tag: &str, count: usize) -> Vec<BotId> {
    let store = SqliteStore::open(path).unwrap();
    (0..count)
        .map(|i| {
            let bot = store
                .create(&new_bot(&format!("{tag}-bot-{i}")))
                .unwrap_or_else(|e| panic!("worker {tag}: create {i}: {e}"));
            println!("ACK {}", bot.id);
            bot.id
        })
        .collect()
}

#[test]
fn process_worker_creates_bots() {
    if let (Some(path), Some(tag)) = (std::env::var_os(WORKER_DB), std::env::var_os(WORKER_TAG)) {
        let mut go = String::new();
        std::io::stdin().read_line(&mut go).unwrap();
        create_bots(Path::new(&path), &tag.to_string_lossy(), 50);
        return;
    }
    // Not a worker: the same work in this process.
    let (_dir, path) = migrated_db();
    let ids = create_bots(&path, "solo", 50);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.list(None).unwrap().len(), ids.len());
}

/// Runs the test `name` of this binary as a worker process, its stdin a pipe.
fn spawn_worker(name: &str, path: &Path, tag: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(WORKER_DB, path)
        .env(WORKER_TAG, tag)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finished(child: std::process::Child, what: &str) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success(),
        "{what} failed ({status}):\n{stdout}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

#[test]
fn four_processes_create_bots_in_one_file() {
    let (_dir, path) = migrated_db();
    let mut children: Vec<_> = (0..4)
        .map(|k| {
            spawn_worker(
                "concurrency::process_worker_creates_bots",
                &path,
                &format!("p{k}"),
            )
        })
        .collect();
    // Every worker is started and waits for a line: release them together.
    for child in &mut children {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let mut acked = BTreeSet::new();
    for (k, child) in children.into_iter().enumerate() {
        let stdout = finished(child, &format!("worker {k}"));
        let ids: Vec<BotId> = stdout
            .lines()
            .filter_map(|l| l.split_once("ACK ").map(|(_, id)| id))
            .map(|id| id.parse().unwrap())
            .collect();
        assert_eq!(
            ids.len(),
            50,
            "worker {k} acknowledged every create:\n{stdout}"
        );
        acked.extend(ids);
    }
    assert_eq!(acked.len(), 200);
    let store = SqliteStore::open(&path).unwrap();
    let listed: BTreeSet<BotId> = store.list(None).unwrap().iter().map(|b| b.id).collect();
    assert_eq!(listed, acked, "every acknowledged create is present");
    assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());
}

/// Migrates the database, printing `APPLIED <n>`.
fn migrate_and_report(path: &Path) -> usize {
    let report = migrate(path).unwrap();
    println!("APPLIED {}", report.applied.len());
    report.applied.len()
}

#[test]
fn process_worker_migrates() {
    if let Some(path) = std::env::var_os(WORKER_DB) {
        // Wait for the parent's "go" (a line on stdin), so that all workers start
        // migrating at the same moment.
        let mut go = String::new();
        std::io::stdin().read_line(&mut go).unwrap();
        migrate_and_report(Path::new(&path));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    assert_eq!(
        migrate_and_report(&path),
        botmaker_sqlite::shipped_migrations().len()
    );
    assert_eq!(migrate_and_report(&path), 0);
}

#[test]
fn processes_migrating_at_once_apply_each_migration_once() {
    const MIGRATORS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("botmaker.db");
    let mut children: Vec<_> = (0..MIGRATORS)
        .map(|k| {
            spawn_worker(
                "concurrency::process_worker_migrates",
                &path,
                &k.to_string(),
            )
        })
        .collect();
    // Every worker is started and waits for a line: release them together.
    for child in &mut children {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let mut applied: Vec<usize> = children
        .into_iter()
        .enumerate()
        .map(|(k, child)| {
            let stdout = finished(child, &format!("migrator {k}"));
            stdout
                .lines()
                .find_map(|l| l.split_once("APPLIED ").map(|(_, n)| n))
                .unwrap_or_else(|| panic!("migrator {k} reported nothing:\n{stdout}"))
                .parse()
                .unwrap()
        })
        .collect();
    applied.sort_unstable();
    let mut expected = vec![0; MIGRATORS - 1];
    expected.push(botmaker_sqlite::shipped_migrations().len());
    assert_eq!(
        applied, expected,
        "exactly one applied every migration, the others found them done"
    );
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());
}
