//! Contention: 8 processes and 8 threads (sharing one `Botmaker`) do mixed operations
//! on one installation with the default busy timeout. No `Busy` or "database is
//! locked" may reach a caller, and no acknowledged write may be lost: each worker
//! owns its bots, keeps a model of them, and checks every read and, at the end, every
//! bot against it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use botmaker::domain::{BotId, BotName, BotStatus, NewBot, RepoError, SecretName};
use botmaker::{BotRef, Botmaker, Config, Error, FindingKind};

use super::common::{ChildBinary, Deadline, Tally, keep_if_failed, say};
use botmaker_testkit::rng::Rng;
use botmaker_testkit::scratch::Scratch;

/// Processes and threads.
pub const WORKERS: usize = 8;

/// What one worker saw.
#[derive(Debug, Default)]
pub struct WorkerResult {
    ops: u64,
    busy: u64,
    failures: Vec<String>,
}

impl WorkerResult {
    fn error(&mut self, what: &str, e: &Error) {
        let text = format!("{e:#}");
        if matches!(e, Error::Repo(RepoError::Busy { .. }))
            || text.contains("database is locked")
            || text.contains("busy")
        {
            self.busy += 1;
        }
        self.failures.push(format!("{what}: {text}"));
    }
}

struct Owned {
    name: BotName,
    status: BotStatus,
    secrets: BTreeMap<usize, Vec<u8>>,
}

const NAMES: [&str; 3] = ["ai_api_key", "channel_token", "channel_config"];

