//! The async part (issue 12): `get_by_id`, `insert` and the per-bot `secret_read`
//! through `botmaker::aio` from a multi-thread tokio runtime with 1 and 64 concurrent
//! tasks, against the same calls made synchronously on one thread; and the hand-off
//! micro-benchmark behind the adapter's design choice: `spawn_blocking` against a
//! dedicated pool of threads, for an empty closure and for a `get_by_id`.
//!
//! JSON lines on stdout:
//! - `{"async":"get_by_id","tasks":64,"ops":…,"ops_per_sec":…,"over_sync":…}`:
//!   throughput through the adapter and its ratio to the single-thread sync figure;
//! - `{"adapter_overhead_us":{"get_by_id":…,…}}`: per call, one task, async minus sync;
//! - `{"handoff":"spawn_blocking","tasks":…,"work":"noop","us_per_call":…}` and the
//!   same for `"pool"`.

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use botmaker::aio::{AsyncRegistry, AsyncSecrets};
use botmaker::domain::{BotId, BotRepository, SecretName};
use botmaker::secrets::SecretsStore;
use botmaker::sqlite::SqliteStore;
use botmaker_testkit::scratch::Scratch;

use crate::{Rows, visit};

/// The task counts measured.
const TASKS: [usize; 2] = [1, 64];

/// Rounds of the read phases (sync, then 1 task, then 64 tasks, in each).
const ROUNDS: usize = 5;

