//! The facade: consistency of the two halves under injected failures and simulated
//! crashes, and the doctor's findings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// `mod $name { sqlite, postgres }`, each running `$body(&Install)`.
macro_rules! on_both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::$body(&crate::Install::new());
            }
            #[test]
            fn postgres() {
                super::$body(&crate::Install::postgres());
            }
        }
    };
}

#[cfg(feature = "tokio")]
mod aio;
mod backends;
mod backup;
mod consistency;
mod doctor;
mod events;
mod owner;
mod placement;
mod port;
mod power_cut;
mod redaction;
mod repair_races;

use botmaker::domain::{NewBot, SecretName};
use botmaker::{Botmaker, Config, Database};
use botmaker_testkit::pg;

/// A migrated installation in a temp dir: SQLite in its data dir, or a database of its
/// own on the test kit's PostgreSQL server.
pub(crate) struct Install {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) config: Config,
    /// The PostgreSQL database, dropped with the installation.
    pub(crate) db: Option<pg::TestDatabase>,
}

/// The password `Install::postgres` puts in its connection string. The test server
/// trusts its Unix socket, so it is carried (where it could leak) but not checked.
pub(crate) const DB_PASSWORD: &str = "pG-pAsSwOrD-v7Kq2";

impl Install {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new(dir.path().join("data"), dir.path().join("secrets"));
        botmaker::migrate(&config).unwrap();
        Self {
            _dir: dir,
            config,
            db: None,
        }
    }

    /// The same on PostgreSQL (selected by its connection string, with a password).
    pub(crate) fn postgres() -> Self {
        let install = Self::postgres_unmigrated();
        botmaker::migrate(&install.config).unwrap();
        install
    }

    /// A PostgreSQL installation whose database is still empty.
    pub(crate) fn postgres_unmigrated() -> Self {
        let db = pg::shared().database("facade");
        let url = format!("{} password={DB_PASSWORD}", db.url());
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new(dir.path().join("data"), dir.path().join("secrets"))
            .with_database(Database::parse(&url, "test").unwrap());
        Self {
            _dir: dir,
            config,
            db: Some(db),
        }
    }

    pub(crate) fn open(&self) -> Botmaker {
        Botmaker::open(&self.config).unwrap()
    }

    /// Entries directly in the secrets root (bot directories, `.quarantine`), but
    /// the advisory lock file `.lock` that create and delete make on first use and
    /// the root's id file `.root-id` that its first open makes.
    pub(crate) fn root_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.config.secrets_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name != ".lock" && name != ".root-id")
            .collect();
        v.sort();
        v
    }
}

pub(crate) fn new_bot(name: &str) -> NewBot {
    NewBot::new(
        name.parse().unwrap(),
        "openai".parse().unwrap(),
        "gpt-4o".parse().unwrap(),
        "slack".parse().unwrap(),
    )
}

/// The three required secrets with small values.
pub(crate) fn required() -> Vec<(SecretName, &'static [u8])> {
    SecretName::required()
        .into_iter()
        .zip([b"k".as_slice(), b"t".as_slice(), b"{}".as_slice()])
        .collect()
}
