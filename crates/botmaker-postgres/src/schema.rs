//! The schema this code ships: the migrations embedded from `migrations/`, and how a
//! migration is described, shipped or recorded in a database's history.

use std::fmt;
use std::sync::LazyLock;

use refinery::Migration;

/// The migrations in `migrations/`, embedded at build time.
pub(crate) mod embedded {
    #![allow(unreachable_pub, missing_docs, clippy::unwrap_used)]
    refinery::embed_migrations!("migrations");
}

/// One migration this code ships.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationInfo {
    /// Its version, the `{n}` of `V{n}__{name}.sql`.
    pub version: u32,
    /// Its name, the `{name}` of `V{n}__{name}.sql`.
    pub name: String,
    /// refinery's checksum of its version, name and SQL (what the history records).
    pub checksum: u64,
}

impl fmt::Display for MigrationInfo {
    /// `V{version}__{name}`, as the file is named.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "V{}__{}", self.version, self.name)
    }
}

/// One migration recorded in a database's history.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedMigration {
    /// Its version.
    pub version: u32,
    /// Its name as recorded.
    pub name: String,
    /// When it was applied (RFC 3339, as refinery recorded it), if recorded.
    pub applied_on: Option<String>,
    /// The checksum recorded, if it is a number.
    pub checksum: Option<u64>,
}

pub(crate) fn shipped_migrations_raw() -> &'static [Migration] {
    static SHIPPED: LazyLock<Vec<Migration>> = LazyLock::new(|| {
        let mut migrations = embedded::migrations::runner().get_migrations().clone();
        migrations.sort_by_key(Migration::version);
        migrations
    });
    &SHIPPED
}

/// The description of a shipped migration.
pub(crate) fn info(m: &Migration) -> MigrationInfo {
    MigrationInfo {
        version: u32::try_from(m.version()).unwrap_or(0),
        name: m.name().to_owned(),
        checksum: m.checksum(),
    }
}

/// The migrations this code ships, oldest first.
pub fn shipped_migrations() -> Vec<MigrationInfo> {
    shipped_migrations_raw().iter().map(info).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LATEST_VERSION;
    use botmaker_domain::{AiProvider, BotStatus, ChannelType};
    use botmaker_testkit::migrations::{check_chain, check_list};

    const V1: &str = include_str!("../migrations/V1__create_bots.sql");
    const V2: &str = include_str!("../migrations/V2__bots_checks_without_in_lists.sql");

    #[test]
    fn the_check_lists_are_the_domain_lists() {
        let providers: Vec<String> = AiProvider::ALL.iter().map(|v| v.as_str().into()).collect();
        let channels: Vec<String> = ChannelType::ALL.iter().map(|v| v.as_str().into()).collect();
        let statuses: Vec<String> = BotStatus::ALL.iter().map(|v| v.as_str().into()).collect();
        // V1 made the table with IN lists; V2 replaced them with OR chains of the same
        // values (as SQLite's V2). Both must be the domain's lists; a test on a live
        // server compares what PostgreSQL stored, too.
        assert_eq!(check_list(V1, "ai_provider"), providers);
        assert_eq!(check_list(V1, "channel_type"), channels);
        assert_eq!(check_list(V1, "status"), statuses);
        assert_eq!(check_chain(V2, "ai_provider"), providers);
        assert_eq!(check_chain(V2, "channel_type"), channels);
        assert_eq!(check_chain(V2, "status"), statuses);
        // V2 alters the CHECKs only; the default stays V1's.
        assert!(V1.contains("DEFAULT 'created'"));
        assert!(!V2.contains("DEFAULT"));
        assert_eq!(BotStatus::ALL[0].as_str(), "created");
    }

    /// V3 means the same on both backends: the same column, nullable, with the same
    /// CHECK expression as SQLite's V3.
    #[test]
    fn v3_adds_the_column_sqlite_adds() {
        const PG: &str = include_str!("../migrations/V3__bots_secrets_root.sql");
        const SQLITE: &str =
            include_str!("../../botmaker-sqlite/migrations/V3__bots_secrets_root.sql");
        let check = "CHECK (secrets_root IS NULL OR (length(secrets_root) = 36 AND \
                     secrets_root = lower(secrets_root)))";
        for (backend, sql) in [("postgres", PG), ("sqlite", SQLITE)] {
            let flat = sql
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join(" ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                flat.contains("ADD COLUMN secrets_root TEXT"),
                "{backend}: {flat}"
            );
            assert!(flat.contains(" NULL"), "{backend}: {flat}");
            assert!(flat.contains(check), "{backend}: {flat}");
        }
    }

    #[test]
    fn latest_version_is_the_newest_shipped_migration() {
        let shipped = shipped_migrations();
        assert_eq!(shipped.last().map(|m| m.version), Some(LATEST_VERSION));
        let versions: Vec<u32> = shipped.iter().map(|m| m.version).collect();
        let expected: Vec<u32> = (1..=LATEST_VERSION).collect();
        assert_eq!(versions, expected, "versions are 1, 2, 3, … without gaps");
    }

    #[test]
    fn same_versions_and_names_as_sqlite() {
        // The sqlite crate's migrations, read as files (this crate must not depend on
        // it): the same V{n}__{name} list, so both backends say the same version.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../botmaker-sqlite/migrations");
        let mut sqlite: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        sqlite.sort();
        let ours: Vec<String> = shipped_migrations()
            .iter()
            .map(|m| format!("{m}.sql"))
            .collect();
        assert_eq!(ours, sqlite);
    }
}
