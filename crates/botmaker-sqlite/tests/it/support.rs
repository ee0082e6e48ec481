//! Helpers shared by the test modules.

use std::ops::Deref;
use std::path::{Path, PathBuf};

use botmaker_domain::Clock;
use botmaker_sqlite::{SqliteStore, StoreOptions, migrate};

pub use botmaker_testkit::conformance::{id, new_bot};

/// A migrated database in a fresh temporary folder.
pub fn migrated_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botmaker.db");
    migrate(&path).unwrap();
    (dir, path)
}

/// A new connection to `path` (created if missing) switched to WAL, the answer
/// checked: how the tests build database files by hand.
pub fn wal_connection(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn
}

pub fn open_store(path: &Path, clock: Clock) -> SqliteStore {
    SqliteStore::open_with(
        path,
        StoreOptions {
            clock,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

/// A store on a migrated database of its own, with the folder that holds it (removed
/// when the store is dropped).
pub struct Scratch {
    store: SqliteStore,
    path: PathBuf,
    dir: tempfile::TempDir,
}

impl Deref for Scratch {
    type Target = SqliteStore;

    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

/// The constructor the shared conformance suite and model test are given.
pub fn sqlite(clock: Clock) -> Scratch {
    let (dir, path) = migrated_db();
    Scratch {
        store: open_store(&path, clock),
        path,
        dir,
    }
}

/// Closes the store and opens its file again.
pub fn reopen(scratch: Scratch, clock: Clock) -> Scratch {
    let Scratch { store, path, dir } = scratch;
    drop(store);
    Scratch {
        store: open_store(&path, clock),
        path,
        dir,
    }
}

/// Reads a file whole (to compare before and after).
pub fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The names in a folder, sorted: the test kit's listing.
pub use botmaker_testkit::scratch::entries as dir_entries;
