//! Migrating: the report, the status, refusals that leave the database untouched, the
//! advisory lock, and the CHECK lists as the server stored them.

use std::time::Duration;

use botmaker_domain::{AiProvider, BotStatus, ChannelType};
use botmaker_postgres::{
    DatabaseUrl, LATEST_VERSION, MIGRATE_LOCK_KEY, PgError, PgOptions, PgStore, SchemaState,
    migrate, migration_status, shipped_migrations,
};
use botmaker_testkit::pg::TestDatabase;

use crate::support::{empty_db, migrated_db};

/// Everything a refusal must leave as it was: the history, the rows, the tables and
/// the constraints.
fn snapshot(db: &TestDatabase) -> Vec<String> {
    let mut client = db.client();
    let mut out = Vec::new();
    for sql in [
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        "SELECT conname::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE connamespace = 'public'::regnamespace ORDER BY 1",
    ] {
        for row in client.query(sql, &[]).unwrap() {
            out.push(row.get::<_, String>(0));
        }
    }
    for sql in [
        "SELECT version::text || name || applied_on || checksum FROM refinery_schema_history ORDER BY version",
        "SELECT id || name || status || created_at::text FROM bots ORDER BY id",
    ] {
        if let Ok(rows) = client.query(sql, &[]) {
            for row in rows {
                out.push(row.get::<_, String>(0));
            }
        }
    }
    out
}

#[test]
fn migrate_applies_every_migration_once_and_reports_it() {
    let (_db, url) = empty_db("migrate");
    let status = migration_status(&url).unwrap();
    assert_eq!(status.state, SchemaState::Pending);
    assert_eq!(status.db_version, 0);
    assert_eq!(status.pending, shipped_migrations());
    assert!(
        status.to_string().contains("pending V1__create_bots"),
        "{status}"
    );

    let report = migrate(&url).unwrap();
    assert_eq!(report.from_version, 0);
    assert_eq!(report.to_version, LATEST_VERSION);
    assert_eq!(report.applied, shipped_migrations());
    assert_eq!(
        report.to_string(),
        "applied V1__create_bots\napplied V2__bots_checks_without_in_lists\n\
         applied V3__bots_secrets_root\nschema version 0 -> 3\n"
    );
    assert!(!report.database.is_empty());

    let again = migrate(&url).unwrap();
    assert!(again.was_up_to_date());
    assert_eq!(again.to_string(), "up to date (schema version 3)\n");

    let status = migration_status(&url).unwrap();
    assert_eq!(status.state, SchemaState::UpToDate);
    assert_eq!(status.db_version, LATEST_VERSION);
    assert_eq!(status.applied.len(), 3);
    assert!(status.pending.is_empty());
    let text = status.to_string();
    assert!(
        text.starts_with(&format!("database: {url}\nstate: up to date\n")),
        "{text}"
    );
    assert!(
        text.contains("applied V2__bots_checks_without_in_lists (")
            && text.contains("applied V3__bots_secrets_root ("),
        "{text}"
    );
}

