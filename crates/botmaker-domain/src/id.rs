use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::{DomainError, shown};

/// A bot's identity: a UUID, rendered lowercase and hyphenated
/// (`0192f5a4-1b2c-7d3e-8f40-112233445566`), which is also the name of the bot's
/// directory in the secrets store.
///
/// Parsing accepts exactly the hyphenated form (36 characters), in any case; the
/// simple, braced and URN forms are refused so that every id has one spelling.
///
/// New ids are **UUIDv7** ([`BotId::generate`]): the leading 48 bits are the creation
/// time in milliseconds, so ids made one after another sort together and land next to
/// each other in the primary-key B-tree (inserts append instead of splitting random
/// pages), and an id tells roughly when a bot was made, which helps operators reading
/// logs. The remaining 74 bits are random, so ids stay unguessable enough for
/// identifiers (they are not secrets). Any UUID version is accepted when parsing, so
/// ids made elsewhere (v4) work as well.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BotId(Uuid);

impl BotId {
    /// The length of the canonical rendering.
    pub const LEN: usize = 36;

    /// A new UUIDv7 id (reads the system clock and the OS random source).
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an existing UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID inside.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// Parses the hyphenated form, in any case.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        // The fast path: of the forms uuid accepts, only the hyphenated one has 36
        // characters, and its table-driven parser checks the same shape as the loop
        // below (hyphens at 8, 13, 18 and 23, hex digits in any case elsewhere)
        // without a data-dependent branch per digit. The loop below runs only to
        // say what is wrong with a value that fails.
        if value.len() == Self::LEN
            && let Ok(uuid) = Uuid::try_parse(value)
        {
            return Ok(Self(uuid));
        }
        let err = |reason| DomainError::InvalidBotId {
            value: shown(value),
            reason,
        };
        let bytes = value.as_bytes();
        if bytes.len() != Self::LEN {
            return Err(err("expected 36 characters: 8-4-4-4-12 hexadecimal digits"));
        }
        for (i, b) in bytes.iter().enumerate() {
            let ok = if matches!(i, 8 | 13 | 18 | 23) {
                *b == b'-'
            } else {
                b.is_ascii_hexdigit()
            };
            if !ok {
                return Err(err(
                    "expected 8-4-4-4-12 hexadecimal digits separated by '-'",
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

impl fmt::Display for BotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for BotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BotId({self})")
    }
}

impl FromStr for BotId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for BotId {
    type Error = DomainError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<Uuid> for BotId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_lowercase_and_parses_any_case() {
        let id = BotId::parse("0192F5A4-1B2C-7D3E-8F40-112233445566").unwrap();
        assert_eq!(id.to_string(), "0192f5a4-1b2c-7d3e-8f40-112233445566");
        let mut buf = [0u8; BotId::LEN];
        assert_eq!(id.encode(&mut buf), "0192f5a4-1b2c-7d3e-8f40-112233445566");
    }

    #[test]
    fn refuses_other_forms() {
        for bad in [
            "",
            "0192f5a41b2c7d3e8f40112233445566",
            "{0192f5a4-1b2c-7d3e-8f40-112233445566}",
            "urn:uuid:0192f5a4-1b2c-7d3e-8f40-112233445566",
            "0192f5a4-1b2c-7d3e-8f40-11223344556g",
            "0192f5a4+1b2c-7d3e-8f40-112233445566",
            "../../../../../../../../../../etc/pass",
        ] {
            let err = BotId::parse(bad).unwrap_err();
            assert!(
                matches!(err, DomainError::InvalidBotId { .. }),
                "{bad}: {err}"
            );
        }
    }

    /// The reason of each refusal says what is wrong: the length, or the shape (also
    /// when no position is right, and when every hex digit is but no hyphen is).
    #[test]
    fn each_refusal_gives_its_reason() {
        let reason = |s: &str| match BotId::parse(s) {
            Err(DomainError::InvalidBotId { reason, .. }) => reason,
            other => panic!("{s:?}: {other:?}"),
        };
        for short in ["", "0", "0192f5a4-1b2c-7d3e-8f40-11223344556"] {
            assert_eq!(
                reason(short),
                "expected 36 characters: 8-4-4-4-12 hexadecimal digits",
                "{short:?}"
            );
        }
        for shape in [
            "g".repeat(36),
            "0192f5a4x1b2cx7d3ex8f40x112233445566".to_owned(),
            "0192f5a4-1b2c-7d3e-8f40-11223344556g".to_owned(),
        ] {
            assert_eq!(
                reason(&shape),
                "expected 8-4-4-4-12 hexadecimal digits separated by '-'",
                "{shape:?}"
            );
        }
    }

    #[test]
    fn debug_shows_the_canonical_id() {
        let id = BotId::parse("0192F5A4-1B2C-7D3E-8F40-112233445566").unwrap();
        assert_eq!(
            format!("{id:?}"),
            "BotId(0192f5a4-1b2c-7d3e-8f40-112233445566)"
        );
    }

    #[test]
    fn the_fast_path_accepts_exactly_the_shape_the_loop_accepts() {
        let good = "0192f5a4-1b2c-7d3e-8f40-112233445566";
        let mut cases = vec![good.to_owned(), good.to_uppercase()];
        // Every position with every byte class: hex digits of both cases, the
        // hyphen, and bytes around them.
        for i in 0..BotId::LEN {
            for b in [
                b'0', b'9', b'a', b'f', b'A', b'F', b'g', b'G', b'-', b'/', b':', b'@',
            ] {
                let mut v = good.as_bytes().to_vec();
                v[i] = b;
                cases.push(String::from_utf8(v).unwrap());
            }
        }
        for case in cases {
            let by_loop = case.len() == BotId::LEN
                && case.bytes().enumerate().all(|(i, b)| {
                    if matches!(i, 8 | 13 | 18 | 23) {
                        b == b'-'
                    } else {
                        b.is_ascii_hexdigit()
                    }
                });
            assert_eq!(BotId::parse(&case).is_ok(), by_loop, "{case}");
        }
    }

    #[test]
    fn generated_ids_are_v7_and_increase() {
        let a = BotId::generate();
        let b = BotId::generate();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a.as_uuid().as_bytes()[..6] <= b.as_uuid().as_bytes()[..6]);
    }
}
