//! Selecting the registry: `--database-url` and `BOTMAKER_DATABASE_URL`. Unset means
//! SQLite as before; a PostgreSQL URL in this build (no `postgres` feature) and any
//! other scheme are one clear error line; the password never shows, in errors,
//! the doctor's report or `-vvv` logging.

use crate::{Env, Run};

const PASSWORD: &str = "hUnTeR2-pw-7Qz";

fn pg_url() -> String {
    format!("postgres://alice:{PASSWORD}@db.example/botmaker")
}

const UNSUPPORTED: &str = "error: this build has no PostgreSQL support for the registry \
                           postgres://alice:***@db.example/botmaker: enable the `postgres` \
                           feature of the `botmaker` crate";

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
fn a_postgres_url_in_a_build_without_postgres_is_one_clear_error_without_the_password() {
    let env = Env::new();
    let url = pg_url();
    for args in [
        &["migrate"][..],
        &["migrate", "--status"],
        &["bot", "list"],
        &["secret", "list", "alpha"],
    ] {
        // From the flag and from the environment: the same line.
        let mut flagged = vec!["--database-url", url.as_str()];
        flagged.extend_from_slice(args);
        let by_flag = env.run(&flagged);
        assert_eq!(by_flag.error().trim_end(), UNSUPPORTED, "{args:?}");
        let by_env = run_with_url(&env, args, &url);
        assert_eq!(by_env.error().trim_end(), UNSUPPORTED, "{args:?}");
    }
    // The doctor reports it as a finding, in text and JSON, without the password.
    for args in [&["doctor"][..], &["doctor", "--json"]] {
        let mut flagged = vec!["--database-url", url.as_str()];
        flagged.extend_from_slice(args);
        let out = env.run(&flagged);
        assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("no PostgreSQL support"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout
                .contains("postgres://alice:***@db.example/botmaker")
        );
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
    assert_eq!(out.error().trim_end(), UNSUPPORTED);
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
        assert!(
            out.stderr
                .contains("postgres://alice:***@db.example/botmaker"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains(PASSWORD) && !out.stdout.contains(PASSWORD),
            "{args:?}: {}{}",
            out.stdout,
            out.stderr
        );
    }
}
