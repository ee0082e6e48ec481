//! How `migrate` and `migrate --status` print: the `Display` of their reports, shared
//! by `cargo xtask migrate` and `botmaker migrate` so both print the same lines.

use std::fmt;

use crate::{MigrationReport, MigrationStatus, SchemaState};

impl fmt::Display for MigrationReport {
    /// One line per migration applied (`applied V1__create_bots`), or `up to date`,
    /// then the schema version.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.applied.is_empty() {
            return writeln!(f, "up to date (schema version {})", self.to_version);
        }
        for m in &self.applied {
            writeln!(f, "applied V{}__{}", m.version, m.name)?;
        }
        writeln!(
            f,
            "schema version {} -> {}",
            self.from_version, self.to_version
        )
    }
}

impl fmt::Display for MigrationStatus {
    /// The database, its state, then one line per applied and per pending migration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            SchemaState::Missing => "missing (`migrate` creates it)".to_owned(),
            SchemaState::UpToDate => "up to date".to_owned(),
            SchemaState::Pending => "migrations pending (run `migrate`)".to_owned(),
            SchemaState::TooNew => "newer than this code (refused)".to_owned(),
            SchemaState::Diverged { version, detail } => {
                format!("history diverged at V{version}: {detail}")
            }
        };
        writeln!(f, "database: {}", self.path.display())?;
        writeln!(f, "state: {state}")?;
        writeln!(
            f,
            "schema version: {} (code: {})",
            self.db_version, self.code_version
        )?;
        for m in &self.applied {
            let on = m.applied_on.as_deref().unwrap_or("unknown time");
            writeln!(f, "applied V{}__{} ({on})", m.version, m.name)?;
        }
        for m in &self.pending {
            writeln!(f, "pending V{}__{}", m.version, m.name)?;
        }
        Ok(())
    }
}
