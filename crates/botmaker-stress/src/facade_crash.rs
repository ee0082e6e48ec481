//! Crash safety of the two halves together: a child creates bots with their secrets,
//! rotates secrets, changes statuses and deletes bots through the facade
//! (`Botmaker`), and is SIGKILLed at a random moment. The facade orders its writes so
//! that a crash can only leave a secrets directory without a row; after each kill
//! the doctor (`--fix`) must repair everything (quarantining such directories), and
//! then every registered bot has exactly its acknowledged status and secrets.

use std::collections::BTreeMap;

use anyhow::Result;
use botmaker::domain::{BotId, BotStatus, NewBot, SecretName};
use botmaker::{BotRef, Botmaker, Config, FindingKind};

use super::common::{ChildBinary, Deadline, Tally, keep_if_failed, replay, say};
use botmaker_testkit::rng::Rng;
use botmaker_testkit::scratch::Scratch;

const NAMES: [&str; 3] = SecretName::REQUIRED;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Create(BotId, String, u64),
    Rotate(BotId, usize, u64),
    Status(BotId, BotStatus),
    Delete(BotId),
}

impl Op {
    fn parse(s: &str) -> Option<Self> {
        let w: Vec<&str> = s.split(' ').collect();
        let id = || w.get(1).and_then(|x| x.parse::<BotId>().ok());
        let num = |i: usize| w.get(i).and_then(|x| x.parse::<u64>().ok());
        match *w.first()? {
            "c" => Some(Self::Create(id()?, (*w.get(2)?).to_owned(), num(3)?)),
            "r" => Some(Self::Rotate(id()?, usize::try_from(num(2)?).ok()?, num(3)?)),
            "s" => Some(Self::Status(id()?, BotStatus::parse(w.get(2)?).ok()?)),
            "d" => Some(Self::Delete(id()?)),
            _ => None,
        }
    }

    fn render(&self) -> String {
        match self {
            Self::Create(id, name, g) => format!("c {id} {name} {g}"),
            Self::Rotate(id, n, g) => format!("r {id} {n} {g}"),
            Self::Status(id, s) => format!("s {id} {s}"),
            Self::Delete(id) => format!("d {id}"),
        }
    }
}

/// A bot as acknowledged: name, status, and the generation of each secret.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Known {
    name: String,
    status: BotStatus,
    secrets: [u64; 3],
}

type Model = BTreeMap<BotId, Known>;

fn value(id: &BotId, n: usize, generation: u64) -> Vec<u8> {
    format!("{id}:{}:{generation}", NAMES[n]).into_bytes()
}

fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Create(id, name, g) => {
            model.insert(
                *id,
                Known {
                    name: name.clone(),
                    status: BotStatus::Created,
                    secrets: [*g; 3],
                },
            );
        }
        Op::Rotate(id, n, g) => {
            if let Some(k) = model.get_mut(id) {
                k.secrets[*n] = *g;
            }
        }
        Op::Status(id, s) => {
            if let Some(k) = model.get_mut(id) {
                k.status = *s;
            }
        }
        Op::Delete(id) => {
            model.remove(id);
        }
    }
}

/// The child: `facade-writer DATA SECRETS SEED BASE`. Runs until killed.
pub fn child(args: &[String]) -> Result<()> {
    let [data, secrets, seed, base] = args else {
        anyhow::bail!("usage: facade-writer DATA SECRETS SEED BASE");
    };
    let mut rng = Rng::new(seed.parse()?);
    let mut generation: u64 = base.parse()?;
    let bm = Botmaker::open(&Config::new(data, secrets))?;
    let mut ids: Vec<(BotId, BotStatus)> = bm
        .list_bots(None)?
        .into_iter()
        .map(|b| (b.id, b.status))
        .collect();
    let names: Vec<SecretName> = NAMES.iter().map(|n| n.parse()).collect::<Result<_, _>>()?;
    say("ready");
    loop {
        generation += 1;
        let roll = rng.below(100);
        let op = if ids.is_empty() || roll < if ids.len() > 40 { 15 } else { 40 } {
            Op::Create(BotId::generate(), format!("f-{generation}"), generation)
        } else {
            let i = rng.index(ids.len());
            let (id, from) = ids[i];
            if roll < 70 {
                Op::Rotate(id, rng.index(NAMES.len()), generation)
            } else if roll < 85 {
                let targets: Vec<BotStatus> = BotStatus::ALL
                    .iter()
                    .copied()
                    .filter(|t| from.can_transition_to(*t))
                    .collect();
                Op::Status(id, *rng.pick(&targets))
            } else {
                Op::Delete(id)
            }
        };
        say(&format!("B {}", op.render()));
        let result = match &op {
            Op::Create(id, name, g) => {
                let values: Vec<Vec<u8>> = (0..NAMES.len()).map(|n| value(id, n, *g)).collect();
                let secrets: Vec<(SecretName, &[u8])> = names
                    .iter()
                    .cloned()
                    .zip(values.iter().map(Vec::as_slice))
                    .collect();
                let new = NewBot::with_id(
                    *id,
                    name.parse()?,
                    "mistral".parse()?,
                    "mistral-large".parse()?,
                    "discord".parse()?,
                );
                bm.create_bot(&new, &secrets)
                    .map(|_| ids.push((*id, BotStatus::Created)))
            }
            Op::Rotate(id, n, g) => bm
                .resolve(&BotRef::Id(*id))
                .and_then(|bot| bm.set_secret(&bot, &names[*n], &value(id, *n, *g))),
            Op::Status(id, s) => bm
                .resolve(&BotRef::Id(*id))
                .and_then(|bot| bm.set_status(&bot, *s))
                .map(|_| {
                    if let Some(e) = ids.iter_mut().find(|(i, _)| i == id) {
                        e.1 = *s;
                    }
                }),
            Op::Delete(id) => bm
                .resolve(&BotRef::Id(*id))
                .and_then(|bot| bm.delete_bot(&bot))
                .map(|_| ids.retain(|(i, _)| i != id)),
        };
        if let Err(e) = result {
            say(&format!("F {}: {e}", op.render()));
            std::process::exit(3);
        }
        say("A");
    }
}

