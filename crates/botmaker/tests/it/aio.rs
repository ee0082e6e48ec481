//! The async adapter (`botmaker::aio`, feature `tokio`): dropped futures never leave
//! half an operation, and the runtime stays responsive while durable writes run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use botmaker::aio::{AsyncBotmaker, AsyncRegistry, AsyncSecrets};
use botmaker::domain::{BotId, BotRef, BotRepository, MemoryRepository, RepoError, SecretName};
use botmaker::secrets::{SecretValue, SecretsOptions};
use botmaker::{Botmaker, Error};
use botmaker_testkit::rng::Rng;

use crate::{Install, new_bot, required};

/// What a bot slot holds in the model: its id and its secrets' values.
type Slot = Option<(BotId, BTreeMap<SecretName, Vec<u8>>)>;

/// One operation on one slot (a bot name), and the model's state if it happened.
#[derive(Debug)]
enum Op {
    Create(botmaker::domain::NewBot, Vec<(SecretName, Vec<u8>)>),
    Rotate(SecretName, Vec<u8>),
    Set(SecretName, Vec<u8>),
    Remove(SecretName),
    Delete,
}

fn apply(slot: &Slot, op: &Op) -> Slot {
    let mut next = slot.clone();
    match (op, &mut next) {
        (Op::Create(new, secrets), None) => {
            next = Some((new.id, secrets.iter().cloned().collect()));
        }
        (Op::Rotate(name, v) | Op::Set(name, v), Some((_, s))) => {
            s.insert(name.clone(), v.clone());
        }
        (Op::Remove(name), Some((_, s))) => {
            s.remove(name);
        }
        (Op::Delete, Some(_)) => next = None,
        (op, slot) => panic!("the generator made {op:?} for {slot:?}"),
    }
    next
}

/// The slot as the stores hold it: the registry row by name, and every secret's value.
fn observe(bm: &Botmaker, name: &str) -> Slot {
    let by_name: BotRef = name.parse().unwrap();
    let bot = match bm.resolve(&by_name) {
        Ok(bot) => bot,
        Err(Error::Repo(RepoError::NotFound { .. })) => return None,
        Err(e) => panic!("resolve {name}: {e}"),
    };
    let secrets = bm
        .list_secrets(&bot)
        .unwrap()
        .into_iter()
        .map(|m| {
            let v = bm.get_secret(&bot, &m.name).unwrap().expose().to_vec();
            (m.name, v)
        })
        .collect();
    Some((bot.id, secrets))
}

fn value(rng: &mut Rng, tag: &str) -> Vec<u8> {
    format!("{tag}-{:016x}", rng.next_u64()).into_bytes()
}

fn random_op(rng: &mut Rng, name: &str, slot: &Slot) -> Op {
    let key: SecretName = "ai_api_key".parse().unwrap();
    let extra: SecretName = "extra".parse().unwrap();
    match slot {
        None => {
            let secrets = required()
                .into_iter()
                .map(|(n, _)| {
                    let v = value(rng, n.as_str());
                    (n, v)
                })
                .collect();
            Op::Create(new_bot(name), secrets)
        }
        Some((_, secrets)) => match rng.below(5) {
            1 => Op::Set(extra, value(rng, "extra")),
            2 if secrets.contains_key(&extra) => Op::Remove(extra),
            3 => Op::Delete,
            _ => Op::Rotate(key, value(rng, "rotated")),
        },
    }
}

