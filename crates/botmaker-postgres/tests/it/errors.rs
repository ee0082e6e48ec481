//! Errors mapped by meaning: unique violations by constraint name, a server that is
//! down at open, a database that does not exist; and the password never shown.

use std::sync::{Arc, Barrier};

use botmaker_domain::{BotRepository, BotStatus, RepoError};
use botmaker_postgres::{DatabaseUrl, PgError, PgOptions, PgStore};
use botmaker_testkit::conformance::new_bot_with_id;

use tracing_subscriber::layer::SubscriberExt as _;

use crate::support::{migrated_db, new_bot};

/// Counts the store's "retrying" events, each with SQLSTATE 40001.
struct CountRetries(Arc<std::sync::atomic::AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountRetries {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Find(bool, bool);
        impl tracing::field::Visit for Find {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" && format!("{value:?}").contains("retrying") {
                    self.0 = true;
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "sqlstate" && value == "40001" {
                    self.1 = true;
                }
            }
        }
        let mut find = Find(false, false);
        event.record(&mut find);
        if find.0 && find.1 {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

#[test]
fn racing_creates_of_one_name_or_id_map_to_name_taken_or_id_taken() {
    const THREADS: usize = 8;
    let (_db, url) = migrated_db("unique");
    let store = PgStore::open(&url, PgOptions::default()).unwrap();
    for round in 0..20u64 {
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS as u64)
            .map(|t| {
                let store = store.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    // Even rounds: one name, different ids. Odd rounds: one id, different names.
                    let new = if round % 2 == 0 {
                        new_bot_with_id(1000 * round + t + 1, &format!("same-{round}"))
                    } else {
                        new_bot_with_id(1000 * round, &format!("n{round}-{t}"))
                    };
                    barrier.wait();
                    store.create(&new)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        for r in results.into_iter().filter_map(Result::err) {
            if round % 2 == 0 {
                assert!(matches!(r, RepoError::NameTaken { .. }), "{r:?}");
            } else {
                assert!(matches!(r, RepoError::IdTaken { .. }), "{r:?}");
            }
        }
    }
    assert_eq!(store.list(None).unwrap().len(), 20);
}

#[test]
fn racing_transitions_of_one_bot_make_exactly_the_allowed_ones() {
    const THREADS: usize = 8;
    let (_db, url) = migrated_db("transitions");
    let store = PgStore::open(&url, PgOptions::default()).unwrap();
    for round in 0..10 {
        let bot = store
            .create(&new_bot(&format!("contested-{round}")))
            .unwrap();
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let store = store.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    store.set_status(&bot.id, BotStatus::Starting)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        // created -> starting once; every other caller then sees starting -> starting,
        // which the lifecycle forbids.
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        for r in results.into_iter().filter_map(Result::err) {
            assert!(
                matches!(
                    r,
                    RepoError::InvalidTransition {
                        from: BotStatus::Starting,
                        to: BotStatus::Starting,
                        ..
                    }
                ),
                "{r:?}"
            );
        }
        assert_eq!(store.get(&bot.id).unwrap().status, BotStatus::Starting);
    }
}

#[test]
fn a_server_that_is_down_at_open_is_named_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    for s in [
        format!(
            "host={} user=bm password=hunter2-secret dbname=registry",
            dir.path().display()
        ),
        "postgres://bm:hunter2-secret@127.0.0.1:1/registry".to_owned(),
    ] {
        let url = DatabaseUrl::parse(&s).unwrap();
        let e = PgStore::open(&url, PgOptions::default()).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, PgError::Connect { .. }), "{e:?}");
        assert!(e.is_retryable());
        assert!(text.contains("registry"), "{text}");
        assert!(text.contains(&url.host()), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
        for e in [
            botmaker_postgres::migrate(&url).unwrap_err(),
            botmaker_postgres::migration_status(&url).unwrap_err(),
        ] {
            assert!(matches!(e, PgError::Connect { .. }), "{e:?}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }
}

#[test]
fn a_database_that_does_not_exist_is_named() {
    let (db, _url) = migrated_db("nodb");
    let url =
        DatabaseUrl::parse(&botmaker_testkit::pg::with_dbname(db.url(), "no_such_db")).unwrap();
    let e = PgStore::open(&url, PgOptions::default()).unwrap_err();
    assert!(matches!(e, PgError::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains("no_such_db"), "{e}");
}

#[test]
fn serialization_failures_are_retried_under_serializable_isolation() {
    // Every transaction of this database runs SERIALIZABLE: concurrent updates of one
    // row then fail with SQLSTATE 40001, which the store retries (or, past its
    // bound, reports as the retryable Busy), never as a backend failure.
    const THREADS: usize = 8;
    let retries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(CountRetries(Arc::clone(&retries))),
    )
    .unwrap();
    let (db, url) = migrated_db("serializable");
    db.client()
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET default_transaction_isolation = 'serializable'",
            db.name()
        ))
        .unwrap();
    let store = PgStore::open(&url, PgOptions::default()).unwrap();
    let mut retried_or_refused = 0;
    for round in 0..10 {
        let bot = store.create(&new_bot(&format!("serial-{round}"))).unwrap();
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = store.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    // Half move it along the lifecycle, half fail it: both are allowed
                    // from `created`, so they conflict on the row.
                    let to = if t % 2 == 0 {
                        BotStatus::Starting
                    } else {
                        BotStatus::Failed
                    };
                    store.set_status(&bot.id, to)
                })
            })
            .collect();
        for r in handles.into_iter().map(|h| h.join().unwrap()) {
            match r {
                Ok(_) | Err(RepoError::InvalidTransition { .. }) => {}
                Err(e @ RepoError::Busy { .. }) => {
                    assert!(e.is_retryable());
                    retried_or_refused += 1;
                }
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        let status = store.get(&bot.id).unwrap().status;
        assert!(
            matches!(status, BotStatus::Starting | BotStatus::Failed),
            "{status}"
        );
    }
    let isolation: String = db
        .client()
        .query_one("SHOW default_transaction_isolation", &[])
        .unwrap()
        .get(0);
    assert_eq!(isolation, "serializable");
    let retries = retries.load(std::sync::atomic::Ordering::SeqCst);
    println!("40001 retries: {retries}, busy after retries: {retried_or_refused}");
    assert!(
        retries > 0,
        "no serialization failure happened: the test proves nothing"
    );
}

