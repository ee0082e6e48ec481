//! `--database-url URL`: the database part and the parallel part on PostgreSQL, through
//! `PgStore` and, with `--raw`, through the bare `postgres` client running the same
//! statements (prepared once per connection, autocommit, the lifecycle checked in the
//! status UPDATE's `WHERE`), interleaved slice by slice as on SQLite.
//!
//! The run makes its own scratch databases on the server (`bm_bench_<pid>_<n>_api` and
//! `…_raw`: each variant holds its own, as each SQLite variant holds its own file) and
//! drops them at its end, failed or not. The URL's password is never printed: the run
//! names the server by `DatabaseUrl`'s redacted description.

use std::hint::black_box;
use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use botmaker::domain::{BotRepository, BotStatus, NewBot};
use botmaker_postgres::{DatabaseUrl, PgOptions, PgStore};
use postgres::{Client, NoTls, Statement};

use super::{
    LIST_PAGE, Rows, Timed, api_delete, api_get_by_id, api_get_by_name, api_insert, api_list_all,
    api_parallel_get_by_id, api_update_status, join_all, phase, print_results, visit, work,
};

/// Runs the PostgreSQL parts and prints their JSON lines.
pub(crate) fn run(n: usize, threads: usize, with_raw: bool, url: &str) -> Result<()> {
    let server = DatabaseUrl::parse(url).context("--database-url")?;
    let mut admin = connect(url).with_context(|| format!("connecting to {server}"))?;
    let setting = |admin: &mut Client, name: &str| -> Result<String> {
        Ok(admin
            .query_one(&format!("SHOW {name}"), &[])
            .with_context(|| format!("SHOW {name} on {server}"))?
            .try_get(0)?)
    };
    let fsync = setting(&mut admin, "fsync")?;
    let synchronous_commit = setting(&mut admin, "synchronous_commit")?;
    let version = setting(&mut admin, "server_version")?;
    println!(
        "{{\"workload\":\"botmaker-standard\",\"backend\":\"postgres\",\"n\":{n},\"threads\":{threads},\"server_version\":\"{version}\",\"fsync\":\"{fsync}\",\"synchronous_commit\":\"{synchronous_commit}\",\"parts\":\"database,parallel\"}}"
    );
    eprintln!(
        "bench: on PostgreSQL {version} at {server} (fsync={fsync}, synchronous_commit={synchronous_commit}); the secrets and async parts do not touch the registry and are skipped"
    );
    let api = Scratch::create(&mut admin, url, "api")?;
    let raw = with_raw
        .then(|| Scratch::create(&mut admin, url, "raw"))
        .transpose()?;
    let result = phases(n, threads, &api, raw.as_ref());
    // Dropped whatever happened (after every connection to them is closed: `phases`
    // owns the stores and clients, so they are gone by now).
    let dropped = api.drop_in(&mut admin);
    let dropped_raw = raw.map_or(Ok(()), |r| r.drop_in(&mut admin));
    let results = result?;
    dropped?;
    dropped_raw?;
    print_results(&results, with_raw, threads);
    Ok(())
}

fn phases(n: usize, threads: usize, api: &Scratch, raw: Option<&Scratch>) -> Result<Vec<Timed>> {
    let url = DatabaseUrl::parse(&api.url)?;
    botmaker_postgres::migrate(&url)?;
    let store = PgStore::open(
        &url,
        PgOptions {
            pool_size: threads.max(8),
            ..PgOptions::default()
        },
    )?;
    let mut bare = raw.map(|r| Bare::new(&r.url, n, threads)).transpose()?;
    let mut out = database_phases(n, &store, bare.as_mut())?;
    out.extend(parallel_phases(n, threads, &store, bare.as_mut())?);
    Ok(out)
}

