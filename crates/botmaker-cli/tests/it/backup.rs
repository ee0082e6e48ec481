//! `botmaker backup DIR`, `backup --verify DIR`, `restore DIR` as an operator runs
//! them, and SIGKILLed at random moments: a killed backup never passes `--verify`
//! (unless the kill came after its manifest, its last step: then it restores whole),
//! a killed restore leaves a state that a rerun refuses
//! clearly, or the whole installation.

use std::process::Stdio;
use std::time::{Duration, Instant};

use botmaker::Botmaker;
use botmaker::domain::{NewBot, SecretName};
use botmaker_testkit::rng::Rng;

use crate::{Env, mode};

/// `count` bots with their three required secrets, made through the library (quicker
/// than one process per command).
fn populate(env: &Env, count: usize) {
    env.run(&["migrate"]).ok();
    let config = botmaker::Config::new(env.data(), env.secrets());
    let bm = Botmaker::open(&config).unwrap();
    for i in 0..count {
        let value = format!("value-{i}-").repeat(1 + i % 50);
        let secrets: Vec<(SecretName, &[u8])> = SecretName::required()
            .into_iter()
            .map(|s| (s, value.as_bytes()))
            .collect();
        let new = NewBot::new(
            format!("bot-{i}").parse().unwrap(),
            "openai".parse().unwrap(),
            "gpt-4o".parse().unwrap(),
            "slack".parse().unwrap(),
        );
        bm.create_bot(&new, &secrets).unwrap();
    }
}

#[test]
fn backup_verify_and_restore_as_documented() {
    let env = Env::new();
    let id = env.with_bot("support-bot");
    for (name, value) in [
        ("ai_api_key", "sk-live-1\n"),
        ("channel_token", "xoxb-1\n"),
        ("channel_config", "{}\n"),
    ] {
        env.run_with_stdin(&["secret", "set", "support-bot", name], value.as_bytes())
            .ok();
    }
    let backup = env.dir.path().join("backup-2026-12-01");
    let out = env.run(&["backup", backup.to_str().unwrap()]);
    let stdout = out.ok();
    assert!(
        stdout.starts_with("backed up 1 bots, 3 secrets"),
        "{stdout}"
    );
    assert!(!stdout.contains("sk-live-1") && !out.stderr.contains("sk-live-1"));
    assert_eq!(mode(&backup), 0o700);
    assert_eq!(
        mode(&backup.join("secrets").join(&id).join("ai_api_key")),
        0o600
    );

    let out = env.run(&["backup", "--verify", backup.to_str().unwrap()]);
    assert!(
        out.ok().contains("is complete: 1 bots, 3 secrets"),
        "{}",
        out.stdout
    );

    // Refusals: one error line, exit 1, nothing written.
    let err = env.run(&["backup", backup.to_str().unwrap()]);
    assert!(err.error().contains("is not empty"), "{}", err.stderr);
    let err = env.run(&["restore", backup.to_str().unwrap()]);
    assert!(
        err.error().contains("a database already exists"),
        "{}",
        err.stderr
    );

    let target = Env::new();
    let out = target.run(&["restore", backup.to_str().unwrap()]);
    let stdout = out.ok();
    assert!(stdout.starts_with("restored 1 bots, 3 secrets"), "{stdout}");
    assert!(stdout.contains("healthy: 1 bots checked"), "{stdout}");
    let got = target.run(&["secret", "get", "support-bot", "ai_api_key"]);
    assert_eq!(got.ok(), "sk-live-1");

    // Damage names the file.
    let secret = backup.join("secrets").join(&id).join("ai_api_key");
    std::fs::write(&secret, b"sk-live-2").unwrap();
    let err = Env::new().run(&["restore", backup.to_str().unwrap()]);
    let line = err.error();
    assert!(line.contains(&format!("secrets/{id}/ai_api_key")), "{line}");
    let err = env.run(&["backup", "--verify", backup.to_str().unwrap()]);
    assert!(err.error().contains("is damaged"), "{}", err.stderr);
}

