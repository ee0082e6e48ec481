use crate::{
    AiProvider, BotId, BotName, BotStatus, ChannelType, ContainerId, ModelName, SecretName,
    SecretsRootId, Timestamp,
};

/// What it takes to register a bot. Every field is already validated by its type.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NewBot {
    /// The id the bot will have ([`NewBot::new`] makes a fresh one).
    pub id: BotId,
    /// Unique name.
    pub name: BotName,
    /// AI provider.
    pub ai_provider: AiProvider,
    /// Model of that provider.
    pub model: ModelName,
    /// Chat channel.
    pub channel_type: ChannelType,
    /// The secrets root that will hold its secrets ([`NewBot::new`] leaves it `None`;
    /// the facade records its own root with [`NewBot::with_secrets_root`]).
    #[cfg_attr(feature = "serde", serde(default))]
    pub secrets_root: Option<SecretsRootId>,
}

impl NewBot {
    /// A new bot with a freshly generated id ([`BotId::generate`]).
    pub fn new(
        name: BotName,
        ai_provider: AiProvider,
        model: ModelName,
        channel_type: ChannelType,
    ) -> Self {
        Self::with_id(BotId::generate(), name, ai_provider, model, channel_type)
    }

    /// A new bot with a given id (imports, tests, benchmarks).
    pub fn with_id(
        id: BotId,
        name: BotName,
        ai_provider: AiProvider,
        model: ModelName,
        channel_type: ChannelType,
    ) -> Self {
        Self {
            id,
            name,
            ai_provider,
            model,
            channel_type,
            secrets_root: None,
        }
    }

    /// This bot, placed in the secrets root `root`.
    #[must_use]
    pub fn with_secrets_root(self, root: SecretsRootId) -> Self {
        Self {
            secrets_root: Some(root),
            ..self
        }
    }

    /// The secrets this bot will need before it can start: see
    /// [`AiProvider::required_secrets`].
    pub fn required_secrets(&self) -> Vec<SecretName> {
        self.ai_provider.required_secrets()
    }
}

/// A registered bot, as a store returns it. It holds no secret: credentials live in
/// the secrets store, keyed by [`Bot::id`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Bot {
    /// Identity, also the name of its secrets directory.
    pub id: BotId,
    /// Unique name.
    pub name: BotName,
    /// AI provider.
    pub ai_provider: AiProvider,
    /// Model of that provider.
    pub model: ModelName,
    /// Chat channel.
    pub channel_type: ChannelType,
    /// The container running it, once one was started.
    pub container_id: Option<ContainerId>,
    /// Lifecycle status.
    pub status: BotStatus,
    /// When it was registered (UTC).
    pub created_at: Timestamp,
    /// When it last changed (UTC).
    pub updated_at: Timestamp,
    /// The secrets root that holds its secrets. `None` for a bot registered before
    /// schema V3 recorded placements ("legacy"), which every host treats as its own
    /// until a `migrate` or a doctor run adopts it into the root holding its directory.
    #[cfg_attr(feature = "serde", serde(default))]
    pub secrets_root: Option<SecretsRootId>,
}

impl Bot {
    /// The bot a store records for `new` at time `now`: status `created`, no container,
    /// the secrets root of `new`.
    pub fn from_new(new: NewBot, now: Timestamp) -> Self {
        Self {
            id: new.id,
            name: new.name,
            ai_provider: new.ai_provider,
            model: new.model,
            channel_type: new.channel_type,
            container_id: None,
            status: BotStatus::Created,
            created_at: now,
            updated_at: now,
            secrets_root: new.secrets_root,
        }
    }

    /// The secrets this bot needs before it can start, in [`SecretName::REQUIRED`]
    /// order. Which ones depends on its provider (see
    /// [`AiProvider::required_secrets`]): every bot needs `channel_token` and
    /// `channel_config`, and every provider but a self-hosted `ollama` also needs
    /// `ai_api_key`.
    pub fn required_secrets(&self) -> Vec<SecretName> {
        self.ai_provider.required_secrets()
    }
}