fn database_phases(n: usize, store: &PgStore, mut bare: Option<&mut Bare>) -> Result<Vec<Timed>> {
    let rows = Rows::new(n, |i| format!("bot-{i}"))?;
    let mut out = Vec::new();
    macro_rules! run {
        ($name:literal, $units:expr, $api:expr, $raw:ident) => {{
            let mut api = $api;
            let mut raw = bare
                .as_deref_mut()
                .map(|b| move |k: Range<usize>| b.$raw(k));
            out.push(phase(
                $name,
                $units,
                1,
                work(&mut api),
                raw.as_mut().map(work),
                None,
            )?);
        }};
    }
    run!("insert", n, |k| api_insert(store, &rows.news[k]), insert);
    run!(
        "get_by_id",
        n,
        |k| api_get_by_id(store, &rows.ids, k),
        get_by_id
    );
    run!(
        "get_by_name",
        n,
        |k| api_get_by_name(store, &rows.news, k),
        get_by_name
    );
    run!(
        "list_all",
        20,
        |k: Range<usize>| api_list_all(store, n, k.len()),
        list_all
    );
    // created -> starting first, untimed on both sides (the lifecycle refuses
    // created -> running).
    for id in &rows.ids {
        store.set_status(id, BotStatus::Starting)?;
    }
    if let Some(b) = bare.as_deref_mut() {
        b.all_starting()?;
    }
    run!(
        "update_status",
        n,
        |k| api_update_status(store, &rows.ids, k),
        update_status
    );
    run!("delete", n, |k| api_delete(store, &rows.ids, k), delete);
    Ok(out)
}

fn parallel_phases(
    n: usize,
    threads: usize,
    store: &PgStore,
    mut bare: Option<&mut Bare>,
) -> Result<Vec<Timed>> {
    let rows = Rows::new(n, |i| format!("bot-{i}"))?;
    let extra: Vec<Vec<NewBot>> = (0..threads)
        .map(|t| Rows::new(n / threads, |i| format!("p{t}-{i}")).map(|r| r.news))
        .collect::<Result<_>>()?;
    eprintln!("bench: loading {n} rows for the parallel part");
    api_insert(store, &rows.news)?;
    if let Some(b) = bare.as_deref_mut() {
        b.load_parallel()?;
    }
    let ids = &rows.ids;
    let mut out = Vec::new();
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
        let mut raw = bare
            .as_deref_mut()
            .map(|b| |k: Range<usize>| b.parallel_get_by_id(k));
        out.push(phase(
            "parallel_get_by_id",
            n,
            threads,
            work(&mut api),
            raw.as_mut().map(work),
            None,
        )?);
    }
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
    let mut raw = bare.map(|b| |k: Range<usize>| b.parallel_insert(k));
    out.push(phase(
        "parallel_insert",
        n / threads,
        threads,
        work(&mut api),
        raw.as_mut().map(work),
        None,
    )?);
    Ok(out)
}

/// A scratch database of the run's own.
struct Scratch {
    name: String,
    /// Its connection string (holds the password when the given one did: never printed).
    url: String,
}

impl Scratch {
    fn create(admin: &mut Client, url: &str, label: &str) -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("bm_bench_{}_{nanos:08x}_{label}", std::process::id());
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .with_context(|| {
                format!("CREATE DATABASE {name} (the URL's user must be allowed to)")
            })?;
        eprintln!("bench: scratch database {name}");
        Ok(Self {
            url: botmaker_testkit::pg::with_dbname(url, &name),
            name,
        })
    }

    fn drop_in(self, admin: &mut Client) -> Result<()> {
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .with_context(|| format!("DROP DATABASE {}", self.name))
    }
}

/// A bare client. Its errors name no connection string.
fn connect(url: &str) -> Result<Client> {
    let config: postgres::Config = url.trim().parse().context("parsing --database-url")?;
    Ok(config.connect(NoTls)?)
}

/// A bot decoded into plain values.
#[allow(dead_code)] // fields are read through black_box only
struct RawBot {
    id: String,
    name: String,
    ai_provider: String,
    model: String,
    channel_type: String,
    container_id: Option<String>,
    status: String,
    created_at: i64,
    updated_at: i64,
    secrets_root: Option<String>,
}

fn decode(r: &postgres::Row) -> Result<RawBot> {
    Ok(RawBot {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        ai_provider: r.try_get(2)?,
        model: r.try_get(3)?,
        channel_type: r.try_get(4)?,
        container_id: r.try_get(5)?,
        status: r.try_get(6)?,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
        secrets_root: r.try_get(9)?,
    })
}

