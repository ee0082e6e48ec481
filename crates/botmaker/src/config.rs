use std::path::{Path, PathBuf};

/// The file name of the database inside the data directory.
pub const DATABASE_FILE: &str = "botmaker.db";

/// Where an installation keeps its data: the database under the data directory and
/// the per-bot secrets under the secrets directory.
///
/// [`Config::from_env`] reads, in order of precedence:
///
/// | setting | environment | default |
/// |---|---|---|
/// | data directory | `BOTMAKER_DATA_DIR` | `./data` |
/// | secrets directory | `BOTMAKER_SECRETS_DIR`, then `SECRETS_DIR` | `./secrets` |
///
/// An empty variable counts as unset. Explicit values ([`Config::new`],
/// [`Config::with_data_dir`], [`Config::with_secrets_dir`]) win over the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    data_dir: PathBuf,
    secrets_dir: PathBuf,
}

impl Config {
    /// The default data directory.
    pub const DEFAULT_DATA_DIR: &'static str = "./data";
    /// The default secrets directory.
    pub const DEFAULT_SECRETS_DIR: &'static str = "./secrets";

    /// Explicit directories.
    pub fn new(data_dir: impl Into<PathBuf>, secrets_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            secrets_dir: secrets_dir.into(),
        }
    }

    /// From the process environment (see the table above).
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var_os(key).map(PathBuf::from))
    }

    /// From any lookup function, for tests and embedders.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<PathBuf>) -> Self {
        let get = |key: &str| lookup(key).filter(|v| !v.as_os_str().is_empty());
        let data_dir =
            get("BOTMAKER_DATA_DIR").unwrap_or_else(|| PathBuf::from(Self::DEFAULT_DATA_DIR));
        let secrets_dir = get("BOTMAKER_SECRETS_DIR")
            .or_else(|| get("SECRETS_DIR"))
            .unwrap_or_else(|| PathBuf::from(Self::DEFAULT_SECRETS_DIR));
        Self {
            data_dir,
            secrets_dir,
        }
    }

    /// The same configuration with another data directory.
    #[must_use]
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = dir.into();
        self
    }

    /// The same configuration with another secrets directory.
    #[must_use]
    pub fn with_secrets_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.secrets_dir = dir.into();
        self
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The secrets directory.
    pub fn secrets_dir(&self) -> &Path {
        &self.secrets_dir
    }

    /// `<data dir>/botmaker.db`.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new(Self::DEFAULT_DATA_DIR, Self::DEFAULT_SECRETS_DIR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<PathBuf> {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| PathBuf::from(v))
        }
    }

    #[test]
    fn defaults_and_precedence() {
        assert_eq!(Config::from_lookup(lookup(&[])), Config::default());
        let c = Config::from_lookup(lookup(&[
            ("SECRETS_DIR", "/s1"),
            ("BOTMAKER_DATA_DIR", "/d"),
        ]));
        assert_eq!(
            (c.data_dir(), c.secrets_dir()),
            (Path::new("/d"), Path::new("/s1"))
        );
        let c = Config::from_lookup(lookup(&[
            ("SECRETS_DIR", "/s1"),
            ("BOTMAKER_SECRETS_DIR", "/s2"),
        ]));
        assert_eq!(c.secrets_dir(), Path::new("/s2"));
        let c = Config::from_lookup(lookup(&[
            ("BOTMAKER_SECRETS_DIR", ""),
            ("BOTMAKER_DATA_DIR", ""),
        ]));
        assert_eq!(c, Config::default());
        assert_eq!(
            c.with_data_dir("/x").database_path(),
            Path::new("/x/botmaker.db")
        );
    }
}
