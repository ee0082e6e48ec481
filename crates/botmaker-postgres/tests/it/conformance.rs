//! The shared repository conformance suite (`botmaker_testkit::conformance`) on the
//! PostgreSQL store: one test per check, each on a fresh database.

mod postgres {
    botmaker_testkit::conformance_tests!(crate::support::postgres);
}
