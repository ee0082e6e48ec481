//! Hostile input through every subcommand: a seeded, generated corpus of bot ids,
//! names, secret names and values (plus a fixed list of known-bad ones). Each run
//! ends with exit 0, or exit 1 and one `error:` line, or exit 2 (usage); never a
//! panic or a signal. Nothing is created outside the installation, the working
//! directory stays empty, and what was stored before is unchanged.
//!
//! The corpus and its seeded generator are the test kit's (printed seed,
//! `BOTMAKER_HOSTILE_SEED` to replay), the same ones `cargo xtask stress` feeds the
//! library with.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;

use botmaker::secrets::SecretsOptions;
use botmaker_testkit::hostile as corpus;
use botmaker_testkit::rng::Rng;
use botmaker_testkit::scratch::entries;

use crate::{Env, Run};

/// How many generated inputs (each goes through about eight commands).
const GENERATED: usize = 120;

/// The documented outcomes, and never a panic or a signal.
#[track_caller]
fn assert_outcome(args: &[&OsStr], run: &Run) {
    crate::assert_no_panic(&run.stderr);
    match run.code {
        0 | 2 => {}
        1 => {
            run.error();
        }
        other => panic!("{args:?}: exit {other}, stderr {:?}", run.stderr),
    }
}

fn run_os(env: &Env, args: &[&OsStr], stdin: &[u8]) -> Run {
    let mut child = env
        .cmd(&[])
        .args(args)
        .current_dir(env.dir.path().join("cwd"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut input = child.stdin.take().unwrap();
        // A command that refuses before reading stdin closes it: a broken pipe here is
        // part of the outcome, not a test failure.
        let _ = input.write_all(stdin);
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out
            .status
            .code()
            .unwrap_or_else(|| panic!("{args:?} was killed by a signal: {}", out.status)),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One input through every subcommand that takes a user's string.
fn feed(env: &Env, s: &OsStr, s2: &OsStr, value: &[u8], victims: &[String]) {
    let lossy = s.to_string_lossy();
    if victims.iter().any(|v| lossy.eq_ignore_ascii_case(v)) {
        return;
    }
    let o = OsStr::new;
    let commands: Vec<(Vec<&OsStr>, &[u8])> = vec![
        (vec![o("bot"), o("show"), s], b""),
        (vec![o("bot"), o("show"), s, o("--json")], b""),
        (vec![o("bot"), o("set-status"), s, s2], b""),
        (vec![o("bot"), o("list"), o("--status"), s], b""),
        (vec![o("secret"), o("get"), o("alpha"), s], b""),
        (vec![o("secret"), o("list"), s], b""),
        (vec![o("secret"), o("set"), o("scratch"), s], value),
        (
            vec![
                o("bot"),
                o("create"),
                s,
                o("--provider"),
                s2,
                o("--model"),
                o("gpt-4o"),
                o("--channel"),
                o("slack"),
            ],
            b"",
        ),
        (
            vec![
                o("bot"),
                o("create"),
                s,
                o("--provider"),
                o("openai"),
                o("--model"),
                o("gpt-4o"),
                o("--channel"),
                o("slack"),
            ],
            b"",
        ),
    ];
    // The victims' own secret names are not fed to `secret set scratch`: the value would
    // legitimately replace (and the clean-up below remove) a secret the final check
    // expects unchanged.
    let victim_secret = ["ai_api_key", "channel_token", "channel_config"].contains(&lossy.as_ref());
    for (args, stdin) in &commands {
        if victim_secret && args[..2] == [o("secret"), o("set")] {
            continue;
        }
        let run = run_os(env, args, stdin);
        assert_outcome(args, &run);
        let valid_secret = s
            .to_str()
            .is_some_and(|x| botmaker_domain::SecretName::parse(x).is_ok());
        if run.code == 0 && valid_secret && args[..2] == [o("secret"), o("set")] {
            // Stored exactly (less one trailing newline), read back, removed.
            let got = run_os(env, &[o("secret"), o("get"), o("scratch"), s], b"");
            assert_eq!(got.code, 0, "{}", got.stderr);
            let trimmed = value
                .strip_suffix(b"\n")
                .map_or(value, |v| v.strip_suffix(b"\r").unwrap_or(v));
            assert_eq!(
                got.stdout.as_bytes(),
                String::from_utf8_lossy(trimmed).as_bytes(),
                "value of {}",
                s.display()
            );
            run_os(env, &[o("secret"), o("rm"), o("scratch"), s], b"").ok();
        }
        let valid_bot = s
            .to_str()
            .is_some_and(|x| botmaker_domain::BotName::parse(x).is_ok());
        if run.code == 0 && valid_bot && args[..2] == [o("bot"), o("create")] {
            run_os(env, &[o("bot"), o("delete"), s], b"").ok();
        }
    }
}

#[test]
fn hostile_input_through_every_subcommand_is_refused_cleanly() {
    let mut rng = Rng::new(Rng::seed_from_env("BOTMAKER_HOSTILE_SEED"));

    let env = Env::new();
    std::fs::create_dir(env.dir.path().join("cwd")).unwrap();
    let outside = env.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("ai_api_key"), b"CANARY").unwrap();
    let alpha = env.with_bot("alpha");
    let scratch = env
        .run(&[
            "bot",
            "create",
            "scratch",
            "--provider",
            "openai",
            "--model",
            "m",
            "--channel",
            "slack",
        ])
        .ok()
        .trim()
        .to_owned();
    for bot in ["alpha", "scratch"] {
        for name in ["ai_api_key", "channel_token", "channel_config"] {
            env.run_with_stdin(
                &["secret", "set", bot, name],
                format!("{bot}-{name}-before").as_bytes(),
            )
            .ok();
        }
    }
    let shown = env.run(&["bot", "show", "alpha", "--json"]).ok().to_owned();
    let victims = vec![
        "alpha".to_owned(),
        alpha.clone(),
        "scratch".to_owned(),
        scratch,
    ];

    let mut inputs: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = corpus::KNOWN_BAD
        .iter()
        .map(|s| {
            (
                s.as_bytes().to_vec(),
                b"running".to_vec(),
                b"value\n".to_vec(),
            )
        })
        .collect();
    // Arguments that are not UTF-8 at all.
    inputs.push((b"a\xffb".to_vec(), b"\xc3(".to_vec(), b"\xff\xfe".to_vec()));
    inputs.push((b"\xed\xa0\x80".to_vec(), b"x".to_vec(), b"v".to_vec()));
    for _ in 0..GENERATED {
        let (s, s2, v) = (
            corpus::string(&mut rng),
            corpus::string(&mut rng),
            corpus::value(&mut rng, SecretsOptions::DEFAULT_MAX_SECRET_SIZE),
        );
        inputs.push((s.into_bytes(), s2.into_bytes(), v));
    }
    for (s, s2, v) in &inputs {
        if s.contains(&0) || s2.contains(&0) {
            continue; // the OS cannot pass a NUL in an argument
        }
        feed(
            &env,
            OsStr::from_bytes(s),
            OsStr::from_bytes(s2),
            v,
            &victims,
        );
    }

    // Nothing stored changed.
    assert_eq!(env.run(&["bot", "show", "alpha", "--json"]).ok(), shown);
    for bot in ["alpha", "scratch"] {
        for name in ["ai_api_key", "channel_token", "channel_config"] {
            assert_eq!(
                env.run(&["secret", "get", bot, name]).ok(),
                format!("{bot}-{name}-before")
            );
        }
    }
    let listed: serde_json::Value =
        serde_json::from_str(env.run(&["bot", "list", "--json"]).ok()).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    // Nothing escaped: the working directory is empty, the outside canary untouched,
    // the installation holds only its own entries, and the doctor finds it healthy.
    assert!(entries(&env.dir.path().join("cwd")).is_empty());
    assert_eq!(entries(&outside), ["ai_api_key"]);
    assert_eq!(
        std::fs::read(outside.join("ai_api_key")).unwrap(),
        b"CANARY"
    );
    assert_eq!(
        entries(env.dir.path()),
        ["cwd", "data", "outside", "secrets"]
    );
    for entry in entries(&env.secrets()) {
        // Bot directories, the advisory lock of create and delete, the root's id.
        assert!(
            entry == ".lock"
                || entry == ".root-id"
                || entry.len() == 36 && entry.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
            "{entry:?}"
        );
    }
    let doctor = env.run(&["doctor"]);
    assert_eq!(doctor.code, 0, "{}", doctor.stdout);
    eprintln!("{} inputs through the CLI", inputs.len());
}
