//! The async adapter (feature `tokio`): the same operations as the synchronous API,
//! for services on a tokio runtime.
//!
//! The core stays synchronous (one code path); this module only moves each call off
//! the runtime's worker threads, onto tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]), so that an fsync or an SQLite commit never
//! stalls the other tasks of a worker. Three handles, each `Clone + Send + Sync`
//! and as cheap to clone as an [`Arc`]:
//!
//! - [`AsyncBotmaker`]: the facade ([`Botmaker`]): bots with their
//!   secrets, kept consistent (feature `secrets`);
//! - [`AsyncRegistry`]: the bot registry alone, any [`BotRepository`] (the SQLite
//!   store, the in-memory one, a later backend);
//! - [`AsyncSecrets`]: the secrets store alone (feature `secrets`), for a service
//!   that only reads its credentials and compiles no SQLite.
//!
//! # Cancellation
//! Dropping a future of this module never leaves half an operation. Each call is one
//! blocking closure that holds the whole operation (creating a bot is its directory,
//! its secrets and its row, with the compensation on failure: all in the one
//! closure). A future dropped before it is first polled has started nothing. Once
//! polled, the closure is handed to the blocking pool, and from then on it runs to
//! completion whether or not anyone awaits the result: a blocking task cannot be
//! aborted, and dropping its `JoinHandle` only detaches it. So the stores end up as
//! if the call had been awaited; only its result is lost. Call again (or look) to
//! learn it: e.g. after a dropped `create_bot`, `resolve` the name. A runtime that
//! shuts down before a queued closure starts never runs it (the call then returns
//! [`Error::RuntimeShutDown`]); one that already runs goes on to its end.
//!
//! # Where the work runs
//! Everything runs on tokio's blocking pool, never on a worker and never on threads
//! of our own (measured against a dedicated pool: BENCHMARKS.md, "Async adapter";
//! the reasons are in ARCHITECTURE.md, "Async adapter"):
//!
//! - **Writes** (and the doctor) are one `spawn_blocking` each: they wait for fsyncs
//!   and for SQLite's write lock, so they gain from running side by side (group
//!   commit batches concurrent writes), and a hand-off costs little next to an fsync.
//! - **Reads** (a row, a list, a secret) cost a few microseconds, less than a
//!   hand-off per call (a task, a queue, a thread wake-up). They go through a queue
//!   of the handle that at most one blocking task per CPU drains: under load, a
//!   drainer already running takes the next read with no wake-up at all. More
//!   drainers than CPUs would only take turns on them. A drainer takes its share of
//!   the queue (up to 32 reads), runs them all, then answers them all, so that one
//!   wake-up of a runtime worker serves the whole batch; after a batch of several it
//!   looks for more reads for 50 µs (yielding the CPU) before it sleeps, since the
//!   callers it just answered queue their next reads within that time.
//!
//! The cancellation rule is the same for both: once queued or spawned, the closure
//! runs to its end.
//!
//! # Secret values
//! Values go in and come out as [`SecretValue`]: owned
//! (the closure must own its input) and zeroed when dropped, so no plain `Vec` of a
//! secret lingers in the allocator after the call.
//!
//! # Spans
//! The caller's current span is entered on the blocking thread, so the operation's
//! span (see `botmaker_domain::observe`) is its child, as it would be in a sync call.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use botmaker_domain::{
    Bot, BotId, BotName, BotRepository, BotStatus, ContainerId, NewBot, PageCursor,
};

#[cfg(feature = "secrets")]
use botmaker_secrets::{AuditReport, SecretMeta, SecretValue, SecretsOptions, SecretsStore};

#[cfg(feature = "secrets")]
use crate::{BotRef, Botmaker, Config, DoctorReport};
use crate::{Error, Result};

/// Runs `f` on the blocking pool, inside the caller's current span, and returns its
/// result. The closure runs to completion even if the returned future is dropped
/// (see the module docs); a panic in it is resumed here.
async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let span = tracing::Span::current();
    match tokio::task::spawn_blocking(move || span.in_scope(f)).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::RuntimeShutDown),
    }
}

/// The queue that short reads go through (see the module docs, "Reads"): at most one
/// blocking task per CPU drains it, so that under load a drainer that is already
/// running takes the next read without a thread wake-up or a task of its own.
///
/// A drainer takes reads in batches: it runs every read of a batch, then hands the
/// results back. Waking a caller's task can cost a thread wake-up of a runtime worker
/// (a futex call); handing back a batch at once wakes one worker for the lot, since
/// the runtime wakes no second worker while the first is looking for work.
#[derive(Debug)]
struct Reads {
    state: Mutex<ReadQueue>,
    /// Wakes a drainer that lingers for more reads.
    wake: Condvar,
    max_drainers: usize,
}

