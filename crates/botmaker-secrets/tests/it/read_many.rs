//! `read_many` and `read_all` (a bot's secrets in one call) apply to every file exactly
//! the checks of `read`: each hazard planted under one of three names makes all three
//! calls fail with the same error, and no value is returned.

use std::os::unix::fs::{PermissionsExt, symlink};

use botmaker_domain::{BotId, SecretName};
use botmaker_secrets::{SecretsError, SecretsOptions};
use nix::sys::stat::Mode;

use crate::common::{Fixture, name};

const NAMES: [&str; 3] = ["ai_api_key", "channel_config", "channel_token"];

fn names() -> Vec<SecretName> {
    NAMES.iter().map(|n| name(n)).collect()
}

/// A bot with three good secrets whose values name them.
fn bot_with_three(fx: &Fixture) -> BotId {
    let bot = BotId::generate();
    for n in NAMES {
        fx.store.write(&bot, &name(n), n.as_bytes()).unwrap();
    }
    bot
}

#[test]
fn reads_every_secret_through_one_call() {
    let fx = Fixture::new();
    let bot = bot_with_three(&fx);
    // In the order asked, repeats included.
    let asked = [
        name("channel_token"),
        name("ai_api_key"),
        name("channel_token"),
    ];
    let got: Vec<Vec<u8>> = fx
        .store
        .read_many(&bot, &asked)
        .unwrap()
        .iter()
        .map(|v| v.expose().to_vec())
        .collect();
    assert_eq!(
        got,
        [&b"channel_token"[..], b"ai_api_key", b"channel_token"]
    );
    // Sorted by name, the temp-like and invalid entries left out as `list` leaves them.
    std::fs::write(fx.secret_path(&bot, "Not-A-Secret"), b"x").unwrap();
    let all: Vec<(String, Vec<u8>)> = fx
        .store
        .read_all(&bot)
        .unwrap()
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.expose().to_vec()))
        .collect();
    let expected: Vec<(String, Vec<u8>)> = NAMES
        .iter()
        .map(|n| ((*n).to_string(), n.as_bytes().to_vec()))
        .collect();
    assert_eq!(all, expected);
    // Nothing asked, nothing read; a bot without a directory has no secrets to list,
    // and asking for one names it.
    assert!(fx.store.read_many(&bot, &[]).unwrap().is_empty());
    let other = BotId::generate();
    assert!(fx.store.read_all(&other).unwrap().is_empty());
    let err = fx.store.read_many(&other, &names()).unwrap_err();
    assert!(
        matches!(&err, SecretsError::NotFound { bot, name, .. } if *bot == other && name.as_str() == "ai_api_key"),
        "{err:?}"
    );
    // A missing one among present ones names the missing one.
    fx.store.remove(&bot, &name("channel_config")).unwrap();
    let err = fx.store.read_many(&bot, &names()).unwrap_err();
    assert!(
        matches!(&err, SecretsError::NotFound { name, .. } if name.as_str() == "channel_config"),
        "{err:?}"
    );
}

/// What `read` says about a hazard, as a comparable tag (the variant's name).
fn tag(e: &SecretsError) -> String {
    let debug = format!("{e:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_hazard_refused_by_read_is_refused_by_read_many_and_read_all() {
    type Plant = fn(&Fixture, &BotId, &str);
    let hazards: [(&str, Plant); 6] = [
        ("symlink to an outside file", |fx, bot, n| {
            symlink(fx.outside().file(), fx.secret_path(bot, n)).unwrap();
        }),
        ("fifo", |fx, bot, n| {
            nix::unistd::mkfifo(&fx.secret_path(bot, n), Mode::from_bits_truncate(0o600)).unwrap();
        }),
        ("mode 0644", |fx, bot, n| {
            let p = fx.secret_path(bot, n);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }),
        ("a second hard link", |fx, bot, n| {
            std::fs::hard_link(fx.secret_path(bot, n), fx.tmp.path().join("second-link")).unwrap();
        }),
        ("a directory", |fx, bot, n| {
            std::fs::create_dir(fx.secret_path(bot, n)).unwrap();
        }),
        ("over the size cap", |fx, bot, n| {
            std::fs::write(fx.secret_path(bot, n), vec![b'x'; 100]).unwrap();
        }),
    ];
    for (what, plant) in hazards {
        for target in NAMES {
            let fx = Fixture::with(SecretsOptions {
                max_secret_size: 64,
                ..SecretsOptions::default()
            });
            let bot = bot_with_three(&fx);
            if what != "mode 0644" && what != "a second hard link" {
                std::fs::remove_file(fx.secret_path(&bot, target)).unwrap();
            }
            plant(&fx, &bot, target);
            let expected = fx.store.read(&bot, &name(target)).unwrap_err();
            let many = fx.store.read_many(&bot, &names()).unwrap_err();
            assert_eq!(
                tag(&many),
                tag(&expected),
                "{what} at {target}: read_many {many:?}"
            );
            assert!(format!("{many}").contains(target), "{what}: {many}");
            let all = fx.store.read_all(&bot).unwrap_err();
            assert_eq!(
                tag(&all),
                tag(&expected),
                "{what} at {target}: read_all {all:?}"
            );
            if what == "symlink to an outside file" {
                fx.outside().check();
            }
        }
    }
}

#[test]
fn a_symlinked_bot_directory_is_refused_by_both() {
    let fx = Fixture::new();
    let canary = fx.outside();
    let bot = BotId::generate();
    symlink(&canary.dir, fx.bot_dir(&bot)).unwrap();
    let many = fx.store.read_many(&bot, &names()).unwrap_err();
    assert!(matches!(many, SecretsError::Symlink { .. }), "{many:?}");
    let all = fx.store.read_all(&bot).unwrap_err();
    assert!(matches!(all, SecretsError::Symlink { .. }), "{all:?}");
    canary.check();
}
