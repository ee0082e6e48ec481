//! Every command on a PostgreSQL registry (the test kit's throwaway server, or
//! `BOTMAKER_TEST_DATABASE_URL`): the README's session prints what it prints on SQLite,
//! `migrate --status` lists applied and pending migrations, and a password in the URL
//! never shows. Where the server binaries are missing these tests fail and say what to
//! install (`botmaker_testkit::pg::INSTALL_HINT`).

use std::os::unix::fs::PermissionsExt as _;

use botmaker_testkit::pg;

use crate::{Env, Run};

const KEY: &str = "sk-live-123";
const PASSWORD: &str = "pG-hUnTeR2-9xQ";

/// One step of the README's session: the arguments, and what goes to stdin.
type Step = (&'static [&'static str], Option<&'static [u8]>);

/// The README's "A first session with the CLI", then the other commands it lists.
const SESSION: [Step; 22] = [
    (&["migrate"], None),
    (&["migrate"], None),
    (&["migrate", "--status"], None),
    (
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
        None,
    ),
    (
        &["secret", "set", "alpha", "ai_api_key"],
        Some(b"sk-live-123\n"),
    ),
    (
        &["secret", "set", "alpha", "channel_token"],
        Some(b"xoxb-1"),
    ),
    (
        &["secret", "set", "alpha", "channel_config"],
        Some(b"{\"channel\":\"#general\"}\n"),
    ),
    (&["secret", "list", "alpha"], None),
    (&["bot", "list"], None),
    (&["doctor"], None),
    // The README's `chmod 644 secrets/*/channel_token` happens here (see `transcript`).
    (&["doctor"], None),
    (&["doctor", "--fix"], None),
    (&["doctor", "--json"], None),
    (&["bot", "show", "alpha"], None),
    (&["bot", "set-status", "alpha", "starting"], None),
    (&["bot", "set-status", "alpha", "stopped"], None),
    (&["bot", "list", "--status", "starting"], None),
    (&["secret", "get", "alpha", "ai_api_key"], None),
    (&["secret", "rm", "alpha", "channel_token"], None),
    (&["doctor"], None),
    (&["bot", "delete", "alpha"], None),
    (&["bot", "list", "--json"], None),
];

/// Runs the session in `env` and returns what each step printed and how it ended,
/// with the bot's id, timestamps and the registry's name replaced by placeholders
/// (they differ between any two runs, or between the backends by design).
fn transcript(env: &Env) -> String {
    let mut id = None::<String>;
    let mut out = String::new();
    for (i, (args, stdin)) in SESSION.iter().enumerate() {
        if i == 10 {
            let id = id.as_deref().unwrap();
            let file = env.secrets().join(id).join("channel_token");
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let run: Run = match stdin {
            Some(bytes) => env.run_with_stdin(args, bytes),
            None => env.run(args),
        };
        crate::assert_no_panic(&run.stderr);
        if args.starts_with(&["bot", "create"]) {
            id = Some(run.ok().trim().to_owned());
        }
        let text = format!(
            "$ botmaker {}\n{}{}[exit {}]\n",
            args.join(" "),
            run.stdout,
            run.stderr,
            run.code
        );
        // Each installation's secrets root has an id of its own, made at its first open.
        let text = match std::fs::read_to_string(env.secrets().join(".root-id")) {
            Ok(root) => text.replace(root.trim_end(), "<root>"),
            Err(_) => text,
        };
        out.push_str(&normalize(&text, id.as_deref()));
    }
    out
}

/// `text` with `id` as `<id>`, every RFC 3339 timestamp as `<time>`, and the
/// `database: …` line of `migrate --status` as `database: <registry>`.
fn normalize(text: &str, id: Option<&str>) -> String {
    let text = match id {
        Some(id) => text.replace(id, "<id>"),
        None => text.to_owned(),
    };
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.starts_with("database: ") {
            lines.push("database: <registry>".to_owned());
        } else {
            lines.push(replace_times(line));
        }
    }
    lines.join("\n") + "\n"
}

