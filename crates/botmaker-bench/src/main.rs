//! `botmaker-bench [--n N] [--m M] [--threads T] [--raw] [--database-url URL]` (run by
//! `cargo xtask bench`): the standard workload of `../shared/bench/WORKLOAD.md`, through
//! the facade's public API, and with `--raw` a second time through bare rusqlite and bare
//! descriptor-relative syscalls, printing each phase's ratio api/raw.
//!
//! With `--database-url`, the database and parallel parts run on that PostgreSQL server
//! instead, through `PgStore` and with `--raw` through the bare `postgres` client, in a
//! scratch database made for the run and dropped at its end (see `pg.rs`); the secrets
//! and async parts, which do not touch the registry, are skipped.
//!
//! JSON lines on stdout, progress on stderr. Figures mean something only in a release
//! build, which `cargo xtask bench` makes; BENCHMARKS.md holds them.
//!
//! With `--raw`, both variants hold their own database (or secrets root) at the same
//! time and take turns: each phase is cut into [`SLICES`] slices of its work, run
//! API, bare, bare, API, … (who goes first alternates), and each variant's time is
//! the sum of its slices. Both variants so meet the same machine state (other load,
//! the disk's journal, the CPU's clock), which keeps their ratio meaningful on a
//! shared, noisy machine. Each phase function is its own `#[inline(never)]` function,
//! so that a profile (`valgrind --tool=callgrind`) attributes its cost by name.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line program

use std::fs;
use std::hint::black_box;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use botmaker::domain::{
    AiProvider, BotId, BotName, BotRepository, BotStatus, ChannelType, ModelName, NewBot,
    PageCursor, SecretName,
};
use botmaker::secrets::SecretsStore;
use botmaker::sqlite::SqliteStore;
use botmaker_testkit::scratch::Scratch;

/// The registry's columns in the stores' order, for the bare baselines' statements
/// (`raw.rs` on SQLite, `pg.rs` on PostgreSQL): the same list on both.
macro_rules! cols {
    () => {
        "id, name, ai_provider, model, channel_type, container_id, status, created_at, updated_at, \
         secrets_root"
    };
}

mod aio;
mod pg;
mod raw;

/// Run the standard benchmark workload through the public API.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "botmaker-bench")]
pub(crate) struct Params {
    /// Rows of the database part.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) n: usize,
    /// Bots of the secrets part.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) m: usize,
    /// Threads of the parallel part.
    #[arg(long, default_value_t = 4)]
    pub(crate) threads: usize,
    /// Also run it through bare rusqlite and bare syscalls, and print api/raw ratios.
    #[arg(long)]
    pub(crate) raw: bool,
    /// Run only the async part (`botmaker::aio` with 1 and 64 tasks, and the
    /// spawn_blocking-or-pool hand-off), not the standard workload.
    #[arg(long)]
    pub(crate) only_async: bool,
    /// Run the database and parallel parts on this PostgreSQL server (`postgres://…`,
    /// `postgresql://…` or `host=… dbname=…`), in a scratch database made and dropped
    /// by the run; its user must be allowed to CREATE DATABASE. Skips the secrets and
    /// async parts.
    #[arg(long, value_name = "URL")]
    pub(crate) database_url: Option<String>,
}

