//! Which registry an installation uses: [`Database`], chosen by a connection string
//! ([`Database::parse`]), and [`PostgresUrl`], a connection string whose `Debug` and
//! `Display` never show its password.

use std::fmt;

use crate::ConfigError;

/// The environment variable that selects the registry's database: unset (or empty)
/// means SQLite at `<data dir>/botmaker.db`; a PostgreSQL connection string selects
/// PostgreSQL (see [`Database::parse`]).
pub const DATABASE_URL_VAR: &str = "BOTMAKER_DATABASE_URL";

/// What a database URL may look like, for messages.
pub const DATABASE_URL_FORMAT: &str = "postgres://…, postgresql://… or key=value pairs such as `host=/run/postgresql dbname=botmaker`";

/// Where the bot registry lives.
///
/// The backend is chosen here, from the configuration, whatever the build supports:
/// a build without a backend's feature refuses to open it with a clear error
/// ([`Error::Unsupported`](crate::Error::Unsupported)) instead of taking the URL for
/// something else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Database {
    /// The embedded SQLite file `<data dir>/botmaker.db`
    /// ([`Config::database_path`](crate::Config::database_path)): the default, when no
    /// URL is configured.
    #[default]
    Sqlite,
    /// A PostgreSQL server, shared by several hosts.
    Postgres(PostgresUrl),
}

impl Database {
    /// Reads a connection string: `postgres://…`, `postgresql://…` or the key=value
    /// form (`host=/run/postgresql dbname=botmaker`) select PostgreSQL. Any other
    /// scheme, an empty string, or a malformed key=value string is refused with an
    /// error that names `source_name` (the variable or flag it came from) and, for a
    /// scheme, the scheme; never the rest of the string, which may hold a password.
    pub fn parse(value: &str, source_name: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &'static str| ConfigError::InvalidDatabaseUrl {
            source_name: source_name.to_owned(),
            reason,
        };
        if value.trim().is_empty() {
            return Err(invalid("the value is empty"));
        }
        if let Some((scheme, _)) = value.split_once("://") {
            return if scheme == "postgres" || scheme == "postgresql" {
                Ok(Self::Postgres(PostgresUrl::new(value, Form::Url)))
            } else {
                Err(unsupported(scheme, source_name))
            };
        }
        // libpq's rule: a string that is not a URL and holds an `=` is key=value pairs.
        let pairs = value.contains('=').then(|| key_values(value));
        if let Some(Ok(_)) = pairs {
            return Ok(Self::Postgres(PostgresUrl::new(value, Form::KeyValue)));
        }
        // `sqlite:data.db`, `file:…?mode=ro`: a scheme without `//`.
        if let Some((scheme, _)) = value.split_once(':')
            && is_scheme(scheme)
        {
            return Err(unsupported(scheme, source_name));
        }
        match pairs {
            Some(Err(reason)) => Err(invalid(reason)),
            _ => Err(invalid("neither a URL nor key=value pairs")),
        }
    }

    /// The backend's name, as in the facade's spans (`sqlite`, `postgres`).
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// The error for a scheme that selects no backend. The scheme is named only when it
/// looks like one (so a password before a `:` is never echoed as a "scheme").
fn unsupported(scheme: &str, source_name: &str) -> ConfigError {
    if is_scheme(scheme) {
        ConfigError::UnsupportedDatabaseScheme {
            source_name: source_name.to_owned(),
            scheme: scheme.to_owned(),
        }
    } else {
        ConfigError::InvalidDatabaseUrl {
            source_name: source_name.to_owned(),
            reason: "the part before `://` is not a URL scheme",
        }
    }
}

/// RFC 3986's `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`, at most 32 long.
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() <= 32
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// The two ways libpq writes a connection string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Url,
    KeyValue,
}

/// A PostgreSQL connection string, kept as given (the backend parses it when it
/// opens). Its `Debug` and `Display` show it with every password replaced by `***`:
/// the URL's `user:password@`, and the value of every parameter of either form but
/// those that say where, as whom and how to connect (`host`, `port`, `dbname`,
/// `user`, `sslmode`…), so `password`, `sslpassword` and any unknown one are hidden.
/// [`PostgresUrl::expose`] gives the string itself, for the driver only.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    value: String,
    form: Form,
}

/// What a password is shown as.
const REDACTED: &str = "***";

