//! The test kit of botmaker-foundation: what more than one test binary or harness
//! needs, written once.
//!
//! - [`rng`]: one seeded random generator for campaigns and randomised tests (the
//!   seed is printed, so a failing run can be replayed).
//! - [`hostile`]: one corpus of hostile inputs (traversal, separators, control bytes,
//!   UUID look-alikes, oversized values).
//! - [`scratch`]: scratch directories that are kept, and named, when a test fails.
//! - [`names`]: near-valid names (one bad byte, UUID shapes, boundary lengths) and
//!   independent oracles for the validators' property tests.
//! - [`strace`]: parsing `strace -f` output, for the tests of durability order.
//! - [`watchdog`]: a bound on a test's time, so that a hang (a lost wake-up, an
//!   endless loop) fails the test and says what hung.
//! - [`conformance`] and [`model`]: the repository conformance suite and the model
//!   proptest, as public functions that take a store constructor, so every
//!   [`BotRepository`](botmaker_domain::BotRepository) (the in-memory model, SQLite, and
//!   any later backend) runs the same checks.
//!
//! - `pg` (feature `pg`): a throwaway PostgreSQL server shared by the test processes
//!   of a run, or `BOTMAKER_TEST_DATABASE_URL`, and a fresh database per test.
//!
//! It is a dev-dependency (or a dependency of a test harness), never a dependency of a
//! product crate: the layering tests check that.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

pub mod conformance;
pub mod hostile;
pub mod migrations;
pub mod model;
pub mod names;
#[cfg(feature = "pg")]
pub mod pg;
pub mod rng;
pub mod scratch;
pub mod strace;
pub mod watchdog;