/// Runs `op` through the async API; `Ok(true)`: done, `Err`: the call failed.
async fn run_op(bm: AsyncBotmaker, name: String, op: Arc<Op>) -> Result<(), Error> {
    let by_name: BotRef = name.parse().unwrap();
    let secret = |v: &[u8]| SecretValue::from_bytes(v);
    match op.as_ref() {
        Op::Create(new, secrets) => {
            let owned = secrets
                .iter()
                .map(|(n, v)| (n.clone(), secret(v)))
                .collect();
            bm.create_bot(new, owned).await.map(drop)
        }
        Op::Rotate(n, v) => {
            let bot = bm.resolve(&by_name).await?;
            bm.rotate_secret(&bot, n, secret(v)).await
        }
        Op::Set(n, v) => {
            let bot = bm.resolve(&by_name).await?;
            bm.set_secret(&bot, n, secret(v)).await
        }
        Op::Remove(n) => {
            let bot = bm.resolve(&by_name).await?;
            bm.remove_secret(&bot, n).await
        }
        Op::Delete => {
            let bot = bm.resolve(&by_name).await?;
            bm.delete_bot(&bot).await.map(drop)
        }
    }
}

/// Futures dropped at random points (before their first poll, by a tiny timeout, by
/// an abort after a random sleep): after the runtime is dropped (which waits for the
/// blocking closures that started), each operation either fully happened or not at
/// all, the stores agree with each other, and the doctor finds nothing.
#[test]
fn dropped_futures_never_leave_half_an_operation() {
    let install = Install::new();
    let bm = AsyncBotmaker::new(install.open());
    let mut rng = Rng::new(Rng::seed_from_env("BOTMAKER_AIO_SEED"));
    let names: Vec<String> = (0..6).map(|i| format!("slot-{i}")).collect();
    let mut model: Vec<Slot> = vec![None; names.len()];
    let (mut completed, mut dropped, mut happened_anyway) = (0, 0, 0);
    for _round in 0..25 {
        let ops: Vec<Arc<Op>> = names
            .iter()
            .zip(&model)
            .map(|(n, s)| Arc::new(random_op(&mut rng, n, s)))
            .collect();
        let plans: Vec<(u64, u64)> = ops
            .iter()
            .map(|_| (rng.below(4), rng.below(3000)))
            .collect();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        // `Some(result)`: the call returned; `None`: its future was dropped.
        let results: Vec<Option<Result<(), Error>>> = rt.block_on(async {
            let mut handles = Vec::new();
            for ((name, op), &(how, micros)) in names.iter().zip(&ops).zip(&plans) {
                let fut = run_op(bm.clone(), name.clone(), Arc::clone(op));
                let wait = Duration::from_micros(micros);
                handles.push(tokio::spawn(async move {
                    match how {
                        // Never polled: nothing may happen.
                        0 => {
                            drop(fut);
                            None
                        }
                        // Dropped when a tiny timeout fires.
                        1 => tokio::time::timeout(wait, fut).await.ok(),
                        // Dropped by an abort of the task that polls it.
                        2 => {
                            let task = tokio::spawn(fut);
                            tokio::time::sleep(wait).await;
                            task.abort();
                            task.await.ok()
                        }
                        // Awaited.
                        _ => Some(fut.await),
                    }
                }));
            }
            let mut out = Vec::new();
            for h in handles {
                out.push(h.await.unwrap());
            }
            out
        });
        // Quiescence: dropping the runtime waits for every blocking closure that
        // started (and drops the queued ones, which then never run).
        drop(rt);
        for (i, result) in results.into_iter().enumerate() {
            let before = model[i].clone();
            let after = apply(&before, &ops[i]);
            let seen = observe(bm.sync(), &names[i]);
            match result {
                Some(Ok(())) => {
                    completed += 1;
                    assert_eq!(seen, after, "{:?} returned Ok", ops[i]);
                }
                Some(Err(e)) => panic!("{:?} failed: {e}", ops[i]),
                None => {
                    dropped += 1;
                    if seen == after {
                        happened_anyway += 1;
                    } else {
                        assert_eq!(
                            seen, before,
                            "{:?} dropped: neither before nor after",
                            ops[i]
                        );
                    }
                }
            }
            model[i] = seen;
        }
        // The two halves agree: a directory for every row, none without one.
        let rows: Vec<BotId> = {
            let mut v: Vec<BotId> = bm
                .sync()
                .list_bots(None)
                .unwrap()
                .iter()
                .map(|b| b.id)
                .collect();
            v.sort();
            v
        };
        let mut dirs = bm.sync().secrets().bots().unwrap();
        dirs.sort();
        assert_eq!(rows, dirs, "registry and secrets disagree");
    }
    let report = Botmaker::doctor(&install.config, false);
    assert!(report.is_healthy(), "{report}");
    eprintln!(
        "{completed} completed, {dropped} dropped ({happened_anyway} of them ran to completion anyway)"
    );
    assert!(completed > 0 && dropped > 0, "both kinds must be exercised");
}

