use std::fmt;
use std::str::FromStr;

use crate::{BotId, DomainError, shown};

/// The boilerplate every validated string newtype shares: `as_str`, `Display`,
/// `FromStr`, `TryFrom<&str>`, `AsRef<str>`, a `Debug` that shows the value.
macro_rules! string_newtype {
    ($ty:ident) => {
        impl $ty {
            /// The validated value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($ty), "({:?})"), self.0)
            }
        }
        impl FromStr for $ty {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl TryFrom<&str> for $ty {
            type Error = DomainError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A bot's unique, human-chosen name, usable later as a container name and a DNS
/// label (RFC 1123): 1 to 63 characters of lowercase ASCII letters, digits and `-`,
/// starting and ending with a letter or digit (`alpha`, `support-bot-2`).
///
/// This rules out path separators, `.`/`..`, whitespace, control characters, upper
/// case and anything over-long. A name shaped like a [`BotId`] is refused too, so a
/// reference given on a command line is never ambiguous between an id and a name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BotName(String);
string_newtype!(BotName);

impl BotName {
    /// The longest name accepted (a DNS label).
    pub const MAX_LEN: usize = 63;

    /// Validates a name.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let err = |reason| DomainError::InvalidBotName {
            value: shown(value),
            reason,
        };
        let bytes = value.as_bytes();
        if bytes.is_empty() {
            return Err(err("must not be empty"));
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(err("longer than 63 characters"));
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            return Err(err(
                "only lowercase letters a-z, digits 0-9 and '-' are allowed",
            ));
        }
        if bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
            return Err(err("must start and end with a letter or digit"));
        }
        // Only a value of a bot id's length can be one: checking the length first
        // spares every other name a failed parse (and the error it builds).
        if bytes.len() == BotId::LEN && BotId::parse(value).is_ok() {
            return Err(err("looks like a bot id; choose a name that is not a UUID"));
        }
        Ok(Self(value.to_owned()))
    }
}

/// An AI model name as the provider spells it (`gpt-4o`, `claude-sonnet-4-5`,
/// `llama3.1:8b`, `models/gemini-1.5-pro`, `m`). The list is open, so only the shape
/// is checked: 1 to 128 characters of ASCII letters, digits and `.`, `_`, `:`, `/`,
/// `-`, `@`, `+`, starting with a letter or digit; no `..`, no `//`, no trailing `/`.
/// A model name never becomes a path.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelName(String);
string_newtype!(ModelName);

impl ModelName {
    /// The longest model name accepted.
    pub const MAX_LEN: usize = 128;

    /// Validates a model name.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let err = |reason| DomainError::InvalidModelName {
            value: shown(value),
            reason,
        };
        let bytes = value.as_bytes();
        if bytes.is_empty() {
            return Err(err("must not be empty"));
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(err("longer than 128 characters"));
        }
        if !bytes[0].is_ascii_alphanumeric() {
            return Err(err("must start with a letter or digit"));
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/-@+".contains(b))
        {
            return Err(err(
                "only ASCII letters, digits and . _ : / - @ + are allowed",
            ));
        }
        if value.contains("..") || value.contains("//") || value.ends_with('/') {
            return Err(err("must not contain '..' or '//' or end with '/'"));
        }
        Ok(Self(value.to_owned()))
    }
}

/// The name of one secret of a bot (`ai_api_key`, `channel_token`), which is also its
/// file name in the secrets store: `[a-z0-9][a-z0-9_]{0,63}`. Never a path: no `/`,
/// no `.`, no leading `_` or `-`, so it can never be `.`/`..`, a hidden file, or one
/// of the store's own temporary names (which start with `.`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(String);
string_newtype!(SecretName);

impl SecretName {
    /// The longest secret name accepted.
    pub const MAX_LEN: usize = 64;

    /// The AI provider's API key (required unless the provider needs none: see
    /// [`AiProvider::requires_api_key`](crate::AiProvider::requires_api_key)).
    pub const AI_API_KEY: &'static str = "ai_api_key";
    /// The chat channel's token (required for every bot).
    pub const CHANNEL_TOKEN: &'static str = "channel_token";
    /// The chat channel's configuration, a JSON document (required for every bot).
    pub const CHANNEL_CONFIG: &'static str = "channel_config";
    /// Every secret name a bot can be required to have, in the order reports list
    /// them. Which of them a given bot needs depends on its provider:
    /// [`Bot::required_secrets`](crate::Bot::required_secrets).
    pub const REQUIRED: [&'static str; 3] =
        [Self::AI_API_KEY, Self::CHANNEL_TOKEN, Self::CHANNEL_CONFIG];

    /// Validates a secret name.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let err = |reason| DomainError::InvalidSecretName {
            value: shown(value),
            reason,
        };
        let bytes = value.as_bytes();
        if bytes.is_empty() {
            return Err(err("must not be empty"));
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(err("longer than 64 characters"));
        }
        if !(bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit()) {
            return Err(err("must start with a lowercase letter or digit"));
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        {
            return Err(err(
                "only lowercase letters a-z, digits 0-9 and '_' are allowed",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// [`SecretName::REQUIRED`], as values.
    pub fn required() -> [SecretName; 3] {
        Self::REQUIRED.map(|n| SecretName(n.to_owned()))
    }
}

/// The id or name of a bot's container, as the container runtime reports it
/// (a 64-digit hex id, or a name such as `botmaker-alpha_1`): 1 to 128 characters of
/// ASCII letters, digits, `_`, `.` and `-`, starting with a letter or digit.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerId(String);
string_newtype!(ContainerId);

impl ContainerId {
    /// The longest container id accepted.
    pub const MAX_LEN: usize = 128;

    /// Validates a container id.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let err = |reason| DomainError::InvalidContainerId {
            value: shown(value),
            reason,
        };
        let bytes = value.as_bytes();
        if bytes.is_empty() {
            return Err(err("must not be empty"));
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(err("longer than 128 characters"));
        }
        if !bytes[0].is_ascii_alphanumeric() {
            return Err(err("must start with a letter or digit"));
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(b))
        {
            return Err(err("only ASCII letters, digits and _ . - are allowed"));
        }
        Ok(Self(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_from_the_design() {
        for ok in ["alpha", "support-bot-2", "a", "0", &"a".repeat(63)] {
            assert_eq!(BotName::parse(ok).unwrap().as_str(), ok);
        }
        for ok in [
            "gpt-4o",
            "m",
            "claude-3-5-sonnet-20241022",
            "llama3.1:8b",
            "models/gemini-1.5-pro",
        ] {
            assert_eq!(ModelName::parse(ok).unwrap().as_str(), ok);
        }
        for ok in SecretName::REQUIRED {
            assert_eq!(SecretName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn uuid_shaped_names_are_refused() {
        let err = BotName::parse("0192f5a4-1b2c-7d3e-8f40-112233445566").unwrap_err();
        assert!(err.to_string().contains("looks like a bot id"), "{err}");
    }

    #[test]
    fn errors_name_the_value_shortened_and_escaped() {
        let err = BotName::parse("bad\nname").unwrap_err().to_string();
        assert!(err.contains("bad\\nname"), "{err}");
        let long = "x".repeat(10_000);
        let err = SecretName::parse(&long).unwrap_err().to_string();
        assert!(err.len() < 300 && err.contains("10000 chars"), "{err}");
    }
}
