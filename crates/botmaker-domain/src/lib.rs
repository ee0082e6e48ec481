//! Validated domain types of botmaker. **This crate does no I/O.**
//!
//! Every value that crosses a boundary of the system (a CLI argument, a database
//! column, a file name in the secrets directory) is parsed into one of these types
//! first. Each type is built only through [`FromStr`](std::str::FromStr) /
//! [`TryFrom`], and its [`Display`](std::fmt::Display) renders the canonical form that
//! parses back to the same value.
//!
//! ```
//! use botmaker_domain::{AiProvider, BotId, BotName, BotStatus, ChannelType, ModelName, NewBot, SecretName};
//!
//! # fn main() -> Result<(), botmaker_domain::DomainError> {
//! let bot = NewBot::new(
//!     "support-bot-2".parse::<BotName>()?,
//!     "anthropic".parse::<AiProvider>()?,
//!     "claude-sonnet-4".parse::<ModelName>()?,
//!     "slack".parse::<ChannelType>()?,
//! );
//! assert_eq!(bot.name.as_str(), "support-bot-2");
//!
//! // Ids parse in any case and render lowercase.
//! let id: BotId = "0192F5A4-1B2C-7D3E-8F40-112233445566".parse()?;
//! assert_eq!(id.to_string(), "0192f5a4-1b2c-7d3e-8f40-112233445566");
//!
//! // Bad input is refused with an error that names it.
//! let err = "../etc".parse::<SecretName>().unwrap_err();
//! assert!(err.to_string().contains("../etc"));
//!
//! // The lifecycle is encoded: a created bot cannot jump to running.
//! assert!(BotStatus::Created.transition(BotStatus::Running).is_err());
//! assert_eq!(BotStatus::Created.transition(BotStatus::Starting)?, BotStatus::Starting);
//! # Ok(())
//! # }
//! ```
//!
//! # Adding a provider, channel type or status
//! [`AiProvider`], [`ChannelType`] and [`BotStatus`] are closed, `#[non_exhaustive]`
//! enums, and the SQLite schema pins the same lists with `CHECK` constraints. Adding a
//! value is therefore a schema change: add the variant here (with its string in the
//! `ALL` list), and ship a new migration in `botmaker-sqlite` that rebuilds the `bots`
//! table with the widened `CHECK`. Older code then refuses the upgraded database as
//! "newer than the code" instead of failing on a value it cannot decode. Model names
//! are open (providers publish new ones daily) and only validated for shape.
//!
//! # Required secrets
//! Which secrets a bot needs before it can start is a rule of the domain, not of a
//! store: [`Bot::required_secrets`] (the same on [`NewBot`] and [`AiProvider`]). Every
//! bot needs `channel_token` and `channel_config`; every provider but `ollama` also
//! needs `ai_api_key`. A self-hosted Ollama server has no API key, so an `ollama` bot
//! is complete without one.
//!
//! ```
//! use botmaker_domain::AiProvider;
//!
//! let names = |p: AiProvider| p.required_secrets().iter().map(|n| n.to_string()).collect::<Vec<_>>();
//! assert_eq!(names(AiProvider::OpenAi), ["ai_api_key", "channel_token", "channel_config"]);
//! assert_eq!(names(AiProvider::Ollama), ["channel_token", "channel_config"]);
//! ```
//!
//! # Features
//! - `serde`: `Serialize`/`Deserialize` for every type, as its canonical string
//!   (and [`Bot`] as an object with those strings).

mod bot;
mod bot_ref;
mod enums;
mod error;
mod id;
mod names;
pub mod observe;
pub mod repository;
mod root_id;
#[cfg(feature = "serde")]
mod serde_impls;
mod time;

pub use bot::{Bot, NewBot};
pub use bot_ref::BotRef;
pub use enums::{AiProvider, BotStatus, ChannelType};
pub use error::DomainError;
pub use id::BotId;
pub use names::{BotName, ContainerId, ModelName, SecretName};
pub use repository::{BotRepository, Clock, MemoryRepository, PageCursor, RepoError};
pub use root_id::SecretsRootId;
pub use time::Timestamp;

/// Renders a rejected input for an error message: escaped (control characters become
/// visible) and cut to a readable length, so that a 10 000-character input does not
/// produce a 10 000-character message.
pub(crate) fn shown(value: &str) -> String {
    use std::fmt::Write as _;
    const MAX_CHARS: usize = 80;
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == MAX_CHARS {
            let _ = write!(out, "…({} chars)", value.chars().count());
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}
