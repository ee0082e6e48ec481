//! A first session, as README.md shows it, and every command's happy path and output.

use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

use botmaker_domain::BotId;
use serde_json::Value;

use crate::{Env, mode};

const KEY: &str = "sk-test-value-1234567890";
const TOKEN: &str = "xoxb-token-abcdef";
const CONFIG: &str = r##"{"workspace":"acme","channel":"#support"}"##;

#[test]
fn first_session_from_the_readme() {
    let env = Env::new();
    let out = env.run(&["migrate"]);
    assert!(out.ok().contains("V1"), "{}", out.stdout);
    assert!(env.db().is_file());
    assert!(env.run(&["migrate"]).ok().contains("up to date"));
    let status = env.run(&["migrate", "--status"]);
    assert!(
        status.ok().contains("V1") && status.stdout.contains("applied"),
        "{}",
        status.stdout
    );

    // `bot create` prints the id alone.
    let out = env.run(&[
        "bot",
        "create",
        "alpha",
        "--provider",
        "openai",
        "--model",
        "gpt-4o",
        "--channel",
        "slack",
    ]);
    let id = out.ok().trim().to_owned();
    assert_eq!(out.stdout, format!("{id}\n"));
    BotId::parse(&id).unwrap();

    // Secrets from stdin: with and without a trailing newline store the same value.
    env.run_with_stdin(
        &["secret", "set", "alpha", "ai_api_key"],
        format!("{KEY}\n").as_bytes(),
    )
    .ok();
    env.run_with_stdin(&["secret", "set", &id, "channel_token"], TOKEN.as_bytes())
        .ok();
    env.run_with_stdin(
        &["secret", "set", "alpha", "channel_config"],
        format!("{CONFIG}\r\n").as_bytes(),
    )
    .ok();
    assert_eq!(env.run(&["secret", "get", "alpha", "ai_api_key"]).ok(), KEY);
    assert_eq!(
        env.run(&["secret", "get", "alpha", "channel_token"]).ok(),
        TOKEN
    );
    assert_eq!(
        env.run(&["secret", "get", &id, "channel_config"]).ok(),
        CONFIG
    );

    // Files on disk: 0700 directory, 0600 files, owned by us.
    let bot_dir = env.secrets().join(&id);
    assert_eq!(mode(&env.secrets()), 0o700);
    assert_eq!(mode(&bot_dir), 0o700);
    for name in ["ai_api_key", "channel_token", "channel_config"] {
        let meta = std::fs::symlink_metadata(bot_dir.join(name)).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600, "{name}");
        assert_eq!(meta.uid(), nix_euid());
    }

    let list = env.run(&["secret", "list", "alpha"]);
    for name in ["ai_api_key", "channel_token", "channel_config"] {
        assert!(list.ok().contains(name), "{}", list.stdout);
    }
    let json: Value =
        serde_json::from_str(env.run(&["secret", "list", "alpha", "--json"]).ok()).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["mode", "modified", "name", "size"]);
        assert_eq!(row["mode"], "0600");
    }
    let sizes: Vec<u64> = rows.iter().map(|r| r["size"].as_u64().unwrap()).collect();
    assert!(sizes.contains(&(KEY.len() as u64)) && sizes.contains(&(CONFIG.len() as u64)));

    // Healthy, then a mode broken by hand is named, then fixed.
    let doctor = env.run(&["doctor"]);
    assert!(doctor.ok().contains("healthy"), "{}", doctor.stdout);
    let file = bot_dir.join("channel_token");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let doctor = env.run(&["doctor"]);
    assert_eq!(doctor.code, 1, "{}{}", doctor.stdout, doctor.stderr);
    assert!(
        doctor.stdout.contains("channel_token") && doctor.stdout.contains("0644"),
        "{}",
        doctor.stdout
    );
    let fixed = env.run(&["doctor", "--fix"]);
    assert!(fixed.ok().contains("fixed"), "{}", fixed.stdout);
    assert_eq!(mode(&file), 0o600);
    env.run(&["doctor"]).ok();
    let json: Value = serde_json::from_str(env.run(&["doctor", "--json"]).ok()).unwrap();
    assert_eq!(json["healthy"], true);
    assert!(json["findings"].as_array().unwrap().is_empty());

    // Secret values appear nowhere but in `secret get`.
    for args in [
        vec!["bot", "list"],
        vec!["bot", "list", "--json"],
        vec!["bot", "show", "alpha"],
        vec!["bot", "show", "alpha", "--json"],
        vec!["secret", "list", "alpha", "--json"],
        vec!["doctor", "--json"],
    ] {
        let out = env.run(&args);
        for value in [KEY, TOKEN, CONFIG] {
            assert!(
                !out.stdout.contains(value) && !out.stderr.contains(value),
                "{args:?} printed a secret"
            );
        }
    }
    for file in std::fs::read_dir(env.data()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        for value in [KEY, TOKEN, CONFIG] {
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "a secret is in the database files"
            );
        }
    }
}

fn nix_euid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

