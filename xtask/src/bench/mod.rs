//! `cargo xtask bench`: the standard workload of `../shared/bench/WORKLOAD.md`, through
//! the facade's public API, and with `--raw` a second time through bare rusqlite and
//! bare descriptor-relative syscalls, printing each phase's ratio api/raw.
//!
//! JSON lines on stdout, progress on stderr. Always runs in a release build: a debug
//! invocation re-executes itself with `cargo run --release`.

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use botmaker::domain::{
    AiProvider, BotId, BotName, BotRepository, BotStatus, ChannelType, ModelName, NewBot,
    SecretName,
};
use botmaker::secrets::SecretsStore;
use botmaker::sqlite::SqliteStore;

mod raw;

/// The workload's parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub(crate) n: usize,
    pub(crate) m: usize,
    pub(crate) threads: usize,
    pub(crate) raw: bool,
}

/// One timed phase.
#[derive(Clone, Debug)]
pub(crate) struct Phase {
    pub(crate) name: &'static str,
    pub(crate) ops: usize,
    pub(crate) secs: f64,
}

impl Phase {
    #[allow(clippy::cast_precision_loss)] // operation counts are far below 2^52
    fn ops_per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.ops as f64 / self.secs
        } else {
            f64::INFINITY
        }
    }

    fn json(&self, variant: &str) -> String {
        format!(
            "{{\"phase\":\"{}\",\"variant\":\"{variant}\",\"ops\":{},\"secs\":{:.6},\"ops_per_sec\":{:.1}}}",
            self.name,
            self.ops,
            self.secs,
            self.ops_per_sec()
        )
    }
}

/// Times `f`, which performs `ops` operations.
pub(crate) fn timed(
    name: &'static str,
    ops: usize,
    f: impl FnOnce() -> Result<()>,
) -> Result<Phase> {
    eprintln!("bench: {name} ({ops} ops)");
    let start = Instant::now();
    f()?;
    Ok(Phase {
        name,
        ops,
        secs: start.elapsed().as_secs_f64(),
    })
}

/// The workload's rows, made before any timing starts.
pub(crate) struct Rows {
    pub(crate) ids: Vec<BotId>,
    pub(crate) news: Vec<NewBot>,
}

const PROVIDERS: [&str; 4] = ["openai", "anthropic", "google", "ollama"];
const CHANNELS: [&str; 3] = ["slack", "discord", "telegram"];

impl Rows {
    pub(crate) fn new(n: usize, name: impl Fn(usize) -> String) -> Result<Self> {
        let mut ids = Vec::with_capacity(n);
        let mut news = Vec::with_capacity(n);
        for i in 0..n {
            let id = BotId::from_uuid(uuid::Uuid::new_v4());
            ids.push(id);
            news.push(NewBot::with_id(
                id,
                BotName::parse(&name(i))?,
                AiProvider::parse(PROVIDERS[i % 4])?,
                ModelName::parse(&format!("model-{}", i % 7))?,
                ChannelType::parse(CHANNELS[i % 3])?,
            ));
        }
        Ok(Self { ids, news })
    }
}

/// The visiting order of the lookup phases: `i = (k * 7919) % n`.
pub(crate) fn visit(k: usize, n: usize) -> usize {
    (k * 7919) % n
}

