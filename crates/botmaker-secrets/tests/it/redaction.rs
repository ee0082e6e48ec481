//! Values never show up in Debug output or in error messages.

use std::fmt::Write as _;

use botmaker_domain::BotId;
use botmaker_secrets::{SecretsError, SecretsOptions};
use secrecy::ExposeSecret;

use crate::common::{Fixture, name};

const SECRET: &str = "sk-live-VERY-SECRET-0123456789";

#[test]
fn debug_and_errors_never_contain_the_value() {
    let fx = Fixture::with(SecretsOptions {
        max_secret_size: 40,
        ..SecretsOptions::default()
    });
    let bot = BotId::generate();
    let key = name("ai_api_key");
    fx.store.write_str(&bot, &key, SECRET).unwrap();

    let value = fx.store.read(&bot, &key).unwrap();
    assert_eq!(value.expose(), SECRET.as_bytes());
    let text = fx.store.read_string(&bot, &key).unwrap();
    assert_eq!(text.expose_secret(), SECRET);
    let listed = fx.store.list(&bot).unwrap();
    let mut shown = format!("{value:?} {text:?} {listed:?} {:?}", fx.store);

    // Errors that involve the value: too large, not UTF-8.
    let too_large = format!("{SECRET}{SECRET}");
    let e1 = fx
        .store
        .write(&bot, &key, too_large.as_bytes())
        .unwrap_err();
    let mut not_utf8 = SECRET.as_bytes().to_vec();
    not_utf8.push(0xff);
    fx.store
        .write(&bot, &name("channel_token"), &not_utf8)
        .unwrap();
    let e2 = fx
        .store
        .read_string(&bot, &name("channel_token"))
        .unwrap_err();
    assert!(matches!(e2, SecretsError::NotUtf8 { .. }));
    assert!(e2.to_string().contains("channel_token") && e2.to_string().contains(&bot.to_string()));
    for e in [&e1, &e2] {
        write!(shown, "{e} {e:?}").unwrap();
    }
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains("VERY-SECRET"), "{shown}");
}
