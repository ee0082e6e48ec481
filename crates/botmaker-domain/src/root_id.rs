use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::{DomainError, shown};

/// The identity of a secrets root: a UUID in its canonical rendering, lowercase and
/// hyphenated (`0192f5a4-1b2c-4d3e-8f40-112233445566`).
///
/// Every secrets root keeps its id in a file of its own (see `botmaker-secrets`), and
/// the registry records, for each bot, the id of the root that holds its secrets
/// ([`Bot::secrets_root`](crate::Bot::secrets_root)). Hosts sharing one registry
/// (PostgreSQL) then know which of them holds a bot's secrets.
///
/// Unlike [`BotId`](crate::BotId), parsing accepts **only** the canonical form (36
/// characters, lowercase hexadecimal digits, hyphens at 8, 13, 18 and 23): the value
/// is only ever written by this code, to a file and a database column whose `CHECK`
/// requires lowercase, so any other spelling means the value was not written by it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretsRootId(Uuid);

impl SecretsRootId {
    /// The length of the canonical rendering.
    pub const LEN: usize = 36;

    /// A new random id (UUIDv4, from the OS random source).
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Wraps an existing UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID inside.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// Parses the canonical form: lowercase, hyphenated, 36 characters.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let err = |reason| DomainError::InvalidSecretsRootId {
            value: shown(value),
            reason,
        };
        let bytes = value.as_bytes();
        if bytes.len() != Self::LEN {
            return Err(err(
                "expected 36 characters: 8-4-4-4-12 lowercase hexadecimal digits",
            ));
        }
        for (i, b) in bytes.iter().enumerate() {
            let ok = if matches!(i, 8 | 13 | 18 | 23) {
                *b == b'-'
            } else {
                matches!(b, b'0'..=b'9' | b'a'..=b'f')
            };
            if !ok {
                return Err(err(
                    "expected 8-4-4-4-12 lowercase hexadecimal digits separated by '-'",
                ));
            }
        }
        Uuid::try_parse(value)
            .map(Self)
            .map_err(|_| err("not a UUID"))
    }

    /// The canonical rendering without allocating.
    pub fn encode<'a>(&self, buf: &'a mut [u8; Self::LEN]) -> &'a str {
        self.0.hyphenated().encode_lower(buf)
    }
}

impl fmt::Display for SecretsRootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for SecretsRootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretsRootId({self})")
    }
}

impl FromStr for SecretsRootId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for SecretsRootId {
    type Error = DomainError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trips_and_other_spellings_are_refused() {
        let s = "0192f5a4-1b2c-4d3e-8f40-112233445566";
        let id = SecretsRootId::parse(s).unwrap();
        assert_eq!(id.to_string(), s);
        let mut buf = [0u8; SecretsRootId::LEN];
        assert_eq!(id.encode(&mut buf), s);
        assert_eq!(format!("{id:?}"), format!("SecretsRootId({s})"));
        for bad in [
            "",
            "0192F5A4-1B2C-4D3E-8F40-112233445566",
            "0192f5a41b2c4d3e8f40112233445566",
            "{0192f5a4-1b2c-4d3e-8f40-112233445566}",
            "0192f5a4-1b2c-4d3e-8f40-11223344556g",
            "0192f5a4-1b2c-4d3e-8f40-112233445566\n",
        ] {
            let err = SecretsRootId::parse(bad).unwrap_err();
            assert!(
                matches!(err, DomainError::InvalidSecretsRootId { .. }),
                "{bad:?}: {err}"
            );
            assert!(err.to_string().contains("secrets root id"), "{err}");
        }
    }

    #[test]
    fn generated_ids_differ_and_render_canonically() {
        let (a, b) = (SecretsRootId::generate(), SecretsRootId::generate());
        assert_ne!(a, b);
        assert_eq!(SecretsRootId::parse(&a.to_string()).unwrap(), a);
    }
}