/// A fresh temporary directory under `target/`, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(root: &Path, label: &str) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let dir = root.join(format!("bench-{label}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(Self(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs the workload and prints its JSON lines.
pub(crate) fn run(params: Params, scratch: &Path) -> Result<()> {
    let Params { n, m, threads, raw } = params;
    ensure!(
        n > 0 && m > 0 && threads > 0,
        "--n, --m and --threads must be positive"
    );
    ensure!(n % 7919 != 0, "--n must not be a multiple of 7919");
    println!("{{\"workload\":\"botmaker-standard\",\"n\":{n},\"m\":{m},\"durable\":true}}");

    let mut api = database_phases(n, scratch)?;
    api.extend(secrets_phases(m, scratch)?);
    api.extend(parallel_phases(n, threads, scratch)?);
    for p in &api {
        println!("{}", p.json("api"));
    }
    if raw {
        let mut raw = raw::database_phases(n, scratch)?;
        raw.extend(raw::secrets_phases(m, scratch)?);
        raw.extend(raw::parallel_phases(n, threads, scratch)?);
        for p in &raw {
            println!("{}", p.json("raw"));
        }
        for (a, r) in api.iter().zip(&raw) {
            ensure!(a.name == r.name, "phase lists differ");
            println!(
                "{{\"phase\":\"{}\",\"ratio_api_over_raw\":{:.3}}}",
                a.name,
                a.ops_per_sec() / r.ops_per_sec()
            );
        }
    }
    let single = api
        .iter()
        .find(|p| p.name == "get_by_id")
        .map(Phase::ops_per_sec);
    let parallel = api
        .iter()
        .find(|p| p.name == "parallel_get_by_id")
        .map(Phase::ops_per_sec);
    let insert = api
        .iter()
        .find(|p| p.name == "insert")
        .map(Phase::ops_per_sec);
    let pinsert = api
        .iter()
        .find(|p| p.name == "parallel_insert")
        .map(Phase::ops_per_sec);
    if let (Some(s), Some(p), Some(i), Some(pi)) = (single, parallel, insert, pinsert) {
        println!(
            "{{\"scaling\":{{\"parallel_get_by_id_over_get_by_id\":{:.3},\"parallel_insert_over_insert\":{:.3},\"threads\":{threads}}}}}",
            p / s,
            pi / i
        );
    }
    println!("{{\"peak_rss_kib\":{}}}", peak_rss_kib().unwrap_or(0));
    Ok(())
}

fn database_phases(n: usize, scratch: &Path) -> Result<Vec<Phase>> {
    let rows = Rows::new(n, |i| format!("bot-{i}"))?;
    let dir = TempDir::new(scratch, "db")?;
    let db = dir.path().join("botmaker.db");
    botmaker::sqlite::migrate(&db)?;
    let store = SqliteStore::open(&db)?;
    let mut phases = Vec::new();

    phases.push(timed("insert", n, || {
        for new in &rows.news {
            store.create(new)?;
        }
        Ok(())
    })?);
    phases.push(timed("get_by_id", n, || {
        for k in 0..n {
            black_box(store.get(&rows.ids[visit(k, n)])?);
        }
        Ok(())
    })?);
    phases.push(timed("get_by_name", n, || {
        for k in 0..n {
            black_box(store.get_by_name(&rows.news[visit(k, n)].name)?);
        }
        Ok(())
    })?);
    phases.push(timed("list_all", 20, || {
        for _ in 0..20 {
            let all = store.list(None)?;
            ensure!(all.len() == n, "list_all saw {} rows", all.len());
            black_box(all);
        }
        Ok(())
    })?);
    // The lifecycle refuses created -> running; move every bot to `starting` first,
    // untimed, so the timed phase is N valid changes to `running`.
    for id in &rows.ids {
        store.set_status(id, BotStatus::Starting)?;
    }
    phases.push(timed("update_status", n, || {
        for k in 0..n {
            store.set_status(&rows.ids[visit(k, n)], BotStatus::Running)?;
        }
        Ok(())
    })?);
    phases.push(timed("delete", n, || {
        for k in 0..n {
            store.delete(&rows.ids[visit(k, n)])?;
        }
        Ok(())
    })?);
    Ok(phases)
}

/// The three secrets of bot `j`, generation `g` (0: written, 1: rotated).
pub(crate) fn secret_values(j: usize, g: usize) -> [Vec<u8>; 3] {
    let fill = |len: usize, tag: &str| {
        let mut v = format!("{tag}-{g}-{j}-").into_bytes();
        v.resize(len, b'a' + u8::try_from((j + g) % 26).unwrap_or(0));
        v
    };
    let mut config = format!("{{\"workspace\":\"w{j}\",\"generation\":{g},\"pad\":\"").into_bytes();
    config.resize(198, b'x');
    config.extend_from_slice(b"\"}");
    [fill(64, "key"), fill(64, "tok"), config]
}

