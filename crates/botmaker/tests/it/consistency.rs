//! Create and delete leave no half-state, or one the doctor repairs.

use botmaker::domain::{RepoError, SecretName};
use botmaker::secrets::SecretsError;
use botmaker::{BotRef, Botmaker, Error};

use crate::{Install, new_bot, required};

#[test]
fn create_writes_row_and_secrets_together() {
    let install = Install::new();
    let bm = install.open();
    let bot = bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    assert_eq!(bm.registry().get(&bot.id).unwrap(), bot);
    assert!(bm.missing_secrets(&bot).unwrap().is_empty());
    assert!(Botmaker::doctor(&install.config, false).is_healthy());
}

#[test]
fn a_failing_row_insert_removes_the_secrets_again() {
    let install = Install::new();
    // Inject the failure in the database itself: every insert is aborted.
    let conn = rusqlite::Connection::open(install.config.database_path()).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER inject_failure BEFORE INSERT ON bots BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    )
    .unwrap();
    drop(conn);
    let bm = install.open();
    let new = new_bot("alpha");
    let err = bm.create_bot(&new, &required()).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(matches!(
        bm.registry().get(&new.id),
        Err(RepoError::NotFound { .. })
    ));
    assert!(
        install.root_entries().is_empty(),
        "secrets left behind: {:?}",
        install.root_entries()
    );
    assert!(bm.secrets().bots().unwrap().is_empty());
}

#[test]
fn a_failing_secret_write_leaves_neither_row_nor_directory() {
    let install = Install::new();
    let bm = install.open();
    let huge = vec![b'x'; 64 * 1024 + 1];
    let mut secrets = required();
    secrets.push(("extra".parse().unwrap(), huge.as_slice()));
    let new = new_bot("alpha");
    let err = bm.create_bot(&new, &secrets).unwrap_err();
    assert!(
        matches!(err, Error::Secrets(SecretsError::TooLarge { .. })),
        "{err}"
    );
    assert!(matches!(
        bm.registry().get(&new.id),
        Err(RepoError::NotFound { .. })
    ));
    assert!(
        install.root_entries().is_empty(),
        "{:?}",
        install.root_entries()
    );
    assert!(Botmaker::doctor(&install.config, false).is_healthy());
}

#[test]
fn a_taken_name_is_refused_before_any_secret_is_written() {
    let install = Install::new();
    let bm = install.open();
    let first = bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    let second = new_bot("alpha");
    let err = bm.create_bot(&second, &required()).unwrap_err();
    assert!(
        matches!(err, Error::Repo(RepoError::NameTaken { .. })),
        "{err}"
    );
    assert_eq!(install.root_entries(), [first.id.to_string()]);
}

#[test]
fn an_orphan_directory_with_the_new_id_is_refused_and_left_alone() {
    let install = Install::new();
    let bm = install.open();
    let new = new_bot("alpha");
    let key: SecretName = "ai_api_key".parse().unwrap();
    bm.secrets()
        .write(&new.id, &key, b"someone else's")
        .unwrap();
    let err = bm.create_bot(&new, &required()).unwrap_err();
    assert!(matches!(err, Error::OrphanSecrets { .. }), "{err}");
    // The library names no command; the CLI adds the hint to run the doctor.
    assert_eq!(
        err.to_string(),
        format!(
            "bot {} already has a secrets directory but no database row",
            new.id
        )
    );
    assert!(!err.is_retryable());
    assert_eq!(
        bm.secrets().read(&new.id, &key).unwrap().expose(),
        b"someone else's"
    );
    assert!(matches!(
        bm.registry().get(&new.id),
        Err(RepoError::NotFound { .. })
    ));
}

#[test]
fn a_crash_between_the_steps_of_delete_is_repaired_by_the_doctor() {
    let install = Install::new();
    let bm = install.open();
    let bot = bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    // The process dies after deleting the row, before deleting the secrets.
    bm.registry().delete(&bot.id).unwrap();
    drop(bm);

    let report = Botmaker::doctor(&install.config, false);
    assert!(!report.is_healthy());
    let orphan = report
        .findings
        .iter()
        .find(|f| f.subject == bot.id.to_string())
        .unwrap();
    assert_eq!(orphan.kind, botmaker::FindingKind::OrphanSecrets);

    let fixed = Botmaker::doctor(&install.config, true);
    assert!(fixed.is_healthy(), "{fixed}");
    assert!(Botmaker::doctor(&install.config, false).is_healthy());
    // Quarantined, not deleted: the credentials are still there.
    let quarantine = install.config.secrets_dir().join(".quarantine");
    let moved: Vec<_> = std::fs::read_dir(&quarantine)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(std::fs::read(moved[0].join("ai_api_key")).unwrap(), b"k");
    assert!(!install.root_entries().contains(&bot.id.to_string()));
}