// The store's statements (`botmaker-postgres/src/store.rs`), one round trip each.
const INSERT: &str = concat!(
    "INSERT INTO bots (",
    cols!(),
    ") VALUES ($1, $2, $3, $4, $5, NULL, 'created', $6, $6, NULL)"
);
const GET_BY_ID: &str = concat!("SELECT ", cols!(), " FROM bots WHERE id = $1");
const GET_BY_NAME: &str = concat!("SELECT ", cols!(), " FROM bots WHERE name = $1");
const PAGE_FIRST: &str = concat!(
    "SELECT ",
    cols!(),
    " FROM bots ORDER BY created_at DESC, id DESC LIMIT $1"
);
const PAGE_AFTER: &str = concat!(
    "SELECT ",
    cols!(),
    " FROM bots WHERE (created_at, id) < ($1, $2) ORDER BY created_at DESC, id DESC LIMIT $3"
);
/// Only `starting` may become `running` (the lifecycle), checked in the statement.
const SET_RUNNING: &str =
    "UPDATE bots SET status = 'running', updated_at = $1 WHERE id = $2 AND status = 'starting'";
const SET_STARTING: &str = "UPDATE bots SET status = 'starting', updated_at = $1 \
     WHERE id = $2 AND status IN ('created', 'stopped', 'failed')";
const DELETE: &str = "DELETE FROM bots WHERE id = $1";

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// One bare connection and its statements, prepared once.
struct Conn {
    client: Client,
    insert: Statement,
    get_by_id: Statement,
    get_by_name: Statement,
    page_first: Statement,
    page_after: Statement,
    set_running: Statement,
    set_starting: Statement,
    delete: Statement,
}

impl Conn {
    fn new(url: &str) -> Result<Self> {
        let mut client = connect(url)?;
        Ok(Self {
            insert: client.prepare(INSERT)?,
            get_by_id: client.prepare(GET_BY_ID)?,
            get_by_name: client.prepare(GET_BY_NAME)?,
            page_first: client.prepare(PAGE_FIRST)?,
            page_after: client.prepare(PAGE_AFTER)?,
            set_running: client.prepare(SET_RUNNING)?,
            set_starting: client.prepare(SET_STARTING)?,
            delete: client.prepare(DELETE)?,
            client,
        })
    }

    fn insert(&mut self, ids: &[String], news: &[NewBot]) -> Result<()> {
        for (id, b) in ids.iter().zip(news) {
            self.client.execute(
                &self.insert,
                &[
                    id,
                    &b.name.as_str(),
                    &b.ai_provider.as_str(),
                    &b.model.as_str(),
                    &b.channel_type.as_str(),
                    &now_micros(),
                ],
            )?;
        }
        Ok(())
    }

    fn get_by_id(&mut self, id: &str) -> Result<RawBot> {
        decode(&self.client.query_one(&self.get_by_id, &[&id])?)
    }
}

/// The bare side: its own database, one connection for the database part, and one per
/// thread for each parallel phase (a `postgres::Client` is used by one thread at a
/// time), all opened untimed.
struct Bare {
    conn: Conn,
    readers: Vec<Conn>,
    writers: Vec<Conn>,
    rows: Rows,
    ids: Vec<String>,
    /// The parallel part's rows, and each thread's new ones.
    parallel: (Rows, Vec<String>),
    extra: Vec<(Vec<String>, Rows)>,
}

fn render(rows: &Rows) -> Vec<String> {
    rows.ids.iter().map(ToString::to_string).collect()
}

impl Bare {
    fn new(url: &str, n: usize, threads: usize) -> Result<Self> {
        // The same schema and indexes: the migrations, through the crate.
        botmaker_postgres::migrate(&DatabaseUrl::parse(url)?)?;
        let rows = Rows::new(n, |i| format!("bot-{i}"))?;
        let parallel = Rows::new(n, |i| format!("bot-{i}"))?;
        let parallel_ids = render(&parallel);
        let extra = (0..threads)
            .map(|t| Rows::new(n / threads, |i| format!("p{t}-{i}")).map(|r| (render(&r), r)))
            .collect::<Result<_>>()?;
        Ok(Self {
            conn: Conn::new(url)?,
            readers: (0..threads)
                .map(|_| Conn::new(url))
                .collect::<Result<_>>()?,
            writers: (0..threads)
                .map(|_| Conn::new(url))
                .collect::<Result<_>>()?,
            ids: render(&rows),
            rows,
            parallel: (parallel, parallel_ids),
            extra,
        })
    }

