use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::database::{DATABASE_URL_FORMAT, DATABASE_URL_VAR, Database};

/// The file name of the database inside the data directory.
pub const DATABASE_FILE: &str = "botmaker.db";

/// The environment variable that sets the owner of the secrets store's files.
pub const SECRETS_OWNER_VAR: &str = "BOTMAKER_SECRETS_OWNER";

/// What a secrets owner looks like, for messages: [`ConfigError`]'s, and a CLI's own
/// when it parses its flag.
pub const SECRETS_OWNER_FORMAT: &str = "UID:GID, two numbers such as 65534:65534";

/// Where an installation keeps its data: the registry (SQLite under the data
/// directory, or a PostgreSQL server), the per-bot secrets under the secrets
/// directory; and who owns the secrets.
///
/// [`Config::from_env`] reads, in order of precedence:
///
/// | setting | environment | default |
/// |---|---|---|
/// | data directory | `BOTMAKER_DATA_DIR` | `./data` |
/// | secrets directory | `BOTMAKER_SECRETS_DIR`, then `SECRETS_DIR` | `./secrets` |
/// | secrets owner | `BOTMAKER_SECRETS_OWNER` (`UID:GID`) | none: the effective user |
/// | registry | `BOTMAKER_DATABASE_URL` ([`Database::parse`]) | SQLite at `<data dir>/botmaker.db` |
///
/// An empty variable counts as unset. A database URL's password never appears in
/// `Debug` or in an error ([`PostgresUrl`](crate::PostgresUrl)). Explicit values ([`Config::new`],
/// [`Config::with_data_dir`], [`Config::with_secrets_dir`],
/// `Config::with_secrets_owner`, [`Config::with_database`]) win over the environment.
///
/// The secrets owner is part of the installation, not of one command: the secrets
/// store hands every directory and file it creates to it (`fchown`) and expects it on
/// every read and audit, so everything that opens the store ([`Botmaker::open`] and
/// [`Botmaker::doctor`]) takes it from here. Without the `secrets` feature there is no
/// store, and the owner is neither read nor kept.
///
/// [`Botmaker::open`]: crate::Botmaker::open
/// [`Botmaker::doctor`]: crate::Botmaker::doctor
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    data_dir: PathBuf,
    secrets_dir: PathBuf,
    database: Database,
    /// A malformed `BOTMAKER_DATABASE_URL` read by the lenient [`Config::from_env`]:
    /// kept, and returned by [`Config::database`], so that opening refuses it.
    database_error: Option<ConfigError>,
    #[cfg(feature = "secrets")]
    secrets_owner: Option<botmaker_secrets::Owner>,
    /// A malformed owner read by the lenient [`Config::from_env`]: kept, and returned
    /// by [`Config::secrets_options`], so that opening the store refuses it.
    #[cfg(feature = "secrets")]
    owner_error: Option<ConfigError>,
}