pub(crate) const SECRET_NAMES: [&str; 3] = ["ai_api_key", "channel_token", "channel_config"];

fn secrets_phases(m: usize, scratch: &Path) -> Result<Vec<Phase>> {
    let dir = TempDir::new(scratch, "secrets")?;
    let store = SecretsStore::open(&dir.path().join("secrets"))?;
    let ids: Vec<BotId> = (0..m)
        .map(|_| BotId::from_uuid(uuid::Uuid::new_v4()))
        .collect();
    let names: Vec<SecretName> = SECRET_NAMES
        .iter()
        .map(|n| SecretName::parse(n))
        .collect::<Result<_, _>>()?;
    let first: Vec<[Vec<u8>; 3]> = (0..m).map(|j| secret_values(j, 0)).collect();
    let second: Vec<[Vec<u8>; 3]> = (0..m).map(|j| secret_values(j, 1)).collect();
    let mut phases = Vec::new();
    phases.push(timed("secret_write", 3 * m, || {
        for (id, values) in ids.iter().zip(&first) {
            store.create_bot(id)?;
            for (name, value) in names.iter().zip(values) {
                store.write(id, name, value)?;
            }
        }
        Ok(())
    })?);
    phases.push(timed("secret_read", 3 * m, || {
        for (id, values) in ids.iter().zip(&first) {
            for (name, value) in names.iter().zip(values) {
                let read = store.read(id, name)?;
                ensure!(
                    read.expose() == value.as_slice(),
                    "secret {name} of {id} read back wrong"
                );
            }
        }
        Ok(())
    })?);
    phases.push(timed("secret_rotate", 3 * m, || {
        for (id, values) in ids.iter().zip(&second) {
            for (name, value) in names.iter().zip(values) {
                store.write(id, name, value)?;
            }
        }
        Ok(())
    })?);
    phases.push(timed("secret_delete", m, || {
        for id in &ids {
            store.delete_bot(id)?;
        }
        Ok(())
    })?);
    Ok(phases)
}

fn parallel_phases(n: usize, threads: usize, scratch: &Path) -> Result<Vec<Phase>> {
    let rows = Rows::new(n, |i| format!("bot-{i}"))?;
    let extra: Vec<Vec<NewBot>> = (0..threads)
        .map(|t| Rows::new(n / threads, |i| format!("p{t}-{i}")).map(|r| r.news))
        .collect::<Result<_>>()?;
    let dir = TempDir::new(scratch, "parallel")?;
    let db = dir.path().join("botmaker.db");
    botmaker::sqlite::migrate(&db)?;
    let store = Arc::new(SqliteStore::open(&db)?);
    eprintln!("bench: loading {n} rows for the parallel part");
    for new in &rows.news {
        store.create(new)?;
    }
    let ids = Arc::new(rows.ids);
    let mut phases = Vec::new();
    phases.push(timed("parallel_get_by_id", threads * n, || {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (store, ids) = (&store, &ids);
                    s.spawn(move || -> Result<()> {
                        let start = t * n / threads;
                        for k in 0..n {
                            black_box(store.get(&ids[visit((start + k) % n, n)])?);
                        }
                        Ok(())
                    })
                })
                .collect();
            join_all(handles)
        })
    })?);
    let total: usize = extra.iter().map(Vec::len).sum();
    phases.push(timed("parallel_insert", total, || {
        std::thread::scope(|s| {
            let handles: Vec<_> = extra
                .iter()
                .map(|news| {
                    let store = &store;
                    s.spawn(move || -> Result<()> {
                        for new in news {
                            store.create(new)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            join_all(handles)
        })
    })?);
    Ok(phases)
}

pub(crate) fn join_all(handles: Vec<std::thread::ScopedJoinHandle<'_, Result<()>>>) -> Result<()> {
    for h in handles {
        match h.join() {
            Ok(r) => r?,
            Err(_) => bail!("a benchmark thread panicked"),
        }
    }
    Ok(())
}

/// Peak resident memory of this process (VmHWM), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
