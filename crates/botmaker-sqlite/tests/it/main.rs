//! The integration tests of botmaker-sqlite: the test kit's repository conformance
//! suite and model-based property test on the SQLite store, migrations and refusals,
//! errors mapped by meaning, and concurrency across threads and processes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod concurrency;
mod conformance;
mod errors;
mod interrupted;
mod migrations;
mod model;
mod support;
mod untouched;
