//! The facade's main scenarios, each run on both backends: SQLite in a temp dir, and
//! PostgreSQL on the test kit's throwaway server (or `BOTMAKER_TEST_DATABASE_URL`).
//! `on_both!` makes a `sqlite` and a `postgres` test of one body, so a failure names
//! the backend. Where the server binaries are missing the `postgres` tests fail and
//! say what to install; they never skip.

use botmaker::domain::{BotId, BotRef, BotStatus, RepoError, SecretName};
use botmaker::{Botmaker, Error, FindingKind, MigrationStatus, SchemaReport};

use crate::{DB_PASSWORD, Install, new_bot, required};

on_both!(a_bots_life, a_bots_life);
on_both!(the_doctor, the_doctor);
on_both!(refusals, refusals);
on_both!(migrating, migrating);

fn a_bots_life(install: &Install) {
    let bm = install.open();
    assert!(Botmaker::doctor(&install.config, false).is_healthy());

    // Create with secrets; resolve by name and by id.
    let bot = bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    assert_eq!(bm.resolve(&BotRef::Name(bot.name.clone())).unwrap(), bot);
    assert_eq!(bm.resolve(&BotRef::Id(bot.id)).unwrap(), bot);
    assert_eq!(bm.list_bots(None).unwrap(), vec![bot.clone()]);
    assert!(bm.missing_secrets(&bot).unwrap().is_empty());

    // Status: the lifecycle's transitions, and a refused one that changes nothing.
    let starting = bm.set_status(&bot, BotStatus::Starting).unwrap();
    assert_eq!(starting.status, BotStatus::Starting);
    let running = bm.set_status(&starting, BotStatus::Running).unwrap();
    assert_eq!(
        bm.list_bots(Some(BotStatus::Running)).unwrap(),
        vec![running.clone()]
    );
    let refused = bm.set_status(&running, BotStatus::Created).unwrap_err();
    assert!(
        matches!(refused, Error::Repo(RepoError::InvalidTransition { .. })),
        "{refused}"
    );
    assert_eq!(bm.resolve(&BotRef::Id(bot.id)).unwrap(), running);

    // Secrets: rotate, read, list, remove, set again.
    let key: SecretName = "ai_api_key".parse().unwrap();
    bm.rotate_secret(&running, &key, b"rotated").unwrap();
    assert_eq!(bm.get_secret(&running, &key).unwrap().expose(), b"rotated");
    assert_eq!(bm.list_secrets(&running).unwrap().len(), 3);
    bm.remove_secret(&running, &key).unwrap();
    assert_eq!(bm.missing_secrets(&running).unwrap(), vec![key.clone()]);
    bm.set_secret(&running, &key, b"again").unwrap();
    assert!(Botmaker::doctor(&install.config, false).is_healthy());

    // Delete: the row and the secrets.
    let deleted = bm.delete_bot(&running).unwrap();
    assert_eq!(deleted.id, bot.id);
    assert!(matches!(
        bm.resolve(&BotRef::Id(bot.id)),
        Err(Error::Repo(RepoError::NotFound { .. }))
    ));
    assert!(bm.secrets().bots().unwrap().is_empty());
    assert!(bm.list_bots(None).unwrap().is_empty());
    let report = Botmaker::doctor(&install.config, false);
    assert!(report.is_healthy(), "{report}");
    assert_eq!(report.bots_checked, 0);
}

fn the_doctor(install: &Install) {
    let bm = install.open();
    bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    let report = Botmaker::doctor(&install.config, false);
    assert!(report.is_healthy(), "{report}");
    assert_eq!(report.bots_checked, 1);
    assert_eq!(
        report.to_string(),
        format!(
            "secrets root: {}\nhealthy: 1 bots checked, 0 problems fixed\n",
            bm.secrets_root()
        )
    );
    assert_eq!(report.secrets_root, Some(bm.secrets_root()));
    assert_eq!(report.held_elsewhere, 0);

    // A bot without its secrets, and a secrets directory without its bot.
    let bare = bm.create_bot(&new_bot("bare"), &[]).unwrap();
    let orphan = BotId::generate();
    assert!(bm.secrets().create_bot(&orphan).unwrap());
    let report = Botmaker::doctor(&install.config, false);
    assert!(!report.is_healthy());
    assert_eq!(report.bots_checked, 2);
    let kinds: Vec<(FindingKind, &str, bool)> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.subject.as_str(), f.fixed))
        .collect();
    let bare_subject = format!("bare ({})", bare.id);
    let orphan_subject = orphan.to_string();
    assert_eq!(
        kinds,
        [
            (FindingKind::OrphanSecrets, orphan_subject.as_str(), false),
            (FindingKind::MissingSecrets, bare_subject.as_str(), false),
        ],
        "{report}"
    );

    // `fix` quarantines the orphan; the missing secrets stay for an operator.
    let fixed = Botmaker::doctor(&install.config, true);
    assert!(
        fixed
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::OrphanSecrets && f.fixed),
        "{fixed}"
    );
    let after = Botmaker::doctor(&install.config, false);
    assert_eq!(after.findings.len(), 1, "{after}");
    assert_eq!(after.findings[0].kind, FindingKind::MissingSecrets);
    bm.delete_bot(&bare).unwrap();
    assert!(Botmaker::doctor(&install.config, false).is_healthy());
}