/// Sizes of the async part: `n` rows looked up `n` times, `n / 10` inserts per run,
/// `m` bots whose secret is read `reads` times in all.
#[allow(clippy::too_many_lines)] // one measurement, set-up to report, reads in order
pub(crate) fn run(n: usize, m: usize, scratch: &Path) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .build()
        .context("building the tokio runtime")?;
    let dir = Scratch::new_in(scratch, "bench-async")?;
    let db = dir.path().join("botmaker.db");
    botmaker::sqlite::migrate(&db)?;
    let store = Arc::new(SqliteStore::open(&db)?);
    let rows = Rows::new(n, |i| format!("async-{i}"))?;
    for new in &rows.news {
        store.create(new)?;
    }
    let secrets = Arc::new(SecretsStore::open(&dir.path().join("secrets"))?);
    let key = SecretName::parse("ai_api_key")?;
    let bots: Vec<BotId> = rows.ids.iter().take(m).copied().collect();
    for (j, bot) in bots.iter().enumerate() {
        secrets.write(bot, &key, &crate::secret_values(j, 0)[0])?;
    }
    let registry = AsyncRegistry::from_arc(Arc::clone(&store) as Arc<dyn BotRepository>);
    let async_secrets = AsyncSecrets::from_arc(Arc::clone(&secrets));
    let ids = Arc::new(rows.ids.clone());
    let bots = Arc::new(bots);
    let reads = n;
    let inserts = (n / 10).max(64);
    eprintln!("bench: async part ({n} lookups, {inserts} inserts, {reads} secret reads per run)");

    // Warm up (page cache, statement caches, the blocking pool's first threads) so
    // that neither side pays for it.
    for k in 0..n.min(1000) {
        std::hint::black_box(store.get(&ids[visit(k, n)])?);
    }
    // One `get_by_id` through the adapter: call `k` looks row `visit(k)` up.
    let async_get = {
        let (registry, ids) = (registry.clone(), Arc::clone(&ids));
        move |k| {
            let (registry, ids) = (registry.clone(), Arc::clone(&ids));
            async move {
                registry
                    .get(&ids[visit(k, ids.len())])
                    .await
                    .map(drop)
                    .map_err(anyhow::Error::from)
            }
        }
    };
    rt.block_on(fan_out(64, 256, async_get.clone()))?;
    let mut batch = 0;
    let mut next_rows = || {
        batch += 1;
        Rows::new(inserts, |i| format!("ins-{batch}-{i}"))
    };
    let async_read = {
        let (s, bots, key) = (async_secrets.clone(), Arc::clone(&bots), key.clone());
        move |k| {
            let (s, bots, key) = (s.clone(), Arc::clone(&bots), key.clone());
            async move {
                s.read(&bots[k % bots.len()], &key)
                    .await
                    .map(drop)
                    .map_err(anyhow::Error::from)
            }
        }
    };
    // The reads: ROUNDS rounds, each the sync calls on one thread and then the same
    // calls through the adapter from 1 and from 64 tasks, so that each ratio compares
    // figures taken seconds apart; the medians are printed, and every round's ratio.
    let mut reads_by_phase = Vec::new();
    for name in ["get_by_id", "secret_read"] {
        let mut rounds: Vec<[f64; 3]> = Vec::new();
        let mut cpu: Vec<[f64; 3]> = Vec::new();
        let mut slept: Vec<[f64; 3]> = Vec::new();
        for _ in 0..ROUNDS {
            let mut cpu_round = [0.0; 3];
            let mut slept_round = [0.0; 3];
            let before = cpu_secs()?;
            let sleeps_before = sleeps()?;
            let sync = if name == "get_by_id" {
                time(|| {
                    for k in 0..n {
                        std::hint::black_box(store.get(&ids[visit(k, n)])?);
                    }
                    Ok(())
                })?
            } else {
                time(|| {
                    for k in 0..reads {
                        let bot = &bots[k % bots.len()];
                        std::hint::black_box(secrets.read(bot, &key)?);
                    }
                    Ok(())
                })?
            };
            cpu_round[0] = cpu_secs()? - before;
            slept_round[0] = sleeps()? - sleeps_before;
            let mut secs = [sync, 0.0, 0.0];
            for (slot, tasks) in TASKS.into_iter().enumerate() {
                let before = cpu_secs()?;
                let sleeps_before = sleeps()?;
                secs[slot + 1] = if name == "get_by_id" {
                    rt.block_on(fan_out(tasks, n, async_get.clone()))?
                } else {
                    rt.block_on(fan_out(tasks, reads, async_read.clone()))?
                };
                cpu_round[slot + 1] = cpu_secs()? - before;
                slept_round[slot + 1] = sleeps()? - sleeps_before;
            }
            rounds.push(secs);
            cpu.push(cpu_round);
            slept.push(slept_round);
        }
        reads_by_phase.push((name, rounds, cpu, slept));
    }
    let fresh = next_rows()?;
    let sync_insert = time(|| {
        for new in &fresh.news {
            std::hint::black_box(store.create(new)?);
        }
        Ok(())
    })?;
    let mut insert_secs = Vec::new();
    for tasks in TASKS {
        let fresh = Arc::new(next_rows()?);
        insert_secs.push(rt.block_on(fan_out(tasks, inserts, {
            let registry = registry.clone();
            move |k| {
                let (registry, fresh) = (registry.clone(), Arc::clone(&fresh));
                async move {
                    registry
                        .create(&fresh.news[k])
                        .await
                        .map(drop)
                        .map_err(anyhow::Error::from)
                }
            }
        }))?);
    }
    let mut overhead = Vec::new();
    let mut sync_rates = Vec::new();
    for (name, rounds, cpu, slept) in &reads_by_phase {
        let ops = n; // reads == n
        let sync = median(rounds.iter().map(|r| r[0]).collect());
        sync_rates.push((*name, per_sec(ops, sync)));
        let cpu_us =
            |slot: usize| median(cpu.iter().map(|r| r[slot] / as_f64(ops) * 1e6).collect());
        let sleeps_per_op =
            |slot: usize| median(slept.iter().map(|r| r[slot] / as_f64(ops)).collect());
        for (slot, tasks) in TASKS.into_iter().enumerate() {
            let ratios: Vec<f64> = rounds.iter().map(|r| r[0] / r[slot + 1]).collect();
            let secs = median(rounds.iter().map(|r| r[slot + 1]).collect());
            let shown: Vec<String> = ratios.iter().map(|x| format!("{x:.3}")).collect();
            println!(
                "{{\"async\":\"{name}\",\"tasks\":{tasks},\"ops\":{ops},\"ops_per_sec\":{:.1},\"over_sync\":{:.3},\"rounds\":[{}],\"cpu_us_per_op\":{:.2},\"sync_cpu_us_per_op\":{:.2},\"sleeps_per_op\":{:.3}}}",
                per_sec(ops, secs),
                median(ratios.clone()),
                shown.join(","),
                cpu_us(slot + 1),
                cpu_us(0),
                sleeps_per_op(slot + 1)
            );
            if tasks == 1 {
                let per_call: Vec<f64> = rounds
                    .iter()
                    .map(|r| (r[1] - r[0]) / as_f64(ops) * 1e6)
                    .collect();
                overhead.push((*name, median(per_call)));
            }
        }
    }
    for (tasks, secs) in TASKS.into_iter().zip(&insert_secs) {
        println!(
            "{{\"async\":\"insert\",\"tasks\":{tasks},\"ops\":{inserts},\"ops_per_sec\":{:.1},\"over_sync\":{:.3}}}",
            per_sec(inserts, *secs),
            sync_insert / secs
        );
    }
    if let Some(one_task) = insert_secs.first() {
        overhead.push(("insert", (one_task - sync_insert) / as_f64(inserts) * 1e6));
    }
    sync_rates.push(("insert", per_sec(inserts, sync_insert)));
    let fields: Vec<String> = overhead
        .iter()
        .map(|(name, us)| format!("\"{name}\":{us:.2}"))
        .collect();
    println!("{{\"adapter_overhead_us\":{{{}}}}}", fields.join(","));
    let fields: Vec<String> = sync_rates
        .iter()
        .map(|(name, rate)| format!("\"{name}\":{rate:.1}"))
        .collect();
    println!("{{\"sync\":{{{}}}}}", fields.join(","));
    handoff(&rt, &registry, &ids)?;
    drop(rt);
    Ok(())
}