#[test]
fn a_crash_between_the_steps_of_create_is_repaired_by_the_doctor() {
    let install = Install::new();
    let bm = install.open();
    let new = new_bot("alpha");
    // The process dies after writing the secrets, before inserting the row.
    for (name, value) in required() {
        bm.secrets().write(&new.id, &name, value).unwrap();
    }
    drop(bm);
    assert!(!Botmaker::doctor(&install.config, false).is_healthy());
    assert!(Botmaker::doctor(&install.config, true).is_healthy());
    // The name is free again and a retry succeeds.
    let bm = install.open();
    bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    assert!(Botmaker::doctor(&install.config, false).is_healthy());
}

#[test]
fn delete_removes_row_and_secrets() {
    let install = Install::new();
    let bm = install.open();
    let bot = bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    let alpha = bm.resolve(&"alpha".parse().unwrap()).unwrap();
    let deleted = bm.delete_bot(&alpha).unwrap();
    assert_eq!(deleted, bot);
    assert!(install.root_entries().is_empty());
    // A stale `Bot` (deleted since it was resolved) is refused by the store, not
    // silently accepted.
    assert!(matches!(
        bm.delete_bot(&alpha),
        Err(Error::Repo(RepoError::NotFound { .. }))
    ));
}

#[test]
fn references_resolve_by_id_or_name() {
    let install = Install::new();
    let bm = install.open();
    let bot = bm.create_bot(&new_bot("alpha"), &[]).unwrap();
    assert_eq!(
        bm.resolve(&bot.id.to_string().to_uppercase().parse().unwrap())
            .unwrap()
            .id,
        bot.id
    );
    assert_eq!(bm.resolve(&"alpha".parse().unwrap()).unwrap().id, bot.id);
    let err = "../alpha".parse::<BotRef>().unwrap_err();
    assert!(err.to_string().contains("../alpha"), "{err}");
    assert!(matches!(
        bm.resolve(&"ghost".parse().unwrap()),
        Err(Error::Repo(RepoError::NotFound { .. }))
    ));
}

#[test]
fn rotate_replaces_an_existing_secret_and_refuses_a_new_name() {
    let install = Install::new();
    let bm = install.open();
    bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    let alpha = bm.resolve(&"alpha".parse().unwrap()).unwrap();
    let key: SecretName = "ai_api_key".parse().unwrap();
    bm.rotate_secret(&alpha, &key, b"k2").unwrap();
    assert_eq!(bm.get_secret(&alpha, &key).unwrap().expose(), b"k2");
    let typo: SecretName = "ai_api_kye".parse().unwrap();
    let err = bm.rotate_secret(&alpha, &typo, b"k3").unwrap_err();
    assert!(
        matches!(err, Error::Secrets(SecretsError::NotFound { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("ai_api_kye") && !err.to_string().contains("k3"),
        "{err}"
    );
    assert_eq!(bm.list_secrets(&alpha).unwrap().len(), 3);
}

#[test]
fn a_bots_secrets_load_in_one_call() {
    let install = Install::new();
    let bm = install.open();
    bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    bm.create_bot(&new_bot("bare"), &[]).unwrap();
    let alpha = bm.resolve(&"alpha".parse().unwrap()).unwrap();
    let bare = bm.resolve(&"bare".parse().unwrap()).unwrap();

    // In the order asked: what the bot's runtime loads at start.
    let values = bm.get_secrets(&alpha, &alpha.required_secrets()).unwrap();
    let got: Vec<&[u8]> = values
        .iter()
        .map(botmaker::secrets::SecretValue::expose)
        .collect();
    let expected: Vec<&[u8]> = required().iter().map(|(_, v)| *v).collect();
    assert_eq!(got, expected);
    // All of them, by name.
    let all: Vec<(String, Vec<u8>)> = bm
        .get_all_secrets(&alpha)
        .unwrap()
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.expose().to_vec()))
        .collect();
    let mut expected: Vec<(String, Vec<u8>)> = required()
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect();
    expected.sort();
    assert_eq!(all, expected);
    // A bot created without secrets has none, and asking for one names it.
    assert!(bm.get_all_secrets(&bare).unwrap().is_empty());
    let err = bm.get_secrets(&bare, &bare.required_secrets()).unwrap_err();
    assert!(
        matches!(&err, Error::Secrets(SecretsError::NotFound { name, .. }) if name.as_str() == "ai_api_key"),
        "{err}"
    );
}