    fn insert(&mut self, k: Range<usize>) -> Result<()> {
        self.conn.insert(&self.ids[k.clone()], &self.rows.news[k])
    }

    #[inline(never)]
    fn get_by_id(&mut self, ks: Range<usize>) -> Result<()> {
        let n = self.ids.len();
        for k in ks {
            black_box(self.conn.get_by_id(&self.ids[visit(k, n)])?);
        }
        Ok(())
    }

    #[inline(never)]
    fn get_by_name(&mut self, ks: Range<usize>) -> Result<()> {
        let n = self.ids.len();
        let c = &mut self.conn;
        for k in ks {
            let name = self.rows.news[visit(k, n)].name.as_str();
            black_box(decode(&c.client.query_one(&c.get_by_name, &[&name])?)?);
        }
        Ok(())
    }

    /// The same keyset walk as the API side: pages of `LIST_PAGE` rows, each decoded.
    #[inline(never)]
    fn list_all(&mut self, k: Range<usize>) -> Result<()> {
        let limit = i64::try_from(LIST_PAGE)?;
        let n = self.ids.len();
        let c = &mut self.conn;
        for _ in k {
            let mut seen = 0;
            let mut after: Option<(i64, String)> = None;
            loop {
                let rows = match &after {
                    None => c.client.query(&c.page_first, &[&limit])?,
                    Some((at, id)) => c.client.query(&c.page_after, &[at, id, &limit])?,
                };
                let page = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
                seen += page.len();
                after = page.last().map(|b| (b.created_at, b.id.clone()));
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

    fn all_starting(&mut self) -> Result<()> {
        let c = &mut self.conn;
        for id in &self.ids {
            let changed = c.client.execute(&c.set_starting, &[&now_micros(), id])?;
            ensure!(changed == 1, "{id} did not become starting");
        }
        Ok(())
    }

    #[inline(never)]
    fn update_status(&mut self, ks: Range<usize>) -> Result<()> {
        let n = self.ids.len();
        let c = &mut self.conn;
        for k in ks {
            let changed = c
                .client
                .execute(&c.set_running, &[&now_micros(), &self.ids[visit(k, n)]])?;
            ensure!(changed == 1, "the status update changed {changed} rows");
        }
        Ok(())
    }

    #[inline(never)]
    fn delete(&mut self, ks: Range<usize>) -> Result<()> {
        let n = self.ids.len();
        let c = &mut self.conn;
        for k in ks {
            let changed = c.client.execute(&c.delete, &[&self.ids[visit(k, n)]])?;
            ensure!(changed == 1, "the delete changed {changed} rows");
        }
        Ok(())
    }

    /// Untimed: the parallel part's N rows, as on the API side.
    fn load_parallel(&mut self) -> Result<()> {
        let (ids, rows) = (&self.parallel.1, &self.parallel.0);
        self.conn.insert(ids, &rows.news)
    }

    /// Each thread: the lookups `k` of its N, from `t * N / T` in the visiting order.
    fn parallel_get_by_id(&mut self, k: Range<usize>) -> Result<()> {
        let ids = &self.parallel.1;
        let (n, threads) = (ids.len(), self.readers.len());
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .readers
                .iter_mut()
                .enumerate()
                .map(|(t, conn)| {
                    let k = k.clone();
                    s.spawn(move || bare_parallel_get_by_id(conn, ids, t * n / threads, k))
                })
                .collect();
            join_all(handles)
        })
    }

    /// Each thread: its new bots `k`.
    fn parallel_insert(&mut self, k: Range<usize>) -> Result<()> {
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .writers
                .iter_mut()
                .zip(&self.extra)
                .map(|(conn, (ids, rows))| {
                    let k = k.clone();
                    s.spawn(move || conn.insert(&ids[k.clone()], &rows.news[k]))
                })
                .collect();
            join_all(handles)
        })
    }
}

#[inline(never)]
fn bare_parallel_get_by_id(
    conn: &mut Conn,
    ids: &[String],
    start: usize,
    ks: Range<usize>,
) -> Result<()> {
    let n = ids.len();
    for k in ks {
        black_box(conn.get_by_id(&ids[visit((start + k) % n, n)])?);
    }
    Ok(())
}
