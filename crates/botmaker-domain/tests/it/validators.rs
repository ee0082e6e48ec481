//! Every validator: accepted values round-trip through `Display`/`FromStr`, accepted
//! names are one plain path component, and a corpus of known-bad inputs is refused
//! with an error that names the input.

use std::path::{Component, Path};
use std::str::FromStr;

use botmaker_domain::{
    AiProvider, BotId, BotName, BotStatus, ChannelType, ContainerId, DomainError, ModelName,
    SecretName, SecretsRootId, Timestamp,
};
use botmaker_testkit::names::{accept_rate, near_valid, oracle, uuid_shaped};
use proptest::prelude::*;

/// Inputs no validator of a name may accept.
fn known_bad() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        ".",
        "..",
        "../",
        "./a",
        "a/b",
        "/",
        "/etc/passwd",
        "..\\x",
        "a\\b",
        "a b",
        " a",
        "a ",
        "\t",
        "a\nb",
        "a\0b",
        "\0",
        "a\u{7f}",
        "a\u{1b}[31m",
        "%2e%2e",
        "..%2f",
        "~",
        "$HOME",
        "a/../b",
        "\u{2215}etc",
        "ａ",
        "é",
        "a\u{200b}",
        "-",
        "_",
        "A",
        "\r",
        "a:b\n",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    v.push("a".repeat(10_000));
    v.push("..".repeat(5_000));
    v.push("a/".repeat(5_000));
    v
}

/// True when `s` is exactly one normal path component: no separator, not `.`/`..`, no NUL.
fn is_one_plain_component(s: &str) -> bool {
    let mut comps = Path::new(s).components();
    matches!((comps.next(), comps.next()), (Some(Component::Normal(c)), None) if c == s)
        && !s.contains('\0')
        && !s.starts_with('.')
}

fn check_roundtrip<T>(s: &str) -> T
where
    T: FromStr<Err = DomainError> + std::fmt::Display + PartialEq + std::fmt::Debug,
{
    let v: T = s.parse().unwrap();
    assert_eq!(v.to_string(), s);
    assert_eq!(v.to_string().parse::<T>().unwrap(), v);
    v
}

#[test]
fn known_bad_inputs_are_refused_by_every_name_validator() {
    for bad in known_bad() {
        let shown = bad
            .chars()
            .take(10)
            .flat_map(char::escape_debug)
            .collect::<String>();
        let e = BotName::parse(&bad).unwrap_err();
        assert!(
            matches!(e, DomainError::InvalidBotName { .. }) && e.to_string().contains(&shown),
            "{e}"
        );
        let e = SecretName::parse(&bad).unwrap_err();
        assert!(
            matches!(e, DomainError::InvalidSecretName { .. }) && e.to_string().contains(&shown),
            "{e}"
        );
        assert!(BotId::parse(&bad).is_err(), "{bad:?}");
        // Model names and container ids are never paths, but must still refuse all of these
        // except upper case (`A`, which both accept) and, for models, `a/b`
        // (`models/gemini-1.5-pro` is a real model name).
        if bad != "A" {
            assert!(ContainerId::parse(&bad).is_err(), "container {bad:?}");
            if bad != "a/b" {
                assert!(ModelName::parse(&bad).is_err(), "model {bad:?}");
            }
        }
        assert!(AiProvider::parse(&bad).is_err());
        assert!(ChannelType::parse(&bad).is_err());
        assert!(BotStatus::parse(&bad).is_err());
    }
}

#[test]
fn error_messages_stay_short_for_huge_inputs() {
    let huge = "\u{1b}".repeat(10_000);
    for msg in [
        BotName::parse(&huge).unwrap_err().to_string(),
        SecretName::parse(&huge).unwrap_err().to_string(),
        ModelName::parse(&huge).unwrap_err().to_string(),
        BotId::parse(&huge).unwrap_err().to_string(),
    ] {
        assert!(msg.len() < 600, "{} bytes", msg.len());
        assert!(
            !msg.contains('\u{1b}'),
            "control characters must be escaped: {msg:?}"
        );
    }
}