#[derive(Default)]
struct ReadQueue {
    jobs: VecDeque<Job>,
    drainers: usize,
    /// Drainers lingering on `wake` for more reads.
    idle: usize,
}

/// How long a drainer whose queue is empty waits for more reads before it ends: a
/// burst of reads then costs one blocking task, not one each.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// The most reads one drainer takes at once: a caller waits for at most this many
/// reads before its own result comes back.
const MAX_BATCH: usize = 32;

/// How long a drainer that just handed back a batch of several reads keeps looking
/// for more (yielding the CPU between looks) before it sleeps. Its callers were just
/// woken and queue their next reads within microseconds; a drainer asleep by then
/// costs a futex wake for the next read and a thread switch for each side, on a
/// 2-core machine more than the read itself. After a batch of one (a lone caller) it
/// sleeps at once: nothing else is coming soon, and spinning would only burn CPU.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

impl std::fmt::Debug for ReadQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadQueue")
            .field("jobs", &self.jobs.len())
            .field("drainers", &self.drainers)
            .field("idle", &self.idle)
            .finish()
    }
}

type Job = Box<dyn ReadJob>;

/// A queued read: run it, then (later, with the rest of its batch) reply.
trait ReadJob: Send {
    /// Runs the read and keeps its outcome (a panic included).
    fn run(&mut self);
    /// Sends the outcome to the caller, if it still waits.
    fn reply(self: Box<Self>);
}

type Outcome<T> = std::thread::Result<Result<T>>;

struct Pending<T, F> {
    work: Option<(F, tracing::Span)>,
    out: Option<Outcome<T>>,
    tx: tokio::sync::oneshot::Sender<Outcome<T>>,
}

impl<T, F> ReadJob for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    fn run(&mut self) {
        if let Some((f, span)) = self.work.take() {
            self.out = Some(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                || span.in_scope(f),
            )));
        }
    }

    fn reply(self: Box<Self>) {
        if let Some(out) = self.out {
            // The caller may be gone (its future dropped): the read is simply unused.
            let _ = self.tx.send(out);
        }
    }
}

impl Reads {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(ReadQueue::default()),
            wake: Condvar::new(),
            max_drainers: std::thread::available_parallelism().map_or(2, usize::from),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ReadQueue> {
        // A job never panics while the lock is held (jobs run outside it, and catch
        // their own panics): a poisoned lock still holds a consistent queue.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the blocking pool through the queue, inside the caller's current
    /// span. Once queued it runs even if the returned future is dropped; a panic in it
    /// is resumed here.
    async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(Pending {
            work: Some((f, tracing::Span::current())),
            out: None,
            tx,
        });
        let (start, wake) = {
            let mut queue = self.lock();
            queue.jobs.push_back(job);
            if queue.idle > 0 {
                (false, true)
            } else if queue.drainers < self.max_drainers {
                queue.drainers += 1;
                (true, false)
            } else {
                (false, false)
            }
        };
        if wake {
            self.wake.notify_one();
        }
        if start {
            let drainer = Drainer {
                reads: Arc::clone(self),
                done: false,
            };
            // Detached: it ends when the queue is empty.
            drop(tokio::task::spawn_blocking(move || drainer.drain()));
        }
        match rx.await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // Dropped unrun: the runtime shut down before a drainer could start.
            Err(_) => Err(Error::RuntimeShutDown),
        }
    }
}

/// One blocking task draining [`Reads`]. Dropped without running (the runtime shut
/// down before it started), it gives its slot back and, if it was the last one,
/// drops the queued jobs unrun: their callers get [`Error::RuntimeShutDown`].
struct Drainer {
    reads: Arc<Reads>,
    done: bool,
}

