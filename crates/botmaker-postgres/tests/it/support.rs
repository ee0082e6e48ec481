//! Helpers shared by the test modules.

use std::ops::Deref;

use botmaker_domain::Clock;
use botmaker_postgres::{DatabaseUrl, PgOptions, PgStore, migrate};
use botmaker_testkit::pg::{self, TestDatabase};

pub use botmaker_testkit::conformance::{id, new_bot};

/// A new empty database on the shared test server.
pub fn empty_db(label: &str) -> (TestDatabase, DatabaseUrl) {
    let db = pg::shared().database(label);
    let url = DatabaseUrl::parse(db.url()).unwrap();
    (db, url)
}

/// A new migrated database.
pub fn migrated_db(label: &str) -> (TestDatabase, DatabaseUrl) {
    let (db, url) = empty_db(label);
    migrate(&url).unwrap();
    (db, url)
}

pub fn open_store(url: &DatabaseUrl, clock: Clock) -> PgStore {
    PgStore::open(url, PgOptions::with_clock(clock)).unwrap()
}

/// A store on a migrated database of its own (dropped after the store).
pub struct Scratch {
    store: PgStore,
    _db: TestDatabase,
}

impl Deref for Scratch {
    type Target = PgStore;

    fn deref(&self) -> &PgStore {
        &self.store
    }
}

/// The constructor the shared conformance suite is given.
pub fn postgres(clock: Clock) -> Scratch {
    let (db, url) = migrated_db("conformance");
    Scratch {
        store: open_store(&url, clock),
        _db: db,
    }
}