fn refusals(install: &Install) {
    let bm = install.open();
    let alpha = bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    // A taken name: refused before the disk is touched.
    let err = bm.create_bot(&new_bot("alpha"), &required()).unwrap_err();
    assert!(
        matches!(err, Error::Repo(RepoError::NameTaken { .. })),
        "{err}"
    );
    assert!(!err.is_retryable());
    // A new bot whose id has a secrets directory already: refused, left alone.
    let new = new_bot("beta");
    assert!(bm.secrets().create_bot(&new.id).unwrap());
    let err = bm.create_bot(&new, &required()).unwrap_err();
    assert!(
        matches!(err, Error::OrphanSecrets { id } if id == new.id),
        "{err}"
    );
    assert!(matches!(
        bm.resolve(&BotRef::Id(new.id)),
        Err(Error::Repo(RepoError::NotFound { .. }))
    ));
    assert_eq!(bm.list_bots(None).unwrap(), vec![alpha]);
}

fn migrating(install: &Install) {
    // Installed already: up to date, and the status lists what is applied.
    let again = botmaker::migrate(&install.config).unwrap();
    assert!(again.was_up_to_date());
    assert_eq!(again.to_version(), 3);
    assert!(again.adopted.is_empty(), "every bot has a root: {again:?}");
    assert!(again.to_string().starts_with("up to date"), "{again}");
    let status = botmaker::migration_status(&install.config).unwrap();
    let shown = status.to_string();
    assert!(
        shown.contains("applied V1__")
            && shown.contains("applied V2__")
            && shown.contains("applied V3__bots_secrets_root"),
        "{shown}"
    );
    assert!(!shown.contains("pending"), "{shown}");
    // The backend's own reports and handles.
    let bm = install.open();
    if install.db.is_some() {
        assert!(matches!(again.schema, SchemaReport::Postgres(_)));
        assert!(matches!(status, MigrationStatus::Postgres(_)));
        assert!(bm.sqlite().is_none());
        let store = bm.postgres().unwrap();
        assert!(store.consistency_check().unwrap().is_empty());
        assert!(!shown.contains(DB_PASSWORD), "{shown}");
        assert!(!format!("{bm:?}").contains(DB_PASSWORD));
        assert!(format!("{bm:?}").contains("postgres"), "{bm:?}");
    } else {
        assert!(matches!(again.schema, SchemaReport::Sqlite(_)));
        assert!(matches!(status, MigrationStatus::Sqlite(_)));
        assert!(bm.postgres().is_none() && bm.sqlite().is_some());
    }
}

#[test]
fn an_empty_postgres_database_is_reported_not_migrated_by_openers() {
    let install = Install::postgres_unmigrated();
    let err = Botmaker::open(&install.config).unwrap_err();
    assert!(err.to_string().contains("run `migrate`"), "{err}");
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains(DB_PASSWORD));
    let report = Botmaker::doctor(&install.config, true);
    assert_eq!(report.findings.len(), 1, "{report}");
    assert_eq!(report.findings[0].kind, FindingKind::Migrations);
    assert!(
        report.findings[0]
            .detail
            .ends_with("; run `cargo xtask migrate` or `botmaker migrate`"),
        "{report}"
    );
    assert!(!report.to_string().contains(DB_PASSWORD), "{report}");
    // Nothing was created by opening or by the doctor.
    let mut client = install.db.as_ref().unwrap().client();
    let tables = client
        .query(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap();
    assert_eq!(tables[0].get::<_, i64>(0), 0);
    let status = botmaker::migration_status(&install.config).unwrap();
    assert!(status.to_string().contains("pending V1__"), "{status}");
    // `migrate` brings it up; then it opens.
    let report = botmaker::migrate(&install.config).unwrap();
    assert_eq!(report.to_version(), 3);
    Botmaker::open(&install.config).unwrap();
}

#[test]
fn a_postgres_server_that_is_down_is_a_retryable_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://alice:{DB_PASSWORD}@127.0.0.1:1/botmaker");
    let config = botmaker::Config::new(dir.path().join("data"), dir.path().join("secrets"))
        .with_database(botmaker::Database::parse(&url, "test").unwrap());
    let err = Botmaker::open(&config).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Postgres(_)), "{err:?}");
    assert!(err.is_retryable(), "{message}");
    assert!(
        message.contains("database botmaker on 127.0.0.1"),
        "{message}"
    );
    assert!(!message.contains(DB_PASSWORD) && !format!("{err:?}").contains(DB_PASSWORD));
    let report = Botmaker::doctor(&config, false);
    assert_eq!(report.findings[0].kind, FindingKind::Database, "{report}");
    assert!(!report.to_string().contains(DB_PASSWORD), "{report}");
    // Nothing was made on this host for the SQLite default.
    assert!(!config.data_dir().exists());
}
