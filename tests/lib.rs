//! Workspace-level tests live in `workspace/`; this library is empty.