#[test]
fn openers_never_migrate() {
    let (db, url) = empty_db("pending");
    let before = snapshot(&db);
    let e = PgStore::open(&url, PgOptions::default()).unwrap_err();
    match &e {
        PgError::MigrationsPending {
            db, code, pending, ..
        } => {
            assert_eq!((*db, *code), (0, LATEST_VERSION));
            assert_eq!(pending.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains(db.name()), "{e}");
    assert!(!e.is_retryable());
    assert_eq!(snapshot(&db), before, "the opener wrote nothing");
    assert!(before.is_empty(), "{before:?}");
}

/// Adds a history row as newer code would have.
fn add_history_row(db: &TestDatabase, version: i32, checksum: &str) {
    db.client()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES ($1, 'from_the_future', '2030-01-01T00:00:00Z', $2)",
            &[&version, &checksum],
        )
        .unwrap();
}

#[test]
fn a_schema_newer_than_the_code_is_refused_and_left_untouched() {
    let (db, url) = migrated_db("toonew");
    add_history_row(&db, 4, "12345");
    let before = snapshot(&db);
    for e in [
        migrate(&url).unwrap_err(),
        PgStore::open(&url, PgOptions::default()).unwrap_err(),
    ] {
        assert!(
            matches!(e, PgError::SchemaTooNew { db: 4, code: 3, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("upgrade botmaker"), "{e}");
        assert!(!e.is_retryable());
    }
    assert_eq!(migration_status(&url).unwrap().state, SchemaState::TooNew);
    assert_eq!(snapshot(&db), before);
}

#[test]
fn a_diverged_history_is_refused_and_left_untouched() {
    let (db, url) = migrated_db("diverged");
    db.client()
        .execute(
            "UPDATE refinery_schema_history SET checksum = '42' WHERE version = 1",
            &[],
        )
        .unwrap();
    let before = snapshot(&db);
    for e in [
        migrate(&url).unwrap_err(),
        PgStore::open(&url, PgOptions::default()).unwrap_err(),
    ] {
        assert!(
            matches!(e, PgError::MigrationsDiverged { version: 1, .. }),
            "{e:?}"
        );
    }
    assert!(matches!(
        migration_status(&url).unwrap().state,
        SchemaState::Diverged { version: 1, .. }
    ));
    assert_eq!(snapshot(&db), before);
}

#[test]
fn a_damaged_history_is_refused_not_a_panic() {
    // refinery's driver unwraps the checksum and the time it reads back.
    let (db, url) = migrated_db("damaged");
    db.client()
        .execute(
            "UPDATE refinery_schema_history SET checksum = 'not a number', applied_on = 'yesterday' \
             WHERE version = 2",
            &[],
        )
        .unwrap();
    let before = snapshot(&db);
    let e = migrate(&url).unwrap_err();
    assert!(
        matches!(e, PgError::MigrationsDiverged { version: 2, .. }),
        "{e:?}"
    );
    assert_eq!(snapshot(&db), before);
}

#[test]
fn a_database_with_a_bots_table_but_no_history_is_not_ours() {
    let (db, url) = empty_db("foreign");
    db.client()
        .batch_execute("CREATE TABLE bots (id int)")
        .unwrap();
    let before = snapshot(&db);
    for e in [
        migrate(&url).unwrap_err(),
        PgStore::open(&url, PgOptions::default()).unwrap_err(),
        migration_status(&url).unwrap_err(),
    ] {
        assert!(matches!(e, PgError::NotABotmakerDatabase { .. }), "{e:?}");
    }
    assert_eq!(snapshot(&db), before);
}

#[test]
fn migrate_waits_for_the_advisory_lock() {
    let (db, url) = empty_db("lock");
    // Another host holds the lock.
    let mut holder = db.client();
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK_KEY])
        .unwrap();
    let migrating = {
        let url = url.clone();
        std::thread::spawn(move || migrate(&url))
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !migrating.is_finished(),
        "migrate did not wait for the lock"
    );
    assert!(
        snapshot(&db).is_empty(),
        "nothing was applied while the lock was held"
    );
    holder
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK_KEY])
        .unwrap();
    let report = migrating.join().unwrap().unwrap();
    assert_eq!(report.applied.len(), 3);
    // Released: the lock is free again.
    let free: bool = holder
        .query_one("SELECT pg_try_advisory_lock($1)", &[&MIGRATE_LOCK_KEY])
        .unwrap()
        .get(0);
    assert!(free);
}

#[test]
fn migrators_at_once_apply_each_migration_once() {
    const MIGRATORS: usize = 6;
    let (_db, url) = empty_db("race");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(MIGRATORS));
    let handles: Vec<_> = (0..MIGRATORS)
        .map(|_| {
            let url = url.clone();
            let barrier = std::sync::Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                migrate(&url).unwrap().applied.len()
            })
        })
        .collect();
    let mut applied: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    applied.sort_unstable();
    let mut expected = vec![0; MIGRATORS - 1];
    expected.push(3);
    assert_eq!(applied, expected);
}

/// The quoted values of a CHECK as PostgreSQL prints it back, in order.
fn quoted(def: &str) -> Vec<String> {
    def.split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_stored_check_lists_are_the_domain_lists() {
    let (db, _url) = migrated_db("checks");
    let mut client = db.client();
    let mut def = |name: &str| -> String {
        client
            .query_one(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1",
                &[&name],
            )
            .unwrap()
            .get(0)
    };
    let strings = |all: Vec<&str>| all.into_iter().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        quoted(&def("bots_ai_provider_check")),
        strings(AiProvider::ALL.iter().map(|v| v.as_str()).collect())
    );
    assert_eq!(
        quoted(&def("bots_channel_type_check")),
        strings(ChannelType::ALL.iter().map(|v| v.as_str()).collect())
    );
    assert_eq!(
        quoted(&def("bots_status_check")),
        strings(BotStatus::ALL.iter().map(|v| v.as_str()).collect())
    );
    // V2's form: OR chains, no IN lists.
    assert!(
        !def("bots_status_check").contains("ANY"),
        "{}",
        def("bots_status_check")
    );
    let default: String = client
        .query_one(
            "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d \
             JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum \
             WHERE d.adrelid = 'bots'::regclass AND a.attname = 'status'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(default, "'created'::text");
}

#[test]
fn a_healthy_registry_passes_the_consistency_check() {
    let (db, url) = migrated_db("consistency");
    let store = PgStore::open(&url, PgOptions::default()).unwrap();
    assert_eq!(store.consistency_check().unwrap(), Vec::<String>::new());
    // A row the constraints accept but the domain does not (a name with a space).
    db.client()
        .execute(
            "INSERT INTO bots VALUES ('00000000-0000-4000-8000-000000000001', 'two words', \
             'openai', 'gpt-4o', 'slack', NULL, 'created', 1, 1)",
            &[],
        )
        .unwrap();
    db.client()
        .batch_execute("DROP INDEX bots_by_status")
        .unwrap();
    let problems = store.consistency_check().unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("bots_by_status")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("00000000-0000-4000-8000-000000000001")),
        "{problems:?}"
    );
}

