//! The crate's one error type.

use std::path::PathBuf;

use botmaker_domain::{BotId, SecretName};

/// Why a secrets operation failed.
///
/// Messages name the bot, the secret and the path involved, and say how to fix the
/// problem where there is a fix. They **never** contain a secret's value: no variant
/// holds one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// The bot has no such secret.
    #[error("secret {name} of bot {bot} not found at {path}")]
    NotFound {
        /// The bot.
        bot: BotId,
        /// The secret's name.
        name: SecretName,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The bot has no directory in the store.
    #[error("bot {bot} has no secrets directory at {path}")]
    BotNotFound {
        /// The bot.
        bot: BotId,
        /// Where its directory was looked for.
        path: PathBuf,
    },
    /// The value is larger than the store's size cap; nothing was changed.
    #[error("secret {name} of bot {bot} is {size} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// The bot.
        bot: BotId,
        /// The secret's name.
        name: SecretName,
        /// The size seen (for a file that grew while being read: at least this much).
        size: u64,
        /// The configured cap ([`SecretsOptions::max_secret_size`](crate::SecretsOptions)).
        max: usize,
    },
    /// A symbolic link where the store expects a file or a directory. Symlinks are
    /// never followed inside the store; remove it by hand after checking where it points.
    #[error("refusing symlink at {path}: symlinks are never followed inside the secrets store")]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Something other than a regular file (a directory, FIFO, socket, device) where a
    /// secret file is expected.
    #[error("{path} is a {kind}, expected a regular file")]
    NotRegularFile {
        /// The entry.
        path: PathBuf,
        /// What it is (`directory`, `fifo`, …).
        kind: &'static str,
    },
    /// Something other than a directory where a directory is expected.
    #[error("{path} is a {kind}, expected a directory")]
    NotADirectory {
        /// The entry.
        path: PathBuf,
        /// What it is (`regular file`, `fifo`, …).
        kind: &'static str,
    },
    /// A secret file or bot directory is open to group or other users.
    #[error("{path} has mode {mode:04o}, expected {expected:04o} (run the store's repair, or chmod {expected:o} {path})", path = path.display())]
    InsecureMode {
        /// The entry.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The permission bits it should have.
        expected: u32,
    },
    /// A secret file or bot directory is owned by another user.
    #[error("{path} is owned by uid {uid}, expected uid {expected} (chown {expected} {path})", path = path.display())]
    WrongOwner {
        /// The entry.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// The owner the store expects.
        expected: u32,
    },
    /// A secret file has more than one hard link, so its contents are reachable by
    /// another name (possibly outside the store).
    #[error("{path} has {nlink} hard links, expected 1: another name can reach this file")]
    HardLinked {
        /// The file.
        path: PathBuf,
        /// Its link count.
        nlink: u64,
    },
    /// The store's root directory fails the StrictModes check.
    #[error("insecure secrets root {path}: {reason} (fix: {fix})", path = path.display())]
    InsecureRoot {
        /// The root directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// A command or step that fixes it.
        fix: String,
    },
    /// A secret read as text is not UTF-8.
    #[error("secret {name} of bot {bot} is not valid UTF-8")]
    NotUtf8 {
        /// The bot.
        bot: BotId,
        /// The secret's name.
        name: SecretName,
    },
    /// An entry changed under the store while it was working on it (another process
    /// is modifying the store); nothing outside the store was touched.
    #[error("{path} changed during the operation; another process is modifying the secrets store")]
    Raced {
        /// The entry.
        path: PathBuf,
    },
    /// A platform secret source is not configured (an environment variable is unset).
    #[error("platform secrets not configured: {what}")]
    NotConfigured {
        /// What is missing, e.g. `CREDENTIALS_DIRECTORY is not set`.
        what: String,
    },
    /// A name given for a platform-mounted secret is not a single plain file name.
    #[error("invalid platform secret name \"{name}\": {reason}")]
    InvalidName {
        /// The rejected name, escaped and shortened.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A platform-mounted secret does not exist.
    #[error("no platform secret at {path}")]
    PlatformNotFound {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A platform-mounted secret is larger than the size cap.
    #[error("{path} is {size} bytes, over the limit of {max} bytes", path = path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The size seen (at least this much, if it grew while being read).
        size: u64,
        /// The cap.
        max: usize,
    },
    /// A platform-mounted secret resolves (through symlinks) outside its mount root.
    #[error("{path} resolves outside its mount root; refusing to follow it")]
    Escapes {
        /// The entry.
        path: PathBuf,
    },
    /// A system call failed.
    #[error("cannot {op} {path}: {source}", path = path.display())]
    Io {
        /// What was being done (`open`, `rename`, `fsync`, …).
        op: &'static str,
        /// The path involved (for display; the operation itself is descriptor-relative).
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl SecretsError {
    pub(crate) fn io(op: &'static str, path: PathBuf, errno: nix::errno::Errno) -> Self {
        Self::Io {
            op,
            path,
            source: std::io::Error::from(errno),
        }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = SecretsError> = std::result::Result<T, E>;
