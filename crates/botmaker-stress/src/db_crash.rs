//! Crash safety of the database: a child creates bots, changes their status and
//! deletes them through `SqliteStore`, telling the parent about each write once it
//! has returned, until it is SIGKILLed. After each kill `integrity_check` is `ok`,
//! every acknowledged write is there and every acknowledged delete is gone.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use botmaker::domain::{BotId, BotRepository, BotStatus, NewBot};
use botmaker::sqlite::{SqliteStore, StoreOptions};

use super::common::{ChildBinary, Deadline, Tally, keep_if_failed, replay, say};
use botmaker_testkit::rng::Rng;
use botmaker_testkit::scratch::Scratch;

/// Above this many bots, children delete more than they create.
const SOFT_MAX_BOTS: usize = 150;

/// One write of a child (shared with `pg_crash`, which runs the same writes on
/// PostgreSQL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Create(BotId, String),
    Status(BotId, BotStatus),
    Delete(BotId),
}

impl Op {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let w: Vec<&str> = s.split(' ').collect();
        let id = || w.get(1).and_then(|x| x.parse::<BotId>().ok());
        match *w.first()? {
            "c" => Some(Self::Create(id()?, (*w.get(2)?).to_owned())),
            "s" => Some(Self::Status(id()?, BotStatus::parse(w.get(2)?).ok()?)),
            "d" => Some(Self::Delete(id()?)),
            _ => None,
        }
    }

    pub(crate) fn render(&self) -> String {
        match self {
            Self::Create(id, name) => format!("c {id} {name}"),
            Self::Status(id, s) => format!("s {id} {s}"),
            Self::Delete(id) => format!("d {id}"),
        }
    }
}

pub(crate) type Model = BTreeMap<BotId, (String, BotStatus)>;

pub(crate) fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Create(id, name) => {
            model.insert(*id, (name.clone(), BotStatus::Created));
        }
        Op::Status(id, s) => {
            if let Some(e) = model.get_mut(id) {
                e.1 = *s;
            }
        }
        Op::Delete(id) => {
            model.remove(id);
        }
    }
}

fn options() -> StoreOptions {
    StoreOptions {
        readers: 1,
        ..StoreOptions::default()
    }
}

/// The child: `db-writer DB SEED NAME_BASE`. Runs until killed.
pub fn child(args: &[String]) -> Result<()> {
    let [db, seed, base] = args else {
        anyhow::bail!("usage: db-writer DB SEED NAME_BASE");
    };
    let mut rng = Rng::new(seed.parse()?);
    let mut counter: u64 = base.parse()?;
    let store = SqliteStore::open_with(Path::new(db), options())?;
    let mut model: Model = store
        .list(None)?
        .into_iter()
        .map(|b| (b.id, (b.name.to_string(), b.status)))
        .collect();
    say("ready");
    loop {
        let op = next_op(&model, &mut rng, &mut counter);
        say(&format!("B {}", op.render()));
        if let Err(e) = write(&store, &op)? {
            say(&format!("F {}: {e}", op.render()));
            std::process::exit(3);
        }
        say("A");
        apply(&mut model, &op);
    }
}

/// The next write: mostly creates while there are few bots, then status changes the
/// lifecycle allows, and deletes.
pub(crate) fn next_op(model: &Model, rng: &mut Rng, counter: &mut u64) -> Op {
    let ids: Vec<BotId> = model.keys().copied().collect();
    let roll = rng.below(100);
    let create_share = if ids.len() > SOFT_MAX_BOTS { 20 } else { 45 };
    if ids.is_empty() || roll < create_share {
        *counter += 1;
        Op::Create(BotId::generate(), format!("db-{counter}"))
    } else if roll < 85 {
        let id = *rng.pick(&ids);
        let from = model[&id].1;
        let targets: Vec<BotStatus> = BotStatus::ALL
            .iter()
            .copied()
            .filter(|t| from.can_transition_to(*t))
            .collect();
        Op::Status(id, *rng.pick(&targets))
    } else {
        Op::Delete(*rng.pick(&ids))
    }
}

/// Runs `op` on `store`: the outer error is a bad name (a bug of the campaign), the
/// inner one the store's answer.
pub(crate) fn write(
    store: &dyn BotRepository,
    op: &Op,
) -> Result<Result<(), botmaker::domain::RepoError>> {
    Ok(match op {
        Op::Create(id, name) => store
            .create(&NewBot::with_id(
                *id,
                name.parse()?,
                "anthropic".parse()?,
                "claude-sonnet-4".parse()?,
                "slack".parse()?,
            ))
            .map(drop),
        Op::Status(id, s) => store.set_status(id, *s).map(drop),
        Op::Delete(id) => store.delete(id),
    })
}

/// The parent: kills children until `deadline`.
pub fn run(child_bin: &ChildBinary, deadline: Deadline, rng: &mut Rng) -> Result<Tally> {
    let mut tally = Tally::new("database-writer");
    let mut scratch = Scratch::new("stress-db")?;
    let db = scratch.path().join("botmaker.db");
    botmaker::sqlite::migrate(&db)?;
    let mut model = Model::new();
    let mut round: u64 = 0;
    while !deadline.over(round) {
        round += 1;
        let args = vec![
            "db-writer".to_owned(),
            db.display().to_string(),
            rng.next_u64().to_string(),
            (round * 1_000_000).to_string(),
        ];
        let mut child = child_bin.spawn(&args)?;
        child.kill_at_random(rng, 50, 10_000, &mut tally)?;
        let pending = replay(&child.seen, Op::parse, &mut tally, |op| {
            apply(&mut model, &op);
        });
        verify(&db, &mut model, pending.as_ref(), &mut tally)?;
    }
    keep_if_failed(&mut scratch, &mut tally);
    Ok(tally)
}

fn verify(db: &Path, model: &mut Model, pending: Option<&Op>, tally: &mut Tally) -> Result<()> {
    {
        let conn = rusqlite::Connection::open(db).context("opening the database with rusqlite")?;
        let rows: Vec<String> = conn
            .prepare("PRAGMA integrity_check")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        tally.check(if rows == ["ok"] {
            Ok(())
        } else {
            Err(format!("integrity_check: {rows:?}"))
        });
    }
    let store = match SqliteStore::open_with(db, options()) {
        Ok(s) => s,
        Err(e) => {
            tally.fail(format!("reopening after the kill: {e}"));
            return Ok(());
        }
    };
    let found: Model = store
        .list(None)?
        .into_iter()
        .map(|b| (b.id, (b.name.to_string(), b.status)))
        .collect();
    compare(found, model, pending, tally);
    Ok(())
}

/// Checks what a store holds after a kill against the acknowledged writes (the write
/// in flight may or may not have committed), then takes it as the new model.
pub(crate) fn compare(found: Model, model: &mut Model, pending: Option<&Op>, tally: &mut Tally) {
    let mut after = model.clone();
    if let Some(op) = pending {
        apply(&mut after, op);
    }
    if pending.is_some() && *model != after {
        tally.add(
            if found == after {
                "in-flight-committed"
            } else {
                "in-flight-rolled-back"
            },
            1,
        );
    }
    tally.check(if found == *model || found == after {
        Ok(())
    } else {
        let lost: Vec<_> = model.iter().filter(|(k, v)| found.get(k) != Some(v)).collect();
        let extra: Vec<_> = found.keys().filter(|k| !model.contains_key(k)).collect();
        Err(format!(
            "database differs from the acknowledged writes (in flight: {pending:?}): lost or changed {lost:?}, unexpected {extra:?}"
        ))
    });
    *model = found;
}
