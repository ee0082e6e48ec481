//! [`DatabaseUrl`]: a parsed PostgreSQL connection string that never shows its
//! password.

use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;

use crate::PgError;

/// How long opening a connection waits for the server when the connection string does
/// not say (`connect_timeout`): a server that is down fails fast instead of hanging.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL connection string, parsed: `postgres://…`, `postgresql://…`, or the
/// key=value form (`host=/run/postgresql dbname=botmaker`).
///
/// `Display` and `Debug` show the server, port, user and database, never the password
/// (`password=<redacted>` says one was given); so do this crate's errors and spans.
///
/// ```
/// use botmaker_postgres::DatabaseUrl;
///
/// let url: DatabaseUrl = "postgres://bm:s3cret@db.example:5433/botmaker".parse()?;
/// assert_eq!(
///     url.to_string(),
///     "host=db.example port=5433 user=bm dbname=botmaker password=<redacted>"
/// );
/// assert!(!format!("{url:?}").contains("s3cret"));
/// assert!("mysql://db/botmaker".parse::<DatabaseUrl>().is_err());
/// # Ok::<(), botmaker_postgres::PgError>(())
/// ```
#[derive(Clone)]
pub struct DatabaseUrl {
    config: postgres::Config,
    /// The redacted description, made once (errors name it often).
    describe: String,
}

impl DatabaseUrl {
    /// Parses a connection string. Anything but `postgres://`, `postgresql://` or the
    /// key=value form is [`PgError::UnsupportedScheme`] (naming the scheme) or
    /// [`PgError::InvalidUrl`]; neither error holds the string itself.
    pub fn parse(s: &str) -> Result<Self, PgError> {
        let trimmed = s.trim();
        if let Some((scheme, _)) = trimmed.split_once("://") {
            if scheme != "postgres" && scheme != "postgresql" {
                return Err(PgError::UnsupportedScheme {
                    scheme: scheme.chars().take(32).collect(),
                });
            }
        } else if !trimmed.contains('=') {
            if let Some((scheme, _)) = trimmed.split_once(':')
                && !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            {
                return Err(PgError::UnsupportedScheme {
                    scheme: scheme.chars().take(32).collect(),
                });
            }
            return Err(PgError::InvalidUrl {
                reason: "neither a postgres:// or postgresql:// url nor the key=value \
                         form (host=… dbname=…)"
                    .to_owned(),
            });
        }
        let mut config = postgres::Config::from_str(trimmed).map_err(|e| PgError::InvalidUrl {
            // tokio-postgres's parse errors name the option, not its value.
            reason: e.to_string(),
        })?;
        if config.get_hosts().is_empty() {
            return Err(PgError::InvalidUrl {
                reason: "no host: give host=<socket dir or server> or postgres://server/…"
                    .to_owned(),
            });
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        let describe = describe(&config);
        Ok(Self { config, describe })
    }

    /// The client configuration (holds the password: never printed).
    pub(crate) fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The database's name: the `dbname` given, else the user's (PostgreSQL's default).
    pub fn dbname(&self) -> &str {
        self.config
            .get_dbname()
            .or_else(|| self.config.get_user())
            .unwrap_or("(the login user's)")
    }

    /// The first host: a server name or address, or a Unix socket directory.
    pub fn host(&self) -> String {
        match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => String::new(),
        }
    }
}

/// `host=… port=… user=… dbname=…`, plus `password=<redacted>` when one is set.
fn describe(config: &postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(h) => h.clone(),
            Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    let mut out = format!("host={}", hosts.join(","));
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    if !ports.is_empty() {
        let _ = write!(out, " port={}", ports.join(","));
    }
    if let Some(user) = config.get_user() {
        let _ = write!(out, " user={user}");
    }
    if let Some(db) = config.get_dbname() {
        let _ = write!(out, " dbname={db}");
    }
    if config.get_password().is_some() {
        out.push_str(" password=<redacted>");
    }
    out
}

impl FromStr for DatabaseUrl {
    type Err = PgError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DatabaseUrl {
    /// The redacted key=value form: `host=… port=… user=… dbname=…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.describe).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_parse() {
        for s in [
            "postgres://u:pw@h/db",
            "postgresql://u:pw@h:5432/db",
            "host=/tmp/sock dbname=botmaker",
            "  host=h user=u password=pw dbname=db  ",
        ] {
            let url = DatabaseUrl::parse(s).unwrap();
            assert!(!url.to_string().contains("pw"), "{url}");
            assert!(!format!("{url:?}").contains("pw"), "{url:?}");
        }
        let url = DatabaseUrl::parse("host=/tmp/sock dbname=botmaker").unwrap();
        assert_eq!(url.to_string(), "host=/tmp/sock dbname=botmaker");
        assert_eq!(url.host(), "/tmp/sock");
        assert_eq!(url.dbname(), "botmaker");
    }

    #[test]
    fn other_schemes_and_paths_are_refused_by_name() {
        let e = DatabaseUrl::parse("mysql://u:pw@h/db").unwrap_err();
        assert!(matches!(&e, PgError::UnsupportedScheme { scheme } if scheme == "mysql"));
        assert!(e.to_string().contains("\"mysql\""), "{e}");
        assert!(!e.to_string().contains("pw"), "{e}");
        let e = DatabaseUrl::parse("sqlite:x.db").unwrap_err();
        assert!(matches!(&e, PgError::UnsupportedScheme { scheme } if scheme == "sqlite"));
        for bad in ["/var/lib/botmaker/botmaker.db", "", "botmaker.db"] {
            let e = DatabaseUrl::parse(bad).unwrap_err();
            assert!(matches!(e, PgError::InvalidUrl { .. }), "{bad}: {e:?}");
        }
        let e = DatabaseUrl::parse("host=h nonsense=1 password=pw").unwrap_err();
        assert!(!e.to_string().contains("pw"), "{e}");
    }
}