/// Ticks of a 1 ms interval on a current-thread runtime while `work` runs on it.
/// Returns (the longest gap between two ticks, ticks, how long the work took).
fn ticker_during<F: std::future::Future<Output = ()>>(
    rt: &tokio::runtime::Runtime,
    work: impl FnOnce() -> F,
) -> (Duration, usize, Duration) {
    rt.block_on(async {
        let ticks = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let recorder = Arc::clone(&ticks);
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                recorder.lock().unwrap().push(Instant::now());
            }
        });
        // Let the ticker start.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let start = Instant::now();
        ticks.lock().unwrap().clear();
        ticks.lock().unwrap().push(start);
        work().await;
        let elapsed = start.elapsed();
        // One more tick after the work: a stall at its end counts too.
        tokio::time::sleep(Duration::from_millis(3)).await;
        ticker.abort();
        let ticks = ticks.lock().unwrap().clone();
        let max_gap = ticks
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(elapsed);
        (max_gap, ticks.len(), elapsed)
    })
}

/// How long the batch of rotations runs (long enough that running it on the runtime
/// thread must show as a stall far over the bound).
const BATCH: Duration = Duration::from_millis(500);
/// The longest gap between ticks the async batch may cause: far under the batch,
/// and over the scheduling noise of a loaded 2-core machine (gaps of 10 to 30 ms
/// seen while other builds ran).
const MAX_GAP: Duration = Duration::from_millis(150);

fn rotation_setup() -> (Install, Arc<Botmaker>, botmaker::domain::Bot) {
    let install = Install::new();
    let bm = Arc::new(install.open());
    let bot = bm.create_bot(&new_bot("ticker"), &required()).unwrap();
    (install, bm, bot)
}

/// A current-thread runtime keeps a 1 ms ticker going while a batch of durable
/// secret rotations (each an fsynced temp file, a rename and an fsynced directory)
/// runs through the async API.
#[test]
fn the_runtime_stays_responsive_during_durable_writes() {
    let (_install, bm, bot) = rotation_setup();
    let abm = AsyncBotmaker::from_arc(Arc::clone(&bm));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let key: SecretName = "ai_api_key".parse().unwrap();
    let rotations = Arc::new(Mutex::new(0u32));
    let count = Arc::clone(&rotations);
    let (max_gap, ticks, elapsed) = ticker_during(&rt, || async move {
        let start = Instant::now();
        while start.elapsed() < BATCH {
            let v = SecretValue::from_bytes(
                format!("rotated-{}", start.elapsed().as_nanos()).as_bytes(),
            );
            abm.rotate_secret(&bot, &key, v).await.unwrap();
            *count.lock().unwrap() += 1;
        }
    });
    let rotations = *rotations.lock().unwrap();
    eprintln!(
        "async: {rotations} rotations in {elapsed:?}; {ticks} ticks, longest gap {max_gap:?}"
    );
    assert!(rotations > 0);
    assert!(
        max_gap < MAX_GAP,
        "the ticker stalled for {max_gap:?} (bound {MAX_GAP:?})"
    );
    let expected = usize::try_from(elapsed.as_millis() / 5).unwrap();
    assert!(
        ticks >= expected,
        "{ticks} ticks in {elapsed:?}: expected at least one per 5 ms"
    );
}