impl Drainer {
    fn drain(mut self) {
        let reads = Arc::clone(&self.reads);
        let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
        // How many reads the last batch held.
        let mut last = 0;
        let mut queue = reads.lock();
        loop {
            if !queue.jobs.is_empty() {
                // This drainer's share of what waits, so that the other drainers
                // get reads too.
                let share = queue
                    .jobs
                    .len()
                    .div_ceil(queue.drainers.max(1))
                    .min(MAX_BATCH);
                batch.extend(queue.jobs.drain(..share));
                drop(queue);
                for job in &mut batch {
                    job.run();
                }
                last = batch.len();
                for job in batch.drain(..) {
                    job.reply();
                }
                queue = reads.lock();
                continue;
            }
            if last > 1 {
                last = 0;
                drop(queue);
                let until = std::time::Instant::now() + SPIN;
                loop {
                    std::thread::yield_now();
                    queue = reads.lock();
                    if !queue.jobs.is_empty() || std::time::Instant::now() >= until {
                        break;
                    }
                    drop(queue);
                }
                continue;
            }
            queue.idle += 1;
            let (back, waited) = reads
                .wake
                .wait_timeout(queue, LINGER)
                .unwrap_or_else(PoisonError::into_inner);
            queue = back;
            queue.idle -= 1;
            if waited.timed_out() && queue.jobs.is_empty() {
                // Under the same lock as the check, so that a read queued now
                // either is seen here or starts a drainer of its own.
                queue.drainers -= 1;
                self.done = true;
                return;
            }
        }
    }
}

impl Drop for Drainer {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let orphans = {
            let mut queue = self.reads.lock();
            queue.drainers -= 1;
            if queue.drainers == 0 {
                std::mem::take(&mut queue.jobs)
            } else {
                VecDeque::new()
            }
        };
        drop(orphans);
    }
}

/// The facade, [`Botmaker`], for async callers: every method runs the synchronous
/// operation of the same name on tokio's blocking pool (see the [module](self) docs
/// for cancellation: a dropped future never leaves half an operation).
///
/// Arguments are taken by reference and copied into the call (ids, names and bots
/// are small); secret values are taken as owned [`SecretValue`]s, zeroed when the
/// call is done with them.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use botmaker::aio::AsyncBotmaker;
/// use botmaker::domain::NewBot;
/// use botmaker::secrets::SecretValue;
/// use botmaker::Config;
///
/// let dir = tempfile::tempdir()?;
/// let config = Config::new(dir.path().join("data"), dir.path().join("secrets"));
/// botmaker::migrate(&config)?;
/// let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     let bm = AsyncBotmaker::open(&config).await?;
///     let new = NewBot::new("alpha".parse()?, "openai".parse()?, "gpt-4o".parse()?, "slack".parse()?);
///     let key = "ai_api_key".parse()?;
///     let bot = bm.create_bot(&new, vec![(key, SecretValue::from_bytes(b"sk-test"))]).await?;
///     let key = "ai_api_key".parse()?;
///     assert_eq!(bm.get_secret(&bot, &key).await?.expose(), b"sk-test");
///     Ok::<_, Box<dyn std::error::Error>>(())
/// })?;
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "secrets")]
#[derive(Clone, Debug)]
pub struct AsyncBotmaker {
    inner: Arc<Botmaker>,
    reads: Arc<Reads>,
}

#[cfg(feature = "secrets")]
impl AsyncBotmaker {
    /// Wraps an open installation.
    pub fn new(bm: Botmaker) -> Self {
        Self::from_arc(Arc::new(bm))
    }

    /// Shares an open installation with synchronous users of the same `Arc`.
    pub fn from_arc(bm: Arc<Botmaker>) -> Self {
        Self {
            inner: bm,
            reads: Reads::new(),
        }
    }

    /// A read (no change to either store) through the read queue.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Botmaker) -> Result<T> + Send + 'static,
    {
        let bm = Arc::clone(&self.inner);
        self.reads.run(move || f(&bm)).await
    }

    /// [`Botmaker::open`], off the runtime's workers.
    pub async fn open(config: &Config) -> Result<Self> {
        let config = config.clone();
        blocking(move || Botmaker::open(&config))
            .await
            .map(Self::new)
    }

    /// The synchronous facade, for a call that must not wait for the blocking pool
    /// (one that does no I/O, such as [`Botmaker::registry`]).
    pub fn sync(&self) -> &Arc<Botmaker> {
        &self.inner
    }

    /// Runs `f` with the facade on the blocking pool: for a sequence of calls that
    /// should pay one hand-off, or for what this type does not wrap. The same
    /// cancellation rule holds: once started, `f` runs to its end.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Botmaker) -> Result<T> + Send + 'static,
    {
        let bm = Arc::clone(&self.inner);
        blocking(move || f(&bm)).await
    }

    /// [`Botmaker::resolve`].
    pub async fn resolve(&self, bot: &BotRef) -> Result<Bot> {
        let bot = bot.clone();
        self.read(move |bm| bm.resolve(&bot)).await
    }

