//! The shared model-based property test (`botmaker_testkit::model`) on the PostgreSQL
//! store: each case on an empty registry, reopened where the case says so.

use crate::support::{migrated_db, open_store};

#[test]
fn the_postgres_store_behaves_like_the_model() {
    // One migrated database for the test, emptied before each case (`TRUNCATE`): a
    // new database per case costs 0.7 s on this machine (128 cases), an empty table
    // the same to the store.
    let (db, url) = migrated_db("model");
    let admin = std::cell::RefCell::new(db.client());
    let fresh = |clock| {
        admin.borrow_mut().batch_execute("TRUNCATE bots").unwrap();
        Box::new(open_store(&url, clock))
    };
    let reopen = |store: Box<_>, clock| {
        drop(store);
        Box::new(open_store(&url, clock))
    };
    // `file!()`: proptest finds this test's saved seeds by its source file.
    botmaker_testkit::model::model_proptest(file!(), fresh, reopen, |store| {
        assert_eq!(store.consistency_check().unwrap(), Vec::<String>::new());
    });
    // The database was used, and is a botmaker one still.
    let rows = admin
        .borrow_mut()
        .query("SELECT count(*) FROM refinery_schema_history", &[])
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 3);
}