#[test]
fn urls_of_other_schemes_are_refused_by_name() {
    let e = "mysql://u:hunter2@h/db".parse::<DatabaseUrl>().unwrap_err();
    assert!(matches!(e, PgError::UnsupportedScheme { .. }));
    assert!(e.to_string().contains("mysql"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

/// V3 on a registry that the release before secrets placement left: V1 and V2
/// applied by refinery from the shipped files, bots with every provider, channel and
/// status in it. `migrate` applies V3 only; every row keeps every value and gets a NULL
/// `secrets_root` (legacy), which `adopt_secrets_root` then sets once.
#[test]
fn a_v2_registry_holding_bots_migrates_to_v3_and_its_bots_can_be_adopted() {
    use botmaker_domain::{Bot, BotRepository as _, SecretsRootId};

    let (db, url) = v2_registry_with_bots();
    let mut client = db.client();
    let rows = |client: &mut postgres::Client| -> Vec<String> {
        client
            .query(
                "SELECT concat_ws('|', id, name, ai_provider, model, channel_type, \
                 coalesce(container_id, '<null>'), status, created_at::text, updated_at::text) \
                 FROM bots ORDER BY id",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let before = rows(&mut client);
    assert_eq!(before.len(), 6 * 6 * 6);

    match PgStore::open(&url, PgOptions::default()).unwrap_err() {
        PgError::MigrationsPending {
            db, code, pending, ..
        } => {
            assert_eq!((db, code), (2, 3));
            assert_eq!(pending.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    let report = migrate(&url).unwrap();
    assert_eq!((report.from_version, report.to_version), (2, 3));
    assert_eq!(report.applied.len(), 1);
    assert_eq!(rows(&mut client), before, "every row, value for value");
    let nulls: i64 = client
        .query_one("SELECT count(*) FROM bots WHERE secrets_root IS NULL", &[])
        .unwrap()
        .get(0);
    assert_eq!(usize::try_from(nulls).unwrap(), before.len());
    // The column's CHECK: canonical lowercase ids only.
    for bad in ["ABCDEFAB-1B2C-4D3E-8F40-112233445566", "short"] {
        let err = client
            .execute("UPDATE bots SET secrets_root = $1", &[&bad])
            .unwrap_err();
        assert_eq!(
            err.as_db_error().and_then(|d| d.constraint()),
            Some("bots_secrets_root_check"),
            "{bad}: {err}"
        );
    }

    let store = PgStore::open(&url, PgOptions::default()).unwrap();
    assert_eq!(store.consistency_check().unwrap(), Vec::<String>::new());
    let listed = store.list(None).unwrap();
    assert_eq!(listed.len(), before.len());
    assert!(listed.iter().all(|b| b.secrets_root.is_none()));
    let (here, there) = (SecretsRootId::generate(), SecretsRootId::generate());
    let bot = &listed[0];
    let adopted = store.adopt_secrets_root(&bot.id, &here).unwrap();
    assert_eq!(
        adopted,
        Bot {
            secrets_root: Some(here),
            ..bot.clone()
        },
        "adopting sets the root and nothing else (not updated_at)"
    );
    assert_eq!(store.adopt_secrets_root(&bot.id, &there).unwrap(), adopted);
    assert_eq!(store.get(&bot.id).unwrap(), adopted);
    assert_eq!(rows(&mut client), before);
}

/// A registry as the release before V3 left it: V1 and V2 applied by refinery from the
/// shipped files, and a bot with every provider, channel and status.
fn v2_registry_with_bots() -> (TestDatabase, DatabaseUrl) {
    use refinery::{Migration, Runner};

    const V1_SQL: &str = include_str!("../../migrations/V1__create_bots.sql");
    const V2_SQL: &str = include_str!("../../migrations/V2__bots_checks_without_in_lists.sql");
    let (db, url) = empty_db("v2to3");
    let mut client = db.client();
    Runner::new(&[
        Migration::unapplied("V1__create_bots", V1_SQL).unwrap(),
        Migration::unapplied("V2__bots_checks_without_in_lists", V2_SQL).unwrap(),
    ])
    .run(&mut client)
    .unwrap();
    let mut k = 0i64;
    for provider in AiProvider::ALL {
        for channel in ChannelType::ALL {
            for status in BotStatus::ALL {
                k += 1;
                let container = (k % 2 == 0).then(|| format!("container-{k}"));
                client
                    .execute(
                        "INSERT INTO bots (id, name, ai_provider, model, channel_type, \
                         container_id, status, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        &[
                            &format!("00000000-0000-4000-8000-{k:012}"),
                            &format!("bot-{k}"),
                            &provider.as_str(),
                            &format!("model-{}", k % 5),
                            &channel.as_str(),
                            &container,
                            &status.as_str(),
                            &(k * 1_000_003),
                            &(k * 1_000_003 + k),
                        ],
                    )
                    .unwrap();
            }
        }
    }
    drop(client);
    (db, url)
}
