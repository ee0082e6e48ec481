//! The bench binary's integration tests: one binary, a module per part.

mod postgres;