/// Why a configuration value was refused; it names the value and where it came from.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A secrets owner that is not `UID:GID` (two decimal numbers).
    #[error(
        "{source_name}: invalid secrets owner {value:?}: expected {}",
        SECRETS_OWNER_FORMAT
    )]
    InvalidSecretsOwner {
        /// Where the value came from (an environment variable or a flag).
        source_name: String,
        /// The value as given (lossily decoded if it was not UTF-8).
        value: String,
    },
    /// A database URL whose scheme selects no backend. The scheme is named; the rest
    /// of the URL (which may hold a password) is not.
    #[error(
        "{source_name}: unsupported database url scheme {scheme:?}: expected {}; unset means SQLite at <data dir>/{}",
        DATABASE_URL_FORMAT,
        DATABASE_FILE
    )]
    UnsupportedDatabaseScheme {
        /// Where the value came from (an environment variable or a flag).
        source_name: String,
        /// The scheme, the text before `:`.
        scheme: String,
    },
    /// A database URL that cannot be read as one. The value is not repeated: it may
    /// hold a password.
    #[error(
        "{source_name}: invalid database url: {reason}: expected {}",
        DATABASE_URL_FORMAT
    )]
    InvalidDatabaseUrl {
        /// Where the value came from (an environment variable or a flag).
        source_name: String,
        /// What is wrong.
        reason: &'static str,
    },
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
            database: Database::Sqlite,
            database_error: None,
            #[cfg(feature = "secrets")]
            secrets_owner: None,
            #[cfg(feature = "secrets")]
            owner_error: None,
        }
    }

    /// From the process environment (see the table above). A malformed
    /// `BOTMAKER_SECRETS_OWNER` is not ignored: it is kept, and [`Botmaker::open`] and
    /// [`Botmaker::doctor`] refuse it (the wrong owner would make every secret
    /// unreadable to the service that needs it). [`Config::try_from_env`] refuses it
    /// at once.
    ///
    /// [`Botmaker::open`]: crate::Botmaker::open
    /// [`Botmaker::doctor`]: crate::Botmaker::doctor
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var_os(key).map(PathBuf::from))
    }

    /// [`Config::from_env`] with any lookup function, for tests and embedders.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<PathBuf>) -> Self {
        Self::read(|key| lookup(key).map(PathBuf::into_os_string))
    }

    /// From the process environment, refusing a malformed `BOTMAKER_SECRETS_OWNER` or
    /// `BOTMAKER_DATABASE_URL`.
    pub fn try_from_env() -> Result<Self, ConfigError> {
        Self::try_from_lookup(|key| std::env::var_os(key))
    }

    /// [`Config::try_from_env`] with any lookup function.
    pub fn try_from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self, ConfigError> {
        let config = Self::read(lookup);
        #[cfg(feature = "secrets")]
        if let Some(e) = &config.owner_error {
            return Err(e.clone());
        }
        if let Some(e) = &config.database_error {
            return Err(e.clone());
        }
        Ok(config)
    }

    fn read(lookup: impl Fn(&str) -> Option<OsString>) -> Self {
        let get = |key: &str| lookup(key).filter(|v| !v.is_empty());
        let data_dir = get("BOTMAKER_DATA_DIR")
            .map_or_else(|| PathBuf::from(Self::DEFAULT_DATA_DIR), PathBuf::from);
        let secrets_dir = get("BOTMAKER_SECRETS_DIR")
            .or_else(|| get("SECRETS_DIR"))
            .map_or_else(|| PathBuf::from(Self::DEFAULT_SECRETS_DIR), PathBuf::from);
        #[cfg(feature = "secrets")]
        let owner = get(SECRETS_OWNER_VAR)
            .map(|v| match v.to_str() {
                Some(text) => parse_secrets_owner(text, SECRETS_OWNER_VAR),
                None => Err(ConfigError::InvalidSecretsOwner {
                    source_name: SECRETS_OWNER_VAR.to_owned(),
                    value: v.to_string_lossy().into_owned(),
                }),
            })
            .transpose();
        let database = get(DATABASE_URL_VAR)
            .map(|v| match v.to_str() {
                Some(text) => Database::parse(text, DATABASE_URL_VAR),
                None => Err(ConfigError::InvalidDatabaseUrl {
                    source_name: DATABASE_URL_VAR.to_owned(),
                    reason: "the value is not UTF-8",
                }),
            })
            .transpose();
        Self {
            data_dir,
            secrets_dir,
            database: database.clone().ok().flatten().unwrap_or_default(),
            database_error: database.err(),
            #[cfg(feature = "secrets")]
            secrets_owner: owner.clone().ok().flatten(),
            #[cfg(feature = "secrets")]
            owner_error: owner.err(),
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

    /// The same configuration with another owner for the secrets store's files
    /// (`None`: the effective user, and no `fchown`).
    #[cfg(feature = "secrets")]
    #[must_use]
    pub fn with_secrets_owner(mut self, owner: Option<botmaker_secrets::Owner>) -> Self {
        self.secrets_owner = owner;
        self.owner_error = None; // an explicit owner replaces a malformed one read before
        self
    }

    /// The same configuration with another registry (e.g. from a `--database-url`
    /// flag, read with [`Database::parse`]); it replaces a malformed one read before.
    #[must_use]
    pub fn with_database(mut self, database: Database) -> Self {
        self.database = database;
        self.database_error = None;
        self
    }

    /// Where the registry lives; the error when the environment held a malformed
    /// `BOTMAKER_DATABASE_URL`.
    pub fn database(&self) -> Result<&Database, ConfigError> {
        match &self.database_error {
            Some(e) => Err(e.clone()),
            None => Ok(&self.database),
        }
    }

    /// The owner of the secrets store's files, if one is configured.
    #[cfg(feature = "secrets")]
    pub fn secrets_owner(&self) -> Option<botmaker_secrets::Owner> {
        self.secrets_owner
    }

    /// The options the installation's secrets store is opened with: the defaults and
    /// the configured owner; the error when the environment held a malformed owner.
    #[cfg(feature = "secrets")]
    pub fn secrets_options(&self) -> Result<botmaker_secrets::SecretsOptions, ConfigError> {
        if let Some(e) = &self.owner_error {
            return Err(e.clone());
        }
        Ok(botmaker_secrets::SecretsOptions {
            owner: self.secrets_owner,
            ..botmaker_secrets::SecretsOptions::default()
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The secrets directory.
    pub fn secrets_dir(&self) -> &Path {
        &self.secrets_dir
    }

    /// `<data dir>/botmaker.db`: the registry when [`Config::database`] is
    /// [`Database::Sqlite`].
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }
}

/// Parses a secrets owner written `UID:GID` (two decimal numbers, as `chown` takes
/// them); `source_name` (the variable or flag it came from) goes into the error.
#[cfg(feature = "secrets")]
pub fn parse_secrets_owner(
    value: &str,
    source_name: &str,
) -> Result<botmaker_secrets::Owner, ConfigError> {
    let number = |s: &str| {
        // `u32::from_str` takes a leading '+'; an id is digits only. `u32::MAX` is
        // `(uid_t)-1`, which `fchown` reads as "leave unchanged", not as an owner.
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<u32>().ok())
            .flatten()
            .filter(|&id| id != u32::MAX)
    };
    value
        .split_once(':')
        .and_then(|(uid, gid)| {
            Some(botmaker_secrets::Owner {
                uid: number(uid)?,
                gid: number(gid)?,
            })
        })
        .ok_or_else(|| ConfigError::InvalidSecretsOwner {
            source_name: source_name.to_owned(),
            value: value.to_owned(),
        })
}

impl Default for Config {
    fn default() -> Self {
        Self::new(Self::DEFAULT_DATA_DIR, Self::DEFAULT_SECRETS_DIR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    fn from(pairs: &'static [(&'static str, &'static str)]) -> Config {
        Config::try_from_lookup(lookup(pairs)).unwrap()
    }

    #[test]
    fn defaults_and_precedence() {
        assert_eq!(from(&[]), Config::default());
        let c = from(&[("SECRETS_DIR", "/s1"), ("BOTMAKER_DATA_DIR", "/d")]);
        assert_eq!(
            (c.data_dir(), c.secrets_dir()),
            (Path::new("/d"), Path::new("/s1"))
        );
        let c = from(&[("SECRETS_DIR", "/s1"), ("BOTMAKER_SECRETS_DIR", "/s2")]);
        assert_eq!(c.secrets_dir(), Path::new("/s2"));
        let c = from(&[
            ("BOTMAKER_SECRETS_DIR", ""),
            ("BOTMAKER_DATA_DIR", ""),
            ("BOTMAKER_SECRETS_OWNER", ""),
        ]);
        assert_eq!(c, Config::default());
        assert_eq!(
            c.with_data_dir("/x").database_path(),
            Path::new("/x/botmaker.db")
        );
    }

    #[cfg(feature = "secrets")]
    #[test]
    fn the_secrets_owner_is_uid_colon_gid_and_anything_else_is_refused() {
        use botmaker_secrets::Owner;
        let c = from(&[("BOTMAKER_SECRETS_OWNER", "65534:65533")]);
        let owner = Owner {
            uid: 65534,
            gid: 65533,
        };
        assert_eq!(c.secrets_owner(), Some(owner));
        assert_eq!(c.secrets_options().unwrap().owner, Some(owner));
        assert_eq!(
            c.secrets_options().unwrap().max_secret_size,
            botmaker_secrets::SecretsOptions::DEFAULT_MAX_SECRET_SIZE
        );
        assert_eq!(
            from(&[]).secrets_options(),
            Ok(botmaker_secrets::SecretsOptions::default())
        );
        assert_eq!(c.with_secrets_owner(None), Config::default());
        for bad in [
            "65534",
            "65534:",
            ":65534",
            "a:b",
            "+1:2",
            "1:-2",
            "1:2:3",
            " 1:2",
            "1:2 ",
            "4294967296:0",
            "4294967295:0",
            "0:4294967295",
            "daemon:daemon",
        ] {
            let err = parse_secrets_owner(bad, "--secrets-owner").unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "--secrets-owner: invalid secrets owner {bad:?}: expected UID:GID, two numbers such as 65534:65534"
                )
            );
        }
        let err =
            Config::try_from_lookup(|k| (k == SECRETS_OWNER_VAR).then(|| OsString::from("nobody")))
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "BOTMAKER_SECRETS_OWNER: invalid secrets owner \"nobody\": expected UID:GID, two numbers such as 65534:65534"
        );
        assert_eq!(
            parse_secrets_owner("0:0", "x"),
            Ok(Owner { uid: 0, gid: 0 })
        );
    }

    #[test]
    fn the_database_url_selects_the_backend_and_a_bad_one_is_refused() {
        assert_eq!(from(&[]).database(), Ok(&Database::Sqlite));
        assert_eq!(
            from(&[("BOTMAKER_DATABASE_URL", "")]).database(),
            Ok(&Database::Sqlite)
        );
        let c = from(&[(
            "BOTMAKER_DATABASE_URL",
            "postgres://alice:hunter2@db.example/botmaker",
        )]);
        let Ok(Database::Postgres(url)) = c.database() else {
            panic!("{c:?}");
        };
        assert_eq!(url.expose(), "postgres://alice:hunter2@db.example/botmaker");
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("postgres://alice:***@db.example/botmaker"),
            "{debug}"
        );
        assert_eq!(c.with_database(Database::Sqlite), Config::default());

        let bad = |k: &str| {
            (k == DATABASE_URL_VAR).then(|| OsString::from("mysql://root:hunter2@db/botmaker"))
        };
        let err = Config::try_from_lookup(bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "BOTMAKER_DATABASE_URL: unsupported database url scheme \"mysql\": expected \
             postgres://…, postgresql://… or key=value pairs such as \
             `host=/run/postgresql dbname=botmaker`; unset means SQLite at <data dir>/botmaker.db"
        );
        // The lenient reader keeps it for the opener to refuse; an explicit database
        // replaces it.
        let lenient = Config::from_lookup(|k| bad(k).map(PathBuf::from));
        assert_eq!(lenient.database(), Err(err));
        assert!(!format!("{lenient:?}").contains("hunter2"));
        assert_eq!(
            lenient.with_database(Database::Sqlite).database(),
            Ok(&Database::Sqlite)
        );
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt as _;
            let err = Config::try_from_lookup(|k| {
                (k == DATABASE_URL_VAR).then(|| OsString::from_vec(vec![b'p', 0xff]))
            })
            .unwrap_err();
            assert_eq!(
                err,
                ConfigError::InvalidDatabaseUrl {
                    source_name: DATABASE_URL_VAR.to_owned(),
                    reason: "the value is not UTF-8"
                }
            );
        }
    }

    #[cfg(feature = "secrets")]
    #[test]
    fn the_lenient_reader_keeps_a_malformed_owner_for_the_store_to_refuse() {
        use botmaker_secrets::Owner;
        let lenient =
            Config::from_lookup(|k| (k == SECRETS_OWNER_VAR).then(|| PathBuf::from("nobody")));
        let err = lenient.secrets_options().unwrap_err();
        assert!(err.to_string().contains("\"nobody\""), "{err}");
        // An explicit owner replaces it.
        let fixed = lenient.with_secrets_owner(Some(Owner { uid: 1, gid: 2 }));
        assert_eq!(
            fixed.secrets_options().unwrap().owner,
            Some(Owner { uid: 1, gid: 2 })
        );
        // Directories still come from the environment as before.
        let c = Config::from_lookup(|k| (k == "BOTMAKER_DATA_DIR").then(|| PathBuf::from("/d")));
        assert_eq!(c.data_dir(), Path::new("/d"));
    }
}