    /// [`Botmaker::create_bot`]: the directory, the secrets and the row, in one
    /// blocking call (a dropped future cannot stop it between two of them).
    pub async fn create_bot(
        &self,
        new: &NewBot,
        secrets: Vec<(crate::domain::SecretName, SecretValue)>,
    ) -> Result<Bot> {
        let new = new.clone();
        self.run(move |bm| {
            let borrowed: Vec<_> = secrets
                .iter()
                .map(|(name, value)| (name.clone(), value.expose()))
                .collect();
            bm.create_bot(&new, &borrowed)
        })
        .await
    }

    /// [`Botmaker::list_bots`].
    pub async fn list_bots(&self, status: Option<BotStatus>) -> Result<Vec<Bot>> {
        self.read(move |bm| bm.list_bots(status)).await
    }

    /// [`Botmaker::set_status`].
    pub async fn set_status(&self, bot: &Bot, to: BotStatus) -> Result<Bot> {
        let bot = bot.clone();
        self.run(move |bm| bm.set_status(&bot, to)).await
    }

    /// [`Botmaker::set_container_id`].
    pub async fn set_container_id(
        &self,
        bot: &Bot,
        container: Option<&ContainerId>,
    ) -> Result<Bot> {
        let bot = bot.clone();
        let container = container.cloned();
        self.run(move |bm| bm.set_container_id(&bot, container.as_ref()))
            .await
    }

    /// [`Botmaker::delete_bot`]: the row, then the directory, in one blocking call.
    pub async fn delete_bot(&self, bot: &Bot) -> Result<Bot> {
        let bot = bot.clone();
        self.run(move |bm| bm.delete_bot(&bot)).await
    }

    /// [`Botmaker::set_secret`]; the value is zeroed when the write is done.
    pub async fn set_secret(
        &self,
        bot: &Bot,
        name: &crate::domain::SecretName,
        value: SecretValue,
    ) -> Result<()> {
        let (bot, name) = (bot.clone(), name.clone());
        self.run(move |bm| bm.set_secret(&bot, &name, value.expose()))
            .await
    }

    /// [`Botmaker::rotate_secret`]; the value is zeroed when the write is done.
    pub async fn rotate_secret(
        &self,
        bot: &Bot,
        name: &crate::domain::SecretName,
        value: SecretValue,
    ) -> Result<()> {
        let (bot, name) = (bot.clone(), name.clone());
        self.run(move |bm| bm.rotate_secret(&bot, &name, value.expose()))
            .await
    }

    /// [`Botmaker::get_secret`].
    pub async fn get_secret(
        &self,
        bot: &Bot,
        name: &crate::domain::SecretName,
    ) -> Result<SecretValue> {
        let (bot, name) = (bot.clone(), name.clone());
        self.read(move |bm| bm.get_secret(&bot, &name)).await
    }

    /// [`Botmaker::get_secrets`]: several secrets of one bot in one call (its
    /// directory opened once), in the order of `names`.
    pub async fn get_secrets(
        &self,
        bot: &Bot,
        names: &[crate::domain::SecretName],
    ) -> Result<Vec<SecretValue>> {
        let (bot, names) = (bot.clone(), names.to_vec());
        self.read(move |bm| bm.get_secrets(&bot, &names)).await
    }

    /// [`Botmaker::get_all_secrets`]: every secret of one bot, sorted by name.
    pub async fn get_all_secrets(
        &self,
        bot: &Bot,
    ) -> Result<Vec<(crate::domain::SecretName, SecretValue)>> {
        let bot = bot.clone();
        self.read(move |bm| bm.get_all_secrets(&bot)).await
    }

    /// [`Botmaker::list_secrets`]: metadata, never values.
    pub async fn list_secrets(&self, bot: &Bot) -> Result<Vec<SecretMeta>> {
        let bot = bot.clone();
        self.read(move |bm| bm.list_secrets(&bot)).await
    }

    /// [`Botmaker::remove_secret`].
    pub async fn remove_secret(&self, bot: &Bot, name: &crate::domain::SecretName) -> Result<()> {
        let (bot, name) = (bot.clone(), name.clone());
        self.run(move |bm| bm.remove_secret(&bot, &name)).await
    }

    /// [`Botmaker::missing_secrets`].
    pub async fn missing_secrets(&self, bot: &Bot) -> Result<Vec<crate::domain::SecretName>> {
        let bot = bot.clone();
        self.read(move |bm| bm.missing_secrets(&bot)).await
    }