/// A status change that meets a row another transaction is changing waits for it, then
/// is checked against the row that transaction committed (READ COMMITTED evaluates the
/// `UPDATE`'s `WHERE status = ANY(…)` again on the new version): the lifecycle holds
/// against what is stored, and no change is lost.
#[test]
fn a_status_change_waiting_on_a_locked_row_is_checked_against_what_commits() {
    use BotStatus::{Failed, Running, Starting, Stopped, Stopping};
    let (db, url) = migrated_db("recheck");
    let store = PgStore::open(&url, PgOptions::default()).unwrap();
    let mut other = db.client();
    let mut watcher = db.client();
    // The bot's path, what the other transaction commits, the change asked for, and
    // what it must give.
    let cases = [
        // stopping -> stopped is allowed, but the row became failed meanwhile, and
        // failed -> stopped is not.
        (
            &[Starting, Running, Stopping][..],
            Failed,
            Stopped,
            Err(Failed),
        ),
        // running -> failed is allowed, and so is stopping -> failed: it applies on
        // top of the other change, which is not lost.
        (&[Starting, Running][..], Stopping, Failed, Ok(Failed)),
    ];
    for (n, (path, committed, to, expected)) in cases.into_iter().enumerate() {
        let bot = store.create(&new_bot(&format!("recheck-{n}"))).unwrap();
        for &step in path {
            store.set_status(&bot.id, step).unwrap();
        }
        let key = bot.id.to_string();
        let mut tx = other.transaction().unwrap();
        tx.execute(
            "UPDATE bots SET status = $1 WHERE id = $2",
            &[&committed.as_str(), &key],
        )
        .unwrap();
        let change = {
            let store = store.clone();
            std::thread::spawn(move || store.set_status(&bot.id, to))
        };
        // The change waits on the row lock the other transaction holds.
        let start = std::time::Instant::now();
        loop {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .unwrap()
                .get(0);
            if waiting == 1 {
                break;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "case {n}: the status change never waited on the locked row"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        tx.commit().unwrap();
        let result = change.join().unwrap();
        match (expected, result) {
            (Ok(status), Ok(changed)) => {
                assert_eq!(changed.status, status, "case {n}");
                assert_eq!(store.get(&bot.id).unwrap(), changed, "case {n}");
            }
            (Err(from), Err(RepoError::InvalidTransition { id, from: f, to: t })) => {
                assert_eq!((id, f, t), (bot.id, from, to), "case {n}");
                assert_eq!(store.get(&bot.id).unwrap().status, committed, "case {n}");
            }
            (expected, result) => panic!("case {n}: expected {expected:?}, got {result:?}"),
        }
    }
}
