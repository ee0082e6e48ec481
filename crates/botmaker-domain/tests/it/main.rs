//! Integration tests of the domain crate: property tests for every validator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod validators;