/// The parent: kills children until `deadline`.
pub fn run(child_bin: &ChildBinary, deadline: Deadline, rng: &mut Rng) -> Result<Tally> {
    let mut tally = Tally::new("facade-writer");
    let mut scratch = Scratch::new("stress-facade")?;
    let config = Config::new(scratch.path().join("data"), scratch.path().join("secrets"));
    botmaker::migrate(&config)?;
    let mut model = Model::new();
    let mut round: u64 = 0;
    while !deadline.over(round) {
        round += 1;
        let mut child = child_bin.spawn(&[
            "facade-writer".to_owned(),
            config.data_dir().display().to_string(),
            config.secrets_dir().display().to_string(),
            rng.next_u64().to_string(),
            (round * 1_000_000).to_string(),
        ])?;
        child.kill_at_random(rng, 50, 10_000, &mut tally)?;
        let pending = replay(&child.seen, Op::parse, &mut tally, |op| {
            apply(&mut model, &op);
        });
        verify(&config, &mut model, pending.as_ref(), &mut tally)?;
    }
    keep_if_failed(&mut scratch, &mut tally);
    Ok(tally)
}

fn verify(
    config: &Config,
    model: &mut Model,
    pending: Option<&Op>,
    tally: &mut Tally,
) -> Result<()> {
    let report = Botmaker::doctor(config, true);
    tally.add("doctor-runs", 1);
    let quarantined = report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::OrphanSecrets && f.fixed)
        .count();
    tally.add("orphans-quarantined", quarantined as u64);
    tally.check(if report.is_healthy() {
        Ok(())
    } else {
        Err(format!(
            "doctor --fix left problems (in flight: {pending:?}):\n{report}"
        ))
    });
    let bm = Botmaker::open(config)?;
    let names: Vec<SecretName> = NAMES.iter().map(|n| n.parse()).collect::<Result<_, _>>()?;
    let mut found = Model::new();
    for bot in bm.list_bots(None)? {
        let mut secrets = [0u64; 3];
        for (n, name) in names.iter().enumerate() {
            match bm
                .resolve(&BotRef::Id(bot.id))
                .and_then(|bot| bm.get_secret(&bot, name))
            {
                Ok(v) => {
                    let text = String::from_utf8_lossy(v.expose()).into_owned();
                    let generation = text
                        .strip_prefix(&format!("{}:{}:", bot.id, NAMES[n]))
                        .and_then(|g| g.parse::<u64>().ok());
                    match generation {
                        Some(g) => secrets[n] = g,
                        None => tally.fail(format!(
                            "bot {}: secret {} is not one of ours",
                            bot.name, NAMES[n]
                        )),
                    }
                }
                Err(e) => tally.fail(format!(
                    "registered bot {} lacks secret {}: {e}",
                    bot.name, NAMES[n]
                )),
            }
        }
        found.insert(
            bot.id,
            Known {
                name: bot.name.to_string(),
                status: bot.status,
                secrets,
            },
        );
    }
    let mut after = model.clone();
    if let Some(op) = pending {
        apply(&mut after, op);
    }
    if pending.is_some() && after != *model {
        tally.add(
            if found == after {
                "in-flight-done"
            } else {
                "in-flight-undone"
            },
            1,
        );
    }
    tally.check(if found == *model || found == after {
        Ok(())
    } else {
        Err(format!(
            "registry and secrets differ from the acknowledged writes (in flight: {pending:?})"
        ))
    });
    *model = found;
    Ok(())
}
