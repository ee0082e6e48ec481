//! A child process rotating a secret is SIGKILLed at random points: the secret always
//! holds one whole value, and reopening sweeps the leftovers.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use botmaker_domain::BotId;
use botmaker_secrets::SecretsStore;
use botmaker_testkit::rng::Rng;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::{entries, name};

const ROOT_ENV: &str = "BOTMAKER_SECRETS_TEST_CRASH_ROOT";
const BOT: &str = "0192f5a4-1b2c-7d3e-8f40-112233445566";
const SIZE: usize = 32 * 1024;

fn value(letter: u8) -> Vec<u8> {
    let mut v = format!("value {} of {SIZE} bytes\n", letter as char).into_bytes();
    v.resize(SIZE, letter);
    v
}

/// With the variable set: the child, which rotates the value between two versions
/// until killed. Without it (a normal run): the same rotation, 200 times in this
/// process, each read whole and the directory left with the secret alone, so the
/// helper never passes by doing nothing.
#[test]
fn rotate_child_or_rotation_without_kill() {
    let Ok(root) = std::env::var(ROOT_ENV) else {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("secrets");
        let store = SecretsStore::open(&root).unwrap();
        let bot: BotId = BOT.parse().unwrap();
        let key = name("ai_api_key");
        let (a, b) = (value(b'A'), value(b'B'));
        for i in 0..200 {
            let v = if i % 2 == 0 { &b } else { &a };
            store.write(&bot, &key, v).unwrap();
            assert_eq!(store.read(&bot, &key).unwrap().expose(), v.as_slice());
        }
        assert_eq!(entries(&root.join(BOT)), ["ai_api_key"]);
        assert!(store.audit().unwrap().is_clean());
        return;
    };
    let store = SecretsStore::open(Path::new(&root)).unwrap();
    let bot: BotId = BOT.parse().unwrap();
    let key = name("ai_api_key");
    let (a, b) = (value(b'A'), value(b'B'));
    println!("ready");
    for i in 0u64.. {
        store
            .write(&bot, &key, if i % 2 == 0 { &b } else { &a })
            .unwrap();
    }
}

#[test]
fn sigkill_mid_rotation_leaves_a_whole_value() {
    let seed = Rng::seed_from_env("BOTMAKER_SECRETS_CRASH_SEED");
    let mut rng = Rng::new(seed);

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("secrets");
    let bot: BotId = BOT.parse().unwrap();
    let key = name("ai_api_key");
    let (a, b) = (value(b'A'), value(b'B'));
    SecretsStore::open(&root)
        .unwrap()
        .write(&bot, &key, &a)
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut swept_total = 0;

    for round in 0..30 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash::rotate_child_or_rotation_without_kill",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROOT_ENV, &root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.trim_end().ends_with("ready") => break,
                Some(_) => {}
                None => panic!("child exited before it was ready"),
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        kill(
            Pid::from_raw(i32::try_from(child.id()).unwrap()),
            Signal::SIGKILL,
        )
        .unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child cannot finish on its own"
        );

        let store = SecretsStore::open(&root).unwrap();
        swept_total += store.swept();
        let got = store.read(&bot, &key).unwrap();
        assert!(
            got.expose() == a.as_slice() || got.expose() == b.as_slice(),
            "round {round} (seed {seed}): torn value of {} bytes",
            got.len()
        );
        let left = entries(&root.join(BOT));
        assert_eq!(
            left,
            ["ai_api_key"],
            "round {round}: leftovers after reopening"
        );
        assert!(store.audit().unwrap().is_clean());
    }
    eprintln!("crash test: {swept_total} leftover temp files swept over 30 kills");
}
