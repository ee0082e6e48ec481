//! `replace`: the atomic write of `write`, for a secret that must already exist.

use std::os::unix::fs::symlink;

use botmaker_domain::BotId;
use botmaker_secrets::{SecretsError, SecretsOptions};

use crate::common::{Fixture, entries, mode, name};

#[test]
fn a_missing_secret_is_not_found_and_nothing_is_created() {
    let fx = Fixture::new();
    let bot = BotId::generate();
    let key = name("ai_api_key");

    // No bot directory: none is made.
    let err = fx.store.replace(&bot, &key, b"new").unwrap_err();
    assert!(
        matches!(&err, SecretsError::NotFound { bot: b, name: n, path }
            if *b == bot && *n == key && *path == fx.secret_path(&bot, "ai_api_key")),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(entries(&fx.root), [".root-id"], "no bot directory is made");

    // A bot directory without that secret: nothing is written in it.
    fx.store.write(&bot, &name("channel_token"), b"t").unwrap();
    let err = fx.store.replace(&bot, &key, b"new").unwrap_err();
    assert!(matches!(err, SecretsError::NotFound { .. }), "{err}");
    assert_eq!(entries(&fx.bot_dir(&bot)), ["channel_token"]);
    assert_eq!(
        fx.store
            .read(&bot, &name("channel_token"))
            .unwrap()
            .expose(),
        b"t"
    );
}

#[test]
fn an_existing_secret_is_replaced_atomically_as_0600() {
    let fx = Fixture::with(SecretsOptions {
        max_secret_size: 8,
        ..SecretsOptions::default()
    });
    let bot = BotId::generate();
    let key = name("ai_api_key");
    fx.store.write(&bot, &key, b"old").unwrap();
    let path = fx.secret_path(&bot, "ai_api_key");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o400)).unwrap();

    fx.store.replace(&bot, &key, b"new").unwrap();
    assert_eq!(fx.store.read(&bot, &key).unwrap().expose(), b"new");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        entries(&fx.bot_dir(&bot)),
        ["ai_api_key"],
        "no temporary left"
    );

    // Over the cap: refused, the old value stays.
    let err = fx.store.replace(&bot, &key, b"123456789").unwrap_err();
    assert!(matches!(err, SecretsError::TooLarge { .. }), "{err}");
    assert_eq!(fx.store.read(&bot, &key).unwrap().expose(), b"new");
}

#[test]
fn a_symlink_or_directory_at_the_name_is_refused_as_write_refuses_it() {
    let fx = Fixture::new();
    let canary = fx.outside();
    let bot = BotId::generate();
    fx.store.create_bot(&bot).unwrap();
    symlink(canary.file(), fx.secret_path(&bot, "ai_api_key")).unwrap();
    std::fs::create_dir(fx.secret_path(&bot, "channel_token")).unwrap();

    for op in [
        |fx: &Fixture, bot: &BotId, n: &str| fx.store.replace(bot, &name(n), b"x"),
        |fx: &Fixture, bot: &BotId, n: &str| fx.store.write(bot, &name(n), b"x"),
    ] {
        let err = op(&fx, &bot, "ai_api_key").unwrap_err();
        assert!(matches!(err, SecretsError::Symlink { .. }), "{err}");
        let err = op(&fx, &bot, "channel_token").unwrap_err();
        assert!(
            matches!(
                err,
                SecretsError::NotRegularFile {
                    kind: "directory",
                    ..
                }
            ),
            "{err}"
        );
    }
    assert!(
        std::fs::symlink_metadata(fx.secret_path(&bot, "ai_api_key"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        entries(&fx.bot_dir(&bot)),
        ["ai_api_key", "channel_token"],
        "no temporary left"
    );
    canary.check();
}

#[test]
fn a_symlinked_bot_directory_is_refused() {
    let fx = Fixture::new();
    let canary = fx.outside();
    let bot = BotId::generate();
    symlink(&canary.dir, fx.bot_dir(&bot)).unwrap();
    let err = fx
        .store
        .replace(&bot, &name("ai_api_key"), b"x")
        .unwrap_err();
    assert!(matches!(err, SecretsError::Symlink { .. }), "{err}");
    canary.check();
}
