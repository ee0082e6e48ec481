//! [`BotRef`]: a bot named the way a person or a caller names it, by id or by name.

use std::fmt;
use std::str::FromStr;

use crate::{BotId, BotName, DomainError, shown};

/// A reference to a bot as a user types it: its id or its name. Names shaped like a
/// UUID are refused by [`BotName`], so a reference is never ambiguous.
///
/// ```
/// use botmaker_domain::BotRef;
///
/// # fn main() -> Result<(), botmaker_domain::DomainError> {
/// assert!(matches!("support-bot".parse::<BotRef>()?, BotRef::Name(_)));
/// assert!(matches!("0192f5a4-1b2c-7d3e-8f40-112233445566".parse::<BotRef>()?, BotRef::Id(_)));
/// assert!("../etc".parse::<BotRef>().is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BotRef {
    /// By id.
    Id(BotId),
    /// By name.
    Name(BotName),
}

impl BotRef {
    /// Parses an id (any case) or, failing that, a bot name.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if let Ok(id) = BotId::parse(s) {
            return Ok(Self::Id(id));
        }
        match BotName::parse(s) {
            Ok(name) => Ok(Self::Name(name)),
            Err(DomainError::InvalidBotName { .. }) => {
                Err(DomainError::InvalidBotRef { value: shown(s) })
            }
            Err(e) => Err(e),
        }
    }
}

impl FromStr for BotRef {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        Self::parse(s)
    }
}

impl fmt::Display for BotRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => id.fmt(f),
            Self::Name(name) => name.fmt(f),
        }
    }
}

impl From<BotId> for BotRef {
    fn from(id: BotId) -> Self {
        Self::Id(id)
    }
}

impl From<BotName> for BotRef {
    fn from(name: BotName) -> Self {
        Self::Name(name)
    }
}

impl From<&BotId> for BotRef {
    fn from(id: &BotId) -> Self {
        Self::Id(*id)
    }
}

impl From<&BotName> for BotRef {
    fn from(name: &BotName) -> Self {
        Self::Name(name.clone())
    }
}
