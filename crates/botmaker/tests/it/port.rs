//! The facade over the repository port: any `BotRepository` injected with
//! `Botmaker::new` (the in-memory one here) gets the same operations, the same
//! consistency of the two halves, and the same results as SQLite; a registry this
//! build cannot open is refused, naming it without its password.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use botmaker::domain::{
    Bot, BotId, BotName, BotRef, BotRepository, BotStatus, Clock, ContainerId, MemoryRepository,
    NewBot, PageCursor, RepoError, SecretName,
};
use botmaker::secrets::{SecretsError, SecretsStore};
use botmaker::{Botmaker, Config, Database, Error, FindingKind};
use botmaker_testkit::conformance::{ManualClock, T0, new_bot_with_id};

use crate::{new_bot, required};

/// A facade over a fresh `MemoryRepository` and a secrets store in a temp dir; the
/// registry is returned too, shared with the facade.
fn memory_install(clock: Clock) -> (tempfile::TempDir, Arc<dyn BotRepository>, Botmaker) {
    let dir = tempfile::tempdir().unwrap();
    let registry: Arc<dyn BotRepository> = Arc::new(MemoryRepository::with_clock(clock));
    let secrets = SecretsStore::open(&dir.path().join("secrets")).unwrap();
    let bm = Botmaker::new(Arc::clone(&registry), secrets);
    (dir, registry, bm)
}

fn bot_dirs(bm: &Botmaker) -> Vec<BotId> {
    bm.secrets().bots().unwrap()
}

#[test]
fn every_operation_works_on_an_injected_memory_repository() {
    let (_dir, registry, bm) = memory_install(Clock::system());
    assert!(Arc::ptr_eq(bm.registry(), &registry));
    assert!(format!("{bm:?}").contains("\"injected\""), "{bm:?}");
    #[cfg(feature = "sqlite")]
    assert!(bm.sqlite().is_none());

    let key: SecretName = "ai_api_key".parse().unwrap();
    let bot = bm.create_bot(&new_bot("alpha"), &required()).unwrap();
    // Written through the facade, seen by the caller's own handle of the registry.
    assert_eq!(registry.get(&bot.id).unwrap(), bot);
    assert_eq!(bot_dirs(&bm), vec![bot.id]);
    let by_name = bm.resolve(&BotRef::Name("alpha".parse().unwrap())).unwrap();
    assert_eq!(by_name, bot);
    assert_eq!(bm.resolve(&BotRef::Id(bot.id)).unwrap(), bot);
    assert_eq!(bm.list_bots(None).unwrap(), vec![bot.clone()]);

    let running = bm.set_status(&bot, BotStatus::Starting).unwrap();
    assert_eq!(running.status, BotStatus::Starting);
    assert!(matches!(
        bm.set_status(&running, BotStatus::Created),
        Err(Error::Repo(RepoError::InvalidTransition { .. }))
    ));
    let container: ContainerId = "c0ffee".parse().unwrap();
    let with = bm.set_container_id(&running, Some(&container)).unwrap();
    assert_eq!(with.container_id, Some(container));

    assert_eq!(bm.get_secret(&bot, &key).unwrap().expose(), b"k");
    bm.rotate_secret(&bot, &key, b"k2").unwrap();
    assert_eq!(
        bm.get_secrets(&bot, std::slice::from_ref(&key)).unwrap()[0].expose(),
        b"k2"
    );
    assert_eq!(bm.get_all_secrets(&bot).unwrap().len(), 3);
    assert_eq!(bm.list_secrets(&bot).unwrap().len(), 3);
    assert!(bm.missing_secrets(&bot).unwrap().is_empty());
    bm.remove_secret(&bot, &key).unwrap();
    assert_eq!(bm.missing_secrets(&bot).unwrap(), vec![key.clone()]);
    bm.set_secret(&bot, &key, b"k3").unwrap();

    let deleted = bm.delete_bot(&with).unwrap();
    assert_eq!(deleted.id, bot.id);
    assert!(matches!(
        registry.get(&bot.id),
        Err(RepoError::NotFound { .. })
    ));
    assert!(bot_dirs(&bm).is_empty());
    assert!(matches!(
        bm.resolve(&BotRef::Name("alpha".parse().unwrap())),
        Err(Error::Repo(RepoError::NotFound { .. }))
    ));
}

#[test]
fn a_taken_name_or_id_is_refused_before_the_disk_is_touched() {
    let (_dir, registry, bm) = memory_install(Clock::system());
    let first = registry.create(&new_bot("alpha")).unwrap();
    assert!(matches!(
        bm.create_bot(&new_bot("alpha"), &required()),
        Err(Error::Repo(RepoError::NameTaken { .. }))
    ));
    let same_id = NewBot::with_id(
        first.id,
        "beta".parse().unwrap(),
        "openai".parse().unwrap(),
        "gpt-4o".parse().unwrap(),
        "slack".parse().unwrap(),
    );
    assert!(matches!(
        bm.create_bot(&same_id, &required()),
        Err(Error::Repo(RepoError::IdTaken { .. }))
    ));
    assert!(bot_dirs(&bm).is_empty());
    assert_eq!(registry.list(None).unwrap(), vec![first]);
}

