//! Two hosts sharing one registry, each with its own secrets root (issue 16 point 5),
//! through the binary, on both backends: host A creates a bot and sets a secret;
//! host B's `secret get/set/list/rm` and `bot delete` fail with one line naming A's
//! root, B's doctor is healthy and counts the bot as held elsewhere; A keeps working.

use botmaker_testkit::pg;
use serde_json::Value;

use crate::{Env, Run};

/// Host B of `env`: the same registry (data dir or database URL), another secrets root.
fn on_b(env: &Env, args: &[&str]) -> Run {
    Run::from(
        env.cmd(args)
            .env("BOTMAKER_SECRETS_DIR", env.dir.path().join("secrets-b"))
            .output()
            .unwrap(),
    )
}

fn on_b_with_stdin(env: &Env, args: &[&str], stdin: &[u8]) -> Run {
    let mut cmd = env.cmd(args);
    cmd.env("BOTMAKER_SECRETS_DIR", env.dir.path().join("secrets-b"));
    crate::run_with_stdin(cmd, stdin)
}

fn root_id(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join(".root-id"))
        .unwrap()
        .trim_end()
        .to_owned()
}

fn two_hosts(env: &Env) {
    let id = env.with_bot("alpha");
    for (name, value) in [
        ("ai_api_key", "sk-from-a"),
        ("channel_token", "t"),
        ("channel_config", "{}"),
    ] {
        env.run_with_stdin(&["secret", "set", "alpha", name], value.as_bytes())
            .ok();
    }
    let a_root = root_id(&env.secrets());

    // B's first command makes its root; its doctor is healthy, the bot held elsewhere.
    let doctor = on_b(env, &["doctor"]);
    let b_root = root_id(&env.dir.path().join("secrets-b"));
    assert_ne!(a_root, b_root);
    assert_eq!(
        doctor.ok(),
        format!(
            "secrets root: {b_root}\nhealthy: 0 bots checked, 0 problems fixed, \
             1 held by other secrets roots\n"
        )
    );
    let json: Value = serde_json::from_str(on_b(env, &["doctor", "--json"]).ok()).unwrap();
    assert_eq!(json["healthy"], true);
    assert_eq!(json["held_elsewhere"], 1);
    assert_eq!(json["bots_checked"], 0);
    assert_eq!(json["secrets_root"], b_root.as_str());

    // Every secrets operation on B fails with one line naming A's root; nothing changes.
    let refusals = [
        on_b(env, &["secret", "get", "alpha", "ai_api_key"]),
        on_b_with_stdin(env, &["secret", "set", "alpha", "ai_api_key"], b"sk-from-b"),
        on_b(env, &["secret", "list", "alpha"]),
        on_b(env, &["secret", "rm", "alpha", "channel_token"]),
        on_b(env, &["bot", "delete", "alpha"]),
    ];
    for run in &refusals {
        let line = run.error();
        assert!(
            line.contains(&format!("held by secrets root {a_root}"))
                && line.contains(&format!("this host's root {b_root}"))
                && line.contains("\"alpha\"")
                && line.contains(&id),
            "{line}"
        );
        assert!(!line.contains("sk-from"), "{line}");
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
    // `bot show` on B works and says where the secrets are.
    let shown = on_b(env, &["bot", "show", "alpha"]);
    assert!(
        shown.ok().contains(&format!(
            "secrets_root: {a_root} (another host's; this host's is {b_root})"
        )),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains(&format!(
            "missing secrets: unknown here (held by secrets root {a_root})"
        )),
        "{}",
        shown.stdout
    );
    assert!(on_b(env, &["doctor", "--fix"]).ok().contains("healthy"));

    // A: everything works, and its doctor is healthy.
    assert_eq!(
        env.run(&["secret", "get", "alpha", "ai_api_key"]).ok(),
        "sk-from-a"
    );
    assert!(
        env.run(&["bot", "show", "alpha"])
            .ok()
            .contains(&format!("secrets_root: {a_root} (this host's)"))
    );
    assert!(
        env.run(&["secret", "list", "alpha"])
            .ok()
            .contains("channel_token")
    );
    assert_eq!(
        env.run(&["doctor"]).ok(),
        format!("secrets root: {a_root}\nhealthy: 1 bots checked, 0 problems fixed\n")
    );
    env.run(&["secret", "rm", "alpha", "channel_token"]).ok();
    env.run(&["bot", "delete", "alpha"]).ok();
    assert!(
        on_b(env, &["doctor"])
            .ok()
            .ends_with("healthy: 0 bots checked, 0 problems fixed\n")
    );
}

#[test]
fn two_secrets_roots_share_one_sqlite_registry() {
    two_hosts(&Env::new());
}

#[test]
fn two_secrets_roots_share_one_postgres_registry() {
    let db = pg::shared().database("cli_placement");
    two_hosts(&Env::postgres(db.url()));
}
