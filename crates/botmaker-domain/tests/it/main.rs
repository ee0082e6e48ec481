//! Integration tests of the domain crate: property tests for every validator, and the
//! domain rules (required secrets).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod required;
mod validators;
