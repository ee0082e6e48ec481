//! Integration tests of the domain crate: property tests for every validator, the
//! domain rules (required secrets), and the test kit's repository conformance suite on
//! the in-memory repository.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;
mod required;
mod validators;