/// The control: the same batch called directly (synchronously) on the runtime thread
/// stalls the ticker for the whole batch. It shows that the responsiveness test's
/// measure can fail.
#[test]
fn the_same_batch_on_the_runtime_thread_stalls_the_ticker() {
    let (_install, bm, bot) = rotation_setup();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let key: SecretName = "ai_api_key".parse().unwrap();
    let (max_gap, ticks, elapsed) = ticker_during(&rt, || async move {
        let start = Instant::now();
        let mut rotations = 0u32;
        while start.elapsed() < BATCH {
            let v = format!("rotated-{}", start.elapsed().as_nanos());
            bm.rotate_secret(&bot, &key, v.as_bytes()).unwrap();
            rotations += 1;
        }
        eprintln!("sync on the runtime thread: {rotations} rotations");
    });
    eprintln!("sync: batch of {elapsed:?}; {ticks} ticks, longest gap {max_gap:?}");
    assert!(
        max_gap >= MAX_GAP,
        "the ticker kept going ({max_gap:?}): the measure cannot see a stall"
    );
    assert!(
        max_gap >= BATCH,
        "the stall lasts the whole batch: {max_gap:?}"
    );
}

/// The piecemeal handles: the registry alone (any repository) and the secrets alone.
#[test]
fn the_registry_and_the_secrets_alone() {
    let install = Install::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let registry = AsyncRegistry::new(MemoryRepository::new());
        let bot = registry.create(&new_bot("alpha")).await.unwrap();
        assert_eq!(registry.get(&bot.id).await.unwrap(), bot);
        assert_eq!(registry.get_by_name(&bot.name).await.unwrap(), bot);
        assert_eq!(registry.list(None).await.unwrap(), vec![bot.clone()]);
        registry.delete(&bot.id).await.unwrap();
        assert!(matches!(
            registry.get(&bot.id).await,
            Err(Error::Repo(RepoError::NotFound { .. }))
        ));

        let sqlite = AsyncRegistry::open_sqlite(
            &install.config.database_path(),
            botmaker::sqlite::StoreOptions::default(),
        )
        .await
        .unwrap();
        let row = sqlite.create(&new_bot("beta")).await.unwrap();
        assert_eq!(sqlite.sync().get(&row.id).unwrap(), row);

        let secrets = AsyncSecrets::open(install.config.secrets_dir(), SecretsOptions::default())
            .await
            .unwrap();
        let key: SecretName = "ai_api_key".parse().unwrap();
        secrets
            .write(&row.id, &key, SecretValue::from_bytes(b"sk-1"))
            .await
            .unwrap();
        secrets
            .replace(&row.id, &key, SecretValue::from_bytes(b"sk-2"))
            .await
            .unwrap();
        assert_eq!(secrets.read(&row.id, &key).await.unwrap().expose(), b"sk-2");
        let many = secrets
            .read_many(&row.id, &[key.clone(), key.clone()])
            .await
            .unwrap();
        assert_eq!(
            many.iter().map(SecretValue::expose).collect::<Vec<_>>(),
            [b"sk-2", b"sk-2"]
        );
        let all = secrets.read_all(&row.id).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!((&all[0].0, all[0].1.expose()), (&key, &b"sk-2"[..]));
        assert_eq!(secrets.list(&row.id).await.unwrap().len(), 1);
        assert_eq!(secrets.bots().await.unwrap(), vec![row.id]);
        let missing = secrets
            .missing(&row.id, &SecretName::required())
            .await
            .unwrap();
        assert_eq!(missing.len(), 2);
        secrets.remove(&row.id, &key).await.unwrap();
        secrets.delete_bot(&row.id).await.unwrap();
        assert!(secrets.audit().await.unwrap().is_clean());
    });
}

