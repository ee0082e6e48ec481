//! audit reports drift as typed findings; repair fixes only what is safe.

use std::os::unix::fs::{PermissionsExt, symlink};

use botmaker_domain::BotId;
use botmaker_secrets::{Issue, SecretsOptions};

use crate::common::{Fixture, entries, mode, name};

fn chmod(path: &std::path::Path, m: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn audit_reports_and_repair_fixes_what_is_safe() {
    let fx = Fixture::with(SecretsOptions {
        max_secret_size: 100,
        ..SecretsOptions::default()
    });
    let canary = fx.outside();
    let bot = BotId::generate();
    let id = bot.to_string();
    for n in ["ai_api_key", "channel_token", "channel_config"] {
        fx.store.write(&bot, &name(n), b"v").unwrap();
    }
    assert!(fx.store.audit().unwrap().is_clean());

    // Drift of every kind.
    chmod(&fx.root, 0o750);
    chmod(&fx.bot_dir(&bot), 0o755);
    chmod(&fx.secret_path(&bot, "ai_api_key"), 0o644);
    symlink(canary.file(), fx.secret_path(&bot, "linked")).unwrap();
    nix::unistd::mkfifo(
        &fx.secret_path(&bot, "fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    std::fs::hard_link(
        fx.secret_path(&bot, "channel_token"),
        fx.root.join("outside_name"),
    )
    .unwrap();
    std::fs::write(fx.secret_path(&bot, "big"), vec![0u8; 101]).unwrap();
    chmod(&fx.secret_path(&bot, "big"), 0o600);
    std::fs::write(fx.secret_path(&bot, "Bad Name"), b"").unwrap();
    std::fs::write(fx.secret_path(&bot, ".tmp-crashed"), b"half").unwrap();
    std::fs::create_dir(fx.root.join(".trash-old")).unwrap();
    std::fs::create_dir(fx.root.join("not-a-bot")).unwrap();
    symlink(&canary.dir, fx.root.join(BotId::generate().to_string())).unwrap();

    let report = fx.store.audit().unwrap();
    let text = report.to_string();
    for expected in [
        ".: mode 0750, expected 0700".to_owned(),
        format!("{id}: mode 0755, expected 0700"),
        format!("{id}/ai_api_key: mode 0644, expected 0600"),
        format!("{id}/linked: symlink"),
        format!("{id}/fifo: a fifo, expected a regular file"),
        format!("{id}/channel_token: 2 hard links, expected 1"),
        format!("{id}/big: 101 bytes, over the limit of 100 bytes"),
        format!("{id}/Bad Name: unexpected entry"),
        format!("{id}/.tmp-crashed: leftover temporary file"),
        ".trash-old: leftover of an interrupted bot deletion".to_owned(),
        "not-a-bot: unexpected entry".to_owned(),
        "outside_name: unexpected entry".to_owned(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    assert!(report.findings.iter().all(|f| !f.repaired));
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.issue == Issue::Symlink && f.path != format!("{id}/linked"))
    );
    assert_eq!(mode(&fx.root), 0o750, "audit changes nothing");

    let repaired = fx.store.repair().unwrap();
    let fixed: Vec<String> = repaired
        .findings
        .iter()
        .filter(|f| f.repaired)
        .map(|f| f.path.clone())
        .collect();
    assert_eq!(
        fixed,
        [
            ".".to_owned(),
            ".trash-old".to_owned(),
            id.clone(),
            format!("{id}/.tmp-crashed"),
            format!("{id}/ai_api_key")
        ]
    );
    assert!(repaired.to_string().contains(&format!(
        "{id}/ai_api_key: mode 0644, expected 0600 (repaired)"
    )));
    assert_eq!(mode(&fx.root), 0o700);
    assert_eq!(mode(&fx.bot_dir(&bot)), 0o700);
    assert_eq!(mode(&fx.secret_path(&bot, "ai_api_key")), 0o600);
    // Never followed or "fixed": links, hard links, special files stay as they were.
    assert!(
        std::fs::symlink_metadata(fx.secret_path(&bot, "linked"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(entries(&fx.bot_dir(&bot)).contains(&"fifo".to_owned()));
    canary.check();

    let after = fx.store.audit().unwrap();
    assert!(after.findings.iter().all(|f| !f.repaired));
    assert_eq!(after.unrepaired().count(), after.findings.len());
    assert!(!after.to_string().contains("mode 0"), "{after}");
    assert_eq!(
        fx.store.read(&bot, &name("ai_api_key")).unwrap().expose(),
        b"v"
    );
}

#[test]
fn clean_store_says_so() {
    let fx = Fixture::new();
    let report = fx.store.audit().unwrap();
    assert!(report.is_clean());
    assert_eq!(report.to_string(), "secrets store is clean");
}

#[test]
fn quarantine_moves_a_bot_aside_and_deletes_nothing() {
    let fx = Fixture::new();
    let bot = BotId::generate();
    fx.store
        .write(&bot, &name("ai_api_key"), b"keep me")
        .unwrap();
    let moved = fx.store.quarantine_bot(&bot).unwrap();
    assert!(moved.starts_with(&format!(".quarantine/{bot}-")), "{moved}");
    assert_eq!(mode(&fx.root.join(".quarantine")), 0o700);
    assert_eq!(
        std::fs::read(fx.root.join(&moved).join("ai_api_key")).unwrap(),
        b"keep me"
    );
    assert!(fx.store.bots().unwrap().is_empty());
    assert!(fx.store.audit().unwrap().is_clean());
    // A second quarantine of the same id gets its own name.
    fx.store.write(&bot, &name("ai_api_key"), b"again").unwrap();
    let second = fx.store.quarantine_bot(&bot).unwrap();
    assert_ne!(moved, second);
    assert!(matches!(
        fx.store.quarantine_bot(&bot),
        Err(botmaker_secrets::SecretsError::BotNotFound { .. })
    ));
}

#[test]
fn delete_bot_removes_everything_and_reports_missing_bots() {
    let fx = Fixture::new();
    let bot = BotId::generate();
    fx.store.write(&bot, &name("ai_api_key"), b"v").unwrap();
    std::fs::create_dir(fx.bot_dir(&bot).join("junk_dir")).unwrap();
    std::fs::write(fx.bot_dir(&bot).join("junk_dir").join("f"), b"").unwrap();
    fx.store.delete_bot(&bot).unwrap();
    assert_eq!(
        entries(&fx.root),
        [".root-id"],
        "only the root's id is left"
    );
    let err = fx.store.delete_bot(&bot).unwrap_err();
    assert!(
        matches!(err, botmaker_secrets::SecretsError::BotNotFound { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&bot.to_string()), "{err}");
}