fn main() -> ExitCode {
    let params = <Params as clap::Parser>::parse();
    match scratch_base().and_then(|base| run(&params, &base)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where the workload's files go: the target directory this binary was built into
/// (beside the sources' disk, and never a tmpfs `/tmp` whose fsync costs nothing).
fn scratch_base() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    exe.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .context("the running executable is not in a target directory")
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

/// How many slices a phase is cut into when both variants run.
pub(crate) const SLICES: usize = 10;

/// One variant's work on a range of a phase's units.
pub(crate) type Work<'a> = &'a mut (dyn FnMut(Range<usize>) -> Result<()> + 'a);

/// A phase's timings: the API, and the bare variants that ran beside it.
#[derive(Clone, Debug)]
pub(crate) struct Timed {
    pub(crate) api: Phase,
    /// Bare rusqlite on our schema, or bare syscalls with the store's checks.
    pub(crate) raw: Option<Phase>,
    /// The second bare baseline, named by `third_label`: bare rusqlite on the
    /// reference schema (database phases), or a bare reader without checks
    /// (`secret_read`).
    pub(crate) third: Option<Phase>,
    pub(crate) third_label: &'static str,
}

/// Times phase `name`: `units` units of `per_unit` operations each, done by `api` and,
/// when given, by `raw` and `third`, taking turns slice by slice (see the module docs;
/// who goes first rotates).
pub(crate) fn phase(
    name: &'static str,
    units: usize,
    per_unit: usize,
    api: Work<'_>,
    raw: Option<Work<'_>>,
    third: Option<(&'static str, Work<'_>)>,
) -> Result<Timed> {
    let ops = units * per_unit;
    eprintln!("bench: {name} ({ops} ops)");
    let third_label = third.as_ref().map_or("", |(label, _)| *label);
    let mut variants: Vec<(usize, Work<'_>)> = vec![(0, api)];
    if let Some(raw) = raw {
        variants.push((1, raw));
    }
    if let Some((_, third)) = third {
        variants.push((2, third));
    }
    let slices = if variants.len() > 1 {
        SLICES.clamp(1, units.max(1))
    } else {
        1
    };
    let mut times = [Duration::ZERO; 3];
    let count = variants.len();
    for s in 0..slices {
        let range = units * s / slices..units * (s + 1) / slices;
        for turn in 0..count {
            let (which, work) = &mut variants[(s + turn) % count];
            let start = Instant::now();
            work(range.clone())?;
            times[*which] += start.elapsed();
        }
    }
    let has = |k: usize| variants.iter().any(|(w, _)| *w == k);
    let make = |t: Duration| Phase {
        name,
        ops,
        secs: t.as_secs_f64(),
    };
    Ok(Timed {
        api: make(times[0]),
        raw: has(1).then(|| make(times[1])),
        third: has(2).then(|| make(times[2])),
        third_label,
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

/// Runs the workload and prints its JSON lines.
pub(crate) fn run(params: &Params, scratch: &Path) -> Result<()> {
    let &Params { n, m, threads, .. } = params;
    let with_raw = params.raw;
    ensure!(
        n > 0 && m > 0 && threads > 0,
        "--n, --m and --threads must be positive"
    );
    ensure!(n % 7919 != 0, "--n must not be a multiple of 7919");
    if params.only_async {
        return aio::run(n, m, scratch);
    }
    if let Some(url) = &params.database_url {
        return pg::run(n, threads, with_raw, url);
    }
    println!("{{\"workload\":\"botmaker-standard\",\"n\":{n},\"m\":{m},\"durable\":true}}");

    // Every part starts after a `sync`, so that no part pays for the writeback of the
    // previous one.
    let mut results: Vec<Timed> = Vec::new();
    settle();
    results.extend(database_phases(n, with_raw, scratch)?);
    settle();
    results.extend(secrets_phases(m, with_raw, scratch)?);
    settle();
    results.extend(parallel_phases(n, threads, with_raw, scratch)?);
    print_results(&results, with_raw, threads);
    settle();
    aio::run(n, m, scratch)?;
    println!("{{\"peak_rss_kib\":{}}}", peak_rss_kib().unwrap_or(0));
    Ok(())
}

/// Prints the phases' JSON lines: the API's, with `raw` the bare ones and the ratios,
/// then the parallel part's scaling over one thread.
pub(crate) fn print_results(results: &[Timed], raw: bool, threads: usize) {
    for t in results {
        println!("{}", t.api.json("api"));
    }
    if raw {
        for t in results {
            if let Some(raw) = &t.raw {
                println!("{}", raw.json("raw"));
            }
            if let Some(third) = &t.third {
                println!("{}", third.json(t.third_label));
            }
        }
        for t in results {
            let ratio = |p: &Option<Phase>| {
                p.as_ref()
                    .map(|p| format!("{:.3}", t.api.ops_per_sec() / p.ops_per_sec()))
            };
            match (ratio(&t.raw), ratio(&t.third)) {
                (Some(raw), Some(third)) => println!(
                    "{{\"phase\":\"{}\",\"ratio_api_over_raw\":{raw},\"ratio_api_over_{}\":{third}}}",
                    t.api.name, t.third_label
                ),
                (Some(raw), None) => println!(
                    "{{\"phase\":\"{}\",\"ratio_api_over_raw\":{raw}}}",
                    t.api.name
                ),
                _ => {}
            }
        }
    }
    let rate = |name: &str| {
        results
            .iter()
            .find(|t| t.api.name == name)
            .map(|t| t.api.ops_per_sec())
    };
    if let (Some(s), Some(p), Some(i), Some(pi)) = (
        rate("get_by_id"),
        rate("parallel_get_by_id"),
        rate("insert"),
        rate("parallel_insert"),
    ) {
        println!(
            "{{\"scaling\":{{\"parallel_get_by_id_over_get_by_id\":{:.3},\"parallel_insert_over_insert\":{:.3},\"threads\":{threads}}}}}",
            p / s,
            pi / i
        );
    } // The same scaling of the bare baseline: what the machine itself allows (on
    // PostgreSQL, the server's backends share the cores with the client threads).
    let raw_rate = |name: &str| {
        results
            .iter()
            .find(|t| t.api.name == name)
            .and_then(|t| t.raw.as_ref())
            .map(Phase::ops_per_sec)
    };
    if let (Some(s), Some(p), Some(i), Some(pi)) = (
        raw_rate("get_by_id"),
        raw_rate("parallel_get_by_id"),
        raw_rate("insert"),
        raw_rate("parallel_insert"),
    ) {
        println!(
            "{{\"raw_scaling\":{{\"parallel_get_by_id_over_get_by_id\":{:.3},\"parallel_insert_over_insert\":{:.3},\"threads\":{threads}}}}}",
            p / s,
            pi / i
        );
    }
}

/// Bots per page when `list_all` walks the registry: the listing holds one page at a
/// time, so its memory is bounded whatever N is.
pub(crate) const LIST_PAGE: usize = 1000;

/// Wraps a closure as a phase's [`Work`].
fn work<'a>(f: &'a mut (impl FnMut(Range<usize>) -> Result<()> + 'a)) -> Work<'a> {
    f
}

fn database_phases(n: usize, with_raw: bool, scratch: &Path) -> Result<Vec<Timed>> {
    let rows = Rows::new(n, |i| format!("bot-{i}"))?;
    let dir = Scratch::new_in(scratch, "bench-db")?;
    let db = dir.path().join("botmaker.db");
    botmaker::sqlite::migrate(&db)?;
    let store = SqliteStore::open(&db)?;
    let raw = with_raw
        .then(|| raw::Db::new(n, scratch, raw::Schema::Ours))
        .transpose()?;
    let reference = with_raw
        .then(|| raw::Db::new(n, scratch, raw::Schema::Reference))
        .transpose()?;
    let mut out = Vec::new();
    macro_rules! run {
        ($name:literal, $units:expr, $api:expr, $raw:ident) => {{
            let mut api = $api;
            let mut bare = raw.as_ref().map(|r| move |k: Range<usize>| r.$raw(k));
            let mut refd = reference.as_ref().map(|r| move |k: Range<usize>| r.$raw(k));
            out.push(phase(
                $name,
                $units,
                1,
                work(&mut api),
                bare.as_mut().map(work),
                refd.as_mut().map(|w| ("reference", work(w))),
            )?);
        }};
    }
    run!("insert", n, |k| api_insert(&store, &rows.news[k]), insert);
    run!(
        "get_by_id",
        n,
        |k| api_get_by_id(&store, &rows.ids, k),
        get_by_id
    );
    run!(
        "get_by_name",
        n,
        |k| api_get_by_name(&store, &rows.news, k),
        get_by_name
    );
    run!(
        "list_all",
        20,
        |k: Range<usize>| api_list_all(&store, n, k.len()),
        list_all
    );
    // The lifecycle refuses created -> running; move every bot to `starting` first,
    // untimed (on both sides), so the timed phase is N valid changes to `running`.
    for id in &rows.ids {
        store.set_status(id, BotStatus::Starting)?;
    }
    if let Some(r) = &raw {
        r.all_starting()?;
    }
    if let Some(r) = &reference {
        r.all_starting()?;
    }
    run!(
        "update_status",
        n,
        |k| api_update_status(&store, &rows.ids, k),
        update_status
    );
    run!("delete", n, |k| api_delete(&store, &rows.ids, k), delete);
    Ok(out)
}

#[inline(never)]
pub(crate) fn api_insert<S: BotRepository>(store: &S, news: &[NewBot]) -> Result<()> {
    for new in news {
        black_box(store.create(new)?);
    }
    Ok(())
}

#[inline(never)]
pub(crate) fn api_get_by_id<S: BotRepository>(
    store: &S,
    ids: &[BotId],
    ks: Range<usize>,
) -> Result<()> {
    let n = ids.len();
    for k in ks {
        black_box(store.get(&ids[visit(k, n)])?);
    }
    Ok(())
}

#[inline(never)]
pub(crate) fn api_get_by_name<S: BotRepository>(
    store: &S,
    news: &[NewBot],
    ks: Range<usize>,
) -> Result<()> {
    let n = news.len();
    for k in ks {
        black_box(store.get_by_name(&news[visit(k, n)].name)?);
    }
    Ok(())
}

/// Walks every bot, newest first, `times` times, one page of [`LIST_PAGE`] bots at a
/// time (keyset paging: `BotRepository::list_page`), each bot fully decoded.
#[inline(never)]
pub(crate) fn api_list_all<S: BotRepository>(store: &S, n: usize, times: usize) -> Result<()> {
    for _ in 0..times {
        let mut seen = 0;
        let mut after = None;
        loop {
            let page = store.list_page(None, after, LIST_PAGE)?;
            seen += page.len();
            after = page.last().map(PageCursor::after);
            let full = page.len() == LIST_PAGE;
            black_box(page);
            if !full {
                break;
            }
        }
        ensure!(seen == n, "list_all saw {seen} rows");
    }
    Ok(())
}

#[inline(never)]
pub(crate) fn api_update_status<S: BotRepository>(
    store: &S,
    ids: &[BotId],
    ks: Range<usize>,
) -> Result<()> {
    let n = ids.len();
    for k in ks {
        black_box(store.set_status(&ids[visit(k, n)], BotStatus::Running)?);
    }
    Ok(())
}

#[inline(never)]
pub(crate) fn api_delete<S: BotRepository>(
    store: &S,
    ids: &[BotId],
    ks: Range<usize>,
) -> Result<()> {
    let n = ids.len();
    for k in ks {
        store.delete(&ids[visit(k, n)])?;
    }
    Ok(())
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

/// The secrets part's inputs, made before timing.
pub(crate) struct SecretsInput {
    pub(crate) first: Vec<[Vec<u8>; 3]>,
    pub(crate) second: Vec<[Vec<u8>; 3]>,
}

impl SecretsInput {
    pub(crate) fn new(m: usize) -> Self {
        Self {
            first: (0..m).map(|j| secret_values(j, 0)).collect(),
            second: (0..m).map(|j| secret_values(j, 1)).collect(),
        }
    }
}

fn secrets_phases(m: usize, with_raw: bool, scratch: &Path) -> Result<Vec<Timed>> {
    let dir = Scratch::new_in(scratch, "bench-secrets")?;
    let store = SecretsStore::open(&dir.path().join("secrets"))?;
    let ids: Vec<BotId> = (0..m)
        .map(|_| BotId::from_uuid(uuid::Uuid::new_v4()))
        .collect();
    let names: Vec<SecretName> = SECRET_NAMES
        .iter()
        .map(|n| SecretName::parse(n))
        .collect::<Result<_, _>>()?;
    let input_owned = SecretsInput::new(m);
    let input = &input_owned;
    let raw = with_raw
        .then(|| raw::Secrets::new(m, scratch))
        .transpose()?;
    let (ids, names) = (&ids, &names);
    let mut out = Vec::new();
    macro_rules! run {
        ($name:literal, $per:expr, $api:expr, $raw:ident) => {{ run!($name, $per, $api, $raw, None::<(&'static str, Work<'_>)>) }};
        ($name:literal, $per:expr, $api:expr, $raw:ident, $third:expr) => {{
            let mut api = $api;
            let mut bare = raw
                .as_ref()
                .map(|r| move |j: Range<usize>| r.$raw(j, input));
            out.push(phase(
                $name,
                m,
                $per,
                work(&mut api),
                bare.as_mut().map(work),
                $third,
            )?);
        }};
    }
    run!(
        "secret_write",
        3,
        |j: Range<usize>| api_secret_write(&store, &ids[j.clone()], names, &input.first[j]),
        write
    );
    // The bare reader without checks (no fstat, no owner/mode/link/size checks): what
    // the store's safety costs on a read.
    let mut unchecked = raw
        .as_ref()
        .map(|r| move |j: Range<usize>| r.read_unchecked(j, input));
    run!(
        "secret_read",
        3,
        |j: Range<usize>| api_secret_read(&store, &ids[j.clone()], names, &input.first[j]),
        read,
        unchecked.as_mut().map(|w| ("unchecked", work(w)))
    );
    run!(
        "secret_rotate",
        3,
        |j: Range<usize>| api_secret_rotate(&store, &ids[j.clone()], names, &input.second[j]),
        rotate
    );
    run!(
        "secret_delete",
        1,
        |j: Range<usize>| api_secret_delete(&store, &ids[j]),
        delete
    );
    Ok(out)
}

#[inline(never)]
fn api_secret_write(
    store: &SecretsStore,
    ids: &[BotId],
    names: &[SecretName],
    values: &[[Vec<u8>; 3]],
) -> Result<()> {
    for (id, values) in ids.iter().zip(values) {
        store.create_bot(id)?;
        for (name, value) in names.iter().zip(values) {
            store.write(id, name, value)?;
        }
    }
    Ok(())
}

#[inline(never)]
fn api_secret_read(
    store: &SecretsStore,
    ids: &[BotId],
    names: &[SecretName],
    values: &[[Vec<u8>; 3]],
) -> Result<()> {
    // A bot's runtime loads its credentials at start: all three in one call, through
    // one descriptor of the bot's directory.
    for (id, values) in ids.iter().zip(values) {
        let read = store.read_many(id, names)?;
        for ((name, value), read) in names.iter().zip(values).zip(&read) {
            ensure!(
                read.expose() == value.as_slice(),
                "secret {name} of {id} read back wrong"
            );
        }
    }
    Ok(())
}

#[inline(never)]
fn api_secret_rotate(
    store: &SecretsStore,
    ids: &[BotId],
    names: &[SecretName],
    values: &[[Vec<u8>; 3]],
) -> Result<()> {
    for (id, values) in ids.iter().zip(values) {
        for (name, value) in names.iter().zip(values) {
            store.write(id, name, value)?;
        }
    }
    Ok(())
}

#[inline(never)]
fn api_secret_delete(store: &SecretsStore, ids: &[BotId]) -> Result<()> {
    for id in ids {
        store.delete_bot(id)?;
    }
    Ok(())
}

fn parallel_phases(n: usize, threads: usize, with_raw: bool, scratch: &Path) -> Result<Vec<Timed>> {
    let rows = Rows::new(n, |i| format!("bot-{i}"))?;
    let extra: Vec<Vec<NewBot>> = (0..threads)
        .map(|t| Rows::new(n / threads, |i| format!("p{t}-{i}")).map(|r| r.news))
        .collect::<Result<_>>()?;
    let dir = Scratch::new_in(scratch, "bench-parallel")?;
    let db = dir.path().join("botmaker.db");
    botmaker::sqlite::migrate(&db)?;
    let store = SqliteStore::open(&db)?;
    eprintln!("bench: loading {n} rows for the parallel part");
    for new in &rows.news {
        store.create(new)?;
    }
    let mut raw = with_raw
        .then(|| raw::Parallel::new(n, threads, scratch))
        .transpose()?;
    let (store, ids) = (&store, &rows.ids);
    let mut out = Vec::new();
    // Each slice runs T threads over its range of the per-thread work.
    let mut api = |k: Range<usize>| {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let k = k.clone();
                    s.spawn(move || api_parallel_get_by_id(store, ids, t * n / threads, k))
                })
                .collect();
            join_all(handles)
        })
    };
    {
        let mut bare = raw.as_mut().map(|r| |k: Range<usize>| r.get_by_id(k));
        out.push(phase(
            "parallel_get_by_id",
            n,
            threads,
            work(&mut api),
            bare.as_mut().map(work),
            None,
        )?);
    }
    let per_thread = n / threads;
    let extra = &extra;
    let mut api = |k: Range<usize>| {
        std::thread::scope(|s| {
            let handles: Vec<_> = extra
                .iter()
                .map(|news| {
                    let k = k.clone();
                    s.spawn(move || api_insert(store, &news[k]))
                })
                .collect();
            join_all(handles)
        })
    };
    let mut bare = raw.as_mut().map(|r| |k: Range<usize>| r.insert(k));
    let before = store.write_stats();
    out.push(phase(
        "parallel_insert",
        per_thread,
        threads,
        work(&mut api),
        bare.as_mut().map(work),
        None,
    )?);
    let after = store.write_stats();
    let (writes, transactions) = (
        after.writes - before.writes,
        after.transactions - before.transactions,
    );
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let mean = writes as f64 / transactions.max(1) as f64;
    eprintln!(
        "bench: parallel_insert through the API: {writes} writes in {transactions} transactions (group commit, {mean:.2} writes per transaction)"
    );
    Ok(out)
}

/// One thread of `parallel_get_by_id`: the lookups `ks` of its N, from `start` in the
/// visiting order.
#[inline(never)]
pub(crate) fn api_parallel_get_by_id<S: BotRepository>(
    store: &S,
    ids: &[BotId],
    start: usize,
    ks: Range<usize>,
) -> Result<()> {
    let n = ids.len();
    for k in ks {
        black_box(store.get(&ids[visit((start + k) % n, n)])?);
    }
    Ok(())
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

/// Flushes dirty data to disk (untimed), so that the next part starts from a quiet disk.
fn settle() {
    nix::unistd::sync();
}

/// Peak resident memory of this process (VmHWM), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
