//! Near-valid names for the validators' property tests, and independent oracles.
//!
//! A property over `any::<String>()` almost never draws an accepted name (0 of 512 in
//! an audit), so its "if accepted, then …" body never runs. These strategies draw
//! what a validator has to decide on: valid-looking names, the same with one bad
//! byte inserted or replaced, UUID-shaped strings (a bot name must not be one) and
//! lengths at the boundaries (0, 1, max, max + 1). The oracles say what each
//! validator must answer, written from the rules in the domain's documentation and
//! sharing no code with it; a property asserts the validator's verdict equals the
//! oracle's, and [`accept_rate`] checks that both verdicts are drawn often.
//!
//! ```
//! use botmaker_testkit::names::{accept_rate, near_valid, oracle};
//! let rate = accept_rate(&near_valid("a-z0-9_", 64), oracle::secret_name, 500);
//! assert!(rate > 0.1 && rate < 0.9, "{rate}");
//! ```
#![allow(clippy::missing_panics_doc)] // test code: panics only on a malformed regex here

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRng, TestRunner};

/// Bytes (and short strings) that no name validator accepts in a name, or accepts
/// only in some positions: separators, dots, NUL, whitespace, control characters,
/// upper case, the other validators' punctuation, non-ASCII look-alikes.
pub const BAD: &[&str] = &[
    "/", ".", "..", "\0", " ", "\t", "\n", "\u{7f}", "A", "Z", "_", "-", ":", "@", "+", "\\", "%",
    "~", "é", "ａ", "\u{200b}", "\u{2215}", "g",
];

/// Strings over the character class `alphabet` (regex syntax inside `[...]`) of 0 to
/// `max + 1` characters, and exactly 0, 1, `max` and `max + 1` characters, and
/// UUID-shaped strings; each either as drawn or with one [`BAD`] entry inserted or
/// put in place of one character.
pub fn near_valid(alphabet: &str, max: usize) -> BoxedStrategy<String> {
    let any_len = proptest::string::string_regex(&format!("[{alphabet}]{{0,{}}}", max + 1))
        .unwrap()
        .boxed();
    let exact = |n: usize| {
        proptest::string::string_regex(&format!("[{alphabet}]{{{n}}}"))
            .unwrap()
            .boxed()
    };
    let base = prop_oneof![
        4 => any_len,
        1 => exact(1),
        1 => exact(max),
        1 => exact(max + 1),
        1 => Just(String::new()),
        2 => uuid_shaped(),
    ];
    let bad = proptest::sample::select(BAD);
    prop_oneof![
        2 => base.clone(),
        1 => (base.clone(), any::<Index>(), bad.clone()).prop_map(|(mut s, at, b)| {
            let at = char_boundary(&s, at.index(s.chars().count() + 1));
            s.insert_str(at, b);
            s
        }),
        1 => (base, any::<Index>(), bad).prop_map(|(s, at, b)| {
            if s.is_empty() {
                return b.to_owned();
            }
            let n = at.index(s.chars().count());
            s.chars()
                .enumerate()
                .map(|(i, c)| if i == n { b.to_owned() } else { c.to_string() })
                .collect()
        }),
    ]
    .boxed()
}

/// The byte offset of the `n`th character (or the end).
fn char_boundary(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)
}

/// 8-4-4-4-12 hexadecimal digits in either case: valid bot ids, and names a bot name
/// must refuse.
pub fn uuid_shaped() -> BoxedStrategy<String> {
    let shape = |hex: &str| {
        proptest::string::string_regex(&format!(
            "[{hex}]{{8}}-[{hex}]{{4}}-[{hex}]{{4}}-[{hex}]{{4}}-[{hex}]{{12}}"
        ))
        .unwrap()
    };
    prop_oneof![shape("0-9a-f"), shape("0-9A-F"), shape("0-9a-fA-F")].boxed()
}

/// The share of `samples` drawn values (with a fixed seed) that `accepts` accepts.
pub fn accept_rate(
    strategy: &BoxedStrategy<String>,
    accepts: fn(&str) -> bool,
    samples: usize,
) -> f64 {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let accepted = (0..samples)
        .filter(|_| accepts(&strategy.new_tree(&mut runner).unwrap().current()))
        .count();
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let rate = accepted as f64 / samples as f64;
    rate
}

/// What each validator must answer, from the documented rules alone.
pub mod oracle {
    /// `8-4-4-4-12` hexadecimal digits, either case.
    pub fn bot_id(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 36
            && b.iter().enumerate().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    *c == b'-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    }

    /// `8-4-4-4-12` hexadecimal digits, lowercase only (a secrets root id).
    pub fn secrets_root_id(s: &str) -> bool {
        bot_id(s) && !s.bytes().any(|c| c.is_ascii_uppercase())
    }

    /// 1 to 63 of `a-z`, `0-9`, `-`; no `-` first or last; not a bot id.
    pub fn bot_name(s: &str) -> bool {
        (1..=63).contains(&s.len())
            && s.bytes()
                .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !bot_id(s)
    }

    /// `[a-z0-9][a-z0-9_]{0,63}`.
    pub fn secret_name(s: &str) -> bool {
        (1..=64).contains(&s.len())
            && matches!(s.as_bytes()[0], b'a'..=b'z' | b'0'..=b'9')
            && s.bytes()
                .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_'))
    }

    /// 1 to 128 of ASCII letters, digits and `._:/-@+`, a letter or digit first; no
    /// `..`, no `//`, no trailing `/`.
    pub fn model_name(s: &str) -> bool {
        (1..=128).contains(&s.len())
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._:/-@+".contains(&c))
            && !s.contains("..")
            && !s.contains("//")
            && !s.ends_with('/')
    }

    /// 1 to 128 of ASCII letters, digits and `_.-`, a letter or digit first.
    pub fn container_id(s: &str) -> bool {
        (1..=128).contains(&s.len())
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
    }
}
