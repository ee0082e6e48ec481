//! Per-bot secrets on the filesystem: `<root>/<bot id>/<secret name>`, one `0600`
//! file per secret in a `0700` directory per bot, written atomically and durably,
//! never following a symlink. **This crate does not link SQLite**, and secret values
//! never leave [`secrecy`]/[`zeroize`] types: no `Display`, a redacted `Debug`, never
//! in an error message.
//!
//! A service reads its bot's secrets in a few lines:
//!
//! ```
//! use botmaker_domain::{BotId, SecretName};
//! use botmaker_secrets::{SecretsError, SecretsStore};
//! use secrecy::ExposeSecret;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let root = dir.path().join("secrets");
//! let store = SecretsStore::open(&root)?; // created 0700 if missing, StrictModes-checked
//! let bot: BotId = "0192f5a4-1b2c-7d3e-8f40-112233445566".parse()?;
//! let key: SecretName = SecretName::AI_API_KEY.parse()?;
//!
//! // The admin side: text input loses one trailing newline (`echo key | …`).
//! store.write_str(&bot, &key, "sk-test-123\n")?;
//! // Which secrets a bot needs is the caller's rule; the store says which it lacks.
//! let needed: [SecretName; 2] = [key.clone(), "channel_token".parse()?];
//! assert_eq!(store.missing(&bot, &needed)?, ["channel_token".parse::<SecretName>()?]);
//!
//! // The service side.
//! let api_key = store.read_string(&bot, &key)?;
//! assert_eq!(api_key.expose_secret(), "sk-test-123");
//! assert_eq!(format!("{:?}", store.read(&bot, &key)?), "SecretValue(<redacted>)");
//!
//! // A bot's runtime loads its credentials in one call (the directory opened once).
//! store.write_str(&bot, &needed[1], "xoxb-1")?;
//! let loaded = store.read_many(&bot, &needed)?;
//! assert_eq!(loaded[1].expose(), b"xoxb-1");
//!
//! // Rotation replaces a secret that exists; a missing one is refused, not created.
//! store.replace(&bot, &key, b"sk-test-456")?;
//! let config: SecretName = SecretName::CHANNEL_CONFIG.parse()?;
//! assert!(matches!(store.replace(&bot, &config, b"{}"), Err(SecretsError::NotFound { .. })));
//!
//! // Listing shows metadata only.
//! let listed = store.list(&bot)?;
//! assert_eq!((listed[0].name.as_str(), listed[0].size, listed[0].mode), ("ai_api_key", 11, 0o600));
//! # Ok(())
//! # }
//! ```
//!
//! Secrets mounted by a platform (Docker's `/run/secrets`, systemd's
//! `$CREDENTIALS_DIRECTORY`, `AI_API_KEY_FILE`, Kubernetes secret volumes) are read
//! with the [`platform`] module, beneath the mount, accepting the platform's modes:
//!
//! ```no_run
//! use botmaker_secrets::platform;
//!
//! # fn main() -> Result<(), botmaker_secrets::SecretsError> {
//! // `$AI_API_KEY_FILE` if set, else Docker's /run/secrets/ai_api_key.
//! let key = match platform::read_from_env("AI_API_KEY") {
//!     Err(botmaker_secrets::SecretsError::NotConfigured { .. }) => platform::docker()?.read("ai_api_key")?,
//!     other => other?,
//! };
//! if !key.strict_modes() {
//!     eprintln!("warning: the mounted secret is readable by other users (mode {:o})", key.mode());
//! }
//! let _bytes: &[u8] = key.value().expose();
//! # Ok(())
//! # }
//! ```
//!
//! # How it stays safe
//! - Bot ids and secret names are validated types ([`BotId`](botmaker_domain::BotId),
//!   [`SecretName`](botmaker_domain::SecretName)); each is one plain path component.
//! - The root is opened once (`O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC`) and checked like
//!   OpenSSH StrictModes; everything else is relative to that descriptor, resolved
//!   with `openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)` (or `O_NOFOLLOW` per component
//!   on kernels without it). The components of the root path above its last one are
//!   trusted.
//! - Writes: a `0600` temporary file (a `.tmp-` name no secret can have), write,
//!   `fsync`, `renameat` over the secret, `fsync` the directory. Never `umask()`:
//!   modes are set with `fchmod` on the new descriptor.
//! - Reads: opened `O_NOFOLLOW|O_NONBLOCK`, `fstat` first (regular file, owner, mode
//!   `0600` or `0400`, one link, size cap), then a bounded read into a zeroizing buffer.
//!   One file policy decides this for reads, writes, the audit and the repair alike.
//! - Deleting a bot renames its directory to a trash name first; leftovers of
//!   interrupted writes and deletions are swept when the store is opened.
//! - [`SecretsStore::audit`] reports drift; [`SecretsStore::repair`] fixes modes (by
//!   `fchmod` on a checked descriptor) and leftovers, and only reports the rest.
//!
//! # The root's layout
//! - `<root>/<bot id>/<secret name>`: the secrets.
//! - `<root>/.root-id`: the root's identity ([`SecretsStore::root_id`]), one
//!   canonical UUID and a newline, `0600`; made at the first open (atomically: two
//!   first opens agree on one id), read with a secret's checks, never replaced. The
//!   registry records it for every bot whose secrets are here, so hosts sharing a
//!   registry know which of them holds a bot's secrets.
//! - `<root>/.lock`: the advisory lock of the operations that span the registry and
//!   this store ([`SecretsStore::lock`]).
//! - `<root>/.quarantine/`: orphan bot directories moved aside by a repair.
//! - `.tmp-…` and `.trash-…` names: short-lived entries of writes and deletions, swept
//!   at open when their process is gone.
//!
//! [`platform`] sources are read-only and have no id: they hold a service's own
//! credentials, never bots.

mod audit;
mod bot_dir;
mod error;
mod export;
mod fsutil;
mod lock;
pub mod platform;
mod root;
mod root_id;
mod secret_file;
mod store;
mod value;

pub use audit::{AuditReport, Finding, Issue};
pub use error::{Result, SecretsError};
pub use export::BotExport;
pub use lock::{LockMode, RootLock};
pub use store::{Owner, SecretMeta, SecretsOptions, SecretsStore};
pub use value::{SecretText, SecretValue, trim_trailing_newline};