    /// [`Botmaker::doctor`] of the installation `config` describes.
    pub async fn doctor(config: &Config, fix: bool) -> Result<DoctorReport> {
        let config = config.clone();
        blocking(move || Ok(Botmaker::doctor(&config, fix))).await
    }
}

/// The bot registry alone, any [`BotRepository`] (SQLite, in-memory, a later
/// backend), for async callers: each method runs the repository's method of the same
/// name on tokio's blocking pool, as one atomic operation (see the [module](self)
/// docs for cancellation).
#[derive(Clone)]
pub struct AsyncRegistry {
    repo: Arc<dyn BotRepository>,
    reads: Arc<Reads>,
}

impl std::fmt::Debug for AsyncRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRegistry").finish_non_exhaustive()
    }
}

impl AsyncRegistry {
    /// Wraps a repository.
    pub fn new(repo: impl BotRepository + 'static) -> Self {
        Self::from_arc(Arc::new(repo))
    }

    /// Shares a repository with synchronous users of the same `Arc`.
    pub fn from_arc(repo: Arc<dyn BotRepository>) -> Self {
        Self {
            repo,
            reads: Reads::new(),
        }
    }

    /// Opens the SQLite store at `path` ([`SqliteStore::open_with`](crate::sqlite::SqliteStore::open_with)) off the runtime's workers.
    #[cfg(feature = "sqlite")]
    pub async fn open_sqlite(
        path: &std::path::Path,
        options: crate::sqlite::StoreOptions,
    ) -> Result<Self> {
        let path = path.to_owned();
        blocking(move || Ok(crate::sqlite::SqliteStore::open_with(&path, options)?))
            .await
            .map(Self::new)
    }

    /// The repository, for synchronous calls.
    pub fn sync(&self) -> &Arc<dyn BotRepository> {
        &self.repo
    }

    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn BotRepository) -> Result<T, botmaker_domain::RepoError> + Send + 'static,
    {
        let repo = Arc::clone(&self.repo);
        blocking(move || Ok(f(repo.as_ref())?)).await
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn BotRepository) -> Result<T, botmaker_domain::RepoError> + Send + 'static,
    {
        let repo = Arc::clone(&self.repo);
        self.reads.run(move || Ok(f(repo.as_ref())?)).await
    }

    /// [`BotRepository::create`].
    pub async fn create(&self, new: &NewBot) -> Result<Bot> {
        let new = new.clone();
        self.run(move |r| r.create(&new)).await
    }

    /// [`BotRepository::get`].
    pub async fn get(&self, id: &BotId) -> Result<Bot> {
        let id = *id;
        self.read(move |r| r.get(&id)).await
    }

    /// [`BotRepository::get_by_name`].
    pub async fn get_by_name(&self, name: &BotName) -> Result<Bot> {
        let name = name.clone();
        self.read(move |r| r.get_by_name(&name)).await
    }

    /// [`BotRepository::list`].
    pub async fn list(&self, status: Option<BotStatus>) -> Result<Vec<Bot>> {
        self.read(move |r| r.list(status)).await
    }

    /// [`BotRepository::list_page`].
    pub async fn list_page(
        &self,
        status: Option<BotStatus>,
        after: Option<PageCursor>,
        limit: usize,
    ) -> Result<Vec<Bot>> {
        self.read(move |r| r.list_page(status, after, limit)).await
    }

    /// [`BotRepository::set_status`].
    pub async fn set_status(&self, id: &BotId, to: BotStatus) -> Result<Bot> {
        let id = *id;
        self.run(move |r| r.set_status(&id, to)).await
    }

    /// [`BotRepository::set_container_id`].
    pub async fn set_container_id(
        &self,
        id: &BotId,
        container: Option<&ContainerId>,
    ) -> Result<Bot> {
        let id = *id;
        let container = container.cloned();
        self.run(move |r| r.set_container_id(&id, container.as_ref()))
            .await
    }

    /// [`BotRepository::delete`].
    pub async fn delete(&self, id: &BotId) -> Result<()> {
        let id = *id;
        self.run(move |r| r.delete(&id)).await
    }
}

/// The secrets store alone ([`SecretsStore`]) for async callers: each method runs the
/// store's method of the same name on tokio's blocking pool (see the [module](self)
/// docs for cancellation). Values go in as owned [`SecretValue`]s.
#[cfg(feature = "secrets")]
#[derive(Clone, Debug)]
pub struct AsyncSecrets {
    store: Arc<SecretsStore>,
    reads: Arc<Reads>,
}