/// A registry that answers like the one it wraps, except that `create` and `delete`
/// fail with the retryable `Busy` while `fail` is set: what another backend's
/// transient failure looks like through the port.
struct Flaky {
    inner: MemoryRepository,
    fail: AtomicBool,
}

impl Flaky {
    fn busy(&self, operation: &'static str) -> Result<(), RepoError> {
        if self.fail.load(Ordering::SeqCst) {
            Err(RepoError::Busy {
                operation,
                waited_ms: 1,
            })
        } else {
            Ok(())
        }
    }
}

impl BotRepository for Flaky {
    fn create(&self, new: &NewBot) -> Result<Bot, RepoError> {
        self.busy("create")?;
        self.inner.create(new)
    }
    fn get(&self, id: &BotId) -> Result<Bot, RepoError> {
        self.inner.get(id)
    }
    fn get_by_name(&self, name: &BotName) -> Result<Bot, RepoError> {
        self.inner.get_by_name(name)
    }
    fn list(&self, status: Option<BotStatus>) -> Result<Vec<Bot>, RepoError> {
        self.inner.list(status)
    }
    fn list_page(
        &self,
        status: Option<BotStatus>,
        after: Option<PageCursor>,
        limit: usize,
    ) -> Result<Vec<Bot>, RepoError> {
        self.inner.list_page(status, after, limit)
    }
    fn set_status(&self, id: &BotId, to: BotStatus) -> Result<Bot, RepoError> {
        self.inner.set_status(id, to)
    }
    fn set_container_id(
        &self,
        id: &BotId,
        container: Option<&ContainerId>,
    ) -> Result<Bot, RepoError> {
        self.inner.set_container_id(id, container)
    }
    fn adopt_secrets_root(
        &self,
        id: &BotId,
        root: &botmaker::domain::SecretsRootId,
    ) -> Result<Bot, RepoError> {
        self.inner.adopt_secrets_root(id, root)
    }
    fn delete(&self, id: &BotId) -> Result<(), RepoError> {
        self.busy("delete")?;
        self.inner.delete(id)
    }
}

#[test]
fn a_failing_registry_leaves_neither_half_behind_and_stays_retryable() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = Arc::new(Flaky {
        inner: MemoryRepository::new(),
        fail: AtomicBool::new(true),
    });
    let secrets = SecretsStore::open(&dir.path().join("secrets")).unwrap();
    let bm = Botmaker::new(flaky.clone(), secrets);

    // Create: the directory and secrets were written, the row failed: both undone.
    let new = new_bot("alpha");
    let err = bm.create_bot(&new, &required()).unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(matches!(err, Error::Repo(RepoError::Busy { .. })), "{err}");
    assert!(bot_dirs(&bm).is_empty());
    assert!(flaky.inner.list(None).unwrap().is_empty());

    // The same call succeeds once the registry does.
    flaky.fail.store(false, Ordering::SeqCst);
    let bot = bm.create_bot(&new, &required()).unwrap();

    // Delete: the row's delete failed, so the secrets are untouched.
    flaky.fail.store(true, Ordering::SeqCst);
    let err = bm.delete_bot(&bot).unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(bot_dirs(&bm), vec![bot.id]);
    assert_eq!(bm.missing_secrets(&bot).unwrap(), Vec::<SecretName>::new());
    flaky.fail.store(false, Ordering::SeqCst);
    bm.delete_bot(&bot).unwrap();
    assert!(bot_dirs(&bm).is_empty());
    assert!(matches!(
        bm.get_secret(&bot, &"ai_api_key".parse().unwrap()),
        Err(Error::Secrets(SecretsError::NotFound { .. }))
    ));
}

/// One script of facade calls, run on a facade; every bot it returns, in order.
fn script(bm: &Botmaker, clock: &ManualClock) -> Vec<Bot> {
    let mut seen = Vec::new();
    for (n, name) in ["alpha", "beta", "gamma"].iter().enumerate() {
        clock.advance(1_000);
        let created = bm
            .create_bot(&new_bot_with_id(n as u64 + 1, name), &required())
            .unwrap();
        seen.push(created);
    }
    clock.advance(1_000);
    let beta = bm.resolve(&BotRef::Name("beta".parse().unwrap())).unwrap();
    seen.push(bm.set_status(&beta, BotStatus::Starting).unwrap());
    clock.advance(1_000);
    let container: ContainerId = "c0ffee".parse().unwrap();
    seen.push(bm.set_container_id(&beta, Some(&container)).unwrap());
    let alpha = bm.resolve(&BotRef::Id(seen[0].id)).unwrap();
    seen.push(bm.delete_bot(&alpha).unwrap());
    seen.extend(bm.list_bots(None).unwrap());
    seen.extend(bm.list_bots(Some(BotStatus::Starting)).unwrap());
    seen
}