/// Runs `args`, kills it with SIGKILL after `after` unless it ended first; whether
/// it ended by itself, successfully.
fn run_and_kill(env: &Env, args: &[&str], after: Duration) -> bool {
    let mut child = env
        .cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + after;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if let Some(status) = child.try_wait().unwrap() {
        return status.success();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    false
}

/// How long a run of `args` takes to the end.
fn timed(env: &Env, args: &[&str]) -> Duration {
    let at = Instant::now();
    env.run(args).ok();
    at.elapsed()
}

#[test]
fn a_killed_backup_never_passes_verify() {
    let env = Env::new();
    populate(&env, 60);
    let full = timed(
        &env,
        &["backup", env.dir.path().join("full").to_str().unwrap()],
    );
    let mut rng = Rng::new(Rng::seed_from_env("BACKUP_KILL_SEED"));
    let mut killed = 0;
    // Six rounds at random points of a whole run; then, if no kill landed (a loaded
    // machine makes runs slower or faster than the one timed), up to fourteen more in
    // its first 30 %.
    for round in 0..20 {
        if round >= 6 && killed > 0 {
            break;
        }
        let dir = env.dir.path().join(format!("killed-{round}"));
        let span = if round < 6 { 1000 } else { 300 };
        let after = full * u32::try_from(rng.below(span)).unwrap() / 1000;
        let finished = run_and_kill(&env, &["backup", dir.to_str().unwrap()], after);
        let verify = env.run(&["backup", "--verify", dir.to_str().unwrap()]);
        if finished || verify.code == 0 {
            // It finished (a kill can land after the manifest's rename, the backup's
            // last step): then it is whole, and restores.
            verify.ok();
            let target = Env::new();
            let out = target.run(&["restore", dir.to_str().unwrap()]);
            assert!(
                out.ok().contains("healthy: 60 bots checked"),
                "{}",
                out.stdout
            );
        } else {
            killed += 1;
            let line = verify.error();
            assert!(
                line.contains("incomplete backup") || line.contains("No such file"),
                "round {round}, killed after {after:?}: {line}"
            );
            // And a restore of it writes nothing.
            let target = Env::new();
            target.run(&["restore", dir.to_str().unwrap()]).error();
            assert!(!target.data().exists() && !target.secrets().exists());
        }
    }
    assert!(killed > 0, "no backup was killed: the timing is off");
}

#[test]
fn a_killed_restore_is_refused_clearly_on_rerun_or_complete() {
    let env = Env::new();
    populate(&env, 60);
    let backup = env.dir.path().join("backup");
    let backup = backup.to_str().unwrap();
    env.run(&["backup", backup]).ok();
    let full = timed(&Env::new(), &["restore", backup]);
    let mut rng = Rng::new(Rng::seed_from_env("RESTORE_KILL_SEED"));
    let mut refused = 0;
    for round in 0..6 {
        let target = Env::new();
        let after = full * u32::try_from(rng.below(1000)).unwrap() / 1000;
        run_and_kill(&target, &["restore", backup], after);
        let rerun = target.run(&["restore", backup]);
        if rerun.code == 0 {
            // Killed before it wrote anything: the rerun did the whole restore.
            assert!(
                rerun.stdout.contains("healthy: 60 bots checked"),
                "{}",
                rerun.stdout
            );
            continue;
        }
        refused += 1;
        let line = rerun.error();
        assert!(
            line.contains("cannot restore into"),
            "round {round}: {line}"
        );
        if target.db().exists() {
            // The registry is linked last: once it is there, the installation is whole.
            assert!(line.contains("a database already exists"), "{line}");
            let doctor = target.run(&["doctor"]);
            assert!(
                doctor.ok().contains("healthy: 60 bots checked"),
                "{}",
                doctor.stdout
            );
        } else {
            assert!(line.contains("bot folder"), "round {round}: {line}");
            assert!(
                line.contains("remove them and run the restore again"),
                "{line}"
            );
        }
    }
    assert!(refused > 0, "no restore was interrupted: the timing is off");
}

/// The secrets folder of a restored installation is as strict as a live one.
#[test]
fn restored_modes_are_strict_under_a_hostile_umask() {
    let env = Env::new();
    let id = env.with_bot("alpha");
    env.run_with_stdin(&["secret", "set", "alpha", "ai_api_key"], b"k")
        .ok();
    let backup = env.dir.path().join("b");
    env.run(&["backup", backup.to_str().unwrap()]).ok();
    let target = Env::new();
    let script = format!(
        "umask 000 && {} restore {}",
        env!("CARGO_BIN_EXE_botmaker"),
        backup.display()
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("BOTMAKER_DATA_DIR", target.data())
        .env("BOTMAKER_SECRETS_DIR", target.secrets())
        .output()
        .unwrap();
    // Unhealthy (the bot lacks two required secrets, as the original does): exit 1.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secrets = target.secrets();
    assert_eq!(mode(&secrets), 0o700);
    assert_eq!(mode(&secrets.join(&id)), 0o700);
    assert_eq!(mode(&secrets.join(&id).join("ai_api_key")), 0o600);
    assert_eq!(mode(&target.db()) & 0o077, 0);
    assert_eq!(mode(&target.data()) & 0o077, 0);
}
