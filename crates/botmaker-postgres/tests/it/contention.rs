//! Contention: 8 processes × 8 threads on one database, with contested names (creates
//! and deletes of a few names) and contested transitions (every thread changes the
//! status of the same few bots). A trigger installed by the test records every status
//! change the server makes; afterwards every recorded change is one the lifecycle
//! allows, there is exactly one per acknowledged `set_status` (none lost, none made
//! twice), and every acknowledged create that was not deleted is present.
//!
//! The worker processes are this test binary again: a worker is an ordinary test
//! that acts on the database named by `WORKER_URL` when that variable is set, and
//! otherwise does a small single-process version of its work (never a no-op).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;

use botmaker_domain::{BotId, BotRepository, BotStatus, NewBot, RepoError};
use botmaker_postgres::{DatabaseUrl, PgOptions, PgStore};
use botmaker_testkit::rng::Rng;

use crate::support::{migrated_db, new_bot};

const WORKER_URL: &str = "BOTMAKER_PG_IT_WORKER_URL";
const WORKER_TAG: &str = "BOTMAKER_PG_IT_WORKER_TAG";
const PROCESSES: usize = 8;
const THREADS: usize = 8;
const OPS: usize = 40;
/// Names every thread of every process tries to create (and deletes again).
const CONTESTED_NAMES: u64 = 12;
/// Bots whose status every thread changes.
const SHARED_BOTS: usize = 4;

/// Records every status change in `transitions` (made by the test, not by a
/// migration: it watches the store from outside).
const AUDIT: &str = "
CREATE TABLE transitions (bot TEXT NOT NULL, old TEXT NOT NULL, new TEXT NOT NULL);
CREATE FUNCTION record_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status OR NEW.updated_at IS DISTINCT FROM OLD.updated_at THEN
        INSERT INTO transitions VALUES (NEW.id, OLD.status, NEW.status);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER record_transition AFTER UPDATE OF status ON bots
    FOR EACH ROW EXECUTE FUNCTION record_transition();
";

