//! Issue 11, finding 2, through processes: `botmaker bot create` and `secret set`
//! looping beside `botmaker doctor --fix`, every command its own OS process. The
//! doctor's fix step must never quarantine the directory of a bot being created
//! (create writes the directory before the row; the two coordinate through an
//! advisory lock on the secrets root, which only separate processes exercise as
//! separate open file descriptions).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::{Env, Run};

/// How long the loops run, and the most commands each loop starts (a bound even on a
/// fast machine).
const RUN_FOR: Duration = Duration::from_secs(5);
const MAX_LOOPS: usize = 200;
/// Each writer makes at least this many bots and each doctor runs at least this many
/// times, past `RUN_FOR` if a loaded machine is slow, so that the test does real work;
/// `HARD_STOP` bounds that (the count assertion then fails and says so).
const MIN_BOTS_PER_WRITER: usize = 5;
const MIN_RUNS_PER_DOCTOR: usize = 3;
const HARD_STOP: Duration = Duration::from_mins(1);

/// The bot ids of the directories in `.quarantine/` (named `<id>-<seconds>.<nanos>`).
fn quarantined(env: &Env) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(env.secrets().join(".quarantine")) else {
        return Vec::new();
    };
    entries
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name[..36].to_owned()
        })
        .collect()
}

fn describe(what: &str, run: &Run) -> String {
    format!(
        "{what}: exit {}\nstdout: {}\nstderr: {}",
        run.code, run.stdout, run.stderr
    )
}

/// One writer's loop: create a bot, then set and read back its secrets. Returns the
/// bots it created and the first failure, which ends the loop (what follows a failure
/// would only fail for the same reason).
fn writer(env: &Env, w: usize, start: Instant) -> (usize, Option<String>) {
    let mut created = 0;
    for i in 0..MAX_LOOPS {
        let ran = start.elapsed();
        if ran >= HARD_STOP || (ran >= RUN_FOR && i >= MIN_BOTS_PER_WRITER) {
            break;
        }
        let name = format!("w{w}-{i}");
        // `ollama` needs no API key: channel_token and channel_config make it whole.
        let run = env.run(&[
            "bot",
            "create",
            &name,
            "--provider",
            "ollama",
            "--model",
            "llama3",
            "--channel",
            "slack",
        ]);
        if run.code != 0 {
            return (created, Some(describe(&format!("bot create {name}"), &run)));
        }
        created += 1;
        for secret in ["channel_token", "channel_config"] {
            let value = format!("{secret}-of-{name}");
            let set = env.run_with_stdin(&["secret", "set", &name, secret], value.as_bytes());
            if set.code != 0 {
                return (
                    created,
                    Some(describe(&format!("secret set {name} {secret}"), &set)),
                );
            }
            let get = env.run(&["secret", "get", &name, secret]);
            if get.code != 0 || get.stdout != value {
                return (
                    created,
                    Some(describe(
                        &format!("secret get {name} {secret} (want {value:?})"),
                        &get,
                    )),
                );
            }
        }
    }
    (created, None)
}

/// One doctor's loop: `doctor --fix --json`. While writers run it may see a bot whose
/// secrets are not set yet (exit 1, a `missing-secrets` finding), nothing else: an
/// `orphan-secrets` finding means it saw a directory without its row, which the lock
/// exists to prevent. It runs while any writer does. Returns its runs and the first
/// failure.
fn doctor(env: &Env, start: Instant, writing: &AtomicUsize) -> (usize, Option<String>) {
    let mut runs = 0;
    for _ in 0..MAX_LOOPS {
        let ran = start.elapsed();
        let done = writing.load(Ordering::SeqCst) == 0;
        if ran >= HARD_STOP || (done && runs >= MIN_RUNS_PER_DOCTOR) {
            break;
        }
        let run = env.run(&["doctor", "--fix", "--json"]);
        runs += 1;
        let report: serde_json::Value = match serde_json::from_str(&run.stdout) {
            Ok(report) if run.code == 0 || run.code == 1 => report,
            _ => return (runs, Some(describe("doctor --fix", &run))),
        };
        let unexpected = report["findings"].as_array().unwrap().iter().any(|f| {
            let kind = f["kind"].as_str().unwrap();
            kind == "orphan-secrets" || (kind != "missing-secrets" && f["fixed"] != true)
        });
        if unexpected || (run.code == 1) != (report["healthy"] == false) {
            return (runs, Some(describe("doctor --fix", &run)));
        }
    }
    (runs, None)
}

/// Two writer loops beside two `doctor --fix` loops, each command a process, for about
/// five seconds: every command succeeds, every secret reads back right after its
/// write, no registered bot's directory is quarantined, and the installation ends
/// healthy.
#[test]
fn bot_create_and_secret_set_beside_looping_doctor_fix_processes() {
    const WRITERS: usize = 2;
    const DOCTORS: usize = 2;
    let env = Env::new();
    env.run(&["migrate"]).ok();
    let start = Instant::now();
    let writing = AtomicUsize::new(WRITERS);
    let (writers, doctors) = std::thread::scope(|s| {
        let (env, writing) = (&env, &writing);
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                s.spawn(move || {
                    let done = writer(env, w, start);
                    writing.fetch_sub(1, Ordering::SeqCst);
                    done
                })
            })
            .collect();
        let doctors: Vec<_> = (0..DOCTORS)
            .map(|_| s.spawn(move || doctor(env, start, writing)))
            .collect();
        (
            writers
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>(),
            doctors
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>(),
        )
    });
    let failures: Vec<&String> = writers
        .iter()
        .chain(&doctors)
        .filter_map(|(_, failure)| failure.as_ref())
        .collect();
    let created: usize = writers.iter().map(|(n, _)| n).sum();
    let doctor_runs: usize = doctors.iter().map(|(n, _)| n).sum();
    let registered: BTreeSet<String> =
        serde_json::from_str::<serde_json::Value>(env.run(&["bot", "list", "--json"]).ok())
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_owned())
            .collect();
    let moved: Vec<String> = quarantined(&env)
        .into_iter()
        .filter(|id| registered.contains(id))
        .collect();
    assert_eq!(
        moved,
        Vec::<String>::new(),
        "registered bots quarantined; {failures:#?}"
    );
    assert!(failures.is_empty(), "{failures:#?}");
    // Not vacuous: the loops did run, side by side, on a loaded 2-core machine too.
    assert!(
        created >= 10 && doctor_runs >= 5,
        "{created} bots created, {doctor_runs} doctor runs"
    );
    assert_eq!(registered.len(), created);
    env.run(&["doctor"]).ok();
    eprintln!("{created} bots created, {doctor_runs} doctor --fix runs");
}
