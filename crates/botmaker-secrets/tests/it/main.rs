//! Integration tests of botmaker-secrets: names, a model-based test, attacks, modes
//! and owners, the file policy, replace, crashes, audit/repair, platform mounts,
//! redaction.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::too_many_lines, // scenario tests read best top to bottom
    missing_docs,
    unreachable_pub
)]

mod attacks;
mod audit;
mod common;
mod concurrent;
mod crash;
mod model;
mod modes;
mod names;
mod platform;
mod policy;
mod read_many;
mod redaction;
mod replace;
mod root_id;
mod zeroize;
