//! Hostile input through the CLI (work in progress).