/// One worker's loop: operations on its own bots until `deadline`, then a check of
/// every bot it knows.
#[allow(clippy::too_many_lines)] // one worker's loop, read top to bottom
pub fn worker(bm: &Botmaker, tag: &str, deadline: Deadline, rng: &mut Rng) -> WorkerResult {
    let mut r = WorkerResult::default();
    let names: Vec<SecretName> = NAMES.iter().filter_map(|n| n.parse().ok()).collect();
    let mut mine: BTreeMap<BotId, Owned> = BTreeMap::new();
    let mut gone: Vec<BotId> = Vec::new();
    let mut counter = 0u64;
    while !deadline.passed() && r.failures.len() < 5 {
        counter += 1;
        let ids: Vec<BotId> = mine.keys().copied().collect();
        let roll = rng.below(100);
        r.ops += 1;
        if ids.is_empty() || roll < 25 {
            let name: BotName = match format!("{tag}-{counter}").parse() {
                Ok(n) => n,
                Err(e) => {
                    r.failures.push(format!("bad name: {e}"));
                    continue;
                }
            };
            let value = format!("{tag}-{counter}-initial").into_bytes();
            let Ok(new) = (|| -> Result<NewBot, botmaker::domain::DomainError> {
                Ok(NewBot::new(
                    name.clone(),
                    "openai".parse()?,
                    "gpt-4o".parse()?,
                    "telegram".parse()?,
                ))
            })() else {
                continue;
            };
            match bm.create_bot(&new, &[(names[0].clone(), value.as_slice())]) {
                Ok(bot) => {
                    mine.insert(
                        bot.id,
                        Owned {
                            name,
                            status: BotStatus::Created,
                            secrets: BTreeMap::from([(0, value)]),
                        },
                    );
                }
                Err(e) => r.error("create_bot", &e),
            }
            continue;
        }
        let id = *rng.pick(&ids);
        let by = if rng.chance(500) {
            BotRef::Id(id)
        } else {
            BotRef::Name(mine[&id].name.clone())
        };
        if roll < 45 {
            let from = mine[&id].status;
            let targets: Vec<BotStatus> = BotStatus::ALL
                .iter()
                .copied()
                .filter(|t| from.can_transition_to(*t))
                .collect();
            let to = *rng.pick(&targets);
            match bm.resolve(&by).and_then(|bot| bm.set_status(&bot, to)) {
                Ok(bot) if bot.status == to => {
                    if let Some(o) = mine.get_mut(&id) {
                        o.status = to;
                    }
                }
                Ok(bot) => r
                    .failures
                    .push(format!("set_status returned {}", bot.status)),
                Err(e) => r.error("set_status", &e),
            }
        } else if roll < 65 {
            let n = rng.index(names.len());
            let value = format!("{tag}-{counter}-{}", rng.next_u64()).into_bytes();
            match bm
                .resolve(&by)
                .and_then(|bot| bm.set_secret(&bot, &names[n], &value))
            {
                Ok(()) => {
                    if let Some(o) = mine.get_mut(&id) {
                        o.secrets.insert(n, value);
                    }
                }
                Err(e) => r.error("set_secret", &e),
            }
        } else if roll < 80 {
            let owned = &mine[&id];
            let n = rng.index(names.len());
            match (
                bm.resolve(&by)
                    .and_then(|bot| bm.get_secret(&bot, &names[n])),
                owned.secrets.get(&n),
            ) {
                (Ok(v), Some(want)) if v.expose() == want.as_slice() => {}
                (Err(Error::Secrets(botmaker::secrets::SecretsError::NotFound { .. })), None) => {}
                (Ok(v), want) => r.failures.push(format!(
                    "lost write: secret {} of {} is {} bytes, expected {:?} bytes",
                    names[n],
                    owned.name,
                    v.len(),
                    want.map(Vec::len)
                )),
                (Err(e), _) => r.error("get_secret", &e),
            }
        } else if roll < 90 {
            match bm.resolve(&by) {
                Ok(bot) if bot.status == mine[&id].status && bot.name == mine[&id].name => {}
                Ok(bot) => r.failures.push(format!(
                    "lost write: {} has status {}, expected {}",
                    bot.name, bot.status, mine[&id].status
                )),
                Err(e) => r.error("resolve", &e),
            }
        } else if roll < 97 {
            match bm.resolve(&by).and_then(|bot| bm.delete_bot(&bot)) {
                Ok(_) => {
                    mine.remove(&id);
                    gone.push(id);
                }
                Err(e) => {
                    r.error("delete_bot", &e);
                    // Whatever happened, find out whether the bot is still there.
                    if let Err(Error::Repo(RepoError::NotFound { .. })) =
                        bm.resolve(&BotRef::Id(id))
                    {
                        mine.remove(&id);
                    }
                }
            }
        } else {
            match bm.list_bots(None) {
                Ok(all) => {
                    let present = all.iter().filter(|b| mine.contains_key(&b.id)).count();
                    if present != mine.len() {
                        r.failures.push(format!(
                            "lost write: list shows {present} of my {} bots",
                            mine.len()
                        ));
                    }
                }
                Err(e) => r.error("list_bots", &e),
            }
        }
    }
    // Final check of everything this worker was told had happened.
    for (id, owned) in &mine {
        match bm.resolve(&BotRef::Id(*id)) {
            Ok(bot) if bot.status == owned.status => {}
            Ok(bot) => r.failures.push(format!(
                "lost write: {} has status {}, expected {}",
                bot.name, bot.status, owned.status
            )),
            Err(e) => r.error("final resolve", &e),
        }
        for (n, want) in &owned.secrets {
            match bm
                .resolve(&BotRef::Id(*id))
                .and_then(|bot| bm.get_secret(&bot, &names[*n]))
            {
                Ok(v) if v.expose() == want.as_slice() => {}
                Ok(_) => r.failures.push(format!(
                    "lost write: secret {} of {}",
                    names[*n], owned.name
                )),
                Err(e) => r.error("final get_secret", &e),
            }
        }
    }
    for id in &gone {
        match bm.resolve(&BotRef::Id(*id)) {
            Err(Error::Repo(RepoError::NotFound { .. })) => {}
            Ok(bot) => r.failures.push(format!("deleted bot {} is back", bot.name)),
            Err(e) => r.error("final resolve of a deleted bot", &e),
        }
    }
    r.ops += 1;
    r
}

/// The file whose creation starts the workers.
const GO: &str = "go";