/// `spawn_blocking` against a dedicated pool of as many threads as the machine has
/// CPUs (a shared queue, a oneshot reply), for an empty closure and a `get_by_id`.
fn handoff(
    rt: &tokio::runtime::Runtime,
    registry: &AsyncRegistry,
    ids: &Arc<Vec<BotId>>,
) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let pool = Pool::new(threads);
    let calls = 20_000;
    for tasks in TASKS {
        for work in ["noop", "get_by_id"] {
            let repo = Arc::clone(registry.sync());
            let ids_sb = Arc::clone(ids);
            let job = move |k: usize| -> Result<()> {
                if work == "get_by_id" {
                    std::hint::black_box(repo.get(&ids_sb[visit(k, ids_sb.len())])?);
                }
                Ok(())
            };
            let job = Arc::new(job);
            let sb = {
                let job = Arc::clone(&job);
                rt.block_on(fan_out(tasks, calls, move |k| {
                    let job = Arc::clone(&job);
                    async move { tokio::task::spawn_blocking(move || job(k)).await? }
                }))?
            };
            let pooled = {
                let (job, pool) = (Arc::clone(&job), pool.clone());
                rt.block_on(fan_out(tasks, calls, move |k| {
                    let (job, pool) = (Arc::clone(&job), pool.clone());
                    async move { pool.run(move || job(k)).await }
                }))?
            };
            for (how, secs) in [("spawn_blocking", sb), ("pool", pooled)] {
                println!(
                    "{{\"handoff\":\"{how}\",\"tasks\":{tasks},\"work\":\"{work}\",\"us_per_call\":{:.2}}}",
                    secs / as_f64(calls) * 1e6
                );
            }
        }
    }
    pool.stop();
    Ok(())
}

type PoolJob = Box<dyn FnOnce() + Send>;

/// The dedicated pool measured against `spawn_blocking`: `threads` threads taking
/// jobs from one queue; the reply goes back through a tokio oneshot.
#[derive(Clone)]
struct Pool {
    queue: mpsc::Sender<PoolJob>,
    workers: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
}

impl Pool {
    fn new(threads: usize) -> Self {
        let (queue, rx) = mpsc::channel::<PoolJob>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                std::thread::spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        Self {
            queue,
            workers: Arc::new(Mutex::new(workers)),
        }
    }

    async fn run(&self, f: impl FnOnce() -> Result<()> + Send + 'static) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: PoolJob = Box::new(move || {
            let _ = tx.send(f());
        });
        self.queue
            .send(job)
            .map_err(|_| anyhow::anyhow!("the pool stopped"))?;
        rx.await?
    }

    fn stop(self) {
        drop(self.queue);
        if let Ok(mut workers) = self.workers.lock() {
            for w in workers.drain(..) {
                let _ = w.join();
            }
        }
    }
}

/// Runs `ops` calls of `call(k)` from `tasks` concurrent tasks (task `t` makes calls
/// `t, t + tasks, …`, each awaited before the next); the seconds it took.
async fn fan_out<F, Fut>(tasks: usize, ops: usize, call: F) -> Result<f64>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let call = call.clone();
        set.spawn(async move {
            for k in (t..ops).step_by(tasks) {
                call(k).await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// The voluntary context switches (a thread that slept: a futex wait, a blocking
/// read) of this process so far.
fn sleeps() -> Result<f64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).context("getrusage")?;
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    Ok(usage.voluntary_context_switches() as f64)
}

/// The CPU time (user and system, every thread) this process has used so far.
fn cpu_secs() -> Result<f64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).context("getrusage")?;
    let secs = |t: nix::sys::time::TimeVal| {
        #[allow(clippy::cast_precision_loss)] // seconds of CPU time, far below 2^52
        let whole = t.tv_sec() as f64;
        whole + f64::from(u32::try_from(t.tv_usec()).unwrap_or(0)) * 1e-6
    };
    Ok(secs(usage.user_time()) + secs(usage.system_time()))
}

/// The median (the upper one of an even count); NaN for none.
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn time(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}

#[allow(clippy::cast_precision_loss)] // operation counts are far below 2^52
fn as_f64(n: usize) -> f64 {
    n as f64
}

fn per_sec(ops: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        as_f64(ops) / secs
    } else {
        f64::INFINITY
    }
}