#[test]
fn enumerations_round_trip_and_are_plain_lowercase() {
    for p in AiProvider::ALL {
        assert_eq!(check_roundtrip::<AiProvider>(p.as_str()), *p);
    }
    for c in ChannelType::ALL {
        assert_eq!(check_roundtrip::<ChannelType>(c.as_str()), *c);
    }
    for s in BotStatus::ALL {
        assert_eq!(check_roundtrip::<BotStatus>(s.as_str()), *s);
    }
    for name in ["openai", "anthropic", "google", "ollama"] {
        AiProvider::parse(name).unwrap();
    }
    for name in ["slack", "discord", "telegram"] {
        ChannelType::parse(name).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn bot_names_get_the_oracles_verdict(s in near_valid("a-z0-9-", BotName::MAX_LEN)) {
        match BotName::parse(&s) {
            Ok(n) => {
                prop_assert!(oracle::bot_name(&s), "accepted: {:?}", s);
                check_roundtrip::<BotName>(&s);
                prop_assert!(is_one_plain_component(n.as_str()));
            }
            Err(e) => {
                prop_assert!(!oracle::bot_name(&s), "refused: {:?} ({})", s, e);
                prop_assert!(matches!(e, DomainError::InvalidBotName { .. }), "{}", e);
            }
        }
    }

    #[test]
    fn secret_names_get_the_oracles_verdict(s in near_valid("a-z0-9_", SecretName::MAX_LEN)) {
        match SecretName::parse(&s) {
            Ok(n) => {
                prop_assert!(oracle::secret_name(&s), "accepted: {:?}", s);
                check_roundtrip::<SecretName>(&s);
                prop_assert!(is_one_plain_component(n.as_str()));
            }
            Err(e) => {
                prop_assert!(!oracle::secret_name(&s), "refused: {:?} ({})", s, e);
                prop_assert!(matches!(e, DomainError::InvalidSecretName { .. }), "{}", e);
            }
        }
    }

    #[test]
    fn bot_ids_get_the_oracles_verdict(s in near_valid("0-9a-fA-F-", BotId::LEN)) {
        match BotId::parse(&s) {
            Ok(id) => {
                prop_assert!(oracle::bot_id(&s), "accepted: {:?}", s);
                prop_assert!(is_one_plain_component(&s));
                prop_assert_eq!(id.to_string(), s.to_lowercase());
            }
            Err(e) => {
                prop_assert!(!oracle::bot_id(&s), "refused: {:?} ({})", s, e);
                prop_assert!(matches!(e, DomainError::InvalidBotId { .. }), "{}", e);
            }
        }
    }

    /// Near-valid inputs (one bad byte, a wrong length, uppercase digits) get the
    /// oracle's verdict; accepted ones are one path component and render as given.
    #[test]
    fn secrets_root_ids_get_the_oracles_verdict(s in prop_oneof![
        near_valid("0-9a-fA-F-", SecretsRootId::LEN),
        uuid_shaped(),
    ]) {
        match SecretsRootId::parse(&s) {
            Ok(id) => {
                prop_assert!(oracle::secrets_root_id(&s), "accepted: {:?}", s);
                prop_assert!(is_one_plain_component(&s));
                prop_assert_eq!(id.to_string(), s.clone());
                check_roundtrip::<SecretsRootId>(&s);
            }
            Err(e) => {
                prop_assert!(!oracle::secrets_root_id(&s), "refused: {:?} ({})", s, e);
                prop_assert!(matches!(e, DomainError::InvalidSecretsRootId { .. }), "{}", e);
                prop_assert!(e.to_string().contains("secrets root id"), "{}", e);
            }
        }
    }

    #[test]
    fn model_names_get_the_oracles_verdict(s in near_valid("A-Za-z0-9._:/@+-", ModelName::MAX_LEN)) {
        match ModelName::parse(&s) {
            Ok(_) => {
                prop_assert!(oracle::model_name(&s), "accepted: {:?}", s);
                check_roundtrip::<ModelName>(&s);
            }
            Err(e) => prop_assert!(!oracle::model_name(&s), "refused: {:?} ({})", s, e),
        }
    }

    #[test]
    fn container_ids_get_the_oracles_verdict(s in near_valid("A-Za-z0-9_.-", ContainerId::MAX_LEN)) {
        match ContainerId::parse(&s) {
            Ok(_) => {
                prop_assert!(oracle::container_id(&s), "accepted: {:?}", s);
                check_roundtrip::<ContainerId>(&s);
            }
            Err(e) => prop_assert!(!oracle::container_id(&s), "refused: {:?} ({})", s, e),
        }
    }

    #[test]
    fn bot_ids_parse_in_any_case_and_render_lowercase(bytes in any::<[u8; 16]>(), upper in any::<bool>()) {
        let id = BotId::from_uuid(uuid::Uuid::from_bytes(bytes));
        let canonical = id.to_string();
        prop_assert!(is_one_plain_component(&canonical));
        let input = if upper { canonical.to_uppercase() } else { canonical.clone() };
        let parsed = BotId::parse(&input).unwrap();
        prop_assert_eq!(parsed, id);
        prop_assert_eq!(parsed.to_string(), canonical);
    }

    #[test]
    fn any_string_is_refused_or_round_trips_for_every_type(s in any::<String>()) {
        // Whatever the input, parsing either fails with a message or yields a value whose
        // rendering parses back to itself (no panics, no lossy acceptance).
        if let Ok(v) = ModelName::parse(&s) { prop_assert_eq!(v.to_string(), s.clone()); }
        if let Ok(v) = ContainerId::parse(&s) { prop_assert_eq!(v.to_string(), s.clone()); }
        if let Ok(v) = AiProvider::parse(&s) { prop_assert_eq!(v.to_string(), s.clone()); }
        if let Ok(v) = ChannelType::parse(&s) { prop_assert_eq!(v.to_string(), s.clone()); }
        if let Ok(v) = BotStatus::parse(&s) { prop_assert_eq!(v.to_string(), s.clone()); }
        if let Ok(v) = Timestamp::parse(&s) { prop_assert_eq!(v.to_string(), s.clone()); }
        if let Ok(v) = SecretsRootId::parse(&s) { prop_assert_eq!(v.to_string(), s.clone()); }
    }

    #[test]
    fn timestamps_round_trip(micros in -62_135_596_800_000_000i64..253_402_300_799_999_999i64) {
        let t = Timestamp::from_unix_micros(micros).unwrap();
        let s = t.to_string();
        prop_assert_eq!(s.len(), 27);
        prop_assert_eq!(Timestamp::parse(&s).unwrap(), t);
    }

    #[test]
    fn timestamp_strings_sort_like_times(a in 0i64..253_402_300_799_999_999i64, b in 0i64..253_402_300_799_999_999i64) {
        let (ta, tb) = (Timestamp::from_unix_micros(a).unwrap(), Timestamp::from_unix_micros(b).unwrap());
        prop_assert_eq!(ta.cmp(&tb), ta.to_string().cmp(&tb.to_string()));
    }

    #[test]
    fn transitions_follow_the_table(from in 0usize..6, to in 0usize..6) {
        let (from, to) = (BotStatus::ALL[from], BotStatus::ALL[to]);
        let allowed = TRANSITIONS.contains(&(from.as_str(), to.as_str()));
        prop_assert_eq!(from.can_transition_to(to), allowed, "{} -> {}", from, to);
        match from.transition(to) {
            Ok(next) => {
                prop_assert!(allowed, "{} -> {} is not in the table", from, to);
                prop_assert_eq!(next, to);
            }
            Err(e) => {
                prop_assert!(!allowed, "{} -> {} is in the table", from, to);
                prop_assert_eq!(e, DomainError::InvalidTransition { from, to });
            }
        }
    }
}

/// The lifecycle, written out here (from the table in `BotStatus`'s documentation)
/// rather than derived from the code: any status may go to `failed`.
const TRANSITIONS: &[(&str, &str)] = &[
    ("created", "starting"),
    ("starting", "running"),
    ("running", "stopping"),
    ("stopping", "stopped"),
    ("stopped", "starting"),
    ("failed", "starting"),
    ("created", "failed"),
    ("starting", "failed"),
    ("running", "failed"),
    ("stopping", "failed"),
    ("stopped", "failed"),
    ("failed", "failed"),
];

/// The transition property sees all 36 pairs (6 × 6 drawn 256 times would miss some
/// only with tiny odds; here every pair is checked once, deterministically).
#[test]
fn every_pair_of_statuses_is_judged_by_the_table() {
    let mut allowed = 0;
    for &from in BotStatus::ALL {
        for &to in BotStatus::ALL {
            let listed = TRANSITIONS.contains(&(from.as_str(), to.as_str()));
            assert_eq!(from.can_transition_to(to), listed, "{from} -> {to}");
            assert_eq!(from.transition(to).is_ok(), listed, "{from} -> {to}");
            allowed += usize::from(listed);
        }
    }
    assert_eq!(allowed, TRANSITIONS.len());
}

/// The near-valid strategies draw both verdicts often, so the properties above run
/// their accepted branch and their refused branch (an `any::<String>()` strategy drew
/// 0 accepted names in 512).
#[test]
fn near_valid_strategies_draw_both_verdicts() {
    type Case = (&'static str, BoxedStrategy<String>, fn(&str) -> bool);
    let cases: [Case; 6] = [
        (
            "bot name",
            near_valid("a-z0-9-", BotName::MAX_LEN),
            oracle::bot_name,
        ),
        (
            "secret name",
            near_valid("a-z0-9_", SecretName::MAX_LEN),
            oracle::secret_name,
        ),
        (
            "bot id",
            near_valid("0-9a-fA-F-", BotId::LEN),
            oracle::bot_id,
        ),
        (
            "secrets root id",
            prop_oneof![near_valid("0-9a-fA-F-", SecretsRootId::LEN), uuid_shaped()].boxed(),
            oracle::secrets_root_id,
        ),
        (
            "model name",
            near_valid("A-Za-z0-9._:/@+-", ModelName::MAX_LEN),
            oracle::model_name,
        ),
        (
            "container id",
            near_valid("A-Za-z0-9_.-", ContainerId::MAX_LEN),
            oracle::container_id,
        ),
    ];
    for (what, strategy, verdict) in cases {
        let rate = accept_rate(&strategy, verdict, 2000);
        eprintln!("{what}: {:.0}% of near-valid inputs accepted", rate * 100.0);
        assert!(
            (0.05..=0.95).contains(&rate),
            "{what}: {:.1}% accepted; the properties would hardly run one branch",
            rate * 100.0
        );
    }
    // UUID-shaped names are drawn, and a bot name refuses them.
    let uuids = accept_rate(&uuid_shaped(), oracle::bot_id, 200);
    assert!((uuids - 1.0).abs() < f64::EPSILON);
    let lowercase = |s: &str| oracle::bot_id(s) && !s.bytes().any(|b| b.is_ascii_uppercase());
    assert!(accept_rate(&uuid_shaped(), lowercase, 200) > 0.2);
    assert!(accept_rate(&uuid_shaped(), oracle::bot_name, 200) < f64::EPSILON);
}

#[cfg(feature = "serde")]
#[test]
fn serde_uses_the_canonical_strings_and_validates_on_the_way_in() {
    let id: BotId = "0192F5A4-1B2C-7D3E-8F40-112233445566".parse().unwrap();
    assert_eq!(
        serde_json::to_string(&id).unwrap(),
        "\"0192f5a4-1b2c-7d3e-8f40-112233445566\""
    );
    assert!(serde_json::from_str::<BotName>("\"../x\"").is_err());
    assert_eq!(
        serde_json::from_str::<BotStatus>("\"running\"").unwrap(),
        BotStatus::Running
    );
}
