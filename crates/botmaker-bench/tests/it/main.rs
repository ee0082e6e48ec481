//! The bench binary's integration tests: one binary, a module per part.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod postgres;
