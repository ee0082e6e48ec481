//! The facade: consistency of the two halves under injected failures and simulated
//! crashes, and the doctor's findings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "tokio")]
mod aio;
mod backup;
mod consistency;
mod doctor;
mod events;
mod owner;
mod port;
mod power_cut;
mod redaction;
mod repair_races;

use botmaker::domain::{NewBot, SecretName};
use botmaker::{Botmaker, Config};

/// A migrated installation in a temp dir.
pub(crate) struct Install {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) config: Config,
}

impl Install {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new(dir.path().join("data"), dir.path().join("secrets"));
        botmaker::migrate(&config).unwrap();
        Self { _dir: dir, config }
    }

    pub(crate) fn open(&self) -> Botmaker {
        Botmaker::open(&self.config).unwrap()
    }

    /// Entries directly in the secrets root (bot directories, `.quarantine`), but
    /// the advisory lock file `.lock` that create and delete make on first use.
    pub(crate) fn root_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.config.secrets_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name != ".lock")
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
