//! `botmaker`: the admin CLI of botmaker-foundation.
//!
//! Human output by default, `--json` where listed. An error is one line on stderr
//! starting with `error:` and exit code 1; a usage error exits 2. Secret values are
//! read from standard input only (never from the command line, where `ps` and shell
//! history would see them) and printed only by `secret get`.
#![allow(clippy::print_stderr)] // the one place errors are reported to the user

mod backup;
mod commands;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "botmaker",
    version,
    about = "Create and manage AI chat bots and their credentials"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Data directory holding botmaker.db [env: BOTMAKER_DATA_DIR; default: ./data]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Registry database: postgres://…, postgresql://… or key=value pairs such as
    /// `host=/run/postgresql dbname=botmaker` select PostgreSQL. Put a URL with a
    /// password in the environment instead: a command line is visible to other users
    /// [env: BOTMAKER_DATABASE_URL; default: SQLite at <data dir>/botmaker.db]
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Secrets directory [env: BOTMAKER_SECRETS_DIR, then SECRETS_DIR; default: ./secrets]
    #[arg(long, global = true, value_name = "DIR")]
    secrets_dir: Option<PathBuf>,
    /// Owner of the secrets: new bot directories and secret files are chowned to it,
    /// reads and the doctor expect it; numeric ids [env: BOTMAKER_SECRETS_OWNER;
    /// default: the current user, no chown]
    #[arg(long, global = true, value_name = "UID:GID", value_parser = parse_secrets_owner)]
    secrets_owner: Option<botmaker::secrets::Owner>,
    /// Print the library's events on stderr: -v warnings and repairs (info), -vv each
    /// operation (debug), -vvv everything (trace). Without it, RUST_LOG (an
    /// env-filter directive such as `botmaker_sqlite=debug`) if set; else nothing
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// Sends the libraries' `tracing` events to stderr, filtered by `-v` (which wins) or
/// `RUST_LOG`. With neither, no subscriber is installed: stdout, stderr and exit codes
/// are exactly those of a build without tracing. Events never hold a secret's value
/// (the libraries' rule, checked by their redaction tests), so `-vvv` is safe to paste.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match verbose {
        0 => match std::env::var("RUST_LOG") {
            Ok(directives) if !directives.trim().is_empty() => {
                // A malformed directive is ignored (with the rest kept), never fatal.
                EnvFilter::builder().parse_lossy(directives)
            }
            _ => return,
        },
        1 => EnvFilter::new("info"),
        2 => EnvFilter::new("debug"),
        _ => EnvFilter::new("trace"),
    };
    // Fails only if a subscriber is already set, which nothing in this binary does.
    // A line per operation when its span closes (with its outcome and elapsed_us),
    // for the operations the filter lets through (debug: every store operation).
    let _ = tracing_subscriber::fmt()
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .try_init();
}

/// The flag's value; clap's error line names the flag and the value already.
fn parse_secrets_owner(value: &str) -> Result<botmaker::secrets::Owner, String> {
    botmaker::parse_secrets_owner(value, "--secrets-owner")
        .map_err(|_| format!("expected {}", botmaker::SECRETS_OWNER_FORMAT))
}