/// The parameters whose values are shown, in either form: where and as whom to
/// connect, and how. Every other value (`password`, `sslpassword`, and anything
/// this list does not know) is shown as `***`.
const SHOWN_KEYS: [&str; 17] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "sslmode",
    "application_name",
    "connect_timeout",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "tcp_user_timeout",
    "options",
];

/// Whether a parameter's value may be shown (see [`SHOWN_KEYS`]).
fn shown(key: &str) -> bool {
    SHOWN_KEYS.contains(&key.to_ascii_lowercase().as_str())
}

impl PostgresUrl {
    fn new(value: &str, form: Form) -> Self {
        Self {
            value: value.to_owned(),
            form,
        }
    }

    /// The connection string as given, password included: for the driver, never for
    /// a message or a log.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The string with its passwords replaced by `***`: what `Debug` and `Display`
    /// show.
    pub fn redacted(&self) -> String {
        match self.form {
            Form::Url => redact_url(&self.value),
            // Parsed when it was accepted; a failure here cannot happen, and shows nothing.
            Form::KeyValue => key_values(&self.value).map_or_else(
                |_| REDACTED.to_owned(),
                |pairs| {
                    pairs
                        .iter()
                        .map(|(k, v)| {
                            if shown(k) {
                                format!("{k}={}", quote(v))
                            } else {
                                format!("{k}={REDACTED}")
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                },
            ),
        }
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PostgresUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `scheme://user:***@rest?…&password=***`. Errs on the side of hiding: the user
/// information ends at the *last* `@` (a password may hold an unescaped `@`, `/` or
/// `?`), so an `@` in a later parameter hides the host too, never shows a password.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return REDACTED.to_owned();
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, after)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:{REDACTED}@{after}"),
            None => format!("{userinfo}@{after}"),
        },
        None => rest.to_owned(),
    };
    let Some((base, query)) = rest.split_once('?') else {
        return format!("{scheme}://{rest}");
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if !shown(key) => format!("{key}={REDACTED}"),
            Some(_) => pair.to_owned(),
            None => REDACTED.to_owned(), // not a parameter: nothing says what it holds
        })
        .collect();
    format!("{scheme}://{base}?{}", query.join("&"))
}

/// libpq's key=value form: `key = value` pairs separated by whitespace; a value is
/// bare (ends at whitespace) or in single quotes, and `\` escapes the next character
/// in both. The errors name no key and no value.
fn key_values(s: &str) -> Result<Vec<(String, String)>, &'static str> {
    let mut chars = s.chars().peekable();
    let mut pairs = Vec::new();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut chars);
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        skip_ws(&mut chars);
        if chars.next() != Some('=') {
            return Err("key=value pairs: a key is not followed by `=`");
        }
        if key.is_empty() {
            return Err("key=value pairs: an `=` has no key before it");
        }
        // libpq's parameter names: `host`, `dbname`, `sslmode`, `target_session_attrs`…
        if !key.starts_with(|c: char| c.is_ascii_alphabetic())
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err("key=value pairs: a key is not a parameter name (letters, digits, `_`)");
        }
        skip_ws(&mut chars);
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err("key=value pairs: a quoted value is not closed"),
                    Some('\'') => break,
                    Some('\\') => {
                        if let Some(c) = chars.next() {
                            value.push(c);
                        }
                    }
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

