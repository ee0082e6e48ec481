//! Secrets placement across hosts (issue 16 point 5): two secrets roots sharing one
//! registry, on both backends. Host A creates a bot; host B's secrets operations on it
//! fail naming A's root before touching anything, B's doctor counts it as held
//! elsewhere and stays healthy; A keeps working. And an installation from before
//! schema V3 is adopted by `migrate` with no manual step.

use botmaker::domain::{BotRef, NewBot, RepoError, SecretName};
use botmaker::{Botmaker, Config, Error, FindingKind};

use crate::{Install, new_bot, required};

on_both!(two_roots_share_one_registry, two_roots_share_one_registry);
on_both!(
    a_stale_copy_is_reported_and_kept,
    a_stale_copy_is_reported_and_kept
);

/// Another host of `install`: the same registry, a secrets root of its own.
fn other_host(install: &Install) -> Config {
    let root = install
        .config
        .secrets_dir()
        .with_file_name("secrets-host-b");
    install.config.clone().with_secrets_dir(root)
}

fn elsewhere(err: &Error, held_by: &Botmaker, here: &Botmaker) -> bool {
    matches!(err, Error::SecretsElsewhere { held_by: h, here: b, .. }
        if *h == held_by.secrets_root() && *b == here.secrets_root())
}

fn two_roots_share_one_registry(install: &Install) {
    let a = install.open();
    let b_config = other_host(install);
    let b = Botmaker::open(&b_config).unwrap();
    assert_ne!(a.secrets_root(), b.secrets_root());

    let bot = a.create_bot(&new_bot("alpha"), &required()).unwrap();
    assert_eq!(bot.secrets_root, Some(a.secrets_root()));
    let key: SecretName = "ai_api_key".parse().unwrap();
    a.set_secret(&bot, &key, b"from-a").unwrap();

    // Host B sees the row, and every secrets operation fails before touching anything.
    let seen = b.resolve(&BotRef::Name(bot.name.clone())).unwrap();
    assert_eq!(seen, bot);
    let errors: Vec<(&str, Error)> = vec![
        ("set", b.set_secret(&seen, &key, b"from-b").unwrap_err()),
        (
            "rotate",
            b.rotate_secret(&seen, &key, b"from-b").unwrap_err(),
        ),
        ("get", b.get_secret(&seen, &key).map(drop).unwrap_err()),
        (
            "get many",
            b.get_secrets(&seen, std::slice::from_ref(&key))
                .map(drop)
                .unwrap_err(),
        ),
        ("get all", b.get_all_secrets(&seen).map(drop).unwrap_err()),
        ("list", b.list_secrets(&seen).unwrap_err()),
        ("remove", b.remove_secret(&seen, &key).unwrap_err()),
        ("missing", b.missing_secrets(&seen).unwrap_err()),
        ("delete", b.delete_bot(&seen).unwrap_err()),
    ];
    for (op, err) in &errors {
        assert!(elsewhere(err, &a, &b), "{op}: {err:?}");
        assert!(!err.is_retryable(), "{op}");
        let message = err.to_string();
        for needle in [
            "\"alpha\"".to_owned(),
            bot.id.to_string(),
            a.secrets_root().to_string(),
            b.secrets_root().to_string(),
            b_config.secrets_dir().display().to_string(),
        ] {
            assert!(message.contains(&needle), "{op}: {needle} not in {message}");
        }
        assert!(!message.contains("from-a"), "{op}: {message}");
    }
    // Nothing was created in B's root, and the row is still there.
    assert!(b.secrets().bots().unwrap().is_empty());
    assert_eq!(b.resolve(&BotRef::Id(bot.id)).unwrap(), bot);

    // B's doctor: healthy, the bot counted as held elsewhere, nothing missing.
    let report = Botmaker::doctor(&b_config, false);
    assert!(report.is_healthy(), "{report}");
    assert_eq!((report.bots_checked, report.held_elsewhere), (0, 1));
    assert_eq!(report.secrets_root, Some(b.secrets_root()));
    assert!(
        report.to_string().ends_with(
            "healthy: 0 bots checked, 0 problems fixed, 1 held by other secrets roots\n"
        ),
        "{report}"
    );
    let fixed = Botmaker::doctor(&b_config, true);
    assert!(fixed.is_healthy() && fixed.findings.is_empty(), "{fixed}");

    // A: everything works, and its doctor checks the bot.
    assert_eq!(a.get_secret(&bot, &key).unwrap().expose(), b"from-a");
    a.rotate_secret(&bot, &key, b"rotated").unwrap();
    assert_eq!(a.list_secrets(&bot).unwrap().len(), 3);
    assert!(a.missing_secrets(&bot).unwrap().is_empty());
    let report = Botmaker::doctor(&install.config, false);
    assert!(report.is_healthy(), "{report}");
    assert_eq!((report.bots_checked, report.held_elsewhere), (1, 0));

    // A bot of B's: the mirror image.
    let beta = b.create_bot(&new_bot("beta"), &required()).unwrap();
    assert_eq!(beta.secrets_root, Some(b.secrets_root()));
    assert!(elsewhere(
        &a.get_all_secrets(&beta).map(drop).unwrap_err(),
        &b,
        &a
    ));

    // A deletes its bot: row and directory; B never touched it.
    a.delete_bot(&bot).unwrap();
    assert!(matches!(
        b.resolve(&BotRef::Id(bot.id)),
        Err(Error::Repo(RepoError::NotFound { .. }))
    ));
    assert_eq!(a.secrets().bots().unwrap(), []);
    assert_eq!(b.secrets().bots().unwrap(), [beta.id]);
    assert!(Botmaker::doctor(&install.config, false).is_healthy());
    assert!(Botmaker::doctor(&b_config, false).is_healthy());
}

