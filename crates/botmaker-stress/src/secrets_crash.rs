//! Crash safety of the secrets store: a child creates, rotates and removes secrets and
//! deletes bot directories until it is SIGKILLed at a random moment. After each kill
//! every secret holds a whole acknowledged value (or the one being written), the
//! listing never shows a temporary file, reopening sweeps the leftovers, and the
//! doctor repairs whatever an interrupted deletion left.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use botmaker::domain::{BotId, NewBot, SecretName};
use botmaker::secrets::{SecretsError, SecretsStore};
use botmaker::{Botmaker, Config, FindingKind};

use super::common::{ChildBinary, Deadline, Tally, keep_if_failed, replay, say};
use super::values;
use botmaker_testkit::rng::Rng;
use botmaker_testkit::scratch::Scratch;

/// The secrets every bot gets (the required ones and one more).
pub const NAMES: [&str; 4] = [
    "ai_api_key",
    "channel_token",
    "channel_config",
    "extra_note",
];
/// How many bots the children work on.
const BOTS: usize = 3;

/// An operation a child announced (`B ...`) and maybe acknowledged (`A`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Write(usize, usize, u64),
    Remove(usize, usize),
    DeleteBot(usize),
}

impl Op {
    fn parse(s: &str) -> Option<Self> {
        let w: Vec<&str> = s.split(' ').collect();
        let n = |i: usize| w.get(i).and_then(|x| x.parse::<u64>().ok());
        let idx = |i: usize| n(i).and_then(|x| usize::try_from(x).ok());
        match *w.first()? {
            "w" => Some(Self::Write(idx(1)?, idx(2)?, n(3)?)),
            "r" => Some(Self::Remove(idx(1)?, idx(2)?)),
            "d" => Some(Self::DeleteBot(idx(1)?)),
            _ => None,
        }
    }

    fn render(self) -> String {
        match self {
            Self::Write(b, n, g) => format!("w {b} {n} {g}"),
            Self::Remove(b, n) => format!("r {b} {n}"),
            Self::DeleteBot(b) => format!("d {b}"),
        }
    }
}

/// The child: `secrets-writer ROOT SEED GEN_BASE BOT_ID...`. Runs until killed.
pub fn child(args: &[String]) -> Result<()> {
    let [root, seed, base, ids @ ..] = args else {
        anyhow::bail!("usage: secrets-writer ROOT SEED GEN_BASE BOT_ID...");
    };
    let mut rng = Rng::new(seed.parse()?);
    let mut generation: u64 = base.parse()?;
    let bots: Vec<BotId> = ids.iter().map(|s| s.parse()).collect::<Result<_, _>>()?;
    let names: Vec<SecretName> = NAMES.iter().map(|n| n.parse()).collect::<Result<_, _>>()?;
    let store = SecretsStore::open(Path::new(root))?;
    say("ready");
    loop {
        let (b, n) = (rng.index(bots.len()), rng.index(names.len()));
        let roll = rng.below(100);
        if roll < 15 {
            // A read must always see one whole value.
            match store.read(&bots[b], &names[n]) {
                Ok(v) if values::identify(v.expose()).is_none() => {
                    say(&format!(
                        "F torn read of bot {b} secret {n}: {} bytes",
                        v.len()
                    ));
                    std::process::exit(3);
                }
                Ok(_) | Err(SecretsError::NotFound { .. }) => {}
                Err(e) => fail(&e),
            }
            continue;
        }
        let op = if roll < 80 {
            generation += 1;
            Op::Write(b, n, generation)
        } else if roll < 95 {
            Op::Remove(b, n)
        } else {
            Op::DeleteBot(b)
        };
        say(&format!("B {}", op.render()));
        let result = match op {
            Op::Write(b, n, g) => store.write(&bots[b], &names[n], &values::make(b, n, g)),
            Op::Remove(b, n) => match store.remove(&bots[b], &names[n]) {
                Err(SecretsError::NotFound { .. }) => Ok(()),
                other => other,
            },
            Op::DeleteBot(b) => match store.delete_bot(&bots[b]) {
                Err(SecretsError::BotNotFound { .. }) => Ok(()),
                other => other,
            },
        };
        match result {
            Ok(()) => say("A"),
            Err(e) => fail(&e),
        }
    }
}

fn fail(e: &SecretsError) -> ! {
    say(&format!("F unexpected error: {e}"));
    std::process::exit(3)
}

type Model = BTreeMap<(usize, usize), Option<u64>>;

