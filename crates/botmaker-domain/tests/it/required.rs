//! The required-secrets rule: which secrets a bot needs, by provider.

use botmaker_domain::{AiProvider, Bot, NewBot, SecretName, Timestamp};

fn bot_of(provider: AiProvider) -> Bot {
    let new = NewBot::new(
        "alpha".parse().unwrap(),
        provider,
        "m".parse().unwrap(),
        "slack".parse().unwrap(),
    );
    Bot::from_new(new, Timestamp::UNIX_EPOCH)
}

/// A property over every provider, so a provider added later is covered without
/// touching this test: the channel secrets are always required, the API key exactly
/// when the provider says it needs one, and only `ollama` says it does not.
#[test]
fn every_provider_requires_the_channel_secrets_and_all_but_ollama_an_api_key() {
    for &provider in AiProvider::ALL {
        let bot = bot_of(provider);
        let required: Vec<String> = bot
            .required_secrets()
            .iter()
            .map(ToString::to_string)
            .collect();
        let needs_key = provider != AiProvider::Ollama;
        assert_eq!(provider.requires_api_key(), needs_key, "{provider}");
        let mut expected = Vec::new();
        if needs_key {
            expected.push(SecretName::AI_API_KEY);
        }
        expected.extend([SecretName::CHANNEL_TOKEN, SecretName::CHANNEL_CONFIG]);
        assert_eq!(required, expected, "{provider}");
        // NewBot, Bot and AiProvider agree, and every name is one of REQUIRED.
        let new = NewBot::new(
            bot.name.clone(),
            provider,
            bot.model.clone(),
            bot.channel_type,
        );
        assert_eq!(new.required_secrets(), bot.required_secrets(), "{provider}");
        assert_eq!(
            provider.required_secrets(),
            bot.required_secrets(),
            "{provider}"
        );
        assert!(
            required
                .iter()
                .all(|n| SecretName::REQUIRED.contains(&n.as_str())),
            "{provider}"
        );
    }
}
