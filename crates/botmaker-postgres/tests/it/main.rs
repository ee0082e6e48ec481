//! The integration tests of botmaker-postgres, on a real PostgreSQL server (the test
//! kit's throwaway one, or `BOTMAKER_TEST_DATABASE_URL`): the test kit's conformance
//! suite and model-based property test, migrations and refusals, errors mapped by
//! meaning, restarts, redaction of the password, and contention.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod conformance;
mod contention;
mod errors;
mod migrations;
mod model;
mod redaction;
mod restart;
mod support;
