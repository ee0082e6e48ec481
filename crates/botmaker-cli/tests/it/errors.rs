//! Every documented error path: one `error:` line, exit 1 (usage errors exit 2),
//! nothing changed.

use crate::Env;

const CREATE: [&str; 9] = [
    "bot",
    "create",
    "alpha",
    "--provider",
    "openai",
    "--model",
    "gpt-4o",
    "--channel",
    "slack",
];

#[test]
fn every_command_but_migrate_refuses_a_missing_database() {
    let env = Env::new();
    for args in [
        &CREATE[..],
        &["bot", "list"],
        &["bot", "show", "alpha"],
        &["bot", "set-status", "alpha", "starting"],
        &["bot", "delete", "alpha"],
        &["secret", "get", "alpha", "ai_api_key"],
        &["secret", "list", "alpha"],
        &["secret", "rm", "alpha", "ai_api_key"],
    ] {
        let err = env.run(args).error().to_owned();
        assert!(err.contains("migrate"), "{args:?}: {err}");
        assert!(!env.db().exists(), "{args:?} created the database");
    }
    let err = env
        .run_with_stdin(&["secret", "set", "alpha", "ai_api_key"], b"v")
        .error()
        .to_owned();
    assert!(err.contains("migrate"), "{err}");
    // The doctor reports instead of refusing.
    let doctor = env.run(&["doctor"]);
    assert_eq!(doctor.code, 1);
    assert!(doctor.stdout.contains("migrate"), "{}", doctor.stdout);
    assert!(!env.db().exists());
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    for args in [
        &["bot"][..],
        &["bot", "create", "x"],
        &["frobnicate"],
        &["secret", "set", "x"],
        &["bot", "list", "--bogus"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        crate::assert_no_panic(&out.stderr);
    }
}

#[test]
fn bad_values_are_refused_with_the_value_named() {
    let env = Env::new();
    env.with_bot("alpha");
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "bot",
                "create",
                "Bad/Name",
                "--provider",
                "openai",
                "--model",
                "m",
                "--channel",
                "slack",
            ],
            "Bad/Name",
        ),
        (
            &[
                "bot",
                "create",
                "ok",
                "--provider",
                "openia",
                "--model",
                "m",
                "--channel",
                "slack",
            ],
            "openia",
        ),
        (
            &[
                "bot",
                "create",
                "ok",
                "--provider",
                "openai",
                "--model",
                "a b",
                "--channel",
                "slack",
            ],
            "a b",
        ),
        (
            &[
                "bot",
                "create",
                "ok",
                "--provider",
                "openai",
                "--model",
                "m",
                "--channel",
                "irc",
            ],
            "irc",
        ),
        (
            &[
                "bot",
                "create",
                "alpha",
                "--provider",
                "openai",
                "--model",
                "m",
                "--channel",
                "slack",
            ],
            "alpha",
        ),
        (&["bot", "list", "--status", "sleeping"], "sleeping"),
        (&["bot", "show", "../etc"], "../etc"),
        (&["bot", "show", "ghost"], "ghost"),
        (
            &["bot", "set-status", "alpha", "running"],
            "created to running",
        ),
        (&["bot", "set-status", "alpha", "paused"], "paused"),
        (
            &["secret", "get", "alpha", "../../etc/passwd"],
            "../../etc/passwd",
        ),
        (&["secret", "get", "alpha", "ai_api_key"], "ai_api_key"),
        (&["secret", "list", "ghost"], "ghost"),
        (&["secret", "rm", "alpha", ".."], ".."),
    ];
    for (args, named) in cases {
        let err = env.run(args).error().to_owned();
        assert!(err.contains(named), "{args:?}: {err}");
    }
    let list: serde_json::Value =
        serde_json::from_str(env.run(&["bot", "list", "--json"]).ok()).unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "nothing was created by the refused commands"
    );
}

#[test]
fn secret_set_refuses_empty_and_oversized_values() {
    let env = Env::new();
    env.with_bot("alpha");
    env.run_with_stdin(&["secret", "set", "alpha", "ai_api_key"], b"keep")
        .ok();
    assert!(
        env.run_with_stdin(&["secret", "set", "alpha", "ai_api_key"], b"\n")
            .error()
            .contains("empty")
    );
    let huge = vec![b'x'; 64 * 1024 + 1];
    assert!(
        env.run_with_stdin(&["secret", "set", "alpha", "ai_api_key"], &huge)
            .error()
            .contains("limit")
    );
    assert_eq!(
        env.run(&["secret", "get", "alpha", "ai_api_key"]).ok(),
        "keep",
        "the old value stays"
    );
    let exact = vec![b'x'; 64 * 1024];
    env.run_with_stdin(&["secret", "set", "alpha", "big"], &exact)
        .ok();
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_untouched() {
    let env = Env::new();
    std::fs::create_dir_all(env.data()).unwrap();
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
        .collect();
    std::fs::write(env.db(), &garbage).unwrap();
    for args in [&["migrate"][..], &["bot", "list"], &["migrate", "--status"]] {
        let err = env.run(args).error().to_owned();
        assert!(
            err.contains("not a botmaker database") && err.contains("untouched"),
            "{args:?}: {err}"
        );
        assert_eq!(
            std::fs::read(env.db()).unwrap(),
            garbage,
            "{args:?} touched the file"
        );
    }
    let names: Vec<_> = std::fs::read_dir(env.data())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names.iter().all(|n| n
            .to_str()
            .is_some_and(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))),
        "{names:?}"
    );
}

#[test]
fn a_database_newer_than_the_code_is_refused() {
    let env = Env::new();
    env.with_bot("alpha");
    // Pretend a newer release migrated this database.
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES (99, 'from_the_future', '2030-01-01T00:00:00Z', '1')",
        [],
    )
    .unwrap();
    drop(conn);
    let before = std::fs::read(env.db()).unwrap();
    for args in [&["bot", "list"][..], &["migrate"]] {
        let err = env.run(args).error().to_owned();
        assert!(err.contains("newer"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(env.db()).unwrap(), before);
}

/// The exact line, hint included: the libraries' messages name no command, this
/// binary adds it.
#[test]
fn a_missing_database_names_the_commands_that_create_it() {
    let env = Env::new();
    let run = env.run(&["bot", "list"]);
    run.error();
    assert_eq!(
        run.stderr,
        format!(
            "error: database {} does not exist; create it with `cargo xtask migrate` or \
             `botmaker migrate`\n",
            env.db().display()
        )
    );
}

#[test]
fn a_database_with_pending_migrations_names_the_commands_that_migrate() {
    let env = Env::new();
    std::fs::create_dir_all(env.data()).unwrap();
    // An empty file is a database with every migration pending.
    std::fs::write(env.db(), b"").unwrap();
    let latest = botmaker::sqlite::LATEST_VERSION;
    for args in [&["bot", "list"][..], &CREATE] {
        let run = env.run(args);
        run.error();
        assert_eq!(
            run.stderr,
            format!(
                "error: database {} has schema version 0, this code needs version {latest} \
                 ({latest} migration(s) pending); run `cargo xtask migrate` or \
                 `botmaker migrate`\n",
                env.db().display()
            ),
            "{args:?}"
        );
    }
    assert_eq!(
        std::fs::read(env.db()).unwrap(),
        b"",
        "openers never migrate"
    );
}
