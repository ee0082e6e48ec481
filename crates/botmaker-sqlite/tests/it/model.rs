//! The shared model-based property test (`botmaker_testkit::model`) on the SQLite
//! store: each case on a fresh database, reopened where the case says so.

use crate::support::{reopen, sqlite};

#[test]
fn the_sqlite_store_behaves_like_the_model() {
    // `file!()`: proptest finds this test's saved seeds by its source file
    // (tests/proptest-regressions/model.txt).
    botmaker_testkit::model::model_proptest(file!(), sqlite, reopen, |store| {
        assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());
    });
}
