use crate::BotStatus;

/// Why a value was refused. Messages name the offending value (escaped and shortened),
/// never a secret's contents: this crate never sees one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// Not a hyphenated UUID.
    #[error("invalid bot id \"{value}\": {reason}")]
    InvalidBotId {
        /// The rejected input, escaped and shortened.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not a secrets root id in its canonical form (lowercase hyphenated UUID).
    #[error("invalid secrets root id \"{value}\": {reason}")]
    InvalidSecretsRootId {
        /// The rejected input, escaped and shortened.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not a valid bot name.
    #[error("invalid bot name \"{value}\": {reason}")]
    InvalidBotName {
        /// The rejected input, escaped and shortened.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not a known AI provider.
    #[error("unknown ai provider \"{value}\" (known: {known})")]
    UnknownAiProvider {
        /// The rejected input, escaped and shortened.
        value: String,
        /// The accepted values, comma-separated.
        known: &'static str,
    },
    /// Not a valid model name.
    #[error("invalid model name \"{value}\": {reason}")]
    InvalidModelName {
        /// The rejected input, escaped and shortened.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not a known channel type.
    #[error("unknown channel type \"{value}\" (known: {known})")]
    UnknownChannelType {
        /// The rejected input, escaped and shortened.
        value: String,
        /// The accepted values, comma-separated.
        known: &'static str,
    },
    /// Not a known bot status.
    #[error("unknown bot status \"{value}\" (known: {known})")]
    UnknownStatus {
        /// The rejected input, escaped and shortened.
        value: String,
        /// The accepted values, comma-separated.
        known: &'static str,
    },
    /// The lifecycle does not allow this status change.
    #[error("invalid status transition from {from} to {to}")]
    InvalidTransition {
        /// The current status.
        from: BotStatus,
        /// The requested status.
        to: BotStatus,
    },
    /// Not a valid secret name.
    #[error("invalid secret name \"{value}\": {reason}")]
    InvalidSecretName {
        /// The rejected input, escaped and shortened.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A bot reference that is neither a bot id nor a valid bot name.
    #[error("\"{value}\" is neither a bot id nor a bot name")]
    InvalidBotRef {
        /// The rejected input, escaped and shortened.
        value: String,
    },
    /// Not a valid container id.
    #[error("invalid container id \"{value}\": {reason}")]
    InvalidContainerId {
        /// The rejected input, escaped and shortened.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not a timestamp this crate renders (`YYYY-MM-DDTHH:MM:SS.ffffffZ`) or out of range.
    #[error("invalid timestamp \"{value}\": {reason}")]
    InvalidTimestamp {
        /// The rejected input, escaped and shortened.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl DomainError {
    /// Whether retrying the same call can succeed. Never: a refused value stays refused.
    pub fn is_retryable(&self) -> bool {
        false
    }
}