#[cfg(feature = "secrets")]
impl AsyncSecrets {
    /// Wraps an open store.
    pub fn new(store: SecretsStore) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// Shares an open store with synchronous users of the same `Arc`.
    pub fn from_arc(store: Arc<SecretsStore>) -> Self {
        Self {
            store,
            reads: Reads::new(),
        }
    }

    /// [`SecretsStore::open_with`], off the runtime's workers.
    pub async fn open(root: &std::path::Path, options: SecretsOptions) -> Result<Self> {
        let root = root.to_owned();
        blocking(move || Ok(SecretsStore::open_with(&root, options)?))
            .await
            .map(Self::new)
    }

    /// The store, for synchronous calls.
    pub fn sync(&self) -> &Arc<SecretsStore> {
        &self.store
    }

    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&SecretsStore) -> Result<T, botmaker_secrets::SecretsError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        blocking(move || Ok(f(&store)?)).await
    }

    async fn run_read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&SecretsStore) -> Result<T, botmaker_secrets::SecretsError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        self.reads.run(move || Ok(f(&store)?)).await
    }

    /// [`SecretsStore::create_bot`].
    pub async fn create_bot(&self, bot: &BotId) -> Result<bool> {
        let bot = *bot;
        self.run(move |s| s.create_bot(&bot)).await
    }

    /// [`SecretsStore::write`]; the value is zeroed when the write is done.
    pub async fn write(
        &self,
        bot: &BotId,
        name: &crate::domain::SecretName,
        value: SecretValue,
    ) -> Result<()> {
        let (bot, name) = (*bot, name.clone());
        self.run(move |s| s.write(&bot, &name, value.expose()))
            .await
    }

    /// [`SecretsStore::replace`]; the value is zeroed when the write is done.
    pub async fn replace(
        &self,
        bot: &BotId,
        name: &crate::domain::SecretName,
        value: SecretValue,
    ) -> Result<()> {
        let (bot, name) = (*bot, name.clone());
        self.run(move |s| s.replace(&bot, &name, value.expose()))
            .await
    }

    /// [`SecretsStore::read`].
    pub async fn read(&self, bot: &BotId, name: &crate::domain::SecretName) -> Result<SecretValue> {
        let (bot, name) = (*bot, name.clone());
        self.run_read(move |s| s.read(&bot, &name)).await
    }

    /// [`SecretsStore::read_many`]: several secrets of one bot in one call, in the
    /// order of `names`.
    pub async fn read_many(
        &self,
        bot: &BotId,
        names: &[crate::domain::SecretName],
    ) -> Result<Vec<SecretValue>> {
        let (bot, names) = (*bot, names.to_vec());
        self.run_read(move |s| s.read_many(&bot, &names)).await
    }

    /// [`SecretsStore::read_all`]: every secret of one bot, sorted by name.
    pub async fn read_all(
        &self,
        bot: &BotId,
    ) -> Result<Vec<(crate::domain::SecretName, SecretValue)>> {
        let bot = *bot;
        self.run_read(move |s| s.read_all(&bot)).await
    }

    /// [`SecretsStore::list`]: metadata, never values.
    pub async fn list(&self, bot: &BotId) -> Result<Vec<SecretMeta>> {
        let bot = *bot;
        self.run_read(move |s| s.list(&bot)).await
    }

    /// [`SecretsStore::remove`].
    pub async fn remove(&self, bot: &BotId, name: &crate::domain::SecretName) -> Result<()> {
        let (bot, name) = (*bot, name.clone());
        self.run(move |s| s.remove(&bot, &name)).await
    }

    /// [`SecretsStore::delete_bot`].
    pub async fn delete_bot(&self, bot: &BotId) -> Result<()> {
        let bot = *bot;
        self.run(move |s| s.delete_bot(&bot)).await
    }

    /// [`SecretsStore::bots`].
    pub async fn bots(&self) -> Result<Vec<BotId>> {
        self.run_read(SecretsStore::bots).await
    }

    /// [`SecretsStore::missing`].
    pub async fn missing(
        &self,
        bot: &BotId,
        required: &[crate::domain::SecretName],
    ) -> Result<Vec<crate::domain::SecretName>> {
        let (bot, required) = (*bot, required.to_vec());
        self.run_read(move |s| s.missing(&bot, &required)).await
    }

    /// [`SecretsStore::audit`].
    pub async fn audit(&self) -> Result<AuditReport> {
        self.run_read(SecretsStore::audit).await
    }
}
