//! A server stopped and started while a store is in use: operations fail with the
//! retryable error while it is down, and work again once it is back, without a new
//! store (the pool drops its dead connections by itself).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use botmaker_domain::{BotRepository, RepoError};
use botmaker_postgres::{DatabaseUrl, PgOptions, PgStore, migrate};
use botmaker_testkit::pg::PrivateServer;

use crate::support::new_bot;

#[test]
#[allow(clippy::too_many_lines)] // one story: up, down, up again
fn the_store_recovers_by_itself_after_a_server_restart() {
    // A server of this test's own: stopping the shared one would fail other tests.
    let server = PrivateServer::start("restart");
    server.create_database("registry");
    let url = DatabaseUrl::parse(&format!(
        "{} password=hunter2-secret",
        server.url("registry")
    ))
    .unwrap();
    migrate(&url).unwrap();
    let options = PgOptions {
        pool_size: 4,
        ..PgOptions::default()
    };
    let store = PgStore::open(&url, options).unwrap();
    let bot = store.create(&new_bot("before-restart")).unwrap();

    // Workers use every connection of the pool while the server goes down and up.
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u32, Vec::new());
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    match store
                        .create(&new_bot(&format!("w{t}-{i}")))
                        .and_then(|b| store.get(&b.id))
                    {
                        Ok(_) => ok += 1,
                        Err(e) => failed.push(e),
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                (ok, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        store.open_connections() >= 2,
        "the workers use several connections"
    );

    server.stop();
    // Down: every call fails fast with the retryable error, naming the database and
    // its socket, never the password.
    for _ in 0..3 {
        let start = Instant::now();
        let e = store.get(&bot.id).unwrap_err();
        assert!(e.is_retryable(), "{e:?}");
        assert!(matches!(e, RepoError::Unavailable { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("registry"), "{text}");
        assert!(text.contains(&url.host()), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }
    std::thread::sleep(Duration::from_millis(200));

    server.restart();
    // Back: the same store works again (at most one more failure per connection the
    // pool had, all retryable).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after = Vec::new();
    let got = loop {
        match store.get(&bot.id) {
            Ok(b) => break b,
            Err(e) => {
                assert!(e.is_retryable(), "{e:?}");
                after.push(e);
                assert!(Instant::now() < deadline, "not recovered: {after:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert_eq!(got, bot);
    assert!(after.len() <= 4, "{after:?}");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let mut failures = 0;
    for w in workers {
        let (ok, failed) = w.join().unwrap();
        assert!(ok > 0, "a worker never succeeded");
        for e in &failed {
            assert!(e.is_retryable(), "{e:?}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        failures += failed.len();
    }
    assert!(failures > 0, "the workers saw the server go down");
    // Every acknowledged create is there, and the pool is within its size.
    assert!(store.list(None).unwrap().len() > 1);
    assert!(
        store.open_connections() <= 4,
        "{}",
        store.open_connections()
    );
    let created = store.create(&new_bot("after-restart")).unwrap();
    assert_eq!(store.get(&created.id).unwrap(), created);
    assert_eq!(store.consistency_check().unwrap(), Vec::<String>::new());
}
