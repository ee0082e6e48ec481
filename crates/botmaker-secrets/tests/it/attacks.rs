//! Symlinks planted or swapped in, hard links, FIFOs, oversized values: an outside
//! canary is never read, changed or removed.

use std::os::fd::AsFd;
use std::os::unix::fs::symlink;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use botmaker_domain::BotId;
use botmaker_secrets::{SecretsError, SecretsOptions};
use nix::fcntl::{RenameFlags, renameat2};

use crate::common::{CANARY, Fixture, entries, mode, name};

#[test]
fn symlink_at_a_secret_is_refused_and_never_followed() {
    let fx = Fixture::new();
    let canary = fx.outside();
    let bot = BotId::generate();
    let key = name("ai_api_key");
    fx.store.create_bot(&bot).unwrap();
    symlink(canary.file(), fx.secret_path(&bot, "ai_api_key")).unwrap();

    let err = fx.store.read(&bot, &key).unwrap_err();
    assert!(matches!(err, SecretsError::Symlink { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("CANARY"));
    assert!(matches!(
        fx.store.read_string(&bot, &key),
        Err(SecretsError::Symlink { .. })
    ));
    assert!(matches!(
        fx.store.write(&bot, &key, b"new"),
        Err(SecretsError::Symlink { .. })
    ));
    assert!(matches!(
        fx.store.remove(&bot, &key),
        Err(SecretsError::Symlink { .. })
    ));
    // Not listed (audit reports it), and still a link.
    assert!(fx.store.list(&bot).unwrap().is_empty());
    assert!(
        std::fs::symlink_metadata(fx.secret_path(&bot, "ai_api_key"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Deleting the bot removes the link, not its target.
    fx.store.delete_bot(&bot).unwrap();
    canary.check();
}

#[test]
fn symlink_at_a_bot_directory_is_refused_by_every_operation() {
    let fx = Fixture::new();
    let canary = fx.outside();
    let bot = BotId::generate();
    let key = name("ai_api_key");
    symlink(&canary.dir, fx.bot_dir(&bot)).unwrap();
    let s = &fx.store;

    let is_symlink = |r: Result<(), SecretsError>| matches!(r, Err(SecretsError::Symlink { .. }));
    assert!(is_symlink(s.read(&bot, &key).map(drop)));
    assert!(is_symlink(s.read_string(&bot, &key).map(drop)));
    assert!(is_symlink(s.write(&bot, &key, b"x")));
    assert!(is_symlink(s.write_str(&bot, &key, "x")));
    assert!(is_symlink(s.list(&bot).map(drop)));
    assert!(is_symlink(s.remove(&bot, &key)));
    assert!(is_symlink(s.delete_bot(&bot)));
    assert!(is_symlink(s.create_bot(&bot).map(drop)));
    assert!(is_symlink(s.missing_required(&bot).map(drop)));
    assert!(s.bots().unwrap().is_empty());
    canary.check();

    // Quarantine moves the link itself aside; the target stays put.
    let moved = s.quarantine_bot(&bot).unwrap();
    assert!(
        std::fs::symlink_metadata(fx.root.join(&moved))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!fx.bot_dir(&bot).exists());
    canary.check();
}

#[test]
fn symlinked_quarantine_directory_is_refused() {
    let fx = Fixture::new();
    let canary = fx.outside();
    let bot = BotId::generate();
    fx.store.write(&bot, &name("ai_api_key"), b"v").unwrap();
    symlink(&canary.dir, fx.root.join(".quarantine")).unwrap();
    let err = fx.store.quarantine_bot(&bot).unwrap_err();
    assert!(matches!(err, SecretsError::Symlink { .. }), "{err}");
    assert_eq!(
        fx.store.read(&bot, &name("ai_api_key")).unwrap().expose(),
        b"v"
    );
    canary.check();
}

/// A thread swaps the bot directory with a symlink to the outside directory
/// (`renameat2(RENAME_EXCHANGE)`) while writes, reads, lists, removes and deletes run.
#[test]
fn racing_symlink_swap_never_escapes_the_root() {
    const SWAPS: usize = 2_000;
    let fx = Fixture::new();
    let canary = fx.outside();
    let bot = BotId::generate();
    let id = bot.to_string();
    fx.store
        .write(&bot, &name("ai_api_key"), b"inside-0")
        .unwrap();
    let store = Arc::new(fx.store);
    let root = std::fs::File::open(&fx.root).unwrap();
    let done = Arc::new(AtomicBool::new(false));

    let racer = {
        let done = Arc::clone(&done);
        let root_path = fx.root.clone();
        let outside = canary.dir.clone();
        std::thread::spawn(move || {
            let mut exchanged = 0;
            for i in 0..SWAPS {
                let link = root_path.join("swap");
                let id_path = root_path.join(&id);
                let is_link = |p: &std::path::Path| {
                    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
                };
                if !is_link(&link) && !is_link(&id_path) {
                    if link.exists() {
                        std::fs::rename(&link, root_path.join(format!("orphan-{i}"))).unwrap();
                    }
                    symlink(&outside, &link).unwrap();
                }
                if renameat2(
                    root.as_fd(),
                    id.as_str(),
                    root.as_fd(),
                    "swap",
                    RenameFlags::RENAME_EXCHANGE,
                )
                .is_ok()
                {
                    exchanged += 1;
                }
                std::thread::yield_now();
            }
            done.store(true, Ordering::SeqCst);
            exchanged
        })
    };

    let workers: Vec<_> = (0..2)
        .map(|w| {
            let store = Arc::clone(&store);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let key = name("ai_api_key");
                let tok = name("channel_token");
                let mut i = 0u64;
                let mut ok = 0u64;
                while !done.load(Ordering::SeqCst) {
                    i += 1;
                    let value = format!("inside-{w}-{i}");
                    let results: Vec<Result<(), SecretsError>> = vec![
                        store.write(&bot, &key, value.as_bytes()),
                        store.read(&bot, &key).map(|v| {
                            assert!(
                                v.expose().starts_with(b"inside-"),
                                "read something that is not ours"
                            );
                            assert_ne!(v.expose(), CANARY);
                        }),
                        store.write(&bot, &tok, b"inside-token"),
                        store
                            .read(&bot, &tok)
                            .map(|v| assert_eq!(v.expose(), b"inside-token")),
                        store.list(&bot).map(drop),
                        store.remove(&bot, &tok),
                        if i.is_multiple_of(64) {
                            store.delete_bot(&bot)
                        } else {
                            Ok(())
                        },
                    ];
                    for r in results {
                        match r {
                            Ok(()) => ok += 1,
                            Err(
                                SecretsError::Symlink { .. }
                                | SecretsError::Raced { .. }
                                | SecretsError::NotFound { .. }
                                | SecretsError::BotNotFound { .. },
                            ) => {}
                            Err(e) => panic!("unexpected error: {e}"),
                        }
                    }
                }
                ok
            })
        })
        .collect();

    let exchanged = racer.join().unwrap();
    let ok: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    eprintln!("racing: {exchanged} exchanges, {ok} successful operations");
    assert!(exchanged > 0, "the racer never swapped");
    assert!(ok > 0, "no operation ever succeeded");
    canary.check();
}

#[test]
fn hard_link_is_refused_and_the_other_name_untouched() {
    let fx = Fixture::new();
    let canary = fx.outside();
    let bot = BotId::generate();
    let key = name("ai_api_key");
    fx.store.create_bot(&bot).unwrap();
    // The canary is 0644; make a private, hard-linked copy so only the link count differs.
    let outside_private = canary.dir.parent().unwrap().join("private");
    std::fs::write(&outside_private, CANARY).unwrap();
    std::fs::set_permissions(
        &outside_private,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::hard_link(&outside_private, fx.secret_path(&bot, "ai_api_key")).unwrap();

    let err = fx.store.read(&bot, &key).unwrap_err();
    assert!(
        matches!(err, SecretsError::HardLinked { nlink: 2, .. }),
        "{err}"
    );
    // A write replaces our name with a new file; the other name keeps its content.
    fx.store.write(&bot, &key, b"fresh").unwrap();
    assert_eq!(fx.store.read(&bot, &key).unwrap().expose(), b"fresh");
    assert_eq!(std::fs::read(&outside_private).unwrap(), CANARY);
    canary.check();
}

#[test]
fn fifo_fails_at_once_instead_of_hanging() {
    let fx = Fixture::new();
    let bot = BotId::generate();
    let key = name("ai_api_key");
    fx.store.create_bot(&bot).unwrap();
    nix::unistd::mkfifo(
        &fx.secret_path(&bot, "ai_api_key"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    // If the open blocked, this test would hang: O_NONBLOCK + fstat make it fail.
    let err = fx.store.read(&bot, &key).unwrap_err();
    assert!(
        matches!(err, SecretsError::NotRegularFile { kind: "fifo", .. }),
        "{err}"
    );
    assert!(matches!(
        fx.store.write(&bot, &key, b"x"),
        Err(SecretsError::NotRegularFile { .. })
    ));
    assert!(matches!(
        fx.store.remove(&bot, &key),
        Err(SecretsError::NotRegularFile { .. })
    ));
}

#[test]
fn directory_at_a_secret_name_is_refused() {
    let fx = Fixture::new();
    let bot = BotId::generate();
    let key = name("ai_api_key");
    fx.store.create_bot(&bot).unwrap();
    std::fs::create_dir(fx.secret_path(&bot, "ai_api_key")).unwrap();
    assert!(matches!(
        fx.store.read(&bot, &key),
        Err(SecretsError::NotRegularFile {
            kind: "directory",
            ..
        })
    ));
    assert!(matches!(
        fx.store.write(&bot, &key, b"x"),
        Err(SecretsError::NotRegularFile { .. })
    ));
    assert!(matches!(
        fx.store.remove(&bot, &key),
        Err(SecretsError::NotRegularFile { .. })
    ));
    assert!(fx.secret_path(&bot, "ai_api_key").is_dir());
}

#[test]
fn oversized_value_is_refused_and_previous_value_kept() {
    let fx = Fixture::with(SecretsOptions {
        max_secret_size: 16,
        ..SecretsOptions::default()
    });
    let bot = BotId::generate();
    let key = name("ai_api_key");
    fx.store.write(&bot, &key, b"0123456789abcdef").unwrap();
    let err = fx
        .store
        .write(&bot, &key, b"0123456789abcdefX")
        .unwrap_err();
    assert!(
        matches!(&err, SecretsError::TooLarge { size: 17, max: 16, name, bot: b } if name.as_str() == "ai_api_key" && b == &bot),
        "{err}"
    );
    assert_eq!(
        fx.store.read(&bot, &key).unwrap().expose(),
        b"0123456789abcdef"
    );
    assert_eq!(
        entries(&fx.bot_dir(&bot)),
        ["ai_api_key"],
        "no temp file left"
    );
}

#[test]
fn oversized_file_on_disk_is_refused() {
    let fx = Fixture::new();
    let bot = BotId::generate();
    let key = name("ai_api_key");
    fx.store.write(&bot, &key, b"small").unwrap();
    let path = fx.secret_path(&bot, "ai_api_key");
    std::fs::write(
        &path,
        vec![b'x'; SecretsOptions::DEFAULT_MAX_SECRET_SIZE + 1],
    )
    .unwrap();
    assert_eq!(mode(&path), 0o600);
    let err = fx.store.read(&bot, &key).unwrap_err();
    assert!(
        matches!(
            err,
            SecretsError::TooLarge {
                size: 65_537,
                max: 65_536,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn sweeping_trash_never_follows_links_inside() {
    let mut fx = Fixture::new();
    let canary = fx.outside();
    let bot = BotId::generate();
    fx.store.write(&bot, &name("ai_api_key"), b"v").unwrap();
    // An interrupted deletion left a trash directory holding links to the outside.
    let trash = fx.root.join(".trash-leftover");
    std::fs::create_dir(&trash).unwrap();
    symlink(&canary.dir, trash.join("dir_link")).unwrap();
    symlink(canary.file(), trash.join("file_link")).unwrap();
    std::fs::create_dir(trash.join("sub")).unwrap();
    symlink(canary.file(), trash.join("sub").join("deep_link")).unwrap();
    // And an interrupted write left a temp file.
    std::fs::write(fx.bot_dir(&bot).join(".tmp-dead-writer"), b"half").unwrap();

    fx.reopen();
    assert_eq!(fx.store.swept(), 2);
    assert_eq!(entries(&fx.root), [".root-id".to_owned(), bot.to_string()]);
    assert_eq!(entries(&fx.bot_dir(&bot)), ["ai_api_key"]);
    canary.check();
}

#[test]
fn non_directory_or_non_canonical_bot_entries_are_not_bots() {
    let fx = Fixture::new();
    let bot = BotId::generate();
    std::fs::write(fx.bot_dir(&bot), b"").unwrap();
    let err = fx.store.read(&bot, &name("ai_api_key")).unwrap_err();
    assert!(
        matches!(
            err,
            SecretsError::NotADirectory {
                kind: "regular file",
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        fx.store.write(&bot, &name("ai_api_key"), b"v"),
        Err(SecretsError::NotADirectory { .. })
    ));
    let upper = BotId::generate().to_string().to_uppercase();
    std::fs::create_dir(fx.root.join(&upper)).unwrap();
    assert!(fx.store.bots().unwrap().is_empty());
    let report = fx.store.audit().unwrap().to_string();
    assert!(
        report.contains(&format!("{bot}: a regular file, expected a bot directory")),
        "{report}"
    );
    assert!(
        report.contains(&format!("{upper}: unexpected entry")),
        "{report}"
    );
}
