//! Workspace-level tests: invariants of the repository itself (layering, README
//! commands, one SQLite) and cross-crate behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod layering;
mod repo_docs;

use std::path::PathBuf;

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}