/// A directory in B's root for a bot the registry places in A's: a finding of its own,
/// kept by `--fix` (never moved or deleted); a directory of an unknown bot stays an
/// orphan.
fn a_stale_copy_is_reported_and_kept(install: &Install) {
    let a = install.open();
    let b_config = other_host(install);
    let b = Botmaker::open(&b_config).unwrap();
    let bot = a.create_bot(&new_bot("alpha"), &required()).unwrap();
    // Someone copied A's directory over to B.
    let key: SecretName = "ai_api_key".parse().unwrap();
    b.secrets().write(&bot.id, &key, b"copied").unwrap();
    for fix in [false, true] {
        let report = Botmaker::doctor(&b_config, fix);
        assert!(!report.is_healthy(), "{report}");
        let stale: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::StaleSecrets)
            .collect();
        assert_eq!(stale.len(), 1, "{report}");
        assert!(!stale[0].fixed);
        assert!(stale[0].subject.contains(&bot.id.to_string()));
        assert!(
            stale[0].detail.contains(&a.secrets_root().to_string()),
            "{}",
            stale[0].detail
        );
        assert_eq!(report.held_elsewhere, 1);
        assert_eq!(b.secrets().bots().unwrap(), [bot.id], "never moved");
        assert_eq!(b.secrets().read(&bot.id, &key).unwrap().expose(), b"copied");
    }
    assert_eq!(FindingKind::StaleSecrets.as_str(), "stale-secrets");
}

/// An installation made before schema V3 (SQLite at V2, bots with secrets and a bot
/// without a directory): `migrate` applies V3 and adopts every bot whose directory is
/// in the root; everything keeps working and the doctor stays healthy.
#[test]
fn migrate_adopts_an_installation_from_before_placements() {
    use refinery::{Migration, Runner};

    const V1: &str = include_str!("../../../botmaker-sqlite/migrations/V1__create_bots.sql");
    const V2: &str =
        include_str!("../../../botmaker-sqlite/migrations/V2__bots_checks_without_in_lists.sql");
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path().join("data"), dir.path().join("secrets"));
    std::fs::create_dir_all(config.data_dir()).unwrap();
    let mut conn = rusqlite::Connection::open(config.database_path()).unwrap();
    conn.pragma_update(None, "journal_mode", "wal").unwrap();
    Runner::new(&[
        Migration::unapplied("V1__create_bots", V1).unwrap(),
        Migration::unapplied("V2__bots_checks_without_in_lists", V2).unwrap(),
    ])
    .run(&mut conn)
    .unwrap();
    // Bots and secrets as the release before wrote them: rows without a root.
    let with_dir = [new_bot("alpha"), new_bot("beta")];
    let bare = new_bot("bare");
    for (k, new) in with_dir.iter().chain([&bare]).enumerate() {
        conn.execute(
            "INSERT INTO bots (id, name, ai_provider, model, channel_type, status, \
             created_at, updated_at) VALUES (?1, ?2, 'openai', 'gpt-4o', 'slack', 'created', ?3, ?3)",
            rusqlite::params![new.id.to_string(), new.name.as_str(), 1_000 + i64::try_from(k).unwrap()],
        )
        .unwrap();
    }
    drop(conn);
    let old = botmaker::secrets::SecretsStore::open(config.secrets_dir()).unwrap();
    for new in &with_dir {
        for (name, value) in required() {
            old.write(&new.id, &name, value).unwrap();
        }
    }
    let here = old.root_id();
    drop(old);

    let report = botmaker::migrate(&config).unwrap();
    assert_eq!(report.to_version(), 3);
    let mut adopted = report.adopted.clone();
    adopted.sort();
    let mut expected: Vec<_> = with_dir.iter().map(|n: &NewBot| n.id).collect();
    expected.sort();
    assert_eq!(adopted, expected);
    assert_eq!(report.secrets_root, Some(here));
    assert!(
        report.to_string().contains(&format!(
            "adopted 2 bots from before secrets placement into this secrets root ({here})"
        )),
        "{report}"
    );

    let bm = Botmaker::open(&config).unwrap();
    for new in &with_dir {
        let bot = bm.resolve(&BotRef::Id(new.id)).unwrap();
        assert_eq!(bot.secrets_root, Some(here));
        assert!(bm.missing_secrets(&bot).unwrap().is_empty());
        assert_eq!(bm.get_all_secrets(&bot).unwrap().len(), 3);
    }
    // Without a directory here: not adopted, still treated as local.
    let bare_bot = bm.resolve(&BotRef::Id(bare.id)).unwrap();
    assert_eq!(bare_bot.secrets_root, None);
    bm.set_secret(&bare_bot, &"ai_api_key".parse().unwrap(), b"k")
        .unwrap();
    let report = Botmaker::doctor(&config, false);
    assert_eq!((report.bots_checked, report.held_elsewhere), (3, 0));
    // `bare` lacks two secrets, as before the upgrade; nothing else is reported.
    let kinds: Vec<_> = report.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FindingKind::MissingSecrets], "{report}");
    // The doctor's fix adopts `bare` now that its directory is here.
    let fixed = Botmaker::doctor(&config, true);
    assert!(
        fixed
            .findings
            .iter()
            .any(|f| f.fixed && f.subject.contains(&bare.id.to_string())),
        "{fixed}"
    );
    assert_eq!(
        bm.resolve(&BotRef::Id(bare.id)).unwrap().secrets_root,
        Some(here)
    );
    // Migrating again adopts nothing more.
    let again = botmaker::migrate(&config).unwrap();
    assert!(
        again.was_up_to_date() && again.adopted.is_empty(),
        "{again:?}"
    );
}
