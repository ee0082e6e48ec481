//! The integration tests of botmaker-sqlite: the repository conformance suite (run on
//! both the SQLite store and the in-memory repository), a model-based property test,
//! migrations and refusals, and concurrency across threads and processes.

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
mod migrations;
mod model;
mod support;