/// Replaces each `YYYY-MM-DD[T ]hh:mm:ss…` run (up to a space, quote, comma or
/// parenthesis) with `<time>`.
fn replace_times(line: &str) -> String {
    let bytes = line.as_bytes();
    let shape = b"dddd-dd-dd?dd:dd:dd";
    let starts_time = |at: usize| {
        bytes.len() >= at + shape.len()
            && shape.iter().zip(&bytes[at..]).all(|(s, b)| match s {
                b'd' => b.is_ascii_digit(),
                b'?' => *b == b'T' || *b == b' ',
                _ => s == b,
            })
    };
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if starts_time(i) {
            out.push_str("<time>");
            i += shape.len();
            while i < bytes.len() && !b" \"',()".contains(&bytes[i]) {
                i += 1;
            }
        } else {
            let c = line[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[test]
fn the_readme_session_prints_the_same_on_postgres_as_on_sqlite() {
    let db = pg::shared().database("cli_session");
    let on_sqlite = transcript(&Env::new());
    let on_postgres = transcript(&Env::postgres(db.url()));
    assert_eq!(
        on_postgres, on_sqlite,
        "PostgreSQL:\n{on_postgres}\nSQLite:\n{on_sqlite}"
    );
    // The session did what the README says, on both.
    assert!(on_postgres.contains("healthy: 1 bots checked, 0 problems fixed"));
    assert!(on_postgres.contains("mode 0644, expected 0600"));
    assert!(on_postgres.contains(&format!("{KEY}[exit 0]")));
    // The rows are on the server.
    let mut client = db.client();
    let rows = client.query("SELECT count(*) FROM bots", &[]).unwrap();
    assert_eq!(
        rows[0].get::<_, i64>(0),
        0,
        "the session ends by deleting alpha"
    );
}

#[test]
fn migrate_status_on_postgres_lists_applied_and_pending_migrations() {
    let db = pg::shared().database("cli_status");
    let env = Env::postgres(db.url());
    let before = env.run(&["migrate", "--status"]);
    assert!(
        before.ok().contains("pending V1__")
            && before.stdout.contains("pending V2__")
            && !before.stdout.contains("applied V"),
        "{}",
        before.stdout
    );
    // Commands other than migrate refuse a database that is not migrated, and say so.
    let refused = env.run(&["bot", "list"]);
    assert!(
        refused
            .error()
            .trim_end()
            .ends_with("run `migrate`); run `cargo xtask migrate` or `botmaker migrate`"),
        "{}",
        refused.stderr
    );
    let applied = env.run(&["migrate"]);
    assert!(
        applied.ok().contains("applied V1__") && applied.stdout.contains("schema version 0 -> 3"),
        "{}",
        applied.stdout
    );
    let after = env.run(&["migrate", "--status"]);
    assert!(
        after.ok().contains("applied V1__")
            && after.stdout.contains("applied V2__")
            && after.stdout.contains("applied V3__bots_secrets_root")
            && after.stdout.contains("state: up to date")
            && !after.stdout.contains("pending V"),
        "{}",
        after.stdout
    );
    // The flag selects the same database as the variable.
    let by_flag = Env::new().run(&["--database-url", db.url(), "migrate", "--status"]);
    assert!(
        by_flag.ok().contains("state: up to date"),
        "{}",
        by_flag.stdout
    );
}

#[test]
fn a_password_in_the_url_never_shows_on_postgres() {
    let db = pg::shared().database("cli_password");
    // The test server trusts its Unix socket, so the password is carried in the
    // string (where it could leak) but not checked.
    let url = format!("{} password={PASSWORD}", db.url());
    let env = Env::postgres(&url);
    let mut all = String::new();
    for args in [
        &["-vvv", "migrate"][..],
        &["-vvv", "migrate", "--status"],
        &[
            "-vvv",
            "bot",
            "create",
            "alpha",
            "--provider",
            "ollama",
            "--model",
            "llama3",
            "--channel",
            "slack",
        ],
        &["-vvv", "bot", "list", "--json"],
        &["-vvv", "doctor"],
        &["-vvv", "doctor", "--json"],
        &["-vvv", "bot", "show", "nope"],
    ] {
        let out = env.run(args);
        all.push_str(&out.stdout);
        all.push_str(&out.stderr);
    }
    assert!(
        all.contains("password=<redacted>") || all.contains("password=***"),
        "{all}"
    );
    assert!(!all.contains(PASSWORD), "{all}");
    // A server that cannot be reached: one line naming host and database, no password.
    let down = format!("postgres://alice:{PASSWORD}@127.0.0.1:1/botmaker");
    let out = Env::postgres(&down).run(&["bot", "list"]);
    let err = out.error();
    assert!(
        err.contains("cannot connect to postgresql database botmaker on 127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
}
