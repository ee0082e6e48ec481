//! Secrets store (work in progress).
