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
    /// A secret file's permission bits are not an accepted mode (`0600` or `0400`),
    /// or a bot directory is writable by group or other users.
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
    /// The secrets root's id file (`<root>/.root-id`) does not hold one secrets root
    /// id and a newline. It is never replaced: the registry may record that id for
    /// the bots whose secrets are in this root.
    #[error(
        "invalid secrets root id file {path}: {reason} (it is never replaced: restore it \
         from a backup of this root; the registry records this id for the bots whose \
         secrets are here)",
        path = path.display()
    )]
    InvalidRootId {
        /// The id file.
        path: PathBuf,
        /// What is wrong with its content.
        reason: String,
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
    /// Whether retrying the same call, unchanged, can succeed.
    ///
    /// - [`Raced`](Self::Raced): yes. Another process changed an entry while the
    ///   operation ran (a bot directory deleted under a write, an entry swapped);
    ///   the next attempt sees the new state.
    /// - [`Io`](Self::Io): only for a transient system error: interrupted (`EINTR`),
    ///   would block (`EAGAIN`), busy (`EBUSY`), timed out (`ETIMEDOUT`), or out of
    ///   file descriptors (`EMFILE`, `ENFILE`), which others release. Not for a full
    ///   disk or quota (`ENOSPC`, `EDQUOT`), a refused permission, a read-only
    ///   filesystem or an I/O fault: those need an operator.
    /// - Every other variant: no. Not found ([`NotFound`](Self::NotFound),
    ///   [`BotNotFound`](Self::BotNotFound), [`PlatformNotFound`](Self::PlatformNotFound))
    ///   stays so until someone writes it; a refused input ([`TooLarge`](Self::TooLarge),
    ///   [`NotUtf8`](Self::NotUtf8), [`InvalidName`](Self::InvalidName),
    ///   [`FileTooLarge`](Self::FileTooLarge), [`NotConfigured`](Self::NotConfigured))
    ///   stays refused; a refused entry ([`Symlink`](Self::Symlink),
    ///   [`NotRegularFile`](Self::NotRegularFile), [`NotADirectory`](Self::NotADirectory),
    ///   [`InsecureMode`](Self::InsecureMode), [`WrongOwner`](Self::WrongOwner),
    ///   [`HardLinked`](Self::HardLinked), [`InsecureRoot`](Self::InsecureRoot),
    ///   [`Escapes`](Self::Escapes)) stays refused until it is fixed by hand.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Raced { .. } => true,
            Self::Io { source, .. } => io_is_transient(source),
            Self::NotFound { .. }
            | Self::BotNotFound { .. }
            | Self::TooLarge { .. }
            | Self::Symlink { .. }
            | Self::NotRegularFile { .. }
            | Self::NotADirectory { .. }
            | Self::InsecureMode { .. }
            | Self::WrongOwner { .. }
            | Self::HardLinked { .. }
            | Self::InsecureRoot { .. }
            | Self::NotUtf8 { .. }
            | Self::NotConfigured { .. }
            | Self::InvalidName { .. }
            | Self::PlatformNotFound { .. }
            | Self::FileTooLarge { .. }
            | Self::Escapes { .. }
            | Self::InvalidRootId { .. } => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: PathBuf, errno: nix::errno::Errno) -> Self {
        Self::Io {
            op,
            path,
            source: std::io::Error::from(errno),
        }
    }
}

/// Whether an operating system error may clear by itself (see
/// [`SecretsError::is_retryable`]).
fn io_is_transient(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    match e.raw_os_error() {
        Some(code) => matches!(
            Errno::from_raw(code),
            Errno::EINTR
                | Errno::EAGAIN
                | Errno::EBUSY
                | Errno::ETIMEDOUT
                | Errno::EMFILE
                | Errno::ENFILE
        ),
        None => matches!(
            e.kind(),
            std::io::ErrorKind::Interrupted
                | std::io::ErrorKind::WouldBlock
                | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = SecretsError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn io(errno: nix::errno::Errno) -> SecretsError {
        SecretsError::io("open", PathBuf::from("/s/x"), errno)
    }

    #[test]
    fn only_races_and_transient_system_errors_are_retryable() {
        use nix::errno::Errno;
        let bot: BotId = "0192f5a4-1b2c-7d3e-8f40-112233445566".parse().unwrap();
        let name = SecretName::parse("ai_api_key").unwrap();
        let path = PathBuf::from("/s/x");
        assert!(SecretsError::Raced { path: path.clone() }.is_retryable());
        for e in [
            Errno::EINTR,
            Errno::EAGAIN,
            Errno::EBUSY,
            Errno::ETIMEDOUT,
            Errno::EMFILE,
            Errno::ENFILE,
        ] {
            assert!(io(e).is_retryable(), "{e}");
        }
        for e in [
            Errno::ENOSPC,
            Errno::EDQUOT,
            Errno::EACCES,
            Errno::EPERM,
            Errno::EROFS,
            Errno::EIO,
            Errno::ENOENT,
            Errno::EEXIST,
        ] {
            assert!(!io(e).is_retryable(), "{e}");
        }
        let kind_only = |kind| SecretsError::Io {
            op: "read",
            path: path.clone(),
            source: std::io::Error::from(kind),
        };
        assert!(kind_only(std::io::ErrorKind::Interrupted).is_retryable());
        assert!(!kind_only(std::io::ErrorKind::UnexpectedEof).is_retryable());
        let refused = [
            SecretsError::NotFound {
                bot,
                name: name.clone(),
                path: path.clone(),
            },
            SecretsError::BotNotFound {
                bot,
                path: path.clone(),
            },
            SecretsError::TooLarge {
                bot,
                name: name.clone(),
                size: 2,
                max: 1,
            },
            SecretsError::Symlink { path: path.clone() },
            SecretsError::NotRegularFile {
                path: path.clone(),
                kind: "fifo",
            },
            SecretsError::NotADirectory {
                path: path.clone(),
                kind: "regular file",
            },
            SecretsError::InsecureMode {
                path: path.clone(),
                mode: 0o644,
                expected: 0o600,
            },
            SecretsError::WrongOwner {
                path: path.clone(),
                uid: 1,
                expected: 0,
            },
            SecretsError::HardLinked {
                path: path.clone(),
                nlink: 2,
            },
            SecretsError::InsecureRoot {
                path: path.clone(),
                reason: "mode 0777 is world-writable".to_owned(),
                fix: "chmod 700 /s".to_owned(),
            },
            SecretsError::NotUtf8 { bot, name },
            SecretsError::NotConfigured {
                what: "CREDENTIALS_DIRECTORY is not set".to_owned(),
            },
            SecretsError::InvalidName {
                name: "..".to_owned(),
                reason: "not a plain file name",
            },
            SecretsError::PlatformNotFound { path: path.clone() },
            SecretsError::FileTooLarge {
                path: path.clone(),
                size: 2,
                max: 1,
            },
            SecretsError::Escapes { path },
        ];
        for e in refused {
            assert!(!e.is_retryable(), "{e}");
        }
    }
}