#[test]
fn bot_commands_and_json_shapes() {
    let env = Env::new();
    let id = env.with_bot("alpha");
    let out = env.run(&[
        "bot",
        "create",
        "beta",
        "--provider",
        "anthropic",
        "--model",
        "claude-sonnet-4",
        "--channel",
        "discord",
        "--json",
    ]);
    let beta: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(beta["name"], "beta");
    assert_eq!(beta["status"], "created");

    let list: Value = serde_json::from_str(env.run(&["bot", "list", "--json"]).ok()).unwrap();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let mut keys: Vec<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "ai_provider",
            "channel_type",
            "container_id",
            "created_at",
            "id",
            "model",
            "name",
            "secrets_root",
            "status",
            "updated_at"
        ]
    );
    assert_eq!(rows[0]["name"], "beta", "newest first");
    assert_eq!(rows[1]["id"], id.as_str());
    assert_eq!(rows[1]["container_id"], Value::Null);

    let shown: Value = serde_json::from_str(env.run(&["bot", "show", &id, "--json"]).ok()).unwrap();
    assert_eq!(shown, rows[1]);
    let human = env.run(&["bot", "show", "alpha"]);
    assert!(
        human.ok().contains(&id) && human.stdout.contains("missing secrets: ai_api_key"),
        "{}",
        human.stdout
    );
    let upper = env.run(&["bot", "show", &id.to_uppercase(), "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(upper.ok()).unwrap()["id"],
        id.as_str()
    );

    assert!(
        env.run(&["bot", "set-status", "alpha", "starting"])
            .ok()
            .contains("created -> starting")
    );
    env.run(&["bot", "set-status", &id, "running"]).ok();
    let running: Value = serde_json::from_str(
        env.run(&["bot", "list", "--status", "running", "--json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(running.as_array().unwrap().len(), 1);
    assert_eq!(running[0]["name"], "alpha");
    assert!(env.run(&["bot", "list"]).ok().contains("running"));

    env.run_with_stdin(&["secret", "set", "alpha", "ai_api_key"], b"k\n")
        .ok();
    assert!(env.secrets().join(&id).is_dir());
    assert!(env.run(&["bot", "delete", "alpha"]).ok().contains(&id));
    assert!(
        !env.secrets().join(&id).exists(),
        "delete removes the secrets directory"
    );
    let list: Value = serde_json::from_str(env.run(&["bot", "list", "--json"]).ok()).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    env.run(&["bot", "show", "alpha"]).error();
}

#[test]
fn secret_rm_and_overwrite() {
    let env = Env::new();
    env.with_bot("alpha");
    env.run_with_stdin(&["secret", "set", "alpha", "extra_token"], b"one")
        .ok();
    env.run_with_stdin(&["secret", "set", "alpha", "extra_token"], b"two\n")
        .ok();
    assert_eq!(
        env.run(&["secret", "get", "alpha", "extra_token"]).ok(),
        "two"
    );
    assert!(
        env.run(&["secret", "rm", "alpha", "extra_token"])
            .ok()
            .contains("removed")
    );
    env.run(&["secret", "get", "alpha", "extra_token"]).error();
    env.run(&["secret", "rm", "alpha", "extra_token"]).error();
}

#[test]
fn hostile_umask_still_gives_strict_modes() {
    for umask in ["000", "077", "022"] {
        let env = Env::new();
        let bin = env!("CARGO_BIN_EXE_botmaker");
        let script = format!(
            "umask {umask} && {bin} migrate >/dev/null && id=$({bin} bot create alpha --provider openai --model m --channel slack) \
             && printf 'v' | {bin} secret set alpha ai_api_key >/dev/null && echo $id"
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("BOTMAKER_DATA_DIR", env.data())
            .env("BOTMAKER_SECRETS_DIR", env.secrets())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert_eq!(mode(&env.secrets()), 0o700, "umask {umask}");
        assert_eq!(mode(&env.secrets().join(&id)), 0o700, "umask {umask}");
        assert_eq!(
            mode(&env.secrets().join(&id).join("ai_api_key")),
            0o600,
            "umask {umask}"
        );
        assert_eq!(
            mode(&env.data()) & 0o077,
            0,
            "umask {umask}: data dir open to others"
        );
        assert_eq!(
            mode(&env.db()) & 0o077,
            0,
            "umask {umask}: database open to others"
        );
    }
}

#[test]
fn several_processes_create_bots_at_once() {
    let env = Env::new();
    env.run(&["migrate"]).ok();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let name = format!("bot-{i}");
            env.cmd(&[
                "bot",
                "create",
                &name,
                "--provider",
                "openai",
                "--model",
                "gpt-4o",
                "--channel",
                "slack",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut ids: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        })
        .collect();
    ids.sort();
    let list: Value = serde_json::from_str(env.run(&["bot", "list", "--json"]).ok()).unwrap();
    let mut listed: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, ids);
    let doctor = env.run(&["doctor", "--json"]);
    let report: Value = serde_json::from_str(&doctor.stdout).unwrap();
    for f in report["findings"].as_array().unwrap() {
        assert_eq!(
            f["kind"], "missing-secrets",
            "only the expected finding: {f}"
        );
    }
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let env = Env::new();
    env.with_bot("alpha");
    // `head -c 0` exits at once, so the CLI writes into a closed pipe (EPIPE).
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {} bot list | head -c 0",
            env!("CARGO_BIN_EXE_botmaker")
        ))
        .env("BOTMAKER_DATA_DIR", env.data())
        .env("BOTMAKER_SECRETS_DIR", env.secrets())
        .output()
        .unwrap();
    crate::assert_no_panic(&String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
