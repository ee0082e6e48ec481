//! Every accepted name is one plain path component, and lands right beneath the bot.

use botmaker_domain::{BotId, SecretName};
use botmaker_testkit::names::{near_valid, oracle};
use proptest::prelude::*;

use crate::common::{Fixture, entries};

fn is_plain_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
}

/// Traversal attempts and other hostile spellings: all refused by both parsers.
fn corpus() -> Vec<String> {
    let mut v: Vec<String> = [
        "..",
        "../x",
        "../../etc/passwd",
        "a/b",
        "/etc/passwd",
        ".",
        "",
        "%2e%2e",
        "%2e%2e%2fetc",
        "..%2f",
        "a\0b",
        "\0",
        "ai_api_key\0",
        "ai_api_key/",
        "./ai_api_key",
        ".tmp-1-2-3",
        ".trash-x",
        ".quarantine",
        "a\nb",
        "a\tb",
        "\u{7f}",
        "AI_API_KEY",
        "ai-api-key",
        "ai api key",
        "ａｉ",             // fullwidth lookalikes
        "ai\u{2215}key",    // division slash
        "ai\u{ff0f}key",    // fullwidth solidus
        "\u{2024}\u{2024}", // one-dot leaders
        "a\u{200b}b",       // zero-width space
        "_leading",
        "~",
        "\\..\\x",
        "C:\\x",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    v.push("a".repeat(65));
    v.push("a".repeat(10_000));
    v.push("../".repeat(3_000));
    v
}

#[test]
fn corpus_is_refused_by_both_parsers() {
    for bad in corpus() {
        assert!(
            SecretName::parse(&bad).is_err(),
            "secret name accepted: {bad:?}"
        );
        assert!(BotId::parse(&bad).is_err(), "bot id accepted: {bad:?}");
    }
}

fn assert_lands_beneath(fx: &Fixture, bot: &BotId, name: &SecretName) {
    fx.store.write(bot, name, b"v").unwrap();
    assert_eq!(entries(&fx.root), [".root-id".to_owned(), bot.to_string()]);
    let dir = fx.bot_dir(bot);
    assert!(entries(&dir).contains(&name.as_str().to_owned()));
    let meta = std::fs::symlink_metadata(dir.join(name.as_str())).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(std::fs::read(dir.join(name.as_str())).unwrap(), b"v");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn accepted_secret_names_are_plain_components(s in prop_oneof![
        3 => near_valid("a-z0-9_./\\-", SecretName::MAX_LEN),
        1 => "\\PC{0,80}",
    ]) {
        match SecretName::parse(&s) {
            Ok(name) => {
                prop_assert!(oracle::secret_name(&s), "accepted: {:?}", s);
                prop_assert!(is_plain_component(name.as_str()));
                prop_assert_eq!(name.as_str(), s.as_str());
                prop_assert!(!name.as_str().starts_with('.'));
            }
            Err(e) => prop_assert!(!oracle::secret_name(&s), "refused: {:?} ({})", s, e),
        }
    }

    #[test]
    fn accepted_bot_ids_are_plain_components(
        bits in any::<u128>(),
        s in near_valid("0-9a-fA-F-", BotId::LEN),
        upper in any::<bool>(),
    ) {
        let mut text = uuid_text(bits);
        if upper {
            text = text.to_uppercase();
        }
        let id = BotId::parse(&text).unwrap();
        let canonical = id.to_string();
        prop_assert!(is_plain_component(&canonical));
        prop_assert_eq!(canonical.len(), 36);
        prop_assert_eq!(&canonical, &text.to_lowercase());
        match BotId::parse(&s) {
            Ok(id) => {
                prop_assert!(oracle::bot_id(&s), "accepted: {:?}", s);
                prop_assert!(is_plain_component(&id.to_string()));
                prop_assert_eq!(id.to_string(), s.to_lowercase());
            }
            Err(e) => prop_assert!(!oracle::bot_id(&s), "refused: {:?} ({})", s, e),
        }
    }

    #[test]
    fn writes_land_directly_beneath_the_bot(bits in any::<u128>(), s in "[a-z0-9][a-z0-9_]{0,63}") {
        let fx = Fixture::new();
        let bot = BotId::parse(&uuid_text(bits)).unwrap();
        let name = SecretName::parse(&s).unwrap();
        assert_lands_beneath(&fx, &bot, &name);
    }
}

fn uuid_text(bits: u128) -> String {
    let h = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
