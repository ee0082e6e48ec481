//! Selecting the registry: `--database-url` and `BOTMAKER_DATABASE_URL`. Unset means
//! SQLite as before; a PostgreSQL URL selects PostgreSQL (here a server that is not
//! there: one clear error line naming it; `postgres.rs` runs the commands on a real
//! one); any other scheme is one clear error line; the password never shows, in
//! errors, the doctor's report or `-vvv` logging.

use crate::{Env, Run};

const PASSWORD: &str = "hUnTeR2-pw-7Qz";

/// A server that is not there: nothing listens on port 1 of the loopback.
fn pg_url() -> String {
    format!("postgres://alice:{PASSWORD}@127.0.0.1:1/botmaker")
}

/// What every command says about it.
const UNREACHABLE: &str = "cannot connect to postgresql database botmaker on 127.0.0.1";

/// How the doctor's finding names it.
const REDACTED: &str = "postgres://alice:***@127.0.0.1:1/botmaker";

/// Runs `args` with `BOTMAKER_DATABASE_URL` set to `url`.
fn run_with_url(env: &Env, args: &[&str], url: &str) -> Run {
    Run::from(
        env.cmd(args)
            .env("BOTMAKER_DATABASE_URL", url)
            .output()
            .unwrap(),
    )
}

#[test]
fn unset_or_empty_means_sqlite_in_the_data_dir() {
    let env = Env::new();
    env.with_bot("alpha");
    assert!(env.db().is_file());
    let out = run_with_url(&env, &["bot", "list"], "");
    assert!(out.ok().contains("alpha"), "{}", out.stdout);
    let status = env.run(&["migrate", "--status"]);
    assert!(
        status
            .ok()
            .starts_with(&format!("database: {}\n", env.db().display())),
        "{}",
        status.stdout
    );
}

#[test]
fn migrate_status_lists_applied_and_pending_migrations() {
    let env = Env::new();
    let before = env.run(&["migrate", "--status"]);
    assert!(
        before.ok().contains("pending V1__") && !before.stdout.contains("applied V1__"),
        "{}",
        before.stdout
    );
    assert!(!env.db().exists(), "--status created the database");
    env.run(&["migrate"]).ok();
    let after = env.run(&["migrate", "--status"]);
    assert!(
        after.ok().contains("applied V1__") && !after.stdout.contains("pending V"),
        "{}",
        after.stdout
    );
}

#[test]
fn a_postgres_url_selects_postgres_by_flag_or_variable_without_showing_the_password() {
    // A server that is not there: every command tries PostgreSQL (not the SQLite
    // default), and fails with one line that names host and database, never the
    // password; the flag and the variable give the same line.
    let env = Env::new();
    let url = pg_url();
    for args in [
        &["migrate"][..],
        &["migrate", "--status"],
        &["bot", "list"],
        &["secret", "list", "alpha"],
    ] {
        let mut flagged = vec!["--database-url", url.as_str()];
        flagged.extend_from_slice(args);
        let by_flag = env.run(&flagged);
        let line = by_flag.error().trim_end().to_owned();
        assert!(line.contains(UNREACHABLE), "{args:?}: {line}");
        assert!(!line.contains(PASSWORD), "{args:?}: {line}");
        let by_env = run_with_url(&env, args, &url);
        assert_eq!(by_env.error().trim_end(), line, "{args:?}");
    }
    // The doctor reports it as a finding, in text and JSON, without the password.
    for args in [&["doctor"][..], &["doctor", "--json"]] {
        let mut flagged = vec!["--database-url", url.as_str()];
        flagged.extend_from_slice(args);
        let out = env.run(&flagged);
        assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains(UNREACHABLE), "{}", out.stdout);
        assert!(out.stdout.contains(REDACTED), "{}", out.stdout);
        assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));
    }
    // Nothing was created for the SQLite default.
    assert!(!env.data().exists());
}

#[test]
fn other_schemes_are_refused_naming_the_scheme_and_never_the_password() {
    let env = Env::new();
    env.with_bot("alpha");
    let mysql = format!("mysql://root:{PASSWORD}@db/botmaker");
    let out = env.run(&["--database-url", &mysql, "bot", "list"]);
    let err = out.error();
    assert!(
        err.starts_with(
            "error: --database-url: unsupported database url scheme \"mysql\": expected \
             postgres://…, postgresql://… or key=value pairs"
        ),
        "{err}"
    );
    assert!(!err.contains(PASSWORD) && out.stdout.is_empty());
    // From the environment, the error names the variable.
    let out = run_with_url(&env, &["bot", "list"], &mysql);
    let err = out.error();
    assert!(
        err.starts_with("error: BOTMAKER_DATABASE_URL: unsupported database url scheme \"mysql\""),
        "{err}"
    );
    assert!(!err.contains(PASSWORD));
    // A malformed key=value string: the reason, no value.
    let out = env.run(&[
        "--database-url",
        &format!("host=/tmp password='{PASSWORD}"),
        "bot",
        "list",
    ]);
    let err = out.error();
    assert!(err.contains("a quoted value is not closed"), "{err}");
    assert!(!err.contains(PASSWORD));
    // The flag wins over the environment: a bad variable is not read.
    let out = run_with_url(&env, &["--database-url", &pg_url(), "bot", "list"], &mysql);
    assert!(out.error().contains(UNREACHABLE), "{}", out.stderr);
    // The SQLite installation was left alone.
    assert!(env.run(&["bot", "list"]).ok().contains("alpha"));
}

#[test]
fn verbose_logging_never_prints_the_password() {
    let env = Env::new();
    let url = pg_url();
    for args in [
        &["-vvv", "bot", "list"][..],
        &["-vvv", "doctor"],
        &["-vvv", "migrate"],
    ] {
        let out = run_with_url(&env, args, &url);
        assert_eq!(out.code, 1, "{args:?}: {}{}", out.stdout, out.stderr);
        // The events name the registry, redacted.
        assert!(out.stderr.contains("127.0.0.1"), "{args:?}: {}", out.stderr);
        assert!(
            !out.stderr.contains(PASSWORD) && !out.stdout.contains(PASSWORD),
            "{args:?}: {}{}",
            out.stdout,
            out.stderr
        );
    }
}