/// The parent: kills children until `deadline`; the doctor runs after every
/// `doctor_every`-th kill (and after the last).
pub fn run(
    child_bin: &ChildBinary,
    deadline: Deadline,
    rng: &mut Rng,
    doctor_every: u64,
) -> Result<Tally> {
    let mut tally = Tally::new("secret-writer");
    let mut scratch = Scratch::new("stress-secrets")?;
    let config = Config::new(scratch.path().join("data"), scratch.path().join("secrets"));
    let root = config.secrets_dir().to_path_buf();
    botmaker::migrate(&config)?;
    let bots: Vec<BotId> = (0..BOTS).map(|_| BotId::generate()).collect();
    {
        // Registered, so the doctor does not treat their directories as orphans.
        let bm = Botmaker::open(&config)?;
        for (i, id) in bots.iter().enumerate() {
            let new = NewBot::with_id(
                *id,
                format!("crash-bot-{i}").parse()?,
                "openai".parse()?,
                "gpt-4o".parse()?,
                "slack".parse()?,
            );
            bm.registry().create(&new)?;
        }
    }
    // Opened once and kept: its listing is taken before any reopening sweeps.
    let observer = SecretsStore::open(&root)?;
    let names: Vec<SecretName> = NAMES.iter().map(|n| n.parse()).collect::<Result<_, _>>()?;
    let mut model: Model = (0..BOTS)
        .flat_map(|b| (0..NAMES.len()).map(move |n| ((b, n), None)))
        .collect();
    let ids: Vec<String> = bots.iter().map(ToString::to_string).collect();

    let mut round: u64 = 0;
    while !deadline.over(round) {
        round += 1;
        let mut args = vec![
            "secrets-writer".to_owned(),
            root.display().to_string(),
            rng.next_u64().to_string(),
            (round * 10_000_000).to_string(),
        ];
        args.extend(ids.iter().cloned());
        let mut child = child_bin.spawn(&args)?;
        // Sometimes while it is still opening (and sweeping).
        child.kill_at_random(rng, 100, 8_000, &mut tally)?;
        let pending = replay(&child.seen, Op::parse, &mut tally, |op| {
            apply(&mut model, op);
        });
        verify_after_kill(
            &observer, &bots, &names, &root, &mut model, pending, &mut tally,
        );
        let doctor = round.is_multiple_of(doctor_every) || deadline.passed();
        after_reopen(&config, &bots, &names, &model, doctor, &mut tally)?;
    }
    keep_if_failed(&mut scratch, &mut tally);
    Ok(tally)
}

fn apply(model: &mut Model, op: Op) {
    match op {
        Op::Write(b, n, g) => {
            model.insert((b, n), Some(g));
        }
        Op::Remove(b, n) => {
            model.insert((b, n), None);
        }
        Op::DeleteBot(b) => {
            for ((bb, _), v) in model.iter_mut() {
                if *bb == b {
                    *v = None;
                }
            }
        }
    }
}

