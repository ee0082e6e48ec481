//! Errors mapped by meaning: busy is retryable, undecodable rows are corruption.

use std::time::Duration;

use botmaker_domain::{BotRepository, BotStatus, RepoError};
use botmaker_sqlite::{SqliteStore, StoreOptions};
use rusqlite::Connection;

use crate::support::{id, migrated_db, new_bot};

#[test]
fn a_write_locked_elsewhere_is_busy_and_retryable_and_reads_go_on() {
    let (_dir, path) = migrated_db();
    let store = SqliteStore::open_with(
        &path,
        StoreOptions {
            busy_timeout: Duration::from_millis(50),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let bot = store.create(&new_bot("alpha")).unwrap();

    // Another connection (as another process would) holds the write lock.
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    match store.create(&new_bot("beta")) {
        Err(RepoError::Busy {
            operation,
            waited_ms,
        }) => assert_eq!((operation, waited_ms), ("create", 50)),
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(matches!(
        store.set_status(&bot.id, BotStatus::Starting),
        Err(RepoError::Busy { .. })
    ));
    assert!(matches!(store.delete(&bot.id), Err(RepoError::Busy { .. })));
    // WAL readers are not blocked by a writer.
    assert_eq!(store.get(&bot.id).unwrap(), bot);
    assert_eq!(store.list(None).unwrap(), vec![bot.clone()]);
    other.execute_batch("ROLLBACK").unwrap();

    // Nothing was changed; retrying works.
    assert_eq!(store.get(&bot.id).unwrap(), bot);
    store.create(&new_bot("beta")).unwrap();
    store.set_status(&bot.id, BotStatus::Starting).unwrap();
}

#[test]
fn rows_this_code_cannot_decode_are_corruption() {
    let (_dir, path) = migrated_db();
    let store = SqliteStore::open(&path).unwrap();
    store.create(&new_bot("fine")).unwrap();

    // Damage written behind the store's back, past the CHECK constraints.
    let other = Connection::open(&path).unwrap();
    other
        .pragma_update(None, "ignore_check_constraints", true)
        .unwrap();
    let bad_status = id(1);
    other
        .execute(
            "INSERT INTO bots VALUES (?1, 'bad-status', 'openai', 'm', 'slack', NULL, \
             'exploded', 1, 1, NULL)",
            [bad_status.to_string()],
        )
        .unwrap();
    other
        .execute(
            "INSERT INTO bots VALUES ('zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz', 'bad-id', \
             'openai', 'm', 'slack', NULL, 'created', 2, 2, NULL)",
            [],
        )
        .unwrap();
    let bad_time = id(2);
    other
        .execute(
            "INSERT INTO bots VALUES (?1, 'bad-time', 'openai', 'm', 'slack', NULL, \
             'created', 9223372036854775807, 3, NULL)",
            [bad_time.to_string()],
        )
        .unwrap();
    let bad_root = id(3);
    other
        .execute(
            "INSERT INTO bots VALUES (?1, 'bad-root', 'openai', 'm', 'slack', NULL, \
             'created', 4, 4, 'NOT-A-ROOT')",
            [bad_root.to_string()],
        )
        .unwrap();
    drop(other);

    let corrupt = |result: Result<_, RepoError>, needle: &str| match result {
        Err(RepoError::Corrupt { detail }) => {
            assert!(detail.contains(needle), "{detail}");
        }
        other => panic!("expected Corrupt mentioning {needle}, got {other:?}"),
    };
    corrupt(store.get(&bad_status).map(|_| ()), "exploded");
    corrupt(
        store.get_by_name(&"bad-id".parse().unwrap()).map(|_| ()),
        "zzzzzzzz",
    );
    corrupt(store.get(&bad_time).map(|_| ()), "9223372036854775807");
    corrupt(store.get(&bad_root).map(|_| ()), "NOT-A-ROOT");
    corrupt(store.list(None).map(|_| ()), "");
    corrupt(
        store.set_status(&bad_status, BotStatus::Failed).map(|_| ()),
        "exploded",
    );
    // The sound row still reads.
    store.get_by_name(&"fine".parse().unwrap()).unwrap();
}