#[derive(Subcommand)]
enum Command {
    /// Create the database or apply pending migrations
    Migrate {
        /// List applied and pending migrations instead
        #[arg(long)]
        status: bool,
    },
    /// Manage bots
    #[command(subcommand)]
    Bot(BotCommand),
    /// Manage a bot's secrets
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Check the installation; --fix repairs what is safe
    Doctor {
        /// Repair modes and leftovers, quarantine orphan secrets directories
        #[arg(long)]
        fix: bool,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent snapshot of the installation into DIR (new or empty), online
    Backup {
        /// Only check the backup in DIR against its manifest
        #[arg(long)]
        verify: bool,
        /// Show progress on stderr even when it is not a terminal
        #[arg(long)]
        progress: bool,
        /// The backup folder
        dir: PathBuf,
    },
    /// Restore the backup in DIR into an empty installation, then run the doctor
    Restore {
        /// Show progress on stderr even when it is not a terminal
        #[arg(long)]
        progress: bool,
        /// The backup folder
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum BotCommand {
    /// Register a bot; prints its id
    Create {
        /// Unique name: lowercase letters, digits and '-'
        name: String,
        /// AI provider (openai, anthropic, google, ollama, mistral, azure-openai)
        #[arg(long)]
        provider: String,
        /// Model name, e.g. gpt-4o
        #[arg(long)]
        model: String,
        /// Chat channel (slack, discord, telegram, whatsapp, matrix, teams)
        #[arg(long)]
        channel: String,
        /// Print the bot as a JSON object
        #[arg(long)]
        json: bool,
    },
    /// List bots, newest first
    List {
        /// Only bots with this status
        #[arg(long)]
        status: Option<String>,
        /// Print a JSON array
        #[arg(long)]
        json: bool,
    },
    /// Show one bot
    Show {
        /// Bot id or name
        bot: String,
        /// Print a JSON object
        #[arg(long)]
        json: bool,
    },
    /// Change a bot's status (transition-checked)
    SetStatus {
        /// Bot id or name
        bot: String,
        /// New status
        status: String,
    },
    /// Delete a bot and its secrets
    Delete {
        /// Bot id or name
        bot: String,
    },
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Set a secret; the value is read from standard input (one trailing newline removed)
    Set {
        /// Bot id or name
        bot: String,
        /// Secret name, e.g. ai_api_key, channel_token, channel_config
        name: String,
    },
    /// Print a secret's value on standard output
    Get {
        /// Bot id or name
        bot: String,
        /// Secret name
        name: String,
    },
    /// List a bot's secrets: names, sizes, modes (never values)
    List {
        /// Bot id or name
        bot: String,
        /// Print a JSON array
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret
    Rm {
        /// Bot id or name
        bot: String,
        /// Secret name
        name: String,
    },
}

/// How a command ended, when it did not fail: the exit code to use.
pub(crate) enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1 without an error line (the command printed its own report).
    Problems,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    // A flag wins over the environment, so a bad BOTMAKER_SECRETS_OWNER or
    // BOTMAKER_DATABASE_URL that a flag overrides is not read at all.
    let flag_owner = cli.global.secrets_owner;
    let flag_database = cli.global.database_url;
    let env = |key: &str| {
        if (key == botmaker::SECRETS_OWNER_VAR && flag_owner.is_some())
            || (key == botmaker::DATABASE_URL_VAR && flag_database.is_some())
        {
            None
        } else {
            std::env::var_os(key)
        }
    };
    let mut config = match botmaker::Config::try_from_lookup(env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{}", error_line(&e.into()));
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = cli.global.data_dir {
        config = config.with_data_dir(dir);
    }
    if let Some(dir) = cli.global.secrets_dir {
        config = config.with_secrets_dir(dir);
    }
    if flag_owner.is_some() {
        config = config.with_secrets_owner(flag_owner);
    }
    // Parsed here, not by clap: clap's error would repeat the value, password included.
    if let Some(url) = flag_database {
        match botmaker::Database::parse(&url, "--database-url") {
            Ok(database) => config = config.with_database(database),
            Err(e) => {
                eprintln!("{}", error_line(&e.into()));
                return ExitCode::FAILURE;
            }
        }
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = commands::run(&config, cli.command, &mut out).and_then(|o| {
        out.flush()?;
        Ok(o)
    });
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::FAILURE,
        // `botmaker bot list | head -1`: the reader went away; not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The one line an error prints: `error: ` and the whole chain, then the command that
/// helps, if there is one. The libraries' messages name no command (a library does not
/// know which binary runs it); this binary knows its own commands and xtask's.
fn error_line(e: &anyhow::Error) -> String {
    // Each cause once: an error whose message already quotes its source (the clients'
    // errors often do: `db error: FATAL: …` over `FATAL: …`) is not followed by it
    // again.
    let mut chain = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if chain.contains(&text) {
            continue;
        }
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&text);
    }
    let mut message = format!("error: {chain}").replace('\n', " ");
    if let Some(hint) = command_hint(e) {
        message.push_str(hint);
    }
    message
}

/// The command that resolves an error, as a suffix of its line.
fn command_hint(e: &anyhow::Error) -> Option<&'static str> {
    use botmaker::Error;
    use botmaker::sqlite::StoreError;
    e.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<Error>() {
            match e {
                Error::OrphanSecrets { .. } => Some("; run `botmaker doctor --fix`"),
                Error::Compensation { .. } => Some("; run `botmaker doctor`"),
                // A transparent variant: the chain goes on with the store error's
                // source, not the store error itself, so look inside here.
                Error::Store(e) => botmaker::migrate_hint(e),
                Error::Postgres(e) => botmaker::postgres_migrate_hint(e),
                _ => None,
            }
        } else {
            cause
                .downcast_ref::<StoreError>()
                .and_then(botmaker::migrate_hint)
        }
    })
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use botmaker::domain::BotId;
    use botmaker::sqlite::StoreError;

    use super::error_line;

    fn line(e: impl Into<anyhow::Error>) -> String {
        error_line(&e.into())
    }

    #[test]
    fn command_hints_are_added_once_to_the_errors_they_resolve() {
        let id: BotId = "0192f5a4-1b2c-7d3e-8f40-112233445566".parse().unwrap();
        assert_eq!(
            line(botmaker::Error::OrphanSecrets { id }),
            "error: bot 0192f5a4-1b2c-7d3e-8f40-112233445566 already has a secrets \
             directory but no database row; run `botmaker doctor --fix`"
        );
        let cause = botmaker::Error::from(botmaker::domain::RepoError::Corrupt {
            detail: "a".to_owned(),
        });
        let cleanup = botmaker::Error::from(botmaker::domain::RepoError::Corrupt {
            detail: "b".to_owned(),
        });
        assert_eq!(
            line(botmaker::Error::Compensation {
                cause: Box::new(cause),
                cleanup: Box::new(cleanup),
            }),
            "error: store corrupt: a; cleaning up also failed (store corrupt: b); \
             run `botmaker doctor`"
        );
        let path = PathBuf::from("/d/botmaker.db");
        let missing = "error: database /d/botmaker.db does not exist; create it with \
                       `cargo xtask migrate` or `botmaker migrate`";
        // Reached through the facade (every command) and directly (the same line).
        assert_eq!(
            line(botmaker::Error::Store(StoreError::Missing {
                path: path.clone()
            })),
            missing
        );
        assert_eq!(line(StoreError::Missing { path: path.clone() }), missing);
        let pending = StoreError::MigrationsPending {
            path,
            db: 0,
            code: 1,
            pending: Vec::new(),
        };
        assert_eq!(
            line(botmaker::Error::Store(pending)),
            "error: database /d/botmaker.db has schema version 0, this code needs version 1 \
             (0 migration(s) pending); run `cargo xtask migrate` or `botmaker migrate`"
        );
        assert_eq!(
            line(botmaker::Error::Store(StoreError::HotJournal {
                path: PathBuf::from("/d/botmaker.db")
            })),
            "error: database /d/botmaker.db has a rollback journal left by an interrupted \
             write; migrating rolls it back (the database was left untouched); run \
             `cargo xtask migrate` or `botmaker migrate`"
        );
        // Errors that no command resolves get no hint.
        let refused = botmaker::domain::DomainError::InvalidBotRef {
            value: "../x".to_owned(),
        };
        assert_eq!(
            line(botmaker::Error::from(refused)),
            "error: \"../x\" is neither a bot id nor a bot name"
        );
    }
}

#[cfg(test)]
mod error_line_tests {
    use std::fmt;

    /// An error whose message quotes its source, as the clients' errors often do.
    #[derive(Debug)]
    struct Quoting(std::io::Error);

    impl fmt::Display for Quoting {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "cannot connect to db on /run/pg: {}", self.0)
        }
    }

    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_shown_once() {
        let quoting = anyhow::Error::new(Quoting(std::io::Error::other("FATAL: no such role")));
        assert_eq!(
            super::error_line(&quoting),
            "error: cannot connect to db on /run/pg: FATAL: no such role"
        );
        // A source that its error does not quote is still shown after it.
        let plain = anyhow::Error::new(std::io::Error::other("disk full")).context("writing x");
        assert_eq!(super::error_line(&plain), "error: writing x: disk full");
    }
}
