//! An installation whose secrets belong to another user: `--secrets-owner` and
//! `BOTMAKER_SECRETS_OWNER` reach every command, the doctor included (issue 11,
//! finding 7).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::{Env, Run, run_with_stdin};

/// `nobody:nogroup`, not the test's own user.
const OWNER: &str = "65534:65534";

/// How a command is given the owner.
#[derive(Clone, Copy, Debug)]
enum Given {
    Flag,
    Environment,
}

impl Given {
    fn cmd(self, env: &Env, args: &[&str]) -> Command {
        match self {
            // After the subcommand: the flag is global.
            Self::Flag => env.cmd(&[args, &["--secrets-owner", OWNER]].concat()),
            Self::Environment => {
                let mut cmd = env.cmd(args);
                cmd.env("BOTMAKER_SECRETS_OWNER", OWNER);
                cmd
            }
        }
    }

    fn run(self, env: &Env, args: &[&str]) -> Run {
        Run::from(self.cmd(env, args).output().unwrap())
    }
}

/// Handing files to another user takes `CAP_CHOWN`: CI runs the tests as root.
fn require_root(env: &Env) {
    assert_eq!(
        std::fs::metadata(env.dir.path()).unwrap().uid(),
        0,
        "this test chowns files to {OWNER} and needs root (CI runs tests as root)"
    );
}

/// The bot directories and secret files under the secrets root, with their owners.
fn owners(root: &Path) -> Vec<(String, (u32, u32))> {
    let owner = |p: &Path| {
        let meta = std::fs::symlink_metadata(p).unwrap();
        (p.display().to_string(), (meta.uid(), meta.gid()))
    };
    let mut found = Vec::new();
    for bot in std::fs::read_dir(root).unwrap() {
        let bot = bot.unwrap().path();
        found.push(owner(&bot));
        if !bot.is_dir() {
            continue; // the advisory lock file `.lock`, the owner's too
        }
        for file in std::fs::read_dir(&bot).unwrap() {
            found.push(owner(&file.unwrap().path()));
        }
    }
    found
}

#[test]
fn bot_create_secret_set_and_doctor_with_an_owner_are_healthy() {
    for given in [Given::Flag, Given::Environment] {
        let env = Env::new();
        require_root(&env);
        env.run(&["migrate"]).ok();
        given
            .run(
                &env,
                &[
                    "bot",
                    "create",
                    "alpha",
                    "--provider",
                    "openai",
                    "--model",
                    "gpt-4o",
                    "--channel",
                    "slack",
                ],
            )
            .ok();
        for (name, value) in [
            ("ai_api_key", "sk-1\n"),
            ("channel_token", "t"),
            ("channel_config", "{}"),
        ] {
            let cmd = given.cmd(&env, &["secret", "set", "alpha", name]);
            run_with_stdin(cmd, value.as_bytes()).ok();
        }
        assert_eq!(
            given
                .run(&env, &["secret", "get", "alpha", "ai_api_key"])
                .ok(),
            "sk-1",
            "{given:?}"
        );
        let found = owners(&env.secrets());
        // The lock file, the root's id file, the bot directory and its three secrets.
        assert_eq!(found.len(), 6, "{given:?}: {found:?}");
        for (path, owner) in &found {
            assert_eq!(*owner, (65534, 65534), "{given:?}: {path}");
        }
        for args in [&["doctor"][..], &["doctor", "--fix"]] {
            let report = given.run(&env, args);
            assert!(
                report.ok().starts_with("secrets root: ")
                    && report
                        .stdout
                        .lines()
                        .nth(1)
                        .is_some_and(|l| l.starts_with("healthy")),
                "{given:?} {args:?}: {}",
                report.stdout
            );
        }
        // The same installation without the owner: its files are someone else's.
        let without = env.run(&["doctor"]);
        assert_eq!(without.code, 1, "{given:?}: {}", without.stdout);
    }
}

#[test]
fn a_malformed_owner_is_refused_before_anything_is_touched() {
    let env = Env::new();
    for bad in ["65534", "nobody", "1:x", "-1:0", ""] {
        let flag = env.run(&[&format!("--secrets-owner={bad}"), "doctor"]);
        assert_eq!(flag.code, 2, "a usage error: {}", flag.stderr);
        assert!(
            flag.stderr.starts_with(&format!(
                "error: invalid value '{bad}' for '--secrets-owner <UID:GID>': \
                 expected UID:GID, two numbers such as 65534:65534"
            )),
            "{}",
            flag.stderr
        );
    }
    for bad in ["65534", "nobody", "1:x", "1:2:3"] {
        let mut cmd = env.cmd(&["doctor"]);
        cmd.env("BOTMAKER_SECRETS_OWNER", bad);
        let run = Run::from(cmd.output().unwrap());
        assert_eq!(
            run.error(),
            format!(
                "error: BOTMAKER_SECRETS_OWNER: invalid secrets owner \"{bad}\": \
                 expected UID:GID, two numbers such as 65534:65534\n"
            )
        );
    }
    assert!(!env.data().exists() && !env.secrets().exists());
    // An empty variable counts as unset; the flag wins over a malformed variable.
    let mut cmd = env.cmd(&["migrate", "--secrets-owner", "0:0"]);
    cmd.env("BOTMAKER_SECRETS_OWNER", "nobody");
    Run::from(cmd.output().unwrap()).ok();
    let mut cmd = env.cmd(&["migrate"]);
    cmd.env("BOTMAKER_SECRETS_OWNER", "");
    Run::from(cmd.output().unwrap()).ok();
}