#[cfg(feature = "sqlite")]
#[test]
fn the_same_calls_give_the_same_bots_on_sqlite_and_in_memory() {
    let install = crate::Install::new();
    let clock = ManualClock::new(T0);
    let mut options = botmaker::RegistryOptions::default();
    options.sqlite.clock = clock.clock();
    let sqlite = Botmaker::open_with(
        &install.config,
        options,
        botmaker::secrets::SecretsOptions::default(),
    )
    .unwrap();
    assert!(sqlite.sqlite().is_some());
    assert!(format!("{sqlite:?}").contains("\"sqlite\""), "{sqlite:?}");
    let on_sqlite = script(&sqlite, &clock);

    let clock = ManualClock::new(T0);
    let (_dir, _registry, memory) = memory_install(clock.clock());
    let in_memory = script(&memory, &clock);
    // Each installation records its own secrets root: the same bots but for it.
    assert!(
        on_sqlite
            .iter()
            .all(|b| b.secrets_root == Some(sqlite.secrets_root()))
    );
    let on_sqlite: Vec<Bot> = on_sqlite
        .into_iter()
        .map(|b| Bot {
            secrets_root: Some(memory.secrets_root()),
            ..b
        })
        .collect();
    assert_eq!(on_sqlite, in_memory);
    assert_eq!(on_sqlite.len(), 9); // 6 calls, a list of 2, a list of 1
    assert_eq!(
        sqlite.secrets().bots().unwrap().len(),
        memory.secrets().bots().unwrap().len()
    );
}

/// A configuration that selects PostgreSQL, with a password in its URL: a server that
/// is not there (nothing listens on port 1 of the loopback).
fn postgres_config(dir: &std::path::Path) -> Config {
    let url = "postgres://alice:hunter2@127.0.0.1:1/botmaker";
    let database = Database::parse(url, "BOTMAKER_DATABASE_URL").unwrap();
    Config::new(dir.join("data"), dir.join("secrets")).with_database(database)
}

#[test]
fn a_postgres_registry_that_cannot_be_reached_is_refused_naming_it_without_its_password() {
    // This build has the `postgres` feature (the test binary enables it): every entry
    // point goes to the server, and says which one it could not reach. A build
    // without the feature says `Error::Unsupported` instead (unit-tested in
    // registry.rs, since this binary cannot lack the feature).
    let dir = tempfile::tempdir().unwrap();
    let config = postgres_config(dir.path());
    let expected = "cannot connect to postgresql database botmaker on 127.0.0.1";
    let err = Botmaker::open(&config).unwrap_err();
    assert!(matches!(err, Error::Postgres(_)), "{err:?}");
    assert!(err.to_string().starts_with(expected), "{err}");
    assert!(!format!("{err:?}").contains("hunter2") && !err.to_string().contains("hunter2"));
    assert!(err.is_retryable());
    let err = botmaker::migrate(&config).unwrap_err();
    assert!(err.to_string().starts_with(expected), "{err}");
    let err = botmaker::migration_status(&config).unwrap_err();
    assert!(err.to_string().starts_with(expected), "{err}");

    let report = Botmaker::doctor(&config, true);
    assert!(!report.is_healthy());
    let finding = &report.findings[0];
    assert_eq!(finding.kind, FindingKind::Database);
    assert_eq!(finding.subject, "postgres://alice:***@127.0.0.1:1/botmaker");
    assert!(finding.detail.starts_with(expected), "{}", finding.detail);
    assert!(!format!("{report:?}").contains("hunter2"));

    // Backups copy an SQLite registry only (for now).
    #[cfg(feature = "backup")]
    {
        let err = botmaker::backup(&config, &dir.path().join("backup"), |_| {}).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "backup and restore copy an SQLite registry, and this installation's \
                 registry is postgres://alice:***@127.0.0.1:1/botmaker"
            ),
            "{err}"
        );
        assert!(!dir.path().join("backup").exists());
    }
    // Nothing was created: no data folder, no database; the doctor opened the
    // secrets store, which makes its root, and nothing else.
    assert!(!dir.path().join("data").exists());
}

#[cfg(feature = "tokio")]
#[test]
fn the_async_facade_runs_over_an_injected_registry_too() {
    let (_dir, registry, bm) = memory_install(Clock::system());
    let bm = botmaker::aio::AsyncBotmaker::new(bm);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let key: SecretName = "ai_api_key".parse().unwrap();
    rt.block_on(async {
        let value = botmaker::secrets::SecretValue::from_bytes(b"sk-test");
        let bot = bm
            .create_bot(&new_bot("alpha"), vec![(key.clone(), value)])
            .await
            .unwrap();
        assert_eq!(registry.get(&bot.id).unwrap(), bot);
        let found = bm.resolve(&BotRef::Id(bot.id)).await.unwrap();
        assert_eq!(
            bm.get_secret(&found, &key).await.unwrap().expose(),
            b"sk-test"
        );
        bm.delete_bot(&found).await.unwrap();
        assert!(bm.list_bots(None).await.unwrap().is_empty());
    });
    assert!(registry.list(None).unwrap().is_empty());
}
