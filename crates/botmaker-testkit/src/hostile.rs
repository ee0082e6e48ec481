//! One corpus of hostile input: the pieces hostile strings are made of, the known-bad
//! inputs every run tries, and generators of strings and secret values from a seeded
//! [`Rng`].
//!
//! The CLI's hostile test and the stress campaign both draw from here, so a piece added
//! for one reaches the other. What each does with an input (which entry points, which
//! victims to stay away from) is the caller's business.
//!
//! ```
//! use botmaker_testkit::{hostile, rng::Rng};
//!
//! let mut rng = Rng::new(7);
//! let name = hostile::string(&mut rng);
//! let value = hostile::value(&mut rng, 64 * 1024);
//! assert!(value.len() <= 64 * 1024 + 100);
//! # let _ = name;
//! ```

use botmaker_domain::BotId;

use crate::rng::Rng;

/// Pieces hostile strings are made of: traversal and separators, our own reserved
/// prefixes (temporary, trash and quarantine entries), option look-alikes, shell and
/// glob metacharacters, control, bidi and confusable characters, names reserved by
/// other systems, and near-valid names, ids and enumeration values.
pub const FRAGMENTS: &[&str] = &[
    "",
    ".",
    "..",
    "/",
    "../",
    "..\\",
    "/etc/passwd",
    "\0",
    "\u{1}",
    "\n",
    "\r\n",
    " ",
    "\t",
    "~",
    "$HOME",
    "%2e%2e",
    "%2f",
    ".tmp-1-00-1",
    ".tmp-",
    ".trash-",
    ".quarantine",
    "-",
    "--",
    "--help",
    "-rf",
    "*",
    "?",
    "[a]",
    "\\",
    "'",
    "\"",
    ";",
    "|",
    "`",
    "$(id)",
    "\u{202e}",
    "\u{200b}",
    "\u{ff46}",
    "\u{130}",
    "\u{df}",
    "\u{e9}",
    "\u{feff}",
    "\u{7f}",
    "\u{1b}[31m",
    "CON",
    "nul",
    "a",
    "z",
    "bot",
    "ai_api_key",
    "channel_token",
    "x",
    "0",
    "9",
    "_",
    "A",
    "Z",
    "-bot",
    "bot-",
    "a-b",
    "a_b",
    "0192f5a4-1b2c-7d3e-8f40-112233445566",
    "0192F5A4-1B2C-7D3E-8F40-112233445566",
    "{0192f5a4-1b2c-7d3e-8f40-112233445566}",
    "urn:uuid:0192f5a4-1b2c-7d3e-8f40-112233445566",
    "0192f5a41b2c7d3e8f40112233445566",
    "00000000-0000-0000-0000-000000000000",
    "0192f5a4-1b2c-7d3e-8f40-11223344556g",
    "gpt-4o",
    "models/gemini-1.5-pro",
    "a//b",
    "a/../b",
    "openai",
    "slack",
    "running",
    "failed",
];

/// Known-bad inputs, worth trying on every run whatever the seed: whole attacks rather
/// than pieces of them.
pub const KNOWN_BAD: &[&str] = &[
    "..",
    ".",
    "/",
    "../../etc/passwd",
    "a/b",
    ".tmp-123-abc-1",
    ".trash-x",
    ".quarantine",
    "-",
    "--help",
    "-h",
    "--version",
    "",
    " ",
    "\n",
    "a\nb",
    "\u{1b}[2J",
    "\u{202e}kcatta",
    "ＡＢＣ",
    "İ",
    "0192F5A4-1B2C-7D3E-8F40-112233445566",
    "{0192f5a4-1b2c-7d3e-8f40-112233445566}",
    "ai_api_key/../../x",
    "AI_API_KEY",
    "_x",
    "x-y",
    "a%2fb",
    "$(touch pwned)",
    "`touch pwned`",
    "; touch pwned",
    "| touch pwned",
    "*",
    "~root",
];

/// One random piece of [`FRAGMENTS`].
pub fn fragment(rng: &mut Rng) -> &'static str {
    FRAGMENTS[rng.index(FRAGMENTS.len())]
}

/// A hostile string: fragments glued together, a near-valid name (the valid alphabets
/// at lengths around the limits), random characters, a real id with a twist, or one
/// fragment repeated to a few hundred bytes.
pub fn string(rng: &mut Rng) -> String {
    let mut s = String::new();
    match rng.below(10) {
        0..=4 => {
            for _ in 0..=rng.below(5) {
                s.push_str(fragment(rng));
            }
        }
        5 | 6 => {
            let len = rng.pick(&[1u64, 2, 8, 36, 62, 63, 64, 65, 70, 129]) + rng.below(2);
            let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-_";
            for _ in 0..len {
                s.push(char::from(*rng.pick(alphabet)));
            }
        }
        7 => {
            for _ in 0..rng.below(40) {
                let c =
                    char::from_u32(u32::try_from(rng.below(0x3000)).unwrap_or(0x41)).unwrap_or('?');
                s.push(c);
            }
        }
        8 => {
            let id = BotId::generate().to_string();
            s = if rng.chance(500) {
                id.to_uppercase()
            } else {
                id
            };
            if rng.chance(300) {
                s.push_str(fragment(rng));
            }
        }
        _ => {
            let piece = fragment(rng);
            for _ in 0..=(rng.below(300) / piece.len().max(1) as u64) {
                s.push_str(piece);
            }
        }
    }
    s
}

/// A secret value around the size cap `max`: empty, exactly `max`, just over it, any
/// size below it, or (most often) short; random bytes, so not UTF-8 as a rule.
pub fn value(rng: &mut Rng, max: usize) -> Vec<u8> {
    let len = match rng.below(10) {
        0 => 0,
        1 => max,
        2 => max + 1 + rng.index(100),
        3 => rng.index(max),
        _ => rng.index(64),
    };
    (0..len).map(|_| rng.byte()).collect()
}