/// The child: `contention DATA SECRETS MILLIS SEED TAG`: opens the installation, says
/// `ready`, waits for the parent's go, runs one worker, then prints one `R` line
/// (`ops busy failures`) and one `F` line per failure.
pub fn child(args: &[String]) -> Result<()> {
    let [data, secrets, millis, seed, tag] = args else {
        anyhow::bail!("usage: contention DATA SECRETS MILLIS SEED TAG");
    };
    let config = Config::new(data, secrets);
    let bm = match Botmaker::open(&config) {
        Ok(bm) => bm,
        Err(e) => {
            let locked = format!("{e:#}").contains("locked");
            say(&format!("R 0 {} 1", u64::from(locked)));
            say(&format!("F opening: {e:#}"));
            return Ok(());
        }
    };
    say("ready");
    let go = config.data_dir().join(GO);
    let give_up = Deadline::after(Duration::from_mins(1));
    while !go.exists() && !give_up.passed() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let deadline = Deadline::after(Duration::from_millis(millis.parse()?));
    let r = worker(&bm, tag, deadline, &mut Rng::new(seed.parse()?));
    say(&format!("R {} {} {}", r.ops, r.busy, r.failures.len()));
    for f in &r.failures {
        say(&format!("F {f}"));
    }
    Ok(())
}

/// The parent: `WORKERS` child processes and `WORKERS` threads until `deadline`.
pub fn run(child_bin: &ChildBinary, deadline: Deadline, rng: &mut Rng) -> Result<Tally> {
    let mut tally = Tally::new("contention");
    let mut scratch = Scratch::new("stress-contention")?;
    let config = Config::new(scratch.path().join("data"), scratch.path().join("secrets"));
    botmaker::migrate(&config)?;
    let millis = u64::try_from(deadline.remaining().as_millis())
        .unwrap_or(u64::MAX)
        .max(200);
    let mut children = Vec::new();
    for p in 0..WORKERS {
        children.push(child_bin.spawn(&[
            "contention".to_owned(),
            config.data_dir().display().to_string(),
            config.secrets_dir().display().to_string(),
            millis.to_string(),
            rng.next_u64().to_string(),
            format!("p{p}"),
        ])?);
    }
    // Every process opens the installation before any worker starts: opening sweeps
    // the trash of deletions, and a sweep racing a deletion in another process makes
    // that deletion report `Raced` (see RELIABILITY.md, known issues).
    for child in &mut children {
        if !child.wait_for("ready") {
            tally.fail("a contention child exited before it was ready".to_owned());
        }
    }
    let bm = Arc::new(Botmaker::open(&config)?);
    std::fs::write(config.data_dir().join(GO), b"")?;
    let local_deadline = Deadline::after(Duration::from_millis(millis));
    let threads: Vec<_> = (0..WORKERS)
        .map(|t| {
            let bm = Arc::clone(&bm);
            let mut rng = rng.fork();
            std::thread::spawn(move || worker(&bm, &format!("t{t}"), local_deadline, &mut rng))
        })
        .collect();
    let mut busy = 0;
    for t in threads {
        match t.join() {
            Ok(r) => {
                tally.ops += r.ops;
                busy += r.busy;
                tally.checks += r.ops;
                for f in r.failures {
                    tally.fail(format!("thread: {f}"));
                }
            }
            Err(_) => tally.fail("a worker thread panicked".to_owned()),
        }
    }
    for child in children {
        match child.finish()? {
            Ok(lines) => {
                for line in lines {
                    if let Some(r) = line.strip_prefix("R ") {
                        let n: Vec<u64> = r.split(' ').filter_map(|x| x.parse().ok()).collect();
                        tally.ops += n.first().copied().unwrap_or(0);
                        tally.checks += n.first().copied().unwrap_or(0);
                        busy += n.get(1).copied().unwrap_or(0);
                    } else if let Some(f) = line.strip_prefix("F ") {
                        tally.fail(format!("process: {f}"));
                    }
                }
            }
            Err(e) => tally.fail(e),
        }
    }
    tally.add("processes", WORKERS as u64);
    tally.add("threads", WORKERS as u64);
    tally.add("busy-errors", busy);
    // The installation is consistent afterwards.
    drop(bm);
    let report = Botmaker::doctor(&config, false);
    let bad: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.kind != FindingKind::MissingSecrets)
        .map(|f| format!("[{}] {}: {}", f.kind, f.subject, f.detail))
        .collect();
    tally.check(if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("doctor after contention: {}", bad.join("; ")))
    });
    keep_if_failed(&mut scratch, &mut tally);
    Ok(tally)
}
