//! The doctor's repair beside live operations: `doctor --fix` must never quarantine
//! the directory of a bot being created (its directory and secrets exist before its
//! row). Create and delete hold the secrets root's advisory lock shared; the doctor's
//! fix step holds it exclusive while it lists rows and directories and quarantines.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use botmaker::Botmaker;
use botmaker::domain::{BotId, SecretName};
use botmaker::secrets::LockMode;

use crate::{Install, new_bot, required};

/// The bot ids of the directories moved into `.quarantine/` (`<id>-<time>`).
fn quarantined(install: &Install) -> Vec<BotId> {
    let q = install.config.secrets_dir().join(".quarantine");
    let Ok(entries) = std::fs::read_dir(q) else {
        return Vec::new();
    };
    entries
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name[..36].parse().unwrap()
        })
        .collect()
}

/// The facade's create, step by step, with a doctor `--fix` run in the middle: after
/// the directory and the secret, before the row.
#[test]
fn a_doctor_fix_between_the_secrets_and_the_row_quarantines_nothing() {
    let install = Install::new();
    let bm = install.open();
    let new = new_bot("being-created");
    let key: SecretName = SecretName::AI_API_KEY.parse().unwrap();
    // What create_bot does, in its order, under the lock it holds.
    let held = bm.secrets().lock(LockMode::Shared).unwrap();
    assert!(bm.secrets().create_bot(&new.id).unwrap());
    bm.secrets().write(&new.id, &key, b"sk-live").unwrap();
    let (done, report) = mpsc::channel();
    std::thread::scope(|s| {
        let config = install.config.clone();
        s.spawn(move || done.send(Botmaker::doctor(&config, true)).unwrap());
        // The doctor waits for the lock: it has not finished (nor quarantined) while
        // the row is missing.
        assert!(
            report.recv_timeout(Duration::from_millis(500)).is_err(),
            "doctor --fix ran while a bot was half created: {:?}",
            quarantined(&install)
        );
        bm.registry().create(&new).unwrap();
        drop(held);
        let report = report.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(
            report
                .findings
                .iter()
                .all(|f| f.subject != new.id.to_string()),
            "{report}"
        );
    });
    assert_eq!(quarantined(&install), []);
    assert_eq!(
        bm.get_secret(&bm.resolve(&new.id.into()).unwrap(), &key)
            .unwrap()
            .expose(),
        b"sk-live"
    );
}

/// Threads creating bots (with their secrets) and setting secrets, beside a thread
/// running `doctor --fix` in a loop, for a few seconds: no registered bot's directory
/// is ever quarantined, and every created bot's secrets read back.
#[test]
fn creating_bots_beside_a_looping_doctor_fix_loses_no_secrets() {
    const WRITERS: usize = 2;
    let install = Install::new();
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(3);
    let (created, doctor_runs) = std::thread::scope(|s| {
        let doctor = s.spawn(|| {
            let mut runs = 0u32;
            // Bounded by the deadline too, so a writer that panics ends the test.
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                Botmaker::doctor(&install.config, true);
                runs += 1;
            }
            runs
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let install = &install;
                s.spawn(move || {
                    let bm = install.open();
                    let extra: SecretName = "extra".parse().unwrap();
                    let mut ids = Vec::new();
                    let mut i = 0;
                    while Instant::now() < deadline {
                        let bot = bm
                            .create_bot(&new_bot(&format!("w{w}-{i}")), &required())
                            .unwrap();
                        bm.set_secret(&bot, &extra, b"x").unwrap();
                        for (name, value) in required() {
                            assert_eq!(bm.get_secret(&bot, &name).unwrap().expose(), value);
                        }
                        ids.push(bot.id);
                        i += 1;
                    }
                    ids
                })
            })
            .collect();
        let created: Vec<BotId> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        stop.store(true, Ordering::Relaxed);
        (created, doctor.join().unwrap())
    });
    assert!(
        doctor_runs > 0 && created.len() > 10,
        "{doctor_runs} doctor runs, {} bots",
        created.len()
    );
    let bm = install.open();
    let registered: BTreeSet<BotId> = bm.list_bots(None).unwrap().iter().map(|b| b.id).collect();
    assert_eq!(registered.len(), created.len());
    let moved: Vec<BotId> = quarantined(&install)
        .into_iter()
        .filter(|id| registered.contains(id))
        .collect();
    assert_eq!(moved, [], "registered bots quarantined");
    for id in &created {
        let bot = bm.resolve(&(*id).into()).unwrap();
        assert!(bm.missing_secrets(&bot).unwrap().is_empty());
        for (name, value) in required() {
            assert_eq!(bm.get_secret(&bot, &name).unwrap().expose(), value);
        }
    }
    let report = Botmaker::doctor(&install.config, false);
    assert!(report.is_healthy(), "{report}");
}