/// The handles are `Clone + Send + Sync` (checked at compile time), and a clone
/// shares the store: an `Arc`, not a second open.
#[test]
fn the_handles_are_cheap_to_clone_and_shareable() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<AsyncBotmaker>();
    shareable::<AsyncRegistry>();
    shareable::<AsyncSecrets>();
    let install = Install::new();
    let a = AsyncBotmaker::new(install.open());
    let b = a.clone();
    assert!(Arc::ptr_eq(a.sync(), b.sync()));
}

/// A panic in the blocking closure reaches the caller, and a call on a runtime that
/// shuts down is refused without running.
#[test]
fn a_runtime_that_shuts_down_runs_nothing_new() {
    let install = Install::new();
    let bm = AsyncBotmaker::new(install.open());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    drop(rt);
    // The runtime is gone: spawn_blocking through its handle is refused.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        handle.block_on(bm.create_bot(&new_bot("late"), Vec::new()))
    }));
    match result {
        Ok(Err(Error::RuntimeShutDown)) | Err(_) => {}
        Ok(other) => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        bm.sync().registry().get_by_name(&"late".parse().unwrap()),
        Err(RepoError::NotFound { .. })
    ));
    // A read goes through the read queue: its drainer is dropped unrun, and the
    // read is refused the same way.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        handle.block_on(bm.list_bots(None))
    }));
    match result {
        Ok(Err(Error::RuntimeShutDown)) | Err(_) => {}
        Ok(other) => panic!("expected a refusal, got {other:?}"),
    }
}

/// Many concurrent reads through the read queue (at most one drainer per CPU) each
/// get their own answer, and the queue is empty and idle afterwards (a later
/// runtime's reads still run).
#[test]
fn concurrent_reads_share_the_read_queue() {
    let install = Install::new();
    let bm = AsyncBotmaker::new(install.open());
    let key: SecretName = "ai_api_key".parse().unwrap();
    let bots: Vec<_> = (0..8)
        .map(|i| {
            let secrets = [(key.clone(), format!("v{i}").into_bytes())];
            let borrowed: Vec<_> = secrets
                .iter()
                .map(|(n, v)| (n.clone(), v.as_slice()))
                .collect();
            bm.sync()
                .create_bot(&new_bot(&format!("r{i}")), &borrowed)
                .unwrap()
        })
        .collect();
    for _ in 0..2 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for t in 0..64 {
                let (bm, bot, key) = (bm.clone(), bots[t % bots.len()].clone(), key.clone());
                tasks.spawn(async move {
                    for _ in 0..20 {
                        let v = bm.get_secret(&bot, &key).await.unwrap();
                        let by_name: BotRef = bot.name.as_str().parse().unwrap();
                        assert_eq!(bm.resolve(&by_name).await.unwrap().id, bot.id);
                        assert_eq!(v.expose(), format!("v{}", t % 8).as_bytes());
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.unwrap();
            }
        });
    }
}

/// The example under `examples/` is compiled into this test binary and run, so CI
/// builds and runs it with the tests.
#[path = "../../examples/tokio_service.rs"]
mod tokio_service_example;

#[test]
fn the_tokio_service_example_runs() {
    tokio_service_example::main().unwrap();
}

/// A registry whose `get_by_name` panics for names starting with `boom`: the other
/// methods are the in-memory repository's.
struct Panicky(MemoryRepository);

