use std::fmt;
use std::str::FromStr;

use crate::{DomainError, SecretName, shown};

/// A closed enumeration spelled as lowercase strings: the enum, `ALL`, `as_str`,
/// `Display`, `FromStr` and `TryFrom<&str>`, from one list so they cannot drift.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $ty:ident, $err:ident, $known:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $s:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        #[non_exhaustive]
        pub enum $ty {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The canonical lowercase spelling (also the database value).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $s,)+
                }
            }

            /// Parses the canonical spelling (exact, lowercase).
            pub fn parse(value: &str) -> Result<Self, DomainError> {
                match value {
                    $($s => Ok($ty::$variant),)+
                    _ => Err(DomainError::$err { value: shown(value), known: $known }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
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
    };
}

string_enum! {
    /// The AI provider a bot talks to. See the crate docs for how to add one.
    AiProvider, UnknownAiProvider, "openai, anthropic, google, ollama, mistral, azure-openai" {
        /// OpenAI.
        OpenAi = "openai",
        /// Anthropic.
        Anthropic = "anthropic",
        /// Google (Gemini).
        Google = "google",
        /// A self-hosted Ollama server.
        Ollama = "ollama",
        /// Mistral AI.
        Mistral = "mistral",
        /// Azure OpenAI Service.
        AzureOpenAi = "azure-openai",
    }
}

impl AiProvider {
    /// Whether a bot of this provider needs an `ai_api_key` secret. Every hosted
    /// provider authenticates with a key; a self-hosted [`AiProvider::Ollama`] server
    /// has none, so requiring one would leave such a bot reported as incomplete
    /// forever, for a secret it cannot have.
    pub const fn requires_api_key(self) -> bool {
        !matches!(self, Self::Ollama)
    }

    /// The secrets a bot of this provider needs before it can start, in
    /// [`SecretName::REQUIRED`] order: `ai_api_key` when
    /// [`requires_api_key`](Self::requires_api_key), then `channel_token` and
    /// `channel_config`, which every channel needs.
    pub fn required_secrets(self) -> Vec<SecretName> {
        SecretName::required()
            .into_iter()
            .filter(|name| self.requires_api_key() || name.as_str() != SecretName::AI_API_KEY)
            .collect()
    }
}

string_enum! {
    /// The chat channel a bot is connected to. See the crate docs for how to add one.
    ChannelType, UnknownChannelType, "slack, discord, telegram, whatsapp, matrix, teams" {
        /// Slack.
        Slack = "slack",
        /// Discord.
        Discord = "discord",
        /// Telegram.
        Telegram = "telegram",
        /// WhatsApp.
        WhatsApp = "whatsapp",
        /// Matrix.
        Matrix = "matrix",
        /// Microsoft Teams.
        Teams = "teams",
    }
}

string_enum! {
    /// Where a bot is in its lifecycle.
    ///
    /// Allowed transitions ([`BotStatus::can_transition_to`]):
    ///
    /// | from | to |
    /// |---|---|
    /// | `created` | `starting` |
    /// | `starting` | `running` |
    /// | `running` | `stopping` |
    /// | `stopping` | `stopped` |
    /// | `stopped` | `starting` |
    /// | `failed` | `starting` |
    /// | any | `failed` |
    ///
    /// "Any status may go to `failed`" includes `failed` itself, so marking a bot
    /// failed twice is not an error. Every other change, including staying in the same
    /// status, is refused.
    BotStatus, UnknownStatus, "created, starting, running, stopping, stopped, failed" {
        /// Registered, never started.
        Created = "created",
        /// Its container is being started.
        Starting = "starting",
        /// Its container runs.
        Running = "running",
        /// Its container is being stopped.
        Stopping = "stopping",
        /// Stopped on purpose.
        Stopped = "stopped",
        /// Something went wrong; it can be started again.
        Failed = "failed",
    }
}

impl BotStatus {
    /// Whether the lifecycle allows going from `self` to `to`.
    pub const fn can_transition_to(self, to: BotStatus) -> bool {
        use BotStatus::{Created, Failed, Running, Starting, Stopped, Stopping};
        matches!(
            (self, to),
            (_, Failed)
                | (Created | Stopped | Failed, Starting)
                | (Starting, Running)
                | (Running, Stopping)
                | (Stopping, Stopped)
        )
    }

    /// `Ok(to)` when the lifecycle allows the change, else
    /// [`DomainError::InvalidTransition`].
    pub fn transition(self, to: BotStatus) -> Result<BotStatus, DomainError> {
        if self.can_transition_to(to) {
            Ok(to)
        } else {
            Err(DomainError::InvalidTransition { from: self, to })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BotStatus::*;

    #[test]
    fn the_transition_table_is_exactly_the_design() {
        let allowed = [
            (Created, Starting),
            (Starting, Running),
            (Running, Stopping),
            (Stopping, Stopped),
            (Stopped, Starting),
            (Failed, Starting),
        ];
        for &from in BotStatus::ALL {
            for &to in BotStatus::ALL {
                let expected = to == Failed || allowed.contains(&(from, to));
                assert_eq!(from.can_transition_to(to), expected, "{from} -> {to}");
                assert_eq!(from.transition(to).is_ok(), expected);
            }
        }
    }

    #[test]
    fn errors_name_the_value_and_the_choices() {
        let err = AiProvider::parse("OpenAI").unwrap_err().to_string();
        assert!(
            err.contains("\"OpenAI\"") && err.contains("openai, anthropic"),
            "{err}"
        );
        let err = Created.transition(Running).unwrap_err().to_string();
        assert_eq!(err, "invalid status transition from created to running");
    }
}