/// What the store shows right after the kill, before anything sweeps: every secret is
/// its acknowledged value or the outcome of the operation in flight.
fn verify_after_kill(
    observer: &SecretsStore,
    bots: &[BotId],
    names: &[SecretName],
    root: &Path,
    model: &mut Model,
    pending: Option<Op>,
    tally: &mut Tally,
) {
    let mut after = model.clone();
    if let Some(op) = pending {
        apply(&mut after, op);
    }
    let mut seen: Model = BTreeMap::new();
    for (b, bot) in bots.iter().enumerate() {
        // Leftover temporary files are there to be seen (the observer does not sweep)…
        let raw = std::fs::read_dir(root.join(bot.to_string())).map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
                .count()
        });
        tally.add("temp-files-seen", raw as u64);
        // …but never listed as secrets.
        let listed = observer.list(bot);
        tally.check(match &listed {
            Ok(list) => list
                .iter()
                .find(|m| !NAMES.contains(&m.name.as_str()))
                .map_or(Ok(()), |m| {
                    Err(format!("list() shows {:?}", m.name.as_str()))
                }),
            Err(e) => Err(format!("list of bot {b} failed: {e}")),
        });
        for (n, name) in names.iter().enumerate() {
            let got = match observer.read(bot, name) {
                Ok(v) => match values::identify(v.expose()) {
                    Some((vb, vn, g)) if (vb, vn) == (b, n) => Some(g),
                    _ => {
                        tally.fail(format!(
                            "bot {b} secret {n}: torn or foreign value of {} bytes",
                            v.len()
                        ));
                        continue;
                    }
                },
                Err(SecretsError::NotFound { .. }) => None,
                Err(e) => {
                    tally.fail(format!("bot {b} secret {n}: read failed: {e}"));
                    continue;
                }
            };
            let listed_here = listed
                .as_ref()
                .is_ok_and(|l| l.iter().any(|m| m.name == *name));
            tally.check(if listed_here == got.is_some() {
                Ok(())
            } else {
                Err(format!(
                    "bot {b} secret {n}: listed {listed_here} but read {got:?}"
                ))
            });
            let old = model[&(b, n)];
            let new = after[&(b, n)];
            tally.check(if got == old || got == new {
                Ok(())
            } else {
                Err(format!(
                    "bot {b} secret {n}: holds generation {got:?}, expected {old:?} or {new:?} (in flight: {pending:?})"
                ))
            });
            seen.insert((b, n), got);
        }
    }
    // A bot deletion is all or nothing.
    if let Some(Op::DeleteBot(b)) = pending {
        let gone = (0..names.len()).all(|n| seen.get(&(b, n)).copied().flatten().is_none());
        let kept = (0..names.len()).all(|n| seen.get(&(b, n)) == model.get(&(b, n)));
        tally.check(if gone || kept {
            Ok(())
        } else {
            Err(format!("bot {b} half deleted: {seen:?}"))
        });
    }
    // Where the kill landed: an operation in flight that took effect, or did not.
    if pending.is_some() && after != *model {
        let done = after
            .iter()
            .all(|(k, v)| seen.get(k).is_none_or(|s| s == v));
        tally.add(
            if done {
                "in-flight-done"
            } else {
                "in-flight-undone"
            },
            1,
        );
    }
    for (k, v) in seen {
        model.insert(k, v);
    }
}

/// Reopening (or the doctor) sweeps every leftover, changes no value, and leaves only
/// bot directories holding secret files.
fn after_reopen(
    config: &Config,
    bots: &[BotId],
    names: &[SecretName],
    model: &Model,
    doctor: bool,
    tally: &mut Tally,
) -> Result<()> {
    let root = config.secrets_dir();
    if doctor {
        let report = Botmaker::doctor(config, true);
        tally.add("doctor-runs", 1);
        let repaired = report.findings.iter().filter(|f| f.fixed).count();
        tally.add("doctor-repairs", repaired as u64);
        let bad: Vec<String> = report
            .findings
            .iter()
            .filter(|f| !f.fixed && f.kind != FindingKind::MissingSecrets)
            .map(|f| format!("[{}] {}: {}", f.kind, f.subject, f.detail))
            .collect();
        tally.check(if bad.is_empty() {
            Ok(())
        } else {
            Err(format!("doctor could not repair: {}", bad.join("; ")))
        });
    }
    let store = SecretsStore::open(root).context("reopening the secrets store")?;
    tally.add("leftovers-swept", store.swept() as u64);
    // Nothing but bot directories and secret files remains.
    let mut stray = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // The advisory lock that the doctor's fix step takes (and creates) is expected,
        // and so is the root's id file.
        if name == ".lock" || name == ".root-id" {
            continue;
        }
        if !bots.iter().any(|b| b.to_string() == name) {
            stray.push(name);
            continue;
        }
        for inner in std::fs::read_dir(entry.path())? {
            let inner = inner?.file_name().to_string_lossy().into_owned();
            if !NAMES.contains(&inner.as_str()) {
                stray.push(format!("{name}/{inner}"));
            }
        }
    }
    tally.check(if stray.is_empty() {
        Ok(())
    } else {
        Err(format!("left after reopening: {stray:?}"))
    });
    for (b, bot) in bots.iter().enumerate() {
        for (n, name) in names.iter().enumerate() {
            let got = match store.read(bot, name) {
                Ok(v) => values::identify(v.expose()).map(|(_, _, g)| g),
                Err(SecretsError::NotFound { .. }) => None,
                Err(e) => {
                    tally.fail(format!("after reopening, bot {b} secret {n}: {e}"));
                    continue;
                }
            };
            tally.check(if got == model[&(b, n)] {
                Ok(())
            } else {
                Err(format!(
                    "bot {b} secret {n} changed by reopening or the doctor: {got:?} != {:?}",
                    model[&(b, n)]
                ))
            });
        }
    }
    Ok(())
}