/// A value as the key=value form writes it back: bare when it can be.
fn quote(v: &str) -> String {
    if !v.is_empty()
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
    {
        return v.to_owned();
    }
    let escaped = v.replace('\\', "\\\\").replace('\'', "\\'");
    format!("'{escaped}'")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pg(s: &str) -> PostgresUrl {
        match Database::parse(s, "TEST").unwrap() {
            Database::Postgres(url) => url,
            Database::Sqlite => panic!("{s} selected SQLite"),
        }
    }

    #[test]
    fn postgres_urls_and_key_values_select_postgres() {
        for s in [
            "postgres://alice@db.example/botmaker",
            "postgresql://db.example:5433/botmaker?sslmode=require",
            "host=/run/postgresql dbname=botmaker",
            "host = /tmp/pg   dbname='bot maker'",
        ] {
            let url = pg(s);
            assert_eq!(url.expose(), s);
            assert_eq!(Database::Postgres(url).backend(), "postgres");
        }
        assert_eq!(Database::default(), Database::Sqlite);
        assert_eq!(Database::Sqlite.backend(), "sqlite");
    }

    #[test]
    fn passwords_are_redacted_in_debug_and_display() {
        for (given, shown) in [
            (
                "postgres://alice:hunter2@db.example:5432/botmaker",
                "postgres://alice:***@db.example:5432/botmaker",
            ),
            (
                "postgresql://alice:p@ss/w?rd@db/botmaker",
                "postgresql://alice:***@db/botmaker",
            ),
            (
                "postgres://db/botmaker?user=alice&password=hunter2&sslmode=require",
                "postgres://db/botmaker?user=alice&password=***&sslmode=require",
            ),
            (
                "postgres://alice@db/botmaker?PASSWORD=hunter2",
                "postgres://alice@db/botmaker?PASSWORD=***",
            ),
            (
                "host=/tmp/pg dbname=botmaker password=hunter2",
                "host=/tmp/pg dbname=botmaker password=***",
            ),
            (
                "host=/tmp/pg sslkey_pass=hunter2 port=5433",
                "host=/tmp/pg sslkey_pass=*** port=5433",
            ),
            (
                "postgres://db/botmaker?passfile_secret=hunter2&sslmode=require",
                "postgres://db/botmaker?passfile_secret=***&sslmode=require",
            ),
            (
                "host=/tmp/pg password = 'hun ter\\'2' sslpassword=hunter2 dbname='a b'",
                "host=/tmp/pg password=*** sslpassword=*** dbname='a b'",
            ),
        ] {
            let url = pg(given);
            assert_eq!(url.to_string(), shown);
            assert_eq!(format!("{url:?}"), format!("PostgresUrl({shown:?})"));
            let config = format!("{:?}", Database::Postgres(url));
            assert!(
                !config.contains("hunter2") && !config.contains("hun ter"),
                "{config}"
            );
        }
    }

    #[test]
    fn other_schemes_and_malformed_strings_are_refused_naming_no_password() {
        for (given, message) in [
            (
                "mysql://root:hunter2@db/botmaker",
                "TEST: unsupported database url scheme \"mysql\"",
            ),
            (
                "sqlite:data/botmaker.db",
                "TEST: unsupported database url scheme \"sqlite\"",
            ),
            (
                "file:botmaker.db?mode=ro",
                "TEST: unsupported database url scheme \"file\"",
            ),
            (
                "host=/tmp hunter2?x=y",
                "TEST: invalid database url: key=value pairs: a key is not a parameter name",
            ),
            ("", "TEST: invalid database url: the value is empty"),
            ("  ", "TEST: invalid database url: the value is empty"),
            (
                "hunter2",
                "TEST: invalid database url: neither a URL nor key=value pairs",
            ),
            (
                "host=/tmp password='hunter2",
                "TEST: invalid database url: key=value pairs: a quoted value is not closed",
            ),
            (
                "hunter2 host=/tmp",
                "TEST: invalid database url: key=value pairs: a key is not followed by `=`",
            ),
            (
                "=hunter2",
                "TEST: invalid database url: key=value pairs: an `=` has no key before it",
            ),
            (
                "pass word://x",
                "TEST: invalid database url: the part before `://` is not a URL scheme",
            ),
        ] {
            let err = Database::parse(given, "TEST").unwrap_err().to_string();
            assert!(err.starts_with(message), "{given:?}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    proptest! {
        /// Whatever the password holds, no form shows it.
        #[test]
        fn no_password_is_ever_shown(tail in "[ -~]{0,24}", user in "[a-z]{1,8}") {
            let password = format!("S3cr3t{tail}");
            let escaped = password.replace('\\', "\\\\").replace('\'', "\\'");
            for given in [
                format!("postgres://{user}:{password}@db.example/botmaker"),
                format!("postgresql://db.example/botmaker?password={password}"),
                format!("host=/tmp/pg password='{escaped}' dbname=botmaker"),
                format!("password='{escaped}'"),
            ] {
                if let Ok(Database::Postgres(url)) = Database::parse(&given, "TEST") {
                    prop_assert!(!url.to_string().contains("S3cr3t"), "{given} -> {url}");
                    let debug = format!("{url:?}");
                    prop_assert!(!debug.contains("S3cr3t"), "{}", debug);
                }
            }
            // Refused strings never echo it either.
            for given in [
                format!("mysql://{user}:{password}@db"),
                format!("host=/tmp password='{escaped}"),
                // A bare password: named only if it could be a scheme, text before a `:`,
                // or a key, text before an `=`.
                password.replace([':', '='], ""),
            ] {
                if let Err(e) = Database::parse(&given, "TEST") {
                    prop_assert!(!e.to_string().contains("S3cr3t"), "{given} -> {e}");
                }
            }
        }
    }
}