/// One worker process: `THREADS` threads on one store, printing what was
/// acknowledged: `ACK <id>` (created), `DEL <id>` (deleted), `SET <id> <status>`
/// (a status change), `BUSY` (a retryable refusal). Any other error fails it.
fn contend(url: &DatabaseUrl, tag: &str, shared: &[BotId], threads: usize) -> Vec<String> {
    let store = PgStore::open(url, PgOptions::default()).unwrap();
    let seed = Rng::fresh_seed();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            let shared = shared.to_vec();
            let tag = format!("{tag}-{t}");
            let mut rng = Rng::new(seed ^ (t as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            std::thread::spawn(move || {
                let mut lines = Vec::new();
                let mut mine: Vec<BotId> = Vec::new();
                for _ in 0..OPS {
                    match rng.below(10) {
                        0..=3 => {
                            let name = format!("contested-{}", rng.below(CONTESTED_NAMES));
                            let new = NewBot::with_id(
                                BotId::generate(),
                                name.parse().unwrap(),
                                botmaker_domain::AiProvider::Anthropic,
                                "claude".parse().unwrap(),
                                botmaker_domain::ChannelType::Slack,
                            );
                            match store.create(&new) {
                                Ok(bot) => {
                                    lines.push(format!("ACK {}", bot.id));
                                    mine.push(bot.id);
                                }
                                Err(RepoError::NameTaken { .. }) => {}
                                Err(e) if e.is_retryable() => lines.push("BUSY".into()),
                                Err(e) => panic!("{tag}: create: {e}"),
                            }
                        }
                        4 if !mine.is_empty() => {
                            let id = mine.swap_remove(rng.index(mine.len()));
                            match store.delete(&id) {
                                Ok(()) => lines.push(format!("DEL {id}")),
                                Err(e) if e.is_retryable() => {
                                    lines.push("BUSY".into());
                                    mine.push(id);
                                }
                                Err(e) => panic!("{tag}: delete: {e}"),
                            }
                        }
                        _ => {
                            let id = *rng.pick(&shared);
                            let to = *rng.pick(BotStatus::ALL);
                            match store.set_status(&id, to) {
                                Ok(bot) => {
                                    assert_eq!(bot.status, to);
                                    lines.push(format!("SET {id} {to}"));
                                }
                                Err(RepoError::InvalidTransition { from, to: t, .. }) => {
                                    assert_eq!(t, to);
                                    assert!(!from.can_transition_to(to), "{from} -> {to}");
                                }
                                Err(e) if e.is_retryable() => lines.push("BUSY".into()),
                                Err(e) => panic!("{tag}: set_status: {e}"),
                            }
                        }
                    }
                }
                lines
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

#[test]
fn process_worker_contends() {
    if let (Ok(url), Ok(tag)) = (std::env::var(WORKER_URL), std::env::var(WORKER_TAG)) {
        let url = DatabaseUrl::parse(&url).unwrap();
        let store = PgStore::open(&url, PgOptions::default()).unwrap();
        let shared: Vec<BotId> = (0..SHARED_BOTS)
            .map(|k| {
                store
                    .get_by_name(&format!("shared-{k}").parse().unwrap())
                    .unwrap()
                    .id
            })
            .collect();
        drop(store);
        let mut go = String::new();
        std::io::stdin().read_line(&mut go).unwrap();
        // End the harness's "test … " line, which has no newline yet.
        println!();
        for line in contend(&url, &tag, &shared, THREADS) {
            println!("{line}");
        }
        return;
    }
    // Not a worker: the same work, smaller, in this process.
    let (db, url, shared) = prepared("contendsolo");
    let lines = contend(&url, "solo", &shared, 4);
    check(&db, &url, &shared, &lines);
}

/// A migrated database with the audit trigger and the shared bots.
fn prepared(label: &str) -> (botmaker_testkit::pg::TestDatabase, DatabaseUrl, Vec<BotId>) {
    let (db, url) = migrated_db(label);
    db.client().batch_execute(AUDIT).unwrap();
    let store = PgStore::open(&url, PgOptions::default()).unwrap();
    let shared = (0..SHARED_BOTS)
        .map(|k| store.create(&new_bot(&format!("shared-{k}"))).unwrap().id)
        .collect();
    (db, url, shared)
}

/// Checks the database against what the workers acknowledged.
fn check(
    db: &botmaker_testkit::pg::TestDatabase,
    url: &DatabaseUrl,
    shared: &[BotId],
    lines: &[String],
) {
    let mut created = BTreeSet::new();
    let mut deleted = BTreeSet::new();
    let mut sets: BTreeMap<String, usize> = BTreeMap::new();
    let mut busy = 0;
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ACK", id] => assert!(created.insert(id.parse::<BotId>().unwrap())),
            ["DEL", id] => assert!(deleted.insert(id.parse::<BotId>().unwrap())),
            ["SET", id, _] => *sets.entry((*id).to_owned()).or_default() += 1,
            ["BUSY"] => busy += 1,
            _ => {}
        }
    }
    assert!(deleted.is_subset(&created));
    let store = PgStore::open(url, PgOptions::default()).unwrap();
    let present: BTreeSet<BotId> = store
        .list(None)
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .filter(|id| !shared.contains(id))
        .collect();
    let expected: BTreeSet<BotId> = created.difference(&deleted).copied().collect();
    assert_eq!(
        present, expected,
        "every acknowledged create, less the deleted ones"
    );

    let mut client = db.client();
    let mut recorded: BTreeMap<String, usize> = BTreeMap::new();
    for row in client
        .query("SELECT bot, old, new FROM transitions", &[])
        .unwrap()
    {
        let (bot, old, new): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let (from, to) = (
            BotStatus::parse(&old).unwrap(),
            BotStatus::parse(&new).unwrap(),
        );
        assert!(
            from.can_transition_to(to),
            "illegal transition {bot}: {from} -> {to}"
        );
        *recorded.entry(bot).or_default() += 1;
    }
    assert_eq!(
        recorded, sets,
        "one recorded change per acknowledged set_status"
    );
    assert!(
        sets.values().sum::<usize>() > 0,
        "some transitions succeeded: {lines:?}"
    );
    assert_eq!(store.consistency_check().unwrap(), Vec::<String>::new());
    println!(
        "contention: {} creates, {} deletes, {} transitions, {busy} retryable refusals",
        created.len(),
        deleted.len(),
        sets.values().sum::<usize>()
    );
}

#[test]
fn eight_processes_of_eight_threads_contend_for_names_and_transitions() {
    let (db, url, shared) = prepared("contention");
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|k| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "contention::process_worker_contends",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(WORKER_URL, db.url())
                .env(WORKER_TAG, format!("p{k}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Every worker opens its store, then waits for a line: release them together.
    for child in &mut children {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let mut lines = Vec::new();
    for (k, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "worker {k} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        lines.extend(stdout.lines().map(str::to_owned));
    }
    let shared = Arc::new(shared);
    check(&db, &url, &shared, &lines);
}