impl BotRepository for Panicky {
    fn create(&self, new: &botmaker::domain::NewBot) -> Result<botmaker::domain::Bot, RepoError> {
        self.0.create(new)
    }
    fn get(&self, id: &BotId) -> Result<botmaker::domain::Bot, RepoError> {
        self.0.get(id)
    }
    fn get_by_name(
        &self,
        name: &botmaker::domain::BotName,
    ) -> Result<botmaker::domain::Bot, RepoError> {
        assert!(
            !name.as_str().starts_with("boom"),
            "planted panic for {name}"
        );
        self.0.get_by_name(name)
    }
    fn list(
        &self,
        status: Option<botmaker::domain::BotStatus>,
    ) -> Result<Vec<botmaker::domain::Bot>, RepoError> {
        self.0.list(status)
    }
    fn list_page(
        &self,
        status: Option<botmaker::domain::BotStatus>,
        after: Option<botmaker::domain::PageCursor>,
        limit: usize,
    ) -> Result<Vec<botmaker::domain::Bot>, RepoError> {
        self.0.list_page(status, after, limit)
    }
    fn set_status(
        &self,
        id: &BotId,
        to: botmaker::domain::BotStatus,
    ) -> Result<botmaker::domain::Bot, RepoError> {
        self.0.set_status(id, to)
    }
    fn set_container_id(
        &self,
        id: &BotId,
        container: Option<&botmaker::domain::ContainerId>,
    ) -> Result<botmaker::domain::Bot, RepoError> {
        self.0.set_container_id(id, container)
    }
    fn adopt_secrets_root(
        &self,
        id: &BotId,
        root: &botmaker::domain::SecretsRootId,
    ) -> Result<botmaker::domain::Bot, RepoError> {
        self.0.adopt_secrets_root(id, root)
    }
    fn delete(&self, id: &BotId) -> Result<(), RepoError> {
        self.0.delete(id)
    }
}

/// Reads are run in batches (one drainer runs several, then answers them): a read
/// that panics reaches its own caller as that panic, and every other read of the
/// same batches still gets its own answer.
#[test]
fn a_panicking_read_fails_only_its_own_caller() {
    let registry = AsyncRegistry::new(Panicky(MemoryRepository::new()));
    let names: Vec<String> = (0..16)
        .map(|i| format!("{}{i}", if i % 4 == 0 { "boom" } else { "ok" }))
        .collect();
    for name in &names {
        registry.sync().create(&new_bot(name)).unwrap();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (mut answered, mut panicked) = (0, 0);
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..64 {
            let (registry, name) = (registry.clone(), names[t % names.len()].clone());
            tasks.spawn(async move {
                let bot = registry.get_by_name(&name.parse().unwrap()).await.unwrap();
                assert_eq!(bot.name.as_str(), name);
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(()) => answered += 1,
                Err(e) if e.is_panic() => {
                    let message = e.into_panic();
                    let text = message
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .unwrap_or_default();
                    assert!(text.contains("planted panic for boom"), "{text}");
                    panicked += 1;
                }
                Err(e) => panic!("task failed: {e}"),
            }
        }
    });
    // 4 of the 16 names panic: 16 of the 64 calls.
    assert_eq!((answered, panicked), (48, 16));
}

/// The async API refuses another root's bot as the sync one does, before touching
/// anything: it runs the same facade calls.
#[test]
fn another_roots_bot_is_refused_through_the_async_api() {
    let install = Install::new();
    let a = install.open();
    let b_config = install
        .config
        .clone()
        .with_secrets_dir(install.config.secrets_dir().with_file_name("secrets-b"));
    let b = AsyncBotmaker::new(Botmaker::open(&b_config).unwrap());
    let bot = a.create_bot(&new_bot("alpha"), &required()).unwrap();
    let key: SecretName = "ai_api_key".parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let elsewhere = |e: Error| matches!(e, Error::SecretsElsewhere { held_by, .. } if held_by == a.secrets_root());
        assert!(elsewhere(b.get_secret(&bot, &key).await.map(drop).unwrap_err()));
        assert!(elsewhere(b.get_all_secrets(&bot).await.map(drop).unwrap_err()));
        assert!(elsewhere(b.list_secrets(&bot).await.unwrap_err()));
        assert!(elsewhere(
            b.set_secret(&bot, &key, SecretValue::from_bytes(b"x"))
                .await
                .unwrap_err()
        ));
        assert!(elsewhere(b.delete_bot(&bot).await.unwrap_err()));
    });
    let (_, original) = required().into_iter().find(|(n, _)| *n == key).unwrap();
    assert_eq!(a.get_secret(&bot, &key).unwrap().expose(), original);
}
