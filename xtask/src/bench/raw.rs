//! The same workload through bare rusqlite (same schema and pragmas, `prepare_cached`,
//! rows decoded into a plain struct) and bare descriptor-relative syscalls with the
//! same durability (temp file, fsync, rename, fsync of the directory): the limit the
//! API is held to.

use std::hint::black_box;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{Mode, fstat, mkdirat};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};
use rusqlite::{Connection, params};

use super::{Phase, Rows, SECRET_NAMES, TempDir, join_all, secret_values, timed, visit};

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
}

const COLS: &str =
    "id, name, ai_provider, model, channel_type, container_id, status, created_at, updated_at";

fn decode(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawBot> {
    Ok(RawBot {
        id: r.get(0)?,
        name: r.get(1)?,
        ai_provider: r.get(2)?,
        model: r.get(3)?,
        channel_type: r.get(4)?,
        container_id: r.get(5)?,
        status: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// A connection with the workload's pragmas.
fn connect(db: &Path) -> Result<Connection> {
    let conn = Connection::open(db)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    ensure!(mode == "wal", "journal_mode is {mode}");
    conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

fn insert(conn: &Connection, rows: &Rows, i: usize) -> Result<()> {
    let b = &rows.news[i];
    let now = now_micros();
    conn.prepare_cached(
        "INSERT INTO bots (id, name, ai_provider, model, channel_type, container_id, status, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, 'created', ?6, ?6)",
    )?
    .execute(params![
        b.id.to_string(),
        b.name.as_str(),
        b.ai_provider.as_str(),
        b.model.as_str(),
        b.channel_type.as_str(),
        now
    ])?;
    Ok(())
}

fn get_by_id(conn: &Connection, id: &str) -> Result<RawBot> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLS} FROM bots WHERE id = ?1"))?
        .query_row([id], decode)?)
}

pub(crate) fn database_phases(n: usize, scratch: &Path) -> Result<Vec<Phase>> {
    let rows = Rows::new(n, |i| format!("bot-{i}"))?;
    let ids: Vec<String> = rows.ids.iter().map(ToString::to_string).collect();
    let dir = TempDir::new(scratch, "raw-db")?;
    let db = dir.path().join("botmaker.db");
    botmaker::sqlite::migrate(&db)?; // the same schema and indexes
    let conn = connect(&db)?;
    let mut phases = Vec::new();
    phases.push(timed("insert", n, || {
        (0..n).try_for_each(|i| insert(&conn, &rows, i))
    })?);
    phases.push(timed("get_by_id", n, || {
        for k in 0..n {
            black_box(get_by_id(&conn, &ids[visit(k, n)])?);
        }
        Ok(())
    })?);
    phases.push(timed("get_by_name", n, || {
        for k in 0..n {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {COLS} FROM bots WHERE name = ?1"))?;
            black_box(stmt.query_row([rows.news[visit(k, n)].name.as_str()], decode)?);
        }
        Ok(())
    })?);
    phases.push(timed("list_all", 20, || {
        for _ in 0..20 {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLS} FROM bots ORDER BY created_at DESC, id DESC"
            ))?;
            let all = stmt
                .query_map([], decode)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            ensure!(all.len() == n);
            black_box(all);
        }
        Ok(())
    })?);
    for id in &ids {
        conn.prepare_cached("UPDATE bots SET status = 'starting', updated_at = ?1 WHERE id = ?2")?
            .execute(params![now_micros(), id])?;
    }
    phases.push(timed("update_status", n, || {
        for k in 0..n {
            let changed = conn
                .prepare_cached(
                    "UPDATE bots SET status = 'running', updated_at = ?1 WHERE id = ?2",
                )?
                .execute(params![now_micros(), ids[visit(k, n)]])?;
            ensure!(changed == 1);
        }
        Ok(())
    })?);
    phases.push(timed("delete", n, || {
        for k in 0..n {
            let changed = conn
                .prepare_cached("DELETE FROM bots WHERE id = ?1")?
                .execute([&ids[visit(k, n)]])?;
            ensure!(changed == 1);
        }
        Ok(())
    })?);
    Ok(phases)
}

