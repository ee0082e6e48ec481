//! The shared repository conformance suite (`botmaker_testkit::conformance`) on the
//! SQLite store: one test per check, each on a fresh database.

mod sqlite {
    botmaker_testkit::conformance_tests!(crate::support::sqlite);
}
