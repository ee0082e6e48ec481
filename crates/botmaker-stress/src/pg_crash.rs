//! Crash safety of the PostgreSQL registry: children write bots through `PgStore` (the
//! same writes as the `database-writer` part) and are SIGKILLed at random moments; once
//! per campaign the server is stopped under a running child and started again. After
//! each round every acknowledged write is there (the one in flight may or may not
//! be), the consistency check is clean, and no child is left running: one that saw
//! the server go away reports the retryable error and exits by itself.
//!
//! The server is the test kit's `PrivateServer`, of this campaign's own (initdb,
//! then a server on a Unix socket in a temporary folder; durability settings at
//! PostgreSQL's defaults), stopped and removed at the end.

use anyhow::{Context, Result};
use botmaker::domain::BotRepository as _;
use botmaker_postgres::{DatabaseUrl, PgOptions, PgStore};
use botmaker_testkit::pg::PrivateServer;
use botmaker_testkit::rng::Rng;

use super::common::{ChildBinary, Deadline, Tally, replay, say, sleep_us};
use super::db_crash::{Model, Op, apply, compare, next_op, write};

/// The exit code of a child that saw the retryable error (the server went away).
const RETRYABLE_EXIT: i32 = 4;

/// The child: `pg-writer URL SEED NAME_BASE`. Runs until killed, or until the server
/// goes away (then it says `R <error>` and exits with code 4).
pub fn child(args: &[String]) -> Result<()> {
    let [url, seed, base] = args else {
        anyhow::bail!("usage: pg-writer URL SEED NAME_BASE");
    };
    let url = DatabaseUrl::parse(url)?;
    let mut rng = Rng::new(seed.parse()?);
    let mut counter: u64 = base.parse()?;
    let store = PgStore::open(&url, PgOptions::default())?;
    let mut model: Model = store
        .list(None)?
        .into_iter()
        .map(|b| (b.id, (b.name.to_string(), b.status)))
        .collect();
    say("ready");
    loop {
        let op = next_op(&model, &mut rng, &mut counter);
        say(&format!("B {}", op.render()));
        match write(&store, &op)? {
            Ok(()) => {}
            Err(e) if e.is_retryable() => {
                say(&format!("R {e}"));
                std::process::exit(RETRYABLE_EXIT);
            }
            Err(e) => {
                say(&format!("F {}: {e}", op.render()));
                std::process::exit(3);
            }
        }
        say("A");
        apply(&mut model, &op);
    }
}

/// The parent: kills children until `deadline`; restarts the server once, in the
/// round after a third of the time.
pub fn run(child_bin: &ChildBinary, deadline: Deadline, rng: &mut Rng) -> Result<Tally> {
    let mut tally = Tally::new("postgres-writer");
    let server = PrivateServer::start("stress");
    server.create_database("registry");
    let url = DatabaseUrl::parse(&server.url("registry"))?;
    botmaker_postgres::migrate(&url)?;
    let restart_after = deadline.remaining() / 3;
    let started = std::time::Instant::now();
    let mut restarted = false;
    let mut model = Model::new();
    let mut round: u64 = 0;
    while !deadline.over(round) || !restarted {
        round += 1;
        let args = vec![
            "pg-writer".to_owned(),
            server.url("registry"),
            rng.next_u64().to_string(),
            (round * 1_000_000).to_string(),
        ];
        let mut child = child_bin.spawn(&args)?;
        if !restarted && started.elapsed() >= restart_after {
            restarted = true;
            restart_under(&server, &mut child, rng, &mut tally)?;
        } else {
            child.kill_at_random(rng, 50, 10_000, &mut tally)?;
        }
        let pending = replay(&child.seen, Op::parse, &mut tally, |op| {
            apply(&mut model, &op);
        });
        verify(&url, &mut model, pending.as_ref(), &mut tally)?;
    }
    Ok(tally)
}

/// Stops the server under a running child, checks that the child reports the
/// retryable error and exits by itself, and starts the server again.
fn restart_under(
    server: &PrivateServer,
    child: &mut super::common::Running,
    rng: &mut Rng,
    tally: &mut Tally,
) -> Result<()> {
    if child.wait_for("ready") {
        sleep_us(rng.below(25_000));
    }
    server.stop();
    // The child's next write fails with the retryable error and it exits: `R` then
    // the end of its output. A child that never says `R` before its output ends
    // (it died otherwise) is a failure.
    let saw_retryable = loop {
        if child.seen.iter().any(|l| l.starts_with("R ")) {
            break true;
        }
        if !child.wait_for("A") {
            break child.seen.iter().any(|l| l.starts_with("R "));
        }
    };
    // Reaps it (already exited: the kill lands on no running process).
    let killed_running = child.kill_and_collect()?;
    tally.check(if saw_retryable && !killed_running {
        Ok(())
    } else {
        Err(format!(
            "with the server down the child should report the retryable error and exit \
             (reported: {saw_retryable}, still running: {killed_running}); last lines: {:?}",
            child.seen.iter().rev().take(3).collect::<Vec<_>>()
        ))
    });
    server.restart();
    tally.add("server-restarts", 1);
    Ok(())
}

fn verify(
    url: &DatabaseUrl,
    model: &mut Model,
    pending: Option<&Op>,
    tally: &mut Tally,
) -> Result<()> {
    let store = match PgStore::open(url, PgOptions::default()) {
        Ok(s) => s,
        Err(e) => {
            tally.fail(format!("reopening after the kill: {e}"));
            return Ok(());
        }
    };
    let problems = store.consistency_check().context("the consistency check")?;
    tally.check(if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("consistency check: {problems:?}"))
    });
    let found: Model = store
        .list(None)?
        .into_iter()
        .map(|b| (b.id, (b.name.to_string(), b.status)))
        .collect();
    compare(found, model, pending, tally);
    Ok(())
}