pub(crate) fn parallel_phases(n: usize, threads: usize, scratch: &Path) -> Result<Vec<Phase>> {
    let rows = Rows::new(n, |i| format!("bot-{i}"))?;
    let ids: Vec<String> = rows.ids.iter().map(ToString::to_string).collect();
    let extra: Vec<Rows> = (0..threads)
        .map(|t| Rows::new(n / threads, |i| format!("p{t}-{i}")))
        .collect::<Result<_>>()?;
    let dir = TempDir::new(scratch, "raw-parallel")?;
    let db = dir.path().join("botmaker.db");
    botmaker::sqlite::migrate(&db)?;
    let conn = connect(&db)?;
    (0..n).try_for_each(|i| insert(&conn, &rows, i))?;
    // Bare rusqlite connections are not Sync: one connection per thread, opened untimed.
    let readers: Vec<Connection> = (0..threads).map(|_| connect(&db)).collect::<Result<_>>()?;
    let writers: Vec<Connection> = (0..threads).map(|_| connect(&db)).collect::<Result<_>>()?;
    let mut phases = Vec::new();
    phases.push(timed("parallel_get_by_id", threads * n, || {
        std::thread::scope(|s| {
            let handles: Vec<_> = readers
                .into_iter()
                .enumerate()
                .map(|(t, conn)| {
                    let ids = &ids;
                    s.spawn(move || -> Result<()> {
                        let start = t * n / threads;
                        for k in 0..n {
                            black_box(get_by_id(&conn, &ids[visit((start + k) % n, n)])?);
                        }
                        Ok(())
                    })
                })
                .collect();
            join_all(handles)
        })
    })?);
    let total: usize = extra.iter().map(|r| r.news.len()).sum();
    phases.push(timed("parallel_insert", total, || {
        std::thread::scope(|s| {
            let handles: Vec<_> = writers
                .into_iter()
                .zip(&extra)
                .map(|(conn, rows)| {
                    s.spawn(move || (0..rows.news.len()).try_for_each(|i| insert(&conn, rows, i)))
                })
                .collect();
            join_all(handles)
        })
    })?);
    Ok(phases)
}

const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn write_durably(dir: &OwnedFd, name: &str, value: &[u8]) -> Result<()> {
    let tmp = format!(".tmp-{name}");
    let fd = openat(
        dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, value)?;
    fsync(file.as_fd())?;
    drop(file);
    renameat(dir, tmp.as_str(), dir, name)?;
    fsync(dir)?;
    Ok(())
}

pub(crate) fn secrets_phases(m: usize, scratch: &Path) -> Result<Vec<Phase>> {
    let dir = TempDir::new(scratch, "raw-secrets")?;
    let root_path = dir.path().join("secrets");
    std::fs::create_dir(&root_path)?;
    let root = nix::fcntl::open(&root_path, DIR_FLAGS | OFlag::O_RDONLY, Mode::empty())?;
    let ids: Vec<String> = (0..m).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let first: Vec<[Vec<u8>; 3]> = (0..m).map(|j| secret_values(j, 0)).collect();
    let second: Vec<[Vec<u8>; 3]> = (0..m).map(|j| secret_values(j, 1)).collect();
    let open_dir = |id: &str| openat(&root, id, DIR_FLAGS | OFlag::O_RDONLY, Mode::empty());
    let mut phases = Vec::new();
    phases.push(timed("secret_write", 3 * m, || {
        for (id, values) in ids.iter().zip(&first) {
            mkdirat(&root, id.as_str(), Mode::from_bits_truncate(0o700))?;
            fsync(&root)?;
            let bot = open_dir(id)?;
            for (name, value) in SECRET_NAMES.iter().zip(values) {
                write_durably(&bot, name, value)?;
            }
        }
        Ok(())
    })?);
    phases.push(timed("secret_read", 3 * m, || {
        for (id, values) in ids.iter().zip(&first) {
            for (name, value) in SECRET_NAMES.iter().zip(values) {
                let fd = openat(
                    &root,
                    format!("{id}/{name}").as_str(),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?;
                let st = fstat(&fd)?;
                let mut buf = Vec::with_capacity(usize::try_from(st.st_size).unwrap_or(0));
                std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut buf)?;
                ensure!(buf == *value, "read back wrong");
            }
        }
        Ok(())
    })?);
    phases.push(timed("secret_rotate", 3 * m, || {
        for (id, values) in ids.iter().zip(&second) {
            let bot = open_dir(id)?;
            for (name, value) in SECRET_NAMES.iter().zip(values) {
                write_durably(&bot, name, value)?;
            }
        }
        Ok(())
    })?);
    phases.push(timed("secret_delete", m, || {
        for id in &ids {
            let trash = format!(".trash-{id}");
            renameat(&root, id.as_str(), &root, trash.as_str())?;
            fsync(&root)?;
            let bot = openat(
                &root,
                trash.as_str(),
                DIR_FLAGS | OFlag::O_RDONLY,
                Mode::empty(),
            )?;
            for name in SECRET_NAMES {
                unlinkat(&bot, name, UnlinkatFlags::NoRemoveDir)?;
            }
            drop(bot);
            unlinkat(&root, trash.as_str(), UnlinkatFlags::RemoveDir)?;
        }
        Ok(())
    })?);
    Ok(phases)
}
